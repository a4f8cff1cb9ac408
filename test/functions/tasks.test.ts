import { afterEach, beforeEach, expect, test } from "bun:test";
import { AUTH, makeApp, tasksOf, type TestApp } from "./_app";

let t: TestApp;
beforeEach(async () => {
  t = await makeApp();
});
afterEach(() => t.close());

test("a task shows its input, result and each attempt with its runner", async () => {
  await t.req("/v1/runs", { method: "POST", headers: AUTH, json: { name: "t", benchmark: "hle", tasks: tasksOf(1, { answer_type: "exactMatch" }) } });
  const q = (p: string, json: unknown) => t.req(`/v1/queue/${p}`, { method: "POST", headers: AUTH, json });
  const [, c1] = await q("claim", { runnerId: "r1", limit: 1, leaseMs: 60_000 });
  await q("fail", { taskId: c1.tasks[0].id, leaseToken: c1.tasks[0].leaseToken, errorClass: "timeout", retryable: true });
  await t.db.run("UPDATE tasks SET available_at = 0" as any);
  const [, c2] = await q("claim", { runnerId: "r2", limit: 1, leaseMs: 60_000 });
  await q("complete", { taskId: c2.tasks[0].id, leaseToken: c2.tasks[0].leaseToken, result: { prediction: "a0", correct: true, steps: 4 } });
  const [res, task] = await t.req(`/v1/tasks/${c1.tasks[0].id}`);
  expect(res.status).toBe(200);
  expect(task).toMatchObject({ status: "succeeded", attempt: 2, prediction: "a0", correct: true, result: { steps: 4 } });
  expect(task.input).toMatchObject({ id: "t0", answer_type: "exactMatch" });
  expect(task.attempts.map((a: any) => [a.attempt, a.runner_id, a.outcome, a.error_class])).toEqual([
    [1, "r1", "retry", "timeout"],
    [2, "r2", "succeeded", null],
  ]);
});

test("an unknown or malformed task id is refused", async () => {
  const [res, body] = await t.req("/v1/tasks/12345");
  expect(res.status).toBe(404);
  expect(body.error.message).toContain("12345");
  const [bad, b] = await t.req("/v1/tasks/abc");
  expect(bad.status).toBe(400);
  expect(b.error.message).toMatch(/id/);
});
