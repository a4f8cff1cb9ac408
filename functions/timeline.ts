// GET /v1/runs/:id/timeline: the run over time for the page's small multiples (the work is in
// db/timeline.ts).
import { Elysia } from "elysia";
import * as v from "valibot";
import { findRun } from "../db/runs";
import { buildTimeline } from "../db/timeline";
import type { AppDeps } from "./deps";
import { ErrorBody } from "./errors";
import { RunRef } from "./runs";

const Series = v.object({
  key: v.string(),
  calls: v.array(v.number()),
  errors: v.record(v.string(), v.array(v.number())),
  p50: v.array(v.nullable(v.number())),
  p95: v.array(v.nullable(v.number())),
});

export const TimelineBody = v.object({
  run_id: v.number(),
  start: v.nullable(v.number()),
  bucket_ms: v.number(),
  buckets: v.number(),
  finished: v.object({ succeeded: v.array(v.number()), failed: v.array(v.number()) }),
  runners: v.array(
    v.object({
      id: v.string(),
      host: v.string(),
      pid: v.number(),
      slurm_job_id: v.nullable(v.string()),
      started_at: v.number(),
      stopped_at: v.nullable(v.number()),
      state: v.string(),
    }),
  ),
  endpoints: v.array(Series),
  tools: v.array(Series),
});

export const TimelineQuery = v.strictObject(
  {
    bucket_ms: v.optional(
      v.pipe(
        v.string(),
        v.regex(/^\d{1,10}$/, "expected a whole number of milliseconds"),
        v.transform(Number),
        v.minValue(100, "expected at least 100 ms"),
      ),
    ),
  },
  "unknown query parameter",
);

export const timelineRoutes = (deps: AppDeps) =>
  new Elysia({ name: "timeline" }).get(
    "/v1/runs/:id/timeline",
    async ({ params, query }) => {
      const run = await findRun({ db: deps.db, ref: params.id });
      return buildTimeline({ db: deps.db, runId: run.id, bucketMs: query.bucket_ms ?? null });
    },
    {
      params: RunRef,
      query: TimelineQuery,
      response: { 200: TimelineBody, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
      detail: {
        summary:
          "A run over time in equal buckets (?bucket_ms=, else about 60 buckets, at most 500): per endpoint and per tool the calls, errors by class and p50/p95 latency; tasks finished; runners' joins and exits",
      },
    },
  );
