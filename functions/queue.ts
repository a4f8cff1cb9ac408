// The queue over HTTP for runners on compute nodes (runner/queue-http.ts). Bodies are
// snake_case like the rest of the API; runner/queue-http.ts renames them back to the
// db/queue.ts types, so both TaskQueue implementations share those. Finishing writes are safe
// to re-send (db/queue-resend.ts): a retry whose first copy landed answers `already`.
import { Elysia } from "elysia";
import * as v from "valibot";
import { countOpenTasks, heartbeatLeases, registerRunner, releaseTasks, setRunnerState, type RunnerInfo } from "../db/queue";
import { completeIdempotent, completeManyIdempotent, failIdempotent } from "../db/queue-resend";
import { camelKeys, snakeKeys } from "../db/keys";
import { claimReadyTasks, listEndpoints, listWaitingRuns } from "../db/endpoints";
import { recordRows, type RowBatch } from "../db/rows";
import type { AppDeps } from "./deps";
import { ApiError, ErrorBody } from "./errors";
import { incompatibility, VERSION } from "../version";

const Id = v.pipe(v.string(), v.minLength(1), v.maxLength(200));
const Token = v.pipe(v.string(), v.minLength(1), v.maxLength(100));
const LeaseMs = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(24 * 3600_000));
const Opt = <T extends v.GenericSchema>(s: T) => v.optional(v.nullable(s));
// Numbers that end up in INTEGER columns or are compared with them: whole, finite, in range.
const Int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  v.pipe(v.number("expected a number"), v.integer("expected an integer"), v.minValue(min, `expected at least ${min}`), v.maxValue(max, `expected at most ${max}`));
const RowId = Int(1);
// epoch ms; durations and latencies are non-negative and finite (REAL columns)
const EpochMs = Int(0);
const Ms = v.pipe(v.number("expected a number"), v.finite("expected a finite number"), v.minValue(0, "expected at least 0"));
// A field a route does not know is refused, naming it: a runner still sending the old
// camelCase names would otherwise have its rows dropped without a word.
const Strict = <E extends v.ObjectEntries>(entries: E) =>
  v.strictObject(entries, (issue) => (issue.expected === "never" ? "unknown field" : "expected a JSON object"));
const Text = (max = 10_000) => v.pipe(v.string("expected a string"), v.maxLength(max, `expected at most ${max} characters`));

export const RunnerInput = Strict({
  id: Id,
  host: v.string(),
  pid: Int(0, 2 ** 31 - 1),
  slurm_job_id: Opt(v.string()),
  slurm_array_job_id: Opt(v.string()),
  slurm_array_task_id: Opt(v.string()),
  run_id: Opt(RowId),
  concurrency: v.optional(Int(1, 100_000)),
  version: Opt(v.string()),
  ends_at: Opt(EpochMs),
});
export type RunnerInput = v.InferOutput<typeof RunnerInput>;

export const RunnerStateInput = Strict({ state: v.picklist(["running", "draining", "stopped", "crashed"]) });
export type RunnerStateInput = v.InferOutput<typeof RunnerStateInput>;

export const ClaimInput = Strict({
  runner_id: Id,
  limit: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1000)),
  lease_ms: LeaseMs,
  run_id: Opt(RowId),
  // skip runs whose models or retrieval have no healthy endpoint (they wait, no attempt spent)
  wait_for_endpoints: v.optional(v.boolean()),
});
export type ClaimInput = v.InferOutput<typeof ClaimInput>;

export const ClaimedTask = v.object({
  id: v.number(),
  run_id: v.number(),
  external_id: v.string(),
  input: v.record(v.string(), v.unknown()),
  attempt: v.number(),
  max_attempts: v.number(),
  lease_token: v.string(),
  lease_expires_at: v.number(),
});
export const Claimed = v.object({ tasks: v.array(ClaimedTask) });
type ClaimedTaskOut = v.InferOutput<typeof ClaimedTask>;
// what the db functions take, less the connection: the wire bodies above, renamed
type ArgsOf<F extends (a: any) => any> = Omit<Parameters<F>[0], "db">;
type ClaimArgs = ArgsOf<typeof claimReadyTasks>;
type HeartbeatArgs = ArgsOf<typeof heartbeatLeases>;
type CompleteArgs = ArgsOf<typeof completeIdempotent>;
type FailArgs = ArgsOf<typeof failIdempotent>;

const Progress = v.looseObject({
  step: v.optional(v.number()),
  tool: Opt(v.string()),
  component: Opt(v.string()),
  endpoint: Opt(v.string()),
  since: Opt(v.number()),
});

export const HeartbeatInput = Strict({
  runner_id: Id,
  tokens: v.pipe(v.array(Token), v.maxLength(10_000)),
  lease_ms: LeaseMs,
  progress: v.optional(v.record(v.string(), Progress)),
});
export type HeartbeatInput = v.InferOutput<typeof HeartbeatInput>;
export const HeartbeatOutput = v.object({ held: v.array(v.string()), lost: v.array(v.string()) });

const Result = v.looseObject({ prediction: Opt(v.string()), correct: Opt(v.boolean()) });

export const CompleteInput = Strict({ task_id: RowId, lease_token: Token, result: Result });
export type CompleteInput = v.InferOutput<typeof CompleteInput>;
export const CompleteOutput = v.object({ ok: v.boolean(), already: v.boolean() });

export const CompleteManyInput = Strict({ items: v.pipe(v.array(CompleteInput), v.minLength(1), v.maxLength(1000)) });
export type CompleteManyInput = v.InferOutput<typeof CompleteManyInput>;
export const CompleteManyOutput = v.object({ results: v.array(CompleteOutput) });

export const FailInput = Strict({
  task_id: RowId,
  lease_token: Token,
  error_class: v.pipe(v.string(), v.minLength(1)),
  error_message: Opt(v.string()),
  retryable: v.boolean(),
  result: Opt(Result),
});
export type FailInput = v.InferOutput<typeof FailInput>;
export const FailOutput = v.object({ outcome: v.picklist(["retry", "failed", "lost"]), already: v.boolean() });

export const ReleaseInput = Strict({ runner_id: Id, tokens: v.pipe(v.array(Token), v.maxLength(10_000)) });
export type ReleaseInput = v.InferOutput<typeof ReleaseInput>;

export const OpenQuery = v.object({
  run_id: v.optional(v.pipe(v.string(), v.regex(/^[1-9][0-9]{0,15}$/, "expected a run id (a positive integer)"), v.transform(Number))),
});
export type OpenQuery = v.InferOutput<typeof OpenQuery>;
export const OpenOutput = v.object({ queued: v.number(), running: v.number() });
export const QueueEndpoints = v.object({
  endpoints: v.array(v.object({ id: v.number(), kind: v.string(), name: v.string(), base_url: v.string(), enabled: v.boolean(), state: v.string() })),
});
export const WaitingOutput = v.object({
  runs: v.array(
    v.object({
      run_id: v.number(),
      run_name: v.string(),
      needs: v.array(v.object({ label: v.string(), kind: v.string(), names: v.array(v.string()), healthy: v.number() })),
    }),
  ),
});

// Latency rows: every numeric field checked here, so a report never meets "fast" or -5 ms.
const StepKey = { run_id: RowId, task_id: RowId, attempt: Int(0), step: Int(0), tool: Text(200) };
const ToolCallRowInput = Strict({
  ...StepKey,
  model_alias: Opt(Text(200)),
  model: Opt(Text(500)),
  status: Text(100),
  error_class: Opt(Text(200)),
  error_message: Opt(Text()),
  started_at: EpochMs,
  duration_ms: Ms,
  detail: Opt(v.record(v.string(), v.unknown())),
});
const ComponentRowInput = Strict({
  ...StepKey,
  component: Text(100),
  model: Opt(Text(500)),
  ms: Ms,
  retries: v.optional(Int(0, 1_000_000)),
  backend: Opt(Text(200)),
  endpoint: Opt(Text(2_000)),
  status: v.optional(Text(100)),
  started_at: EpochMs,
});
const LlmCallRowInput = Strict({
  run_id: Opt(RowId),
  task_id: Opt(RowId),
  attempt: Opt(Int(0)),
  step: Opt(Int(0)),
  tool: Opt(Text(200)),
  role: Text(100),
  model: Text(500),
  endpoint: Text(2_000),
  http_attempt: Int(1, 1_000_000),
  outcome: Text(200),
  http_status: Opt(Int(100, 599)),
  error_message: Opt(Text()),
  ttft_ms: Opt(Ms),
  total_ms: Ms,
  prompt_tokens: Opt(Int(0)),
  completion_tokens: Opt(Int(0)),
  finish_reason: Opt(Text(100)),
  started_at: EpochMs,
});
const Rows = <T extends v.GenericSchema>(row: T) => v.optional(v.pipe(v.array(row), v.maxLength(100_000)));
const Count = v.pipe(v.number(), v.integer(), v.minValue(0));
// A step's transcript, zstd or gzip + base64 (db/rows.ts StepTranscriptRow). 8 MB of base64 holds a
// step of 150 long documents many times over; the recorder sends at most 200 per batch.
const Transcript = Strict({
  task_id: v.pipe(Count, v.minValue(1)),
  attempt: Count,
  step: Count,
  body: v.pipe(
    v.string(),
    v.minLength(1),
    v.maxLength(8_000_000),
    v.base64("expected base64 of the zstd- or gzip-compressed transcript"),
    // the magic bytes (base64 "KLUv" for zstd, "H4s" for gzip): a body that is neither would
    // only fail when read
    v.check((b) => b.startsWith("KLUv") || b.startsWith("H4s"), "expected base64 of zstd or gzip data (it starts with KLUv or H4s)"),
  ),
  created_at: Count,
});
// Every field is optional, so a list would read as {}: refused first.
const NotAList = v.custom<unknown>((x) => !Array.isArray(x), "expected a JSON object, not a list");
export const RowBatchInput = Strict({
  tool_calls: Rows(ToolCallRowInput),
  components: Rows(ComponentRowInput),
  llm_calls: Rows(LlmCallRowInput),
  transcripts: v.optional(v.pipe(v.array(Transcript), v.maxLength(1000))),
});
export type RowBatchInput = v.InferOutput<typeof RowBatchInput>;

const Ok = v.object({ ok: v.boolean() });

const errors = { 400: ErrorBody, 401: ErrorBody };

// The wire is snake_case, db/ is camelCase: bodies are renamed here, one level deep (a task's
// input, a result and a row's detail are data, passed as sent).
const rowsOf = (b: RowBatchInput): RowBatch => ({
  toolCalls: b.tool_calls?.map((r) => camelKeys(r)),
  components: b.components?.map((r) => camelKeys(r)),
  llmCalls: b.llm_calls?.map((r) => camelKeys(r)),
  transcripts: b.transcripts?.map((r) => camelKeys(r)),
}) as RowBatch;

export const queueRoutes = (deps: AppDeps) =>
  new Elysia({ name: "queue", prefix: "/v1/queue" })
    .post(
      "/runners",
      async ({ body }) => {
        const why = body.version == null ? null : incompatibility({ runner: body.version, server: VERSION });
        if (why) throw new ApiError(409, "version.incompatible", why);
        await registerRunner({ db: deps.db, runner: camelKeys<RunnerInfo>(body) });
        return { ok: true };
      },
      {
        body: RunnerInput,
        response: { 200: Ok, ...errors, 409: ErrorBody },
        detail: { summary: "Register a runner process; a runner whose version cannot work with this server's is refused (409 version.incompatible)" },
      },
    )
    .post(
      "/runners/:id/state",
      async ({ params, body }) => {
        await setRunnerState({ db: deps.db, runnerId: params.id, state: body.state });
        return { ok: true };
      },
      { body: RunnerStateInput, response: { 200: Ok, ...errors }, detail: { summary: "Set a runner's state" } },
    )
    .post(
      "/claim",
      async ({ body }) => ({ tasks: (await claimReadyTasks({ db: deps.db, ...camelKeys<ClaimArgs>(body) })).map(snakeKeys) as ClaimedTaskOut[] }),
      { body: ClaimInput, response: { 200: Claimed, ...errors }, detail: { summary: "Claim up to `limit` tasks with a lease" } },
    )
    .post("/heartbeat", ({ body }) => heartbeatLeases({ db: deps.db, ...camelKeys<HeartbeatArgs>(body) }), {
      body: HeartbeatInput,
      response: { 200: HeartbeatOutput, ...errors },
      detail: { summary: "Extend leases; answers which were lost" },
    })
    .post("/complete", ({ body }) => completeIdempotent({ db: deps.db, ...camelKeys<CompleteArgs>(body) }), {
      body: CompleteInput,
      response: { 200: CompleteOutput, ...errors },
      detail: { summary: "Fenced completion; ok=false means the lease was lost and the result discarded" },
    })
    .post("/complete-many", ({ body }) => completeManyIdempotent({ db: deps.db, items: body.items.map((i) => camelKeys<CompleteArgs>(i)) }), {
      body: CompleteManyInput,
      response: { 200: CompleteManyOutput, ...errors },
      detail: { summary: "Fenced completion of many tasks in one statement; results in input order" },
    })
    .post("/fail", ({ body }) => failIdempotent({ db: deps.db, ...camelKeys<FailArgs>(body) }), {
      body: FailInput,
      response: { 200: FailOutput, ...errors },
      detail: { summary: "Fenced failure: retry with backoff or fail for good" },
    })
    .post("/release", async ({ body }) => ({ released: await releaseTasks({ db: deps.db, runnerId: body.runner_id, tokens: body.tokens }) }), {
      body: ReleaseInput,
      response: { 200: v.object({ released: v.number() }), ...errors },
      detail: { summary: "Give leased tasks back without charging an attempt" },
    })
    .get(
      "/endpoints",
      async () => ({
        endpoints: (await listEndpoints({ db: deps.db })).map((e) => ({ id: e.id, kind: e.kind, name: e.name, base_url: e.baseUrl, enabled: e.enabled, state: e.state })),
      }),
      {
        response: { 200: QueueEndpoints, ...errors },
        detail: { summary: "The endpoint registry for runners: full URLs (credentials included) and each endpoint's state" },
      },
    )
    .get(
      "/waiting",
      async ({ query }) => ({ runs: (await listWaitingRuns({ db: deps.db, runId: query.run_id ?? null })).map((r) => ({ run_id: r.runId, run_name: r.runName, needs: r.needs })) }),
      {
        query: OpenQuery,
        response: { 200: WaitingOutput, ...errors },
        detail: { summary: "Open runs that wait for a model or retrieval pool with no healthy endpoint, and what each waits for" },
      },
    )
    .get("/open", ({ query }) => countOpenTasks({ db: deps.db, runId: query.run_id ?? null }), {
      query: OpenQuery,
      response: { 200: OpenOutput, ...errors },
      detail: { summary: "Queued and running tasks of a run (or of every run not canceled): zero means nothing left to do" },
    })
    .post("/rows", ({ body }) => recordRows({ db: deps.db, rows: rowsOf(body as RowBatchInput) }), {
      body: v.pipe(NotAList, RowBatchInput),
      response: { 200: v.object({ written: v.number() }), ...errors },
      detail: { summary: "Record latency rows (tool calls, components, LLM calls) and step transcripts; re-sends are ignored" },
    });
