// Times the full report (everything `baton report --json` and the web page show) over a
// large run:
//
//   bun bench/gen-latency-rows.ts --db /tmp/bench.db --components 1000000   # once, ~minutes
//   bun bench/report.ts --db /tmp/bench.db [--run 1] [--repeat 7]
//
// Prints each run's time, the median, and beside it the median of the same questions asked
// through the SQL views (the ad-hoc path), with the ratio. Target: report median < 1 s.
import { parseArgs } from "node:util";
import { buildReport } from "../db/analysis";
import { closeDb, openDb } from "../db/client";

const { values } = parseArgs({
  options: {
    db: { type: "string" },
    run: { type: "string", default: "1" },
    repeat: { type: "string", default: "7" },
    "no-views": { type: "boolean" },
  },
});
if (!values.db) {
  console.error("usage: bun bench/report.ts --db PATH [--run 1] [--repeat 7] [--no-views]");
  process.exit(2);
}
const db = await openDb({ url: values.db });
const runId = Number(values.run);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const counts = (await db.$client.execute({ sql: "SELECT (SELECT count(*) FROM latency_components WHERE run_id = ?) AS c, (SELECT count(*) FROM tool_calls WHERE run_id = ?) AS t, (SELECT count(*) FROM llm_calls WHERE run_id = ?) AS l", args: [runId, runId, runId] })).rows[0];
console.log(`run ${runId}: ${counts.c} latency components, ${counts.t} tool calls, ${counts.l} llm calls`);

const times: number[] = [];
for (let i = 0; i < Number(values.repeat); i++) {
  const t = performance.now();
  const r = await buildReport({ db, runId });
  times.push(performance.now() - t);
  if (!r) throw new Error(`run ${runId} not found`);
}
console.log(`report: ${times.map((t) => t.toFixed(0)).join(" ")} ms; median ${median(times).toFixed(0)} ms`);

if (!values["no-views"]) {
  const viewTimes: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    for (const v of ["tool_latency_stats", "component_latency_stats", "tool_latency_histogram", "endpoint_latency", "retry_summary", "run_summary", "run_tokens"])
      await db.$client.execute({ sql: `SELECT * FROM ${v} WHERE run_id = ?`, args: [runId] });
    viewTimes.push(performance.now() - t);
  }
  const m = median(viewTimes);
  console.log(`views:  ${viewTimes.map((t) => t.toFixed(0)).join(" ")} ms; median ${m.toFixed(0)} ms (${(m / median(times)).toFixed(1)}x the report)`);
}
closeDb(db);
