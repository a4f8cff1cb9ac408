// Baton's report and export agree with ToolOrchestra's own latency analysis: a run is
// exported with `baton export --format toolorchestra`, the reference's
// evaluation/analyze_tool_latency.py (extracted from the local mirror of the reference
// repository at test time, never committed) is run on the export, and its per-tool numbers
// are compared with `baton report --json`. Two runs: one recorded through the real recorder
// with abandoned attempts and skipped retrievals, and a real one (runner + simulators).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { summarize, type Report } from "../../db/analysis";
import { closeDb, openDb, type Db } from "../../db/client";
import { recordSimulatedRun } from "../db/_transcript-run";
import { makeSimRun, type SimRun } from "../_sim-run";
import { runBaton } from "./_helpers";

const MIRROR = "/work/.mirror/Weili-0234+ToolOrchestra/repo";
const COMMIT = "46bce6bdf0a41761190e37fde7a11f035b514818";
const SCRIPT = "evaluation/analyze_tool_latency.py";
const TOOLS = ["search", "answer", "enhance_reasoning"] as const;

// Why a run of the reference script cannot happen here, or null when it can.
function missingPrerequisite(): string | null {
  if (!existsSync(MIRROR)) return `the reference repository is not mirrored at ${MIRROR}`;
  const py = Bun.spawnSync(["python3", "-c", "import numpy"], { stderr: "pipe" });
  if (py.exitCode !== 0) return "python3 with numpy is not installed";
  return null;
}
const missing = missingPrerequisite();
if (missing) console.warn(`reference-latency.test.ts: skipped: ${missing}`);

type Printed = Record<"e2e" | "expert", Record<string, { count: number; mean: string; min: string; max: string; lt5s: string }>>;
type Analysis = {
  report: Report;
  // the reference's printed tables, and the raw values its collect_latencies gathered
  printed: Printed;
  collected: Record<string, { e2e: number[]; expert: number[] }>;
};

let dir: string;
let py: string;
let db: Db;
let sim: Analysis;
let allAttempts: Report;
let realRun: SimRun | null = null;

const baton = (...args: string[]) => runBaton(args, { cwd: dir, env: { DATABASE_URL: "", BATON_SERVER: "" } });

function python(args: string[]): string {
  const p = Bun.spawnSync(["python3", ...args], { env: { ...process.env, PYTHONPATH: py }, stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`python3 ${args.join(" ")}: ${p.stderr.toString()}`);
  return p.stdout.toString();
}

/** "| search | 12 | 1.23s | ..." rows of the script's two markdown tables. */
function parseTables(out: string): Printed {
  const [e2e, expert] = out.split("### Expert LLM Call Latency");
  const parse = (text: string) => {
    const rows: Record<string, { count: number; mean: string; min: string; max: string; lt5s: string }> = {};
    for (const line of text.split("\n")) {
      const cells = line.split("|").map((c) => c.trim());
      if (!TOOLS.includes(cells[1] as any)) continue;
      rows[cells[1]!] = { count: Number(cells[2]), mean: cells[3]!, min: cells[5]!, max: cells[6]!, lt5s: cells[14]! };
    }
    return rows;
  };
  return { e2e: parse(e2e!), expert: parse(expert ?? "") };
}

/** `baton export` of a run, the reference script on it, and `baton report --json`. */
async function analyze(dbPath: string, runId: number, out: string): Promise<Analysis> {
  const exported = await baton("export", String(runId), "--format", "toolorchestra", out, "--db", dbPath);
  if (exported.code !== 0) throw new Error(exported.stderr);
  const json = await baton("report", String(runId), "--json", "--db", dbPath);
  if (json.code !== 0) throw new Error(json.stderr);
  return {
    report: JSON.parse(json.stdout),
    printed: parseTables(python([join(py, "analyze_tool_latency.py"), out])),
    collected: JSON.parse(python(["-c", "import json, sys, pathlib, analyze_tool_latency as a; print(json.dumps(a.collect_latencies(pathlib.Path(sys.argv[1]))))", out])),
  };
}

beforeAll(async () => {
  if (missing) return;
  dir = mkdtempSync(join(tmpdir(), "baton-reference-latency-"));
  // The script imports matplotlib at the top but uses it only for --plots: a stub module
  // stands in when matplotlib is not installed.
  py = join(dir, "py");
  mkdirSync(join(py, "matplotlib"), { recursive: true });
  writeFileSync(join(py, "matplotlib", "__init__.py"), "");
  writeFileSync(join(py, "matplotlib", "pyplot.py"), "");
  const script = Bun.spawnSync(["git", "-C", MIRROR, "show", `${COMMIT}:${SCRIPT}`], { stdout: "pipe" });
  writeFileSync(join(py, "analyze_tool_latency.py"), script.stdout);

  const dbPath = join(dir, "run.db");
  db = await openDb({ url: dbPath });
  const { runId } = await recordSimulatedRun({ db, benchmark: "frames", tasks: 60, seed: 7 });
  sim = await analyze(dbPath, runId, join(dir, "export"));
  allAttempts = JSON.parse((await baton("report", String(runId), "--json", "--all-attempts", "--db", dbPath)).stdout);
}, 60_000);

afterAll(() => {
  realRun?.close();
  if (missing) return;
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

const seconds = (ms: number | null) => (ms! / 1000).toFixed(2) + "s";

function expectAgreement({ report, printed, collected }: Analysis) {
  for (const tool of TOOLS) {
    const t = report.tools.find((x) => x.tool === tool)!;
    const p = printed.e2e[tool]!;
    expect([tool, p.count, p.mean, p.min, p.max, p.lt5s]).toEqual([tool, t.count, seconds(t.mean), seconds(t.min), seconds(t.max), `${(100 * t.under5s!).toFixed(1)}%`]);
    // the values the reference collects are the ones the report ranks: every percentile agrees
    const s = summarize(collected[tool]!.e2e);
    expect(s.count).toBe(t.count);
    for (const [a, b] of [[s.p50, t.p50], [s.p90, t.p90], [s.p99, t.p99]]) expect(a!).toBeCloseTo(b!, 6);
  }
}

describe.skipIf(missing !== null)("analyze_tool_latency.py on Baton's export", () => {
  test("counts, means, minima, maxima, the share under 5 s and the ranked values per tool equal `baton report --json`", () => {
    expectAgreement(sim);
  });

  test("the expert table of answer and enhance_reasoning is the report's expert_llm component", () => {
    // (the reference's search expert column counts only searches that retrieved; Baton's
    // query_llm component counts every query written, so that one column differs by design)
    for (const tool of ["answer", "enhance_reasoning"] as const) {
      const c = sim.report.tools.find((x) => x.tool === tool)!.components.find((x) => x.component === "expert_llm")!;
      const p = sim.printed.expert[tool]!;
      expect([p.count, p.mean, p.max]).toEqual([c.count, seconds(c.mean), seconds(c.max)]);
    }
  });

  test("the orchestrator is its own row, and --all-attempts adds the abandoned attempts' slower steps", () => {
    const { report } = sim;
    expect(report.attempts).toBe("final");
    expect(report.tools.map((t) => t.tool)).toContain("orchestrator");
    const search = report.tools.find((t) => t.tool === "search")!;
    const searchAll = allAttempts.tools.find((t) => t.tool === "search")!;
    expect(allAttempts.attempts).toBe("all");
    expect(searchAll.count).toBeGreaterThan(search.count);
    // the abandoned attempts' steps were recorded 20x slower
    expect(searchAll.max!).toBeGreaterThan(search.max! * 2);
    // error tables keep every attempt either way
    expect(allAttempts.endpoints).toEqual(report.endpoints);
  });
});

describe.skipIf(missing !== null)("analyze_tool_latency.py on the export of a real run (runner + simulators)", () => {
  test("one file per finished task, and the reference's numbers equal the report's", async () => {
    realRun = await makeSimRun({ tasks: 120 });
    const out = join(realRun.dir, "export");
    const a = await analyze(realRun.dbPath, realRun.runId, out);
    const [finished] = (await realRun.db.$client.execute("SELECT count(*) AS n FROM tasks WHERE run_id = 1 AND json_extract(result, '$.status') IN ('done', 'error')")).rows as any;
    expect(readdirSync(out).length).toBe(Number(finished.n));
    expect(a.printed.e2e.search!.count).toBeGreaterThan(50);
    expectAgreement(a);
    // every latency component and every transcript belongs to a tool-call row of its step
    for (const table of ["latency_components", "step_transcripts"]) {
      const [orphans] = (await realRun.db.$client.execute(
        `SELECT count(*) AS n FROM ${table} x LEFT JOIN tool_calls c ON c.task_id = x.task_id AND c.attempt = x.attempt AND c.step = x.step WHERE c.id IS NULL`,
      )).rows as any;
      expect([table, Number(orphans.n)]).toEqual([table, 0]);
    }
  }, 120_000);
});
