// One task with its attempt history: what ran it, when, and how each attempt ended; and
// every step of it kept whole (the transcripts), with that step's latency rows.
import { Elysia } from "elysia";
import * as v from "valibot";
import { getTask } from "../db/runs";
import { listTaskSteps } from "../db/transcripts";
import type { AppDeps } from "./deps";
import { ApiError, ErrorBody } from "./errors";
import { TaskListItem } from "./runs";

export const Attempt = v.object({
  attempt: v.number(),
  runner_id: v.nullable(v.string()),
  outcome: v.string(),
  error_class: v.nullable(v.string()),
  error_message: v.nullable(v.string()),
  started_at: v.number(),
  ended_at: v.nullable(v.number()),
});
export type Attempt = v.InferOutput<typeof Attempt>;

export const TaskDetail = v.object({
  ...TaskListItem.entries,
  run_id: v.number(),
  input: v.record(v.string(), v.unknown()),
  result: v.nullable(v.record(v.string(), v.unknown())),
  progress: v.unknown(),
  lease_expires_at: v.nullable(v.number()),
  available_at: v.number(),
  created_at: v.number(),
  attempts: v.array(Attempt),
});
export type TaskDetail = v.InferOutput<typeof TaskDetail>;

export const TaskRef = v.object({
  id: v.pipe(v.string(), v.regex(/^\d+$/, "expected a numeric task id"), v.transform(Number)),
});

const Nullable = <T extends v.GenericSchema>(s: T) => v.nullable(s);

export const StepComponent = v.object({
  component: v.string(),
  model: Nullable(v.string()),
  ms: v.number(),
  retries: v.number(),
  backend: Nullable(v.string()),
  endpoint: Nullable(v.string()),
  status: v.string(),
  started_at: v.number(),
});

export const StepToolCall = v.object({
  tool: v.string(),
  model_alias: Nullable(v.string()),
  model: Nullable(v.string()),
  status: v.string(),
  error_class: Nullable(v.string()),
  error_message: Nullable(v.string()),
  started_at: v.number(),
  duration_ms: v.number(),
});

// runner/recorder.ts StepTranscript, as the runner wrote it (its fields are the reference's)
export const StepTranscriptOut = v.looseObject({
  step: v.number(),
  tool: Nullable(v.string()),
  tool_calls: v.unknown(),
  responses: Nullable(v.array(v.unknown())),
  llm: v.array(v.unknown()),
});

export const TaskStepsOut = v.object({
  task_id: v.number(),
  final_attempt: v.number(),
  steps: v.array(
    v.object({
      attempt: v.number(),
      step: v.number(),
      final: v.boolean(),
      transcript: Nullable(StepTranscriptOut),
      transcript_error: v.optional(v.string()),
      recorded_at: Nullable(v.number()),
      tool_call: Nullable(StepToolCall),
      components: v.array(StepComponent),
    }),
  ),
});

export const StepsQuery = v.object({
  attempt: v.optional(
    v.pipe(v.string(), v.regex(/^[1-9][0-9]{0,8}$/, "expected an attempt number (a positive integer)"), v.transform(Number)),
  ),
});

export const tasksRoutes = (deps: AppDeps) =>
  new Elysia({ name: "tasks" })
    .get("/v1/tasks/:id", ({ params }) => getTask({ db: deps.db, taskId: params.id }), {
      params: TaskRef,
      response: { 200: TaskDetail, 400: ErrorBody, 404: ErrorBody },
      detail: { summary: "A task with its input, result and every attempt" },
    })
    .get(
      "/v1/tasks/:id/steps",
      async ({ params, query }) => {
        const steps = await listTaskSteps({ db: deps.db, taskId: params.id, attempt: query.attempt ?? null });
        if (!steps) throw new ApiError(404, "tasks.not_found", `task ${params.id} not found`);
        return steps;
      },
      {
        params: TaskRef,
        query: StepsQuery,
        response: { 200: TaskStepsOut, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody },
        detail: {
          summary:
            "Every step of a task kept whole (requests, replies, documents, code, grade), by attempt then step, with its tool call and latency components; ?attempt=N for one attempt",
        },
      },
    );
