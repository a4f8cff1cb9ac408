import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, openDb, type Db } from "../../db/client";
import { createRun, getTask, validateTasks } from "../../db/runs";
import { endpoints } from "../../db/schema";
import { DbQueue } from "../../runner/queue-db";

let dir: string;
let db: Db;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-dbq-"));
  db = await openDb({ url: `file:${join(dir, "baton.db")}` });
});
afterEach(() => {
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

test("DbQueue runs the queue operations on the database and reads runs and endpoints", async () => {
  const { run } = await createRun({ db, name: "d", benchmark: "hle", tasks: validateTasks({ rows: [{ id: "a", question: "q" }] }) });
  await db.insert(endpoints).values({ kind: "model", name: "m", baseUrl: "http://127.0.0.1:9", createdAt: 1, updatedAt: 1 });
  const q = new DbQueue(db, { backoff: { baseMs: 1, capMs: 2 } });
  await q.registerRunner({ id: "r", host: "h", pid: 1 });
  const [t] = await q.claim({ runnerId: "r", limit: 5, leaseMs: 60_000 });
  expect(t.externalId).toBe("a");
  expect(await q.fail({ taskId: t.id, leaseToken: t.leaseToken, errorClass: "timeout", retryable: true })).toBe("retry");
  expect((await getTask({ db, taskId: t.id })).status).toBe("queued");
  expect(await q.listEndpoints()).toEqual([{ id: 1, kind: "model", name: "m", baseUrl: "http://127.0.0.1:9", enabled: true, state: "healthy" }]);
  expect(await q.getRun(run.id)).toMatchObject({ id: run.id, name: "d", benchmark: "hle", canceledAt: null });
  expect(await q.getRun(run.id + 1)).toBeNull();
  // the task waits out its backoff: not claimable, still open
  expect(await q.countOpen({ runId: run.id })).toEqual({ queued: 1, running: 0 });
  expect(await q.countOpen({ runId: run.id + 1 })).toEqual({ queued: 0, running: 0 });
});

test("a finishing write sent again after its first copy landed keeps its outcome; another task's token is still refused", async () => {
  await createRun({ db, name: "again", benchmark: "hle", tasks: validateTasks({ rows: [{ id: "a", question: "q" }, { id: "b", question: "q" }, { id: "c", question: "q" }] }) });
  const q = new DbQueue(db, { backoff: { baseMs: 1, capMs: 2 } });
  await q.registerRunner({ id: "r", host: "h", pid: 1 });
  const [a, b, c] = await q.claim({ runnerId: "r", limit: 3, leaseMs: 60_000 });
  expect(await q.complete({ taskId: a.id, leaseToken: a.leaseToken, result: { correct: true } })).toBe(true);
  expect(await q.complete({ taskId: a.id, leaseToken: a.leaseToken, result: { correct: true } })).toBe(true);
  expect(await q.complete({ taskId: b.id, leaseToken: a.leaseToken, result: { correct: true } })).toBe(false);
  expect(await q.fail({ taskId: c.id, leaseToken: c.leaseToken, errorClass: "context_length", retryable: false })).toBe("failed");
  expect(await q.fail({ taskId: c.id, leaseToken: c.leaseToken, errorClass: "context_length", retryable: false })).toBe("failed");
  expect(await q.fail({ taskId: b.id, leaseToken: c.leaseToken, errorClass: "x", retryable: false })).toBe("lost");
  expect((await getTask({ db, taskId: b.id })).status).toBe("running");
});
