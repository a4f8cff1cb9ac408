// The one place a database connection is made. Every process (server, runner, CLI, tests)
// goes through openDb so WAL, busy timeout and migrations are never forgotten.
import { closeSync, existsSync, mkdirSync, openSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Client } from "@libsql/client";
// driver-core, not drizzle-orm/libsql: the latter imports @libsql/client, whose native binding
// (about 16 MB of memory and a slower start) a file database on bun:sqlite never uses; it is
// loaded below only for a server URL. `construct` is what drizzle() wraps, untyped in its .d.ts.
import * as drizzleCore from "drizzle-orm/libsql/driver-core";
import type { LibSQLDatabase } from "drizzle-orm/libsql/driver-core";
import { migrate } from "drizzle-orm/libsql/migrator";
import { BACKSTOP_AUTOCHECKPOINT_PAGES, startCheckpointer, WAL_SIZE_LIMIT_BYTES, type Checkpointer } from "./checkpointer";
import { fileDriverFromEnv, SafeFileClient } from "./safe-client";
import { filePathOf } from "./sqlite-client";
import * as schema from "./schema";

export type Db = LibSQLDatabase<typeof schema> & { $client: Client };

export const DEFAULT_DATABASE_URL = "file:./baton.db";
export const MIGRATIONS_DIR = resolve(import.meta.dir, "../migrations");

export type OpenDbOptions = {
  url?: string;
  authToken?: string;
  // Busy timeout for file databases, ms. Claims are short single statements, so a long
  // wait means contention, not a deadlock; 30 s rides out a checkpoint under load.
  busyTimeoutMs?: number;
  migrate?: boolean;
  /**
   * Read what is there and change nothing: a missing file is an error (no file or directory
   * is created), no migration runs, and the connection refuses writes (query_only).
   */
  readOnly?: boolean;
  /**
   * Long-lived processes (server, runner): WAL checkpoints on a background thread every
   * `intervalMs` instead of inside whichever commit crosses 1,000 pages (db/checkpointer.ts).
   */
  backgroundCheckpoint?: boolean | { intervalMs: number };
};

/** Accepts `file:x.db`, a bare path, `http(s)://`, `libsql://`, `ws(s)://`. */
export function normalizeDatabaseUrl(url: string): string {
  if (/^(file|https?|libsql|wss?):/.test(url)) return url;
  return `file:${url}`;
}

export function isFileUrl(url: string): boolean {
  return url.startsWith("file:");
}

/**
 * A new database file is made 0600 (in 0700 directories that did not exist): it holds gold
 * answers, results and endpoint addresses, and on a shared login node other users must not
 * read it. SQLite gives its -wal and -shm files the main file's mode.
 */
function createPrivateFile(path: string): boolean {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  if (!existsSync(path)) closeSync(openSync(path, "a", 0o600));
  return statSync(path).size === 0;
}

/**
 * The page size of a new database file. A commit writes each page it touched to the WAL, and
 * the WAL's fsync at a checkpoint costs by the byte: a fenced completion touches about five
 * pages, so the page size bounds the queue's rate on a file (bench/claim.ts, one process,
 * single completions: 9,709/s at 4 KiB, 11,086/s at 2 KiB, 11,710/s at 1 KiB). 2 KiB keeps
 * most of that without the deeper trees and longer overflow chains (transcripts) of 1 KiB.
 * It only applies before the first table is made: an existing file keeps its size.
 */
export const NEW_FILE_PAGE_SIZE = 2048;

const constructDrizzle = (drizzleCore as unknown as { construct?: (c: Client, o: { schema: typeof schema }) => unknown }).construct!;
if (typeof constructDrizzle !== "function") throw new Error("drizzle-orm/libsql/driver-core has no construct(): drizzle-orm changed, see db/client.ts");

export async function openDb(options: OpenDbOptions = {}): Promise<Db> {
  const url = normalizeDatabaseUrl(options.url ?? process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL);
  let fresh = false;
  // the file's path, once: creation, page size and the checkpointer's own connection use it
  const path = isFileUrl(url) ? filePathOf(url) : null;
  if (path !== null) {
    if (options.readOnly && path !== ":memory:" && (!path || !existsSync(resolve(path)))) throw new Error(`no database file at ${path ? resolve(path) : JSON.stringify(url)}`);
    if (path && path !== ":memory:" && !options.readOnly) fresh = createPrivateFile(resolve(path));
  }
  const config = { url, authToken: options.authToken ?? process.env.DATABASE_AUTH_TOKEN, intMode: "number" as const };
  const busyTimeoutMs = options.busyTimeoutMs ?? 30_000;
  // file: see db/safe-client.ts (a failed statement must never leave writes uncommitted)
  const libsql = () => import("@libsql/client").then((m) => m.createClient);
  const client: Client = path !== null
    ? new SafeFileClient({ config, busyTimeoutMs, createLibsqlClient: fileDriverFromEnv() === "libsql" ? await libsql() : undefined })
    : (await libsql())({ ...config, timeout: busyTimeoutMs });
  if (options.readOnly) await client.execute("PRAGMA query_only = ON");
  if (path !== null && !options.readOnly) {
    // WAL lets readers (reports, the UI) run beside the claimers; it is a property of the
    // file, so setting it once per open is enough. NORMAL sync is safe under WAL.
    if (fresh) await client.execute(`PRAGMA page_size = ${NEW_FILE_PAGE_SIZE}`);
    await client.execute("PRAGMA journal_mode = WAL");
    await client.execute("PRAGMA synchronous = NORMAL");
    await client.execute("PRAGMA foreign_keys = ON");
  }
  const db = constructDrizzle(client, { schema }) as Db;
  if (options.migrate !== false && !options.readOnly) await migrateDb(db);
  if (options.backgroundCheckpoint && !options.readOnly) {
    if (path && path !== ":memory:") {
      const intervalMs = typeof options.backgroundCheckpoint === "object" ? options.backgroundCheckpoint.intervalMs : 1000;
      try {
        checkpointers.set(db, await startCheckpointer({ path: resolve(path), intervalMs }));
        // only once the thread runs: without it, commits keep SQLite's own checkpoints
        await client.execute(`PRAGMA wal_autocheckpoint = ${BACKSTOP_AUTOCHECKPOINT_PAGES}`);
        await client.execute(`PRAGMA journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
      } catch (err) {
        // a process that cannot start a thread still works, checkpointing as SQLite does
        console.warn(`[db] background checkpointer unavailable (${(err as Error).message}); commits checkpoint as SQLite does by default`);
      }
    }
  }
  return db;
}

const checkpointers = new WeakMap<Db, Checkpointer>();

/**
 * Applies the committed migrations. Several processes may start at once on one file
 * (a job array), and drizzle's migrator is not safe against that race: the loser sees
 * "already exists" or SQLITE_BUSY. Retrying re-reads the journal table, finds the work
 * done, and returns.
 */
export async function migrateDb(db: Db): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await migrate(db, { migrationsFolder: MIGRATIONS_DIR });
      return;
    } catch (err) {
      const text = String((err as any)?.cause?.message ?? (err as Error).message ?? err);
      const raced = /already exists|SQLITE_BUSY|database is locked|UNIQUE constraint/i.test(text);
      if (!raced || attempt >= 10) throw err;
      await Bun.sleep(50 * attempt);
    }
  }
}

export function closeDb(db: Db): void {
  db.$client.close();
  // its last round runs after this connection is gone; the thread never holds the process
  void checkpointers.get(db)?.stop();
}
