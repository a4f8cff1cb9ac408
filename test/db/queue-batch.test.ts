// completeTasks (many fenced completions in one statement) and the claim order.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, openDb, type Db } from "../../db/client";
import { claimTasks, completeTasks, failTask, readDbNow } from "../../db/queue";
import { createRun, getTask, validateTasks } from "../../db/runs";

let dir: string;
let db: Db;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-qbatch-"));
  db = await openDb({ url: `file:${join(dir, "baton.db")}` });
});
afterEach(() => {
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

const seed = (name: string, n: number) =>
  createRun({ db, name, benchmark: "frames", tasks: validateTasks({ rows: Array.from({ length: n }, (_, i) => ({ id: `${name}${i}`, question: "q" })) }) });

test("a batch completion writes the rows whose lease still holds and only those", async () => {
  await seed("a", 4);
  const [t0, t1, t2, t3] = await claimTasks({ db, runnerId: "r", limit: 4, leaseMs: 60_000 });
  await failTask({ db, taskId: t2.id, leaseToken: t2.leaseToken, errorClass: "x", retryable: false });
  const oks = await completeTasks({
    db,
    items: [
      { taskId: t0.id, leaseToken: t0.leaseToken, result: { prediction: "p0", correct: true, steps: 2 } },
      { taskId: t1.id, leaseToken: "stolen", result: { prediction: "bad" } },
      { taskId: t2.id, leaseToken: t2.leaseToken, result: { prediction: "late" } },
      { taskId: t3.id, leaseToken: t3.leaseToken, result: { prediction: "p3", correct: false } },
    ],
  });
  expect(oks).toEqual([true, false, false, true]);
  expect(await getTask({ db, taskId: t0.id })).toMatchObject({ status: "succeeded", prediction: "p0", correct: true, result: { steps: 2 } });
  expect(await getTask({ db, taskId: t1.id })).toMatchObject({ status: "running", prediction: null });
  expect(await getTask({ db, taskId: t2.id })).toMatchObject({ status: "failed", prediction: null });
  expect(await getTask({ db, taskId: t3.id })).toMatchObject({ status: "succeeded", correct: false });
  expect((await getTask({ db, taskId: t3.id })).attempts.map((a) => a.outcome)).toEqual(["succeeded"]);
  expect(await completeTasks({ db, items: [] })).toEqual([]);
});

test("claims take expired leases first, then queued tasks oldest run first", async () => {
  await seed("a", 3);
  await seed("b", 3);
  const [held] = await claimTasks({ db, runnerId: "dead", limit: 1, leaseMs: 100 });
  expect(held.externalId).toBe("a0");
  while ((await readDbNow({ db })) <= held.leaseExpiresAt) await Bun.sleep(10);
  const next = await claimTasks({ db, runnerId: "live", limit: 4, leaseMs: 60_000 });
  expect(next.map((t) => t.externalId)).toEqual(["a0", "a1", "a2", "b0"]);
  expect(next[0].attempt).toBe(2);
}, 20_000);
