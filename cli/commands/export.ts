// `baton export RUN --format toolorchestra DIR` (one JSON file per finished task, the file
// the ToolOrchestra reference's eval scripts write, built from the step transcripts) or `--format jsonl|csv --what results|latency
// [--out FILE]` (stdout by default). Reads GET /v1/runs/:id/export (functions/export.ts) as a
// stream, from a server or in-process over a read-only file; never the whole run in memory.
import { chmodSync, createWriteStream, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { toPythonJson, type ToolOrchestraTask } from "../../db/export";
import { defineCommand } from "../define-command";
import { CliError, encodeRef, openReader, usageError } from "./_api";

// A file name from a dataset id: path separators and oddities become '_'.
export function safeFileName(id: string): string {
  const s = id.replace(/[^A-Za-z0-9._-]/g, "_");
  return s === "" || s === "." || s === ".." ? `_${s}` : s;
}

type Writer = { write(chunk: Uint8Array): Promise<void>; close(): Promise<void>; abandon(): void };

/** The reader of stdout went away (`export ... | head`): stop quietly, as cat does. */
class ReaderGone extends Error {}

// The chunks come ~64 KB at a time (functions/export.ts gathers rows): one write each.
function openWriter(path: string | undefined): Writer {
  const toStdout = !path || path === "-";
  // written beside the target and renamed at the end: no half-written export on failure
  const tmp = toStdout ? "" : `${path}.partial`;
  // results carry gold answers: readable by their owner only, like the database
  const stream = toStdout ? process.stdout : createWriteStream(tmp, { mode: 0o600 });
  return {
    write: (chunk) =>
      new Promise<void>((res, rej) => {
        stream.write(chunk, (e) => (!e ? res() : toStdout && (e as any).code === "EPIPE" ? rej(new ReaderGone()) : rej(e)));
      }),
    close: async () => {
      if (toStdout) return;
      await new Promise<void>((res, rej) => (stream as ReturnType<typeof createWriteStream>).end((e?: Error | null) => (e ? rej(e) : res())));
      renameSync(tmp, path!);
    },
    abandon: () => {
      if (toStdout) return;
      (stream as ReturnType<typeof createWriteStream>).destroy();
      rmSync(tmp, { force: true });
    },
  };
}

export const { describe, run } = defineCommand({
  name: "export",
  describe: "Export a run: the ToolOrchestra reference's per-task JSON files, or results/latency rows as JSONL/CSV",
  usage: ["RUN --format toolorchestra DIR", "RUN --format jsonl|csv [--what results|latency] [--out FILE]"],
  intro: `RUN is the run id or its name (when unique). Streams GET /v1/runs/RUN/export from the
server, or with --db from the database file opened read-only (nothing is created or
migrated); with neither, $DATABASE_URL when set, else the server. Never the whole run in memory.`,
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
    server: { type: "string", value: "URL", help: "Baton server (default $BATON_SERVER or http://127.0.0.1:3000)" },
    db: { type: "string", value: "PATH", help: "read this database file instead of a server, read-only" },
  },
  async run({ values, positionals }) {
    const format = values.format;
    if (!format || !["toolorchestra", "jsonl", "csv"].includes(format))
      throw usageError(`--format: expected toolorchestra, jsonl or csv, got ${JSON.stringify(format ?? "")}`);
    if (!["results", "latency"].includes(values.what)) throw usageError(`--what: expected results or latency, got ${JSON.stringify(values.what)}`);
    const expected = format === "toolorchestra" ? 2 : 1;
    if (positionals.length !== expected)
      throw usageError(`expected ${format === "toolorchestra" ? "RUN and DIR" : "RUN"}, got ${positionals.length} argument(s)`);
    const reader = await openReader({ server: values.server, db: values.db });
    try {
      const query = format === "toolorchestra" ? "format=toolorchestra" : `format=${format}&what=${values.what}`;
      const res = await reader.open(`/v1/runs/${encodeRef(positionals[0])}/export?${query}`);
      if (format === "toolorchestra") return await writeTaskFiles(res, positionals[1]);
      const w = openWriter(values.out);
      let n = 0;
      try {
        for await (const chunk of readChunks(res, reader.server)) {
          for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) n++;
          await w.write(chunk);
        }
        await w.close();
      } catch (err) {
        w.abandon();
        if (err instanceof ReaderGone) return 0;
        throw err;
      }
      if (values.out && values.out !== "-") console.error(`baton export: wrote ${format === "csv" ? n - 1 : n} rows to ${values.out}`);
      return 0;
    } finally {
      reader.close();
    }
  },
});

/** The body's chunks; a stream cut short (server stopped, a row unreadable) is an error, never an end. */
async function* readChunks(res: Response, from: string): AsyncGenerator<Uint8Array> {
  if (!res.body) return;
  const it = res.body.getReader();
  for (;;) {
    let next: Awaited<ReturnType<typeof it.read>>;
    try {
      next = await it.read();
    } catch (err) {
      throw new CliError(`the export from ${from} stopped before its end: ${(err as Error)?.message ?? err}; nothing was kept`);
    }
    if (next.done) return;
    yield next.value;
  }
}

/** Lines of a JSONL body, as they arrive. */
async function* readLines(res: Response, from: string): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let rest = "";
  for await (const chunk of readChunks(res, from)) {
    rest += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = rest.indexOf("\n")) !== -1) {
      yield rest.slice(0, nl);
      rest = rest.slice(nl + 1);
    }
  }
  rest += decoder.decode();
  if (rest) yield rest;
}

async function writeTaskFiles(res: Response, dir: string): Promise<number> {
  mkdirSync(dir, { recursive: true });
  // two ids that map to one file name (a/b and a_b) must not overwrite each other
  const used = new Set<string>();
  let n = 0;
  for await (const line of readLines(res, dir)) {
    if (!line) continue;
    const t = JSON.parse(line) as ToolOrchestraTask;
    const id = String(t.id);
    let name = safeFileName(id);
    for (let i = 2; used.has(name); i++) name = `${safeFileName(id)}~${i}`;
    used.add(name);
    const path = join(dir, `${name}.json`);
    // 0600: the files hold gold answers and every model reply
    writeFileSync(`${path}.partial`, toPythonJson(t), { mode: 0o600 });
    chmodSync(`${path}.partial`, 0o600);
    renameSync(`${path}.partial`, path);
    n++;
  }
  console.error(`baton export: wrote ${n} task files (finished tasks, final attempts) to ${dir}`);
  return 0;
}
