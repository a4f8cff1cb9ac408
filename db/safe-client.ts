// A libSQL client for `file:` databases that never acknowledges a write it did not commit,
// and never blocks the event loop for long while another process holds the write lock.
//
// Why it exists: the embedded driver (libsql-js) does not reset a statement that failed with
// SQLITE_BUSY. SQLite keeps the autocommit read transaction of an un-reset statement open,
// so every later write on that connection succeeds *inside a transaction that never
// commits* ("cannot commit transaction - SQL statements in progress"): completions were
// acknowledged, never seen by another connection, and gone when the process exited. The
// driver's busy handler is also synchronous: a 30 s busy timeout is a 30 s frozen event loop,
// during which no lease is renewed.
//
// So: the driver waits at most `stallMs` per statement; any error discards the connection
// (its client is closed, a new one opened with the same per-connection pragmas) before the
// error goes further; and a lock (BUSY/LOCKED) is waited for asynchronously, retrying the
// whole statement or batch — safe, because a failed one was rolled back with its
// connection — until `busyTimeoutMs` has passed.
import type { Client, Config, createClient, InArgs, InStatement, ResultSet, Transaction, TransactionMode } from "@libsql/client";
import { SqliteClient } from "./sqlite-client";

export type SafeClientOptions = {
  config: Config;
  // total time a statement may wait for a lock, across its tries
  busyTimeoutMs: number;
  // longest single synchronous wait inside the driver (one try)
  stallMs?: number;
  onError?: (err: unknown) => void;
  // "sqlite" (default): bun:sqlite with prepared statements kept (db/sqlite-client.ts);
  // "libsql": @libsql/client's embedded driver, kept as the benchmarks' baseline
  driver?: "sqlite" | "libsql";
  // the libsql driver's factory, loaded by the caller only when that driver is asked for (its
  // native binding is about 16 MB of every process's memory otherwise)
  createLibsqlClient?: typeof createClient;
};

// Pragmas that belong to a connection, not the file: replayed on every new connection.
const CONNECTION_PRAGMA = /^\s*PRAGMA\s+(synchronous|foreign_keys|mmap_size|cache_size|temp_store|query_only|wal_autocheckpoint|journal_size_limit)\s*=/i;

export function sqliteCode(err: unknown): string {
  let e: any = err;
  for (let i = 0; e && i < 4; i++, e = e.cause) {
    const code = e.extendedCode ?? e.code;
    if (typeof code === "string" && code.startsWith("SQLITE_")) return code;
  }
  return "";
}

/** The database is locked by another connection: worth waiting for. */
export function isLockError(err: unknown): boolean {
  return /^SQLITE_(BUSY|LOCKED)/.test(sqliteCode(err)) || /database is locked/i.test(String((err as Error)?.message ?? ""));
}

/** Out of space or an I/O error: worth retrying once the operator has made room. */
export function isStorageError(err: unknown): boolean {
  return /^SQLITE_(FULL|IOERR|CANTOPEN)/.test(sqliteCode(err)) || /database or disk is full|disk I\/O error/i.test(String((err as Error)?.message ?? ""));
}

const GATED = Symbol("gated");

export function fileDriverFromEnv(): "sqlite" | "libsql" {
  return process.env.BATON_FILE_DRIVER === "libsql" ? "libsql" : "sqlite";
}

export class SafeFileClient implements Client {
  private inner: Client;
  private readonly pragmas = new Map<string, string>();
  private closedByUser = false;
  private tail: Promise<unknown> = Promise.resolve();
  private lockedUntil = 0;
  // after a storage error: the WAL may hold a failed write's frames (possibly the whole
  // volume); give that space back once writes work again
  private walToTruncate = false;
  readonly protocol = "file";
  // the last error that discarded a connection, for /healthz
  lastError: { code: string; message: string; at: number } | null = null;

  constructor(private readonly o: SafeClientOptions) {
    this.inner = this.open();
  }

  /** The database file's path (for free-space checks). */
  get path(): string {
    return String(this.o.config.url).slice("file:".length).split("?")[0];
  }

  get closed(): boolean {
    return this.closedByUser;
  }

  private open(): Client {
    // One connection: statements run one at a time anyway (the driver is synchronous), and a
    // second pooled connection would miss the per-connection pragmas.
    const stall = Math.min(this.o.busyTimeoutMs, this.o.stallMs ?? 100);
    if ((this.o.driver ?? fileDriverFromEnv()) === "libsql") {
      if (!this.o.createLibsqlClient) throw new Error("the libsql file driver needs createLibsqlClient (openDb loads it)");
      return this.o.createLibsqlClient({ ...this.o.config, concurrency: 1, timeout: stall });
    }
    return new SqliteClient(this.o.config, { busyTimeoutMs: stall });
  }

  private async replace(err: unknown, failed: Client): Promise<void> {
    this.lastError = { code: sqliteCode(err) || "ERROR", message: String((err as Error)?.message ?? err).slice(0, 300), at: Date.now() };
    this.o.onError?.(err);
    if (this.inner !== failed || this.closedByUser) return;
    try {
      failed.close();
    } catch {
      // already unusable: nothing to release
    }
    // if this throws (the file cannot be opened now), the next statement tries again
    const next = this.open();
    this.inner = next;
    for (const sql of this.pragmas.values()) await next.execute(sql).catch(() => {});
  }

  private async truncateWal(client: Client): Promise<void> {
    try {
      const res = await client.execute("PRAGMA wal_checkpoint(TRUNCATE)");
      const row = res.rows[0] as any;
      if (row && Number(row.busy ?? row[0]) === 0) this.walToTruncate = false;
    } catch {
      // still no room for the checkpoint: try again after the next statement
    }
  }

  /**
   * Statements go to the driver one at a time. Without that, statements queued behind one
   * that met the lock would each block the event loop for a slice in a row (the driver hands
   * its connection to the next waiter in a microtask, before any timer can run).
   */
  private serially<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn, fn);
    this.tail = p.catch(() => {});
    return p;
  }

  /** Runs `op` on the current connection; see the header for the error rule. */
  private async run<T>(op: (c: Client) => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.o.busyTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      const wait = Math.min(this.lockedUntil, deadline) - Date.now();
      if (wait > 0) await Bun.sleep(wait);
      try {
        return await this.serially(async () => {
          // queued behind a statement that just met the lock: wait with it, do not block again
          if (Date.now() < Math.min(this.lockedUntil, deadline)) throw GATED;
          const client = this.inner;
          try {
            const out = await op(client);
            if (this.walToTruncate) await this.truncateWal(client);
            return out;
          } catch (err) {
            if (isStorageError(err)) this.walToTruncate = true;
            if (!this.closedByUser) await this.replace(err, client);
            if (isLockError(err)) {
              const backoff = Math.min(200, 10 * 2 ** Math.min(attempt, 5));
              this.lockedUntil = Math.max(this.lockedUntil, Date.now() + backoff / 2 + Math.random() * (backoff / 2));
            }
            throw err;
          }
        });
      } catch (err) {
        if (err === GATED) continue;
        if (this.closedByUser) throw err;
        const retry = isLockError(err) || (err as any)?.code === "CLIENT_CLOSED";
        if (!retry || Date.now() >= deadline) throw err;
      }
    }
  }

  execute(stmtOrSql: InStatement | string, args?: InArgs): Promise<ResultSet> {
    if (typeof stmtOrSql === "string" && CONNECTION_PRAGMA.test(stmtOrSql)) {
      const name = CONNECTION_PRAGMA.exec(stmtOrSql)![1].toLowerCase();
      this.pragmas.set(name, stmtOrSql);
    }
    return this.run((c) => (typeof stmtOrSql === "string" ? c.execute(stmtOrSql, args) : c.execute(stmtOrSql)));
  }

  batch(stmts: Array<InStatement | [string, InArgs?]>, mode?: TransactionMode): Promise<ResultSet[]> {
    return this.run((c) => c.batch(stmts, mode));
  }

  migrate(stmts: InStatement[]): Promise<ResultSet[]> {
    return this.run((c) => c.migrate(stmts));
  }

  executeMultiple(sql: string): Promise<void> {
    return this.run((c) => c.executeMultiple(sql));
  }

  /**
   * An interactive transaction owns the connection until it settles: other statements queue
   * behind it. Its BEGIN waits for a lock like any statement; a statement that fails inside
   * it discards the connection once it has settled.
   */
  async transaction(mode?: TransactionMode): Promise<Transaction> {
    const deadline = Date.now() + this.o.busyTimeoutMs;
    for (;;) {
      let settled!: () => void;
      const held = new Promise<void>((r) => (settled = r));
      const begun = new Promise<{ tx: Transaction; client: Client }>((resolve, reject) => {
        void this.serially(async () => {
          const client = this.inner;
          try {
            resolve({ tx: await client.transaction(mode), client });
          } catch (err) {
            await this.replace(err, client);
            reject(err);
            return;
          }
          await held;
        });
      });
      try {
        const { tx, client } = await begun;
        return this.wrapTransaction(tx, client, settled);
      } catch (err) {
        if (!isLockError(err) || Date.now() >= deadline) throw err;
        await Bun.sleep(20 + Math.random() * 80);
      }
    }
  }

  private wrapTransaction(tx: Transaction, client: Client, settled: () => void): Transaction {
    let failure: unknown = null;
    const track = async <T>(p: Promise<T>): Promise<T> => {
      try {
        return await p;
      } catch (err) {
        failure ??= err;
        throw err;
      }
    };
    const end = async () => {
      if (failure) await this.replace(failure, client);
      settled();
    };
    return {
      execute: (s: any, a?: any) => track((tx.execute as any)(s, a)),
      batch: (s: any) => track(tx.batch(s)),
      executeMultiple: (s: string) => track(tx.executeMultiple(s)),
      rollback: () => track(tx.rollback()).finally(end),
      commit: () => track(tx.commit()).finally(end),
      close: () => {
        tx.close();
        void end();
      },
      get closed() {
        return tx.closed;
      },
    } as Transaction;
  }

  sync(): Promise<any> {
    return this.inner.sync();
  }

  async reconnect(): Promise<void> {
    await this.replace(new Error("reconnect"), this.inner);
  }

  close(): void {
    this.closedByUser = true;
    this.inner.close();
  }
}
