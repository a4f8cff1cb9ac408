// Claim + complete throughput of the queue with 1, 4 and 8 processes on one file database.
//
//   bun bench/claim.ts                    # 20,000 tasks, batch 32, 3 repetitions, both completion modes
//   bun bench/claim.ts --tasks 50000 --batch 64 --reps 5 --procs 1,2,4,8 --modes batch
//   bun bench/claim.ts --impls baton,bare,libsql --json   # beside its baselines, one JSON line at the end
//
// Each repetition seeds a fresh database, starts the workers, waits until each says it is
// ready, lets them begin together, and measures from the go signal to the last worker's last
// completion. Modes: `single` = one fenced completeTask per task (what a runner does without
// coalescing), `batch` = one fenced completeTasks statement per claimed batch.
// Implementations: `baton` = db/queue.ts as shipped (bench/claim-worker.ts); `libsql` = the
// same code on @libsql/client's embedded driver (BATON_FILE_DRIVER=libsql: the driver before
// issue 12); `bare` = the least a SQLite queue can do (bench/claim-bare-worker.ts).
// Reports the median tasks/s per implementation, mode and process count.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { closeDb, openDb } from "../db/client";
import { createRun, validateTasks } from "../db/runs";

const { values } = parseArgs({
  options: {
    tasks: { type: "string", default: "20000" },
    batch: { type: "string", default: "32" },
    reps: { type: "string", default: "3" },
    procs: { type: "string", default: "1,4,8" },
    modes: { type: "string", default: "single,batch" },
    impls: { type: "string", default: "baton" },
    json: { type: "boolean", default: false },
  },
});
const N = Number(values.tasks);
const batch = Number(values.batch);
const reps = Number(values.reps);
const procCounts = values.procs!.split(",").map(Number);
const modes = values.modes!.split(",");
const impls = values.impls!.split(",");
const WORKERS: Record<string, string> = { baton: "claim-worker.ts", libsql: "claim-worker.ts", bare: "claim-bare-worker.ts" };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function seed(impl: string, path: string): Promise<void> {
  if (impl === "bare") {
    const p = Bun.spawnSync([process.execPath, join(import.meta.dir, WORKERS.bare), path, "--seed", String(N)], { stderr: "inherit" });
    if (p.exitCode !== 0) throw new Error("seeding the bare queue failed");
    return;
  }
  const db = await openDb({ url: `file:${path}` });
  const rows = Array.from({ length: N }, (_, i) => ({ id: i, question: `question ${i}` }));
  await createRun({ db, name: "bench", benchmark: "frames", tasks: validateTasks({ rows }) });
  closeDb(db);
}

async function once(impl: string, procs: number, mode: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "baton-bench-claim-"));
  const path = join(dir, "baton.db");
  try {
    await seed(impl, path);
    const goFile = join(dir, "go");
    const env = { ...process.env, BENCH_GO_FILE: goFile, BATON_FILE_DRIVER: impl === "libsql" ? "libsql" : "sqlite" };
    const target = impl === "bare" ? path : `file:${path}`;
    const workers = Array.from({ length: procs }, (_, i) =>
      Bun.spawn([process.execPath, join(import.meta.dir, WORKERS[impl]), target, `w${i}`, String(batch), mode], { stdout: "pipe", stderr: "inherit", env }),
    );
    // every worker has opened the database before the start signal
    while (!Array.from({ length: procs }, (_, i) => existsSync(`${goFile}.ready.w${i}`)).every(Boolean)) {
      // a worker that died before it was ready would otherwise be waited for forever
      const dead = workers.find((w) => w.exitCode !== null);
      if (dead) {
        for (const w of workers) w.kill();
        throw new Error(`${impl}: a worker exited (code ${dead.exitCode}) before it was ready`);
      }
      await Bun.sleep(5);
    }
    const start = Date.now();
    writeFileSync(goFile, "go");
    const outs = await Promise.all(workers.map(async (w) => ((await w.exited), await new Response(w.stdout).text())));
    let done = 0;
    let end = start;
    for (const o of outs) {
      const [, completed, , endedAt] = o.trim().split(/\s+/);
      done += Number(completed);
      end = Math.max(end, Number(endedAt));
    }
    if (done !== N) throw new Error(`${impl}: completed ${done} of ${N}`);
    return N / ((end - start) / 1000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export type ClaimResult = { impl: string; mode: string; procs: number; median: number; runs: number[] };
const results: ClaimResult[] = [];
// repetitions interleave the implementations, so a slow stretch of a shared machine hits all
for (const mode of modes)
  for (const p of procCounts) {
    const runs: Record<string, number[]> = Object.fromEntries(impls.map((i) => [i, []]));
    for (let r = 0; r < reps; r++)
      for (const impl of impls) {
        const perSec = await once(impl, p, mode);
        runs[impl].push(perSec);
        if (!values.json) console.log(`impl=${impl} mode=${mode} procs=${p} rep=${r + 1}: ${Math.round(perSec)} tasks/s`);
      }
    for (const impl of impls) results.push({ impl, mode, procs: p, median: median(runs[impl]), runs: runs[impl] });
  }
if (values.json) {
  console.log(JSON.stringify({ tasks: N, batch, reps, results }));
} else {
  console.log(`\nclaim+complete, ${N} tasks, claim batch ${batch}, median tasks/s of ${reps} repetitions:`);
  for (const mode of modes)
    for (const p of procCounts) {
      const row = impls.map((i) => `${i} ${Math.round(results.find((r) => r.impl === i && r.mode === mode && r.procs === p)!.median)}`);
      console.log(`  ${mode.padEnd(7)} ${String(p).padStart(2)} proc  ${row.join("   ")}`);
    }
}
