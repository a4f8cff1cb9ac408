// Latency and outcome analysis of one run: the same JSON as `baton report --json`, plus the
// distributions behind the web page's charts. Reads only; the work is in db/analysis.ts, whose
// camelCase types become the API's snake_case here (snakeKeysDeep), as everywhere in the API.
import { Elysia } from "elysia";
import * as v from "valibot";
import { buildReport, getLatency, listFailedTasks, listSlowestCalls } from "../db/analysis";
import { snakeKeysDeep } from "../db/keys";
import { findRun } from "../db/runs";
import type { AppDeps } from "./deps";
import { ErrorBody } from "./errors";
import { RunRef } from "./runs";

const Count = v.pipe(
  v.optional(v.string(), "20"),
  v.transform(Number),
  v.integer("limit: expected an integer"),
  v.minValue(1, "limit: expected at least 1"),
  v.maxValue(10_000, "limit: expected at most 10000"),
);

// all_attempts=true: per-tool and per-component tables include abandoned attempts
const AllAttempts = v.pipe(
  v.optional(v.picklist(["true", "false"], "expected true or false"), "false"),
  v.transform((x) => x === "true"),
);

export const ReportQuery = v.object({ slowest: Count, failed: Count, all_attempts: AllAttempts });
export type ReportQuery = v.InferOutput<typeof ReportQuery>;

export const LatencyQuery = v.object({
  tool: v.optional(v.pipe(v.string(), v.minLength(1, "tool: expected a tool name"))),
  component: v.optional(v.pipe(v.string(), v.minLength(1, "component: expected a component name"))),
  points: v.pipe(v.optional(v.string(), "100"), v.transform(Number), v.integer("points: expected an integer"), v.minValue(2, "points: expected at least 2"), v.maxValue(2000, "points: expected at most 2000")),
  all_attempts: AllAttempts,
});
export type LatencyQuery = v.InferOutput<typeof LatencyQuery>;

export const LimitQuery = v.object({ limit: Count, tool: v.optional(v.string()) });
export type LimitQuery = v.InferOutput<typeof LimitQuery>;
// a task id: the page starts after it (next_cursor of the previous page)
const Cursor = v.optional(v.pipe(v.string(), v.regex(/^\d{1,15}$/, "cursor: expected the next_cursor of the previous page"), v.transform(Number)));
export const FailedQuery = v.object({ limit: Count, cursor: Cursor });

// The report is large and documented by its TypeScript type (db/analysis.ts Report); the
// schema pins the top-level shape clients rely on.
export const ReportBody = v.looseObject({
  run: v.looseObject({ id: v.number(), name: v.string(), benchmark: v.string() }),
  tasks: v.looseObject({ total: v.number() }),
  tools: v.array(v.looseObject({ tool: v.string() })),
  endpoints: v.array(v.looseObject({ endpoint: v.string() })),
});
export type ReportBody = v.InferOutput<typeof ReportBody>;

export const LatencyBody = v.looseObject({ count: v.number(), cdf: v.array(v.array(v.number())) });
export type LatencyBody = v.InferOutput<typeof LatencyBody>;

export const SlowestBody = v.object({ calls: v.array(v.looseObject({ task_id: v.number(), duration_ms: v.number() })) });
export const FailedBody = v.object({ tasks: v.array(v.looseObject({ task_id: v.number(), external_id: v.string() })), next_cursor: v.nullable(v.number()) });

export const reportRoutes = (deps: AppDeps) =>
  new Elysia({ name: "report" })
    .get(
      "/v1/runs/:id/report",
      async ({ params, query }) => {
        // by id, or by a name only one run has (404 / 409 otherwise, as every run route)
        const run = await findRun({ db: deps.db, ref: params.id });
        return snakeKeysDeep(await buildReport({ db: deps.db, runId: run.id, slowest: query.slowest, failed: query.failed, allAttempts: query.all_attempts }));
      },
      {
        params: RunRef,
        query: ReportQuery,
        response: { 200: ReportBody, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
        detail: {
          summary:
            "Full report of a run (what `baton report --json` prints): accuracy, latency per tool (its own time, as ToolOrchestra's analyze_tool_latency.py counts it; the orchestrator its own row) and component over each task's final attempt (?all_attempts=true adds abandoned attempts), endpoints, errors, retries, slowest calls, failed and missing tasks",
        },
      },
    )
    .get(
      "/v1/runs/:id/latency",
      async ({ params, query }) => {
        const run = await findRun({ db: deps.db, ref: params.id });
        return snakeKeysDeep(await getLatency({ db: deps.db, runId: run.id, tool: query.tool ?? null, component: query.component ?? null, points: query.points, allAttempts: query.all_attempts }));
      },
      {
        params: RunRef,
        query: LatencyQuery,
        response: { 200: LatencyBody, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
        detail: {
          summary:
            "One latency distribution for charts: 10-bin and decade histograms, CDF points, nearest-rank percentiles. No tool = all tools; no component = the tool's own time (tool=orchestrator: the orchestrator's calls); final attempts unless ?all_attempts=true",
        },
      },
    )
    .get(
      "/v1/runs/:id/slowest",
      async ({ params, query }) => {
        const run = await findRun({ db: deps.db, ref: params.id });
        return { calls: snakeKeysDeep(await listSlowestCalls({ db: deps.db, runId: run.id, limit: query.limit, tool: query.tool ?? null })) };
      },
      { params: RunRef, query: LimitQuery, response: { 200: SlowestBody, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody }, detail: { summary: "The slowest tool calls of a run, with their components" } },
    )
    .get(
      "/v1/runs/:id/failed",
      async ({ params, query }) => {
        const run = await findRun({ db: deps.db, ref: params.id });
        // one more than the page, to know whether another follows
        const tasks = await listFailedTasks({ db: deps.db, runId: run.id, limit: query.limit + 1, after: query.cursor ?? 0 });
        const page = tasks.slice(0, query.limit);
        return { tasks: snakeKeysDeep(page), next_cursor: tasks.length > query.limit ? page[page.length - 1].taskId : null };
      },
      {
        params: RunRef,
        query: FailedQuery,
        response: { 200: FailedBody, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
        detail: { summary: "Failed tasks of a run with their error class and whether it was infrastructure; pass next_cursor as ?cursor= for the next page" },
      },
    );
