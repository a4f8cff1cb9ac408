// What every running task of a run is doing now: which runner holds it (host, pid, Slurm
// ids), its step, the call it waits on and for how long. Answers "why has this run stopped
// moving?" without reading any log.
import { sql } from "drizzle-orm";
import type { Db } from "./client";
import { dbNowMs } from "./schema";

export type InflightTask = {
  taskId: number;
  externalId: string;
  attempt: number;
  runner: {
    id: string | null;
    host: string | null;
    pid: number | null;
    slurmJobId: string | null;
    slurmArrayJobId: string | null;
    slurmArrayTaskId: string | null;
    lastSeenAt: number | null;
  };
  step: number | null;
  tool: string | null;
  component: string | null;
  endpoint: string | null;
  // when the current call began (runner clock) and how long ago that was
  since: number | null;
  waitingMs: number | null;
  startedAt: number | null;
  leaseExpiresAt: number | null;
};

export async function listInflight({ db, runId }: { db: Db; runId: number }): Promise<{ now: number; tasks: InflightTask[] }> {
  const res = await db.run(sql`
    SELECT t.id, t.external_id, t.attempt, t.progress, t.started_at, t.lease_expires_at, t.lease_owner,
      r.host, r.pid, r.slurm_job_id, r.slurm_array_job_id, r.slurm_array_task_id, r.last_seen_at,
      ${dbNowMs} AS now
    -- the running tasks only: the planner would otherwise walk the whole run, or the whole table in id order
    FROM tasks t INDEXED BY tasks_lease_idx LEFT JOIN runners r ON r.id = t.lease_owner
    WHERE t.run_id = ${runId} AND t.status = 'running'
    ORDER BY t.id`);
  const rows = ((res as any).rows ?? []) as any[];
  const now = rows.length > 0 ? Number(rows[0].now) : Date.now();
  return {
    now,
    tasks: rows.map((r) => {
      const p = typeof r.progress === "string" ? JSON.parse(r.progress) : (r.progress ?? {});
      const since = typeof p?.since === "number" ? p.since : null;
      return {
        taskId: Number(r.id),
        externalId: String(r.external_id),
        attempt: Number(r.attempt),
        runner: {
          id: r.lease_owner ?? null,
          host: r.host ?? null,
          pid: r.pid == null ? null : Number(r.pid),
          slurmJobId: r.slurm_job_id ?? null,
          slurmArrayJobId: r.slurm_array_job_id ?? null,
          slurmArrayTaskId: r.slurm_array_task_id ?? null,
          lastSeenAt: r.last_seen_at == null ? null : Number(r.last_seen_at),
        },
        step: typeof p?.step === "number" ? p.step : null,
        tool: p?.tool ?? null,
        component: p?.component ?? null,
        endpoint: p?.endpoint ?? null,
        since,
        waitingMs: since == null ? null : Math.max(0, now - since),
        startedAt: r.started_at == null ? null : Number(r.started_at),
        leaseExpiresAt: r.lease_expires_at == null ? null : Number(r.lease_expires_at),
      };
    }),
  };
}
