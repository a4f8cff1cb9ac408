import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { Recorder } from "../../runner/recorder";
import { rowBatchToWire } from "../../runner/queue-http";
import { AUTH, makeApp, tasksOf, type TestApp } from "./_app";

let t: TestApp;
beforeEach(async () => {
  t = await makeApp();
});
afterEach(() => t.close());

test("a task shows its input, result and each attempt with its runner", async () => {
  await t.req("/v1/runs", { method: "POST", headers: AUTH, json: { name: "t", benchmark: "hle", tasks: tasksOf(1, { answer_type: "exactMatch" }) } });
  const q = (p: string, json: unknown) => t.req(`/v1/queue/${p}`, { method: "POST", headers: AUTH, json });
  const [, c1] = await q("claim", { runner_id: "r1", limit: 1, lease_ms: 60_000 });
  await q("fail", { task_id: c1.tasks[0].id, lease_token: c1.tasks[0].lease_token, error_class: "timeout", retryable: true });
  await t.db.run("UPDATE tasks SET available_at = 0" as any);
  const [, c2] = await q("claim", { runner_id: "r2", limit: 1, lease_ms: 60_000 });
  await q("complete", { task_id: c2.tasks[0].id, lease_token: c2.tasks[0].lease_token, result: { prediction: "a0", correct: true, steps: 4 } });
  const [res, task] = await t.req(`/v1/tasks/${c1.tasks[0].id}`, { headers: AUTH });
  expect(res.status).toBe(200);
  expect(task).toMatchObject({ status: "succeeded", attempt: 2, prediction: "a0", correct: true, result: { steps: 4 } });
  expect(task.input).toMatchObject({ id: "t0", answer_type: "exactMatch" });
  expect(task.attempts.map((a: any) => [a.attempt, a.runner_id, a.outcome, a.error_class])).toEqual([
    [1, "r1", "retry", "timeout"],
    [2, "r2", "succeeded", null],
  ]);
});

test("an unknown or malformed task id is refused", async () => {
  const [res, body] = await t.req("/v1/tasks/12345", { headers: AUTH });
  expect(res.status).toBe(404);
  expect(body.error.message).toContain("12345");
  const [bad, b] = await t.req("/v1/tasks/abc", { headers: AUTH });
  expect(bad.status).toBe(400);
  expect(b.error.message).toMatch(/id/);
});

describe("GET /v1/tasks/:id/steps", () => {
  // Two attempts at one task, recorded through the runner's Recorder and POST /v1/queue/rows.
  async function taskWithTwoAttempts() {
    await t.req("/v1/runs", { method: "POST", headers: AUTH, json: { name: "s", benchmark: "frames", tasks: tasksOf(1) } });
    const q = (p: string, json: unknown) => t.req(`/v1/queue/${p}`, { method: "POST", headers: AUTH, json });
    const [, c1] = await q("claim", { runner_id: "r1", limit: 1, lease_ms: 60_000 });
    const { id: taskId, lease_token: leaseToken, run_id: runId } = c1.tasks[0];
    await q("fail", { task_id: taskId, lease_token: leaseToken, error_class: "timeout", retryable: true });
    await t.db.run("UPDATE tasks SET available_at = 0" as any);
    await q("claim", { runner_id: "r2", limit: 1, lease_ms: 60_000 });
    const recorder = new Recorder({
      recordRows: async (rows) => {
        const [res, body] = await q("rows", rowBatchToWire(rows));
        if (res.status !== 200) throw new Error(JSON.stringify(body));
      },
    });
    const first = recorder.forTask({ runId, taskId, attempt: 1 });
    first.transcript(step(0, "search"));
    first.toolCall({ step: 0, tool: "search", status: "error", startedAt: 1, durationMs: 40, errorClass: "timeout" });
    const second = recorder.forTask({ runId, taskId, attempt: 2 });
    for (const [i, tool] of ["search", "answer"].entries()) {
      second.transcript(step(i, tool));
      second.toolCall({ step: i, tool, status: "ok", startedAt: 10 + i, durationMs: 100 + i });
      second.component({ step: i, tool, component: "orchestrator", ms: 5, startedAt: 10 + i, endpoint: "http://o" });
      second.component({ step: i, tool, component: tool === "search" ? "query_llm" : "expert_llm", ms: 50 + i, startedAt: 11 + i, endpoint: "http://e" });
    }
    await recorder.close();
    return taskId as number;
  }

  const step = (i: number, tool: string) => ({
    step: i,
    tool,
    tool_calls: [{ name: tool, arguments: { model: "expert-1" } }],
    responses: [{ tool, [tool === "search" ? "_query_llm_ms" : "_expert_ms"]: 50 + i, context_str: "Doc 1: ".padEnd(20_000, "x") }],
    llm: [{ component: "orchestrator", request: { messages: [{ role: "user", content: "Problem: q" }] }, reply: { tool_calls: [] }, ms: 5 }],
  });

  test("lists every step of every attempt, decompressed, with its tool call and components; the final attempt is marked", async () => {
    const taskId = await taskWithTwoAttempts();
    const [res, body] = await t.req(`/v1/tasks/${taskId}/steps`, { headers: AUTH });
    expect(res.status).toBe(200);
    expect(body.final_attempt).toBe(2);
    expect(body.steps.map((s: any) => [s.attempt, s.step, s.final, s.tool_call?.status])).toEqual([
      [1, 0, false, "error"],
      [2, 0, true, "ok"],
      [2, 1, true, "ok"],
    ]);
    expect(body.steps[2].transcript).toEqual(step(1, "answer"));
    expect(body.steps[2].components.map((c: any) => [c.component, c.ms, c.endpoint, c.status])).toEqual([
      ["orchestrator", 5, "http://o", "ok"],
      ["expert_llm", 51, "http://e", "ok"],
    ]);
  });

  test("?attempt=N gives one attempt; a bad attempt is a 400 naming it; an unknown task is a 404", async () => {
    const taskId = await taskWithTwoAttempts();
    const [, one] = await t.req(`/v1/tasks/${taskId}/steps?attempt=1`, { headers: AUTH });
    expect(one.steps.map((s: any) => [s.attempt, s.step, s.final])).toEqual([[1, 0, false]]);
    const [bad, b] = await t.req(`/v1/tasks/${taskId}/steps?attempt=0`, { headers: AUTH });
    expect(bad.status).toBe(400);
    expect(b.error.message).toMatch(/attempt: expected an attempt number/);
    const [missing, m] = await t.req("/v1/tasks/999/steps", { headers: AUTH });
    expect(missing.status).toBe(404);
    expect(m.error.code).toBe("tasks.not_found");
  });

  test("transcript rows compressed with zstd (runners now) and gzip (runners before) are both stored", async () => {
    const row = (step: number, body: Uint8Array) => ({ task_id: 1, attempt: 1, step, body: Buffer.from(body).toString("base64"), created_at: 1 });
    const [res] = await t.req("/v1/queue/rows", {
      method: "POST",
      headers: AUTH,
      json: { transcripts: [row(0, Bun.zstdCompressSync("{}")), row(1, Bun.gzipSync("{}"))] },
    });
    expect(res.status).toBe(200);
    const r = await t.db.$client.execute("SELECT count(*) AS n FROM step_transcripts");
    expect(Number(r.rows[0]!.n)).toBe(2);
  });

  test("a transcript row that is not base64 of zstd or gzip or has a negative step is refused, naming the field, and nothing is written", async () => {
    const good = { task_id: 1, attempt: 1, step: 0, body: Buffer.from(Bun.zstdCompressSync("{}")).toString("base64"), created_at: 1 };
    for (const [bad, field] of [
      [{ ...good, body: "not base64!" }, "body"],
      [{ ...good, body: Buffer.from("{}").toString("base64") }, "zstd or gzip"],
      [{ ...good, step: -1 }, "step"],
    ] as const) {
      const [res, body] = await t.req("/v1/queue/rows", { method: "POST", headers: AUTH, json: { transcripts: [good, bad] } });
      expect(res.status).toBe(400);
      expect(body.error.message).toContain(field);
    }
    const r = await t.db.$client.execute("SELECT count(*) AS n FROM step_transcripts");
    expect(Number(r.rows[0]!.n)).toBe(0);
  });
});
