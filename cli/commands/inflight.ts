// `baton inflight <run>`: what each running task is doing and for how long.
import { parseArgs } from "node:util";
import type { InflightList } from "../../functions/inflight";
import { createApi, encodeRef, formatColumns, oneRun, runCli, SERVER_OPTION } from "./_api";
import { readWaiting } from "./preflight";

export const describe = "list a run's running tasks: runner, step, the call each waits on and for how long";

const USAGE = `Usage: bun run baton inflight RUN [--server URL] [--json]

RUN is the run id or its name (when unique).

  ${SERVER_OPTION}
  --json         print the raw JSON`;

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

export async function run(argv: string[]): Promise<number> {
  return runCli(async () => {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { server: { type: "string" }, json: { type: "boolean", default: false }, help: { type: "boolean", short: "h" } },
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const ref = oneRun(positionals);
    const api = createApi({ server: values.server });
    const list = await api.call<InflightList>("GET", `/v1/runs/${encodeRef(ref)}/inflight`);
    console.log(values.json ? JSON.stringify(list, null, 2) : formatInflight(list));
    const waiting = values.json ? null : await readWaiting(api, list.run_id);
    if (waiting) console.log(`waits for endpoints (its tasks are not claimed meanwhile): ${waiting}`);
    return 0;
  }, "inflight");
}
