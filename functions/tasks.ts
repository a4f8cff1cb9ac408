// One task with its attempt history: what ran it, when, and how each attempt ended.
import { Elysia } from "elysia";
import * as v from "valibot";
import { getTask } from "../db/runs";
import type { AppDeps } from "./deps";
import { ErrorBody } from "./errors";
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

export const tasksRoutes = (deps: AppDeps) =>
  new Elysia({ name: "tasks" }).get("/v1/tasks/:id", ({ params }) => getTask({ db: deps.db, taskId: params.id }), {
    params: TaskRef,
    response: { 200: TaskDetail, 400: ErrorBody, 404: ErrorBody },
    detail: { summary: "A task with its input, result and every attempt" },
  });
