// `bun run bench`: every benchmark at a size that finishes in a few minutes, one table at the
// end. Each figure is printed beside a baseline measured in the same run (a bare bun:sqlite
// queue, a bare Bun.serve answering the same bytes, the old driver, the old query), because
// on a shared machine only ratios from one run can be compared.
//
//   bun run bench                       # everything
//   bun run bench --only claim,summary  # some: claim, summary, submit, report, makespan
//   bun run bench --quick               # smaller sizes, one repetition (a smoke run)
//
// Sizes (default): claim 3,000 tasks x 3 repetitions; summary at 10k and 200k tasks; submit
// 100k tasks x 3; report over the latency rows of a generated run (see bench/report-vs-reference.ts).
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { sql } from "drizzle-orm";
import { closeDb, openDb } from "../db/client";
import { createRun, validateTasks } from "../db/runs";
import { startBareStore } from "./bare-store";

const { values } = parseArgs({
  options: { only: { type: "string" }, quick: { type: "boolean", default: false } },
});
const only = values.only ? new Set(values.only.split(",")) : null;
const quick = values.quick!;
const want = (name: string) => !only || only.has(name);

type Row = { measure: string; value: string; baseline: string; baselineValue: string; ratio: string; target: string };
const rows: Row[] = [];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x: number, digits = 0) => x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const say = (s: string) => console.error(`[bench] ${s}`);

async function startServer(dbPath: string, token: string): Promise<{ base: string; stop: () => Promise<void> }> {
  const server = Bun.spawn([process.execPath, join(import.meta.dir, "../cli/baton.ts"), "serve", "--port", "0", "--db", dbPath], {
    stdout: "pipe",
    stderr: "inherit",
    env: { ...process.env, BATON_TOKEN: token },
  });
  const reader = server.stdout.getReader();
  let out = "";
  const deadline = Date.now() + 60_000;
  while (!/serving (http:\/\/\S+)/.test(out)) {
    if (Date.now() > deadline) throw new Error(`server did not start: ${out}`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`server exited: ${out}`);
    out += new TextDecoder().decode(value);
  }
  return {
    base: /serving (http:\/\/\S+)/.exec(out)![1],
    stop: async () => {
      server.kill("SIGTERM");
      await server.exited;
    },
  };
}

async function benchClaim(): Promise<void> {
  const tasks = quick ? 1000 : 3000;
  const reps = quick ? 1 : 3;
  say(`claim + complete: ${tasks} tasks, ${reps} repetitions, baton / bare bun:sqlite / old driver`);
  const p = Bun.spawn(
    [process.execPath, join(import.meta.dir, "claim.ts"), "--tasks", String(tasks), "--reps", String(reps), "--procs", "1,4", "--modes", "single,batch", "--impls", "baton,bare,libsql", "--json"],
    { stdout: "pipe", stderr: "inherit" },
  );
  const out = await new Response(p.stdout).text();
  if ((await p.exited) !== 0) throw new Error("bench/claim.ts failed");
  const { results } = JSON.parse(out.trim().split("\n").at(-1)!) as { results: { impl: string; mode: string; procs: number; median: number }[] };
  const get = (impl: string, mode: string, procs: number) => results.find((r) => r.impl === impl && r.mode === mode && r.procs === procs)!.median;
  for (const mode of ["single", "batch"])
    for (const procs of [1, 4]) {
      const v = get("baton", mode, procs);
      const target = mode === "single" ? "≥ 12,000/s" : "≥ 25,000/s";
      const label = `claim+complete/s, ${mode === "single" ? "single completions" : "batched completions"}, ${procs} proc`;
      rows.push({ measure: label, value: fmt(v), baseline: "bare bun:sqlite queue", baselineValue: fmt(get("bare", mode, procs)), ratio: (v / get("bare", mode, procs)).toFixed(2), target });
      rows.push({ measure: `  same, vs the driver before #12`, value: fmt(v), baseline: "@libsql/client driver", baselineValue: fmt(get("libsql", mode, procs)), ratio: (v / get("libsql", mode, procs)).toFixed(2), target: "" });
    }
}

/** GET /v1/runs/:id beside a bare Bun.serve answering the same JSON, at two run sizes. */
async function benchSummary(): Promise<void> {
  const sizes = quick ? [2_000, 20_000] : [10_000, 200_000];
  const token = `bench-${crypto.randomUUID()}`;
  const perSize: { n: number; ms: number; bare: number; oldMs: number }[] = [];
  for (const n of sizes) {
    const dir = mkdtempSync(join(tmpdir(), "baton-bench-summary-"));
    const dbPath = join(dir, "bench.db");
    try {
      say(`run summary: seeding ${n} tasks`);
      const db = await openDb({ url: `file:${dbPath}` });
      const { run } = await createRun({ db, name: "big", benchmark: "frames", tasks: validateTasks({ rows: Array.from({ length: n }, (_, i) => ({ id: i, question: `q${i}` })) }) });
      // half finished, a third of those correct, at 1,000 completions a minute (the rate reads
      // the last five minutes' completions: their number follows the rate, not the run's size)
      const newest = n * 2;
      await db.run(sql`UPDATE tasks SET status = 'succeeded', correct = (id % 3 = 0), finished_at = unixepoch('subsec') * 1000 - (${newest} - id) * 30 WHERE run_id = ${run.id} AND id % 2 = 0`);
      await db.run(sql`UPDATE runs SET started_at = unixepoch('subsec') * 1000 - ${newest * 30} WHERE id = ${run.id}`);
      // the summary as it was computed before #12: one pass over the run's tasks
      const oldTimes: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t = performance.now();
        await db.run(sql`SELECT sum(status = 'queued'), sum(status = 'running'), sum(status = 'succeeded'), sum(status = 'failed'), sum(status = 'canceled'),
          sum(status = 'succeeded' AND correct = 1), sum(status IN ('succeeded', 'failed') AND finished_at >= unixepoch('subsec') * 1000 - 300000)
          FROM tasks WHERE run_id = ${run.id}`);
        oldTimes.push(performance.now() - t);
      }
      closeDb(db);
      const server = await startServer(dbPath, token);
      let body = "";
      const times: number[] = [];
      try {
        for (let i = 0; i < 40; i++) {
          const t = performance.now();
          const res = await fetch(`${server.base}/v1/runs/${run.id}`, { headers: { authorization: `Bearer ${token}` } });
          body = await res.text();
          if (res.status !== 200) throw new Error(`GET /v1/runs/${run.id}: ${res.status} ${body.slice(0, 200)}`);
          if (i >= 5) times.push(performance.now() - t);
        }
      } finally {
        await server.stop();
      }
      const bare = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response(body, { headers: { "content-type": "application/json" } }) });
      const bareTimes: number[] = [];
      try {
        for (let i = 0; i < 40; i++) {
          const t = performance.now();
          await (await fetch(`http://127.0.0.1:${bare.port}/v1/runs/1`)).text();
          if (i >= 5) bareTimes.push(performance.now() - t);
        }
      } finally {
        bare.stop(true);
      }
      perSize.push({ n, ms: median(times), bare: median(bareTimes), oldMs: median(oldTimes) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  for (const s of perSize) {
    rows.push({ measure: `GET /v1/runs/:id at ${fmt(s.n)} tasks, ms`, value: fmt(s.ms, 2), baseline: "bare fetch, same JSON", baselineValue: fmt(s.bare, 2), ratio: (s.ms / s.bare).toFixed(2), target: "≤ 5 ms, constant" });
    rows.push({ measure: `  the pre-#12 summary query alone, ms`, value: fmt(s.oldMs, 2), baseline: "", baselineValue: "", ratio: "", target: "" });
  }
  const [a, b] = perSize;
  rows.push({ measure: `  GET growth ${fmt(b.n / a.n)}x tasks (1.0 = constant)`, value: (b.ms / a.ms).toFixed(2), baseline: "pre-#12 query growth", baselineValue: (b.oldMs / a.oldMs).toFixed(2), ratio: "", target: "" });
}

/** POST /v1/runs of 100k tasks beside a bare Bun.serve that parses the same body. */
async function benchSubmit(): Promise<void> {
  const n = quick ? 10_000 : 100_000;
  const reps = quick ? 1 : 3;
  const tasks = Array.from({ length: n }, (_, i) => ({
    id: i,
    question: `If my future wife has the same first name as the 15th first lady of the United States' mother, what is her name? (variant ${i})`,
    answer: `Jane Ballou ${i}`,
    reasoning_types: "Numerical reasoning | Multiple constraints",
    wiki_links: [`https://en.wikipedia.org/wiki/Item_${i}`],
  }));
  const token = `bench-${crypto.randomUUID()}`;
  const dir = mkdtempSync(join(tmpdir(), "baton-bench-submit-"));
  const server = await startServer(join(dir, "bench.db"), token);
  const bare = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    maxRequestBodySize: 1 << 30,
    fetch: async (req) => Response.json({ tasks: ((await req.json()) as any).tasks.length }, { status: 201 }),
  });
  const store = await startBareStore({ dir });
  say(`submit: ${n} tasks x ${reps}, baton serve, a bare server and a bare store`);
  const times: number[] = [];
  const bareTimes: number[] = [];
  const storeTimes: number[] = [];
  try {
    for (let r = 0; r < reps; r++) {
      const body = JSON.stringify({ name: `bench-${r}`, benchmark: "frames", tasks });
      let t = performance.now();
      const res = await fetch(`${server.base}/v1/runs`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, body });
      const json: any = await res.json();
      times.push((performance.now() - t) / 1000);
      if (res.status !== 201 || json.tasks !== n) throw new Error(`submit failed: ${res.status} ${JSON.stringify(json).slice(0, 300)}`);
      t = performance.now();
      await (await fetch(`http://127.0.0.1:${bare.port}/v1/runs`, { method: "POST", headers: { "content-type": "application/json" }, body })).json();
      bareTimes.push((performance.now() - t) / 1000);
      storeTimes.push(await store.timeSubmit(body, n));
    }
  } finally {
    bare.stop(true);
    store.stop();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const m = median(times);
  const b = median(bareTimes);
  rows.push({ measure: `${fmt(n)} tasks submitted over HTTP, s`, value: fmt(m, 2), baseline: "bare server parsing the body", baselineValue: fmt(b, 2), ratio: (m / b).toFixed(2), target: "≤ 0.8 s" });
  const s = median(storeTimes);
  rows.push({ measure: "  the same beside a bare store", value: fmt(m, 2), baseline: "parse + rows into Baton's schema (bun:sqlite)", baselineValue: fmt(s, 2), ratio: (m / s).toFixed(2), target: "" });
}

/** Runs bench/FILE in its own process; the JSON object on its last line of output. */
async function runJsonBench(file: string, args: string[]): Promise<any> {
  const p = Bun.spawn([process.execPath, join(import.meta.dir, file), ...args], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(p.stdout).text();
  if ((await p.exited) !== 0) throw new Error(`bench/${file} failed`);
  return JSON.parse(out.trim().split("\n").at(-1)!);
}

/** The runner against simulators: makespan beside its lower bound, runner CPU and RSS. */
async function benchMakespan(): Promise<void> {
  const settings = [
    { label: "400 ms LLM / 100 ms retrieval", args: ["--tasks", quick ? "64" : "768", "--concurrency", quick ? "32" : "256"], target: "≤ 1.05" },
    // 2,000 tasks as issue #12 measured it: the last tasks' answer and judge calls follow the
    // busiest replica's last call (~2.5 s the bound does not count), which is 20% of a
    // 96-task run (ratio 1.2) and 1.5% of this one; it takes about 160 s
    { label: "replica capacity binds (max_num_seqs 16)", args: ["--tasks", quick ? "32" : "2000", "--concurrency", quick ? "32" : "96", "--max-num-seqs", "16"], target: "≤ 1.02" },
  ];
  for (const s of settings) {
    say(`makespan: ${s.label} (${s.args.join(" ")})`);
    const r = await runJsonBench("makespan.ts", [...s.args, "--json"]);
    rows.push({ measure: `makespan / lower bound, ${s.label}, ${r.tasks} tasks, ${r.concurrency} in flight`, value: r.ratio.toFixed(3), baseline: "lower bound, s", baselineValue: fmt(r.boundMs / 1000, 2), ratio: `${fmt(r.makespanMs / 1000, 2)} s; ${r.ratioFromFirstClaim.toFixed(3)} after start-up${r.machineCpuBoundMs != null ? `; machine CPU / cores ${fmt(r.machineCpuBoundMs / 1000, 2)} s` : ""}`, target: s.target });
    rows.push({ measure: `  runner CPU per task (ms), peak RSS (MB)`, value: fmt(r.runnerCpuMsPerTask, 2), baseline: "peak RSS", baselineValue: String(r.runnerMaxRssMb), ratio: "", target: "≤ 2 ms; ≤ 150 MB" });
  }
  // issue #12's runner CPU setting, beside a bare client sending the same requests (the
  // part of the runner's CPU that is the HTTP traffic itself); medians of 3 runs, each ratio
  // from its own run: this machine's speed moves by half between minutes (1,024 tasks each
  // keeps bun run bench under five minutes; start-up then adds ~0.15 ms a task to the runner)
  const args = ["--tasks", quick ? "64" : "1024", "--llm-ms", "0", "--retrieval-ms", "0", "--tools", "search,answer", "--bare", "--json"];
  const own: number[] = [];
  const bare: number[] = [];
  const ratios: number[] = [];
  let tasks = 0;
  for (let i = 0; i < (quick ? 1 : 3); i++) {
    say(`makespan: runner CPU at zero model latency, run ${i + 1} (${args.join(" ")})`);
    const r = await runJsonBench("makespan.ts", args);
    tasks = r.tasks;
    own.push(r.runnerOwnCpuMsPerTask ?? r.runnerCpuMsPerTask);
    bare.push(r.bareReplay.cpuMsPerTask);
    ratios.push(own[i] / bare[i]);
  }
  rows.push({
    measure: `runner CPU per task (ms), zero model latency, search + answer, ${tasks} tasks, median of ${own.length}`,
    value: fmt(median(own), 2),
    baseline: "bare client replaying the same requests",
    baselineValue: fmt(median(bare), 2),
    ratio: median(ratios).toFixed(2),
    target: "≤ 2 ms",
  });
}

async function benchReport(): Promise<void> {
  const r = (await runJsonBench("report-vs-reference.ts", ["--json", ...(quick ? ["--components", "50000"] : [])])) as { components: number; reportMs: number; referenceMs: number | null; skipped?: string };
  rows.push({
    measure: `report over ${fmt(r.components)} latency rows, ms`,
    value: fmt(r.reportMs),
    baseline: r.referenceMs == null ? `reference script: ${r.skipped}` : "analyze_tool_latency.py on its export",
    baselineValue: r.referenceMs == null ? "" : fmt(r.referenceMs),
    ratio: r.referenceMs == null ? "" : `${(r.referenceMs / r.reportMs).toFixed(1)}x faster`,
    target: "≥ 10x faster",
  });
}

const started = Date.now();
const [l1] = loadavg();
// seconds per section: the whole run is meant to stay under five minutes
const sections: string[] = [];
for (const [name, fn] of [["claim", benchClaim], ["summary", benchSummary], ["submit", benchSubmit], ["report", benchReport], ["makespan", benchMakespan]] as const) {
  if (!want(name)) continue;
  const t0 = Date.now();
  try {
    await fn();
    sections.push(`${name} ${Math.round((Date.now() - t0) / 1000)} s`);
  } catch (err) {
    rows.push({ measure: `${name}: FAILED`, value: String((err as Error).message).slice(0, 80), baseline: "", baselineValue: "", ratio: "", target: "" });
  }
}
const head: Row = { measure: "measure", value: "baton", baseline: "baseline (same run)", baselineValue: "baseline", ratio: "ratio", target: "target" };
const widths = Object.keys(head).map((k) => Math.max(...[head, ...rows].map((r) => r[k as keyof Row].length)));
const line = (r: Row) => `| ${Object.keys(head).map((k, i) => r[k as keyof Row].padEnd(widths[i])).join(" | ")} |`;
console.log(`\nbun run bench — ${new Date().toISOString()}, ${Math.round((Date.now() - started) / 1000)} s, load average at start ${l1.toFixed(1)} on ${navigator.hardwareConcurrency} cores`);
console.log(line(head));
console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
for (const r of rows) console.log(line(r));
console.log(`\nsections: ${sections.join(", ")}`);
