// `baton export RUN --format toolorchestra DIR` (one JSON file per finished task, the file
// the ToolOrchestra reference's eval scripts write, built from the step transcripts) or `--format jsonl|csv --what results|latency
// [--out FILE]` (stdout by default). Streamed page by page; never the whole run in memory.
import { chmodSync, createWriteStream, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { closeDb, DEFAULT_DATABASE_URL, MIGRATIONS_DIR, openDb, type Db } from "../../db/client";
import { csvField, exportLatency, exportResults, exportToolOrchestra, LATENCY_COLUMNS, RESULT_COLUMNS, toPythonJson } from "../../db/export";
import { findRun } from "../../db/runs";
import { defineCommand } from "../define-command";
import { checkSchema, CliError, usageError } from "./_api";

// A file name from a dataset id: path separators and oddities become '_'.
export function safeFileName(id: string): string {
  const s = id.replace(/[^A-Za-z0-9._-]/g, "_");
  return s === "" || s === "." || s === ".." ? `_${s}` : s;
}

type Writer = { write(s: string): Promise<void>; close(): Promise<void> };

/** The reader of stdout went away (`export ... | head`): stop quietly, as cat does. */
class ReaderGone extends Error {}

// Rows are gathered into ~64 KB chunks: one write per row would make a million-row export
// pay a syscall (and a wait for the pipe) per row.
function openWriter(path: string | undefined): Writer {
  const toStdout = !path || path === "-";
  // written beside the target and renamed at the end: no half-written export on failure
  const tmp = toStdout ? "" : `${path}.partial`;
  // results carry gold answers: readable by their owner only, like the database
  const stream = toStdout ? process.stdout : createWriteStream(tmp, { mode: 0o600 });
  let buf = "";
  const flush = () =>
    new Promise<void>((res, rej) => {
      const chunk = buf;
      buf = "";
      if (!chunk) return res();
      stream.write(chunk, (e) => (!e ? res() : toStdout && (e as any).code === "EPIPE" ? rej(new ReaderGone()) : rej(e)));
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

export const { describe, run } = defineCommand({
  name: "export",
  describe: "Export a run: the ToolOrchestra reference's per-task JSON files, or results/latency rows as JSONL/CSV",
  usage: ["RUN --format toolorchestra DIR", "RUN --format jsonl|csv [--what results|latency] [--out FILE]"],
  intro: `RUN is the run id or its name (when unique). Reads the database file directly, read-only
(rows are streamed page by page; the server is not needed).`,
  options: {
    format: {
      type: "string",
      value: "F",
      help: `toolorchestra: one JSON file per finished task in DIR (<id>.json, mode 0600),
as the reference's eval_frames_oss.py / eval_hle_oss.py write it, from the
final attempt's step transcripts; analyze_tool_latency.py reads the directory.
jsonl or csv: one row per task or per latency component`,
    },
    what: { type: "string", value: "W", default: "results", help: "with jsonl/csv: results (one row per task) or latency (one row per\ntool-call component)" },
    out: { type: "string", short: "o", value: "FILE", help: "with jsonl/csv: write FILE (atomically) instead of stdout" },
    db: { type: "string", value: "PATH", help: "the database file, opened read-only (default $DATABASE_URL or ./baton.db)" },
  },
  async run({ values, positionals }) {
    const format = values.format;
    if (!format || !["toolorchestra", "jsonl", "csv"].includes(format))
      throw usageError(`--format: expected toolorchestra, jsonl or csv, got ${JSON.stringify(format ?? "")}`);
    if (!["results", "latency"].includes(values.what)) throw usageError(`--what: expected results or latency, got ${JSON.stringify(values.what)}`);
    const expected = format === "toolorchestra" ? 2 : 1;
    if (positionals.length !== expected)
      throw usageError(`expected ${format === "toolorchestra" ? "RUN and DIR" : "RUN"}, got ${positionals.length} argument(s)`);
    const db = await openReadOnly(values.db);
    try {
      const found = await findRun({ db, ref: positionals[0] });
      if (format === "toolorchestra") return await exportFiles(db, found.id, positionals[1]);
      const w = openWriter(values.out);
      const columns = values.what === "latency" ? LATENCY_COLUMNS : RESULT_COLUMNS;
      try {
        if (format === "csv") await w.write(columns.join(",") + "\n");
        const onRow = (r: Record<string, unknown>) => w.write(format === "csv" ? columns.map((c) => csvField(r[c])).join(",") + "\n" : JSON.stringify(r) + "\n");
        const n = values.what === "latency" ? await exportLatency({ db, runId: found.id, onRow }) : await exportResults({ db, runId: found.id, onRow });
        await w.close();
        if (values.out && values.out !== "-") console.error(`baton export: wrote ${n} rows to ${values.out}`);
      } catch (err) {
        if (err instanceof ReaderGone) return 0;
        throw err;
      }
      return 0;
    } finally {
      closeDb(db);
    }
  },
});

/** The database named by --db (or $DATABASE_URL, else ./baton.db), read-only: nothing is created. */
export async function openReadOnly(path: string | undefined): Promise<Db> {
  let db: Db;
  try {
    // an empty DATABASE_URL is unset, as everywhere else
    db = await openDb({ url: path || process.env.DATABASE_URL || DEFAULT_DATABASE_URL, readOnly: true });
  } catch (err) {
    throw new CliError(`--db: ${(err as Error).message}`);
  }
  try {
    await checkSchema(db, MIGRATIONS_DIR);
  } catch (err) {
    closeDb(db);
    throw err;
  }
  return db;
}

async function exportFiles(db: Db, runId: number, dir: string): Promise<number> {
  mkdirSync(dir, { recursive: true });
  // two ids that map to one file name (a/b and a_b) must not overwrite each other
  const used = new Set<string>();
  const n = await exportToolOrchestra({
    db,
    runId,
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
