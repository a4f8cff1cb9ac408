import { parseArgs } from "node:util";
import type { RunList } from "../../functions/runs";
import { createApi, formatColumns, formatDuration, formatPct, runCli, SERVER_OPTION, usageError } from "./_api";

export const describe = "list runs, newest first, with counts, accuracy and score";

const USAGE = `Usage: bun run baton runs [--limit N] [--cursor ID] [--json] [--server URL]

  --limit N      how many runs (default 50); the last line says how to see older ones
  --cursor ID    start after this run id (the next_cursor of the previous page)
  --json         print the page's runs as a JSON list (the API's next_cursor goes to stderr)

accuracy = correct / finished (succeeded + failed); score = correct / all tasks.
  ${SERVER_OPTION}`;

export async function run(argv: string[]): Promise<number> {
  return runCli(async () => {
    const { values } = parseArgs({
      args: argv,
      options: {
        limit: { type: "string", default: "50" },
        cursor: { type: "string" },
        json: { type: "boolean", default: false },
        server: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    if (!/^[1-9]\d*$/.test(values.limit!)) throw usageError("--limit: expected a positive integer");
    if (values.cursor != null && !/^\d+$/.test(values.cursor)) throw usageError("--cursor: expected a run id");
    const query = `?limit=${values.limit}${values.cursor != null ? `&cursor=${values.cursor}` : ""}`;
    const page = await createApi({ server: values.server }).call<RunList>("GET", `/v1/runs${query}`);
    if (values.json) {
      console.log(JSON.stringify(page.runs));
      if (page.next_cursor != null) console.error(`older runs: baton runs --cursor ${page.next_cursor}`);
      return 0;
    }
    const { runs } = page;
    if (runs.length === 0) {
      console.log(values.cursor ? "no older runs" : "no runs yet: bun run baton submit FILE.jsonl --name N --benchmark frames");
      return 0;
    }
    const header = ["id", "name", "benchmark", "tasks", "queued", "running", "ok", "failed", "canceled", "accuracy", "score", "eta", "created"];
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
      formatPct(r.accuracy),
      formatPct(r.score),
      r.done ? "done" : formatDuration(r.eta_ms),
      new Date(r.created_at).toISOString().slice(0, 19).replace("T", " "),
    ]);
    console.log(formatColumns(header, rows));
    if (page.next_cursor != null) console.log(`older runs: baton runs --cursor ${page.next_cursor}`);
    return 0;
  }, "runs");
}
