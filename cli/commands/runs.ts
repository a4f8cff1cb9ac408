import type { RunList } from "../../functions/runs";
import { DB, defineCommand, SERVER } from "../define-command";
import { formatColumns, formatDuration, formatPct, openReader, usageError, printJson } from "./_api";

export const { describe, run } = defineCommand({
  name: "runs",
  describe: "list runs, newest first, with counts, accuracy and score",
  notes: "accuracy = correct / finished (succeeded + failed); score = correct / all tasks.",
  options: {
    limit: { type: "string", value: "N", default: "50", help: "how many runs; the last line says how to see older ones" },
    cursor: { type: "string", value: "ID", help: "start after this run id (the next_cursor of the previous page)" },
    json: { type: "boolean", default: false, help: "print the page's runs as a JSON list (the API's next_cursor goes to stderr)" },
    server: SERVER,
    db: DB,
  },
  async run({ values }) {
    if (!/^[1-9]\d*$/.test(values.limit)) throw usageError("--limit: expected a positive integer");
    if (values.cursor != null && !/^\d+$/.test(values.cursor)) throw usageError("--cursor: expected a run id");
    const query = `?limit=${values.limit}${values.cursor != null ? `&cursor=${values.cursor}` : ""}`;
    const api = await openReader({ server: values.server, db: values.db });
    let page: RunList;
    try {
      page = await api.call<RunList>("GET", `/v1/runs${query}`);
    } finally {
      api.close();
    }
    if (values.json) {
      printJson(page.runs);
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
  },
});
