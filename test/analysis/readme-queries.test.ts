// The README's "Asking the database" queries against a REAL simulated run: rows written by
// the runner calling the simulators over loopback (test/_sim-run.ts), with a slow query-LLM
// replica, retried 500s and cut streams, a primary retriever down part of the time, a
// fallback that fails for a while, context-length refusals and invalid tool calls. Each
// answer is checked against the raw rows and against what the fixture did.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { binOf, buildReport, summarize, type Report } from "../../db/analysis";
import { ORCHESTRATOR_STEP } from "../../runner/protocol";
import { normalizeAnswer } from "../../runner/grading";
import { makeSimRun, type SimRun } from "../_sim-run";
import { readReadmeQueries } from "../_readme-queries";
import { computeOwnLatencies } from "../_own-latency";

const QUERIES = readReadmeQueries();

const TASKS = 120;
let sim: SimRun;
let report: Report;

async function q(sql: string, args: any[] = []): Promise<Record<string, any>[]> {
  return (await sim.db.$client.execute({ sql, args })).rows as any;
}
async function doc(id: string) {
  const found = QUERIES.get(id);
  if (!found) throw new Error(`README.md (Asking the database) has no query with id ${id}`);
  return q(found.sql);
}
const num = (x: unknown) => Number(x);

beforeAll(async () => {
  sim = await makeSimRun({ tasks: TASKS, slowerRerun: { tasks: 36, ttftMs: 150 } });
  report = (await buildReport({ db: sim.db, runId: sim.runId }))!;
}, 60_000);

afterAll(() => sim?.close());

describe("the simulated run", () => {
  test("is run 1 and finished: every task succeeded or failed with a class", async () => {
    expect(sim.runId).toBe(1);
    const open = await q("SELECT count(*) AS n FROM tasks WHERE run_id = 1 AND status NOT IN ('succeeded', 'failed')");
    expect(open[0].n).toBe(0);
    const unclassified = await q("SELECT count(*) AS n FROM tasks WHERE run_id = 1 AND status = 'failed' AND error_class IS NULL");
    expect(unclassified[0].n).toBe(0);
    // every README query that needs a second run has one
    expect((await q("SELECT count(*) AS n FROM tasks WHERE run_id = 2 AND status = 'succeeded'"))[0].n).toBeGreaterThan(sim.facts.slowerRerun!.tasks * 0.7);
  });

  test("every fault the fixture injected shows in the raw rows", async () => {
    const f = sim.facts;
    // each 500 / cut stream the flaky replica served is one failed HTTP attempt there
    const flaky = await q("SELECT outcome, count(*) AS n FROM llm_calls WHERE run_id = 1 AND endpoint = ? AND outcome <> 'ok' GROUP BY outcome", [f.flakyEndpoint]);
    const byOutcome = Object.fromEntries(flaky.map((r) => [r.outcome, r.n]));
    expect(byOutcome.server_error ?? 0).toBe(f.flakyFaults["500"] ?? 0);
    expect(byOutcome.stream_cut ?? 0).toBe(f.flakyFaults.stream_cut ?? 0);
    expect((f.flakyFaults["500"] ?? 0) + (f.flakyFaults.stream_cut ?? 0)).toBeGreaterThan(0);
    const ctx = await q("SELECT count(*) AS n FROM llm_calls WHERE run_id = 1 AND role = 'orchestrator' AND outcome = 'context_length'");
    expect(ctx[0].n).toBe(f.contextLengthFailures);
    const fb = await q("SELECT count(*) AS n FROM latency_components WHERE run_id = 1 AND component = 'retrieval' AND status = 'fallback' AND endpoint = ?", [f.fallbackEndpoint]);
    expect(fb[0].n).toBeGreaterThan(0);
  });
});

describe("the README queries on a real simulated run", () => {
  test("the README has the fourteen worked queries, each for run 1", () => {
    expect(QUERIES.size).toBeGreaterThanOrEqual(14);
    for (const { sql } of QUERIES.values()) expect(sql).toContain("run_id = 1");
  });

  test("1. the search tail query ranks search's components by nearest-rank p99, the slow query LLM in the tail", async () => {
    const rows = await doc("search-tail");
    expect(rows.map((r) => r.component).sort()).toEqual(["orchestrator", "query_llm", "retrieval"]);
    for (const r of rows) {
      const ms = (await q("SELECT ms FROM latency_components WHERE run_id = 1 AND tool = 'search' AND component = ?", [r.component])).map((x) => x.ms);
      expect(r.calls).toBe(ms.length);
      const s = summarize(ms);
      expect([r.p50, r.p95, r.p99, r.max]).toEqual([s.p50, s.p95, s.p99, s.max].map((x) => Math.round(x!)));
    }
    for (let i = 1; i < rows.length; i++) expect(rows[i - 1].p99).toBeGreaterThanOrEqual(rows[i].p99);
    // a replica answering after ~120 ms puts the query LLM's tail there; the retriever's
    // tail (primary down, fallback failing) may be longer still, so no fixed winner
    const query = rows.find((r) => r.component === "query_llm")!;
    expect(query.p99).toBeGreaterThanOrEqual(sim.facts.slowTtftMs * 0.7);
    expect(query.p99).toBeGreaterThan(2 * query.p50);
  });

  test("2. the slowest endpoint query names the endpoint with the highest median of the raw rows", async () => {
    const rows = await doc("slowest-endpoint");
    const groups = new Map<string, number[]>();
    const add = (k: string, v: number) => groups.set(k, [...(groups.get(k) ?? []), v]);
    for (const r of await q("SELECT role, model, endpoint, total_ms FROM llm_calls WHERE run_id = 1")) add(`llm ${r.role} ${r.endpoint}`, r.total_ms);
    for (const r of await q("SELECT endpoint, ms FROM latency_components WHERE run_id = 1 AND component = 'retrieval' AND endpoint IS NOT NULL")) add(`retrieval retrieval ${r.endpoint}`, r.ms);
    // the query's floor of 10 calls: the slow replica is one of two serving its model, and 120
    // tasks give it about 16 calls per role (with 20 it fell out on some runs)
    const ranked = [...groups].filter(([, v]) => v.length >= 10).map(([k, v]) => [k, summarize(v).p50!] as const).sort((a, b) => b[1] - a[1]);
    expect(rows.length).toBe(Math.min(5, ranked.length));
    expect(rows.map((r) => `${r.kind} ${r.component} ${r.endpoint}`)).toEqual(ranked.slice(0, 5).map(([k]) => k));
    // The slow replica is what a user is meant to find here: it is listed, with its slowness.
    // Not asserted to be first: on a loaded machine an endpoint whose calls hung and were
    // retried can have the higher median, and then the query is right to put that one first.
    const slow = rows.find((r) => r.endpoint === sim.facts.slowEndpoint);
    expect(slow).toBeDefined();
    expect(Number(slow!.p50)).toBeGreaterThanOrEqual(sim.facts.slowTtftMs);
  });

  test("3. the slow replica query names the replica the fixture made slow, well above the others", async () => {
    const rows = await doc("slow-replica");
    const raw = await q("SELECT DISTINCT endpoint, model FROM llm_calls WHERE run_id = 1 AND role = 'query_llm'");
    expect(rows.length).toBe(raw.length);
    expect(rows[0].endpoint).toBe(sim.facts.slowEndpoint);
    expect(rows[0].p50).toBeGreaterThan(1.5 * rows[1].p50);
    const slow = (await q("SELECT total_ms FROM llm_calls WHERE run_id = 1 AND role = 'query_llm' AND endpoint = ?", [sim.facts.slowEndpoint])).map((r) => r.total_ms);
    expect(rows[0].calls).toBe(slow.length);
    expect(rows[0].p50).toBe(Math.round(summarize(slow).p50!));
  });

  test("4. the retries query counts retried calls and fallbacks as the raw rows do", async () => {
    const rows = await doc("retries");
    const sum = (k: string) => rows.reduce((a, r) => a + num(r[k]), 0);
    const [raw] = await q(
      `SELECT sum(retries > 0) AS wr, sum(retries) AS r, sum(status = 'timeout') AS t, sum(status = 'fallback') AS f
       FROM latency_components WHERE run_id = 1`,
    );
    expect(sum("calls_with_retries")).toBe(raw.wr);
    expect(sum("retries")).toBe(raw.r);
    expect(sum("timeouts")).toBe(raw.t);
    expect(sum("fallbacks")).toBe(raw.f);
    expect(raw.f).toBeGreaterThan(0);
    // an LLM component's retries are its HTTP attempts beyond the first: one llm_calls row each
    const [llm] = await q("SELECT count(*) AS n FROM llm_calls WHERE run_id = 1 AND http_attempt > 1");
    const llmRetries = rows.filter((r) => r.component !== "retrieval" && r.component !== "code_exec").reduce((a, r) => a + num(r.retries), 0);
    expect(llmRetries).toBe(llm.n);
    expect(llm.n).toBeGreaterThan(0);
    const search = rows.find((r) => r.tool === "search" && r.component === "retrieval")!;
    expect(search.fallbacks).toBe(raw.f);
  });

  // The runner writes `retrieval_unavailable` on both the search's tool call and its
  // retrieval component; the view and the report count that one name.
  test("4b. the retries query counts searches that found retrieval unavailable", async () => {
    const rows = await doc("retries");
    const [raw] = await q("SELECT count(*) AS n FROM tool_calls WHERE run_id = 1 AND tool = 'search' AND status = 'retrieval_unavailable'");
    expect(raw.n).toBeGreaterThan(0);
    expect(rows.reduce((a, r) => a + num(r.unavailable), 0)).toBe(raw.n);
    const search = rows.find((r) => r.tool === "search" && r.component === "retrieval")!;
    expect(search.unavailable).toBe(raw.n);
    const reported = report.retries.find((r) => r.tool === "search" && r.component === "retrieval")!;
    expect(reported.unavailable).toBe(raw.n);
    // the fallback failing while the primary was down is what made them
    expect(sim.facts.fallbackFaults["503"] ?? 0).toBeGreaterThan(0);
  });

  test("5. the under-5s query gives each tool's share of calls under 5 s", async () => {
    const rows = await doc("under-5s");
    // a tool's latency is its own time (the reference's definition); every orchestrator call,
    // including the failed ones (here: the context-length refusals), is the "orchestrator" row
    const own = await computeOwnLatencies(sim.db, 1);
    expect(rows.map((r) => r.tool)).toEqual([...own.keys()].sort());
    expect(rows.map((r) => r.tool)).toEqual(["answer", "enhance_reasoning", ORCHESTRATOR_STEP, "search"]);
    const [failed] = await q("SELECT count(*) AS n FROM tool_calls WHERE run_id = 1 AND tool = ? AND status = 'error'", [ORCHESTRATOR_STEP]);
    expect(failed.n).toBe(sim.facts.contextLengthFailures);
    const orch = rows.find((r) => r.tool === ORCHESTRATOR_STEP)!;
    expect(orch.calls).toBeGreaterThan(failed.n);
    for (const r of rows) {
      const ms = own.get(r.tool)!;
      expect(r.calls).toBe(ms.length);
      expect(r.pct_under_5s).toBeCloseTo(Math.round((1000 * ms.filter((x) => x < 5000).length) / ms.length) / 10, 5);
      expect(Math.abs(r.p95 - summarize(ms).p95!)).toBeLessThanOrEqual(0.5 + 1e-9);
    }
  });

  test("6. the accuracy query is correct answers over all tasks, graded as a plain comparison would", async () => {
    const [r] = await doc("accuracy");
    const tasks = await q("SELECT status, correct, prediction, json_extract(input, '$.answer') AS gold FROM tasks WHERE run_id = 1");
    const correct = tasks.filter((t) => t.correct === 1).length;
    expect(r.tasks).toBe(TASKS);
    expect(r.succeeded).toBe(tasks.filter((t) => t.status === "succeeded").length);
    expect(r.failed).toBe(tasks.filter((t) => t.status === "failed").length);
    expect(r.correct).toBe(correct);
    expect(r.score).toBeCloseTo(correct / TASKS, 4);
    expect(r.accuracy).toBeCloseTo(correct / (r.succeeded + r.failed), 4);
    // the simulator answers the gold or another question's answer, so exact match decides
    for (const t of tasks.filter((t) => t.prediction != null)) expect(t.correct === 1).toBe(normalizeAnswer(t.prediction) === normalizeAnswer(t.gold));
    expect(correct).toBeGreaterThan(0);
    expect(correct).toBeLessThan(r.succeeded);
    // every seeded failure is deterministic (a prompt too long, invalid tool calls in a row):
    // none is infrastructure, so both accuracies agree
    expect(r.infra_failed).toBe(0);
    expect(r.score_excluding_infra).toBe(r.score);
  });

  test("7. the failures query shows the context-length refusals, not as infrastructure, and no task lost to a single invalid reply", async () => {
    const rows = await doc("failures");
    const byClass = Object.fromEntries(rows.map((r) => [r.error_class, r]));
    expect(byClass.context_length.tasks).toBe(sim.facts.contextLengthFailures);
    expect(byClass.context_length.infra_failure).toBe(0);
    expect(rows.reduce((a, r) => a + r.tasks, 0)).toBe((await q("SELECT count(*) AS n FROM tasks WHERE run_id = 1 AND status = 'failed'"))[0].n);
    // An invalid reply is fed back to the orchestrator, so a task fails as unparsable only
    // after more invalid replies IN A ROW than the config allows (5): the tasks with such a
    // run are exactly the unparsable ones, and tasks with invalid steps mostly go on.
    const perTask = new Map<string, { status: string; errorClass: string | null; run: number; longest: number; invalid: number }>();
    for (const r of await q(
      `SELECT t.external_id, t.status, t.error_class, c.status AS call_status FROM tasks t
         JOIN tool_calls c ON c.task_id = t.id AND c.attempt = t.attempt WHERE t.run_id = 1 ORDER BY t.id, c.step`,
    )) {
      const t = perTask.get(r.external_id) ?? { status: r.status, errorClass: r.error_class, run: 0, longest: 0, invalid: 0 };
      t.run = r.call_status === "invalid" ? t.run + 1 : 0;
      t.longest = Math.max(t.longest, t.run);
      if (r.call_status === "invalid") t.invalid++;
      perTask.set(r.external_id, t);
    }
    const unparsable = [...perTask].filter(([, t]) => t.longest > 5).map(([id]) => id).sort();
    const failedUnparsable = [...perTask].filter(([, t]) => t.errorClass === "orchestrator_unparsable").map(([id]) => id).sort();
    expect(failedUnparsable).toEqual(unparsable);
    expect(byClass.orchestrator_unparsable?.tasks ?? 0).toBe(unparsable.length);
    const withInvalid = [...perTask.values()].filter((t) => t.invalid > 0);
    expect(withInvalid.length).toBeGreaterThan(0);
    expect(withInvalid.filter((t) => t.status === "succeeded").length).toBeGreaterThan(withInvalid.length / 2);
  });

  test("8. the missing ids query lists exactly the tasks that did not succeed", async () => {
    const rows = await doc("missing");
    const raw = await q("SELECT external_id FROM tasks WHERE run_id = 1 AND status IN ('failed', 'canceled') ORDER BY external_id");
    expect(rows.map((r) => r.external_id)).toEqual(raw.map((r) => r.external_id));
    expect(rows.length).toBeGreaterThanOrEqual(sim.facts.contextLengthFailures);
    expect(new Set(rows.map((r) => r.status))).toEqual(new Set(["failed"]));
  });

  test("9. the histogram query has ten equal-width bins holding every search call", async () => {
    const rows = await doc("histogram");
    const ms = (await computeOwnLatencies(sim.db, 1)).get("search")!;
    const lo = Math.min(...ms);
    const hi = Math.max(...ms);
    const counts = new Array(10).fill(0);
    for (const x of ms) counts[binOf(x, lo, hi)]++;
    expect(rows.map((r) => r.bin)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(rows.map((r) => r.calls)).toEqual(counts);
    expect(rows.reduce((a, r) => a + r.calls, 0)).toBe(ms.length);
    expect(rows[0].lo_ms).toBe(Math.round(lo));
    expect(rows[9].hi_ms).toBe(Math.round(hi));
  });

  test("10. the errors-by-tool query shows invalid tool calls, refused prompts and unavailable retrieval", async () => {
    const rows = await doc("errors-by-tool");
    const raw = await q("SELECT tool, status, coalesce(error_class, status) AS cls, count(*) AS n FROM tool_calls WHERE run_id = 1 AND status <> 'ok' GROUP BY 1, 2, 3");
    expect(rows.map((r) => `${r.tool}/${r.status}/${r.error_class}=${r.calls}`).sort()).toEqual(raw.map((r) => `${r.tool}/${r.status}/${r.cls}=${r.n}`).sort());
    const key = (tool: string, status: string) => rows.find((r) => r.tool === tool && r.status === status);
    expect(key("orchestrator", "error")!.error_class).toBe("context_length");
    expect(key("orchestrator", "error")!.calls).toBe(sim.facts.contextLengthFailures);
    expect(key("search", "retrieval_unavailable")!.calls).toBeGreaterThan(0);
    // the simulator's unknown tool: every call of it is invalid
    expect(key("web_browse", "invalid")!.share_of_tool_calls).toBe(1);
  });

  test("11. the tokens query sums every LLM attempt's tokens per role and model", async () => {
    const rows = await doc("tokens");
    const raw = await q("SELECT role, model, count(*) AS n, coalesce(sum(prompt_tokens), 0) AS p, coalesce(sum(completion_tokens), 0) AS c FROM llm_calls WHERE run_id = 1 GROUP BY 1, 2");
    expect(rows.map((r) => `${r.role} ${r.model} ${r.calls} ${r.prompt_tokens} ${r.completion_tokens}`).sort()).toEqual(raw.map((r) => `${r.role} ${r.model} ${r.n} ${r.p} ${r.c}`).sort());
    expect(new Set(rows.map((r) => r.role))).toEqual(new Set(["orchestrator", "query_llm", "expert_llm", "judge"]));
    for (const r of rows) expect(r.prompt_tokens).toBeGreaterThan(0);
  });

  test("12. the slowest retrievals query starts with the slowest retrieval and names its question", async () => {
    const rows = await doc("slowest-retrievals");
    const raw = (await q("SELECT ms FROM latency_components WHERE run_id = 1 AND component = 'retrieval' ORDER BY ms DESC LIMIT 10")).map((r) => Math.round(r.ms));
    expect(rows.map((r) => r.ms)).toEqual(raw);
    const ids = new Set((await q("SELECT external_id FROM tasks WHERE run_id = 1")).map((r) => r.external_id));
    for (const r of rows) expect(ids.has(r.external_id)).toBe(true);
  });

  test("13. the compare query shows run 2, every model answering after 150 ms, as slower tool by tool", async () => {
    const rows = await doc("compare");
    expect(rows.map((r) => r.tool)).toEqual(["answer", "enhance_reasoning", ORCHESTRATOR_STEP, "search"]);
    for (const r of rows) {
      const [a] = await q("SELECT p50_ms FROM tool_latency_stats WHERE run_id = 1 AND tool = ?", [r.tool]);
      const [b] = await q("SELECT p50_ms FROM tool_latency_stats WHERE run_id = 2 AND tool = ?", [r.tool]);
      expect(r.p50_ratio).toBe(Math.round((100 * b.p50_ms) / a.p50_ms) / 100);
      // every row's own time holds one model call (the orchestrator's, or the tool's expert)
      // of at least 150 ms in run 2
      expect(r.p50_run2).toBeGreaterThanOrEqual(150 * 0.7);
      // enhance_reasoning's time is mostly the sandboxed code run, whose spread on a busy
      // machine can hide 300 ms; the tools that only call models must come out slower
      if (r.tool !== "enhance_reasoning") expect(r.p50_ratio).toBeGreaterThan(1);
    }
  });

  test("14. the steps query covers every finished task, within the round limit", async () => {
    const rows = await doc("steps");
    expect(rows.reduce((a, r) => a + r.tasks, 0)).toBe(TASKS);
    const perTask = await q("SELECT (SELECT count(*) FROM tool_calls c WHERE c.task_id = t.id AND c.attempt = t.attempt) AS s FROM tasks t WHERE t.run_id = 1");
    expect(Math.max(...rows.map((r) => r.steps))).toBe(Math.max(...perTask.map((r) => r.s)));
    expect(Math.max(...rows.map((r) => r.steps))).toBeLessThanOrEqual(12);
  });
});

describe("the report agrees with the views on a real run", () => {
  test("task counts, accuracy and missing ids", async () => {
    const [v] = await q("SELECT * FROM run_summary WHERE run_id = 1");
    expect([report.tasks.total, report.tasks.succeeded, report.tasks.failed, report.tasks.correct, report.tasks.infraFailed]).toEqual([v.tasks, v.succeeded, v.failed, v.correct, v.infra_failed]);
    expect(report.tasks.accuracy).toBeCloseTo(v.accuracy, 4);
    expect(report.tasks.score).toBeCloseTo(v.score, 4);
    const missing = (await q("SELECT external_id FROM missing_tasks WHERE run_id = 1")).map((r) => r.external_id);
    expect([...report.missingIds].sort()).toEqual(missing.sort());
  });

  test("per-tool percentiles and histograms", async () => {
    const stats = await q("SELECT * FROM tool_latency_stats WHERE run_id = 1 ORDER BY tool");
    expect(report.tools.map((t) => t.tool)).toEqual(stats.map((s) => s.tool));
    for (const s of stats) {
      const t = report.tools.find((x) => x.tool === s.tool)!;
      expect(t.count).toBe(s.calls);
      // the report's values travel as JSON (15 significant digits): equal to a few parts in 1e12
      for (const [a, b] of [[t.min, s.min_ms], [t.p50, s.p50_ms], [t.p80, s.p80_ms], [t.p90, s.p90_ms], [t.p95, s.p95_ms], [t.p99, s.p99_ms], [t.max, s.max_ms]]) expect(a!).toBeCloseTo(b, 6);
      const bins = (await q("SELECT calls FROM tool_latency_histogram WHERE run_id = 1 AND tool = ? ORDER BY bin", [s.tool])).map((r) => r.calls);
      expect(t.histogram.counts).toEqual(bins);
      const logBins = (await q("SELECT calls FROM tool_latency_log_histogram WHERE run_id = 1 AND tool = ? ORDER BY bin", [s.tool])).map((r) => r.calls);
      expect(t.logHistogram.map((b) => b.count)).toEqual(logBins);
    }
  });

  test("components, retries and fallbacks", async () => {
    const comps = await q("SELECT * FROM component_latency_stats WHERE run_id = 1");
    const retries = await q("SELECT * FROM retry_summary WHERE run_id = 1");
    const reported = report.tools.flatMap((t) => t.components.map((c) => ({ tool: t.tool, ...c })));
    // the report lists each tool's own components (the orchestrator's calls are the orchestrator
    // row); the views also keep the orchestrator component under each tool's name
    const valid = new Set(report.tools.map((t) => t.tool));
    expect(reported.length).toBe(comps.filter((c) => valid.has(c.tool) && c.component !== "orchestrator").length);
    for (const c of reported) {
      const v = comps.find((x) => x.tool === c.tool && x.component === c.component)!;
      expect([c.count, c.p50, c.p95, c.p99, c.max, c.retries]).toEqual([v.calls, v.p50_ms, v.p95_ms, v.p99_ms, v.max_ms, v.retries]);
    }
    for (const r of report.retries) {
      const v = retries.find((x) => x.tool === r.tool && x.component === r.component)!;
      expect([r.calls, r.callsWithRetries, r.retries, r.timeouts, r.fallbacks, r.unavailable, r.errors]).toEqual([v.calls, v.calls_with_retries, v.retries, v.timeouts, v.fallbacks, v.unavailable, v.errors]);
    }
  });

  test("endpoints, errors and tokens", async () => {
    const eps = await q("SELECT * FROM endpoint_latency WHERE run_id = 1");
    expect(report.endpoints.length).toBe(eps.length);
    for (const e of report.endpoints) {
      const v = eps.find((x) => x.kind === e.kind && x.component === e.role && x.endpoint === e.endpoint && x.name === e.name)!;
      expect([e.calls, e.errors, e.retries, e.timeouts, e.p50, e.p95, e.max]).toEqual([v.calls, v.errors, v.retries, v.timeouts, v.p50_ms, v.p95_ms, v.max_ms]);
    }
    const slowest = report.endpoints.filter((e) => e.kind === "llm" && e.role === "query_llm").sort((a, b) => b.p50! - a.p50!)[0];
    expect(slowest.endpoint).toBe(sim.facts.slowEndpoint);
    const errs = await q("SELECT tool, status, error_class, calls FROM error_breakdown WHERE run_id = 1");
    expect(report.errors.byTool.map((e) => `${e.tool}/${e.status}/${e.errorClass}=${e.calls}`).sort()).toEqual(errs.map((e) => `${e.tool}/${e.status}/${e.error_class}=${e.calls}`).sort());
    const tokens = await q("SELECT role, model, calls, prompt_tokens, completion_tokens, truncated FROM run_tokens WHERE run_id = 1");
    expect(report.tokens.map((t) => `${t.role} ${t.model} ${t.calls} ${t.promptTokens} ${t.completionTokens} ${t.truncated}`).sort()).toEqual(
      tokens.map((t) => `${t.role} ${t.model} ${t.calls} ${t.prompt_tokens} ${t.completion_tokens} ${t.truncated}`).sort(),
    );
  });

  test("the slowest call is the longest valid tool call of the run", async () => {
    const [raw] = await q("SELECT max(duration_ms) AS m FROM tool_calls WHERE run_id = 1 AND status <> 'invalid'");
    expect(report.slowest[0].durationMs).toBe(raw.m);
    for (let i = 1; i < report.slowest.length; i++) expect(report.slowest[i - 1].durationMs).toBeGreaterThanOrEqual(report.slowest[i].durationMs);
  });
});
