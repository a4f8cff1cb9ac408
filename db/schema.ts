// The whole data model. Times are ms since the Unix epoch (integers) everywhere.
// JSON columns hold text; drizzle's `mode: "json"` parses them on read.
import { sql } from "drizzle-orm";
import { blob, index, integer, primaryKey, real, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

// The database clock in ms. Every queue decision uses this, never a runner's clock, so
// skewed compute nodes cannot steal or keep leases.
export const dbNowMs = sql`(cast(unixepoch('subsec') * 1000 as integer))`;

export const TASK_STATUSES = ["queued", "running", "succeeded", "failed", "canceled"] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export const runs = sqliteTable(
  "runs",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    name: text("name").notNull(),
    benchmark: text("benchmark").notNull(),
    // The full resolved configuration (protocol, models, budgets) as submitted + defaults.
    config: text("config", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    maxAttempts: integer("max_attempts").notNull().default(3),
    taskCount: integer("task_count").notNull().default(0),
    idempotencyKey: text("idempotency_key"),
    createdAt: integer("created_at").notNull(),
    // First claim of any of its tasks: the start of the rate/ETA window.
    startedAt: integer("started_at"),
    canceledAt: integer("canceled_at"),
    // Runs as experiments (migration 0012): the run this one re-runs a subset of, the sweep
    // it is one point of (with the values that point sets), K tasks per question, and the
    // claim controls (higher priority first; at most max_concurrency running at once).
    parentRunId: integer("parent_run_id"),
    sweepId: integer("sweep_id"),
    sweepValues: text("sweep_values", { mode: "json" }).$type<Record<string, unknown>>(),
    repeats: integer("repeats").notNull().default(1),
    priority: integer("priority").notNull().default(0),
    maxConcurrency: integer("max_concurrency"),
  },
  (t) => [
    uniqueIndex("runs_idempotency_key_idx").on(t.idempotencyKey),
    index("runs_name_idx").on(t.name),
    index("runs_parent_idx").on(t.parentRunId),
    index("runs_sweep_idx").on(t.sweepId),
  ],
);

export const tasks = sqliteTable(
  "tasks",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    runId: integer("run_id")
      .notNull()
      .references(() => runs.id, { onDelete: "cascade" }),
    // The dataset's own id (unique per run): what "missing ids" are reported in.
    externalId: text("external_id").notNull(),
    // { question, answer, ...every other field of the dataset row }
    input: text("input", { mode: "json" }).$type<TaskInput>().notNull(),
    status: text("status").$type<TaskStatus>().notNull().default("queued"),
    attempt: integer("attempt").notNull().default(0),
    maxAttempts: integer("max_attempts").notNull().default(3),
    availableAt: integer("available_at").notNull().default(0),
    leaseOwner: text("lease_owner"),
    leaseToken: text("lease_token"),
    leaseExpiresAt: integer("lease_expires_at"),
    // { prediction, correct, judge, steps, tokens, ... } written with the fenced completion.
    result: text("result", { mode: "json" }).$type<Record<string, unknown>>(),
    prediction: text("prediction"),
    correct: integer("correct", { mode: "boolean" }),
    errorClass: text("error_class"),
    errorMessage: text("error_message"),
    // Whether the last failure was the infrastructure's (an endpoint down after its retries,
    // a lost lease) rather than the model's or the data's: set by the fenced failure from the
    // runner's own retryable verdict, so "accuracy excluding infrastructure failures" never
    // has to guess from class names. NULL when the task has not failed (or on rows written
    // before the column existed: the views then fall back to the class list).
    errorInfra: integer("error_infra", { mode: "boolean" }),
    // What the holder is doing right now ({ step, tool, component, endpoint, since }),
    // refreshed with each heartbeat: answers "why has this run stopped moving?".
    progress: text("progress", { mode: "json" }).$type<TaskProgress>(),
    createdAt: integer("created_at").notNull(),
    startedAt: integer("started_at"),
    finishedAt: integer("finished_at"),
    updatedAt: integer("updated_at").notNull(),
    // the task of the parent run this one re-runs (derived runs), and which of the run's
    // K attempts at this question it is (0 when the run has no repeats)
    parentTaskId: integer("parent_task_id"),
    repeat: integer("repeat").notNull().default(0),
  },
  (t) => [
    uniqueIndex("tasks_run_external_idx").on(t.runId, t.externalId, t.repeat),
    // partial (migration 0013): only derived runs have a parent task
    index("tasks_parent_idx").on(t.parentTaskId).where(sql`parent_task_id IS NOT NULL`),
    // the claim's lane per run (priority, max_concurrency): migration 0012
    index("tasks_run_queue_idx").on(t.runId, t.availableAt, t.id).where(sql`status = 'queued'`),
    // running tasks only (migration 0010): expired leases for the claim, a runner's leases for
    // its heartbeat (migration 0015 dropped the owner index: one page less per completion)
    index("tasks_lease_idx").on(t.leaseExpiresAt).where(sql`status = 'running'`),
    // finished tasks only (migration 0015): a task enters it once, when it finishes
    index("tasks_run_finished_idx").on(t.runId, t.status, t.finishedAt).where(sql`finished_at IS NOT NULL`),
  ],
);

// One sweep: the base configuration and what it varies; its runs point back with sweep_id.
export const sweeps = sqliteTable("sweeps", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  name: text("name").notNull(),
  benchmark: text("benchmark").notNull(),
  baseConfig: text("base_config", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
  // [{ path, values }] in the order given on the command line
  vary: text("vary", { mode: "json" }).$type<{ path: string; values: unknown[] }[]>().notNull(),
  repeats: integer("repeats").notNull().default(1),
  createdAt: integer("created_at").notNull(),
});

export type TaskProgress = {
  step?: number;
  tool?: string | null;
  component?: string | null;
  endpoint?: string | null;
  // ms since epoch (runner clock) when the current call began
  since?: number | null;
};

export type TaskInput = { question: string; answer?: unknown; [k: string]: unknown };

// One row per claim of a task: who ran which attempt, when, and how it ended.
export const taskAttempts = sqliteTable(
  "task_attempts",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    taskId: integer("task_id")
      .notNull()
      .references(() => tasks.id, { onDelete: "cascade" }),
    runId: integer("run_id").notNull(),
    attempt: integer("attempt").notNull(),
    runnerId: text("runner_id"),
    leaseToken: text("lease_token").notNull(),
    // running | succeeded | failed | retry | released | lost | canceled
    outcome: text("outcome").notNull().default("running"),
    errorClass: text("error_class"),
    errorMessage: text("error_message"),
    startedAt: integer("started_at").notNull(),
    endedAt: integer("ended_at"),
  },
  (t) => [
    uniqueIndex("task_attempts_token_idx").on(t.leaseToken),
    index("task_attempts_task_idx").on(t.taskId, t.attempt),
    index("task_attempts_runner_idx").on(t.runnerId),
  ],
);

// A worker process: where it runs (host, pid, Slurm ids) and when it was last heard from.
export const runners = sqliteTable(
  "runners",
  {
    id: text("id").primaryKey(),
    host: text("host").notNull(),
    pid: integer("pid").notNull(),
    slurmJobId: text("slurm_job_id"),
    slurmArrayJobId: text("slurm_array_job_id"),
    slurmArrayTaskId: text("slurm_array_task_id"),
    runId: integer("run_id"),
    concurrency: integer("concurrency").notNull().default(1),
    // running | draining | stopped | crashed
    state: text("state").notNull().default("running"),
    version: text("version"),
    startedAt: integer("started_at").notNull(),
    lastSeenAt: integer("last_seen_at").notNull(),
    stoppedAt: integer("stopped_at"),
    // Job end time when known (SLURM_JOB_END_TIME or squeue), ms.
    endsAt: integer("ends_at"),
  },
  (t) => [index("runners_last_seen_idx").on(t.lastSeenAt)],
);

// One row per tool call of the orchestration protocol (one per step that ran a tool,
// plus invalid steps with tool = the name the model gave and status = 'invalid').
export const toolCalls = sqliteTable(
  "tool_calls",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    runId: integer("run_id").notNull(),
    taskId: integer("task_id").notNull(),
    attempt: integer("attempt").notNull(),
    step: integer("step").notNull(),
    // search | enhance_reasoning | answer | <invalid name>
    tool: text("tool").notNull(),
    modelAlias: text("model_alias"),
    model: text("model"),
    // ok | error | invalid | retrieval_unavailable | timeout | ...
    status: text("status").notNull(),
    errorClass: text("error_class"),
    errorMessage: text("error_message"),
    startedAt: integer("started_at").notNull(),
    durationMs: real("duration_ms").notNull(),
    // Free-form details (query text, n documents, code exit status, ...) for debugging.
    detail: text("detail", { mode: "json" }).$type<Record<string, unknown>>(),
  },
  (t) => [
    index("tool_calls_run_tool_idx").on(t.runId, t.tool),
    // (task, attempt, step) is the join key to components and LLM attempts; unique so a
    // re-sent batch of rows is ignored instead of counted twice.
    uniqueIndex("tool_calls_step_idx").on(t.taskId, t.attempt, t.step),
  ],
);

// One row per latency component of a tool call: orchestrator, query_llm, retrieval,
// expert_llm, code_exec, judge. ms is wall time of that component including its retries.
export const latencyComponents = sqliteTable(
  "latency_components",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    runId: integer("run_id").notNull(),
    taskId: integer("task_id").notNull(),
    attempt: integer("attempt").notNull(),
    step: integer("step").notNull(),
    tool: text("tool").notNull(),
    component: text("component").notNull(),
    model: text("model"),
    ms: real("ms").notNull(),
    retries: integer("retries").notNull().default(0),
    backend: text("backend"),
    endpoint: text("endpoint"),
    // ok | error | timeout | fallback | retrieval_unavailable | ...
    status: text("status").notNull().default("ok"),
    startedAt: integer("started_at").notNull(),
  },
  (t) => [
    index("latency_components_run_tool_idx").on(t.runId, t.tool, t.component),
    uniqueIndex("latency_components_step_idx").on(t.taskId, t.attempt, t.step, t.component),
  ],
);

// One row per step of a task's attempt, kept whole: what the orchestrator and the tool's
// LLMs were sent and answered, the documents, the code and its output, the grade
// (runner/recorder.ts StepTranscript). body is zstd-compressed JSON (gzip before 2026-12-05); (task_id, attempt, step)
// is the same join key as tool_calls, and a re-sent row is ignored.
export const stepTranscripts = sqliteTable(
  "step_transcripts",
  {
    taskId: integer("task_id").notNull(),
    attempt: integer("attempt").notNull(),
    step: integer("step").notNull(),
    body: blob("body", { mode: "buffer" }).notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.taskId, t.attempt, t.step] })],
);

// One row per HTTP attempt at an LLM (every retry is its own row).
export const llmCalls = sqliteTable(
  "llm_calls",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    runId: integer("run_id"),
    taskId: integer("task_id"),
    // the task's attempt and step (null for calls outside a task, e.g. a health probe)
    attempt: integer("attempt"),
    step: integer("step"),
    tool: text("tool"),
    // orchestrator | query_llm | expert_llm | judge
    role: text("role").notNull(),
    model: text("model").notNull(),
    endpoint: text("endpoint").notNull(),
    // 1 for the first HTTP try of this call, 2 for its first retry, ...
    httpAttempt: integer("http_attempt").notNull(),
    // ok | <error class>
    outcome: text("outcome").notNull(),
    httpStatus: integer("http_status"),
    errorMessage: text("error_message"),
    ttftMs: real("ttft_ms"),
    totalMs: real("total_ms").notNull(),
    promptTokens: integer("prompt_tokens"),
    completionTokens: integer("completion_tokens"),
    finishReason: text("finish_reason"),
    startedAt: integer("started_at").notNull(),
  },
  (t) => [
    index("llm_calls_run_role_idx").on(t.runId, t.role),
    index("llm_calls_endpoint_idx").on(t.endpoint),
    // One call per role in a step (orchestrator, query_llm, expert_llm, judge) and one row
    // per HTTP try of it: unique, so a batch re-sent after a lost reply is ignored instead
    // of counted twice. Rows outside a task (null task_id) never collide: NULLs are distinct.
    uniqueIndex("llm_calls_attempt_key_idx").on(t.taskId, t.attempt, t.step, t.role, t.httpAttempt),
  ],
);

// Where models and retrievers are served. Runners re-read it while running, so a replaced
// node is used without restarting anything.
export const endpoints = sqliteTable(
  "endpoints",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    // model | retrieval
    kind: text("kind").notNull(),
    // the served model name, or the retrieval backend name (retrieval, wiki_retrieval)
    name: text("name").notNull(),
    baseUrl: text("base_url").notNull(),
    enabled: integer("enabled", { mode: "boolean" }).notNull().default(true),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
    // healthy (gets calls) | draining (no new calls) | gone (lease expired: its agent died)
    state: text("state").notNull().default("healthy"),
    // what an endpoint agent launched it as: orchestrator | expert_llm | query_llm | retrieval | judge
    role: text("role"),
    // the deployment file's service name (launch status groups by it)
    service: text("service"),
    // NULL for rows imported from a model config: they never expire
    leaseExpiresAt: integer("lease_expires_at"),
    lastHeartbeatAt: integer("last_heartbeat_at"),
    node: text("node"),
    slurmJobId: text("slurm_job_id"),
    slurmArrayJobId: text("slurm_array_job_id"),
    slurmArrayTaskId: text("slurm_array_task_id"),
  },
  (t) => [
    uniqueIndex("endpoints_name_url_idx").on(t.name, t.baseUrl),
    index("endpoints_kind_idx").on(t.kind, t.enabled),
    index("endpoints_state_idx").on(t.state, t.leaseExpiresAt),
  ],
);
