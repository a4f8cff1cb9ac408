// Latency rows written by runners as they happen. Inserts ignore rows already present
// (tool calls unique per task/attempt/step, components per .../component, LLM calls per
// .../role/http_attempt, transcripts per .../step) so a batch re-sent after a lost reply
// never counts twice.
import type { InStatement, InValue } from "@libsql/client";
import { getTableColumns, getTableName, type Table } from "drizzle-orm";
import type { Db } from "./client";
import { latencyComponents, llmCalls, stepTranscripts, toolCalls } from "./schema";

export type ToolCallRow = typeof toolCalls.$inferInsert;
export type LatencyComponentRow = typeof latencyComponents.$inferInsert;
export type LlmCallRow = typeof llmCalls.$inferInsert;

/**
 * One step of a task's attempt, kept whole (issue #13 point 3). The protocol fills it with
 * what the ToolOrchestra reference keeps per turn, so `export --format toolorchestra` can
 * write the reference's per-task file from these alone.
 */
export type StepTranscript = {
  // same step index as the tool_calls row of this step
  step: number;
  // the chosen tool, or null for an invalid / failed orchestrator step
  tool: string | null;
  // this step's element of the reference's all_tool_calls
  tool_calls: unknown;
  // the reference's all_tool_responses["turn_{step}_response"] (with _query_llm_ms,
  // _retrieval_ms, _retrieval_retries, _expert_ms, _judge_ms, _llm_ms, _exec_ms); null when no tool ran
  responses: unknown[] | null;
  // HLE: this step's all_message_responses entry
  message_response?: unknown;
  llm: {
    component: string;
    request: unknown;
    reply: unknown;
    error?: string | null;
    endpoint?: string | null;
    ms?: number;
  }[];
  retrieval?: { request: unknown; documents: unknown[]; status: string; backend: string | null } | null;
  code?: { code: string; stdout: string; stderr: string; exit_code: number | null } | null;
  grade?: unknown;
};

// zstd level 1: about the size of gzip's default level (2.3 vs 2.2 kB for a mean 10.8 kB
// step in the makespan benchmark) at well under half its CPU (the runner compresses every
// step: 9.5% of its CPU with gzip, 4.1% with this). Rows written before are gzip, and a runner
// of that time may still send gzip: both are read, told apart by their magic bytes.
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];
const GZIP_MAGIC = [0x1f, 0x8b];

/**
 * A request body as it was sent, kept as its JSON text: a step's transcript holds every LLM
 * request whole, and serializing those conversations a second time made the transcript's
 * JSON 7% of the runner's CPU at zero model latency (5.4% with this). encodeTranscript splices
 * the text in; anything else that serializes it (toJSON) gets the same value.
 */
export class SentJson {
  constructor(readonly json: string) {}
  toJSON(): unknown {
    return JSON.parse(this.json);
  }
}

// Placeholders for SentJson while the rest is serialized: a random token per process, so no
// text a model wrote can be taken for one.
const SPLICE = `\u0000sent-${crypto.randomUUID()}-`;
const SPLICE_TEXT = JSON.stringify(SPLICE).slice(1, -1);

export function encodeTranscript(t: StepTranscript): string {
  return Buffer.from(Bun.zstdCompressSync(transcriptJson(t), { level: 1 })).toString("base64");
}

function transcriptJson(t: StepTranscript): string {
  const sent: string[] = [];
  const llm = t.llm.map((l) => (l.request instanceof SentJson ? { ...l, request: `${SPLICE}${sent.push(l.request.json) - 1}` } : l));
  if (sent.length === 0) return JSON.stringify(t);
  const json = JSON.stringify({ ...t, llm });
  // One pass: the placeholders come out in order. JSON.stringify writes U+0000 as the six
  // characters \u0000, so this is each placeholder's exact text.
  const parts: string[] = [];
  let from = 0;
  for (let i = 0; i < sent.length; i++) {
    const placeholder = `"${SPLICE_TEXT}${i}"`;
    const at = json.indexOf(placeholder, from);
    if (at < 0) throw new Error(`transcript of step ${t.step}: request ${i} lost while encoding`);
    parts.push(json.slice(from, at), sent[i]);
    from = at + placeholder.length;
  }
  parts.push(json.slice(from));
  return parts.join("");
}

function startsWith(body: Uint8Array, magic: number[]): boolean {
  return body.length >= magic.length && magic.every((b, i) => body[i] === b);
}

export function decodeTranscript(body: Uint8Array<ArrayBuffer>): StepTranscript {
  let json: Uint8Array;
  if (startsWith(body, ZSTD_MAGIC)) json = Bun.zstdDecompressSync(body);
  else if (startsWith(body, GZIP_MAGIC)) json = Bun.gunzipSync(body);
  else throw new Error("neither zstd nor gzip data");
  return JSON.parse(new TextDecoder().decode(json));
}

/**
 * One step's transcript as it travels: `body` is the base64 of the zstd-compressed JSON
 * (the runner compresses, so the HTTP batch carries a few kB instead of tens; base64 because
 * batches are JSON; gzip is accepted too). Stored as the raw compressed bytes.
 */
export type StepTranscriptRow = {
  taskId: number;
  attempt: number;
  step: number;
  body: string;
  createdAt: number;
};

export type RowBatch = {
  toolCalls?: ToolCallRow[];
  components?: LatencyComponentRow[];
  llmCalls?: LlmCallRow[];
  transcripts?: StepTranscriptRow[];
};

// SQLite allows 32766 bound variables; 128 rows of <= 20 columns stays well below.
const CHUNK = 128;

/**
 * Statements of 128, 64, ... 2, 1 rows (a batch of 200 is 128 + 64 + 8): every statement's
 * text is one of 8 per table, so the driver's prepared statements cover them all. One text per
 * row count (up to 200 per table) overflowed its cache of 256, and the runner spent 3-4% of
 * its CPU preparing inserts again.
 */
function chunks<T>(rows: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; ) {
    let size = CHUNK;
    while (size > rows.length - i) size >>= 1;
    out.push(rows.slice(i, i + size));
    i += size;
  }
  return out;
}

// A runner writes a batch every few milliseconds: the INSERT text is built once per (table,
// row count) and the driver keeps the statement prepared, instead of the query builder
// rebuilding the SQL on every batch. Values go through each column's own encoding (JSON,
// blobs) and its default, as the builder would; the autoincrement id is never taken from a row.
type InsertShape = { columns: { key: string; encode: (v: unknown) => unknown; fallback: unknown }[]; head: string; row: string; sql: Map<number, string> };
const shapes = new Map<Table, InsertShape>();

function shapeOf(table: Table): InsertShape {
  let shape = shapes.get(table);
  if (shape) return shape;
  const kept = Object.entries(getTableColumns(table)).filter(([, c]) => !(c.primary && c.columnType === "SQLiteInteger"));
  const columns = kept.map(([key, c]) => ({ key, encode: (v: unknown) => c.mapToDriverValue(v), fallback: c.default === undefined ? null : c.mapToDriverValue(c.default) }));
  const head = `INSERT INTO "${getTableName(table)}" (${kept.map(([, c]) => `"${c.name}"`).join(", ")}) VALUES `;
  shape = { columns, head, row: `(${columns.map(() => "?").join(", ")})`, sql: new Map() };
  shapes.set(table, shape);
  return shape;
}

function insertIgnoring(table: Table, rows: Record<string, unknown>[]): InStatement {
  const shape = shapeOf(table);
  let sql = shape.sql.get(rows.length);
  if (!sql) shape.sql.set(rows.length, (sql = `${shape.head}${Array(rows.length).fill(shape.row).join(", ")} ON CONFLICT DO NOTHING`));
  const args: InValue[] = [];
  for (const r of rows)
    for (const c of shape.columns) {
      const v = r[c.key];
      args.push((v === undefined ? c.fallback : v === null ? null : c.encode(v)) as InValue);
    }
  return { sql, args };
}

export async function recordRows({ db, rows }: { db: Db; rows: RowBatch }): Promise<{ written: number }> {
  const statements: InStatement[] = [];
  for (const c of chunks(rows.toolCalls ?? [])) statements.push(insertIgnoring(toolCalls, c));
  for (const c of chunks(rows.components ?? [])) statements.push(insertIgnoring(latencyComponents, c));
  for (const c of chunks(rows.llmCalls ?? [])) statements.push(insertIgnoring(llmCalls, c));
  for (const c of chunks(rows.transcripts ?? [])) statements.push(insertIgnoring(stepTranscripts, c.map((t) => ({ ...t, body: Buffer.from(t.body, "base64") }))));
  if (statements.length === 0) return { written: 0 };
  const results = await db.$client.batch(statements, "write");
  // rows actually inserted: a re-sent batch answers 0
  return { written: results.reduce((n, r) => n + Number(r?.rowsAffected ?? 0), 0) };
}
