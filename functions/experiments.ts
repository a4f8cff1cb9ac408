// Runs as experiments over HTTP (issue 14): re-run a subset of a run, change a run's claim
// controls, repeat statistics, sweeps and their report, and a task's last model calls.
// The work is in db/experiments.ts; this file checks bodies and maps errors.
import { Elysia } from "elysia";
import * as v from "valibot";
import {
  compareWithParent,
  createDerivedRun,
  createSweep,
  MAX_PRIORITY,
  MAX_SWEEP_POINTS,
  readLineage,
  readRunStats,
  readSweepReport,
  readTaskDiagnosis,
  setRunControls,
  type Selector,
} from "../db/experiments";
import { formatConfigIssues, readConfigDocument, readConfigPath, writeConfigDocument, writeConfigPath } from "../db/config-wire";
import { Benchmark, MAX_ATTEMPTS_LIMIT, MAX_REPEATS, RunName, validateTasks } from "../db/runs";
import type { AppDeps } from "./deps";
import { ApiError, ErrorBody } from "./errors";
import { ConfigDocument, readConfigInput, RunRef } from "./runs";
import { TaskRef } from "./tasks";

const Int = (lo: number, hi: number) => v.pipe(v.number(), v.integer(), v.minValue(lo), v.maxValue(hi));
const Priority = Int(-MAX_PRIORITY, MAX_PRIORITY);
const MaxConcurrency = v.nullable(Int(1, 100_000));

// "failed" | "not_succeeded" | { error_class } | { ids: [...] }
export const SelectInput = v.union(
  [
    v.picklist(["failed", "not_succeeded"]),
    v.object({ error_class: v.pipe(v.string(), v.minLength(1), v.maxLength(200)) }),
    v.object({ ids: v.pipe(v.array(v.pipe(v.string(), v.minLength(1))), v.minLength(1, "expected at least one id"), v.maxLength(1_000_000)) }),
  ],
  'expected "failed", "not_succeeded", {"error_class": C} or {"ids": [...]}',
);

export const RerunInput = v.object({
  select: SelectInput,
  config: v.optional(v.nullable(ConfigDocument)),
  name: v.optional(RunName),
  max_attempts: v.optional(Int(1, MAX_ATTEMPTS_LIMIT)),
  priority: v.optional(Priority),
  max_concurrency: v.optional(MaxConcurrency),
});

export const ControlsInput = v.pipe(
  v.object({ priority: v.optional(Priority), max_concurrency: v.optional(MaxConcurrency) }),
  v.check((b) => b.priority !== undefined || b.max_concurrency !== undefined, "expected priority and/or max_concurrency"),
);

export const SweepInputBody = v.object({
  name: RunName,
  benchmark: Benchmark,
  config: v.optional(v.nullable(ConfigDocument)),
  vary: v.pipe(
    v.array(v.object({ path: v.pipe(v.string(), v.minLength(1)), values: v.pipe(v.array(v.unknown()), v.minLength(1, "expected at least one value")) })),
    v.minLength(1, "expected at least one path to vary"),
  ),
  tasks: v.array(v.unknown()),
  repeats: v.optional(Int(1, MAX_REPEATS)),
  max_attempts: v.optional(Int(1, MAX_ATTEMPTS_LIMIT)),
  priority: v.optional(Priority),
  max_concurrency: v.optional(MaxConcurrency),
  dry_run: v.optional(v.boolean()),
});

export const SweepRef = v.object({ id: v.pipe(v.string(), v.regex(/^\d+$/, "expected a numeric sweep id"), v.transform(Number)) });

function writeSweepReport(r: Awaited<ReturnType<typeof readSweepReport>>) {
  return {
    ...r,
    vary: r.vary.map((x) => ({ path: writeConfigPath(x.path), values: x.values.map((value) => writeConfigDocument(value, x.path)) })),
    rows: r.rows.map((row) => ({ ...row, values: writeSweepValues(row.values) ?? {} })),
  };
}

function toSelector(s: v.InferOutput<typeof SelectInput>): Selector {
  if (typeof s === "string") return { kind: s };
  if ("error_class" in s) return { kind: "error_class", error_class: s.error_class };
  return { kind: "ids", ids: s.ids };
}

const Loose = v.looseObject({});

// Sweeps: paths and values arrive and leave snake_case (orchestrator.max_tokens); db/experiments.ts
// merges and stores them in the code's spelling (orchestrator.maxTokens).

/** The vary list in the code's spelling; a camelCase field is a 400 with its snake_case spelling. */
export function readVary(vary: { path: string; values: unknown[] }[]): { path: string; values: unknown[] }[] {
  return vary.map((item, i) => {
    const path = readConfigPath(item.path);
    if (!path.ok) throw new ApiError(400, "sweeps.invalid", `vary[${i}].path: ${path.message}`);
    const values = item.values.map((value, j) => {
      const read = readConfigDocument({ document: value, at: path.path, where: `vary[${i}].values.${j}` });
      if (!read.ok) throw new ApiError(400, "sweeps.invalid", formatConfigIssues(read.issues));
      return read.config;
    });
    return { path: path.path, values };
  });
}

/** A sweep point's { path: value } as the user wrote it. */
export function writeSweepValues(values: Record<string, unknown> | null): Record<string, unknown> | null {
  if (values == null) return values;
  return Object.fromEntries(Object.entries(values).map(([path, value]) => [writeConfigPath(path), writeConfigDocument(value, path)]));
}

function writeLineage<T extends { sweep_values: Record<string, unknown> | null }>(lineage: T): T {
  return { ...lineage, sweep_values: writeSweepValues(lineage.sweep_values) };
}

export const experimentsRoutes = (deps: AppDeps) =>
  new Elysia({ name: "experiments" })
    .get("/v1/tasks/:id/attempts", ({ params }) => readTaskDiagnosis({ db: deps.db, taskId: params.id }), {
      params: TaskRef,
      response: { 200: Loose, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody },
      detail: { summary: "A task's attempts, each with its number of model calls and its last one (role, endpoint, outcome, finish_reason, tokens, time)" },
    })
    .post(
      "/v1/runs/:id/rerun",
      async ({ params, body, headers, status }) => {
        const { run, created } = await createDerivedRun({
          db: deps.db,
          input: {
            parent: params.id,
            select: toSelector(body.select),
            config: readConfigInput(body.config) ?? null,
            name: body.name ?? null,
            maxAttempts: body.max_attempts,
            priority: body.priority,
            maxConcurrency: body.max_concurrency ?? null,
            idempotencyKey: headers["idempotency-key"]?.trim() || null,
          },
        });
        const out = { id: run.id, name: run.name, tasks: run.taskCount, created, parent_run_id: run.parentRunId };
        return created ? status(201, out) : status(200, out);
      },
      {
        params: RunRef,
        body: RerunInput,
        response: { 200: Loose, 201: Loose, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 409: ErrorBody },
        detail: {
          summary: "A new run of the selected tasks of this run (failed, not_succeeded, {error_class}, {ids}), with config merged onto this run's resolved configuration",
          description:
            "Creates a derived run from the selected tasks of this one; its config (snake_case, e.g. {\"orchestrator\": {\"max_tokens\": 32000}}) is merged onto this run's resolved configuration. " +
            "An Idempotency-Key header makes a repeat return the first run.",
        },
      },
    )
    .post(
      "/v1/runs/:id/controls",
      ({ params, body }) => setRunControls({ db: deps.db, ref: params.id, priority: body.priority, maxConcurrency: body.max_concurrency }),
      {
        params: RunRef,
        body: ControlsInput,
        response: { 200: Loose, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 409: ErrorBody },
        detail: { summary: "Change a run's priority (higher is claimed first) and max_concurrency (null: no limit), also while it runs" },
      },
    )
    .get(
      "/v1/runs/:id/stats",
      async ({ params }) => ({ ...(await readRunStats({ db: deps.db, ref: params.id })), lineage: writeLineage(await readLineage({ db: deps.db, ref: params.id })) }),
      {
        params: RunRef,
        response: { 200: Loose, 404: ErrorBody, 409: ErrorBody },
        detail: { summary: "Accuracy with its 95% Wilson interval, pass@k and pass^k over repeats, per-question consistency, parent/children/sweep links" },
      },
    )
    .get("/v1/runs/:id/links", async ({ params }) => writeLineage(await readLineage({ db: deps.db, ref: params.id })), {
      params: RunRef,
      response: { 200: Loose, 404: ErrorBody, 409: ErrorBody },
      detail: { summary: "A run's parent, the runs derived from it, its sweep and values, repeats, priority and max_concurrency" },
    })
    .get("/v1/runs/:id/parent-compare", ({ params }) => compareWithParent({ db: deps.db, ref: params.id }), {
      params: RunRef,
      response: { 200: Loose, 404: ErrorBody, 409: ErrorBody },
      detail: { summary: "A derived run beside the parent tasks it replaced" },
    })
    .post(
      "/v1/sweeps",
      async ({ body, status }) => {
        const res = await createSweep({
          db: deps.db,
          input: {
            name: body.name,
            benchmark: body.benchmark,
            config: readConfigInput(body.config) ?? null,
            vary: readVary(body.vary),
            tasks: validateTasks({ rows: body.tasks }),
            repeats: body.repeats,
            maxAttempts: body.max_attempts,
            priority: body.priority,
            maxConcurrency: body.max_concurrency ?? null,
            dryRun: body.dry_run ?? false,
          },
        });
        const out = { sweep_id: res.sweep_id, runs: res.runs.map((r) => ({ run_id: r.run_id, name: r.name, values: writeSweepValues(r.values) })) };
        return body.dry_run ? status(200, out) : status(201, out);
      },
      {
        body: SweepInputBody,
        response: { 200: Loose, 201: Loose, 400: ErrorBody, 401: ErrorBody, 413: ErrorBody },
        detail: {
          summary: `One run per combination of the varied configuration values (at most ${MAX_SWEEP_POINTS}) under one sweep id; dry_run only lists them`,
          description:
            "Creates the runs of a sweep in one request; dry_run answers the combinations without creating anything. " +
            "config and the vary paths are snake_case (orchestrator.max_tokens, max_rounds); a camelCase field is refused with its snake_case spelling.",
        },
      },
    )
    .get("/v1/sweeps/:id/report", async ({ params }) => writeSweepReport(await readSweepReport({ db: deps.db, sweepId: params.id })), {
      params: SweepRef,
      response: { 200: Loose, 400: ErrorBody, 404: ErrorBody },
      detail: { summary: "One row per configuration: accuracy and interval, pass@k, tokens, p50/p95 per tool, and whether it differs significantly from the best" },
    });
