// A libSQL `Client` over bun:sqlite for `file:` databases, that keeps its prepared statements.
//
// Why: @libsql/client's embedded driver prepares every statement again on every call; a
// profile of claim + complete put 29% of the time there. This client prepares each distinct
// SQL text once per connection (a bounded LRU) and answers with the same ResultSet and
// LibsqlError shapes, so drizzle's libsql adapter and every db/ function work unchanged.
//
// Safety rule (see db/safe-client.ts): a statement that failed is finalized and dropped
// from the cache at once, so no failed statement can keep a read transaction open on the
// connection; SafeFileClient then discards the whole connection anyway.
import { Database, type Statement } from "bun:sqlite";
import type { Client, Config, InArgs, InStatement, InValue, ResultSet, Row, Transaction, TransactionMode } from "@libsql/client";
// the error classes alone: @libsql/client itself would load its native binding
import { LibsqlBatchError, LibsqlError } from "@libsql/core/api";

const MAX_CACHED = 256;
const VALUES = Symbol("values");

type Prepared = { stmt: Statement; columns: string[]; makeRow: ((vals: unknown[]) => Row) | null };

/** SQLite's base code of an extended code name: SQLITE_CONSTRAINT_UNIQUE → SQLITE_CONSTRAINT. */
function baseCode(code: string): string {
  return code.split("_").slice(0, 2).join("_");
}

export function toLibsqlError(err: unknown): unknown {
  const e = err as any;
  if (e instanceof LibsqlError || e?.name !== "SQLiteError") return err;
  const extended = typeof e.code === "string" ? e.code : "SQLITE_ERROR";
  return new LibsqlError(String(e.message), baseCode(extended), extended, Number(e.errno ?? 1), e);
}

function argsOf(stmt: InStatement | string, args?: InArgs): { sql: string; args: any } {
  if (typeof stmt === "string") return { sql: stmt, args: args ?? [] };
  return { sql: stmt.sql, args: stmt.args ?? [] };
}

function toSqlValue(v: InValue | boolean | Date | undefined): any {
  if (typeof v === "boolean") return v ? 1 : 0;
  if (v instanceof Date) return v.valueOf();
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (v === undefined) throw new TypeError("undefined cannot be passed as argument to the database");
  if (typeof v === "number" && !Number.isFinite(v)) throw new RangeError("Only finite numbers (not Infinity or NaN) can be passed as arguments");
  return v;
}

function bindable(args: any): any[] {
  if (Array.isArray(args)) return args.map(toSqlValue);
  // named arguments: bun:sqlite (strict) takes the names without their prefix
  const named: Record<string, any> = {};
  for (const k of Object.keys(args)) named[/^[@$:]/.test(k) ? k.slice(1) : k] = toSqlValue(args[k]);
  return [named];
}

/**
 * Rows as @libsql/client gives them: column names as enumerable properties (the first of
 * duplicate names wins), values by index and `length` not enumerable. The index accessors
 * live on one prototype per statement instead of being defined on every row.
 */
function rowMakerFor(columns: string[]): (vals: unknown[]) => Row {
  const proto: Record<PropertyKey, unknown> = {};
  Object.defineProperty(proto, "length", { value: columns.length });
  for (let i = 0; i < columns.length; i++)
    Object.defineProperty(proto, i, {
      get(this: any) {
        const v = this[VALUES][i];
        return v instanceof Uint8Array ? v.slice().buffer : v;
      },
    });
  const named: [string, number][] = [];
  const seen = new Set<string>();
  columns.forEach((c, i) => {
    if (!seen.has(c)) named.push([c, i]), seen.add(c);
  });
  return (vals) => {
    const row = Object.create(proto);
    Object.defineProperty(row, VALUES, { value: vals });
    for (let k = 0; k < named.length; k++) {
      const v = vals[named[k][1]];
      row[named[k][0]] = v instanceof Uint8Array ? v.slice().buffer : v;
    }
    return row as Row;
  };
}

function resultSet(columns: string[], rows: Row[], rowsAffected: number, lastInsertRowid: bigint | undefined): ResultSet {
  return {
    columns,
    columnTypes: columns.map(() => ""),
    rows,
    rowsAffected,
    lastInsertRowid,
    toJSON() {
      return { columns, columnTypes: this.columnTypes, rows: rows.map((r) => Array.prototype.slice.call(r)), rowsAffected, lastInsertRowid: lastInsertRowid?.toString() ?? null };
    },
  };
}

function beginFor(mode: TransactionMode | undefined): string {
  return mode === "write" ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED";
}

/** The file path of a `file:` URL (`file:x.db`, `file:/abs/x.db`, `file:///abs/x.db`). */
export function filePathOf(url: string): string {
  const path = url.slice("file:".length).split("?")[0];
  return path.startsWith("///") ? path.slice(2) : path;
}

export type SqliteClientOptions = { busyTimeoutMs: number };

export class SqliteClient implements Client {
  private readonly db: Database;
  private readonly cache = new Map<string, Prepared>();
  private isClosed = false;
  private txOpen = false;
  readonly protocol = "file";

  constructor(config: Config, o: SqliteClientOptions) {
    const path = filePathOf(String(config.url));
    try {
      this.db = new Database(path === "" ? ":memory:" : path, { create: true, readwrite: true, strict: true });
      this.db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(o.busyTimeoutMs))}`);
    } catch (err) {
      throw toLibsqlError(err);
    }
  }

  get closed(): boolean {
    return this.isClosed;
  }

  private prepared(sql: string): Prepared {
    const hit = this.cache.get(sql);
    if (hit) {
      // LRU: most recently used last
      this.cache.delete(sql);
      this.cache.set(sql, hit);
      return hit;
    }
    const stmt = this.db.prepare(sql);
    const columns = stmt.columnNames;
    const p: Prepared = { stmt, columns, makeRow: columns.length > 0 ? rowMakerFor(columns) : null };
    this.cache.set(sql, p);
    if (this.cache.size > MAX_CACHED) {
      const [oldest, old] = this.cache.entries().next().value!;
      this.cache.delete(oldest);
      old.stmt.finalize();
    }
    return p;
  }

  private forget(sql: string): void {
    const p = this.cache.get(sql);
    if (!p) return;
    this.cache.delete(sql);
    try {
      p.stmt.finalize();
    } catch {
      // the connection is going away with it
    }
  }

  /** One statement; a failure finalizes it (see the header) and becomes a LibsqlError. */
  private exec1(sql: string, args: any): ResultSet {
    if (this.isClosed) throw new LibsqlError("The client is closed", "CLIENT_CLOSED");
    let p: Prepared | null = null;
    try {
      p = this.prepared(sql);
      const bound = bindable(args);
      if (p.makeRow) {
        const vals = p.stmt.values(...bound) as unknown[][];
        const rows = new Array<Row>(vals.length);
        for (let i = 0; i < vals.length; i++) rows[i] = p.makeRow(vals[i]);
        return resultSet(p.columns, rows, 0, undefined);
      }
      const info = p.stmt.run(...bound);
      return resultSet([], [], info.changes, BigInt(info.lastInsertRowid));
    } catch (err) {
      this.forget(sql);
      throw toLibsqlError(err);
    }
  }

  async execute(stmtOrSql: InStatement | string, args?: InArgs): Promise<ResultSet> {
    const s = argsOf(stmtOrSql, args);
    return this.exec1(s.sql, s.args);
  }

  private runAll(stmts: Array<InStatement | [string, InArgs?]>, begin: string): ResultSet[] {
    this.exec1(begin, []);
    try {
      const out: ResultSet[] = [];
      for (let i = 0; i < stmts.length; i++) {
        const st = stmts[i];
        const s = Array.isArray(st) ? { sql: st[0], args: st[1] ?? [] } : argsOf(st);
        try {
          out.push(this.exec1(s.sql, s.args));
        } catch (e: any) {
          throw new LibsqlBatchError(e.message, i, e.code, e.extendedCode, e.rawCode, e.cause instanceof Error ? e.cause : undefined);
        }
      }
      this.exec1("COMMIT", []);
      return out;
    } finally {
      if (this.db.inTransaction) this.rollbackQuietly();
    }
  }

  private rollbackQuietly(): void {
    try {
      this.db.exec("ROLLBACK");
    } catch {
      // nothing open after all
    }
  }

  async batch(stmts: Array<InStatement | [string, InArgs?]>, mode?: TransactionMode): Promise<ResultSet[]> {
    return this.runAll(stmts, beginFor(mode));
  }

  async migrate(stmts: InStatement[]): Promise<ResultSet[]> {
    this.db.exec("PRAGMA foreign_keys = OFF");
    try {
      return this.runAll(stmts, "BEGIN DEFERRED");
    } finally {
      this.db.exec("PRAGMA foreign_keys = ON");
    }
  }

  async executeMultiple(sql: string): Promise<void> {
    try {
      this.db.exec(sql);
    } catch (err) {
      throw toLibsqlError(err);
    }
  }

  /** The connection belongs to the transaction until it ends (SafeFileClient queues the rest). */
  async transaction(mode?: TransactionMode): Promise<Transaction> {
    if (this.txOpen) throw new LibsqlError("This client's single connection is held by an open transaction", "TRANSACTION_ACTIVE");
    this.exec1(beginFor(mode), []);
    this.txOpen = true;
    let done = false;
    const check = () => {
      if (done || !this.db.inTransaction) throw new LibsqlError("The transaction is closed", "TRANSACTION_CLOSED");
    };
    const finish = (sql: string) => {
      if (done) return;
      done = true;
      this.txOpen = false;
      if (sql === "COMMIT") this.exec1(sql, []);
      else if (this.db.inTransaction) this.rollbackQuietly();
    };
    const tx = {
      execute: async (s: InStatement | string, a?: InArgs) => (check(), this.execute(s, a)),
      batch: async (stmts: InStatement[]) => {
        check();
        return stmts.map((st, i) => {
          try {
            return this.exec1(argsOf(st).sql, argsOf(st).args);
          } catch (e: any) {
            throw new LibsqlBatchError(e.message, i, e.code, e.extendedCode, e.rawCode, e.cause instanceof Error ? e.cause : undefined);
          }
        });
      },
      executeMultiple: async (sql: string) => (check(), this.executeMultiple(sql)),
      commit: async () => {
        check();
        try {
          finish("COMMIT");
        } finally {
          if (this.db.inTransaction) this.rollbackQuietly();
        }
      },
      rollback: async () => finish("ROLLBACK"),
      close: () => finish("ROLLBACK"),
      get closed() {
        return done;
      },
    };
    return tx as unknown as Transaction;
  }

  async sync(): Promise<any> {
    return undefined;
  }

  async reconnect(): Promise<void> {
    throw new LibsqlError("reconnect is done by SafeFileClient", "NOT_SUPPORTED");
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const p of this.cache.values())
      try {
        p.stmt.finalize();
      } catch {}
    this.cache.clear();
    try {
      if (this.db.inTransaction) this.rollbackQuietly();
      this.db.close(false);
    } catch {
      // closing a connection whose file went away
    }
  }
}
