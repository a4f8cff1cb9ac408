// Claim + complete throughput of the queue with 1, 4 and 8 processes on one file database.
//
//   bun bench/claim.ts                    # 20,000 tasks, batch 32, 3 repetitions, both completion modes
//   bun bench/claim.ts --tasks 50000 --batch 64 --reps 5 --procs 1,2,4,8 --modes batch
//
// Each repetition seeds a fresh database, starts the workers (bench/claim-worker.ts), lets
// them begin together, and measures from the go signal to the last worker's last completion.
// Modes: `single` = one fenced completeTask per task (what TaskQueue.complete does today),
// `batch` = one fenced completeTasks statement per claimed batch.
// Reports the median tasks/s per mode and process count, and ratios side by side.
// Target: >= 5,000 claim+complete per second with 4 processes.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
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
  },
});
const N = Number(values.tasks);
const batch = Number(values.batch);
const reps = Number(values.reps);
const procCounts = values.procs!.split(",").map(Number);
const modes = values.modes!.split(",");
const WORKER = join(import.meta.dir, "claim-worker.ts");

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function once(procs: number, mode: string): Promise<{ seconds: number; perSec: number }> {
  const dir = mkdtempSync(join(tmpdir(), "baton-bench-claim-"));
  const url = `file:${join(dir, "baton.db")}`;
  try {
    const db = await openDb({ url });
    const rows = Array.from({ length: N }, (_, i) => ({ id: i, question: `question ${i}` }));
    await createRun({ db, name: "bench", benchmark: "frames", tasks: validateTasks({ rows }) });
    closeDb(db);
    const goFile = join(dir, "go");
    const workers = Array.from({ length: procs }, (_, i) =>
      Bun.spawn([process.execPath, WORKER, url, `w${i}`, String(batch), mode], {
        stdout: "pipe",
        stderr: "inherit",
        env: { ...process.env, BENCH_GO_FILE: goFile },
      }),
    );
    // give every worker time to open the database before the start signal
    await Bun.sleep(1500);
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
    if (done !== N) throw new Error(`completed ${done} of ${N}`);
    const seconds = (end - start) / 1000;
    return { seconds, perSec: N / seconds };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const results: { mode: string; procs: number; median: number }[] = [];
for (const mode of modes)
  for (const p of procCounts) {
    const runs: number[] = [];
    for (let r = 0; r < reps; r++) {
      const { seconds, perSec } = await once(p, mode);
      runs.push(perSec);
      console.log(`mode=${mode} procs=${p} rep=${r + 1}: ${N} tasks in ${seconds.toFixed(2)} s = ${Math.round(perSec)} tasks/s`);
    }
    results.push({ mode, procs: p, median: median(runs) });
  }
console.log(`\nclaim+complete, ${N} tasks, claim batch ${batch}, median tasks/s of ${reps} repetitions:`);
console.log(`  ${"processes".padEnd(10)}${modes.map((m) => m.padStart(10)).join("")}${modes.length > 1 ? `   ${modes[1]}/${modes[0]}` : ""}`);
for (const p of procCounts) {
  const row = modes.map((m) => results.find((r) => r.mode === m && r.procs === p)!.median);
  const ratio = row.length > 1 ? `   x${(row[1] / row[0]).toFixed(2)}` : "";
  console.log(`  ${String(p).padEnd(10)}${row.map((x) => String(Math.round(x)).padStart(10)).join("")}${ratio}`);
}
for (const m of modes) {
  const base = results.find((r) => r.mode === m && r.procs === procCounts[0])!.median;
  const scale = procCounts.map((p) => `${p}p x${(results.find((r) => r.mode === m && r.procs === p)!.median / base).toFixed(2)}`);
  console.log(`  scaling (${m}, vs ${procCounts[0]} process): ${scale.join(", ")}`);
}
