// `baton inflight <run>`: what each running task is doing and for how long.
import { DB, defineCommand, JSON_OUTPUT, SERVER } from "../define-command";
import type { InflightList } from "../../functions/inflight";
import { encodeRef, formatColumns, oneRun, openReader } from "./_api";
import { readWaiting } from "./preflight";

function ago(ms: number | null): string {
  if (ms == null) return "-";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

export function formatInflight(list: InflightList): string {
  if (list.tasks.length === 0) return `run ${list.run_id}: no task running`;
  const head = ["task", "attempt", "runner", "slurm", "step", "tool", "waiting on", "endpoint", "for"];
  const rows = list.tasks.map((t) => [
    `${t.task_id} ${t.external_id}`,
    String(t.attempt),
    t.runner.host ? `${t.runner.host}:${t.runner.pid}` : (t.runner.id ?? "-"),
    t.runner.slurm_array_job_id ? `${t.runner.slurm_array_job_id}_${t.runner.slurm_array_task_id}` : (t.runner.slurm_job_id ?? "-"),
    t.step == null ? "-" : String(t.step),
    t.tool ?? "-",
    t.component ?? "-",
    t.endpoint ?? "-",
    ago(t.waiting_ms),
  ]);
  return `run ${list.run_id}: ${list.tasks.length} task(s) running\n${formatColumns(head, rows)}`;
}

export const { describe, run } = defineCommand({
  name: "inflight",
  describe: "list a run's running tasks: runner, step, the call each waits on and for how long",
  usage: "RUN",
  intro: "RUN is the run id or its name (when unique).",
  options: { server: SERVER, db: DB, json: JSON_OUTPUT },
  async run({ values, positionals }) {
    const ref = oneRun(positionals);
    const api = await openReader({ server: values.server, db: values.db });
    try {
      const list = await api.call<InflightList>("GET", `/v1/runs/${encodeRef(ref)}/inflight`);
      console.log(values.json ? JSON.stringify(list, null, 2) : formatInflight(list));
      const waiting = values.json ? null : await readWaiting(api, list.run_id);
      if (waiting) console.log(`waits for endpoints (its tasks are not claimed meanwhile): ${waiting}`);
      return 0;
    } finally {
      api.close();
    }
  },
});
