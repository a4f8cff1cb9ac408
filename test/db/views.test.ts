import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  generateRun,
  INFRA_ERROR_CLASS,
  MODEL_ERROR_CLASS,
  SLOW_QUERY_LLM_ENDPOINT,
} from "../../bench/gen-latency-rows";
import { binOf, summarize } from "../../db/analysis";
import { closeDb, openDb, type Db } from "../../db/client";
import { computeOwnLatencies } from "../_own-latency";
import { readReadmeQueries } from "../_readme-queries";

const QUERIES = readReadmeQueries();

let dir: string;
let db: Db;

async function q(sql: string, args: any[] = []): Promise<Record<string, any>[]> {
  return (await db.$client.execute({ sql, args })).rows as any;
}
async function doc(id: string) {
  const found = QUERIES.get(id);
  if (!found) throw new Error(`README.md (Asking the database) has no query with id ${id}`);
  return q(found.sql);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-views-"));
  db = await openDb({ url: join(dir, "views.db") });
  await generateRun({ db, tasks: 400, seed: 11 });
  // run 2: the same tasks, every latency twice as long
  await generateRun({ db, tasks: 400, seed: 11, scale: 2 });
});

afterAll(() => {
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

describe("the README queries", () => {
  test("the doc has at least ten worked queries, each with a question", () => {
    expect(QUERIES.size).toBeGreaterThanOrEqual(10);
    for (const { question, sql } of QUERIES.values()) {
      expect(question.endsWith("?")).toBe(true);
      expect(sql).toContain("run_id = 1");
    }
  });

  test("the search tail query shows each component of search with its nearest-rank p99", async () => {
    const rows = await doc("search-tail");
    expect(rows.map((r) => r.component).sort()).toEqual(["orchestrator", "query_llm", "retrieval"]);
    for (const r of rows) {
      const ms = (await q("SELECT ms FROM tool_latency WHERE run_id = 1 AND tool = 'search' AND component = ?", [r.component])).map((x) => x.ms);
      expect(r.calls).toBe(ms.length);
      expect(r.p99).toBe(Math.round(summarize(ms).p99!));
    }
    expect(rows[0].p99).toBeGreaterThanOrEqual(rows[rows.length - 1].p99);
  });

  test("the slowest endpoint query names the endpoint with the highest median, computed from the raw rows", async () => {
    const rows = await doc("slowest-endpoint");
    const raw = await q("SELECT endpoint, role, total_ms FROM llm_calls WHERE run_id = 1");
    const groups = new Map<string, number[]>();
    for (const r of raw) groups.set(`${r.role} ${r.endpoint}`, [...(groups.get(`${r.role} ${r.endpoint}`) ?? []), r.total_ms]);
    const ret = await q("SELECT endpoint, ms FROM latency_components WHERE run_id = 1 AND component = 'retrieval' AND endpoint IS NOT NULL");
    for (const r of ret) groups.set(`retrieval ${r.endpoint}`, [...(groups.get(`retrieval ${r.endpoint}`) ?? []), r.ms]);
    const best = [...groups].filter(([, v]) => v.length >= 20).map(([k, v]) => [k, summarize(v).p50!] as const).sort((a, b) => b[1] - a[1])[0];
    expect(`${rows[0].component} ${rows[0].endpoint}`).toBe(best[0]);
  });

  test("the slow replica query puts the replica the generator made slow first", async () => {
    const rows = await doc("slow-replica");
    expect(rows.length).toBe(3);
    expect(rows[0].endpoint).toBe(SLOW_QUERY_LLM_ENDPOINT);
    expect(rows[0].p50).toBeGreaterThan(2 * rows[1].p50);
  });

  test("the retries query counts calls with retries, timeouts, fallbacks and unavailable retrieval", async () => {
    const rows = await doc("retries");
    const sum = (k: string) => rows.reduce((a, r) => a + Number(r[k]), 0);
    const [raw] = await q(
      `SELECT sum(retries > 0) AS wr, sum(status = 'timeout') AS t, sum(status = 'fallback') AS f, sum(status = 'retrieval_unavailable') AS u
       FROM latency_components WHERE run_id = 1`,
    );
    expect(sum("calls_with_retries")).toBe(raw.wr);
    expect(sum("timeouts")).toBe(raw.t);
    expect(sum("fallbacks")).toBe(raw.f);
    expect(sum("unavailable")).toBe(raw.u);
    expect(raw.wr).toBeGreaterThan(0);
    expect(raw.f).toBeGreaterThan(0);
    const retrieval = rows.find((r) => r.tool === "search" && r.component === "retrieval")!;
    expect(retrieval.fallbacks).toBe(raw.f);
  });

  test("the under-5s query gives each tool's share of calls under 5 s", async () => {
    const rows = await doc("under-5s");
    expect(rows.map((r) => r.tool)).toEqual(["answer", "enhance_reasoning", "orchestrator", "search"]);
    const own = await computeOwnLatencies(db, 1);
    for (const r of rows) {
      const ms = own.get(r.tool)!;
      expect(r.pct_under_5s).toBeCloseTo(Math.round((1000 * ms.filter((x) => x < 5000).length) / ms.length) / 10, 5);
    }
  });

  test("the accuracy query shows accuracy over finished tasks, and the score over all tasks and without infrastructure failures", async () => {
    const [r] = await doc("accuracy");
    const [raw] = await q(
      `SELECT count(*) AS n, sum(correct = 1) AS c, sum(status = 'failed' AND error_class = ?) AS infra, sum(status IN ('succeeded', 'failed')) AS fin FROM tasks WHERE run_id = 1`,
      [INFRA_ERROR_CLASS],
    );
    expect(r.tasks).toBe(400);
    expect(r.correct).toBe(raw.c);
    expect(r.infra_failed).toBe(raw.infra);
    expect(raw.infra).toBeGreaterThan(0);
    expect(r.finished).toBe(raw.fin);
    expect(r.accuracy).toBeCloseTo(raw.c / raw.fin, 4);
    expect(r.score).toBeCloseTo(raw.c / raw.n, 4);
    expect(r.score_excluding_infra).toBeCloseTo(raw.c / (raw.n - raw.infra), 4);
    expect(r.score_excluding_infra).toBeGreaterThan(r.score);
  });

  test("the failures query separates infrastructure failures from model failures", async () => {
    const rows = await doc("failures");
    const byClass = Object.fromEntries(rows.map((r) => [r.error_class, r]));
    expect(byClass[INFRA_ERROR_CLASS].infra_failure).toBe(1);
    expect(byClass[MODEL_ERROR_CLASS].infra_failure).toBe(0);
  });

  test("the missing ids query lists every task that finished without success, and no queued or running one", async () => {
    const rows = await doc("missing");
    const raw = await q("SELECT external_id FROM tasks WHERE run_id = 1 AND status IN ('failed', 'canceled') ORDER BY external_id");
    expect(rows.map((r) => r.external_id)).toEqual(raw.map((r) => r.external_id));
    expect(new Set(rows.map((r) => r.status))).toEqual(new Set(["failed"]));
    const [open] = await q("SELECT count(*) AS n FROM tasks WHERE run_id = 1 AND status IN ('queued', 'running')");
    expect(open.n).toBeGreaterThan(0);
  });

  test("the histogram query has ten equal-width bins that hold every search call", async () => {
    const rows = await doc("histogram");
    const ms = (await computeOwnLatencies(db, 1)).get("search")!;
    const lo = Math.min(...ms);
    const hi = Math.max(...ms);
    const counts = new Array(10).fill(0);
    for (const x of ms) counts[binOf(x, lo, hi)]++;
    expect(rows.map((r) => r.bin)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(rows.map((r) => r.calls)).toEqual(counts);
    expect(rows[0].lo_ms).toBe(Math.round(lo));
    expect(rows[9].hi_ms).toBe(Math.round(hi));
  });

  test("the errors-by-tool query includes the invalid tool name the orchestrator produced", async () => {
    const rows = await doc("errors-by-tool");
    const invalid = rows.find((r) => r.status === "invalid")!;
    expect(invalid.tool).toBe("serach");
    const [raw] = await q("SELECT count(*) AS n FROM tool_calls WHERE run_id = 1 AND status = 'invalid'");
    expect(invalid.calls).toBe(raw.n);
    expect(invalid.share_of_tool_calls).toBe(1);
  });

  test("the tokens query sums tokens per model", async () => {
    const rows = await doc("tokens");
    const [raw] = await q("SELECT sum(prompt_tokens) AS p, sum(completion_tokens) AS c FROM llm_calls WHERE run_id = 1");
    expect(rows.reduce((a, r) => a + r.prompt_tokens, 0)).toBe(raw.p);
    expect(rows.reduce((a, r) => a + r.completion_tokens, 0)).toBe(raw.c);
  });

  test("the slowest retrievals query starts with the slowest retrieval and names its question", async () => {
    const rows = await doc("slowest-retrievals");
    const [raw] = await q("SELECT max(ms) AS m FROM latency_components WHERE run_id = 1 AND component = 'retrieval'");
    expect(rows.length).toBe(10);
    expect(rows[0].ms).toBe(Math.round(raw.m));
    expect(rows[0].external_id).toMatch(/^q\d+$/);
  });

  test("the compare query shows run 2, generated twice as slow, at about twice the latency", async () => {
    const rows = await doc("compare");
    expect(rows.map((r) => r.tool)).toEqual(["answer", "enhance_reasoning", "orchestrator", "search"]);
    for (const r of rows) {
      expect(r.p50_ratio).toBeGreaterThan(1.6);
      expect(r.p50_ratio).toBeLessThan(2.4);
    }
  });

  test("the steps query covers every finished task", async () => {
    const rows = await doc("steps");
    const [raw] = await q("SELECT count(*) AS n FROM tasks WHERE run_id = 1 AND status IN ('succeeded', 'failed')");
    expect(rows.reduce((a, r) => a + r.tasks, 0)).toBe(raw.n);
  });
});

describe("percentiles in the views", () => {
  test("tool_latency_stats equals nearest-rank over the same tool calls", async () => {
    const rows = await q("SELECT * FROM tool_latency_stats WHERE run_id = 1");
    expect(rows.length).toBe(4);
    const own = await computeOwnLatencies(db, 1);
    for (const r of rows) {
      const s = summarize(own.get(r.tool)!);
      expect(r.calls).toBe(s.count);
      // sums of components: SQLite and JavaScript may round the last place differently
      for (const [a, b] of [[r.min_ms, s.min], [r.p50_ms, s.p50], [r.p80_ms, s.p80], [r.p90_ms, s.p90], [r.p95_ms, s.p95], [r.p99_ms, s.p99], [r.max_ms, s.max]]) expect(a).toBeCloseTo(b!, 6);
      expect(r.mean_ms).toBeCloseTo(s.mean!, 6);
      expect(r.under_5s).toBeCloseTo(s.under5s!, 10);
    }
  });

  test("component_latency_stats equals nearest-rank over the same components", async () => {
    const rows = await q("SELECT * FROM component_latency_stats WHERE run_id = 2");
    expect(rows.length).toBeGreaterThanOrEqual(9);
    for (const r of rows) {
      const s = summarize((await q("SELECT ms FROM latency_components WHERE run_id = 2 AND tool = ? AND component = ?", [r.tool, r.component])).map((x) => x.ms));
      expect([r.calls, r.p50_ms, r.p80_ms, r.p90_ms, r.p95_ms, r.p99_ms, r.max_ms]).toEqual([s.count, s.p50, s.p80, s.p90, s.p95, s.p99, s.max]);
    }
  });

  test("endpoint_latency equals nearest-rank over each endpoint's HTTP attempts", async () => {
    const rows = await q("SELECT * FROM endpoint_latency WHERE run_id = 1 AND kind = 'llm'");
    for (const r of rows) {
      const s = summarize((await q("SELECT total_ms FROM llm_calls WHERE run_id = 1 AND endpoint = ? AND role = ? AND model = ?", [r.endpoint, r.component, r.name])).map((x) => x.total_ms));
      expect([r.calls, r.p50_ms, r.p90_ms, r.p95_ms, r.p99_ms]).toEqual([s.count, s.p50, s.p90, s.p95, s.p99]);
    }
  });

  test("nearest-rank picks the value at rank ceil(p/100 * n)", () => {
    const s = summarize([5, 1, 4, 2, 3]);
    // n = 5: p50 -> rank 3, p80 -> rank 4, p90/p95/p99 -> rank 5
    expect([s.p50, s.p80, s.p90, s.p95, s.p99]).toEqual([3, 4, 5, 5, 5]);
    expect(summarize([7]).p50).toBe(7);
    expect(summarize([]).p50).toBeNull();
  });
});
