// A completion's cost on a file database is the pages its commit writes to the WAL (issue 12):
// these tests count those pages, check that the indexes the queue's readers need are the ones
// they use, and that migration 0015 loses no finished task from the per-run finished index.
import { Database } from "bun:sqlite";
import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, NEW_FILE_PAGE_SIZE, openDb, type Db } from "../../db/client";
import { listInflight } from "../../db/inflight";
import { cancelRun, claimTasks, completeTask, countOpenTasks, heartbeatLeases } from "../../db/queue";
import { createRun, getRunSummary, listRuns, validateTasks } from "../../db/runs";
import { listTaskPage } from "../../db/task-list";
import { migrateBefore } from "./_migrate-before";

let dir: string;
let db: Db;
let path: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "baton-pages-"));
  path = join(dir, "baton.db");
});
afterEach(() => {
  if (db && !db.$client.closed) closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

const pageSizeOf = async (d: Db) => Number(((await d.$client.execute("PRAGMA page_size")).rows[0] as any).page_size);

async function seed(n: number): Promise<number> {
  const rows = Array.from({ length: n }, (_, i) => ({ id: `q${i}`, question: `question ${i}` }));
  const { run } = await createRun({ db, name: "pages", benchmark: "frames", tasks: validateTasks({ rows }) });
  return run.id;
}

// frames appended to the WAL by `fn`, from its size (the WAL is emptied first)
async function walFramesOf(fn: () => Promise<unknown>): Promise<number> {
  await db.$client.execute("PRAGMA wal_checkpoint(TRUNCATE)");
  const page = await pageSizeOf(db);
  await fn();
  const size = statSync(`${path}-wal`).size;
  return size === 0 ? 0 : (size - 32) / (24 + page);
}

test("a new database file is made with small pages, and an existing file keeps its own", async () => {
  db = await openDb({ url: `file:${path}` });
  expect(await pageSizeOf(db)).toBe(NEW_FILE_PAGE_SIZE);
  expect(NEW_FILE_PAGE_SIZE).toBeLessThan(4096);
  closeDb(db);

  const old = join(dir, "old.db");
  const raw = new Database(old, { create: true });
  raw.exec("PRAGMA page_size = 4096; CREATE TABLE keep (x); INSERT INTO keep VALUES (1)");
  raw.close();
  db = await openDb({ url: `file:${old}` });
  expect(await pageSizeOf(db)).toBe(4096);
  // the old file was migrated and works as a queue
  const runId = await seed(3);
  const [t] = await claimTasks({ db, runnerId: "r", limit: 1, leaseMs: 60_000 });
  expect(await completeTask({ db, taskId: t.id, leaseToken: t.leaseToken, result: { prediction: "p", correct: true } })).toBe(true);
  expect((await getRunSummary({ db, ref: runId })).counts.succeeded).toBe(1);
});

test("a fenced completion writes five pages: the task, the finished index, the lease index, the counters and the attempt", async () => {
  db = await openDb({ url: `file:${path}` });
  await seed(2000);
  const claimed = await claimTasks({ db, runnerId: "r", limit: 64, leaseMs: 60_000 });
  const frames: number[] = [];
  for (const t of claimed.slice(0, 20))
    frames.push(await walFramesOf(() => completeTask({ db, taskId: t.id, leaseToken: t.leaseToken, result: { prediction: "p", correct: true } })));
  // Before migration 0015 it was seven: the owner index, and the status index twice (out of
  // 'running', into 'succeeded'). Now and then a full page splits and a commit writes more.
  const median = [...frames].sort((a, b) => a - b)[frames.length >> 1];
  expect(median).toBeLessThanOrEqual(5);
  expect(frames.reduce((a, b) => a + b, 0)).toBeLessThan(6 * frames.length);
});

test("the run's readers find running and finished tasks through their own indexes, not the whole run", async () => {
  db = await openDb({ url: `file:${path}` });
  const plans = async (sql: string) =>
    ((await db.$client.execute(`EXPLAIN QUERY PLAN ${sql}`)).rows as any[]).map((r) => String(r.detail)).join(" | ");
  expect(await plans("SELECT count(*) FROM tasks t INDEXED BY tasks_lease_idx WHERE t.status = 'running' AND t.run_id = 1")).toContain("tasks_lease_idx");
  expect(await plans("SELECT count(*) FROM tasks t WHERE t.run_id = 1 AND t.status = 'failed' AND t.finished_at IS NOT NULL")).toContain("tasks_run_finished_idx");
  expect(
    await plans("SELECT count(*) FROM tasks t WHERE t.run_id = 1 AND t.status IN ('succeeded', 'failed') AND t.finished_at >= 5"),
  ).toContain("tasks_run_finished_idx");
  expect(await plans("UPDATE tasks SET lease_expires_at = 1 WHERE status = 'running' AND lease_owner = 'r' AND lease_token IN ('a')")).toContain(
    "tasks_lease_idx",
  );
});

test("no claim shape reads a run's every row: expired leases come from the running tasks' index", async () => {
  db = await openDb({ url: `file:${path}` });
  const runId = await seed(50);
  const seen: { sql: string; args: unknown[] }[] = [];
  const batch = db.$client.batch.bind(db.$client);
  (db.$client as any).batch = (stmts: any[], mode: any) => {
    seen.push(...stmts);
    return batch(stmts, mode);
  };
  await claimTasks({ db, runnerId: "r", limit: 5, leaseMs: 60_000 });
  await claimTasks({ db, runnerId: "r", limit: 5, leaseMs: 60_000, runId });
  await claimTasks({ db, runnerId: "r", limit: 5, leaseMs: 60_000, excludeRunIds: [runId + 1] });
  await claimTasks({ db, runnerId: "r", limit: 5, leaseMs: 60_000, runId, excludeRunIds: [runId + 1] });
  expect(seen).toHaveLength(8);
  for (const st of seen) {
    const plan = ((await db.$client.execute({ sql: `EXPLAIN QUERY PLAN ${st.sql}`, args: st.args as any })).rows as any[]).map((r) => String(r.detail));
    expect(plan.filter((d) => d.includes("tasks_run_external_idx") || /^SCAN (tasks|t)\b(?! USING)/.test(d))).toEqual([]);
    expect(plan.some((d) => d.includes("tasks_lease_idx (lease_expires_at<?)"))).toBe(true);
  }
});

test("running, finished and queued tasks are each listed, counted, heartbeaten and canceled as before", async () => {
  db = await openDb({ url: `file:${path}` });
  const runId = await seed(10);
  const held = await claimTasks({ db, runnerId: "r", limit: 4, leaseMs: 60_000 });
  await completeTask({ db, taskId: held[0].id, leaseToken: held[0].leaseToken, result: { prediction: "p", correct: true } });
  expect(await countOpenTasks({ db, runId })).toEqual({ queued: 6, running: 3 });
  expect((await listInflight({ db, runId })).tasks.map((t) => t.taskId)).toEqual(held.slice(1).map((t) => t.id));
  expect((await listTaskPage({ db, ref: runId, filters: { status: "running" } })).tasks.map((t) => t.id)).toEqual(held.slice(1).map((t) => t.id));
  expect((await listTaskPage({ db, ref: runId, filters: { status: "succeeded" } })).tasks.map((t) => t.id)).toEqual([held[0].id]);
  expect((await listTaskPage({ db, ref: runId, filters: { status: "queued" } })).tasks).toHaveLength(6);
  const beat = await heartbeatLeases({ db, runnerId: "r", tokens: held.map((t) => t.leaseToken), leaseMs: 60_000 });
  expect(beat.held.sort()).toEqual(held.slice(1).map((t) => t.leaseToken).sort());
  expect(beat.lost).toEqual([held[0].leaseToken]);
  expect(await cancelRun({ db, runId })).toEqual({ canceled: 9 });
  const [listed] = await listRuns({ db });
  expect(listed.counts).toEqual({ queued: 0, running: 0, succeeded: 1, failed: 0, canceled: 9 });
  // a second connection sees the same
  const other = await openDb({ url: `file:${path}`, migrate: false });
  expect((await listTaskPage({ db: other, ref: runId, filters: { status: "canceled" } })).tasks).toHaveLength(9);
  closeDb(other);
});

test("migration 0015 gives a finished task without finished_at one, so the finished index still counts it", async () => {
  db = await openDb({ url: `file:${path}`, migrate: false });
  await migrateBefore({ db, tagPrefix: "0015_", scratchDir: join(dir, "older") });
  const runId = await seed(3);
  await db.$client.execute({ sql: "UPDATE tasks SET status = 'failed', error_class = 'x', finished_at = NULL, updated_at = 42 WHERE external_id = 'q1'", args: [] });
  closeDb(db);

  db = await openDb({ url: `file:${path}` });
  expect((await listTaskPage({ db, ref: runId, filters: { status: "failed" } })).tasks.map((t) => [t.external_id, t.finished_at])).toEqual([["q1", 42]]);
});
