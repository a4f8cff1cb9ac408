// Streaming exports of a run: every function pages through the rows by id (keyset, 1000
// at a time) and hands each item to a sink, so a run of any size is never held in memory.
import type { InValue } from "@libsql/client";
import type { Db } from "./client";

const PAGE = 1000;
// Pages walk the table by rowid (NOT INDEXED): left to itself the planner picks a run_id
// index and sorts the whole run for every page, which makes an export quadratic.

// ToolOrchestra's analysis scripts read these per-response keys (analyze_tool_latency.py).
const TOOLORCHESTRA_KEYS: Record<string, Record<string, string>> = {
  search: { query_llm: "_query_llm_ms", retrieval: "_retrieval_ms" },
  answer: { expert_llm: "_expert_ms", judge: "_judge_ms" },
  enhance_reasoning: { expert_llm: "_llm_ms", code_exec: "_exec_ms" },
};

export type ToolOrchestraTask = {
  id: string;
  problem: string | null;
  answer: unknown;
  correct: boolean | null;
  status: string;
  pred: string | null;
  error_type?: string;
  all_tool_responses: Record<string, Record<string, unknown>[]>;
};

async function rows(db: Db, sql: string, args: InValue[]): Promise<Record<string, any>[]> {
  return (await db.$client.execute({ sql, args })).rows as any;
}

/** One object per task in the shape of ToolOrchestra's per-task JSON files. */
export async function exportToolOrchestra({ db, runId, onTask, pageSize = PAGE }: { db: Db; runId: number; onTask: (t: ToolOrchestraTask) => Promise<void> | void; pageSize?: number }): Promise<number> {
  let last = 0;
  let n = 0;
  for (;;) {
    const tasks = await rows(db, "SELECT id, external_id, input, status, correct, prediction, attempt, error_class FROM tasks NOT INDEXED WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?", [runId, last, pageSize]);
    if (tasks.length === 0) return n;
    last = Number(tasks[tasks.length - 1].id);
    const ids = tasks.map((t) => Number(t.id));
    const ph = ids.map(() => "?").join(",");
    const calls = await rows(db, `SELECT task_id, attempt, step, tool, model, status, error_class, duration_ms FROM tool_calls WHERE task_id IN (${ph}) ORDER BY task_id, step`, ids);
    const comps = await rows(db, `SELECT task_id, attempt, step, component, ms, retries, status FROM latency_components WHERE task_id IN (${ph})`, ids);
    const compsByStep = new Map<string, Record<string, any>[]>();
    for (const c of comps) {
      const k = `${c.task_id}/${c.attempt}/${c.step}`;
      (compsByStep.get(k) ?? compsByStep.set(k, []).get(k)!).push(c);
    }
    const callsByTask = new Map<number, Record<string, any>[]>();
    for (const c of calls) (callsByTask.get(Number(c.task_id)) ?? callsByTask.set(Number(c.task_id), []).get(Number(c.task_id))!).push(c);
    for (const t of tasks) {
      const input = typeof t.input === "string" ? JSON.parse(t.input) : (t.input ?? {});
      const responses: Record<string, Record<string, unknown>[]> = {};
      for (const c of callsByTask.get(Number(t.id)) ?? []) {
        if (Number(c.attempt) !== Number(t.attempt)) continue;
        const r: Record<string, unknown> = { tool: c.tool, model: c.model, status: c.status, _duration_ms: Number(c.duration_ms) };
        if (c.error_class) r.error_class = c.error_class;
        const keys = TOOLORCHESTRA_KEYS[c.tool] ?? {};
        for (const comp of compsByStep.get(`${c.task_id}/${c.attempt}/${c.step}`) ?? []) {
          const key = keys[comp.component] ?? `_${comp.component}_ms`;
          r[key] = Number(comp.ms);
          if (comp.component === "retrieval") {
            r._retrieval_retries = Number(comp.retries);
            r._retrieval_status = comp.status;
          }
        }
        responses[`turn_${c.step}_response`] = [r];
      }
      const out: ToolOrchestraTask = {
        id: t.external_id,
        problem: input.question ?? null,
        answer: input.answer ?? null,
        correct: t.correct == null ? null : Boolean(t.correct),
        // ToolOrchestra writes "success" for a finished task and "error" with error_type
        status: t.status === "succeeded" ? "success" : t.status === "failed" ? "error" : t.status,
        pred: t.prediction ?? null,
        all_tool_responses: responses,
      };
      if (t.error_class) out.error_type = t.error_class;
      await onTask(out);
      n++;
    }
  }
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
