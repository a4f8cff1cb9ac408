// Synthetic runs with realistic latency rows, for benchmarks, tests and trying the report
// without GPUs:
//
//   bun bench/gen-latency-rows.ts --db /tmp/bench.db --components 1000000 [--seed 7]
//
// Shapes follow what a real HLE/FRAMES run records: lognormal component latencies, one
// query-LLM replica and one retriever replica that are several times slower than their
// siblings (so "which endpoint is slow?" has a known answer), a few HTTP retries, code
// executions that time out, retrieval that falls back or is unavailable, invalid
// orchestrator steps, tasks that fail on infrastructure and on the model, and tasks never
// started (missing ids).
import { parseArgs } from "node:util";
import type { Client, Transaction } from "@libsql/client";
import { closeDb, openDb, type Db } from "../db/client";
import { createRng } from "../sim/rng";

export const SLOW_QUERY_LLM_ENDPOINT = "http://gpu-b03:8001/v1";
export const SLOW_RETRIEVAL_ENDPOINT = "http://ret-02:8010/retrieve";
export const INFRA_ERROR_CLASS = "endpoint_unreachable";
export const MODEL_ERROR_CLASS = "context_length_exceeded";

export type GenerateRunOptions = {
  db: Db;
  name?: string;
  benchmark?: string;
  // Stop adding tasks once this many latency-component rows exist (or at `tasks`).
  components?: number;
  tasks?: number;
  seed?: number;
  // Multiplies every latency: lets a test make a "slower" second run for compare.
  scale?: number;
  startedAt?: number;
};

export type GeneratedRun = {
  runId: number;
  tasks: number;
  toolCalls: number;
  components: number;
  llmCalls: number;
};

type Rng = () => number;

// Seeded (sim/rng.ts, mulberry32) so a failing test can be replayed.
const makeRng = (seed: number): Rng => createRng(seed);

function lognormal(rng: Rng, median: number, sigma: number): number {
  const u = Math.max(rng(), 1e-12);
  const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
  return median * Math.exp(sigma * z);
}

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[Math.floor(rng() * xs.length)];
}

const MODELS = {
  orchestrator: { model: "nvidia/Orchestrator-8B", endpoints: ["http://gpu-a01:8000/v1", "http://gpu-a02:8000/v1"] },
  query: {
    alias: "search-1",
    model: "openai/gpt-oss-20b",
    endpoints: ["http://gpu-b01:8001/v1", "http://gpu-b02:8001/v1", SLOW_QUERY_LLM_ENDPOINT],
  },
  coder: {
    alias: "reasoner-1",
    model: "Qwen/Qwen2.5-Coder-32B-Instruct",
    endpoints: ["http://gpu-c01:8002/v1", "http://gpu-c02:8002/v1"],
  },
  answer: { alias: "answer-1", model: "Qwen/Qwen3-32B", endpoints: ["http://gpu-d01:8003/v1", "http://gpu-d02:8003/v1"] },
  judge: { model: "openai/gpt-oss-120b", endpoints: ["http://gpu-e01:8004/v1"] },
} as const;
const RETRIEVERS = ["http://ret-01:8010/retrieve", SLOW_RETRIEVAL_ENDPOINT];
const FALLBACK_RETRIEVER = "http://ret-03:8011/retrieve";

const COLS = {
  tool_calls:
    "run_id, task_id, attempt, step, tool, model_alias, model, status, error_class, error_message, started_at, duration_ms",
  latency_components:
    "run_id, task_id, attempt, step, tool, component, model, ms, retries, backend, endpoint, status, started_at",
  llm_calls:
    "run_id, task_id, attempt, step, tool, role, model, endpoint, http_attempt, outcome, http_status, error_message, ttft_ms, total_ms, prompt_tokens, completion_tokens, finish_reason, started_at",
  tasks:
    "id, run_id, external_id, input, status, attempt, max_attempts, available_at, prediction, correct, error_class, error_message, created_at, started_at, finished_at, updated_at",
  task_attempts: "task_id, run_id, attempt, runner_id, lease_token, outcome, error_class, error_message, started_at, ended_at",
} as const;
type Table = keyof typeof COLS;

// Buffers rows per table and writes multi-row INSERTs inside one transaction: ~20x faster
// than one statement per row, and stays under SQLite's bound-variable limit.
class RowWriter {
  private buffers = new Map<Table, unknown[][]>();
  counts: Record<Table, number> = { tool_calls: 0, latency_components: 0, llm_calls: 0, tasks: 0, task_attempts: 0 };
  constructor(private tx: Transaction) {}

  // times are integer ms in the schema; the simulated clock runs in fractional ms
  private timeCols = new Map<Table, number[]>(
    (Object.keys(COLS) as Table[]).map((t) => [t, COLS[t].split(", ").flatMap((c, i) => (/_at$/.test(c) ? [i] : []))]),
  );

  async add(table: Table, row: unknown[]): Promise<void> {
    for (const i of this.timeCols.get(table)!) if (typeof row[i] === "number") row[i] = Math.round(row[i] as number);
    let buf = this.buffers.get(table);
    if (!buf) this.buffers.set(table, (buf = []));
    buf.push(row);
    this.counts[table]++;
    if (buf.length >= 500) await this.flush(table);
  }

  async flush(table?: Table): Promise<void> {
    for (const t of table ? [table] : (Object.keys(COLS) as Table[])) {
      const buf = this.buffers.get(t);
      if (!buf || buf.length === 0) continue;
      const ph = `(${buf[0].map(() => "?").join(",")})`;
      await this.tx.execute({
        sql: `INSERT INTO ${t} (${COLS[t]}) VALUES ${buf.map(() => ph).join(",")}`,
        args: buf.flat() as any[],
      });
      this.buffers.set(t, []);
    }
  }
}

export async function generateRun(opts: GenerateRunOptions): Promise<GeneratedRun> {
  const rng = makeRng(opts.seed ?? 1);
  const scale = opts.scale ?? 1;
  const maxComponents = opts.components ?? Number.POSITIVE_INFINITY;
  const maxTasks = opts.tasks ?? (Number.isFinite(maxComponents) ? Number.MAX_SAFE_INTEGER : 200);
  const client: Client = opts.db.$client;
  const t0 = opts.startedAt ?? Date.now() - 3_600_000;

  const runRes = await client.execute({
    sql: "INSERT INTO runs (name, benchmark, config, max_attempts, task_count, created_at, started_at) VALUES (?, ?, ?, 3, 0, ?, ?) RETURNING id",
    args: [opts.name ?? `synthetic-${opts.seed ?? 1}`, opts.benchmark ?? "frames", JSON.stringify({ synthetic: true, seed: opts.seed ?? 1 }), t0, t0],
  });
  const runId = Number(runRes.rows[0].id);
  const maxIdRes = await client.execute("SELECT coalesce(max(id), 0) AS m FROM tasks");
  let taskId = Number(maxIdRes.rows[0].m);

  const tx = await client.transaction("write");
  // A task's earlier attempts are written before the task row itself (its final state is
  // known only at the end); the foreign key is checked at commit instead.
  await tx.execute("PRAGMA defer_foreign_keys = ON");
  const w = new RowWriter(tx);
  let nTasks = 0;
  try {
    while (nTasks < maxTasks && w.counts.latency_components < maxComponents) {
      nTasks++;
      taskId++;
      const externalId = `q${String(nTasks).padStart(6, "0")}`;
      const roll = rng();
      // 3% never started (missing), 1% in flight, 4% failed on infrastructure after three
      // attempts, 2% failed on the model (prompt too long), the rest succeeded.
      const kind =
        roll < 0.03 ? "queued" : roll < 0.04 ? "running" : roll < 0.08 ? "infra" : roll < 0.1 ? "model" : "ok";
      const attempt = kind === "queued" ? 0 : kind === "infra" ? 3 : 1;
      let clock = t0 + nTasks * 250;
      const taskStart = clock;
      let prediction: string | null = null;
      let correct: number | null = null;
      let errorClass: string | null = null;
      let errorMessage: string | null = null;

      if (kind !== "queued") {
        for (let a = 1; a < attempt; a++)
          await w.add("task_attempts", [taskId, runId, a, "runner-1", `tok-${taskId}-${a}`, "retry", INFRA_ERROR_CLASS, "connection refused", clock, clock + 1000]);
        const nSteps = 1 + Math.floor(-Math.log(Math.max(rng(), 1e-9)) * 3.5);
        let step = 0;
        const addComponent = async (
          tool: string,
          component: string,
          model: string | null,
          ms: number,
          retries: number,
          backend: string | null,
          endpoint: string | null,
          status: string,
        ) => {
          await w.add("latency_components", [runId, taskId, attempt, step, tool, component, model, ms, retries, backend, endpoint, status, clock]);
          clock += ms;
        };
        const llm = async (
          tool: string,
          role: string,
          spec: { model: string; endpoints: readonly string[] },
          median: number,
          sigma: number,
        ): Promise<{ ms: number; retries: number; endpoint: string }> => {
          const endpoint = pick(rng, spec.endpoints);
          const slow = endpoint === SLOW_QUERY_LLM_ENDPOINT ? 3 : 1;
          let total = 0;
          let retries = 0;
          if (rng() < 0.03) {
            // a failed first HTTP attempt, then the retry succeeds
            const failMs = rng() < 0.5 ? 30_000 * scale : lognormal(rng, 40, 0.5) * scale;
            const outcome = failMs >= 30_000 * scale ? "timeout" : "http_503";
            await w.add("llm_calls", [runId, taskId, attempt, step, tool, role, spec.model, endpoint, 1, outcome, outcome === "timeout" ? null : 503, outcome === "timeout" ? "request timed out" : "Service Unavailable", null, failMs, null, null, null, clock]);
            total += failMs;
            retries = 1;
          }
          const ms = lognormal(rng, median, sigma) * slow * scale;
          const ttft = Math.min(ms, lognormal(rng, 120, 0.4) * scale);
          await w.add("llm_calls", [runId, taskId, attempt, step, tool, role, spec.model, endpoint, retries + 1, "ok", 200, null, ttft, ms, Math.floor(2000 + rng() * 18000), Math.floor(50 + rng() * 1500), rng() < 0.01 ? "length" : "stop", clock + total]);
          total += ms;
          return { ms: total, retries, endpoint };
        };

        const failStep = kind === "infra" || kind === "model" ? Math.floor(rng() * nSteps) : -1;
        let lastTool = "";
        for (let s = 0; s < nSteps + (kind === "ok" ? 1 : 0); s++) {
          step++;
          const isAnswer = kind === "ok" && s === nSteps;
          if (!isAnswer && rng() < 0.03) {
            // the orchestrator named a tool that does not exist: recorded, step retried
            const orch = await llm("serach", "orchestrator", MODELS.orchestrator, 900, 0.5);
            const start = clock;
            await addComponent("serach", "orchestrator", MODELS.orchestrator.model, orch.ms, orch.retries, null, orch.endpoint, "ok");
            await w.add("tool_calls", [runId, taskId, attempt, step, "serach", null, null, "invalid", "invalid_tool", "unknown tool 'serach'", start, 0]);
            step++;
          }
          const tool = isAnswer ? "answer" : lastTool === "search" ? (rng() < 0.5 ? "enhance_reasoning" : "search") : rng() < 0.65 ? "search" : "enhance_reasoning";
          lastTool = tool;
          const orch = await llm(tool, "orchestrator", MODELS.orchestrator, 900, 0.5);
          await addComponent(tool, "orchestrator", MODELS.orchestrator.model, orch.ms, orch.retries, null, orch.endpoint, "ok");
          const callStart = clock;
          let callStatus = "ok";
          let callError: string | null = null;
          let alias: string;
          let model: string;
          if (s === failStep) {
            const spec = tool === "search" ? MODELS.query : tool === "answer" ? MODELS.answer : MODELS.coder;
            alias = spec.alias;
            model = spec.model;
            if (kind === "infra") {
              const endpoint = pick(rng, spec.endpoints);
              let ms = 0;
              for (let h = 1; h <= 3; h++) {
                const m = lognormal(rng, 5, 0.3);
                await w.add("llm_calls", [runId, taskId, attempt, step, tool, tool === "search" ? "query_llm" : "expert_llm", model, endpoint, h, "connection_refused", null, "connect ECONNREFUSED", null, m, null, null, null, clock + ms]);
                ms += m + 1000 * h;
              }
              await addComponent(tool, tool === "search" ? "query_llm" : "expert_llm", model, ms, 2, null, endpoint, "error");
              callError = INFRA_ERROR_CLASS;
            } else {
              const endpoint = pick(rng, spec.endpoints);
              const m = lognormal(rng, 20, 0.3);
              await w.add("llm_calls", [runId, taskId, attempt, step, tool, tool === "search" ? "query_llm" : "expert_llm", model, endpoint, 1, "context_length", 400, "This model's maximum context length is 32768 tokens", null, m, null, null, null, clock]);
              await addComponent(tool, tool === "search" ? "query_llm" : "expert_llm", model, m, 0, null, endpoint, "error");
              callError = MODEL_ERROR_CLASS;
            }
            callStatus = "error";
            errorClass = callError;
            errorMessage = callError === INFRA_ERROR_CLASS ? `${model}: connect ECONNREFUSED after 3 attempts` : "prompt longer than the context window";
            await w.add("tool_calls", [runId, taskId, attempt, step, tool, alias, model, callStatus, callError, errorMessage, callStart, clock - callStart]);
            break;
          }
          if (tool === "search") {
            alias = MODELS.query.alias;
            model = MODELS.query.model;
            const q = await llm(tool, "query_llm", MODELS.query, 1500, 0.6);
            await addComponent(tool, "query_llm", model, q.ms, q.retries, null, q.endpoint, "ok");
            const r = rng();
            if (r < 0.005) {
              await addComponent(tool, "retrieval", null, 30_000 * scale + lognormal(rng, 50, 0.3), 3, null, null, "retrieval_unavailable");
              callStatus = "retrieval_unavailable";
            } else if (r < 0.02) {
              await addComponent(tool, "retrieval", null, (5_000 + lognormal(rng, 400, 0.5)) * scale, 3, "retrieval", FALLBACK_RETRIEVER, "fallback");
            } else {
              const endpoint = pick(rng, RETRIEVERS);
              const slow = endpoint === SLOW_RETRIEVAL_ENDPOINT ? 5 : 1;
              const retries = rng() < 0.04 ? 1 + Math.floor(rng() * 2) : 0;
              const timedOut = rng() < 0.003;
              const ms = timedOut ? 60_000 * scale : (lognormal(rng, 250, 0.7) * slow + retries * 1000) * scale;
              await addComponent(tool, "retrieval", null, ms, retries, "wiki_retrieval", endpoint, timedOut ? "timeout" : "ok");
              if (timedOut) callStatus = "retrieval_unavailable";
            }
          } else if (tool === "enhance_reasoning") {
            alias = MODELS.coder.alias;
            model = MODELS.coder.model;
            const e = await llm(tool, "expert_llm", MODELS.coder, 6000, 0.7);
            await addComponent(tool, "expert_llm", model, e.ms, e.retries, null, e.endpoint, "ok");
            const timedOut = rng() < 0.02;
            await addComponent(tool, "code_exec", null, timedOut ? 10_000 : lognormal(rng, 300, 1) * scale, 0, "sandbox", null, timedOut ? "timeout" : "ok");
            if (timedOut) callStatus = "timeout";
          } else {
            alias = MODELS.answer.alias;
            model = MODELS.answer.model;
            const e = await llm(tool, "expert_llm", MODELS.answer, 4000, 0.8);
            await addComponent(tool, "expert_llm", model, e.ms, e.retries, null, e.endpoint, "ok");
            correct = rng() < 0.62 ? 1 : 0;
            prediction = correct ? "the expected answer" : "a different answer";
            if (rng() < 0.5) {
              const j = await llm(tool, "judge", MODELS.judge, 800, 0.4);
              await addComponent(tool, "judge", MODELS.judge.model, j.ms, j.retries, null, j.endpoint, "ok");
            }
          }
          await w.add("tool_calls", [runId, taskId, attempt, step, tool, alias, model, callStatus, callStatus === "ok" ? null : callStatus, null, callStart, clock - callStart]);
        }
      }

      const status = kind === "ok" ? "succeeded" : kind === "infra" || kind === "model" ? "failed" : kind;
      const finished = status === "succeeded" || status === "failed" ? clock : null;
      await w.add("tasks", [
        taskId, runId, externalId,
        JSON.stringify({ question: `Synthetic question ${externalId}?`, answer: "the expected answer" }),
        status, attempt, 3, 0, prediction, correct, errorClass, errorMessage,
        t0, kind === "queued" ? null : taskStart, finished, finished ?? clock,
      ]);
      if (kind !== "queued")
        await w.add("task_attempts", [taskId, runId, attempt, "runner-1", `tok-${taskId}-${attempt}`, status === "running" ? "running" : status, errorClass, errorMessage, clock - 1, finished]);
    }
    // tasks first: the latency rows do not reference them, but a reader of a half-written
    // file should never see rows of tasks that do not exist; one transaction covers both.
    await w.flush("tasks");
    await w.flush();
    await tx.execute({ sql: "UPDATE runs SET task_count = ? WHERE id = ?", args: [nTasks, runId] });
    await tx.commit();
  } catch (err) {
    await tx.rollback().catch(() => {});
    throw err;
  } finally {
    tx.close();
  }
  return {
    runId,
    tasks: nTasks,
    toolCalls: w.counts.tool_calls,
    components: w.counts.latency_components,
    llmCalls: w.counts.llm_calls,
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      db: { type: "string" },
      components: { type: "string", default: "1000000" },
      tasks: { type: "string" },
      seed: { type: "string", default: "7" },
      name: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help || !values.db) {
    console.log("usage: bun bench/gen-latency-rows.ts --db PATH [--components 1000000] [--tasks N] [--seed 7] [--name NAME]");
    process.exit(values.help ? 0 : 2);
  }
  const db = await openDb({ url: values.db });
  const t = performance.now();
  const out = await generateRun({
    db,
    name: values.name,
    components: Number(values.components),
    tasks: values.tasks ? Number(values.tasks) : undefined,
    seed: Number(values.seed),
  });
  // fold the WAL into the file: a reader of a multi-GB WAL pays for it on every page
  await db.$client.execute("PRAGMA wal_checkpoint(TRUNCATE)");
  closeDb(db);
  console.log(JSON.stringify({ ...out, seconds: +((performance.now() - t) / 1000).toFixed(1) }));
}
