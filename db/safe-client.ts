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
import { createClient, type Client, type Config, type InArgs, type InStatement, type ResultSet, type Transaction, type TransactionMode } from "@libsql/client";

export type SafeClientOptions = {
  config: Config;
  // total time a statement may wait for a lock, across its tries
  busyTimeoutMs: number;
  // longest single synchronous wait inside the driver (one try)
  stallMs?: number;
  onError?: (err: unknown) => void;
};

// Pragmas that belong to a connection, not the file: replayed on every new connection.
const CONNECTION_PRAGMA = /^\s*PRAGMA\s+(synchronous|foreign_keys|mmap_size|cache_size|temp_store)\s*=/i;

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

export class SafeFileClient implements Client {
  private inner: Client;
  private readonly pragmas = new Map<string, string>();
  private closedByUser = false;
  readonly protocol = "file";
  // the last error that discarded a connection, for /healthz
  lastError: { code: string; message: string; at: number } | null = null;

  constructor(private readonly o: SafeClientOptions) {
    this.inner = this.open();
  }

  get closed(): boolean {
    return this.closedByUser;
  }

  private open(): Client {
    // One connection: statements run one at a time anyway (the driver is synchronous), and a
    // second pooled connection would miss the per-connection pragmas.
    const client = createClient({ ...this.o.config, concurrency: 1, timeout: Math.min(this.o.busyTimeoutMs, this.o.stallMs ?? 250) });
    return client;
  }

  private async replace(err: unknown, failed: Client): Promise<void> {
    this.lastError = { code: sqliteCode(err) || "ERROR", message: String((err as Error)?.message ?? err).slice(0, 300), at: Date.now() };
    this.o.onError?.(err);
    if (this.inner !== failed || this.closedByUser) return; // someone already replaced it
    const next = this.open();
    this.inner = next;
    try {
      failed.close();
    } catch {
      // already unusable: nothing to release
    }
    for (const sql of this.pragmas.values()) await next.execute(sql).catch(() => {});
  }

  /** Runs `op` on the current connection; see the header for the error rule. */
  private async run<T>(op: (c: Client) => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.o.busyTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      const client = this.inner;
      try {
        return await op(client);
      } catch (err) {
        if (this.closedByUser) throw err;
        // a waiter of a connection that another failure closed never ran: try again
        const neverRan = (err as any)?.code === "CLIENT_CLOSED";
        if (!neverRan) await this.replace(err, client);
        if (!(neverRan || isLockError(err)) || Date.now() >= deadline) throw err;
        const backoff = Math.min(200, 10 * 2 ** Math.min(attempt, 5));
        await Bun.sleep(Math.min(deadline - Date.now(), backoff / 2 + Math.random() * (backoff / 2)));
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
   * An interactive transaction holds the one connection until it settles; a statement
   * that fails inside it discards the connection once it has settled.
   */
  async transaction(mode?: TransactionMode): Promise<Transaction> {
    const client = this.inner;
    const tx = await this.run((c) => c.transaction(mode));
    let failure: unknown = null;
    const settle = async <T>(p: Promise<T>): Promise<T> => {
      try {
        return await p;
      } catch (err) {
        failure ??= err;
        throw err;
      }
    };
    const done = async () => {
      if (failure) await this.replace(failure, client);
    };
    return {
      execute: (s: any, a?: any) => settle(tx.execute(s, a)),
      batch: (s: any) => settle(tx.batch(s)),
      executeMultiple: (s: string) => settle(tx.executeMultiple(s)),
      rollback: () => settle(tx.rollback()).finally(done),
      commit: () => settle(tx.commit()).finally(done),
      close: () => {
        tx.close();
        void done();
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
