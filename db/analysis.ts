// The queries behind `baton report`, GET /v1/runs/:id/report and the web page's charts.
// The SQL views (migrations/0002_analysis_views.sql) answer the same questions for ad-hoc
// use; these queries are shaped for speed instead. Migration 0014 keeps, inside the
// statements that write the rows, one row per tool step (latency_steps) and per-value-bucket
// counts of every distribution the report shows; a nearest-rank percentile is then a walk
// inside the one bucket that holds it (exact: the value is read from the sorted index), and
// counts, means and the decade histogram are sums over buckets. When a run has rows from an
// abandoned attempt the buckets (which count every attempt) are not used: aggregates and
// walks then filter the covering indexes. Tests check both give the same numbers as the
// views and as a brute-force computation.
//
// Latency per tool is defined as the ToolOrchestra reference defines it
// (evaluation/analyze_tool_latency.py): the tool's own time, the sum of its components
// (search = query_llm + retrieval, answer = expert_llm + judge, enhance_reasoning =
// expert_llm + code_exec), counted when its LLM ran (search: and retrieval ran); the
// orchestrator call that chose the tool is its own row, tool "orchestrator". Per-tool and
// per-component tables cover each task's final attempt unless allAttempts is asked for;
// endpoint, error, retry and token tables keep every HTTP attempt.
import type { Client, InValue } from "@libsql/client";
import type { Db } from "./client";
import { DbError } from "./errors";
import { findRun as findRunByRef } from "./runs";

export const PERCENTILES = [50, 80, 90, 95, 99] as const;
export const UNDER_MS = 5000;
export const LOG_BINS = [
  { label: "<1ms", loMs: 0, hiMs: 1 },
  { label: "1-10ms", loMs: 1, hiMs: 10 },
  { label: "10-100ms", loMs: 10, hiMs: 100 },
  { label: "0.1-1s", loMs: 100, hiMs: 1000 },
  { label: "1-10s", loMs: 1000, hiMs: 10000 },
  { label: "10-100s", loMs: 10000, hiMs: 100000 },
  { label: ">=100s", loMs: 100000, hiMs: null },
] as const;
// Whether a failed task failed on infrastructure is recorded by the runner (tasks.error_infra,
// from its retryable verdict). Only rows without it (written before the column existed, or by
// tools that insert tasks directly) fall back to these classes, or to a class the queue
// already retried on an earlier attempt. Keep equal to the list in
// migrations/0004_infra_views.sql (task_outcomes).
export const INFRA_FALLBACK_CLASSES = [
  // what the runner writes (runner/llm-client.ts retryable classes, runner_error, lease_expired)
  "connection", "timeout", "http_408", "rate_limited", "server_error", "stream_error", "stream_cut",
  "malformed_response", "deadline", "no_endpoint", "runner_error", "lease_expired",
  // older and external spellings
  "endpoint_unreachable", "retrieval_unavailable", "lease_lost", "connection_refused", "connection_reset",
  "deadline_exceeded", "http_5xx", "endpoint_misconfigured",
];

/** SQL truth value "task t failed on infrastructure" (binds INFRA_FALLBACK_CLASSES in order). */
const INFRA_SQL = `coalesce(t.error_infra,
  t.error_class IN (${INFRA_FALLBACK_CLASSES.map(() => "?").join(",")})
  OR EXISTS (SELECT 1 FROM task_attempts a WHERE a.task_id = t.id AND a.outcome = 'retry' AND a.error_class = t.error_class))`;

// `finished_at IS NOT NULL` (true of every finished task) is what lets a query on finished
// statuses read tasks_run_finished_idx, which holds only those (migration 0015).

/** How many of a run's tasks failed on infrastructure (the run summary's score excludes them). */
export async function countInfraFailed({ db, runId }: { db: Db; runId: number }): Promise<number> {
  const [r] = await rows(db, `SELECT count(*) AS n FROM tasks t WHERE t.run_id = ? AND t.status = 'failed' AND t.finished_at IS NOT NULL AND ${INFRA_SQL}`, [runId, ...INFRA_FALLBACK_CLASSES]);
  return Number(r?.n ?? 0);
}

export type Percentiles = { p50: number | null; p80: number | null; p90: number | null; p95: number | null; p99: number | null };
export type LatencyStats = Percentiles & {
  count: number;
  mean: number | null;
  min: number | null;
  max: number | null;
  under5s: number | null;
};
export type Histogram = { loMs: number; hiMs: number; counts: number[] };
export type LogHistogram = { label: string; loMs: number; hiMs: number | null; count: number }[];
export type ComponentStats = LatencyStats & {
  component: string;
  totalMs: number;
  retries: number;
  callsWithRetries: number;
  timeouts: number;
  fallbacks: number;
  unavailable: number;
  errors: number;
};
export type ToolReport = LatencyStats & {
  tool: string;
  histogram: Histogram;
  logHistogram: LogHistogram;
  components: ComponentStats[];
};
export type EndpointReport = {
  kind: "llm" | "retrieval";
  endpoint: string;
  role: string;
  name: string | null;
  calls: number;
  errors: number;
  errorRate: number;
  timeouts: number;
  retries: number;
  mean: number | null;
  p50: number | null;
  p95: number | null;
  max: number | null;
  meanTtft: number | null;
};
export type TaskSummary = {
  total: number;
  queued: number;
  running: number;
  succeeded: number;
  failed: number;
  canceled: number;
  correct: number;
  infraFailed: number;
  // succeeded + failed / queued + running / failed + canceled (terminal, not succeeded)
  finished: number;
  notFinished: number;
  missing: number;
  // correct / finished
  accuracy: number | null;
  // correct / all tasks
  score: number | null;
  // correct / tasks without an infrastructure failure
  scoreExcludingInfra: number | null;
};
export type SlowCall = {
  taskId: number;
  externalId: string | null;
  attempt: number;
  step: number;
  tool: string;
  model: string | null;
  status: string;
  durationMs: number;
  components: Record<string, number>;
};
export type FailedTask = {
  taskId: number;
  externalId: string;
  status: string;
  attempt: number;
  errorClass: string | null;
  errorMessage: string | null;
  infra: boolean;
};
export type Report = {
  run: { id: number; name: string; benchmark: string; createdAt: number; startedAt: number | null; canceledAt: number | null };
  generatedAt: number;
  // which attempts the per-tool and per-component tables cover
  attempts: "final" | "all";
  tasks: TaskSummary;
  steps: { mean: number | null; max: number | null; invalid: number; perTask: { steps: number; tasks: number }[] };
  tools: ToolReport[];
  all: LatencyStats & { histogram: Histogram; logHistogram: LogHistogram };
  endpoints: EndpointReport[];
  errors: {
    byTool: { tool: string; status: string; errorClass: string; calls: number }[];
    byTaskClass: { errorClass: string; tasks: number; infra: boolean }[];
  };
  retries: { tool: string; component: string; calls: number; callsWithRetries: number; retries: number; timeouts: number; fallbacks: number; unavailable: number; errors: number }[];
  tokens: { role: string; model: string; calls: number; promptTokens: number; completionTokens: number; truncated: number }[];
  slowest: SlowCall[];
  failed: FailedTask[];
  missingIds: string[];
  missingTruncated: boolean;
};

type Row = Record<string, any>;
const tuned = new WeakSet<Client>();

async function rows(db: Db, sql: string, args: InValue[] = []): Promise<Row[]> {
  return (await db.$client.execute({ sql, args })).rows as unknown as Row[];
}

// Memory-mapped reads: without them every page of a large file is a read() syscall, and a
// report over a million rows spends seconds in the kernel. Harmless under WAL; remote
// (http/libsql) databases ignore or refuse the pragma, which is fine.
async function tuneForReads(db: Db): Promise<void> {
  if (tuned.has(db.$client)) return;
  tuned.add(db.$client);
  try {
    await db.$client.execute("PRAGMA mmap_size = 2147483648");
  } catch {}
}

/** Nearest-rank: the value at 1-based rank ceil(p/100 * n) of the ascending values. */
export function nearestRank(sorted: ArrayLike<number>, p: number): number | null {
  const n = sorted.length;
  if (n === 0) return null;
  return sorted[Math.max(1, Math.floor((p * n + 99) / 100)) - 1];
}

export function rankOf(p: number, n: number): number {
  return Math.max(1, Math.floor((p * n + 99) / 100));
}

/** Stats of a list of values the same way the SQL views compute them (for tests and the UI). */
export function summarize(values: number[]): LatencyStats {
  return summarizeSorted(Float64Array.from(values).sort());
}

function summarizeSorted(s: Float64Array): LatencyStats {
  const n = s.length;
  let sum = 0;
  let under = 0;
  for (const x of s) {
    sum += x;
    if (x < UNDER_MS) under++;
  }
  return {
    count: n,
    mean: n ? sum / n : null,
    min: n ? s[0] : null,
    max: n ? s[n - 1] : null,
    under5s: n ? under / n : null,
    p50: nearestRank(s, 50),
    p80: nearestRank(s, 80),
    p90: nearestRank(s, 90),
    p95: nearestRank(s, 95),
    p99: nearestRank(s, 99),
  };
}

/** Equal-width bin of a value, the same expression as the tool_latency_histogram view. */
export function binOf(ms: number, lo: number, hi: number, bins = 10): number {
  if (hi === lo) return 0;
  return Math.min(bins - 1, Math.trunc(((ms - lo) * bins) / (hi - lo)));
}

const logBinSql = (col: string) =>
  `CASE WHEN ${col} < 1 THEN 0 WHEN ${col} < 10 THEN 1 WHEN ${col} < 100 THEN 2 WHEN ${col} < 1000 THEN 3 WHEN ${col} < 10000 THEN 4 WHEN ${col} < 100000 THEN 5 ELSE 6 END`;

/**
 * Nearest-rank percentiles of one ordered index range: `from` names the table and its
 * WHERE clause; each percentile is one LIMIT 1 OFFSET walk, from the top for the tail so
 * p99 touches 1% of the range, not 99%.
 */
async function percentilesOf(db: Db, n: number, col: string, from: string, args: InValue[], ps: readonly number[] = [0, ...PERCENTILES, 100]): Promise<Percentiles & { min: number | null; max: number | null }> {
  const out = { p50: null, p80: null, p90: null, p95: null, p99: null, min: null, max: null } as Percentiles & { min: number | null; max: number | null };
  if (n === 0) return out;
  const parts: string[] = [];
  const allArgs: InValue[] = [];
  // p0 and p100 are the min and max: one index step each, cheaper than aggregating them
  for (const p of ps) {
    const k = rankOf(p, n);
    const asc = k <= n / 2;
    parts.push(
      `SELECT ${p} AS p, (SELECT ${col} FROM ${from} ORDER BY ${col} ${asc ? "ASC" : "DESC"} LIMIT 1 OFFSET ${asc ? k - 1 : n - k}) AS v`,
    );
    allArgs.push(...args);
  }
  for (const r of await rows(db, parts.join(" UNION ALL "), allArgs))
    (out as any)[r.p === 0 ? "min" : r.p === 100 ? "max" : `p${r.p}`] = r.v == null ? null : Number(r.v);
  return out;
}

/**
 * Both histograms of one ordered index range by range counts (an index walk, no sort and
 * no per-row expression). The equal-width bins must equal the views' expression exactly,
 * so values within a hair of an edge are fetched and binned with binOf (the same
 * floating-point operations); everything else is certainly inside its bin.
 */
async function histogramsOf(db: Db, n: number, col: string, from: string, args: InValue[], lo: number, hi: number): Promise<{ counts: number[]; logCounts: number[] }> {
  const counts = new Array(10).fill(0);
  const logCounts = new Array(LOG_BINS.length).fill(0);
  if (n === 0) return { counts, logCounts };
  const parts: string[] = [];
  const all: InValue[] = [];
  const range = (kind: string, i: number, from_: number | null, to: number | null, select = "count(*)") => {
    const conds = [from_ == null ? "" : ` AND ${col} >= ?`, to == null ? "" : ` AND ${col} < ?`].join("");
    parts.push(select === "count(*)" ? `SELECT '${kind}' AS k, ${i} AS i, (SELECT count(*) FROM ${from}${conds}) AS v` : `SELECT '${kind}' AS k, ${i} AS i, ${col} AS v FROM ${from}${conds}`);
    all.push(...args);
    if (from_ != null) all.push(from_);
    if (to != null) all.push(to);
  };
  LOG_BINS.forEach((b, i) => range("log", i, i === 0 ? null : b.loMs, b.hiMs));
  if (hi === lo) counts[0] = n;
  else {
    const w = hi - lo;
    const delta = w * 1e-9;
    const edge = (i: number) => lo + (w * i) / 10;
    for (let i = 0; i < 10; i++) range("bin", i, i === 0 ? null : edge(i) + delta, i === 9 ? null : edge(i + 1) - delta);
    for (let i = 1; i < 10; i++) range("edge", i, edge(i) - delta, edge(i) + delta, "value");
  }
  for (const r of await rows(db, parts.join(" UNION ALL "), all)) {
    if (r.k === "log") logCounts[Number(r.i)] += Number(r.v);
    else if (r.k === "bin") counts[Number(r.i)] += Number(r.v);
    else counts[binOf(Number(r.v), lo, hi)]++;
  }
  return { counts, logCounts };
}

/**
 * The value bucket of migration 0014 (latency_step_buckets, latency_component_buckets): 0
 * below 1 ms, else the digits of the integer part * 100 + its first two digits — about 90
 * buckets per decade, monotonic in the value. Must equal the SQL expression there.
 */
export function bucketOf(ms: number): number {
  if (!(ms >= 1)) return 0;
  // SQLite's CAST(x AS INTEGER) saturates at the largest 64-bit integer
  const s = ms >= 9223372036854775807 ? "9223372036854775807" : BigInt(Math.trunc(ms)).toString();
  return s.length * 100 + Number(s.slice(0, 2));
}

/** The smallest value in bucket b (null: no lower bound) and the first value above it. */
export function bucketEdges(b: number): { lo: number | null; hi: number } {
  if (b === 0) return { lo: null, hi: 1 };
  const digits = Math.floor(b / 100);
  const lead = b % 100;
  const scale = digits === 1 ? 1 : 10 ** (digits - 2);
  return { lo: lead * scale, hi: (lead + 1) * scale };
}

type Bucket = { b: number; n: number; total: number };

/** Bucket rows (bucket, calls, total_ms) as sorted buckets, empty ones dropped, equal buckets merged. */
function toBuckets(rs: Row[]): Bucket[] {
  const m = new Map<number, Bucket>();
  for (const r of rs) {
    const n = Number(r.calls);
    if (n <= 0) continue;
    const b = Number(r.bucket);
    const x = m.get(b);
    if (x) {
      x.n += n;
      x.total += Number(r.total_ms);
    } else m.set(b, { b, n, total: Number(r.total_ms) });
  }
  return [...m.values()].sort((a, b) => a.b - b.b);
}

/**
 * Where a bucketed distribution's values are: one or more sorted index ranges (`from` = table
 * and WHERE clause, `col` the sorted column), together holding exactly the bucketed values.
 * A distribution over several ranges (all tools; the orchestrator's calls of every tool)
 * needs no index of its own: its values inside one bucket are few and are merged here.
 */
type Parts = { col: string; parts: { from: string; args: InValue[] }[] };

/**
 * The values at 1-based ranks `ranks` of a bucketed distribution (see bucketedLatency): each
 * is one walk inside the bucket holding it, from that bucket's nearer edge (one range), or
 * that bucket's values of every range sorted together (several).
 */
async function bucketedRanks(db: Db, buckets: Bucket[], { col, parts }: Parts, ranks: number[]): Promise<(number | null)[]> {
  const before: number[] = [];
  let c = 0;
  for (const x of buckets) {
    before.push(c);
    c += x.n;
  }
  const find = (k: number) => {
    let j = 0;
    while (before[j] + buckets[j].n < k) j++;
    return j;
  };
  if (parts.length === 1) {
    const { from, args } = parts[0];
    const acc: InValue[] = [];
    const bound = (cond: string, v: number | null) => {
      if (v == null) return "";
      acc.push(v);
      return ` AND ${col} ${cond} ?`;
    };
    const rankSql = (k: number) => {
      const j = find(k);
      const { lo, hi } = bucketEdges(buckets[j].b);
      const fromLow = k - before[j] - 1;
      const fromHigh = before[j] + buckets[j].n - k;
      acc.push(...args);
      if (fromLow <= fromHigh) return `(SELECT ${col} FROM ${from}${bound(">=", lo)} ORDER BY ${col} ASC LIMIT 1 OFFSET ${fromLow})`;
      return `(SELECT ${col} FROM ${from}${bound("<", hi)} ORDER BY ${col} DESC LIMIT 1 OFFSET ${fromHigh})`;
    };
    const [r] = await rows(db, `SELECT ${ranks.map((k, i) => `${rankSql(k)} AS r${i}`).join(", ")}`, acc);
    // null only if rows changed between reading the buckets and the walk (a live run)
    return ranks.map((_, i) => (r[`r${i}`] == null ? null : Number(r[`r${i}`])));
  }
  const values = new Map<number, Float64Array>();
  for (const j of new Set(ranks.map(find))) {
    const { lo, hi } = bucketEdges(buckets[j].b);
    const acc: InValue[] = [];
    const sql = parts
      .map(({ from, args }) => {
        acc.push(...args);
        if (lo != null) acc.push(lo);
        acc.push(hi);
        return `SELECT ${col} AS v FROM ${from}${lo != null ? ` AND ${col} >= ?` : ""} AND ${col} < ?`;
      })
      .join(" UNION ALL ");
    values.set(j, Float64Array.from((await rows(db, sql, acc)).map((r) => Number(r.v))).sort());
  }
  return ranks.map((k) => {
    const j = find(k);
    return values.get(j)![k - before[j] - 1] ?? null;
  });
}

/**
 * Stats and both histograms of one distribution from its value buckets and its sorted index
 * ranges: every order statistic is found inside one bucket (bucketedRanks), every range
 * count is a count inside the bucket holding the range's end. Exact: the buckets are kept in
 * the statements that write the rows, and the values are read from the index.
 */
async function bucketedLatency(db: Db, buckets: Bucket[], where: Parts, histograms = true): Promise<ToolLatency> {
  const { col, parts } = where;
  const n = buckets.reduce((a, x) => a + x.n, 0);
  const logCounts = new Array(LOG_BINS.length).fill(0);
  const counts = new Array(10).fill(0);
  if (n === 0) return { count: 0, mean: null, min: null, max: null, under5s: null, p50: null, p80: null, p90: null, p95: null, p99: null, histogram: { loMs: 0, hiMs: 0, counts }, logHistogram: LOG_BINS.map((b, i) => ({ ...b, count: 0 })) };
  /** SQL for how many values are below v. */
  const belowSql = (v: number, acc: InValue[]) => {
    const b = bucketOf(v);
    const base = buckets.filter((x) => x.b < b).reduce((a, x) => a + x.n, 0);
    if (!buckets.some((x) => x.b === b)) return `${base}`;
    const lo = bucketEdges(b).lo;
    const counts = parts.map(({ from, args }) => {
      acc.push(...args);
      if (lo != null) acc.push(lo);
      acc.push(v);
      return `(SELECT count(*) FROM ${from}${lo != null ? ` AND ${col} >= ?` : ""} AND ${col} < ?)`;
    });
    return `(${base} + ${counts.join(" + ")})`;
  };
  const v = await bucketedRanks(db, buckets, where, [1, ...PERCENTILES.map((p) => rankOf(p, n)), n]);
  const lo = v[0] ?? 0;
  const hi = v[v.length - 1] ?? 0;
  for (const x of buckets) logCounts[x.b === 0 ? 0 : Math.min(LOG_BINS.length - 1, Math.floor(x.b / 100))] += x.n;
  if (hi === lo || !histograms) counts[0] = n;
  else {
    // the equal-width bins as in histogramsOf: ranges clear of the edges by count, values
    // within a hair of an edge fetched and binned with binOf
    const w = hi - lo;
    const delta = w * 1e-9;
    const edge = (i: number) => lo + (w * i) / 10;
    const args2: InValue[] = [];
    const cols: string[] = [];
    for (let i = 1; i < 10; i++) cols.push(`${belowSql(edge(i) - delta, args2)} AS a${i}`, `${belowSql(edge(i) + delta, args2)} AS b${i}`);
    const [r] = await rows(db, `SELECT ${cols.join(", ")}`, args2);
    const below = (i: number, side: "a" | "b") => (i === 0 ? 0 : i === 10 ? n : Number(r[`${side}${i}`]));
    for (let i = 0; i < 10; i++) counts[i] += below(i + 1, "a") - below(i, "b");
    const args3: InValue[] = [];
    const near: string[] = [];
    for (let i = 1; i < 10; i++)
      for (const { from, args } of parts) {
        args3.push(...args, edge(i) - delta, edge(i) + delta);
        near.push(`SELECT ${col} AS v FROM ${from} AND ${col} >= ? AND ${col} < ?`);
      }
    for (const x of await rows(db, near.join(" UNION ALL "), args3)) counts[binOf(Number(x.v), lo, hi)]++;
  }
  const underBucket = bucketOf(UNDER_MS);
  return {
    count: n,
    mean: buckets.reduce((a, x) => a + x.total, 0) / n,
    min: v[0],
    max: v[v.length - 1],
    under5s: buckets.filter((x) => x.b < underBucket).reduce((a, x) => a + x.n, 0) / n,
    p50: v[1],
    p80: v[2],
    p90: v[3],
    p95: v[4],
    p99: v[5],
    histogram: { loMs: lo, hiMs: hi, counts },
    logHistogram: LOG_BINS.map((b, i) => ({ ...b, count: logCounts[i] })),
  };
}

export type RunRow = Report["run"];

/**
 * db/runs.ts findRun (id, or a name only one run has; a shared name throws "ambiguous"), as
 * the report's run header; null when there is no such run.
 */
export async function findRun({ db, run }: { db: Db; run: string | number }): Promise<RunRow | null> {
  try {
    const r = await findRunByRef({ db, ref: run });
    return { id: r.id, name: r.name, benchmark: r.benchmark, createdAt: r.createdAt, startedAt: r.startedAt, canceledAt: r.canceledAt };
  } catch (err) {
    if (err instanceof DbError && err.kind === "not_found") return null;
    throw err;
  }
}

export async function summarizeTasks({ db, runId }: { db: Db; runId: number }): Promise<TaskSummary> {
  const [counts, infra] = await Promise.all([
    rows(db, "SELECT status, count(*) AS n, sum(correct = 1) AS correct FROM tasks WHERE run_id = ? GROUP BY status", [runId]),
    rows(
      db,
      `SELECT count(*) AS n FROM tasks t WHERE t.run_id = ? AND t.status = 'failed' AND t.finished_at IS NOT NULL AND ${INFRA_SQL}`,
      [runId, ...INFRA_FALLBACK_CLASSES],
    ),
  ]);
  const s: TaskSummary = { total: 0, queued: 0, running: 0, succeeded: 0, failed: 0, canceled: 0, correct: 0, infraFailed: Number(infra[0]?.n ?? 0), finished: 0, notFinished: 0, missing: 0, accuracy: null, score: null, scoreExcludingInfra: null };
  for (const r of counts) {
    s.total += Number(r.n);
    s.correct += Number(r.correct ?? 0);
    if (r.status in s) (s as any)[r.status] = Number(r.n);
  }
  s.finished = s.succeeded + s.failed;
  s.notFinished = s.queued + s.running;
  s.missing = s.failed + s.canceled;
  s.accuracy = s.finished ? s.correct / s.finished : null;
  s.score = s.total ? s.correct / s.total : null;
  s.scoreExcludingInfra = s.total - s.infraFailed > 0 ? s.correct / (s.total - s.infraFailed) : null;
  return s;
}

type ToolLatency = LatencyStats & { histogram: Histogram; logHistogram: LogHistogram };

/** The orchestrator's own row in the per-tool tables (the call that chose each tool). */
export const ORCHESTRATOR_ROW = "orchestrator";

/**
 * The tasks of the run with latency rows from an attempt before their final one, as a JSON
 * array of ids for json_each, or null when there are none (the common case: the filter is
 * then skipped and every query reads its covering index as before). Only retried tasks are
 * probed, each through the (task_id, attempt, ...) index.
 */
export async function abandonedAttempts(db: Db, runId: number): Promise<string | null> {
  const retried = await rows(
    db,
    `SELECT t.id FROM tasks t WHERE t.run_id = ? AND t.attempt > 1
       AND EXISTS (SELECT 1 FROM latency_components lc WHERE lc.task_id = t.id AND lc.attempt < t.attempt)`,
    [runId],
  );
  return retried.length ? JSON.stringify(retried.map((r) => Number(r.id))) : null;
}

/**
 * SQL that keeps only rows of final attempts (binds `abandoned` once), or "" for all rows.
 * The id list is one ephemeral index built once; only rows of retried tasks pay a lookup of
 * their task's attempt. (A NOT IN over (task_id, attempt) pairs measured minutes at a
 * million rows: SQLite re-scanned the pairs per row.)
 */
function finalOnly(abandoned: string | null, args: InValue[]): string {
  if (abandoned == null) return "";
  args.push(abandoned);
  return " AND (task_id NOT IN (SELECT value FROM json_each(?)) OR attempt = (SELECT f.attempt FROM tasks f WHERE f.id = task_id))";
}

/** Stats and both histograms of values, with the views' nearest-rank and bin expressions. */
function describeValues(values: Float64Array): ToolLatency {
  const sorted = values.sort();
  const stats = summarizeSorted(sorted);
  const lo = sorted.length ? sorted[0] : 0;
  const hi = sorted.length ? sorted[sorted.length - 1] : 0;
  const counts = new Array(10).fill(0);
  const logCounts = new Array(LOG_BINS.length).fill(0);
  for (const ms of sorted) {
    counts[binOf(ms, lo, hi)]++;
    logCounts[logBinOf(ms)]++;
  }
  return { ...stats, histogram: { loMs: lo, hiMs: hi, counts }, logHistogram: LOG_BINS.map((b, i) => ({ ...b, count: logCounts[i] })) };
}

function logBinOf(ms: number): number {
  let i = 0;
  while (i < LOG_BINS.length - 1 && ms >= LOG_BINS[i].hiMs!) i++;
  return i;
}

/**
 * Every tool step's own latency and every orchestrator call of the run, by tool, from
 * latency_steps (migration 0014: one row per step, kept by triggers as components are
 * written). Values come back as one JSON array per tool rather than a row each; JSON carries
 * 15 significant digits, so values can differ from the stored doubles in the last place
 * (the report's percentiles are read from the index and are exact).
 */
export async function listOwnLatencies(db: Db, runId: number, abandoned: string | null): Promise<Map<string, Float64Array>> {
  const ownArgs: InValue[] = [runId];
  const ownFilter = finalOnly(abandoned, ownArgs);
  const orchArgs: InValue[] = [runId];
  const orchFilter = finalOnly(abandoned, orchArgs);
  const [own, orch] = await Promise.all([
    rows(db, `SELECT tool, json_group_array(ms) AS v FROM latency_steps WHERE run_id = ? AND ms IS NOT NULL${ownFilter} GROUP BY tool ORDER BY tool`, ownArgs),
    rows(db, `SELECT json_group_array(orch) AS v FROM latency_steps WHERE run_id = ? AND orch IS NOT NULL${orchFilter}`, orchArgs),
  ]);
  const out = new Map<string, Float64Array>();
  for (const r of own) out.set(r.tool, Float64Array.from(JSON.parse(r.v) as number[]));
  const o: number[] = JSON.parse(orch[0]?.v ?? "[]");
  if (o.length) out.set(ORCHESTRATOR_ROW, Float64Array.from(o));
  return out;
}

/**
 * Per tool latency (own time, see the top of this file), the orchestrator row, and all tools.
 * With rows from abandoned attempts the buckets (every attempt) do not apply: the final
 * attempts' values are read once and described here.
 */
async function toolLatencies(db: Db, runId: number, abandoned: string | null): Promise<{ tools: (ToolLatency & { tool: string })[]; all: ToolLatency }> {
  if (abandoned == null) return bucketedToolLatencies(db, runId);
  const values = await listOwnLatencies(db, runId, abandoned);
  const tools = [...values.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([tool, v]) => ({ tool, ...describeValues(Float64Array.from(v)) }));
  const toolValues = [...values.entries()].filter(([t]) => t !== ORCHESTRATOR_ROW).map(([, v]) => v);
  const all = new Float64Array(toolValues.reduce((n, v) => n + v.length, 0));
  let at = 0;
  for (const v of toolValues) {
    all.set(v, at);
    at += v.length;
  }
  return { tools, all: describeValues(all) };
}

/**
 * toolLatencies when every row of the run is from a final attempt. Each tool: its
 * latency_step_buckets over latency_steps' (run, tool, ms) index. All tools: the sum of their
 * buckets over the same ranges. The orchestrator row: the 'orchestrator' component of every
 * tool (one per step, so the same values as latency_steps.orch) from latency_component_buckets
 * over latency_components' (run, tool, component, ms) index.
 */
async function bucketedToolLatencies(db: Db, runId: number): Promise<{ tools: (ToolLatency & { tool: string })[]; all: ToolLatency }> {
  const group = (rs: Row[]) => {
    const m = new Map<string, Row[]>();
    for (const r of rs) m.set(r.tool, [...(m.get(r.tool) ?? []), r]);
    return m;
  };
  const [own, orch] = await Promise.all([
    rows(db, "SELECT tool, bucket, calls, total_ms FROM latency_step_buckets WHERE run_id = ? AND calls > 0", [runId]).then(group),
    rows(db, "SELECT tool, bucket, calls, total_ms FROM latency_component_buckets WHERE run_id = ? AND component = 'orchestrator' AND calls > 0", [runId]).then(group),
  ]);
  const ownPart = (tool: string) => ({ from: "latency_steps WHERE run_id = ? AND tool = ? AND ms IS NOT NULL", args: [runId, tool] });
  const ownTools = [...own.keys()].filter((t) => t !== ORCHESTRATOR_ROW);
  const jobs = ownTools.map(async (tool) => ({ tool, ...(await bucketedLatency(db, toBuckets(own.get(tool)!), { col: "ms", parts: [ownPart(tool)] })) }));
  if (orch.size) {
    const parts = [...orch.keys()].map((tool) => ({ from: "latency_components WHERE run_id = ? AND tool = ? AND component = 'orchestrator'", args: [runId, tool] as InValue[] }));
    jobs.push(bucketedLatency(db, toBuckets([...orch.values()].flat()), { col: "ms", parts }).then((l) => ({ tool: ORCHESTRATOR_ROW, ...l })));
  }
  const [tools, all] = await Promise.all([
    Promise.all(jobs),
    bucketedLatency(db, toBuckets(ownTools.flatMap((t) => own.get(t)!)), { col: "ms", parts: ownTools.map(ownPart) }),
  ]);
  return { tools: tools.sort((a, b) => (a.tool < b.tool ? -1 : a.tool > b.tool ? 1 : 0)), all };
}

async function componentStats(db: Db, runId: number, abandoned: string | null): Promise<(ComponentStats & { tool: string })[]> {
  // Every expression costs per row over a million rows: the main pass keeps to three, and
  // retries/statuses (rare) are aggregated from only the rows that have them.
  const aggArgs: InValue[] = [runId];
  const aggFilter = finalOnly(abandoned, aggArgs);
  const rareArgs: InValue[] = [runId];
  const rareFilter = finalOnly(abandoned, rareArgs);
  const [aggs, rare] = await Promise.all([
    // no abandoned rows: the value buckets kept by migration 0014's triggers hold every row
    abandoned == null
      ? rows(db, "SELECT * FROM latency_component_buckets WHERE run_id = ? ORDER BY tool, component", [runId])
      : rows(db, `SELECT tool, component, count(*) AS n, total(ms) AS total, sum(ms < ${UNDER_MS}) AS under FROM latency_components WHERE run_id = ?${aggFilter} GROUP BY tool, component`, aggArgs),
    abandoned == null
      ? []
      : rows(
          db,
          `SELECT tool, component, status, retries > 0 AS retried, count(*) AS n, sum(retries) AS retries
           FROM latency_components WHERE run_id = ? AND (status <> 'ok' OR retries > 0)${rareFilter} GROUP BY 1, 2, 3, 4`,
          rareArgs,
        ),
  ]);
  if (abandoned == null) {
    const groups = new Map<string, Row[]>();
    for (const r of aggs) {
      const key = `${r.tool}\u0000${r.component}`;
      const list = groups.get(key) ?? [];
      list.push(r);
      groups.set(key, list);
    }
    const out: (ComponentStats & { tool: string })[] = [];
    for (const rs of groups.values()) {
      const buckets = toBuckets(rs);
      if (!buckets.length) continue;
      const { tool, component } = rs[0];
      const { histogram: _h, logHistogram: _l, ...stats } = await bucketedLatency(db, buckets, { col: "ms", parts: [{ from: "latency_components WHERE run_id = ? AND tool = ? AND component = ?", args: [runId, tool, component] }] }, false);
      const sum = (k: string) => rs.reduce((a, r) => a + Number(r[k]), 0);
      out.push({
        tool,
        component,
        ...stats,
        totalMs: buckets.reduce((a, x) => a + x.total, 0),
        retries: sum("retries"),
        callsWithRetries: sum("retried"),
        timeouts: sum("timeouts"),
        fallbacks: sum("fallbacks"),
        unavailable: sum("unavailable"),
        errors: sum("errors"),
      });
    }
    return out;
  }
  return Promise.all(
    aggs.map(async (a) => {
      const n = Number(a.n);
      const args: InValue[] = [runId, a.tool, a.component];
      const filter = finalOnly(abandoned, args);
      const pct = await percentilesOf(db, n, "ms", `latency_components WHERE run_id = ? AND tool = ? AND component = ?${filter}`, args);
      return {
        tool: a.tool,
        component: a.component,
        count: n,
        mean: Number(a.total) / n,
        under5s: Number(a.under) / n,
        ...pct,
        totalMs: Number(a.total),
        ...retryBreakdown(rare, a.tool, a.component),
      };
    }),
  );
}

/** The retry table's counts over every attempt (no percentiles: it shows none). */
async function retryCounts(db: Db, runId: number): Promise<(Omit<ComponentStats, keyof LatencyStats | "totalMs"> & { tool: string; count: number })[]> {
  const [aggs, rare] = await Promise.all([
    rows(db, "SELECT tool, component, count(*) AS n FROM latency_components WHERE run_id = ? GROUP BY tool, component", [runId]),
    rows(
      db,
      `SELECT tool, component, status, retries > 0 AS retried, count(*) AS n, sum(retries) AS retries
       FROM latency_components WHERE run_id = ? AND (status <> 'ok' OR retries > 0) GROUP BY 1, 2, 3, 4`,
      [runId],
    ),
  ]);
  return aggs.map((a) => ({ tool: a.tool, component: a.component, count: Number(a.n), ...retryBreakdown(rare, a.tool, a.component) }));
}

/** One (tool, component)'s retry and status counts, from the rows grouped by status and retried. */
function retryBreakdown(rare: Row[], tool: string, component: string) {
  const mine = rare.filter((r) => r.tool === tool && r.component === component);
  const count = (f: (r: Row) => boolean) => mine.filter(f).reduce((x, r) => x + Number(r.n), 0);
  return {
    retries: mine.reduce((x, r) => x + Number(r.retries), 0),
    callsWithRetries: count((r) => Number(r.retried) === 1),
    timeouts: count((r) => r.status === "timeout"),
    fallbacks: count((r) => r.status === "fallback"),
    unavailable: count((r) => r.status === "retrieval_unavailable"),
    errors: count((r) => r.status !== "ok" && r.status !== "fallback"),
  };
}

type TokenRow = Report["tokens"][number];
// the endpoint table shows p50, p95 and max only: the other walks would be wasted
const ENDPOINT_PERCENTILES = [50, 95, 100] as const;

/** Per endpoint latency and errors, and (from the same pass over llm_calls) tokens per model. */
async function endpointStats(db: Db, runId: number): Promise<{ endpoints: EndpointReport[]; tokens: TokenRow[] }> {
  const [llmBuckets, retrieval] = await Promise.all([
    // kept per (run, endpoint, role, model, value bucket) by migration 0014's triggers
    rows(db, "SELECT * FROM llm_call_buckets WHERE run_id = ? AND calls > 0 ORDER BY endpoint, role, model", [runId]),
    // one pass over the retrieval index for counts, sums and statuses
    rows(
      db,
      `SELECT endpoint, backend, count(*) AS n, total(ms) AS total, sum(status NOT IN ('ok', 'fallback')) AS errors,
         sum(status = 'timeout') AS timeouts, sum(retries > 0) AS retries
       FROM latency_components WHERE run_id = ? AND component = 'retrieval' AND endpoint IS NOT NULL GROUP BY endpoint, backend`,
      [runId],
    ),
  ]);
  const groups = new Map<string, Row[]>();
  for (const r of llmBuckets) {
    const key = `${r.endpoint}\u0000${r.role}\u0000${r.model}`;
    const list = groups.get(key) ?? [];
    list.push(r);
    groups.set(key, list);
  }
  const llm: Row[] = [];
  const out: EndpointReport[] = [];
  for (const rs of groups.values()) {
    const sum = (k: string) => rs.reduce((a, r) => a + Number(r[k]), 0);
    const { endpoint, role, model } = rs[0];
    const n = sum("calls");
    const ttftCalls = sum("ttft_calls");
    const errors = sum("errors");
    llm.push({ role, model, n, p: sum("prompt_tokens"), c: sum("completion_tokens"), truncated: sum("truncated") });
    const [p50, p95, max] = await bucketedRanks(db, toBuckets(rs), { col: "total_ms", parts: [{ from: "llm_calls WHERE run_id = ? AND endpoint = ? AND role = ? AND model = ?", args: [runId, endpoint, role, model] }] }, [rankOf(50, n), rankOf(95, n), n]);
    out.push({ kind: "llm", endpoint, role, name: model, calls: n, errors, errorRate: errors / n, timeouts: sum("timeouts"), retries: sum("retries"), mean: sum("total_ms") / n, p50, p95, max, meanTtft: ttftCalls ? sum("ttft_ms") / ttftCalls : null });
  }
  for (const r of retrieval) {
    const n = Number(r.n);
    const p = await percentilesOf(db, n, "ms", "latency_components WHERE run_id = ? AND component = 'retrieval' AND endpoint = ? AND backend IS ?", [runId, r.endpoint, r.backend], ENDPOINT_PERCENTILES);
    out.push({ kind: "retrieval", endpoint: r.endpoint, role: "retrieval", name: r.backend, calls: n, errors: Number(r.errors), errorRate: Number(r.errors) / n, timeouts: Number(r.timeouts), retries: Number(r.retries), mean: Number(r.total) / n, p50: p.p50, p95: p.p95, max: p.max, meanTtft: null });
  }
  const tokens = new Map<string, TokenRow>();
  for (const r of llm) {
    const key = `${r.role}\u0000${r.model}`;
    const t = tokens.get(key) ?? { role: r.role, model: r.model, calls: 0, promptTokens: 0, completionTokens: 0, truncated: 0 };
    t.calls += Number(r.n);
    t.promptTokens += Number(r.p);
    t.completionTokens += Number(r.c);
    t.truncated += Number(r.truncated ?? 0);
    tokens.set(key, t);
  }
  return {
    endpoints: out.sort((a, b) => a.kind.localeCompare(b.kind) || a.role.localeCompare(b.role) || a.endpoint.localeCompare(b.endpoint)),
    tokens: [...tokens.values()].sort((a, b) => a.role.localeCompare(b.role) || a.model.localeCompare(b.model)),
  };
}

/** The slowest tool calls: each tool's top `limit` walked from its index, then merged. */
export async function listSlowestCalls({ db, runId, limit = 20, tool, tools: known }: { db: Db; runId: number; limit?: number; tool?: string | null; tools?: string[] }): Promise<SlowCall[]> {
  const tools = tool ? [tool] : (known ?? (await rows(db, "SELECT DISTINCT tool FROM tool_calls WHERE run_id = ? AND status <> 'invalid'", [runId])).map((r) => r.tool as string));
  const tops = await Promise.all(
    tools.map((t) =>
      rows(
        db,
        `SELECT c.task_id, t.external_id, c.attempt, c.step, c.tool, c.model, c.status, c.duration_ms
         FROM (SELECT id FROM tool_calls WHERE run_id = ? AND tool = ? AND status <> 'invalid' ORDER BY duration_ms DESC LIMIT ?) k
         JOIN tool_calls c ON c.id = k.id LEFT JOIN tasks t ON t.id = c.task_id`,
        [runId, t, limit],
      ),
    ),
  );
  const top = tops.flat().sort((a, b) => Number(b.duration_ms) - Number(a.duration_ms)).slice(0, limit);
  return Promise.all(
    top.map(async (r) => {
      const comps = await rows(db, "SELECT component, ms FROM latency_components WHERE task_id = ? AND attempt = ? AND step = ?", [r.task_id, r.attempt, r.step]);
      return {
        taskId: Number(r.task_id),
        externalId: r.external_id ?? null,
        attempt: Number(r.attempt),
        step: Number(r.step),
        tool: r.tool,
        model: r.model ?? null,
        status: r.status,
        durationMs: Number(r.duration_ms),
        components: Object.fromEntries(comps.map((c) => [c.component, Number(c.ms)])),
      };
    }),
  );
}

/** Failed tasks in task id order; `after` (a task id) starts the page after that task. */
export async function listFailedTasks({ db, runId, limit = 200, after = 0 }: { db: Db; runId: number; limit?: number; after?: number }): Promise<FailedTask[]> {
  const r = await rows(
    db,
    `SELECT t.id, t.external_id, t.status, t.attempt, t.error_class, t.error_message,
       ${INFRA_SQL} AS infra
     FROM tasks t WHERE t.run_id = ? AND t.status = 'failed' AND t.finished_at IS NOT NULL AND t.id > ? ORDER BY t.id LIMIT ?`,
    [...INFRA_FALLBACK_CLASSES, runId, after, limit],
  );
  return r.map((x) => ({ taskId: Number(x.id), externalId: x.external_id, status: x.status, attempt: Number(x.attempt), errorClass: x.error_class ?? null, errorMessage: x.error_message ?? null, infra: Boolean(x.infra) }));
}

export type BuildReportOptions = { db: Db; runId: number; slowest?: number; failed?: number; missing?: number; allAttempts?: boolean };

export async function buildReport({ db, runId, slowest = 20, failed = 200, missing = 10_000, allAttempts = false }: BuildReportOptions): Promise<Report | null> {
  await tuneForReads(db);
  const run = await findRun({ db, run: runId });
  if (!run) return null;
  const abandoned = allAttempts ? null : await abandonedAttempts(db, runId);
  const latencyP = toolLatencies(db, runId, abandoned);
  const [tasks, comps, latency, { endpoints, tokens }, errorsByTool, errorsByClass, steps, slow, failedTasks, missingRows] = await Promise.all([
    summarizeTasks({ db, runId }),
    componentStats(db, runId, abandoned),
    latencyP,
    endpointStats(db, runId),
    rows(db, "SELECT tool, status, coalesce(error_class, status) AS error_class, count(*) AS n FROM tool_calls WHERE run_id = ? AND status <> 'ok' GROUP BY 1, 2, 3 ORDER BY n DESC", [runId]),
    rows(
      db,
      `SELECT coalesce(t.error_class, 'unknown') AS error_class, count(*) AS n,
         max(${INFRA_SQL}) AS infra
       FROM tasks t WHERE t.run_id = ? AND t.status = 'failed' AND t.finished_at IS NOT NULL GROUP BY 1 ORDER BY n DESC`,
      [...INFRA_FALLBACK_CLASSES, runId],
    ),
    rows(
      db,
      `SELECT steps, count(*) AS n FROM (SELECT (SELECT count(*) FROM tool_calls c WHERE c.task_id = t.id AND c.attempt = t.attempt) AS steps
         FROM tasks t WHERE t.run_id = ? AND t.status IN ('succeeded', 'failed') AND t.finished_at IS NOT NULL) GROUP BY steps ORDER BY steps`,
      [runId],
    ),
    latencyP.then((l) => listSlowestCalls({ db, runId, limit: slowest, tools: l.tools.map((t) => t.tool).filter((t) => t !== ORCHESTRATOR_ROW) })),
    listFailedTasks({ db, runId, limit: failed }),
    rows(db, "SELECT external_id FROM tasks WHERE run_id = ? AND status IN ('failed', 'canceled') AND finished_at IS NOT NULL ORDER BY id LIMIT ?", [runId, missing + 1]),
  ]);
  const perTask = steps.map((s) => ({ steps: Number(s.steps), tasks: Number(s.n) }));
  const nTasks = perTask.reduce((a, s) => a + s.tasks, 0);
  return {
    run,
    generatedAt: Date.now(),
    attempts: allAttempts ? "all" : "final",
    tasks,
    steps: {
      mean: nTasks ? perTask.reduce((a, s) => a + s.steps * s.tasks, 0) / nTasks : null,
      max: perTask.length ? perTask[perTask.length - 1].steps : null,
      invalid: errorsByTool.filter((r) => r.status === "invalid").reduce((a, r) => a + Number(r.n), 0),
      perTask,
    },
    // a tool's components are its own (the orchestrator's calls are the orchestrator row)
    tools: latency.tools.map((t) => ({
      ...t,
      components: t.tool === ORCHESTRATOR_ROW ? [] : comps.filter((c) => c.tool === t.tool && c.component !== "orchestrator").map(({ tool: _t, ...c }) => c),
    })),
    all: latency.all,
    endpoints,
    errors: {
      byTool: errorsByTool.map((r) => ({ tool: r.tool, status: r.status, errorClass: r.error_class, calls: Number(r.n) })),
      byTaskClass: errorsByClass.map((r) => ({ errorClass: r.error_class, tasks: Number(r.n), infra: Boolean(r.infra) })),
    },
    retries: (abandoned == null ? comps : await retryCounts(db, runId)).map((c) => ({ tool: c.tool, component: c.component, calls: c.count, callsWithRetries: c.callsWithRetries, retries: c.retries, timeouts: c.timeouts, fallbacks: c.fallbacks, unavailable: c.unavailable, errors: c.errors })),
    tokens,
    slowest: slow,
    failed: failedTasks,
    missingIds: missingRows.slice(0, missing).map((r) => r.external_id as string),
    missingTruncated: missingRows.length > missing,
  };
}

export type LatencyDistribution = LatencyStats & {
  runId: number;
  tool: string | null;
  component: string | null;
  histogram: Histogram;
  logHistogram: LogHistogram;
  // [ms, fraction of calls <= ms], at most ~`points` points, for the cumulative curve
  cdf: [number, number][];
};

/**
 * One distribution for the charts: a tool's end-to-end call latency (no component), one
 * component of a tool, or all tools (no tool).
 */
export async function getLatency({ db, runId, tool = null, component = null, points = 100, allAttempts = false }: { db: Db; runId: number; tool?: string | null; component?: string | null; points?: number; allAttempts?: boolean }): Promise<LatencyDistribution> {
  await tuneForReads(db);
  const abandoned = allAttempts ? null : await abandonedAttempts(db, runId);
  if (!component) return ownLatencyDistribution({ db, runId, tool, points, abandoned });
  const col = "ms";
  const args: InValue[] = tool ? [runId, tool, component] : [runId, component];
  const where = `latency_components WHERE run_id = ? ${tool ? "AND tool = ?" : ""} AND component = ?${finalOnly(abandoned, args)}`;
  const agg = (await rows(db, `SELECT count(*) AS n, avg(${col}) AS mean, min(${col}) AS lo, max(${col}) AS hi, sum(${col} < ${UNDER_MS}) AS under FROM ${where}`, args))[0];
  const n = Number(agg?.n ?? 0);
  const lo = n ? Number(agg.lo) : 0;
  const hi = n ? Number(agg.hi) : 0;
  const { counts, logCounts } = await histogramsOf(db, n, col, where, args, lo, hi);
  let cdf: [number, number][] = [];
  if (n) {
    // Every k-th value in order: exact points of the empirical CDF without shipping all rows.
    const k = Math.max(1, Math.ceil(n / points));
    const sampled = await rows(
      db,
      `SELECT rn, v FROM (SELECT ${col} AS v, row_number() OVER (ORDER BY ${col}) AS rn FROM ${where}) WHERE rn % ? = 0 OR rn = 1 OR rn = ?`,
      [...args, k, n],
    );
    cdf = sampled.map((r) => [Number(r.v), Number(r.rn) / n]);
  }
  const pct = await percentilesOf(db, n, col, where, args);
  return {
    runId,
    tool,
    component,
    count: n,
    mean: n ? Number(agg.mean) : null,
    under5s: n ? Number(agg.under) / n : null,
    ...pct,
    histogram: { loMs: lo, hiMs: hi, counts },
    logHistogram: LOG_BINS.map((b, i) => ({ ...b, count: logCounts[i] })),
    cdf,
  };
}

/** A tool's own latency (or every tool's; or the orchestrator row's), as the report counts it. */
async function ownLatencyDistribution({ db, runId, tool, points, abandoned }: { db: Db; runId: number; tool: string | null; points: number; abandoned: string | null }): Promise<LatencyDistribution> {
  const byTool = await listOwnLatencies(db, runId, abandoned);
  const picked = tool ? [byTool.get(tool) ?? new Float64Array()] : [...byTool.entries()].filter(([t]) => t !== ORCHESTRATOR_ROW).map(([, v]) => v);
  const values = new Float64Array(picked.reduce((n, v) => n + v.length, 0));
  let at = 0;
  for (const v of picked) {
    values.set(v, at);
    at += v.length;
  }
  const d = describeValues(values);
  const n = values.length;
  const k = Math.max(1, Math.ceil(n / points));
  const cdf: [number, number][] = [];
  for (let rn = 1; rn <= n; rn++) if (rn % k === 0 || rn === 1 || rn === n) cdf.push([values[rn - 1], rn / n]);
  return { runId, tool, component: null, ...d, cdf };
}

export type CompareRow = { section: string; metric: string; a: number | null; b: number | null; ratio: number | null };
export type Comparison = { a: Report["run"]; b: Report["run"]; rows: CompareRow[] };

/** Two runs side by side; ratio = b / a (above 1: the second run is larger/slower). */
export function compareReports({ a, b }: { a: Report; b: Report }): Comparison {
  const out: CompareRow[] = [];
  const add = (section: string, metric: string, x: number | null | undefined, y: number | null | undefined) =>
    out.push({ section, metric, a: x ?? null, b: y ?? null, ratio: x != null && y != null && x !== 0 ? y / x : null });
  add("tasks", "tasks", a.tasks.total, b.tasks.total);
  add("tasks", "succeeded", a.tasks.succeeded, b.tasks.succeeded);
  add("tasks", "failed", a.tasks.failed, b.tasks.failed);
  add("tasks", "accuracy", a.tasks.accuracy, b.tasks.accuracy);
  add("tasks", "score", a.tasks.score, b.tasks.score);
  add("tasks", "score_excluding_infra", a.tasks.scoreExcludingInfra, b.tasks.scoreExcludingInfra);
  add("tasks", "mean_steps", a.steps.mean, b.steps.mean);
  const tools = [...new Set([...a.tools.map((t) => t.tool), ...b.tools.map((t) => t.tool)])].sort();
  const stat = (r: Report, tool: string) => (tool === "all" ? r.all : r.tools.find((t) => t.tool === tool));
  for (const tool of [...tools, "all"]) {
    const x = stat(a, tool);
    const y = stat(b, tool);
    add(`latency ${tool}`, "calls", x?.count, y?.count);
    for (const m of ["mean", "p50", "p90", "p95", "p99", "max"] as const) add(`latency ${tool}`, `${m}_ms`, x?.[m], y?.[m]);
    add(`latency ${tool}`, "under_5s", x?.under5s, y?.under5s);
  }
  for (const tool of tools) {
    const ca = a.tools.find((t) => t.tool === tool)?.components ?? [];
    const cb = b.tools.find((t) => t.tool === tool)?.components ?? [];
    for (const comp of [...new Set([...ca.map((c) => c.component), ...cb.map((c) => c.component)])].sort()) {
      const x = ca.find((c) => c.component === comp);
      const y = cb.find((c) => c.component === comp);
      add(`component ${tool}/${comp}`, "p50_ms", x?.p50, y?.p50);
      add(`component ${tool}/${comp}`, "p95_ms", x?.p95, y?.p95);
    }
  }
  return { a: a.run, b: b.run, rows: out };
}
