// A lease that runs out is claimed again, and the old holder can no longer finish the task.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, openDb, type Db } from "../../db/client";
import { claimTasks, completeTask, failTask, heartbeatLeases, readDbNow } from "../../db/queue";
import { createRun, getTask, validateTasks } from "../../db/runs";

let dir: string;
let db: Db;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-fence-"));
  db = await openDb({ url: `file:${join(dir, "baton.db")}` });
  await createRun({ db, name: "f", benchmark: "frames", tasks: validateTasks({ rows: [{ id: "only", question: "q" }] }) });
});
afterEach(() => {
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

async function waitForDbTime(at: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await readDbNow({ db })) <= at) {
    if (Date.now() > deadline) throw new Error("database clock did not pass the lease");
    await Bun.sleep(10);
  }
}

test("an expired lease is claimed again and the old holder's completion is rejected", async () => {
  const [a] = await claimTasks({ db, runnerId: "A", limit: 1, leaseMs: 150 });
  expect(a.attempt).toBe(1);
  // while the lease holds, nobody else gets the task
  expect(await claimTasks({ db, runnerId: "B", limit: 1, leaseMs: 60_000 })).toHaveLength(0);

  await waitForDbTime(a.leaseExpiresAt);
  const [b] = await claimTasks({ db, runnerId: "B", limit: 1, leaseMs: 60_000 });
  expect(b.id).toBe(a.id);
  expect(b.attempt).toBe(2);
  expect(b.leaseToken).not.toBe(a.leaseToken);

  // A wakes up: its heartbeat reports the loss, its finishing writes change nothing
  expect(await heartbeatLeases({ db, runnerId: "A", tokens: [a.leaseToken], leaseMs: 60_000 })).toEqual({ held: [], lost: [a.leaseToken] });
  expect(await completeTask({ db, taskId: a.id, leaseToken: a.leaseToken, result: { prediction: "from A", correct: false } })).toBe(false);
  expect(await failTask({ db, taskId: a.id, leaseToken: a.leaseToken, errorClass: "x", retryable: true })).toBe("lost");
  const mid = await getTask({ db, taskId: a.id });
  expect(mid).toMatchObject({ status: "running", lease_owner: "B", prediction: null });

  expect(await completeTask({ db, taskId: b.id, leaseToken: b.leaseToken, result: { prediction: "from B", correct: true } })).toBe(true);
  const done = await getTask({ db, taskId: a.id });
  expect(done).toMatchObject({ status: "succeeded", prediction: "from B", correct: true });
  expect(done.attempts.map((x) => [x.attempt, x.runner_id, x.outcome])).toEqual([
    [1, "A", "expired"],
    [2, "B", "succeeded"],
  ]);
}, 20_000);

test("a heartbeat keeps a lease alive past its original expiry", async () => {
  const [a] = await claimTasks({ db, runnerId: "A", limit: 1, leaseMs: 300 });
  expect((await heartbeatLeases({ db, runnerId: "A", tokens: [a.leaseToken], leaseMs: 60_000 })).held).toEqual([a.leaseToken]);
  await waitForDbTime(a.leaseExpiresAt);
  expect(await claimTasks({ db, runnerId: "B", limit: 1, leaseMs: 60_000 })).toHaveLength(0);
  expect(await completeTask({ db, taskId: a.id, leaseToken: a.leaseToken, result: { prediction: "A" } })).toBe(true);
}, 20_000);
