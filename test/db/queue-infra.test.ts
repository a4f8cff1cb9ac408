// Whether a failed task failed on infrastructure is what the runner said (failTask's
// retryable, lease expiry), stored on the task: the views and the report count that, not a
// guess from the class name. Success, requeue and cancel clear it; countOpenTasks says
// whether anything is left to do.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildReport, summarizeTasks } from "../../db/analysis";
import { closeDb, openDb, type Db } from "../../db/client";
import { cancelRun, claimTasks, completeTask, countOpenTasks, expireExhaustedLeases, failTask, readDbNow, requeueTasks } from "../../db/queue";
import { createRun, validateTasks } from "../../db/runs";

let dir: string;
let db: Db;
let runId: number;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-infra-"));
  db = await openDb({ url: `file:${join(dir, "baton.db")}` });
  const rows = ["a", "b", "c", "d", "e"].map((id) => ({ id, question: `q ${id}` }));
  runId = (await createRun({ db, name: "i", benchmark: "frames", maxAttempts: 1, tasks: validateTasks({ rows }) })).run.id;
});
afterEach(() => {
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

async function infraByTask(): Promise<Record<string, [number | null, number]>> {
  const r = await db.$client.execute({
    sql: "SELECT t.external_id, t.error_infra, o.infra_failure FROM tasks t JOIN task_outcomes o ON o.task_id = t.id WHERE t.run_id = ?",
    args: [runId],
  });
  return Object.fromEntries(r.rows.map((x: any) => [x.external_id, [x.error_infra, Number(x.infra_failure)]]));
}

test("the runner's verdict decides, not the class name", async () => {
  const [a, b, c, d] = await claimTasks({ db, runnerId: "r", limit: 4, leaseMs: 60_000 });
  // retryable, on the last attempt: infrastructure, even with a class no list knows
  expect(await failTask({ db, taskId: a.id, leaseToken: a.leaseToken, errorClass: "gpu_node_rebooted", retryable: true })).toBe("failed");
  // not retryable: the model's or the data's, even when the class sounds like infrastructure
  expect(await failTask({ db, taskId: b.id, leaseToken: b.leaseToken, errorClass: "timeout", retryable: false })).toBe("failed");
  expect(await failTask({ db, taskId: c.id, leaseToken: c.leaseToken, errorClass: "context_length", retryable: false })).toBe("failed");
  expect(await completeTask({ db, taskId: d.id, leaseToken: d.leaseToken, result: { prediction: "x", correct: true } })).toBe(true);
  expect(await infraByTask()).toEqual({ a: [1, 1], b: [0, 0], c: [0, 0], d: [null, 0], e: [null, 0] });

  const [summary] = (await db.$client.execute({ sql: "SELECT failed, infra_failed, score, score_excluding_infra FROM run_summary WHERE run_id = ?", args: [runId] })).rows as any[];
  expect(summary).toMatchObject({ failed: 3, infra_failed: 1, score: 0.2, score_excluding_infra: 0.25 });
  // the report's queries agree with the views
  const s = await summarizeTasks({ db, runId });
  expect([s.infraFailed, s.scoreExcludingInfra]).toEqual([1, 0.25]);
  const report = (await buildReport({ db, runId }))!;
  expect(Object.fromEntries(report.failed.map((f) => [f.externalId, f.infra]))).toEqual({ a: true, b: false, c: false });
  expect(Object.fromEntries(report.errors.byTaskClass.map((e) => [e.errorClass, e.infra]))).toEqual({ gpu_node_rebooted: true, timeout: false, context_length: false });
});

test("a lease that expires on the last attempt is infrastructure; requeue and cancel clear the verdict", async () => {
  const [a] = await claimTasks({ db, runnerId: "dead", limit: 1, leaseMs: 50 });
  const deadline = Date.now() + 10_000;
  while ((await readDbNow({ db })) <= a.leaseExpiresAt) {
    if (Date.now() > deadline) throw new Error("database clock did not pass the lease");
    await Bun.sleep(10);
  }
  expect(await expireExhaustedLeases({ db, runId })).toBe(1);
  expect((await infraByTask()).a).toEqual([1, 1]);

  expect(await requeueTasks({ db, runId })).toEqual({ requeued: 1 });
  expect((await infraByTask()).a).toEqual([null, 0]);

  const [again] = await claimTasks({ db, runnerId: "r", limit: 1, leaseMs: 60_000 });
  await failTask({ db, taskId: again.id, leaseToken: again.leaseToken, errorClass: "connection", retryable: true });
  await requeueTasks({ db, runId });
  await cancelRun({ db, runId });
  const r = await db.$client.execute({ sql: "SELECT count(*) AS n FROM tasks WHERE run_id = ? AND error_infra IS NOT NULL", args: [runId] });
  expect(Number((r.rows[0] as any).n)).toBe(0);
});

test("rows without a verdict (older databases, generated data) fall back to the class list", async () => {
  const [a, b] = await claimTasks({ db, runnerId: "r", limit: 2, leaseMs: 60_000 });
  await failTask({ db, taskId: a.id, leaseToken: a.leaseToken, errorClass: "no_endpoint", retryable: true });
  await failTask({ db, taskId: b.id, leaseToken: b.leaseToken, errorClass: "context_length", retryable: false });
  await db.$client.execute({ sql: "UPDATE tasks SET error_infra = NULL WHERE run_id = ?", args: [runId] });
  const got = await infraByTask();
  expect([got.a[1], got.b[1]]).toEqual([1, 0]);
  expect((await summarizeTasks({ db, runId })).infraFailed).toBe(1);
});

test("open tasks count queued and running ones, in backoff too, ignoring canceled runs", async () => {
  const other = (await createRun({ db, name: "o", benchmark: "frames", maxAttempts: 3, tasks: validateTasks({ rows: [{ id: "x", question: "q" }] }) })).run.id;
  expect(await countOpenTasks({ db, runId })).toEqual({ queued: 5, running: 0 });
  const [a, b] = await claimTasks({ db, runnerId: "r", limit: 2, leaseMs: 60_000, runId });
  expect(await countOpenTasks({ db, runId })).toEqual({ queued: 3, running: 2 });
  expect(await countOpenTasks({ db })).toEqual({ queued: 4, running: 2 });
  await completeTask({ db, taskId: a.id, leaseToken: a.leaseToken, result: {} });
  await failTask({ db, taskId: b.id, leaseToken: b.leaseToken, errorClass: "context_length", retryable: false });
  expect(await countOpenTasks({ db, runId })).toEqual({ queued: 3, running: 0 });
  // a retry waiting out its backoff is not claimable, but it is still open
  const [x] = await claimTasks({ db, runnerId: "r", limit: 1, leaseMs: 60_000, runId: other });
  expect(await failTask({ db, taskId: x.id, leaseToken: x.leaseToken, errorClass: "connection", retryable: true, backoff: { baseMs: 60_000, capMs: 60_000 } })).toBe("retry");
  expect(await claimTasks({ db, runnerId: "r", limit: 1, leaseMs: 60_000, runId: other })).toHaveLength(0);
  expect(await countOpenTasks({ db, runId: other })).toEqual({ queued: 1, running: 0 });
  await cancelRun({ db, runId });
  expect(await countOpenTasks({ db, runId })).toEqual({ queued: 0, running: 0 });
  expect(await countOpenTasks({ db })).toEqual({ queued: 1, running: 0 });
  await db.$client.execute({ sql: "UPDATE runs SET canceled_at = 1 WHERE id = ?", args: [other] });
  expect(await countOpenTasks({ db })).toEqual({ queued: 0, running: 0 });
});
