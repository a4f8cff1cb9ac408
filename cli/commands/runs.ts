import { parseArgs } from "node:util";
import { createApi, formatColumns, runCli, SERVER_OPTION } from "./_api";

export const describe = "list runs, newest first, with counts by status";

const USAGE = `Usage: bun run baton runs [--json] [--server URL]

  --json         print the list as JSON
  ${SERVER_OPTION}`;

type Item = {
  id: number;
  name: string;
  benchmark: string;
  task_count: number;
  created_at: number;
  canceled_at: number | null;
  counts: Record<string, number>;
};

export async function run(argv: string[]): Promise<number> {
  return runCli(async () => {
    const { values } = parseArgs({
      args: argv,
      options: { json: { type: "boolean", default: false }, server: { type: "string" }, help: { type: "boolean", short: "h" } },
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const { runs } = await createApi({ server: values.server }).call<{ runs: Item[] }>("GET", "/v1/runs");
    if (values.json) {
      console.log(JSON.stringify(runs));
      return 0;
    }
    if (runs.length === 0) {
      console.log("no runs yet: bun run baton submit FILE.jsonl --name N --benchmark frames");
      return 0;
    }
    const header = ["id", "name", "benchmark", "tasks", "queued", "running", "ok", "failed", "canceled", "created"];
    const rows = runs.map((r) => [
      String(r.id),
      r.name + (r.canceled_at ? " (canceled)" : ""),
      r.benchmark,
      String(r.task_count),
      String(r.counts.queued),
      String(r.counts.running),
      String(r.counts.succeeded),
      String(r.counts.failed),
      String(r.counts.canceled),
      new Date(r.created_at).toISOString().slice(0, 19).replace("T", " "),
    ]);
    console.log(formatColumns(header, rows));
    return 0;
  }, "runs");
}
