// The report beside the script it replaces: ToolOrchestra's evaluation/analyze_tool_latency.py
// (numpy), run on `baton export --format toolorchestra` of the same run. The script is taken
// from the local mirror of the reference repository at run time, never copied into Baton.
//
//   bun bench/report-vs-reference.ts [--components 300000] [--reps 3] [--json]
//
// Generates a run (bench/gen-latency-rows.ts), times buildReport in this process (the warm
// report a server answers, median of --reps) and `baton report RUN --json` as a whole
// process, exports the run, and times `python3 analyze_tool_latency.py DIR` as a whole
// process. Without python3 + numpy or the mirror, the reference is reported as skipped.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { buildReport } from "../db/analysis";
import { closeDb, openDb } from "../db/client";
import { generateRun } from "./gen-latency-rows";

const { values } = parseArgs({
  options: { components: { type: "string", default: "300000" }, reps: { type: "string", default: "3" }, json: { type: "boolean", default: false } },
});
const MIRROR = "/work/.mirror/Weili-0234+ToolOrchestra/repo";
const COMMIT = "46bce6bdf0a41761190e37fde7a11f035b514818";
const SCRIPT = "evaluation/analyze_tool_latency.py";
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const say = (s: string) => (values.json ? console.error(`[report] ${s}`) : console.log(s));
const BATON = join(import.meta.dir, "../cli/baton.ts");

function whyNoReference(): string | null {
  if (!existsSync(MIRROR)) return "reference repository not mirrored";
  if (Bun.spawnSync(["python3", "-c", "import numpy"], { stderr: "pipe" }).exitCode !== 0) return "python3 with numpy not installed";
  return null;
}

function timeProcess(cmd: string[], env?: Record<string, string>): number {
  const t = performance.now();
  const p = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  if (p.exitCode !== 0) throw new Error(`${cmd.join(" ")}: ${p.stderr.toString().slice(0, 400)}`);
  return performance.now() - t;
}

const dir = mkdtempSync(join(tmpdir(), "baton-bench-report-"));
try {
  const dbPath = join(dir, "bench.db");
  const db = await openDb({ url: `file:${dbPath}` });
  say(`generating a run with ${values.components} latency components`);
  const gen = await generateRun({ db, components: Number(values.components), seed: 7 });
  const reportTimes: number[] = [];
  for (let i = 0; i < Number(values.reps); i++) {
    const t = performance.now();
    await buildReport({ db, runId: gen.runId });
    reportTimes.push(performance.now() - t);
  }
  closeDb(db);
  const cliMs = median(Array.from({ length: Number(values.reps) }, () => timeProcess([process.execPath, BATON, "report", String(gen.runId), "--json", "--db", dbPath], { DATABASE_URL: "", BATON_SERVER: "" })));
  const skipped = whyNoReference();
  let referenceMs: number | null = null;
  if (!skipped) {
    const out = join(dir, "export");
    timeProcess([process.execPath, BATON, "export", String(gen.runId), "--format", "toolorchestra", out, "--db", dbPath], { DATABASE_URL: "", BATON_SERVER: "" });
    const py = join(dir, "py");
    // the script imports matplotlib at the top but uses it only for --plots: a stub stands in
    // when it is not installed (as test/cli/reference-latency.test.ts does)
    mkdirSync(join(py, "matplotlib"), { recursive: true });
    writeFileSync(join(py, "matplotlib", "__init__.py"), "");
    writeFileSync(join(py, "matplotlib", "pyplot.py"), "");
    const script = Bun.spawnSync(["git", "-C", MIRROR, "show", `${COMMIT}:${SCRIPT}`], { stdout: "pipe" });
    writeFileSync(join(py, "analyze_tool_latency.py"), script.stdout);
    referenceMs = median(Array.from({ length: Number(values.reps) }, () => timeProcess(["python3", join(py, "analyze_tool_latency.py"), out], { PYTHONPATH: py })));
  }
  const result = { components: gen.components, tasks: gen.tasks, reportMs: median(reportTimes), cliMs, referenceMs, ...(skipped ? { skipped } : {}) };
  if (values.json) console.log(JSON.stringify(result));
  else
    console.log(
      `${gen.components} components, ${gen.tasks} tasks: buildReport ${result.reportMs.toFixed(0)} ms, baton report process ${cliMs.toFixed(0)} ms; ` +
        (referenceMs == null ? `reference skipped (${skipped})` : `analyze_tool_latency.py ${referenceMs.toFixed(0)} ms = ${(referenceMs / result.reportMs).toFixed(1)}x the report, ${(referenceMs / cliMs).toFixed(1)}x the process`),
    );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
