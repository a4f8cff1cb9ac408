// One claimer process for bench/claim.ts: claims batches and completes each task (fenced)
// until nothing is queued or running, then prints "summary <completed> <ms>" where ms runs
// from its first claim to its last completion (process start-up excluded).
// usage: bun bench/claim-worker.ts DB_URL RUNNER_ID [BATCH] [single|batch]
// `single` completes task by task (completeTask), `batch` a claimed batch at once (completeTasks).
import { sql } from "drizzle-orm";
import { openDb } from "../db/client";
import { claimTasks, completeTask, completeTasks } from "../db/queue";

const [url, runnerId, batchArg, mode = "single"] = process.argv.slice(2);
const batch = Number(batchArg ?? 32);
// as a runner opens it (cli/commands/runner.ts): checkpoints on a background thread
const db = await openDb({ url, migrate: false, backgroundCheckpoint: process.env.BENCH_NO_CHECKPOINTER ? false : true });
// Start together: bench/claim.ts releases all workers at once through this file's appearance.
const go = process.env.BENCH_GO_FILE;
if (go) {
  await Bun.write(`${go}.ready.${runnerId}`, "");
  while (!(await Bun.file(go).exists())) await Bun.sleep(2);
}

let completed = 0;
let first = 0;
let last = 0;
for (;;) {
  const claimed = await claimTasks({ db, runnerId, limit: batch, leaseMs: 60_000 });
  if (claimed.length === 0) {
    const res = (await db.run(sql`SELECT count(*) AS n FROM tasks WHERE status IN ('queued', 'running')`)) as any;
    if (Number(res.rows[0].n) === 0) break;
    await Bun.sleep(5);
    continue;
  }
  if (!first) first = performance.now();
  if (mode === "batch") {
    const ok = await completeTasks({
      db,
      items: claimed.map((t) => ({ taskId: t.id, leaseToken: t.leaseToken, result: { prediction: "p", correct: true } })),
    });
    completed += ok.filter(Boolean).length;
  } else {
    for (const t of claimed)
      if (await completeTask({ db, taskId: t.id, leaseToken: t.leaseToken, result: { prediction: "p", correct: true } })) completed++;
  }
  last = performance.now();
}
console.log(`summary ${completed} ${Math.round(last - first)} ${Date.now()}`);
db.$client.close();
process.exit(0);
