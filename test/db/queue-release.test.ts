// Giving a task back (shutdown, job end) or requeueing a failed one never charges an attempt
// and never reuses an attempt number: latency rows are keyed by (task, attempt, step), so the
// next attempt's rows must land beside the earlier attempt's, not be ignored as duplicates.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, openDb, type Db } from "../../db/client";
import { claimTasks, completeTask, failTask, registerRunner, releaseTasks, requeueTasks } from "../../db/queue";
import { recordRows } from "../../db/rows";
import { createRun, validateTasks } from "../../db/runs";

let dir: string;
let db: Db;
let runId: number;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-release-"));
  db = await openDb({ url: `file:${join(dir, "baton.db")}` });
  const rows = ["a", "b"].map((id) => ({ id, question: `q ${id}` }));
  runId = (await createRun({ db, name: "r", benchmark: "frames", maxAttempts: 2, tasks: validateTasks({ rows }) })).run.id;
  await registerRunner({ db, runner: { id: "r1", host: "h", pid: 1 } });
  await registerRunner({ db, runner: { id: "r2", host: "h", pid: 2 } });
});
afterEach(() => {
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

async function rowsOf(sql: string, args: any[] = []): Promise<any[]> {
  return (await db.$client.execute({ sql, args })).rows as any[];
}

function stepRows(taskId: number, attempt: number, ms: number) {
  const base = { runId, taskId, attempt, step: 1, startedAt: Date.now() };
  return {
    toolCalls: [{ ...base, tool: "search", status: "ok", durationMs: ms }],
    components: [{ ...base, tool: "search", component: "retrieval", ms }],
    llmCalls: [{ ...base, tool: "search", role: "query_llm", model: "m", endpoint: "http://127.0.0.1:1", httpAttempt: 1, outcome: "ok", totalMs: ms }],
  };
}

test("a released task keeps its attempt budget, and its next attempt's rows are written beside the first's", async () => {
  const [first] = await claimTasks({ db, runnerId: "r1", limit: 1, leaseMs: 60_000, runId });
  expect(first.attempt).toBe(1);
  await recordRows({ db, rows: stepRows(first.id, first.attempt, 11) });
  expect(await releaseTasks({ db, runnerId: "r1", tokens: [first.leaseToken] })).toBe(1);

  const [task] = await rowsOf("SELECT status, attempt, max_attempts FROM tasks WHERE id = ?", [first.id]);
  expect(task.status).toBe("queued");
  // attempts left are what they were before the claim
  expect(Number(task.max_attempts) - Number(task.attempt)).toBe(2);

  const [second] = (await claimTasks({ db, runnerId: "r2", limit: 2, leaseMs: 60_000, runId })).filter((t) => t.id === first.id);
  expect(second.attempt).toBe(2);
  const written = await recordRows({ db, rows: stepRows(second.id, second.attempt, 22) });
  expect(written.written).toBe(3);
  expect(await completeTask({ db, taskId: second.id, leaseToken: second.leaseToken, result: { prediction: "x", correct: true } })).toBe(true);

  const ms = await rowsOf("SELECT attempt, ms FROM latency_components WHERE task_id = ? ORDER BY attempt", [first.id]);
  expect(ms.map((r) => [Number(r.attempt), Number(r.ms)])).toEqual([[1, 11], [2, 22]]);
  const llm = await rowsOf("SELECT attempt FROM llm_calls WHERE task_id = ? ORDER BY attempt", [first.id]);
  expect(llm.map((r) => Number(r.attempt))).toEqual([1, 2]);
  const history = await rowsOf("SELECT attempt, runner_id, outcome, error_class FROM task_attempts WHERE task_id = ? ORDER BY id", [first.id]);
  expect(history.map((h) => [Number(h.attempt), h.runner_id, h.outcome, h.error_class])).toEqual([
    [1, "r1", "released", null],
    [2, "r2", "succeeded", null],
  ]);
});

test("a requeued failed task gets a fresh budget and new attempt numbers", async () => {
  for (let i = 0; i < 2; i++) {
    const [t] = (await claimTasks({ db, runnerId: "r1", limit: 2, leaseMs: 60_000, runId })).filter((x) => x.externalId === "a");
    const claimedOther = await rowsOf("SELECT id, lease_token FROM tasks WHERE external_id = 'b' AND status = 'running'");
    if (claimedOther.length) await releaseTasks({ db, runnerId: "r1", tokens: [String(claimedOther[0].lease_token)] });
    await recordRows({ db, rows: stepRows(t.id, t.attempt, 10 + i) });
    await failTask({ db, taskId: t.id, leaseToken: t.leaseToken, errorClass: "connection", retryable: true, backoff: { baseMs: 0, capMs: 0 } });
  }
  const [failed] = await rowsOf("SELECT id, status, attempt FROM tasks WHERE external_id = 'a'");
  expect([failed.status, Number(failed.attempt)]).toEqual(["failed", 2]);

  expect(await requeueTasks({ db, runId })).toEqual({ requeued: 1 });
  const [again] = (await claimTasks({ db, runnerId: "r2", limit: 2, leaseMs: 60_000, runId })).filter((x) => x.externalId === "a");
  expect(again.attempt).toBe(3);
  expect(again.maxAttempts).toBe(4);
  expect((await recordRows({ db, rows: stepRows(again.id, again.attempt, 99) })).written).toBe(3);
  const attempts = await rowsOf("SELECT attempt FROM tool_calls WHERE task_id = ? ORDER BY attempt", [failed.id]);
  expect(attempts.map((r) => Number(r.attempt))).toEqual([1, 2, 3]);
});
