// The web page's task table: a run's tasks filtered by state, correctness, steps, duration,
// error class, tool used and text in the question, paged by id. Steps count the final
// attempt's tool calls, as the task_outcomes view does, so the page and the view agree.
import type { InValue } from "@libsql/client";
import type { Db } from "./client";
import { findRun, type TaskListItem } from "./runs";
import { TASK_STATUSES, type TaskStatus } from "./schema";

export type TaskFilters = {
  status?: TaskStatus;
  correct?: boolean;
  error_class?: string;
  tool?: string;
  q?: string;
  min_steps?: number;
  max_steps?: number;
  min_duration_ms?: number;
  max_duration_ms?: number;
};

// a task as every list shows it, plus what the run's task table filters and sorts on
export type TaskPageItem = TaskListItem & {
  question: string | null;
  steps: number;
  tools: string[];
  duration_ms: number | null;
};

export const TASK_LIST_MAX = 1_000;
const QUESTION_PREVIEW = 300;

const STEPS = "(SELECT count(*) FROM tool_calls c WHERE c.task_id = t.id AND c.attempt = t.attempt)";
const DURATION = "(CASE WHEN t.finished_at IS NOT NULL AND t.started_at IS NOT NULL THEN t.finished_at - t.started_at END)";

// LIKE with the user's text taken literally: % and _ are escaped
function likePattern(s: string): string {
  return `%${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

function whereOf(runId: number, f: TaskFilters, cursor: number | undefined): { sql: string; args: InValue[] } {
  const parts = ["t.run_id = ?"];
  const args: InValue[] = [runId];
  const add = (sql: string, ...a: InValue[]) => {
    parts.push(sql);
    args.push(...a);
  };
  // Each status has its own partial index (migrations 0012, 0015): the queue lane, the lease
  // index (named in listTaskPage: the planner would rather scan the whole table in id order) or
  // the per-run finished index. The status is written as a literal (one of TASK_STATUSES): a
  // partial index is only chosen when the query's WHERE visibly implies the index's.
  if (f.status && !TASK_STATUSES.includes(f.status)) throw new Error(`unknown task status ${f.status}`);
  if (f.status) add(f.status === "queued" || f.status === "running" ? `t.status = '${f.status}'` : `t.status = '${f.status}' AND t.finished_at IS NOT NULL`);
  if (f.correct === true) add("t.correct = 1");
  if (f.correct === false) add("t.status = 'succeeded' AND coalesce(t.correct, 0) = 0");
  if (f.error_class) add("t.error_class = ?", f.error_class);
  if (f.tool) add("EXISTS (SELECT 1 FROM tool_calls c WHERE c.task_id = t.id AND c.attempt = t.attempt AND c.tool = ?)", f.tool);
  if (f.q) add("(json_extract(t.input, '$.question') LIKE ? ESCAPE '\\' OR t.external_id LIKE ? ESCAPE '\\')", likePattern(f.q), likePattern(f.q));
  if (f.min_steps != null) add(`${STEPS} >= ?`, f.min_steps);
  if (f.max_steps != null) add(`${STEPS} <= ?`, f.max_steps);
  if (f.min_duration_ms != null) add(`${DURATION} >= ?`, f.min_duration_ms);
  if (f.max_duration_ms != null) add(`${DURATION} <= ?`, f.max_duration_ms);
  if (cursor != null) add("t.id > ?", cursor);
  return { sql: parts.join(" AND "), args };
}

/** A page of a run's tasks matching every filter, in id order; `cursor` is the previous page's last id. */
export async function listTaskPage({
  db,
  ref,
  filters = {},
  limit = 100,
  cursor,
  offset,
}: {
  db: Db;
  ref: string | number;
  filters?: TaskFilters;
  limit?: number;
  cursor?: number;
  offset?: number;
}): Promise<{ run_id: number; tasks: TaskPageItem[]; next_cursor: number | null }> {
  const run = await findRun({ db, ref });
  const n = Math.max(1, Math.min(TASK_LIST_MAX, limit));
  const where = whereOf(run.id, filters, cursor);
  const res = await db.$client.execute({
    sql: `SELECT t.id, t.external_id, t.status, t.attempt, t.max_attempts, t.prediction, t.correct, t.error_class,
        t.error_message, t.lease_owner, t.started_at, t.finished_at, t.updated_at,
        substr(json_extract(t.input, '$.question'), 1, ${QUESTION_PREVIEW}) AS question, ${STEPS} AS steps,
        (SELECT group_concat(tool) FROM (SELECT DISTINCT c.tool FROM tool_calls c WHERE c.task_id = t.id AND c.attempt = t.attempt ORDER BY c.tool)) AS tools,
        ${DURATION} AS duration_ms
      FROM tasks t${filters.status === "running" ? " INDEXED BY tasks_lease_idx" : ""} WHERE ${where.sql} ORDER BY t.id LIMIT ? OFFSET ?`,
    args: [...where.args, n + 1, cursor == null && offset ? offset : 0],
  });
  const rows = res.rows as unknown as Record<string, any>[];
  const page = rows.slice(0, n).map(
    (r): TaskPageItem => ({
      id: Number(r.id),
      external_id: String(r.external_id),
      status: r.status,
      attempt: Number(r.attempt),
      max_attempts: Number(r.max_attempts),
      prediction: r.prediction ?? null,
      correct: r.correct == null ? null : Number(r.correct) === 1,
      error_class: r.error_class ?? null,
      error_message: r.error_message ?? null,
      lease_owner: r.lease_owner ?? null,
      started_at: r.started_at == null ? null : Number(r.started_at),
      finished_at: r.finished_at == null ? null : Number(r.finished_at),
      updated_at: Number(r.updated_at),
      question: typeof r.question === "string" ? r.question : null,
      steps: Number(r.steps),
      tools: r.tools ? String(r.tools).split(",") : [],
      duration_ms: r.duration_ms == null ? null : Number(r.duration_ms),
    }),
  );
  return { run_id: run.id, tasks: page, next_cursor: rows.length > n ? page[page.length - 1].id : null };
}
