// GET /v1/runs/:id/inflight: every running task of a run with its runner, step, the call it
// waits on and for how long.
import { Elysia } from "elysia";
import * as v from "valibot";
import { listInflight } from "../db/inflight";
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
  return {
    run_id: run.id,
    now,
    tasks: tasks.map((t) => ({
      task_id: t.taskId,
      external_id: t.externalId,
      attempt: t.attempt,
      runner: {
        id: t.runner.id,
        host: t.runner.host,
        pid: t.runner.pid,
        slurm_job_id: t.runner.slurmJobId,
        slurm_array_job_id: t.runner.slurmArrayJobId,
        slurm_array_task_id: t.runner.slurmArrayTaskId,
        last_seen_at: t.runner.lastSeenAt,
      },
      step: t.step,
      tool: t.tool,
      component: t.component,
      endpoint: t.endpoint,
      since: t.since,
      waiting_ms: t.waitingMs,
      started_at: t.startedAt,
      lease_expires_at: t.leaseExpiresAt,
    })),
  };
}

export const inflightRoutes = (deps: AppDeps) =>
  new Elysia({ name: "inflight" }).get("/v1/runs/:id/inflight", ({ params }) => readInflight({ db: deps.db, ref: params.id }), {
    params: RunRef,
    response: { 200: InflightList, 404: ErrorBody, 409: ErrorBody },
    detail: { summary: "Running tasks of a run: runner (host, pid, Slurm ids), step, the call waited on and for how long" },
  });
