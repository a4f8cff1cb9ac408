// A simulated run recorded the way a runner records it: every step through the real
// Recorder (tool_calls, latency_components, step transcripts) into a real database. The
// transcripts carry the reference's per-turn response dicts (eval_frames_oss.py /
// eval_hle_oss.py call_tool) with the same ms the latency rows hold, so export and report
// can be checked against each other and against the reference's analyze_tool_latency.py.
import type { Db } from "../../db/client";
import { recordRows, type StepTranscript } from "../../db/rows";
import { Recorder, type TaskRecorder } from "../../runner/recorder";

export type SimTask = {
  taskId: number;
  externalId: string;
  finalAttempt: number;
  // what the file must say: null = no file (an infrastructure failure, like a missing id)
  status: "done" | "error" | null;
};

// mulberry32: the same numbers every run
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SCRIPT = ["search", "enhance_reasoning", "search", "answer"] as const;

/**
 * Records `tasks` tasks of a FRAMES or HLE run. Every third task first runs an abandoned
 * attempt (its lease lost after two slow steps), every fifth task's last step ends in a
 * tool error (status "error"), every seventh fails on infrastructure (no file), and some
 * steps have a failed orchestrator call or a query too short to retrieve.
 */
export async function recordSimulatedRun({ db, benchmark, tasks: count, seed = 1 }: { db: Db; benchmark: "frames" | "hle"; tasks: number; seed?: number }): Promise<{ runId: number; tasks: SimTask[] }> {
  const rand = rng(seed);
  const ms = (median: number) => Math.round(median * Math.exp((rand() - 0.5) * 2) * 1000) / 1000;
  const now = Date.now();
  const run = await db.$client.execute({
    sql: "INSERT INTO runs (name, benchmark, config, max_attempts, task_count, created_at) VALUES (?, ?, '{}', 3, ?, ?) RETURNING id",
    args: [`sim-${benchmark}-${seed}`, benchmark, count, now],
  });
  const runId = Number(run.rows[0]!.id);
  const recorder = new Recorder({ recordRows: (rows) => recordRows({ db, rows }).then(() => {}) });
  const out: SimTask[] = [];
  for (let i = 0; i < count; i++) {
    const externalId = `${benchmark}-${i}`;
    const abandoned = i % 3 === 0;
    const finalAttempt = abandoned ? 2 : 1;
    const infra = i % 7 === 6;
    const toolError = !infra && i % 5 === 4;
    const correct = !infra && !toolError && rand() < 0.5;
    const status = infra ? null : toolError ? "error" : "done";
    const input = { id: externalId, question: `What is ${i}? ünïcode`, answer: `a${i}` };
    const result = infra ? null : { status, correct, ...(toolError ? { error_type: "ConnectionError" } : {}) };
    const task = await db.$client.execute({
      sql: `INSERT INTO tasks (run_id, external_id, input, status, attempt, max_attempts, result, correct, error_class, created_at, updated_at, finished_at)
            VALUES (?, ?, ?, ?, ?, 3, ?, ?, ?, ?, ?, ?) RETURNING id`,
      args: [runId, externalId, JSON.stringify(input), infra ? "failed" : "succeeded", finalAttempt, result && JSON.stringify(result), correct ? 1 : 0, infra ? "connection" : null, now, now, now],
    });
    const taskId = Number(task.rows[0]!.id);
    if (abandoned) {
      // slow steps of a lost attempt: counted only with --all-attempts
      const rec = recorder.forTask({ runId, taskId, attempt: 1 });
      for (const step of [0, 1]) recordStep(rec, { benchmark, step, tool: SCRIPT[step], input, ms: (m) => ms(m) * 20, rand, last: false, toolError: false });
    }
    if (!infra) {
      const rec = recorder.forTask({ runId, taskId, attempt: finalAttempt });
      SCRIPT.forEach((tool, step) =>
        recordStep(rec, { benchmark, step, tool, input, ms, rand, last: step === SCRIPT.length - 1, toolError, correct }),
      );
    }
    out.push({ taskId, externalId, finalAttempt, status });
  }
  await recorder.close();
  return { runId, tasks: out };
}

type StepOpts = {
  benchmark: string;
  step: number;
  tool: string;
  input: { id: string; question: string; answer: string };
  ms: (median: number) => number;
  rand: () => number;
  last: boolean;
  toolError: boolean;
  correct?: boolean;
};

function recordStep(rec: TaskRecorder, o: StepOpts): void {
  const { step, input } = o;
  const t0 = 1_700_000_000_000 + step * 1000;
  const orchMs = o.ms(800);
  // one step in nine: the orchestrator call itself failed; no tool ran
  if (!o.last && o.rand() < 1 / 9) {
    rec.component({ step, tool: "orchestrator", component: "orchestrator", ms: orchMs, startedAt: t0, status: "connection", endpoint: "http://127.0.0.1:1/v1" });
    rec.toolCall({ step, tool: "orchestrator", status: "error", errorClass: "connection", startedAt: t0, durationMs: orchMs });
    rec.transcript({ step, tool: null, tool_calls: null, responses: null, llm: [{ component: "orchestrator", request: { messages: [] }, reply: null, error: "connection", ms: orchMs }] });
    return;
  }
  const model = o.tool === "answer" ? "Qwen/Qwen3-32B-FP8" : "Qwen/Qwen2.5-Coder-14B-Instruct";
  const base = { tool: o.tool, model, context_str: `Documents:\nDoc 1: ${"long text ".repeat(400)}`, problem: input.question, id: input.id, eid: input.id };
  let response: Record<string, unknown>;
  const components: [string, number][] = [];
  if (o.tool === "search") {
    const q = o.ms(1500);
    // one search in six wrote a query under 10 characters: no retrieval (_retrieval_ms 0.0)
    const short = o.rand() < 1 / 6;
    const r = short ? 0 : o.ms(300);
    components.push(["query_llm", q]);
    if (!short) components.push(["retrieval", r]);
    response = { ...base, answer: input.answer, _query_llm_ms: q, _retrieval_ms: r, _retrieval_retries: 0, search_results_data: short ? [] : ["Doc about ünïcode", "Doc two"] };
  } else if (o.tool === "enhance_reasoning") {
    const l = o.ms(4000);
    const x = o.ms(200);
    components.push(["expert_llm", l], ["code_exec", x]);
    response = { ...base, _llm_ms: l, _exec_ms: x, generated_code: "print(1)", exec_result: "1\n" };
  } else {
    const e = o.ms(6000);
    const judged = !o.toolError && o.rand() < 0.6;
    const j = judged ? o.ms(3000) : 0;
    components.push(["expert_llm", e]);
    if (judged) components.push(["judge", j]);
    response = { ...base, answer: input.answer, messages: "prompt", _expert_ms: e, ...(judged ? { _judge_ms: j } : {}), response: "<answer>x</answer>", pred: "x", correctness: o.correct ?? false };
    if (o.toolError) Object.assign(response, { tool_error: "ConnectionError()", tool_error_type: "ConnectionError" });
  }
  rec.component({ step, tool: o.tool, component: "orchestrator", ms: orchMs, startedAt: t0, endpoint: "http://127.0.0.1:2/v1" });
  let at = t0 + orchMs;
  for (const [component, v] of components) {
    rec.component({ step, tool: o.tool, component, ms: v, startedAt: Math.round(at), endpoint: "http://127.0.0.1:3/v1" });
    at += v;
  }
  const own = components.reduce((a, [, v]) => a + v, 0);
  rec.toolCall({ step, tool: o.tool, modelAlias: "expert-1", model, status: o.toolError && o.last ? "error" : "ok", startedAt: t0, durationMs: own });
  const toolCalls = [{ name: o.tool, arguments: { model: "expert-1" } }];
  const transcript: StepTranscript = {
    step,
    tool: o.tool,
    tool_calls: toolCalls,
    responses: [response],
    llm: [{ component: "orchestrator", request: { messages: [{ role: "user", content: `Problem: ${input.question}` }] }, reply: { tool_calls: toolCalls }, ms: orchMs }],
  };
  if (o.benchmark === "hle") transcript.message_response = { content: null, tool_calls: [{ tool_name: o.tool, tool_arguments: { model: "expert-1" } }] };
  rec.transcript(transcript);
}
