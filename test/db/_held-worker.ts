// A claimer process that holds each task for a while before completing it, so tasks of
// different claims overlap in time (test/db/experiments-claim.test.ts).
// usage: bun test/db/_held-worker.ts DB_URL RUNNER_ID HOLD_MS BATCH
// Exits when no task of any run is queued or running.
import { sql } from "drizzle-orm";
import { openDb } from "../../db/client";
import { claimTasks, completeTask } from "../../db/queue";

const [url, runnerId, holdMs, batch] = process.argv.slice(2);
const db = await openDb({ url });
for (;;) {
  const claimed = await claimTasks({ db, runnerId, limit: Number(batch), leaseMs: 60_000 });
  if (claimed.length === 0) {
    const res = await db.run(sql`SELECT count(*) AS n FROM tasks WHERE status IN ('queued', 'running')`);
    if (Number((res as any).rows[0].n) === 0) break;
    await Bun.sleep(5); // others hold the rest: look again shortly
    continue;
  }
  // the work itself: each task takes HOLD_MS, all of a batch at once
  await Promise.all(
    claimed.map(async (t) => {
      await Bun.sleep(Number(holdMs));
      await completeTask({ db, taskId: t.id, leaseToken: t.leaseToken, result: { prediction: "p", correct: true } });
    }),
  );
}
process.exit(0);
