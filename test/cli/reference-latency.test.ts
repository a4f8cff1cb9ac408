// Baton's report and export agree with ToolOrchestra's own latency analysis: a simulated
// run recorded through the real recorder is exported with `baton export --format
// toolorchestra`, the reference's evaluation/analyze_tool_latency.py (extracted from the
// local mirror of the reference repository at test time, never committed) is run on the
// export, and its per-tool numbers are compared with `baton report --json`.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { summarize, type Report } from "../../db/analysis";
import { closeDb, openDb, type Db } from "../../db/client";
import { recordSimulatedRun } from "../db/_transcript-run";
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

let dir: string;
let dbPath: string;
let db: Db;
let runId: number;
let report: Report;
let allAttempts: Report;
// the reference's printed tables, and the raw values its collect_latencies gathered
let printed: Record<"e2e" | "expert", Record<string, { count: number; mean: string; min: string; max: string; lt5s: string }>>;
let collected: Record<string, { e2e: number[]; expert: number[] }>;

const baton = (...args: string[]) => runBaton(args, { cwd: dir, env: { DATABASE_URL: "", BATON_SERVER: "" } });

function python(args: string[], env: Record<string, string>): string {
  const p = Bun.spawnSync(["python3", ...args], { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`python3 ${args.join(" ")}: ${p.stderr.toString()}`);
  return p.stdout.toString();
}

/** "| search | 12 | 1.23s | ..." rows of the script's two markdown tables. */
function parseTables(out: string): typeof printed {
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

beforeAll(async () => {
  if (missing) return;
  dir = mkdtempSync(join(tmpdir(), "baton-reference-latency-"));
  dbPath = join(dir, "run.db");
  db = await openDb({ url: dbPath });
  ({ runId } = await recordSimulatedRun({ db, benchmark: "frames", tasks: 60, seed: 7 }));
  const out = join(dir, "export");
  const exported = await baton("export", String(runId), "--format", "toolorchestra", out, "--db", dbPath);
  if (exported.code !== 0) throw new Error(exported.stderr);
  const json = await baton("report", String(runId), "--json", "--db", dbPath);
  if (json.code !== 0) throw new Error(json.stderr);
  report = JSON.parse(json.stdout);
  allAttempts = JSON.parse((await baton("report", String(runId), "--json", "--all-attempts", "--db", dbPath)).stdout);

  // The script imports matplotlib at the top but uses it only for --plots: a stub module
  // stands in when matplotlib is not installed.
  const py = join(dir, "py");
  mkdirSync(join(py, "matplotlib"), { recursive: true });
  writeFileSync(join(py, "matplotlib", "__init__.py"), "");
  writeFileSync(join(py, "matplotlib", "pyplot.py"), "");
  const script = Bun.spawnSync(["git", "-C", MIRROR, "show", `${COMMIT}:${SCRIPT}`], { stdout: "pipe" });
  writeFileSync(join(py, "analyze_tool_latency.py"), script.stdout);
  const env = { PYTHONPATH: py };
  printed = parseTables(python([join(py, "analyze_tool_latency.py"), out], env));
  collected = JSON.parse(
    python(["-c", `import json, sys, pathlib, analyze_tool_latency as a; print(json.dumps(a.collect_latencies(pathlib.Path(sys.argv[1]))))`, out], env),
  );
}, 60_000);

afterAll(() => {
  if (missing) return;
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

const seconds = (ms: number | null) => (ms! / 1000).toFixed(2) + "s";

describe.skipIf(missing !== null)("analyze_tool_latency.py on Baton's export", () => {
  test("counts, means, minima, maxima and the share under 5 s per tool equal `baton report --json`", () => {
    for (const tool of TOOLS) {
      const t = report.tools.find((x) => x.tool === tool)!;
      const p = printed.e2e[tool]!;
      expect([tool, p.count, p.mean, p.min, p.max, p.lt5s]).toEqual([tool, t.count, seconds(t.mean), seconds(t.min), seconds(t.max), `${(100 * t.under5s!).toFixed(1)}%`]);
    }
  });

  test("the values the reference collects are the ones the report ranks, so every percentile agrees", () => {
    for (const tool of TOOLS) {
      const t = report.tools.find((x) => x.tool === tool)!;
      const s = summarize(collected[tool]!.e2e);
      expect(s.count).toBe(t.count);
      for (const [a, b] of [[s.p50, t.p50], [s.p90, t.p90], [s.p99, t.p99]]) expect(a!).toBeCloseTo(b!, 6);
    }
  });

  test("the expert table of answer and enhance_reasoning is the report's expert_llm component", () => {
    // (the reference's search expert column counts only searches that retrieved; Baton's
    // query_llm component counts every query written, so that one column differs by design)
    for (const tool of ["answer", "enhance_reasoning"] as const) {
      const c = report.tools.find((x) => x.tool === tool)!.components.find((x) => x.component === "expert_llm")!;
      const p = printed.expert[tool]!;
      expect([p.count, p.mean, p.max]).toEqual([c.count, seconds(c.mean), seconds(c.max)]);
    }
  });

  test("the orchestrator is its own row, and --all-attempts adds the abandoned attempts' slower steps", () => {
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
