// `baton export RUN --format toolorchestra DIR` (one JSON file per finished task, the file
// the ToolOrchestra reference's eval scripts write, built from the step transcripts) or `--format jsonl|csv --what results|latency
// [--out FILE]` (stdout by default). Streamed page by page; never the whole run in memory.
import { chmodSync, createWriteStream, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { findRun } from "../../db/analysis";
import { closeDb, openDb } from "../../db/client";
import { csvField, exportLatency, exportResults, exportToolOrchestra, LATENCY_COLUMNS, RESULT_COLUMNS, toPythonJson } from "../../db/export";
import { CliError, runCli, usageError } from "./_api";

export const describe = "Export a run: the ToolOrchestra reference's per-task JSON files, or results/latency rows as JSONL/CSV";

const USAGE = `Usage: bun run baton export RUN --format toolorchestra DIR [--db URL]
       bun run baton export RUN --format jsonl|csv [--what results|latency] [--out FILE] [--db URL]

RUN is the run id or its name.

  --format F     toolorchestra: one JSON file per finished task in DIR (<id>.json, mode 0600),
                 as the reference's eval_frames_oss.py / eval_hle_oss.py write it, from the
                 final attempt's step transcripts; analyze_tool_latency.py reads the directory.
                 jsonl or csv: one row per task or per latency component
  --what W       with jsonl/csv: results (one row per task, default) or latency (one row per
                 tool-call component)
  --out FILE     with jsonl/csv: write FILE (atomically) instead of stdout
  --db URL       the database (default $DATABASE_URL or ./baton.db)`;

// A file name from a dataset id: path separators and oddities become '_'.
export function safeFileName(id: string): string {
  const s = id.replace(/[^A-Za-z0-9._-]/g, "_");
  return s === "" || s === "." || s === ".." ? `_${s}` : s;
}

type Writer = { write(s: string): Promise<void>; close(): Promise<void> };

// Rows are gathered into ~64 KB chunks: one write per row would make a million-row export
// pay a syscall (and a wait for the pipe) per row.
function openWriter(path: string | undefined): Writer {
  const toStdout = !path || path === "-";
  // written beside the target and renamed at the end: no half-written export on failure
  const tmp = toStdout ? "" : `${path}.partial`;
  const stream = toStdout ? process.stdout : createWriteStream(tmp);
  let buf = "";
  const flush = () =>
    new Promise<void>((res, rej) => {
      const chunk = buf;
      buf = "";
      if (!chunk) return res();
      stream.write(chunk, (e) => (e ? rej(e) : res()));
    });
  return {
    write: async (s) => {
      buf += s;
      if (buf.length >= 65_536) await flush();
    },
    close: async () => {
      await flush();
      if (toStdout) return;
      await new Promise<void>((res, rej) => (stream as ReturnType<typeof createWriteStream>).end((e?: Error | null) => (e ? rej(e) : res())));
      renameSync(tmp, path!);
    },
  };
}

export async function run(argv: string[]): Promise<number> {
  return runCli(async () => {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        format: { type: "string" },
        what: { type: "string", default: "results" },
        out: { type: "string", short: "o" },
        db: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const format = values.format;
    if (!format || !["toolorchestra", "jsonl", "csv"].includes(format))
      throw usageError(`--format: expected toolorchestra, jsonl or csv, got ${JSON.stringify(format ?? "")}`);
    if (!["results", "latency"].includes(values.what!)) throw usageError(`--what: expected results or latency, got ${JSON.stringify(values.what)}`);
    const expected = format === "toolorchestra" ? 2 : 1;
    if (positionals.length !== expected)
      throw usageError(`expected ${format === "toolorchestra" ? "RUN and DIR" : "RUN"}, got ${positionals.length} argument(s)`);
    const db = await openDb({ url: values.db });
    try {
      const found = await findRun({ db, run: positionals[0] });
      if (!found) throw new CliError(`no run with id or name ${JSON.stringify(positionals[0])}`);
      if (format === "toolorchestra") {
        const dir = positionals[1];
        mkdirSync(dir, { recursive: true });
        // two ids that map to one file name (a/b and a_b) must not overwrite each other
        const used = new Set<string>();
        const n = await exportToolOrchestra({
          db,
          runId: found.id,
          onTask: (t) => {
            const id = String(t.id);
            let name = safeFileName(id);
            for (let i = 2; used.has(name); i++) name = `${safeFileName(id)}~${i}`;
            used.add(name);
            const path = join(dir, `${name}.json`);
            // 0600: the files hold gold answers and every model reply
            writeFileSync(`${path}.partial`, toPythonJson(t), { mode: 0o600 });
            chmodSync(`${path}.partial`, 0o600);
            renameSync(`${path}.partial`, path);
          },
        });
        console.error(`baton export: wrote ${n} task files (finished tasks, final attempts) to ${dir}`);
        return 0;
      }
      const w = openWriter(values.out);
      const columns = values.what === "latency" ? LATENCY_COLUMNS : RESULT_COLUMNS;
      if (format === "csv") await w.write(columns.join(",") + "\n");
      const onRow = (r: Record<string, unknown>) => w.write(format === "csv" ? columns.map((c) => csvField(r[c])).join(",") + "\n" : JSON.stringify(r) + "\n");
      const n = values.what === "latency" ? await exportLatency({ db, runId: found.id, onRow }) : await exportResults({ db, runId: found.id, onRow });
      await w.close();
      if (values.out && values.out !== "-") console.error(`baton export: wrote ${n} rows to ${values.out}`);
      return 0;
    } finally {
      closeDb(db);
    }
  }, "export");
}
