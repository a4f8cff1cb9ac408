// Streaming exports of a run: every function pages through the rows by id (keyset, 1000
// at a time) and hands each item to a sink, so a run of any size is never held in memory.
import type { InValue } from "@libsql/client";
import type { Db } from "./client";
import { decodeTranscript, type StepTranscript } from "./rows";
import { blobBytes } from "./transcripts";

const PAGE = 1000;
// Pages walk the table by rowid (NOT INDEXED): left to itself the planner picks a run_id
// index and sorts the whole run for every page, which makes an export quadratic.

// What the reference's analyze_tool_latency.py reads per response, by tool and component:
// used only for tasks recorded before transcripts existed (their responses are rebuilt from
// the latency rows; a transcript carries the reference's own response dicts).
const TOOLORCHESTRA_KEYS: Record<string, Record<string, string>> = {
  search: { query_llm: "_query_llm_ms", retrieval: "_retrieval_ms" },
  answer: { expert_llm: "_expert_ms", judge: "_judge_ms" },
  enhance_reasoning: { expert_llm: "_llm_ms", code_exec: "_exec_ms" },
};

/**
 * The reference's per-task file (run_single in evaluation/eval_frames_oss.py and
 * eval_hle_oss.py), keys in the order it writes them: FRAMES id, all_tool_calls,
 * all_tool_responses, correct, status[, error_type]; HLE adds problem, answer and
 * all_message_responses.
 */
export type ToolOrchestraTask = {
  id: unknown;
  problem?: unknown;
  all_tool_calls: unknown[];
  all_tool_responses: Record<string, unknown[]>;
  answer?: unknown;
  all_message_responses?: Record<string, unknown>;
  correct: boolean;
  status: "done" | "error";
  error_type?: string;
};

async function rows(db: Db, sql: string, args: InValue[]): Promise<Record<string, any>[]> {
  return (await db.$client.execute({ sql, args })).rows as any;
}

function groupBy<T extends Record<string, any>>(items: T[], key: (x: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const x of items) {
    const k = key(x);
    (out.get(k) ?? out.set(k, []).get(k)!).push(x);
  }
  return out;
}

/**
 * Whether the reference would have written this task's file, and with which status: it
 * writes one when run_single returns (answered, out of rounds, or a tool error: "done" or
 * "error" as the runner recorded in result.status), never when the process died (Baton's
 * infrastructure failures: those stay missing ids, as they would there).
 */
function finishedStatus(task: { status: string; result: Record<string, any> | null }): "done" | "error" | null {
  const s = task.result?.status;
  if (s === "done" || s === "error") return s;
  return task.status === "succeeded" ? "done" : null;
}

function readTranscript(row: Record<string, any>, externalId: string): StepTranscript {
  try {
    return decodeTranscript(blobBytes(row.body));
  } catch (err) {
    throw new Error(`task ${JSON.stringify(externalId)} step ${row.step}: stored transcript unreadable (${(err as Error).message})`);
  }
}

/** A task's file from the transcripts of its final attempt. */
function fromTranscripts(steps: StepTranscript[]): Pick<ToolOrchestraTask, "all_tool_calls" | "all_tool_responses" | "all_message_responses"> {
  const calls: unknown[] = [];
  const responses: Record<string, unknown[]> = {};
  const messages: Record<string, unknown> = {};
  for (const s of steps) {
    // a step whose orchestrator call failed appends nothing (the reference's `continue`)
    if (s.tool_calls !== undefined && s.tool_calls !== null) calls.push(s.tool_calls);
    if (s.responses != null) responses[`turn_${s.step}_response`] = s.responses;
    if (s.message_response !== undefined) messages[`turn_${s.step}_message`] = s.message_response;
  }
  return { all_tool_calls: calls, all_tool_responses: responses, all_message_responses: messages };
}

/** Older tasks without transcripts: the latency rows in the reference's response keys. */
function fromLatencyRows(calls: Record<string, any>[], comps: Map<string, Record<string, any>[]>): Pick<ToolOrchestraTask, "all_tool_calls" | "all_tool_responses" | "all_message_responses"> {
  const allCalls: unknown[] = [];
  const responses: Record<string, unknown[]> = {};
  for (const c of calls) {
    if (c.status === "invalid") continue;
    allCalls.push([{ name: c.tool, arguments: { model: c.model_alias ?? c.model } }]);
    const r: Record<string, unknown> = { tool: c.tool, model: c.model };
    const keys = TOOLORCHESTRA_KEYS[c.tool] ?? {};
    for (const comp of comps.get(`${c.task_id}/${c.step}`) ?? []) {
      const key = keys[comp.component];
      if (!key) continue;
      r[key] = Number(comp.ms);
      if (comp.component === "retrieval") r._retrieval_retries = Number(comp.retries);
    }
    responses[`turn_${c.step}_response`] = [r];
  }
  return { all_tool_calls: allCalls, all_tool_responses: responses };
}

/**
 * One object per finished task of a run in the reference's per-task shape, from the final
 * attempt's transcripts. Tasks are paged (a page's transcripts are tens of MB decompressed).
 */
export async function exportToolOrchestra({ db, runId, onTask, pageSize = 25 }: { db: Db; runId: number; onTask: (t: ToolOrchestraTask) => Promise<void> | void; pageSize?: number }): Promise<number> {
  const [run] = await rows(db, "SELECT benchmark FROM runs WHERE id = ?", [runId]);
  const hle = run?.benchmark === "hle";
  let last = 0;
  let n = 0;
  for (;;) {
    const tasks = await rows(db, "SELECT id, external_id, input, status, attempt, correct, result FROM tasks NOT INDEXED WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?", [runId, last, pageSize]);
    if (tasks.length === 0) return n;
    last = Number(tasks[tasks.length - 1].id);
    const done = tasks
      .map((t) => ({
        id: Number(t.id),
        externalId: String(t.external_id),
        input: typeof t.input === "string" ? JSON.parse(t.input) : (t.input ?? {}),
        status: String(t.status),
        attempt: Number(t.attempt),
        correct: t.correct as number | null,
        result: (typeof t.result === "string" ? JSON.parse(t.result) : (t.result ?? null)) as Record<string, any> | null,
      }))
      .filter((t) => finishedStatus(t) !== null);
    if (done.length === 0) continue;
    const ph = done.map(() => "(?, ?)").join(",");
    const keys = done.flatMap((t) => [t.id, t.attempt]);
    const [transcripts, calls, comps] = await Promise.all([
      rows(db, `SELECT task_id, step, body FROM step_transcripts WHERE (task_id, attempt) IN (VALUES ${ph}) ORDER BY task_id, step`, keys),
      rows(db, `SELECT task_id, step, tool, model_alias, model, status FROM tool_calls WHERE (task_id, attempt) IN (VALUES ${ph}) ORDER BY task_id, step`, keys),
      rows(db, `SELECT task_id, step, component, ms, retries FROM latency_components WHERE (task_id, attempt) IN (VALUES ${ph})`, keys),
    ]);
    const stepsOf = groupBy(transcripts, (r) => String(r.task_id));
    const callsOf = groupBy(calls, (r) => String(r.task_id));
    const compsOf = groupBy(comps, (r) => `${r.task_id}/${r.step}`);
    for (const t of done) {
      const input = t.input;
      const steps = stepsOf.get(String(t.id));
      const body = steps
        ? fromTranscripts(steps.map((s) => readTranscript(s, t.externalId)))
        : fromLatencyRows(callsOf.get(String(t.id)) ?? [], compsOf);
      const status = finishedStatus(t)!;
      const correct = Boolean(t.result?.correct ?? t.correct ?? false);
      const out: ToolOrchestraTask = hle
        ? {
            id: input.id ?? t.externalId,
            problem: input.question ?? null,
            all_tool_calls: body.all_tool_calls,
            all_tool_responses: body.all_tool_responses,
            answer: input.answer ?? null,
            all_message_responses: body.all_message_responses ?? {},
            correct,
            status,
          }
        : { id: input.id ?? t.externalId, all_tool_calls: body.all_tool_calls, all_tool_responses: body.all_tool_responses, correct, status };
      const errorType = t.result?.error_type;
      if (errorType) out.error_type = String(errorType);
      await onTask(out);
      n++;
    }
  }
}

/**
 * JSON as Python's json.dump(obj, f, indent=2) writes it (the reference's files): two-space
 * indent, ", "-free item separators, and every non-ASCII character escaped (ensure_ascii).
 * Integral floats (Python's 12.0) come out as 12: JSON readers see the same number.
 */
export function toPythonJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

export const RESULT_COLUMNS = ["id", "status", "correct", "prediction", "attempt", "steps", "error_class", "error_message", "started_at", "finished_at"] as const;
export const LATENCY_COLUMNS = ["run_id", "task_id", "external_id", "attempt", "step", "tool", "model", "component", "ms", "retries", "backend", "endpoint", "status", "call_status", "started_at"] as const;

/** One row per task (results). */
export async function exportResults({ db, runId, onRow, pageSize = PAGE }: { db: Db; runId: number; onRow: (r: Record<string, unknown>) => Promise<void> | void; pageSize?: number }): Promise<number> {
  let last = 0;
  let n = 0;
  for (;;) {
    const page = await rows(
      db,
      `SELECT t.id AS task_id, t.external_id AS id, t.status, t.correct, t.prediction, t.attempt,
         (SELECT count(*) FROM tool_calls c WHERE c.task_id = t.id AND c.attempt = t.attempt) AS steps,
         t.error_class, t.error_message, t.started_at, t.finished_at
       FROM tasks t NOT INDEXED WHERE t.run_id = ? AND t.id > ? ORDER BY t.id LIMIT ?`,
      [runId, last, pageSize],
    );
    if (page.length === 0) return n;
    last = Number(page[page.length - 1].task_id);
    for (const r of page) {
      await onRow({ ...Object.fromEntries(RESULT_COLUMNS.map((c) => [c, r[c] ?? null])), correct: r.correct == null ? null : Boolean(r.correct) });
      n++;
    }
  }
}

/** One row per latency component (the tool_latency view), in id order. */
export async function exportLatency({ db, runId, onRow, pageSize = PAGE * 5 }: { db: Db; runId: number; onRow: (r: Record<string, unknown>) => Promise<void> | void; pageSize?: number }): Promise<number> {
  let last = 0;
  let n = 0;
  for (;;) {
    const page = await rows(
      db,
      `SELECT lc.id AS _id, lc.run_id, lc.task_id, t.external_id, lc.attempt, lc.step, lc.tool, lc.model, lc.component, lc.ms,
         lc.retries, lc.backend, lc.endpoint, lc.status, tc.status AS call_status, lc.started_at
       FROM latency_components lc NOT INDEXED LEFT JOIN tasks t ON t.id = lc.task_id
       LEFT JOIN tool_calls tc ON tc.task_id = lc.task_id AND tc.attempt = lc.attempt AND tc.step = lc.step
       WHERE lc.run_id = ? AND lc.id > ? ORDER BY lc.id LIMIT ?`,
      [runId, last, pageSize],
    );
    if (page.length === 0) return n;
    last = Number(page[page.length - 1]._id);
    for (const r of page) {
      await onRow(Object.fromEntries(LATENCY_COLUMNS.map((c) => [c, r[c] ?? null])));
      n++;
    }
  }
}

/** RFC 4180 field: quoted when it holds a comma, quote or newline. */
export function csvField(x: unknown): string {
  if (x == null) return "";
  const s = typeof x === "object" ? JSON.stringify(x) : String(x);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
