// The per-run counters (migration 0010) are kept by the statements that change a task's state,
// so they must equal a count over the tasks after every kind of change: claims, fenced
// completions one by one and in batches, retries and final failures, releases, expired
// leases, cancels, requeues, and several processes claiming at once.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { closeDb, openDb, type Db } from "../../db/client";
import {
  cancelRun,
  claimTasks,
  completeTask,
  completeTasks,
  expireExhaustedLeases,
  failTask,
  releaseTasks,
  requeueTasks,
} from "../../db/queue";
import { createRun, getRunSummary, validateTasks } from "../../db/runs";

const WORKER = join(import.meta.dir, "queue-worker.ts");
let dir: string;
let path: string;
let db: Db;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-run-counts-"));
  path = join(dir, "baton.db");
  db = await openDb({ url: `file:${path}` });
});
afterEach(() => {
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

const tasks = (n: number, prefix = "t") => validateTasks({ rows: Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, question: `q${i}` })) });

/** Counters and the counts they stand for, read from a second connection (what is committed). */
function countersAndTruth(runId: number) {
  const other = new Database(path, { readonly: true });
  try {
    const counters = other.query("SELECT queued, running, succeeded, failed, canceled, correct FROM run_counts WHERE run_id = ?").get(runId);
    const truth = other
      .query(
        `SELECT sum(status = 'queued') AS queued, sum(status = 'running') AS running, sum(status = 'succeeded') AS succeeded,
           sum(status = 'failed') AS failed, sum(status = 'canceled') AS canceled, sum(status = 'succeeded' AND correct IS 1) AS correct
         FROM tasks WHERE run_id = ?`,
      )
      .get(runId) as Record<string, number | null>;
    for (const k of Object.keys(truth)) truth[k] = truth[k] ?? 0;
    return { counters, truth };
  } finally {
    other.close();
  }
}

function expectCountersExact(runId: number) {
  const { counters, truth } = countersAndTruth(runId);
  expect(counters).toEqual(truth);
}

describe("per-run counters", () => {
  test("equal a count over the tasks after every kind of state change", async () => {
    const { run } = await createRun({ db, name: "c", benchmark: "frames", tasks: tasks(40) });
    const other = await createRun({ db, name: "other", benchmark: "frames", tasks: tasks(5, "o") });
    expectCountersExact(run.id);

    const claimed = await claimTasks({ db, runnerId: "r1", limit: 30, leaseMs: 60_000, runId: run.id });
    expectCountersExact(run.id);
    await completeTask({ db, taskId: claimed[0].id, leaseToken: claimed[0].leaseToken, result: { prediction: "a", correct: true } });
    await completeTask({ db, taskId: claimed[1].id, leaseToken: claimed[1].leaseToken, result: { prediction: "b", correct: false } });
    // a fenced write that lost its lease changes nothing
    await completeTask({ db, taskId: claimed[1].id, leaseToken: claimed[1].leaseToken, result: { correct: true } });
    await completeTasks({ db, items: claimed.slice(2, 8).map((t, i) => ({ taskId: t.id, leaseToken: t.leaseToken, result: { correct: i % 2 === 0 } })) });
    expectCountersExact(run.id);

    await failTask({ db, taskId: claimed[8].id, leaseToken: claimed[8].leaseToken, errorClass: "timeout", retryable: true, backoff: { baseMs: 0, capMs: 0 } });
    await failTask({ db, taskId: claimed[9].id, leaseToken: claimed[9].leaseToken, errorClass: "bad_answer", retryable: false });
    await releaseTasks({ db, runnerId: "r1", tokens: claimed.slice(10, 14).map((t) => t.leaseToken) });
    expectCountersExact(run.id);

    // leases that expired: reclaimed by another runner, or failed on the last attempt
    await db.run(sql`UPDATE tasks SET lease_expires_at = 0 WHERE id IN (${sql.join(claimed.slice(14, 20).map((t) => t.id), sql`, `)})`);
    await db.run(sql`UPDATE tasks SET max_attempts = attempt WHERE id IN (${sql.join(claimed.slice(14, 17).map((t) => t.id), sql`, `)})`);
    expect(await expireExhaustedLeases({ db, runId: run.id })).toBe(3);
    await claimTasks({ db, runnerId: "r2", limit: 5, leaseMs: 60_000, runId: run.id });
    expectCountersExact(run.id);

    await requeueTasks({ db, runId: run.id });
    expectCountersExact(run.id);
    await cancelRun({ db, runId: run.id });
    expectCountersExact(run.id);
    await requeueTasks({ db, runId: run.id, statuses: ["failed", "canceled"] });
    expectCountersExact(run.id);

    // the other run was never touched
    expect(countersAndTruth(other.run.id).counters).toEqual({ queued: 5, running: 0, succeeded: 0, failed: 0, canceled: 0, correct: 0 });
    // deleting a run's tasks (as a cascade would) takes them out of the counters too
    await db.run(sql`DELETE FROM tasks WHERE run_id = ${other.run.id} AND external_id IN ('o0', 'o1')`);
    expectCountersExact(other.run.id);
  });

  test("a submit counts its tasks once (chunks, repeats); rows inserted finished are counted by the trigger", async () => {
    // more than one insert chunk (5,000 rows), with repeats, beside another run
    const { run } = await createRun({ db, name: "big", benchmark: "frames", tasks: tasks(2_600), links: { repeats: 2 } });
    const small = await createRun({ db, name: "small", benchmark: "frames", tasks: tasks(3, "s") });
    expect(run.taskCount).toBe(5_200);
    expectCountersExact(run.id);
    expectCountersExact(small.run.id);
    expect(countersAndTruth(run.id).counters).toMatchObject({ queued: 5_200 });
    // an import or a fixture inserting finished tasks directly (migration 0013 keeps that trigger)
    const now = Date.now();
    for (const [status, correct] of [["succeeded", 1], ["succeeded", 0], ["failed", null], ["queued", null]] as const)
      await db.$client.execute({
        sql: "INSERT INTO tasks (run_id, external_id, input, status, correct, created_at, updated_at) VALUES (?, ?, '{}', ?, ?, ?, ?)",
        args: [small.run.id, `x-${status}-${correct}`, status, correct, now, now],
      });
    const { counters } = countersAndTruth(small.run.id);
    // only a queued row inserted outside createRun is not counted: createRun is the one place that does
    expect(counters).toEqual({ queued: 3, running: 0, succeeded: 2, failed: 1, canceled: 0, correct: 1 });
  });

  test("the summary reads the counters and the rate, the same as counting the tasks", async () => {
    const { run } = await createRun({ db, name: "s", benchmark: "frames", tasks: tasks(12) });
    const claimed = await claimTasks({ db, runnerId: "r1", limit: 8, leaseMs: 60_000 });
    await completeTasks({ db, items: claimed.slice(0, 5).map((t, i) => ({ taskId: t.id, leaseToken: t.leaseToken, result: { correct: i < 3 } })) });
    await failTask({ db, taskId: claimed[5].id, leaseToken: claimed[5].leaseToken, errorClass: "bad_answer", retryable: false });
    const s = await getRunSummary({ db, ref: run.id });
    expect(s.counts).toEqual({ queued: 4, running: 2, succeeded: 5, failed: 1, canceled: 0 });
    expect(s.correct).toBe(3);
    expect(s.finished).toBe(6);
    expect(s.rate_per_min).toBeGreaterThan(0);
    expect(s.eta_ms).toBeGreaterThan(0);
  });

  test("stay exact while four processes claim and complete the same run", async () => {
    const { run } = await createRun({ db, name: "p", benchmark: "frames", tasks: tasks(600) });
    const url = `file:${path}`;
    const workers = [0, 1, 2, 3].map((i) =>
      Bun.spawn([process.execPath, WORKER, url, `w${i}`, join(dir, `w${i}.log`), "--batch", "8", "--no-log", ...(i % 2 ? ["--complete-many"] : [])], {
        stdout: "pipe",
        stderr: "inherit",
      }),
    );
    const codes = await Promise.all(workers.map((w) => w.exited));
    expect(codes).toEqual([0, 0, 0, 0]);
    expectCountersExact(run.id);
    expect(countersAndTruth(run.id).counters).toMatchObject({ queued: 0, running: 0, succeeded: 600 });
  }, 60_000);
});
