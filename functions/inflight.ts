// GET /v1/runs/:id/inflight: every running task of a run with its runner, step, the call it
// waits on and for how long.
import { Elysia } from "elysia";
import * as v from "valibot";
import { listInflight } from "../db/inflight";
import { snakeKeysDeep } from "../db/keys";
import { findRun } from "../db/runs";
import type { AppDeps } from "./deps";
import { ErrorBody } from "./errors";
import { RunRef } from "./runs";

const nullableString = v.nullable(v.string());
const nullableNumber = v.nullable(v.number());

export const InflightTask = v.object({
  task_id: v.number(),
  external_id: v.string(),
  attempt: v.number(),
  runner: v.object({
    id: nullableString,
    host: nullableString,
    pid: nullableNumber,
    slurm_job_id: nullableString,
    slurm_array_job_id: nullableString,
    slurm_array_task_id: nullableString,
    last_seen_at: nullableNumber,
  }),
  step: nullableNumber,
  tool: nullableString,
  component: nullableString,
  endpoint: nullableString,
  since: nullableNumber,
  waiting_ms: nullableNumber,
  started_at: nullableNumber,
  lease_expires_at: nullableNumber,
});
export type InflightTask = v.InferOutput<typeof InflightTask>;

export const InflightList = v.object({ run_id: v.number(), now: v.number(), tasks: v.array(InflightTask) });
export type InflightList = v.InferOutput<typeof InflightList>;

export async function readInflight({ db, ref }: { db: AppDeps["db"]; ref: string }): Promise<InflightList> {
  const run = await findRun({ db, ref });
  const { now, tasks } = await listInflight({ db, runId: run.id });
  // db/inflight.ts's rows, renamed to the API's snake_case as they are
  return { run_id: run.id, now, tasks: snakeKeysDeep(tasks) };
}

export const inflightRoutes = (deps: AppDeps) =>
  new Elysia({ name: "inflight" }).get("/v1/runs/:id/inflight", ({ params }) => readInflight({ db: deps.db, ref: params.id }), {
    params: RunRef,
    response: { 200: InflightList, 404: ErrorBody, 409: ErrorBody },
    detail: { summary: "Running tasks of a run: runner (host, pid, Slurm ids), step, the call waited on and for how long" },
  });
