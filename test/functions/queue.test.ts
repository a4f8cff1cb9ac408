// The queue routes remote runners use, including re-sent finishing writes.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { AUTH, makeApp, tasksOf, type TestApp } from "./_app";

let t: TestApp;
beforeEach(async () => {
  t = await makeApp();
  await t.req("/v1/runs", { method: "POST", headers: AUTH, json: { name: "q", benchmark: "frames", tasks: tasksOf(3), max_attempts: 2 } });
});
afterEach(() => t.close());

const q = (path: string, json: unknown) => t.req(`/v1/queue/${path}`, { method: "POST", headers: AUTH, json });

test("register, claim, heartbeat with progress, complete", async () => {
  expect((await q("runners", { id: "r1", host: "node1", pid: 42, slurm_job_id: "77" }))[0].status).toBe(200);
  const [, claim] = await q("claim", { runner_id: "r1", limit: 2, lease_ms: 60_000 });
  expect(claim.tasks.map((x: any) => x.external_id)).toEqual(["t0", "t1"]);
  const [a, b] = claim.tasks;
  const [, hb] = await q("heartbeat", { runner_id: "r1", tokens: [a.lease_token, b.lease_token, "gone"], lease_ms: 60_000, progress: { [a.lease_token]: { step: 3, tool: "search", component: "retrieval" } } });
  expect(hb.held.sort()).toEqual([a.lease_token, b.lease_token].sort());
  expect(hb.lost).toEqual(["gone"]);
  const [, inflight] = await t.req(`/v1/tasks/${a.id}`, { headers: AUTH });
  expect(inflight.progress).toMatchObject({ step: 3, tool: "search" });
  const [, done] = await q("complete", { task_id: a.id, lease_token: a.lease_token, result: { prediction: "x", correct: true } });
  expect(done).toEqual({ ok: true, already: false });
  const [, rel] = await q("release", { runner_id: "r1", tokens: [b.lease_token] });
  expect(rel.released).toBe(1);
  const [, task] = await t.req(`/v1/tasks/${b.id}`, { headers: AUTH });
  // released without charging an attempt: the budget is raised, the attempt number kept
  expect(task).toMatchObject({ status: "queued", attempt: 1 });
  expect(task.max_attempts - task.attempt).toBe(2);
  expect(task.attempts.map((x: any) => x.outcome)).toEqual(["released"]);
  expect((await q("runners/r1/state", { state: "stopped" }))[0].status).toBe(200);
});

test("a completion re-sent after a lost reply answers ok, and a stale lease answers not ok", async () => {
  const [, claim] = await q("claim", { runner_id: "r1", limit: 1, lease_ms: 60_000 });
  const [task] = claim.tasks;
  const body = { task_id: task.id, lease_token: task.lease_token, result: { prediction: "x", correct: true } };
  expect((await q("complete", body))[1]).toEqual({ ok: true, already: false });
  expect((await q("complete", body))[1]).toEqual({ ok: true, already: true });
  const [, other] = await q("claim", { runner_id: "r2", limit: 1, lease_ms: 60_000 });
  expect((await q("complete", { task_id: other.tasks[0].id, lease_token: "not-a-lease", result: {} }))[1]).toEqual({ ok: false, already: false });
  const [, detail] = await t.req(`/v1/tasks/${task.id}`, { headers: AUTH });
  expect(detail.attempts).toHaveLength(1);
});

test("many completions in one request answer per item, and a re-send is safe", async () => {
  const [, claim] = await q("claim", { runner_id: "r1", limit: 3, lease_ms: 60_000 });
  const items = claim.tasks.map((x: any) => ({ task_id: x.id, lease_token: x.lease_token, result: { prediction: "p", correct: true } }));
  items[2].lease_token = "stale";
  expect((await q("complete-many", { items }))[1].results).toEqual([
    { ok: true, already: false },
    { ok: true, already: false },
    { ok: false, already: false },
  ]);
  expect((await q("complete-many", { items: items.slice(0, 2) }))[1].results).toEqual([
    { ok: true, already: true },
    { ok: true, already: true },
  ]);
  const [res] = await q("complete-many", { items: [] });
  expect(res.status).toBe(400);
});

test("a failure re-sent after a lost reply repeats its outcome", async () => {
  const [, claim] = await q("claim", { runner_id: "r1", limit: 2, lease_ms: 60_000 });
  const [a, b] = claim.tasks;
  const retry = { task_id: a.id, lease_token: a.lease_token, error_class: "endpoint_unreachable", retryable: true };
  expect((await q("fail", retry))[1]).toEqual({ outcome: "retry", already: false });
  expect((await q("fail", retry))[1]).toEqual({ outcome: "retry", already: true });
  const final = { task_id: b.id, lease_token: b.lease_token, error_class: "context_length", error_message: "prompt too long", retryable: false };
  expect((await q("fail", final))[1]).toEqual({ outcome: "failed", already: false });
  expect((await q("fail", final))[1]).toEqual({ outcome: "failed", already: true });
  const [, task] = await t.req(`/v1/tasks/${b.id}`, { headers: AUTH });
  expect(task).toMatchObject({ status: "failed", error_class: "context_length", error_message: "prompt too long" });
});

test("latency rows are recorded once even when the batch is re-sent", async () => {
  const [, claim] = await q("claim", { runner_id: "r1", limit: 1, lease_ms: 60_000 });
  const t0 = claim.tasks[0];
  const batch = {
    tool_calls: [{ run_id: t0.run_id, task_id: t0.id, attempt: 1, step: 1, tool: "search", status: "ok", started_at: 1, duration_ms: 12.5 }],
    components: [{ run_id: t0.run_id, task_id: t0.id, attempt: 1, step: 1, tool: "search", component: "retrieval", ms: 7, started_at: 1 }],
    llm_calls: [{ run_id: t0.run_id, task_id: t0.id, attempt: 1, step: 1, tool: "search", role: "query_llm", model: "m", endpoint: "e", http_attempt: 1, outcome: "ok", total_ms: 5, started_at: 1 }],
  };
  expect((await q("rows", batch))[1]).toEqual({ written: 3 });
  expect((await q("rows", batch))[1]).toEqual({ written: 0 });
  const count = (await t.db.run("SELECT (SELECT count(*) FROM tool_calls) AS a, (SELECT count(*) FROM latency_components) AS b, (SELECT count(*) FROM llm_calls) AS c" as any)) as any;
  expect(count.rows[0]).toEqual({ a: 1, b: 1, c: 1 });
});

test("open tasks: queued and running counts of a run, or of every run; a bad run id is refused", async () => {
  await q("claim", { runner_id: "r1", limit: 1, lease_ms: 60_000 });
  const [res, body] = await t.req("/v1/queue/open?run_id=1", { headers: AUTH });
  expect(res.status).toBe(200);
  expect(body).toEqual({ queued: 2, running: 1 });
  expect((await t.req("/v1/queue/open", { headers: AUTH }))[1]).toEqual({ queued: 2, running: 1 });
  expect((await t.req("/v1/queue/open?run_id=2", { headers: AUTH }))[1]).toEqual({ queued: 0, running: 0 });
  const [bad, err] = await t.req("/v1/queue/open?run_id=abc", { headers: AUTH });
  expect(bad.status).toBe(400);
  expect(err.error.message).toMatch(/run_id/);
});

test("malformed queue requests are refused with the field named", async () => {
  const [res, body] = await q("claim", { runner_id: "r1", limit: 0, lease_ms: 1000 });
  expect(res.status).toBe(400);
  expect(body.error.message).toMatch(/^limit: /);
  const [res2, body2] = await q("complete", { task_id: 1, result: {} });
  expect(res2.status).toBe(400);
  expect(body2.error.message).toMatch(/^lease_token: /);
});

test("a body in the old camelCase names is refused naming the unknown field, so no runner loses rows silently", async () => {
  const [res, body] = await q("claim", { runner_id: "r1", limit: 1, lease_ms: 60_000, runId: 1 });
  expect(res.status).toBe(400);
  expect(body.error.message).toBe("runId: unknown field");
  const [rows, err] = await q("rows", { toolCalls: [] });
  expect(rows.status).toBe(400);
  expect(err.error.message).toBe("toolCalls: unknown field");
});
