// CPU per recordRows batch (5 steps: 5 tool calls, 15 components, 5 LLM calls, 5 transcripts),
// the prepared-text inserts against the query builder they replaced, alternated in one process.
//   bun bench/record-rows.ts
import { openDb } from "../db/client";
import { recordRows } from "../db/rows";
import { latencyComponents, llmCalls, stepTranscripts, toolCalls } from "../db/schema";
async function recordOld({ db, rows }: any) {
  const statements: any[] = [];
  statements.push(db.insert(toolCalls).values(rows.toolCalls).onConflictDoNothing());
  statements.push(db.insert(latencyComponents).values(rows.components).onConflictDoNothing());
  statements.push(db.insert(llmCalls).values(rows.llmCalls).onConflictDoNothing());
  statements.push(db.insert(stepTranscripts).values(rows.transcripts.map((t: any) => ({ ...t, body: Buffer.from(t.body, "base64") }))).onConflictDoNothing());
  await db.batch(statements);
}
import { generateRun } from "../bench/gen-latency-rows";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
const dir = mkdtempSync(join(tmpdir(), "baton-bench-rows-"));
const db = await openDb({ url: join(dir, "rows.db") });
await generateRun({ db, tasks: 10, seed: 1, name: "x" });
const body = Buffer.from(Bun.gzipSync(JSON.stringify({ step: 1, x: "y".repeat(2000) }))).toString("base64");
let step = 1000;
const batch = () => {
  const toolCalls = [], components = [], llmCalls = [], transcripts = [];
  for (let i = 0; i < 5; i++) {
    step++;
    toolCalls.push({ runId: 1, taskId: 1, attempt: 1, step, tool: "search", modelAlias: "search-1", model: "m", status: "ok", startedAt: Date.now(), durationMs: 12.5, detail: { a: 1 } });
    for (const c of ["orchestrator", "query_llm", "retrieval"]) components.push({ runId: 1, taskId: 1, attempt: 1, step, tool: "search", component: c, model: "m", ms: Math.random() * 1000, startedAt: Date.now() });
    llmCalls.push({ runId: 1, taskId: 1, attempt: 1, step, tool: "search", role: "orchestrator", model: "m", endpoint: "http://x", httpAttempt: 1, outcome: "ok", totalMs: 100, startedAt: Date.now() });
    transcripts.push({ taskId: 1, attempt: 1, step, body, createdAt: Date.now() });
  }
  return { toolCalls, components, llmCalls, transcripts };
};
for (let i = 0; i < 200; i++) await recordRows({ db, rows: batch() });
const res: Record<string, number[]> = { old: [], new: [] };
for (let r = 0; r < 7; r++) {
  for (const [name, f] of [["old", recordOld], ["new", recordRows]] as const) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < 300; i++) await (f as any)({ db, rows: batch() });
    const d = process.cpuUsage(t0);
    res[name].push((d.user + d.system) / 1000 / 300);
  }
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[3];
console.log(`recordRows CPU per 30-row batch, medians of 7 alternated: query builder ${med(res.old).toFixed(3)} ms, prepared text ${med(res.new).toFixed(3)} ms, ratio ${(med(res.new) / med(res.old)).toFixed(2)}`);
rmSync(dir, { recursive: true, force: true });
