// A run over time, in equal buckets: per endpoint (LLM calls) and per tool (tool calls) the
// calls, errors by class and p50/p95 latency; tasks finished; when each runner joined and left.
// Percentiles are nearest-rank (db/analysis.ts), over the calls that started in the bucket.
import type { InValue } from "@libsql/client";
import { nearestRank } from "./analysis";
import type { Db } from "./client";

export type TimelineSeries = {
  key: string;
  calls: number[];
  // error class -> count per bucket (classes: the LLM call's outcome, the tool call's error class or status)
  errors: Record<string, number[]>;
  p50: (number | null)[];
  p95: (number | null)[];
};

export type TimelineRunner = { id: string; host: string; pid: number; slurm_job_id: string | null; started_at: number; stopped_at: number | null; state: string };

export type Timeline = {
  run_id: number;
  start: number | null;
  bucket_ms: number;
  // bucket i covers [start + i*bucket_ms, start + (i+1)*bucket_ms)
  buckets: number;
  finished: { succeeded: number[]; failed: number[] };
  runners: TimelineRunner[];
  endpoints: TimelineSeries[];
  tools: TimelineSeries[];
};

export const MAX_BUCKETS = 500;
const NICE_MS = [100, 250, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000, 86_400_000];

type Row = Record<string, any>;
async function rows(db: Db, sql: string, args: InValue[]): Promise<Row[]> {
  return (await db.$client.execute({ sql, args })).rows as unknown as Row[];
}

/** The smallest round bucket that cuts the span into at most `target` buckets. */
export function pickBucketMs(spanMs: number, target = 60): number {
  return NICE_MS.find((b) => spanMs / b <= target) ?? NICE_MS[NICE_MS.length - 1];
}

type Event = { key: string; at: number; ms: number; error: string | null };

function seriesOf(events: Event[], start: number, bucketMs: number, n: number): TimelineSeries[] {
  const byKey = new Map<string, { calls: number[]; errors: Record<string, number[]>; ms: number[][] }>();
  for (const e of events) {
    let s = byKey.get(e.key);
    if (!s) {
      s = { calls: new Array(n).fill(0), errors: {}, ms: Array.from({ length: n }, () => []) };
      byKey.set(e.key, s);
    }
    const i = Math.min(n - 1, Math.max(0, Math.floor((e.at - start) / bucketMs)));
    s.calls[i]++;
    s.ms[i].push(e.ms);
    if (e.error) (s.errors[e.error] ??= new Array(n).fill(0))[i]++;
  }
  return [...byKey.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, s]) => {
      const sorted = s.ms.map((m) => m.sort((a, b) => a - b));
      return { key, calls: s.calls, errors: s.errors, p50: sorted.map((m) => nearestRank(m, 50)), p95: sorted.map((m) => nearestRank(m, 95)) };
    });
}

export async function buildTimeline({ db, runId, bucketMs = null }: { db: Db; runId: number; bucketMs?: number | null }): Promise<Timeline> {
  const [llm, tools, done, runners] = await Promise.all([
    rows(db, "SELECT endpoint, outcome, total_ms, started_at FROM llm_calls WHERE run_id = ?", [runId]),
    rows(db, "SELECT tool, status, error_class, duration_ms, started_at FROM tool_calls WHERE run_id = ?", [runId]),
    rows(db, "SELECT status, finished_at FROM tasks WHERE run_id = ? AND status IN ('succeeded', 'failed') AND finished_at IS NOT NULL", [runId]),
    rows(
      db,
      `SELECT r.id, r.host, r.pid, r.slurm_job_id, r.started_at, r.stopped_at, r.state FROM runners r
       WHERE r.run_id = ? OR r.id IN (SELECT DISTINCT runner_id FROM task_attempts WHERE run_id = ? AND runner_id IS NOT NULL)
       ORDER BY r.started_at`,
      [runId, runId],
    ),
  ]);
  const endpointEvents: Event[] = llm.map((r) => ({ key: String(r.endpoint), at: Number(r.started_at), ms: Number(r.total_ms), error: r.outcome === "ok" ? null : String(r.outcome) }));
  const toolEvents: Event[] = tools.map((r) => ({
    key: String(r.tool),
    at: Number(r.started_at),
    ms: Number(r.duration_ms),
    error: r.status === "ok" ? null : String(r.error_class ?? r.status),
  }));
  const times = [...endpointEvents.map((e) => e.at), ...toolEvents.map((e) => e.at), ...done.map((r) => Number(r.finished_at))];
  const runnerList: TimelineRunner[] = runners.map((r) => ({
    id: String(r.id),
    host: String(r.host),
    pid: Number(r.pid),
    slurm_job_id: r.slurm_job_id ?? null,
    started_at: Number(r.started_at),
    stopped_at: r.stopped_at == null ? null : Number(r.stopped_at),
    state: String(r.state),
  }));
  if (times.length === 0) return { run_id: runId, start: null, bucket_ms: bucketMs ?? 1_000, buckets: 0, finished: { succeeded: [], failed: [] }, runners: runnerList, endpoints: [], tools: [] };
  let start = Infinity;
  let end = -Infinity;
  for (const t of times) {
    if (t < start) start = t;
    if (t > end) end = t;
  }
  const size = Math.max(bucketMs ?? pickBucketMs(end - start), Math.ceil((end - start + 1) / MAX_BUCKETS));
  start = Math.floor(start / size) * size;
  const n = Math.floor((end - start) / size) + 1;
  const finished = { succeeded: new Array(n).fill(0), failed: new Array(n).fill(0) };
  for (const r of done) finished[r.status as "succeeded" | "failed"][Math.floor((Number(r.finished_at) - start) / size)]++;
  return {
    run_id: runId,
    start,
    bucket_ms: size,
    buckets: n,
    finished,
    runners: runnerList,
    endpoints: seriesOf(endpointEvents, start, size, n),
    tools: seriesOf(toolEvents, start, size, n),
  };
}
