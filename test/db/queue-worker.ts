// A claimer process for the multi-process queue tests and bench/claim.ts.
// usage: bun test/db/queue-worker.ts DB_URL RUNNER_ID LOG_FILE [--batch N] [--lease-ms N] [--hang] [--complete-many]
// Appends "claimed <taskId> <token>" per claim and "done <taskId> <token> <ok>" per
// completion to LOG_FILE (one line per event, written before moving on). --hang claims
// one batch and then waits forever, to be killed mid-batch. Exits when no task of any
// run is queued or running. Prints "summary <completed> <ms>" on stdout at the end.
import { appendFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { sql } from "drizzle-orm";
import { openDb } from "../../db/client";
import { claimTasks, completeTask, completeTasks } from "../../db/queue";

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: {
    batch: { type: "string", default: "32" },
    "lease-ms": { type: "string", default: "30000" },
    hang: { type: "boolean", default: false },
    "no-log": { type: "boolean", default: false },
    "complete-many": { type: "boolean", default: false },
  },
});
const [url, runnerId, logFile] = positionals;
const batch = Number(values.batch);
const leaseMs = Number(values["lease-ms"]);
const db = await openDb({ url });
const log = (line: string) => {
  if (!values["no-log"]) appendFileSync(logFile, `${line}\n`);
};

const started = performance.now();
let completed = 0;
for (;;) {
  const claimed = await claimTasks({ db, runnerId, limit: batch, leaseMs });
  if (claimed.length > 0 && !values["no-log"]) log(claimed.map((t) => `claimed ${t.id} ${t.leaseToken}`).join("\n"));
  if (values.hang && claimed.length > 0) {
    console.log("hanging");
    await new Promise(() => {});
  }
  if (claimed.length === 0) {
    const res = await db.run(sql`SELECT count(*) AS n FROM tasks WHERE status IN ('queued', 'running')`);
    if (Number((res as any).rows[0].n) === 0) break;
    // Others hold the rest (or leases must expire first): look again shortly.
    await Bun.sleep(20);
    continue;
  }
  const lines: string[] = [];
  const result = (id: number) => ({ prediction: `p${id}`, correct: true, by: runnerId });
  if (values["complete-many"]) {
    const oks = await completeTasks({ db, items: claimed.map((t) => ({ taskId: t.id, leaseToken: t.leaseToken, result: result(t.id) })) });
    claimed.forEach((t, i) => lines.push(`done ${t.id} ${t.leaseToken} ${oks[i]}`));
    completed += oks.filter(Boolean).length;
  } else
    for (const t of claimed) {
      const ok = await completeTask({ db, taskId: t.id, leaseToken: t.leaseToken, result: result(t.id) });
      if (ok) completed++;
      lines.push(`done ${t.id} ${t.leaseToken} ${ok}`);
    }
  log(lines.join("\n"));
}
console.log(`summary ${completed} ${Math.round(performance.now() - started)}`);
db.$client.close();
process.exit(0);
