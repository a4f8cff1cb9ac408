// The floor under a submit: a bare Bun.serve that parses the body and stores every task row
// durably in Baton's own schema (the same tables, indexes and pragmas, made by its migrations)
// with bun:sqlite, in one transaction: prepared INSERTs of 1,000 rows each (the fastest of 1,
// 100, 1,000 and 4,000 rows a statement here: 100k single-row inserts took 780 ms against 530),
// the row's JSON re-serialized as Baton stores it. No checks, no validation, no run counters, no
// response beyond the count, and its WAL checkpointed between submits outside the timing, so
// it is the least any server that parses JSON and keeps these rows in SQLite does here.
// bench/submit.ts and bun run bench put Baton's submit beside it.
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { closeDb, NEW_FILE_PAGE_SIZE, openDb } from "../db/client";

const CHUNK = 1000;

export type BareStore = {
  /** POSTs the body, checks all `tasks` rows were stored, checkpoints after the timing; seconds. */
  timeSubmit(body: string, tasks: number): Promise<number>;
  stop(): void;
};

export async function startBareStore({ dir }: { dir: string }): Promise<BareStore> {
  const path = join(dir, "bare-store.db");
  // Baton's migrations make the schema; then bun:sqlite alone writes to it
  closeDb(await openDb({ url: `file:${path}` }));
  const db = new Database(path);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = NORMAL");
  // checkpoints run between submits (timeSubmit, after its timing), never inside one
  db.exec("PRAGMA wal_autocheckpoint = 0");
  const pageSize = (db.query("PRAGMA page_size").get() as { page_size: number }).page_size;
  if (pageSize !== NEW_FILE_PAGE_SIZE) throw new Error(`bare store: page size ${pageSize}, Baton makes ${NEW_FILE_PAGE_SIZE}`);
  const insertRun = db.prepare("INSERT INTO runs (name, benchmark, config, max_attempts, task_count, created_at) VALUES (?, ?, '{}', 3, ?, ?) RETURNING id");
  const insertText = (rows: number) =>
    "INSERT INTO tasks (run_id, external_id, input, max_attempts, available_at, created_at, updated_at) VALUES " +
    Array(rows).fill("(?, ?, ?, 3, ?, ?, ?)").join(", ");
  const insertChunk = db.prepare(insertText(CHUNK));
  const store = db.transaction((body: { name: string; benchmark: string; tasks: Record<string, unknown>[] }) => {
    const now = Date.now();
    const { id } = insertRun.get(body.name, body.benchmark, body.tasks.length, now) as { id: number };
    const tasks = body.tasks;
    for (let i = 0; i < tasks.length; i += CHUNK) {
      const n = Math.min(CHUNK, tasks.length - i);
      const args: unknown[] = [];
      for (let j = i; j < i + n; j++) args.push(id, String(tasks[j].id), JSON.stringify(tasks[j]), now, now, now);
      (n === CHUNK ? insertChunk : db.prepare(insertText(n))).run(...(args as any[]));
    }
    return id;
  });
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    maxRequestBodySize: 1 << 30,
    fetch: async (req) => {
      const body = (await req.json()) as { name: string; benchmark: string; tasks: Record<string, unknown>[] };
      const id = store.immediate(body);
      return Response.json({ id, tasks: body.tasks.length }, { status: 201 });
    },
  });
  return {
    async timeSubmit(body, tasks) {
      const t = performance.now();
      const res = await fetch(`http://127.0.0.1:${server.port}/v1/runs`, { method: "POST", headers: { "content-type": "application/json" }, body });
      if (res.status !== 201 || ((await res.json()) as { tasks: number }).tasks !== tasks) throw new Error("the bare store did not store the body");
      const seconds = (performance.now() - t) / 1000;
      db.query("PRAGMA wal_checkpoint(TRUNCATE)").get();
      return seconds;
    },
    stop() {
      server.stop(true);
      db.close();
    },
  };
}
