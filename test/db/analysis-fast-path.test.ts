// The report's fast path (migration 0014: latency_steps, value buckets, per-endpoint totals,
// all kept by triggers) against a brute-force computation from the raw rows in plain code:
// every percentile, min and max must be the very same double, counts and histograms equal,
// means equal to rounding. Covered: a database migrated before the rows existed, one whose
// rows were written before migration 0014 (the backfill), rows added, changed and deleted
// after a report, and a task with an abandoned attempt (the filtered path).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateRun } from "../../bench/gen-latency-rows";
import { binOf, bucketEdges, bucketOf, buildReport, LOG_BINS, summarize, UNDER_MS, type LatencyStats, type Report } from "../../db/analysis";
import { closeDb, MIGRATIONS_DIR, openDb, type Db } from "../../db/client";
import { computeOwnLatencies } from "../_own-latency";
import { migrateBefore } from "./_migrate-before";

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "baton-fast-path-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function q(db: Db, sql: string, args: any[] = []): Promise<Record<string, any>[]> {
  return (await db.$client.execute({ sql, args })).rows as any;
}

function logBin(ms: number): number {
  return LOG_BINS.findIndex((b) => b.hiMs == null || ms < b.hiMs);
}

/** Stats, both histograms as the report defines them, from plain values. */
function bruteForce(values: number[]) {
  const s = summarize(values);
  const sorted = [...values].sort((a, b) => a - b);
  const lo = sorted[0] ?? 0;
  const hi = sorted[sorted.length - 1] ?? 0;
  const counts = new Array(10).fill(0);
  const logCounts = new Array(LOG_BINS.length).fill(0);
  for (const ms of sorted) {
    counts[binOf(ms, lo, hi)]++;
    logCounts[logBin(ms)]++;
  }
  return { ...s, counts, logCounts };
}

function expectSame(got: LatencyStats & { histogram?: { counts: number[] }; logHistogram?: { count: number }[] }, values: number[], what: string) {
  const b = bruteForce(values);
  // the very same doubles: nearest-rank picks a stored value
  expect([what, got.count, got.min, got.p50, got.p80, got.p90, got.p95, got.p99, got.max]).toEqual([what, b.count, b.min, b.p50, b.p80, b.p90, b.p95, b.p99, b.max]);
  expect([what, got.under5s]).toEqual([what, b.under5s]);
  if (b.mean == null) expect(got.mean).toBeNull();
  else expect(Math.abs(got.mean! - b.mean) / b.mean).toBeLessThan(1e-9);
  if (got.histogram) expect([what, ...got.histogram.counts]).toEqual([what, ...b.counts]);
  if (got.logHistogram) expect([what, ...got.logHistogram.map((x) => x.count)]).toEqual([what, ...b.logCounts]);
}

/** Per (tool, component) ms of the final attempts (or all), from the raw rows. */
async function componentValues(db: Db, runId: number, allAttempts: boolean): Promise<Map<string, number[]>> {
  const rows = await q(db, "SELECT lc.tool, lc.component, lc.ms, lc.attempt, t.attempt AS final FROM latency_components lc JOIN tasks t ON t.id = lc.task_id WHERE lc.run_id = ?", [runId]);
  const out = new Map<string, number[]>();
  for (const r of rows) {
    if (!allAttempts && r.attempt !== r.final) continue;
    const k = `${r.tool}/${r.component}`;
    (out.get(k) ?? out.set(k, []).get(k)!).push(r.ms);
  }
  return out;
}

async function expectReportExact(db: Db, runId: number, allAttempts = false): Promise<Report> {
  const report = (await buildReport({ db, runId, allAttempts }))!;
  const own = await computeOwnLatencies(db, runId, { allAttempts });
  expect(report.tools.map((t) => t.tool)).toEqual([...own.keys()].sort());
  for (const t of report.tools) expectSame(t, own.get(t.tool)!, t.tool);
  expectSame(report.all, [...own].filter(([tool]) => tool !== "orchestrator").flatMap(([, v]) => v), "all");
  const comps = await componentValues(db, runId, allAttempts);
  const got = report.tools.flatMap((t) => t.components.map((c) => [`${t.tool}/${c.component}`, c] as const));
  expect(got.length).toBeGreaterThan(0);
  for (const [k, c] of got) {
    expectSame(c, comps.get(k)!, k);
    expect(c.totalMs).toBeCloseTo(comps.get(k)!.reduce((a, x) => a + x, 0), 6);
  }
  // endpoints: every HTTP attempt
  const llm = await q(db, "SELECT endpoint, role, model, total_ms, outcome, http_attempt, prompt_tokens FROM llm_calls WHERE run_id = ?", [runId]);
  for (const e of report.endpoints.filter((x) => x.kind === "llm")) {
    const mine = llm.filter((r) => r.endpoint === e.endpoint && r.role === e.role && r.model === e.name);
    const s = summarize(mine.map((r) => r.total_ms));
    expect([e.endpoint, e.calls, e.p50, e.p95, e.max]).toEqual([e.endpoint, s.count, s.p50, s.p95, s.max]);
    expect([e.errors, e.retries]).toEqual([mine.filter((r) => r.outcome !== "ok").length, mine.filter((r) => r.http_attempt > 1).length]);
    expect(e.mean!).toBeCloseTo(s.mean!, 6);
  }
  expect(report.tokens.reduce((a, t) => a + t.promptTokens, 0)).toBe(llm.reduce((a, r) => a + (r.prompt_tokens ?? 0), 0));
  return report;
}

describe("bucketOf", () => {
  test("is monotonic, and each bucket's edges hold exactly its values", () => {
    const xs = [0, 0.5, 1, 1.5, 9.99, 10, 99.5, 100, 4999.99, 5000, 12345.6, 99999, 100000, 3.2e9];
    for (let i = 1; i < xs.length; i++) expect(bucketOf(xs[i])).toBeGreaterThanOrEqual(bucketOf(xs[i - 1]));
    for (const x of xs) {
      const { lo, hi } = bucketEdges(bucketOf(x));
      expect(lo == null || x >= lo).toBe(true);
      expect(x < hi).toBe(true);
    }
    // 5 s and the decades are edges: the share under 5 s and the decade bins are bucket sums
    expect(bucketEdges(bucketOf(UNDER_MS)).lo).toBe(UNDER_MS);
    for (const b of LOG_BINS) if (b.loMs > 0) expect(bucketEdges(bucketOf(b.loMs)).lo).toBe(b.loMs);
  });

  test("equals the SQL expression of migration 0014", async () => {
    const db = await openDb({ url: join(dir, "bucket.db") });
    try {
      const sql = readFileSync(join(MIGRATIONS_DIR, readdirSync(MIGRATIONS_DIR).find((f) => f.startsWith("0014_"))!), "utf8");
      const expr = /SELECT `run_id`, `tool`, `component`, (CASE WHEN `ms` < 1 .*? END), count\(\*\)/.exec(sql)![1];
      for (const ms of [0, 0.999, 1, 7.5, 10, 42.42, 999.999, 1000, 4999.5, 5000, 123456.7, 9.9e12]) {
        const [r] = await q(db, `SELECT ${expr} AS b FROM (SELECT ? AS ms)`, [ms]);
        expect([ms, Number(r.b)]).toEqual([ms, bucketOf(ms)]);
      }
    } finally {
      closeDb(db);
    }
  });
});

describe("the fast path equals a brute-force computation", () => {
  let db: Db;
  beforeAll(async () => {
    db = await openDb({ url: join(dir, "a.db") });
    await generateRun({ db, components: 6000, seed: 11, name: "a" });
  });
  afterAll(() => closeDb(db));

  test("on a generated run", async () => {
    const [{ n }] = await q(db, "SELECT count(*) AS n FROM latency_steps WHERE run_id = 1");
    expect(Number(n)).toBeGreaterThan(1000);
    await expectReportExact(db, 1);
  });

  test("after rows are added, changed and deleted", async () => {
    await generateRun({ db, components: 2000, seed: 12, name: "b" });
    // a run's rows written in two rounds: the triggers add to existing steps and buckets
    const [t] = await q(db, "SELECT task_id, attempt, step FROM latency_components WHERE run_id = 1 AND tool = 'search' AND component = 'retrieval' LIMIT 1");
    await q(db, "UPDATE latency_components SET ms = ms * 3 + 0.123 WHERE task_id = ? AND attempt = ? AND step = ? AND component = 'query_llm'", [t.task_id, t.attempt, t.step]);
    await q(db, "DELETE FROM latency_components WHERE task_id = ? AND attempt = ? AND step = ? AND component = 'retrieval'", [t.task_id, t.attempt, t.step]);
    const [u] = await q(db, "SELECT task_id, attempt, step FROM latency_components WHERE run_id = 1 AND tool = 'answer' AND component = 'judge' LIMIT 1");
    await q(db, "DELETE FROM latency_components WHERE task_id = ? AND attempt = ? AND step = ?", [u.task_id, u.attempt, u.step]);
    await q(db, "DELETE FROM llm_calls WHERE id = (SELECT min(id) FROM llm_calls WHERE run_id = 1)");
    await expectReportExact(db, 1);
    await expectReportExact(db, 2);
  });

  test("with an abandoned attempt, final-only and all attempts", async () => {
    const [t] = await q(db, "SELECT task_id FROM latency_components WHERE run_id = 1 AND tool = 'search' LIMIT 1");
    await q(db, "UPDATE tasks SET attempt = attempt + 1 WHERE id = ?", [t.task_id]);
    try {
      const final = await expectReportExact(db, 1);
      const all = await expectReportExact(db, 1, true);
      expect(all.tools.find((x) => x.tool === "search")!.count).toBeGreaterThan(final.tools.find((x) => x.tool === "search")!.count);
    } finally {
      await q(db, "UPDATE tasks SET attempt = attempt - 1 WHERE id = ?", [t.task_id]);
    }
  });
});

test("a database with rows written before migration 0014 is backfilled to the same numbers", async () => {
  // the migrations up to the one before 0014, a run written, then every migration
  const path = join(dir, "old.db");
  let db = await openDb({ url: path, migrate: false });
  await migrateBefore({ db, tagPrefix: "0014_", scratchDir: join(dir, "older-migrations") });
  expect(await q(db, "SELECT name FROM sqlite_master WHERE name = 'latency_steps'")).toEqual([]);
  await generateRun({ db, components: 4000, seed: 13, name: "old" });
  closeDb(db);
  db = await openDb({ url: path });
  try {
    await expectReportExact(db, 1);
  } finally {
    closeDb(db);
  }
});
