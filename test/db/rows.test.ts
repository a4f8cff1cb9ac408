// Latency rows: a batch re-sent after a lost reply (same rows, same keys) is ignored, for
// every table, including LLM HTTP attempts; and a database that already holds duplicate LLM
// rows from before the key existed is cleaned when it migrates.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { createClient } from "@libsql/client";
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, openDb, type Db } from "../../db/client";
import { recordRows, type RowBatch } from "../../db/rows";

let dir: string;
let db: Db;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-rows-"));
  db = await openDb({ url: `file:${join(dir, "baton.db")}` });
});
afterEach(() => {
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

const llm = (over: Record<string, unknown>) => ({
  runId: 1, taskId: 7, attempt: 1, step: 0, tool: "orchestrator", role: "orchestrator", model: "m",
  endpoint: "http://127.0.0.1:1", httpAttempt: 1, outcome: "ok", totalMs: 12, startedAt: 1, ...over,
});

async function count(table: string): Promise<number> {
  const r = await db.$client.execute(`SELECT count(*) AS n FROM ${table}`);
  return Number((r.rows[0] as any).n);
}

test("a re-sent batch writes nothing the second time, LLM attempts included", async () => {
  const batch: RowBatch = {
    toolCalls: [{ runId: 1, taskId: 7, attempt: 1, step: 0, tool: "search", status: "ok", startedAt: 1, durationMs: 30 }],
    components: [{ runId: 1, taskId: 7, attempt: 1, step: 0, tool: "search", component: "orchestrator", ms: 12, startedAt: 1 }],
    llmCalls: [
      llm({ httpAttempt: 1, outcome: "connection" }),
      llm({ httpAttempt: 2 }),
      llm({ role: "query_llm", tool: "search" }),
    ],
  };
  expect(await recordRows({ db, rows: batch })).toEqual({ written: 5 });
  expect(await recordRows({ db, rows: batch })).toEqual({ written: 0 });
  expect([await count("tool_calls"), await count("latency_components"), await count("llm_calls")]).toEqual([1, 1, 3]);
  // the next attempt of the same task, and a call outside any task, are new rows
  expect(await recordRows({ db, rows: { llmCalls: [llm({ attempt: 2 }), llm({ taskId: null, attempt: null, step: null })] } })).toEqual({ written: 2 });
  expect(await recordRows({ db, rows: { llmCalls: [llm({ taskId: null, attempt: null, step: null })] } })).toEqual({ written: 1 });
  expect(await count("llm_calls")).toBe(6);
});

test("batches of any size are stored whole, each row once", async () => {
  let step = 0;
  for (const size of [1, 77, 128, 200, 255]) {
    const llmCalls = Array.from({ length: size }, () => llm({ step: step++ }));
    expect(await recordRows({ db, rows: { llmCalls } })).toEqual({ written: size });
    expect(await recordRows({ db, rows: { llmCalls } })).toEqual({ written: 0 });
  }
  // from a second connection: what was committed
  const other = await openDb({ url: `file:${join(dir, "baton.db")}`, migrate: false });
  try {
    const r = await other.$client.execute("SELECT count(*) AS n, count(DISTINCT step) AS steps, min(step) AS lo, max(step) AS hi FROM llm_calls");
    expect(r.rows.map((x: any) => [Number(x.n), Number(x.steps), Number(x.lo), Number(x.hi)])).toEqual([[661, 661, 0, 660]]);
  } finally {
    closeDb(other);
  }
});

test("migrating a database with duplicated LLM rows keeps one copy of each", async () => {
  // A database at migration 0002 (before the key), with a batch recorded twice.
  const path = join(dir, "old.db");
  const raw = createClient({ url: `file:${path}` });
  for (const f of ["0000_init.sql", "0001_queue_history.sql", "0002_analysis_views.sql"]) {
    const text = readFileSync(join(import.meta.dir, "../../migrations", f), "utf8");
    for (const stmt of text.split("--> statement-breakpoint")) if (stmt.trim()) await raw.execute(stmt);
  }
  const insert = "INSERT INTO llm_calls (run_id, task_id, attempt, step, role, model, endpoint, http_attempt, outcome, total_ms, started_at) VALUES (1, ?, 1, 0, 'orchestrator', 'm', 'e', ?, 'ok', 5, 1)";
  for (let copy = 0; copy < 2; copy++) {
    await raw.execute({ sql: insert, args: [7, 1] });
    await raw.execute({ sql: insert, args: [7, 2] });
    await raw.execute({ sql: insert, args: [null, 1] });
  }
  // drizzle's journal: mark 0000-0002 applied so openDb applies only what follows
  const journal = JSON.parse(readFileSync(join(import.meta.dir, "../../migrations/meta/_journal.json"), "utf8"));
  await raw.execute("CREATE TABLE __drizzle_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, hash text NOT NULL, created_at numeric)");
  for (const e of journal.entries.slice(0, 3)) await raw.execute({ sql: "INSERT INTO __drizzle_migrations (hash, created_at) VALUES ('x', ?)", args: [e.when] });
  raw.close();

  const migrated = await openDb({ url: `file:${path}` });
  try {
    const r = await migrated.$client.execute("SELECT task_id, http_attempt, count(*) AS n FROM llm_calls GROUP BY 1, 2 ORDER BY 1, 2");
    // the task's rows are deduplicated; the two rows outside a task are left alone
    expect(r.rows.map((x: any) => [x.task_id, Number(x.http_attempt), Number(x.n)])).toEqual([[null, 1, 2], [7, 1, 1], [7, 2, 1]]);
    const cols = await migrated.$client.execute("SELECT name FROM pragma_table_info('tasks') WHERE name = 'error_infra'");
    expect(cols.rows).toHaveLength(1);
  } finally {
    closeDb(migrated);
  }
});

test("a step transcript is stored compressed, read back whole, and a re-sent one is ignored", async () => {
  const { decodeTranscript, encodeTranscript } = await import("../../db/rows");
  const doc = "Paris is the capital of France. ".repeat(2000);
  const transcript = {
    step: 2, tool: "search", tool_calls: { name: "search" }, responses: [{ _query_llm_ms: 12, _retrieval_ms: 30 }],
    llm: [{ component: "query_llm", request: { messages: [] }, reply: "<query>capital</query>" }],
    retrieval: { request: { queries: ["capital"] }, documents: [doc], status: "ok", backend: "retrieval" },
  };
  const row = { taskId: 7, attempt: 1, step: 2, body: encodeTranscript(transcript), createdAt: 5 };
  expect(await recordRows({ db, rows: { transcripts: [row] } })).toEqual({ written: 1 });
  expect(await recordRows({ db, rows: { transcripts: [row] } })).toEqual({ written: 0 });
  // read from a second connection: what was committed, not what one client cached
  const other = await openDb({ url: `file:${join(dir, "baton.db")}`, migrate: false });
  try {
    const r = await other.$client.execute("SELECT body FROM step_transcripts WHERE task_id = 7 AND attempt = 1 AND step = 2");
    const body = new Uint8Array(r.rows[0]!.body as ArrayBuffer);
    expect(body.length).toBeLessThan(doc.length / 20);
    expect(decodeTranscript(body)).toEqual(transcript);
  } finally {
    closeDb(other);
  }
});

test("a transcript written as gzip before zstd is still read, and bytes that are neither are refused by name", async () => {
  const { decodeTranscript, encodeTranscript } = await import("../../db/rows");
  const transcript = { step: 0, tool: "answer", tool_calls: null, responses: null, llm: [] };
  const zstd = Buffer.from(encodeTranscript(transcript), "base64");
  expect([...zstd.subarray(0, 4)]).toEqual([0x28, 0xb5, 0x2f, 0xfd]);
  const gzip = Bun.gzipSync(JSON.stringify(transcript));
  expect(decodeTranscript(gzip)).toEqual(transcript);
  expect(() => decodeTranscript(new TextEncoder().encode(JSON.stringify(transcript)))).toThrow(/neither zstd nor gzip/);
});

test("request bodies kept as sent are spliced into the transcript unchanged, however many, and text that looks like a placeholder stays text", async () => {
  const { decodeTranscript, encodeTranscript, SentJson } = await import("../../db/rows");
  const bodies = Array.from({ length: 12 }, (_, i) => ({ model: `m${i}`, messages: [{ role: "user", content: `q${i} "quoted" \u0000 \n ${"é".repeat(i)}` }], stream: true }));
  const lookalike = "\u0000sent-0";
  const transcript = {
    step: 1,
    tool: "search",
    tool_calls: [{ name: "search", arguments: { query: lookalike } }],
    responses: null,
    llm: bodies.map((b, i) => ({ component: "orchestrator", request: new SentJson(JSON.stringify(b)), reply: { content: `${lookalike}${i}` }, ms: i })),
  };
  const back = decodeTranscript(Buffer.from(encodeTranscript(transcript), "base64"));
  expect(back.llm.map((l) => l.request)).toEqual(bodies);
  expect(back.llm.map((l) => (l.reply as { content: string }).content)).toEqual(bodies.map((_, i) => `${lookalike}${i}`));
  expect(back.tool_calls).toEqual([{ name: "search", arguments: { query: lookalike } }]);
  // serialized any other way, a kept body is the same value
  expect(JSON.parse(JSON.stringify(transcript)).llm[3].request).toEqual(bodies[3]);
});

test("after an outage the recorder sends what piled up in batches the server accepts, every transcript once", async () => {
  const { Recorder } = await import("../../runner/recorder");
  const sizes: number[] = [];
  let down = true;
  const recorder = new Recorder(
    {
      recordRows: async (rows) => {
        if (down) throw new Error("server unreachable");
        sizes.push(rows.transcripts?.length ?? 0);
        await recordRows({ db, rows });
      },
    },
    { flushMs: 60_000, log: () => {} },
  );
  const task = recorder.forTask({ runId: 1, taskId: 7, attempt: 1 });
  for (let step = 0; step < 450; step++) task.transcript({ step, tool: "search", tool_calls: [], responses: [], llm: [] });
  await expect(recorder.flush()).rejects.toThrow("server unreachable");
  down = false;
  await recorder.flush();
  await recorder.close();
  expect(sizes).toEqual([200, 200, 50]);
  expect(await count("step_transcripts")).toBe(450);
});

test("rows are stored as the schema's query builder would store them: JSON, blobs, defaults, nulls; a row's own id is not taken", async () => {
  const { latencyComponents, llmCalls, stepTranscripts, toolCalls } = await import("../../db/schema");
  const body = Buffer.from(Bun.gzipSync(JSON.stringify({ step: 0, tool: "search" }))).toString("base64");
  const rows = {
    toolCalls: [
      { id: 999, runId: 1, taskId: 7, attempt: 1, step: 0, tool: "search", modelAlias: "search-1", model: "m", status: "ok", startedAt: 1, durationMs: 30.5, detail: { query: "q ü", n: [1, 2] } },
      { runId: 1, taskId: 7, attempt: 1, step: 1, tool: "answer", status: "error", errorClass: "llm_timeout", errorMessage: null, startedAt: 2, durationMs: 1 },
    ],
    components: [
      { runId: 1, taskId: 7, attempt: 1, step: 0, tool: "search", component: "retrieval", ms: 12.25, startedAt: 1 },
      { runId: 1, taskId: 7, attempt: 1, step: 0, tool: "search", component: "query_llm", ms: 3, retries: 2, status: "error", backend: "wiki", endpoint: "http://e", startedAt: 1 },
    ],
    llmCalls: [llm({ ttftMs: 1.5, promptTokens: 10, completionTokens: 3, finishReason: "stop" }), llm({ httpAttempt: 2, httpStatus: 503, errorMessage: "busy", outcome: "http_5xx" })],
    transcripts: [{ taskId: 7, attempt: 1, step: 0, body, createdAt: 5 }],
  } satisfies RowBatch;
  expect((await recordRows({ db, rows })).written).toBe(7);
  // the same rows through drizzle's builder, into a second database
  const other = await openDb({ url: `file:${join(dir, "other.db")}` });
  try {
    await other.insert(toolCalls).values(rows.toolCalls.map(({ id: _id, ...r }) => r));
    await other.insert(latencyComponents).values(rows.components);
    await other.insert(llmCalls).values(rows.llmCalls as any);
    await other.insert(stepTranscripts).values(rows.transcripts.map((t) => ({ ...t, body: Buffer.from(t.body, "base64") })));
    for (const table of ["tool_calls", "latency_components", "llm_calls", "step_transcripts"]) {
      const q = `SELECT * FROM ${table} ORDER BY rowid`;
      const mine = (await db.$client.execute(q)).rows.map((r) => JSON.stringify({ ...r, id: undefined, body: r.body ? Buffer.from(r.body as ArrayBuffer).toString("hex") : undefined }));
      const theirs = (await other.$client.execute(q)).rows.map((r) => JSON.stringify({ ...r, id: undefined, body: r.body ? Buffer.from(r.body as ArrayBuffer).toString("hex") : undefined }));
      expect({ table, rows: mine }).toEqual({ table, rows: theirs });
    }
    const [first] = (await db.$client.execute("SELECT id, detail FROM tool_calls ORDER BY id LIMIT 1")).rows as any[];
    expect(Number(first.id)).not.toBe(999);
    expect(JSON.parse(first.detail)).toEqual({ query: "q ü", n: [1, 2] });
  } finally {
    closeDb(other);
  }
});
