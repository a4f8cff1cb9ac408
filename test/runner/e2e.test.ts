// End to end over HTTP: the Baton server, the simulated vLLM/retrieval cluster, and a runner
// talking to the server through HttpQueue. Runs of >= 200 tasks must end with every task
// succeeded or failed with a class, and every succeeded task must have its rows.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { normalizeAnswer } from "../../runner/grading";
import { HttpQueue } from "../../runner/queue-http";
import { Runner } from "../../runner/runner";
import { q, readJsonl, simRunConfig, startWorld, submitRun, synthHle, waitFor, type Row, type World } from "./_harness";

const frames: Row[] = readJsonl("data/frames-sample.jsonl").slice(0, 200);
const hle: Row[] = synthHle(200);

let world: World;

beforeAll(async () => {
  world = await startWorld({ rows: [...frames, ...hle] });
});

afterAll(async () => {
  await world?.close();
});

async function runToEnd(runId: number): Promise<string[]> {
  const lines: string[] = [];
  if (process.env.E2E_DEBUG) lines.push = ((...l: string[]) => (console.log(...l), 0)) as any;
  const runner = new Runner({
    queue: new HttpQueue({ baseUrl: world.server.url, token: "test-token" }),
    concurrency: 16,
    runId,
    leaseMs: 10_000,
    pollMs: 20,
    // exits when nothing is queued or running: retries in backoff are waited for
    exitWhenIdle: true,
    log: (l) => lines.push(l),
  });
  await runner.run();
  return lines;
}

async function checkRun(runId: number, n: number) {
  const statuses = await q(world.db, "SELECT status, error_class, count(*) AS n FROM tasks WHERE run_id = ? GROUP BY 1, 2", [runId]);
  const total = statuses.reduce((s, r: any) => s + Number(r.n), 0);
  expect(total).toBe(n);
  for (const r of statuses as any[]) {
    expect(["succeeded", "failed"]).toContain(r.status);
    if (r.status === "failed") expect(r.error_class).toBeTruthy();
  }
  const succeeded = (statuses as any[]).filter((r) => r.status === "succeeded").reduce((s, r) => s + Number(r.n), 0);
  expect(succeeded).toBeGreaterThan(n * 0.8);
  // Each succeeded task has its tool calls, a component per tool call, and LLM attempts,
  // all under the attempt that succeeded.
  const missing = await q(
    world.db,
    `SELECT t.id,
       (SELECT count(*) FROM tool_calls c WHERE c.task_id = t.id AND c.attempt = t.attempt) AS calls,
       (SELECT count(*) FROM latency_components l WHERE l.task_id = t.id AND l.attempt = t.attempt AND l.component = 'orchestrator') AS orch,
       (SELECT count(*) FROM llm_calls m WHERE m.task_id = t.id AND m.attempt = t.attempt) AS llm,
       (SELECT count(*) FROM tool_calls c WHERE c.task_id = t.id AND c.attempt = t.attempt AND c.tool = 'answer' AND c.status IN ('ok', 'judge_error')) AS answers
     FROM tasks t WHERE t.run_id = ? AND t.status = 'succeeded'`,
    [runId],
  );
  for (const m of missing as any[]) {
    expect(Number(m.calls)).toBeGreaterThan(0);
    // one orchestrator component per step, and a step is a tool call row
    expect(Number(m.orch)).toBe(Number(m.calls));
    expect(Number(m.llm)).toBeGreaterThanOrEqual(Number(m.calls));
  }
  // An answered task has exactly one graded answer row.
  const answered = await q(world.db, "SELECT id, attempt, result FROM tasks WHERE run_id = ? AND status = 'succeeded'", [runId]);
  for (const t of answered as any[]) {
    const result = JSON.parse(t.result);
    if (result.stop_reason === "answered") {
      const rows = await q(world.db, "SELECT count(*) AS n FROM tool_calls WHERE task_id = ? AND attempt = ? AND tool = 'answer' AND status IN ('ok','judge_error')", [t.id, t.attempt]);
      expect(Number((rows[0] as any).n)).toBe(1);
    }
  }
  // Search steps leave query_llm and retrieval components.
  const searchParts = await q(
    world.db,
    `SELECT count(*) AS n FROM tool_calls c WHERE c.run_id = ? AND c.tool = 'search' AND c.status <> 'invalid'
       AND (SELECT count(*) FROM latency_components l WHERE l.task_id = c.task_id AND l.attempt = c.attempt AND l.step = c.step AND l.component IN ('query_llm','retrieval')) <> 2`,
    [runId],
  );
  expect(Number((searchParts[0] as any).n)).toBe(0);
}

describe("end to end over HTTP with the simulators", () => {
  test(
    "a FRAMES run of 200 tasks finishes with every task succeeded or failed with a class, and the rows add up",
    async () => {
      const runId = await submitRun(world, { name: "frames-e2e", benchmark: "frames", rows: frames, config: simRunConfig() });
      const lines = await runToEnd(runId);
      await checkRun(runId, frames.length);
      // The simulator replies either the gold answer or another question's answer, so the
      // grade must agree with a plain comparison, and both outcomes must occur.
      const graded = (await q(world.db, "SELECT prediction, correct, json_extract(input, '$.answer') AS gold FROM tasks WHERE run_id = ? AND status = 'succeeded' AND prediction IS NOT NULL", [runId])) as any[];
      for (const t of graded) expect(Boolean(t.correct)).toBe(normalizeAnswer(t.prediction) === normalizeAnswer(t.gold));
      expect(graded.some((t) => t.correct === 1)).toBe(true);
      expect(graded.some((t) => t.correct === 0)).toBe(true);
      expect(lines.some((l) => l.includes("succeeded in"))).toBe(true);
    },
    120_000,
  );

  test(
    "an HLE-style run of 200 tasks finishes the same way",
    async () => {
      const runId = await submitRun(world, { name: "hle-e2e", benchmark: "hle", rows: hle, config: simRunConfig() });
      await runToEnd(runId);
      await checkRun(runId, hle.length);
      const canary = await q(world.db, "SELECT input FROM tasks WHERE run_id = ? LIMIT 1", [runId]);
      expect(JSON.parse((canary[0] as any).input).canary).toContain("canary GUID");
    },
    120_000,
  );

  test(
    "with 30% invalid orchestrator replies a run still mostly succeeds: each invalid reply is fed back, recorded, and only a run of them fails a task",
    async () => {
      const orchestrators = world.cluster.replicas.filter((r) => r.kind === "orchestrator").map((r) => r.sim as any);
      for (const s of orchestrators) s.update({ invalidToolCallRate: 0.3 });
      const rows = frames.slice(0, 80);
      try {
        const runId = await submitRun(world, { name: "frames-invalid", benchmark: "frames", rows, config: simRunConfig({ maxRounds: 20 }) });
        await runToEnd(runId);
        await checkRun(runId, rows.length);
      } finally {
        for (const s of orchestrators) s.update({ invalidToolCallRate: 0 });
      }
      const runId = Number((await q(world.db, "SELECT id FROM runs WHERE name = 'frames-invalid'"))[0]!.id);
      const calls = (await q(
        world.db,
        `SELECT t.id, t.status, t.error_class, c.status AS call_status, c.detail FROM tasks t
           JOIN tool_calls c ON c.task_id = t.id AND c.attempt = t.attempt WHERE t.run_id = ? ORDER BY t.id, c.step`,
        [runId],
      )) as any[];
      const tasks = new Map<number, { status: string; errorClass: string | null; run: number; longest: number; trailing: number; invalid: number }>();
      for (const c of calls) {
        const t = tasks.get(c.id) ?? { status: c.status, errorClass: c.error_class, run: 0, longest: 0, trailing: 0, invalid: 0 };
        t.run = c.call_status === "invalid" ? t.run + 1 : 0;
        t.longest = Math.max(t.longest, t.run);
        t.trailing = t.run;
        if (c.call_status === "invalid") {
          t.invalid++;
          // the raw reply is kept
          expect(JSON.parse(c.detail).toolCalls.length).toBeGreaterThan(0);
        }
        tasks.set(c.id, t);
      }
      const all = [...tasks.values()];
      expect(all.reduce((a, t) => a + t.invalid, 0)).toBeGreaterThan(rows.length * 0.3);
      const recovered = all.filter((t) => t.invalid > 0 && t.status === "succeeded");
      expect(recovered.length).toBeGreaterThan(rows.length * 0.3);
      for (const t of all) {
        // the default maxInvalidSteps is 5: six in a row fail the task, fewer never do
        if (t.errorClass === "orchestrator_unparsable") expect([t.longest, t.trailing]).toEqual([6, 6]);
        else expect(t.longest).toBeLessThanOrEqual(5);
      }
    },
    120_000,
  );
});
