import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateRun, INFRA_ERROR_CLASS, SLOW_RETRIEVAL_ENDPOINT } from "../../bench/gen-latency-rows";
import { buildReport, compareReports, findRun, getLatency, summarize, type Report } from "../../db/analysis";
import { closeDb, openDb, type Db } from "../../db/client";
import { computeOwnLatencies } from "../_own-latency";

let dir: string;
let db: Db;
let report: Report;
let slow: Report;

async function q(sql: string, args: any[] = []): Promise<Record<string, any>[]> {
  return (await db.$client.execute({ sql, args })).rows as any;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-analysis-"));
  db = await openDb({ url: join(dir, "a.db") });
  await generateRun({ db, tasks: 300, seed: 5, name: "base" });
  await generateRun({ db, tasks: 300, seed: 5, scale: 2, name: "slower" });
  report = (await buildReport({ db, runId: 1 }))!;
  slow = (await buildReport({ db, runId: 2 }))!;
});

afterAll(() => {
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

describe("buildReport", () => {
  test("per-tool percentiles agree with the tool_latency_stats view", async () => {
    const view = await q("SELECT * FROM tool_latency_stats WHERE run_id = 1 ORDER BY tool");
    expect(report.tools.map((t) => t.tool)).toEqual(view.map((v) => v.tool));
    for (const v of view) {
      const t = report.tools.find((x) => x.tool === v.tool)!;
      expect(t.count).toBe(v.calls);
      // the report's values travel as JSON (15 significant digits): equal to a few parts in 1e12
      for (const [a, b] of [[t.min, v.min_ms], [t.p50, v.p50_ms], [t.p80, v.p80_ms], [t.p90, v.p90_ms], [t.p95, v.p95_ms], [t.p99, v.p99_ms], [t.max, v.max_ms]]) expect(a!).toBeCloseTo(b, 6);
      expect(t.under5s!).toBeCloseTo(v.under_5s, 10);
    }
  });

  test("a tool's latency is its own time; the orchestrator's calls are their own row", async () => {
    const own = await computeOwnLatencies(db, 1);
    expect(report.tools.map((t) => t.tool)).toEqual([...own.keys()].sort());
    for (const t of report.tools) {
      const s = summarize(own.get(t.tool)!);
      expect(t.count).toBe(s.count);
      expect(t.p50!).toBeCloseTo(s.p50!, 6);
      expect(t.p99!).toBeCloseTo(s.p99!, 6);
      expect(t.mean!).toBeCloseTo(s.mean!, 6);
    }
    // the orchestrator's time is in no tool's row
    const search = report.tools.find((t) => t.tool === "search")!;
    expect(search.components.map((c) => c.component).sort()).toEqual(["query_llm", "retrieval"]);
    const [raw] = await q("SELECT count(*) AS n FROM latency_components WHERE run_id = 1 AND component = 'orchestrator'");
    expect(report.tools.find((t) => t.tool === "orchestrator")!.count).toBe(raw.n);
  });

  test("per-tool histograms agree with tool_latency_histogram and tool_latency_log_histogram", async () => {
    for (const t of report.tools) {
      const bins = await q("SELECT calls FROM tool_latency_histogram WHERE run_id = 1 AND tool = ? ORDER BY bin", [t.tool]);
      expect(t.histogram.counts).toEqual(bins.map((b) => b.calls));
      const log = await q("SELECT label, calls FROM tool_latency_log_histogram WHERE run_id = 1 AND tool = ? ORDER BY bin", [t.tool]);
      expect(t.logHistogram.map((b) => [b.label, b.count])).toEqual(log.map((b) => [b.label, b.calls]));
    }
  });

  test("tokens per model add up to the llm_calls rows", async () => {
    const view = await q("SELECT * FROM run_tokens WHERE run_id = 1 ORDER BY role, model");
    expect(report.tokens.map((t) => [t.role, t.model, t.calls, t.promptTokens, t.completionTokens, t.truncated])).toEqual(
      view.map((v) => [v.role, v.model, v.calls, v.prompt_tokens, v.completion_tokens, v.truncated]),
    );
  });

  test("per-component percentiles and retry counts agree with the views", async () => {
    const view = await q("SELECT s.*, r.calls_with_retries, r.timeouts, r.fallbacks, r.unavailable FROM component_latency_stats s JOIN retry_summary r USING (run_id, tool, component) WHERE run_id = 1");
    const comps = report.tools.flatMap((t) => t.components.map((c) => ({ tool: t.tool, ...c })));
    // invalid steps have an orchestrator component under the invalid tool name: the view has them too
    // a tool's components are its own: the orchestrator component is the orchestrator row
    for (const v of view.filter((x) => x.component !== "orchestrator" && report.tools.some((t) => t.tool === x.tool))) {
      const c = comps.find((x) => x.tool === v.tool && x.component === v.component)!;
      expect([c.count, c.p50, c.p80, c.p90, c.p95, c.p99, c.max]).toEqual([v.calls, v.p50_ms, v.p80_ms, v.p90_ms, v.p95_ms, v.p99_ms, v.max_ms]);
      expect([c.callsWithRetries, c.timeouts, c.fallbacks, c.unavailable]).toEqual([v.calls_with_retries, v.timeouts, v.fallbacks, v.unavailable]);
    }
  });

  test("the all-tools row is nearest-rank over every tool's own time, the orchestrator's calls left out", async () => {
    const own = await computeOwnLatencies(db, 1);
    const s = summarize([...own.entries()].filter(([t]) => t !== "orchestrator").flatMap(([, v]) => v));
    expect(report.all.count).toBe(s.count);
    for (const [a, b] of [[report.all.p50, s.p50], [report.all.p95, s.p95], [report.all.p99, s.p99]]) expect(a!).toBeCloseTo(b!, 6);
    expect(report.all.histogram.counts.reduce((a, b) => a + b, 0)).toBe(s.count);
    expect(report.all.logHistogram.reduce((a, b) => a + b.count, 0)).toBe(s.count);
  });

  test("endpoint rows agree with endpoint_latency and the slow replica of the primary retriever has the highest median", async () => {
    const view = await q("SELECT * FROM endpoint_latency WHERE run_id = 1");
    expect(report.endpoints.length).toBe(view.length);
    for (const v of view) {
      const e = report.endpoints.find((x) => x.kind === v.kind && x.endpoint === v.endpoint && x.role === v.component && x.name === v.name)!;
      expect([e.calls, e.errors, e.p50, e.p95, e.max]).toEqual([v.calls, v.errors, v.p50_ms, v.p95_ms, v.max_ms]);
    }
    const retrieval = report.endpoints.filter((e) => e.kind === "retrieval" && e.name === "wiki_retrieval").sort((a, b) => b.p50! - a.p50!);
    expect(retrieval[0].endpoint).toBe(SLOW_RETRIEVAL_ENDPOINT);
  });

  test("task counts, accuracy and both scores agree with run_summary", async () => {
    const [v] = await q("SELECT * FROM run_summary WHERE run_id = 1");
    const t = report.tasks;
    expect([t.total, t.succeeded, t.failed, t.running, t.queued, t.correct, t.infraFailed]).toEqual([v.tasks, v.succeeded, v.failed, v.running, v.queued, v.correct, v.infra_failed]);
    expect([t.finished, t.notFinished, t.missing]).toEqual([v.finished, v.not_finished, v.missing]);
    expect(t.accuracy!).toBeCloseTo(v.accuracy, 4);
    expect(t.score!).toBeCloseTo(v.score, 4);
    expect(t.scoreExcludingInfra!).toBeCloseTo(v.score_excluding_infra, 4);
    expect(report.errors.byTaskClass.find((e) => e.errorClass === INFRA_ERROR_CLASS)?.infra).toBe(true);
  });

  test("missing ids, failed tasks and slowest calls come from the rows", async () => {
    // missing = terminal and not succeeded (queued and running tasks are not finished, not missing)
    const missing = await q("SELECT external_id FROM tasks WHERE run_id = 1 AND status IN ('failed', 'canceled') ORDER BY id");
    expect(report.missingIds).toEqual(missing.map((r) => r.external_id));
    expect(report.failed.length).toBe(report.tasks.failed);
    const [max] = await q("SELECT max(duration_ms) AS m FROM tool_calls WHERE run_id = 1 AND status <> 'invalid'");
    expect(report.slowest[0].durationMs).toBe(max.m);
    expect(report.slowest.map((s) => s.durationMs)).toEqual([...report.slowest.map((s) => s.durationMs)].sort((a, b) => b - a));
    expect(Object.keys(report.slowest[0].components).length).toBeGreaterThan(0);
  });

  test("a run is found by id or by name, and an unknown run is null", async () => {
    expect((await findRun({ db, run: "slower" }))?.id).toBe(2);
    expect((await findRun({ db, run: 1 }))?.name).toBe("base");
    expect(await findRun({ db, run: "nope" })).toBeNull();
    expect(await buildReport({ db, runId: 99 })).toBeNull();
  });
});

describe("getLatency", () => {
  test("the CDF rises to 1 and its points are exact order statistics", async () => {
    const d = await getLatency({ db, runId: 1, tool: "search", points: 50 });
    const sorted = (await computeOwnLatencies(db, 1)).get("search")!.sort((a, b) => a - b);
    expect(d.count).toBe(sorted.length);
    expect(d.cdf[d.cdf.length - 1]![1]).toBe(1);
    expect(d.cdf[d.cdf.length - 1]![0]).toBeCloseTo(sorted[sorted.length - 1]!, 6);
    for (const [ms, f] of d.cdf) expect(sorted[Math.round(f * sorted.length) - 1]!).toBeCloseTo(ms, 6);
    expect(d.cdf.length).toBeLessThanOrEqual(52);
    expect(d.p50!).toBeCloseTo(summarize(sorted).p50!, 6);
  });

  test("a component distribution reads the component rows", async () => {
    const d = await getLatency({ db, runId: 1, tool: "search", component: "retrieval" });
    const s = summarize((await q("SELECT ms FROM latency_components WHERE run_id = 1 AND tool = 'search' AND component = 'retrieval'")).map((r) => r.ms));
    expect([d.count, d.p50, d.p99]).toEqual([s.count, s.p50, s.p99]);
  });

  test("an empty selection has no percentiles and an empty CDF", async () => {
    const d = await getLatency({ db, runId: 1, tool: "no_such_tool" });
    expect(d.count).toBe(0);
    expect(d.p50).toBeNull();
    expect(d.cdf).toEqual([]);
  });
});

describe("compareReports", () => {
  test("ratios are second over first, and a run twice as slow shows about 2x", () => {
    const cmp = compareReports({ a: report, b: slow });
    for (const r of cmp.rows) if (r.a != null && r.b != null && r.a !== 0) expect(r.ratio!).toBeCloseTo(r.b / r.a, 10);
    const p50 = cmp.rows.find((r) => r.section === "latency search" && r.metric === "p50_ms")!;
    expect(p50.ratio!).toBeGreaterThan(1.6);
    expect(p50.ratio!).toBeLessThan(2.4);
    const acc = cmp.rows.find((r) => r.metric === "accuracy")!;
    expect(acc.ratio).toBe(1);
    expect(cmp.a.id).toBe(1);
    expect(cmp.b.id).toBe(2);
  });
});
