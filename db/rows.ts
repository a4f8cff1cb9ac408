// Latency rows written by runners as they happen. Inserts ignore rows already present
// (tool calls unique per task/attempt/step, components per .../component, LLM calls per
// .../role/http_attempt) so a batch re-sent after a lost reply never counts twice.
import type { Db } from "./client";
import { latencyComponents, llmCalls, toolCalls } from "./schema";

export type ToolCallRow = typeof toolCalls.$inferInsert;
export type LatencyComponentRow = typeof latencyComponents.$inferInsert;
export type LlmCallRow = typeof llmCalls.$inferInsert;

export type RowBatch = {
  toolCalls?: ToolCallRow[];
  components?: LatencyComponentRow[];
  llmCalls?: LlmCallRow[];
};

// SQLite allows 32766 bound variables; 200 rows of <= 20 columns stays well below.
const CHUNK = 200;

function chunks<T>(rows: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += CHUNK) out.push(rows.slice(i, i + CHUNK));
  return out;
}

export async function recordRows({ db, rows }: { db: Db; rows: RowBatch }): Promise<{ written: number }> {
  const statements: any[] = [];
  for (const c of chunks(rows.toolCalls ?? [])) statements.push(db.insert(toolCalls).values(c).onConflictDoNothing());
  for (const c of chunks(rows.components ?? []))
    statements.push(db.insert(latencyComponents).values(c).onConflictDoNothing());
  for (const c of chunks(rows.llmCalls ?? [])) statements.push(db.insert(llmCalls).values(c).onConflictDoNothing());
  if (statements.length === 0) return { written: 0 };
  const results = await db.batch(statements as [any, ...any[]]);
  // rows actually inserted: a re-sent batch answers 0
  return { written: results.reduce((n: number, r: any) => n + Number(r?.rowsAffected ?? 0), 0) };
}
