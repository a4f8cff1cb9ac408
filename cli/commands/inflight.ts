// `baton inflight <run>`: what each running task is doing and for how long.
import { parseArgs } from "node:util";
import type { InflightList } from "../../functions/inflight";
import { CliError, createApi, runCli } from "./_api";

export const describe = "list a run's running tasks: runner, step, the call each waits on and for how long";

const USAGE = `Usage: bun run baton inflight <run id or name> [--server URL] [--json]

  --server URL   Baton server (default $BATON_SERVER or http://127.0.0.1:3000)
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
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [`run ${list.run_id}: ${list.tasks.length} task(s) running`, line(head), ...rows.map(line)].join("\n");
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
    if (positionals.length !== 1) throw new CliError(`expected one run id or name\n\n${USAGE}`, 2);
    const api = createApi({ server: values.server });
    const list = await api.call<InflightList>("GET", `/v1/runs/${encodeURIComponent(positionals[0])}/inflight`);
    console.log(values.json ? JSON.stringify(list, null, 2) : formatInflight(list));
    return 0;
  }, "inflight");
}
