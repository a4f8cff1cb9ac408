// Runs: submit (JSON or JSONL), list, summary, task pages, cancel, requeue.
import { Elysia } from "elysia";
import * as v from "valibot";
import { cancelRun, requeueTasks } from "../db/queue";
import {
  Benchmark,
  createRun,
  findRun,
  getRunSummary,
  listRuns,
  MAX_ATTEMPTS_LIMIT,
  MAX_REPEATS,
  RunName,
  TASK_PAGE_MAX,
  validateJsonlTasks,
  validateTasks,
} from "../db/runs";
import { formatConfigIssues, readConfigDocument, writeConfigDocument } from "../db/config-wire";
import { MAX_PRIORITY } from "../db/experiments";
import { TASK_STATUSES } from "../db/schema";
import { listTaskPage } from "../db/task-list";
import { checkJsonValue, readBodyText } from "./body";
import type { AppDeps } from "./deps";
import { ApiError, ErrorBody } from "./errors";

const MaxAttempts = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_ATTEMPTS_LIMIT));

// The run configuration document, snake_case like every other field (README "Configuration").
export const ConfigDocument = v.pipe(
  v.record(v.string(), v.unknown()),
  v.description("run configuration, snake_case (max_rounds, orchestrator.max_tokens, tool_models, …); omitted settings take the profile's defaults"),
);

/**
 * A submitted configuration in the code's spelling; a camelCase field is a 400 naming it and
 * its snake_case spelling (`config.maxRounds: unknown field, did you mean max_rounds?`).
 */
export function readConfigInput<T>(document: T, where = "config"): T {
  if (document == null) return document;
  const read = readConfigDocument({ document, where });
  if (!read.ok) throw new ApiError(400, "runs.invalid_config", formatConfigIssues(read.issues));
  return read.config;
}

export const RunInput = v.object({
  name: RunName,
  benchmark: Benchmark,
  config: v.optional(v.nullable(ConfigDocument)),
  // Each row is checked by validateTasks so errors name tasks[i] and the field.
  tasks: v.array(v.unknown()),
  max_attempts: v.optional(MaxAttempts),
  // runs as experiments (db/experiments.ts): K tasks per question, and the claim controls
  repeats: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_REPEATS))),
  priority: v.optional(v.pipe(v.number(), v.integer(), v.minValue(-MAX_PRIORITY), v.maxValue(MAX_PRIORITY))),
  max_concurrency: v.optional(v.nullable(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100_000)))),
});
export type RunInput = v.InferOutput<typeof RunInput>;

export const RunCreated = v.object({ id: v.number(), name: v.string(), tasks: v.number(), created: v.boolean() });
export type RunCreated = v.InferOutput<typeof RunCreated>;

const StatusCounts = v.object(Object.fromEntries(TASK_STATUSES.map((s) => [s, v.number()])) as Record<
  (typeof TASK_STATUSES)[number],
  v.NumberSchema<undefined>
>);

// One meaning per number, in the API, the CLI and the page alike:
//   finished = succeeded + failed; not_finished = queued + running;
//   missing = failed + canceled (terminal and not succeeded);
//   accuracy = correct / finished; score = correct / all tasks;
//   score_excluding_infra = correct / (all tasks - infra_failed).
export const RunListItem = v.object({
  id: v.number(),
  name: v.string(),
  benchmark: v.string(),
  task_count: v.number(),
  max_attempts: v.number(),
  created_at: v.number(),
  started_at: v.nullable(v.number()),
  canceled_at: v.nullable(v.number()),
  counts: StatusCounts,
  done: v.boolean(),
  correct: v.number(),
  finished: v.number(),
  not_finished: v.number(),
  missing: v.number(),
  infra_failed: v.number(),
  accuracy: v.nullable(v.number()),
  score: v.nullable(v.number()),
  score_excluding_infra: v.nullable(v.number()),
  rate_per_min: v.nullable(v.number()),
  eta_ms: v.nullable(v.number()),
});
export const RunList = v.object({ runs: v.array(RunListItem), next_cursor: v.nullable(v.number()) });
export type RunList = v.InferOutput<typeof RunList>;

export const RunSummary = v.object({
  ...RunListItem.entries,
  // the resolved configuration, snake_case as submitted (the profile's defaults filled in)
  config: v.pipe(v.record(v.string(), v.unknown()), v.description("the resolved run configuration, snake_case")),
  now: v.number(),
});
export type RunSummary = v.InferOutput<typeof RunSummary>;

export const RUN_PAGE_MAX = 200;

export const TaskListItem = v.object({
  id: v.number(),
  external_id: v.string(),
  status: v.picklist(TASK_STATUSES),
  attempt: v.number(),
  max_attempts: v.number(),
  prediction: v.nullable(v.string()),
  correct: v.nullable(v.boolean()),
  error_class: v.nullable(v.string()),
  error_message: v.nullable(v.string()),
  lease_owner: v.nullable(v.string()),
  started_at: v.nullable(v.number()),
  finished_at: v.nullable(v.number()),
  updated_at: v.number(),
});
// A row of the task table: the task plus what the filters look at.
export const TaskPageItem = v.object({
  ...TaskListItem.entries,
  question: v.nullable(v.string()),
  steps: v.number(),
  tools: v.array(v.string()),
  duration_ms: v.nullable(v.number()),
});
export const TaskPage = v.object({ run_id: v.number(), tasks: v.array(TaskPageItem), next_cursor: v.nullable(v.number()) });
export type TaskPage = v.InferOutput<typeof TaskPage>;

const IntString = v.pipe(v.string(), v.regex(/^\d+$/, "expected a non-negative integer"), v.transform(Number));
// the issue's path already names the parameter (query.<name>: ...)
const UNKNOWN_PARAMETER = "unknown query parameter";
const Text = (what: string) => v.pipe(v.string(), v.minLength(1, `expected ${what}`), v.maxLength(500, "expected at most 500 characters"));

// Every filter is optional and they combine with AND; an unknown parameter is refused so a
// misspelt filter never silently returns the whole run.
export const TaskPageQuery = v.strictObject(
  {
    status: v.optional(v.picklist(TASK_STATUSES, `expected one of ${TASK_STATUSES.join(", ")}`)),
    correct: v.optional(v.pipe(v.picklist(["true", "false"], "expected true or false"), v.transform((x) => x === "true"))),
    error_class: v.optional(Text("an error class")),
    tool: v.optional(Text("a tool name")),
    q: v.optional(Text("text to find in the question or id")),
    min_steps: v.optional(IntString),
    max_steps: v.optional(IntString),
    min_duration_ms: v.optional(IntString),
    max_duration_ms: v.optional(IntString),
    limit: v.optional(v.pipe(IntString, v.minValue(1), v.maxValue(TASK_PAGE_MAX))),
    cursor: v.optional(IntString),
    offset: v.optional(IntString),
  },
  UNKNOWN_PARAMETER,
);
export type TaskPageQuery = v.InferOutput<typeof TaskPageQuery>;

export const RunPageQuery = v.strictObject(
  {
    limit: v.optional(v.pipe(IntString, v.minValue(1), v.maxValue(RUN_PAGE_MAX))),
    cursor: v.optional(IntString),
  },
  UNKNOWN_PARAMETER,
);

export const RequeueInput = v.object({
  statuses: v.optional(v.pipe(v.array(v.picklist(["failed", "canceled"], "expected failed or canceled")), v.minLength(1, "expected at least one status"))),
  error_class: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(200))),
});
export type RequeueInput = v.InferOutput<typeof RequeueInput>;

export const Canceled = v.object({ id: v.number(), canceled: v.number() });
export const Requeued = v.object({ id: v.number(), requeued: v.number() });

// Every /v1/runs/:id route: the numeric id, or a name only one run has.
export const RunRef = v.object({ id: v.pipe(v.string(), v.minLength(1, "expected a run id or name")) });
export type RunRef = v.InferOutput<typeof RunRef>;

// Default 256 MiB: the full HLE set with its base64 images is well under 100 MiB as JSON,
// and JSON.parse of the body costs a few times its size in memory. BATON_MAX_BODY_MB raises it.
export const DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024;

/**
 * The query string, refusing percent-escapes that are not UTF-8 (URLSearchParams would turn
 * them into U+FFFD and a run name would be stored as something never sent).
 */
export function readQueryStrict(url: string): Record<string, string> {
  const search = new URL(url).search.slice(1);
  const out: Record<string, string> = {};
  for (const part of search ? search.split("&") : []) {
    const eq = part.indexOf("=");
    const [rawKey, rawValue] = eq === -1 ? [part, ""] : [part.slice(0, eq), part.slice(eq + 1)];
    const decode = (s: string, what: string) => {
      try {
        return decodeURIComponent(s.replace(/\+/g, " "));
      } catch {
        throw new ApiError(400, "request.invalid_query", `${what}: the query parameter is not valid percent-encoded UTF-8`);
      }
    };
    const key = decode(rawKey, "query");
    out[key] = decode(rawValue, key);
  }
  return out;
}

/**
 * A JSONL upload (`Content-Type: application/x-ndjson`) becomes the same RunInput as a JSON
 * submit: run fields come from the query string (`config` as a JSON string). Line errors are
 * reported here, by line number.
 */
export async function parseJsonlSubmit(request: Request, maxBodyBytes: number): Promise<unknown> {
  const query = readQueryStrict(request.url);
  const text = await readBodyText(request, maxBodyBytes);
  const tasks = validateJsonlTasks(text);
  let config: unknown;
  if (query.config) {
    try {
      config = JSON.parse(query.config);
    } catch {
      throw new ApiError(400, "runs.invalid_config", "config: the config query parameter is not valid JSON");
    }
    checkJsonValue(config, "config");
  }
  const maxAttempts = query.max_attempts;
  return {
    name: query.name,
    benchmark: query.benchmark,
    config,
    tasks: tasks.map((t) => t.input),
    ...(maxAttempts != null ? { max_attempts: /^\d+$/.test(maxAttempts) ? Number(maxAttempts) : maxAttempts } : {}),
    // runs as experiments: numbers when they are integers, else as sent (the schema names them)
    ...Object.fromEntries(
      ["repeats", "priority", "max_concurrency"].filter((k) => query[k] != null).map((k) => [k, /^-?\d+$/.test(query[k]) ? Number(query[k]) : query[k]]),
    ),
  };
}

/** A run's summary as the API answers it: the stored (camelCase) config in snake_case. */
export async function readRunSummary({ db, ref }: { db: AppDeps["db"]; ref: string | number }): Promise<RunSummary> {
  const summary = await getRunSummary({ db, ref });
  return { ...summary, config: writeConfigDocument(summary.config) };
}

/** A page of runs, newest first, each with the numbers of its summary. */
export async function listRunPage({ db, limit, cursor }: { db: AppDeps["db"]; limit: number; cursor?: number }): Promise<RunList> {
  const list = await listRuns({ db, limit: limit + 1, before: cursor });
  const page = list.slice(0, limit);
  const runs = await Promise.all(
    page.map(async (r) => {
      const { config: _config, now: _now, ...summary } = await getRunSummary({ db, ref: r.id });
      return summary;
    }),
  );
  return { runs, next_cursor: list.length > limit ? page[page.length - 1].id : null };
}

export const runsRoutes = (deps: AppDeps) =>
  new Elysia({ name: "runs" })
    .post(
      "/v1/runs",
      async ({ body, headers, status }) => {
        const key = headers["idempotency-key"]?.trim() || null;
        const { run, created } = await createRun({
          db: deps.db,
          name: body.name,
          benchmark: body.benchmark,
          config: readConfigInput(body.config) ?? undefined,
          tasks: validateTasks({ rows: body.tasks }),
          maxAttempts: body.max_attempts,
          idempotencyKey: key,
          links: { repeats: body.repeats, priority: body.priority, maxConcurrency: body.max_concurrency ?? null },
        });
        const out = { id: run.id, name: run.name, tasks: run.taskCount, created };
        return created ? status(201, out) : status(200, out);
      },
      {
        body: RunInput,
        response: { 200: RunCreated, 201: RunCreated, 400: ErrorBody, 401: ErrorBody, 413: ErrorBody },
        detail: {
          summary: "Submit a run",
          description:
            "JSON body { name, benchmark, config?, tasks: [{id, question, answer?, ...}], max_attempts?, repeats?, priority?, max_concurrency? }, or a JSONL body " +
            "(Content-Type application/x-ndjson) with ?name=&benchmark=&max_attempts=&repeats=&priority=&max_concurrency=&config=<json>. " +
            "config is snake_case (max_rounds, orchestrator.max_tokens); a camelCase field is refused with its snake_case spelling. " +
            "An Idempotency-Key header makes a repeat return the first run (200) instead of creating another.",
        },
      },
    )
    .get("/v1/runs", ({ query }) => listRunPage({ db: deps.db, limit: query.limit ?? 50, cursor: query.cursor }), {
      query: RunPageQuery,
      response: { 200: RunList, 400: ErrorBody },
      detail: {
        summary:
          "List runs, newest first, with counts, accuracy, score, rate and ETA; ?limit= (default 50), pass next_cursor as ?cursor= for the next page",
      },
    })
    .get("/v1/runs/:id", async ({ params }) => readRunSummary({ db: deps.db, ref: params.id }), {
      params: RunRef,
      response: { 200: RunSummary, 404: ErrorBody, 409: ErrorBody },
      detail: { summary: "Run summary (id or unique name): counts; finished, not_finished, missing; accuracy = correct/finished, score = correct/all tasks, score_excluding_infra; rate, ETA; resolved config" },
    })
    .get(
      "/v1/runs/:id/tasks",
      ({ params, query }) =>
        listTaskPage({
          db: deps.db,
          ref: params.id,
          filters: query,
          limit: query.limit,
          cursor: query.cursor,
          offset: query.offset,
        }),
      {
        params: RunRef,
        query: TaskPageQuery,
        response: { 200: TaskPage, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
        detail: {
          summary:
            "A page of a run's tasks, filtered by status, correct, error_class, tool (used in the final attempt), q (text in the question or id), min/max_steps, min/max_duration_ms; pass next_cursor as cursor for the next page",
        },
      },
    )
    .post(
      "/v1/runs/:id/cancel",
      async ({ params }) => {
        const run = await findRun({ db: deps.db, ref: params.id });
        const res = await cancelRun({ db: deps.db, runId: run.id });
        if (!res) throw new ApiError(404, "runs.not_found", `run ${params.id} not found`);
        return { id: run.id, canceled: res.canceled };
      },
      {
        params: RunRef,
        response: { 200: Canceled, 401: ErrorBody, 404: ErrorBody, 409: ErrorBody },
        detail: { summary: "Cancel a run: queued and running tasks become canceled" },
      },
    )
    .post(
      "/v1/runs/:id/requeue",
      async ({ params, body }) => {
        const run = await findRun({ db: deps.db, ref: params.id });
        const res = await requeueTasks({
          db: deps.db,
          runId: run.id,
          statuses: body?.statuses ?? ["failed"],
          errorClass: body?.error_class,
        });
        if (!res) throw new ApiError(404, "runs.not_found", `run ${params.id} not found`);
        return { id: run.id, requeued: res.requeued };
      },
      {
        params: RunRef,
        // a bodyless POST (curl -X POST) or an empty JSON body means "requeue failed tasks"
        // every field is optional, so a list must be refused before it reads as {}
        body: v.optional(v.nullable(v.pipe(v.custom<unknown>((x) => !Array.isArray(x), "expected a JSON object, not a list"), RequeueInput))),
        response: { 200: Requeued, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 409: ErrorBody, 413: ErrorBody },
        detail: { summary: "Put failed (and/or canceled) tasks back in the queue; succeeded tasks are kept" },
      },
    );
