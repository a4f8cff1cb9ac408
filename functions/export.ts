// A run's export as a stream: what `baton export` writes, from the server or (with --db) from
// this process over a read-only file. The rows are read page by page and sent as the reader
// takes them, so neither side ever holds the run in memory.
import { Elysia } from "elysia";
import * as v from "valibot";
import { csvField, exportLatency, exportResults, exportToolOrchestra, LATENCY_COLUMNS, RESULT_COLUMNS } from "../db/export";
import { findRun } from "../db/runs";
import type { AppDeps } from "./deps";
import { ApiError, ErrorBody } from "./errors";
import { RunRef } from "./runs";

export const EXPORT_FORMATS = ["jsonl", "csv", "toolorchestra"] as const;
export const EXPORT_WHATS = ["results", "latency"] as const;

export const ExportQuery = v.object({
  format: v.picklist(EXPORT_FORMATS, `expected ${EXPORT_FORMATS.join(", ")}`),
  what: v.optional(v.picklist(EXPORT_WHATS, `expected ${EXPORT_WHATS.join(" or ")}`)),
});
export type ExportQuery = v.InferOutput<typeof ExportQuery>;

/** The reader went away: the producer stops at its next line instead of reading on. */
class ReaderGone extends Error {}

// Lines are gathered into ~64 KB chunks (one chunk per row would cost a write per row), and the
// producer waits while the reader has not taken the chunks already queued.
const CHUNK_CHARS = 65_536;

/** A byte stream fed by a producer that emits text; back-pressure and cancellation included. */
export function streamText(produce: (emit: (text: string) => Promise<void>) => Promise<unknown>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let buffered = "";
  let gone = false;
  let wake: (() => void) | null = null;
  const resume = () => {
    wake?.();
    wake = null;
  };
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        const emit = async (text: string) => {
          if (gone) throw new ReaderGone();
          buffered += text;
          if (buffered.length < CHUNK_CHARS) return;
          controller.enqueue(encoder.encode(buffered));
          buffered = "";
          while ((controller.desiredSize ?? 1) <= 0 && !gone) await new Promise<void>((r) => (wake = r));
          if (gone) throw new ReaderGone();
        };
        // not awaited: start() must return for the reader to begin pulling
        void produce(emit).then(
          () => {
            if (gone) return;
            if (buffered) controller.enqueue(encoder.encode(buffered));
            controller.close();
          },
          (err) => {
            if (err instanceof ReaderGone) return;
            console.error("baton: export stopped:", (err as Error)?.message ?? err);
            // the reader sees the stream fail, never a complete-looking truncated export
            controller.error(err);
          },
        );
      },
      pull: resume,
      cancel() {
        gone = true;
        resume();
      },
    },
    { highWaterMark: 4 },
  );
}

const CONTENT_TYPES: Record<ExportQuery["format"], string> = {
  jsonl: "application/x-ndjson",
  toolorchestra: "application/x-ndjson",
  csv: "text/csv; charset=utf-8",
};

/** The export of a run as a Response whose body is produced while it is read. */
export async function openExport({ db, ref, format, what }: { db: AppDeps["db"]; ref: string } & ExportQuery): Promise<Response> {
  if (format === "toolorchestra" && what !== undefined)
    throw new ApiError(400, "request.invalid", "query.what: only with format jsonl or csv (toolorchestra exports finished tasks)");
  const run = await findRun({ db, ref });
  const kind = what ?? "results";
  const body = streamText(async (emit) => {
    // one reference per-task file per line, keys in the reference's order
    if (format === "toolorchestra") return exportToolOrchestra({ db, runId: run.id, onTask: (t) => emit(JSON.stringify(t) + "\n") });
    const columns = kind === "latency" ? LATENCY_COLUMNS : RESULT_COLUMNS;
    if (format === "csv") await emit(columns.join(",") + "\n");
    const onRow = (r: Record<string, unknown>) => emit(format === "csv" ? columns.map((c) => csvField(r[c])).join(",") + "\n" : JSON.stringify(r) + "\n");
    return kind === "latency" ? exportLatency({ db, runId: run.id, onRow }) : exportResults({ db, runId: run.id, onRow });
  });
  const file = `run-${run.id}-${format === "toolorchestra" ? "toolorchestra" : kind}.${format === "csv" ? "csv" : "jsonl"}`;
  return new Response(body, {
    headers: {
      "content-type": CONTENT_TYPES[format],
      "content-disposition": `attachment; filename="${file}"`,
      // the rows hold gold answers and model replies
      "cache-control": "no-store",
    },
  });
}

export const exportRoutes = (deps: AppDeps) =>
  new Elysia({ name: "export" }).get("/v1/runs/:id/export", ({ params, query }) => openExport({ db: deps.db, ref: params.id, ...query }), {
    params: RunRef,
    query: ExportQuery,
    // 200 is JSONL or CSV, not JSON: functions/openapi-doc.ts STREAMED_ANSWERS documents its media types
    response: { 200: v.string(), 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
    detail: {
      summary: "A run's results or latency rows as JSONL or CSV, or the ToolOrchestra reference's per-task files as JSONL (what `baton export` writes), streamed",
    },
  });
