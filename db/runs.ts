// Runs and their tasks: creation (all-or-nothing) and the reads behind status, listing and
// the task pages. Task state changes live in db/queue.ts, never here.
import { and, asc, desc, eq, gt, lt, sql } from "drizzle-orm";
import * as v from "valibot";
import { DbError } from "./errors";
import { checkJsonValue } from "./json-value";
import { resolveRunConfig } from "./run-config";
import { countInfraFailed } from "./analysis";
import type { InArgs, InStatement, InValue } from "@libsql/client";
import type { Db } from "./client";
import { dbNowMs, runs, TASK_STATUSES, taskAttempts, tasks, type TaskStatus } from "./schema";

// Control characters (NUL above all: libSQL cuts a text value at it on read) are refused in
// names and ids rather than stored as something other than what was sent.
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
export const MAX_NAME_LENGTH = 200;
export const MAX_EXTERNAL_ID_LENGTH = 256;
// What the protocol has prompts and a grading profile for; anything else would silently run
// with FRAMES' prompts.
export const BENCHMARKS = ["frames", "hle"] as const;

const NoControlChars = v.check((s: string) => !CONTROL_CHARS.test(s), "must not contain control characters (NUL, newline, ...)");

// One dataset row. id may be a number in the file (FRAMES uses ints); it is stored as text,
// so only integers that print back exactly (|id| <= 2^53 - 1) are taken as numbers.
// Every other field (answer_type, image, canary, ...) is kept as submitted.
export const TaskRow = v.looseObject({
  id: v.pipe(
    v.union(
      [
        v.string(),
        v.pipe(
          v.number(),
          v.safeInteger("expected an integer of at most 15 digits (send larger or fractional ids as strings)"),
        ),
      ],
      "expected a string or an integer",
    ),
    v.transform((x) => String(x)),
    v.minLength(1, "expected a non-empty id"),
    v.maxLength(MAX_EXTERNAL_ID_LENGTH, `expected at most ${MAX_EXTERNAL_ID_LENGTH} characters`),
    NoControlChars,
  ),
  question: v.pipe(v.string("expected a non-empty string"), v.minLength(1, "expected a non-empty string")),
});
export type TaskRow = v.InferOutput<typeof TaskRow>;

export const MAX_ATTEMPTS_LIMIT = 100;

// A run is referred to by id or name (`baton cancel 7`), so a name may not look like an id.
export const RunName = v.pipe(
  v.string("expected a string"),
  v.trim(),
  v.minLength(1, "expected a non-empty name"),
  v.maxLength(MAX_NAME_LENGTH, `expected at most ${MAX_NAME_LENGTH} characters`),
  NoControlChars,
  v.check((s: string) => !/^\d+$/.test(s), "a name made only of digits would be read as a run id; add a letter"),
);

export const Benchmark = v.pipe(
  v.string("expected a string"),
  v.trim(),
  v.toLowerCase(),
  v.picklist(BENCHMARKS, `expected one of ${BENCHMARKS.join(", ")}`),
);

/** name and benchmark as createRun stores them; throws a 400 naming the field. */
export function checkRunFields({ name, benchmark }: { name: unknown; benchmark: unknown }): { name: string; benchmark: string } {
  for (const [field, schema, value] of [["name", RunName, name], ["benchmark", Benchmark, benchmark]] as const) {
    const r = v.safeParse(schema, value);
    if (!r.success) throw new DbError("invalid", "runs.invalid", `${field}: ${r.issues[0].message}`);
  }
  return { name: v.parse(RunName, name), benchmark: v.parse(Benchmark, benchmark) };
}

const MISSING: Record<string, string> = {
  id: "missing; expected a string or a number",
  question: "expected a non-empty string",
};

// parentTaskId: the parent run's task a derived run re-runs (db/experiments.ts), and repeat
// that task's repeat index (kept, so a re-run of a repeated run keeps its ids unique)
export type ValidTask = { externalId: string; input: Record<string, unknown>; parentTaskId?: number | null; repeat?: number };

// What makes a run an experiment (db/experiments.ts): its parent or sweep, K tasks per
// question, and the claim controls.
export type RunLinks = {
  parentRunId?: number | null;
  sweepId?: number | null;
  sweepValues?: Record<string, unknown> | null;
  repeats?: number;
  priority?: number;
  maxConcurrency?: number | null;
};
export const MAX_REPEATS = 100;

/**
 * Checks every row and reports the first problem by position (`label(i)` is `tasks[3]` for
 * a JSON array or `line 4` for JSONL). Duplicate ids name both positions.
 */
export function validateTasks({
  rows,
  label = (i) => `tasks[${i}]`,
}: {
  rows: unknown[];
  label?: (i: number) => string;
}): ValidTask[] {
  if (rows.length === 0) throw new DbError("invalid", "tasks.empty", "tasks: expected at least one task");
  const out: ValidTask[] = new Array(rows.length);
  const seen = new Map<string, number>();
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    if (row === null || typeof row !== "object" || Array.isArray(row))
      throw new DbError("invalid", "tasks.invalid", `${label(i)}: expected an object with id and question`);
    // what TaskRow accepts, checked inline (100k rows through valibot cost more than the
    // inserts); anything it does not pass goes through TaskRow for the exact message
    const externalId = quickTaskId(row as Record<string, unknown>) ?? checkTaskRow(row, label(i));
    const first = seen.get(externalId);
    if (first !== undefined)
      throw new DbError(
        "invalid",
        "tasks.duplicate_id",
        `${label(i)}.id: duplicate id ${JSON.stringify(externalId)} (first at ${label(first)})`,
      );
    seen.set(externalId, i);
    out[i] = { externalId, input: row as Record<string, unknown> };
  }
  return out;
}

/** The row's id as stored when the row is valid by TaskRow's rules, else null. */
function quickTaskId(row: Record<string, unknown>): string | null {
  const id = row.id;
  let text: string;
  if (typeof id === "string") text = id;
  else if (typeof id === "number" && Number.isSafeInteger(id)) text = String(id);
  else return null;
  if (text.length === 0 || text.length > MAX_EXTERNAL_ID_LENGTH || CONTROL_CHARS.test(text)) return null;
  const question = row.question;
  return typeof question === "string" && question.length > 0 ? text : null;
}

/** A row quickTaskId refused, through TaskRow: its first issue, named by the row's position. */
function checkTaskRow(row: unknown, where: string): string {
  const parsed = v.safeParse(TaskRow, row);
  if (parsed.success) return parsed.output.id;
  const issue = parsed.issues[0];
  const field = v.getDotPath(issue) ?? "";
  // valibot reports a missing key as an object issue; say what the field should be.
  const message = /object$/.test(issue.type) && issue.received === "undefined" ? (MISSING[field] ?? "required") : issue.message;
  throw new DbError("invalid", "tasks.invalid", `${where}${field ? `.${field}` : ""}: ${message}`);
}

/** JSONL text → rows; blank lines are skipped but keep their place in the line count. */
export function parseJsonl(text: string): { rows: unknown[]; lines: number[] } {
  const rows: unknown[] = [];
  const lines: number[] = [];
  let start = 0;
  let lineNo = 0;
  while (start <= text.length) {
    let end = text.indexOf("\n", start);
    if (end === -1) end = text.length;
    lineNo++;
    const line = text.slice(start, end).trim();
    if (line) {
      let row: unknown;
      try {
        row = JSON.parse(line);
      } catch (err) {
        const why = err instanceof RangeError ? "nested too deep" : (err as Error).message;
        throw new DbError("invalid", "tasks.invalid_jsonl", `line ${lineNo}: invalid JSON (${why})`);
      }
      checkJsonValue(row, `line ${lineNo}`);
      rows.push(row);
      lines.push(lineNo);
    }
    start = end + 1;
  }
  return { rows, lines };
}

export function validateJsonlTasks(text: string): ValidTask[] {
  const { rows, lines } = parseJsonl(text);
  if (rows.length === 0) throw new DbError("invalid", "tasks.empty", "tasks: the JSONL body has no rows");
  return validateTasks({ rows, label: (i) => `line ${lines[i]}` });
}

export type RunRecord = typeof runs.$inferSelect;

// 4 bound values per row; 5,000 rows stays well under SQLite's 32,766-variable limit, and
// few large statements are what makes 100k tasks fast.
const INSERT_CHUNK = 5_000;

// The tasks' INSERT for a chunk of `rows` rows, built once per size: the same text each time
// means the file driver prepares it once per connection (db/sqlite-client.ts keeps it) and
// the 100k-row submit spends nothing on building SQL. The run is found as max(id): the batch
// holds the write lock from its first insert, and AUTOINCREMENT ids only grow. SELECT over
// VALUES so that subquery is evaluated once per statement, not per row.
const insertTasksSql = new Map<number, string>();
function insertTasksText(rows: number): string {
  let text = insertTasksSql.get(rows);
  if (!text) {
    text =
      "INSERT INTO tasks (run_id, external_id, input, repeat, parent_task_id, max_attempts, available_at, created_at, updated_at) " +
      "SELECT (SELECT max(id) FROM runs), column1, column2, column3, column4, ?, ?, ?, ? FROM (VALUES " +
      "(?, ?, ?, ?), ".repeat(rows - 1) +
      "(?, ?, ?, ?))";
    insertTasksSql.set(rows, text);
  }
  return text;
}

// The inserted tasks are all queued: counted once here instead of by a per-row trigger
// (migration 0013), in the same transaction, so the counters are never seen without them.
const COUNT_QUEUED_SQL = "UPDATE run_counts SET queued = queued + ? WHERE run_id = (SELECT max(id) FROM runs)";

/**
 * Creates a run with all its tasks in one write transaction: either every task is queued or
 * nothing is. With an idempotency key, a repeat returns the first run (created = false).
 */
export async function createRun({
  db,
  name,
  benchmark,
  config,
  tasks: rows,
  maxAttempts = 3,
  idempotencyKey = null,
  links = {},
}: {
  db: Db;
  name: string;
  benchmark: string;
  config?: unknown;
  tasks: ValidTask[];
  maxAttempts?: number;
  idempotencyKey?: string | null;
  links?: RunLinks;
}): Promise<{ run: RunRecord; created: boolean }> {
  if (idempotencyKey) {
    const existing = await findRunByIdempotencyKey({ db, idempotencyKey });
    if (existing) return { run: existing, created: false };
  }
  if (rows.length === 0) throw new DbError("invalid", "tasks.empty", "tasks: expected at least one task");
  ({ name, benchmark } = checkRunFields({ name, benchmark }));
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > MAX_ATTEMPTS_LIMIT)
    throw new DbError("invalid", "runs.invalid", `max_attempts: expected an integer from 1 to ${MAX_ATTEMPTS_LIMIT}`);
  const repeats = links.repeats ?? 1;
  if (!Number.isInteger(repeats) || repeats < 1 || repeats > MAX_REPEATS)
    throw new DbError("invalid", "runs.invalid", `repeats: expected an integer from 1 to ${MAX_REPEATS}`);
  const resolved = resolveRunConfig({ benchmark, config });
  if (!resolved.ok)
    throw new DbError(
      "invalid",
      "runs.invalid_config",
      resolved.issues.map((i) => `${i.path.startsWith("config") ? i.path : `config.${i.path}`}: ${i.message}`).join("; "),
    );
  const now = Date.now();
  const total = rows.length * repeats;
  // One batch, not an interactive transaction: the file driver runs a batch synchronously
  // on one connection, so nothing else in this process can interleave. An interactive
  // transaction that awaits between chunks lets a second writer on another pooled
  // connection block the event loop in SQLite's busy handler until both time out.
  const statements: InStatement[] = [];
  if (db.$client.protocol === "file") {
    // 100k tasks update five indexes; the default 2 MB page cache would spill and re-read.
    statements.push({ sql: "PRAGMA cache_size = -131072", args: [] });
  }
  const insertRun = db
    .insert(runs)
    .values({
      name,
      benchmark,
      config: resolved.config,
      maxAttempts,
      taskCount: total,
      idempotencyKey,
      createdAt: now,
      parentRunId: links.parentRunId ?? null,
      sweepId: links.sweepId ?? null,
      sweepValues: links.sweepValues ?? null,
      repeats,
      priority: links.priority ?? 0,
      maxConcurrency: links.maxConcurrency ?? null,
    })
    .returning({ id: runs.id })
    .toSQL();
  const runStatement = statements.push({ sql: insertRun.sql, args: insertRun.params as InArgs }) - 1;
  // repeats: question-major, so the K attempts at one question are neighbours in the queue
  for (let i = 0; i < total; i += INSERT_CHUNK) {
    const n = Math.min(INSERT_CHUNK, total - i);
    const args: InValue[] = new Array(4 + n * 4);
    args[0] = maxAttempts;
    args[1] = now;
    args[2] = now;
    args[3] = now;
    for (let k = 0, a = 4; k < n; k++, a += 4) {
      const j = i + k;
      const t = repeats === 1 ? rows[j] : rows[Math.floor(j / repeats)];
      args[a] = t.externalId;
      args[a + 1] = JSON.stringify(t.input);
      args[a + 2] = repeats === 1 ? (t.repeat ?? 0) : j % repeats;
      args[a + 3] = t.parentTaskId ?? null;
    }
    statements.push({ sql: insertTasksText(n), args });
  }
  statements.push({ sql: COUNT_QUEUED_SQL, args: [total] });
  let runId: number;
  try {
    const results = await db.$client.batch(statements, "write");
    runId = Number((results[runStatement].rows[0] as any).id);
  } catch (err) {
    // Two requests with one key raced: the loser returns the winner's run.
    if (idempotencyKey && isUniqueViolation(err)) {
      const existing = await findRunByIdempotencyKey({ db, idempotencyKey });
      if (existing) return { run: existing, created: false };
    }
    throw err;
  }
  const [run] = await db.select().from(runs).where(eq(runs.id, runId)).limit(1);
  return { run, created: true };
}

function isUniqueViolation(err: unknown): boolean {
  const c = (err as any)?.cause ?? err;
  return /SQLITE_CONSTRAINT/.test(String(c?.code ?? "")) || /UNIQUE constraint/.test(String(c?.message ?? ""));
}

export async function findRunByIdempotencyKey({
  db,
  idempotencyKey,
}: {
  db: Db;
  idempotencyKey: string;
}): Promise<RunRecord | null> {
  const [run] = await db.select().from(runs).where(eq(runs.idempotencyKey, idempotencyKey)).limit(1);
  return run ?? null;
}

/** A run by numeric id, or by name when exactly one run has it. */
export async function findRun({ db, ref }: { db: Db; ref: string | number }): Promise<RunRecord> {
  const text = String(ref).trim();
  if (/^\d+$/.test(text)) {
    const [run] = await db.select().from(runs).where(eq(runs.id, Number(text))).limit(1);
    if (run) return run;
  }
  const byName = await db.select().from(runs).where(eq(runs.name, text)).limit(2);
  if (byName.length === 1) return byName[0];
  if (byName.length > 1)
    throw new DbError("ambiguous", "runs.ambiguous", `run name ${JSON.stringify(text)} matches several runs; use the numeric id`);
  throw new DbError("not_found", "runs.not_found", `run ${JSON.stringify(text)} not found`);
}

export type RunListItem = {
  id: number;
  name: string;
  benchmark: string;
  task_count: number;
  max_attempts: number;
  created_at: number;
  started_at: number | null;
  canceled_at: number | null;
  counts: StatusCounts;
};

export type StatusCounts = Record<TaskStatus, number>;

function emptyCounts(): StatusCounts {
  return Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as StatusCounts;
}

/** Runs newest first; `before` (a run id) starts the page after that run. */
export async function listRuns({ db, limit = 100, before }: { db: Db; limit?: number; before?: number }): Promise<RunListItem[]> {
  const list = await db
    .select()
    .from(runs)
    .where(before != null ? lt(runs.id, before) : undefined)
    .orderBy(desc(runs.id))
    .limit(limit);
  if (list.length === 0) return [];
  // the counters kept by the task triggers (migration 0010): one row per run, whatever its size
  const res = await db.run(
    sql`SELECT * FROM run_counts WHERE run_id IN (${sql.join(list.map((r) => r.id), sql`, `)})`,
  );
  const byRun = new Map<number, StatusCounts>();
  for (const c of (res as any).rows as any[]) {
    const m = emptyCounts();
    for (const s of TASK_STATUSES) m[s] = Number(c[s] ?? 0);
    byRun.set(Number(c.run_id), m);
  }
  return list.map((r) => ({
    id: r.id,
    name: r.name,
    benchmark: r.benchmark,
    task_count: r.taskCount,
    max_attempts: r.maxAttempts,
    created_at: r.createdAt,
    started_at: r.startedAt,
    canceled_at: r.canceledAt,
    counts: byRun.get(r.id) ?? emptyCounts(),
  }));
}

export type RunSummary = {
  id: number;
  name: string;
  benchmark: string;
  config: Record<string, unknown>;
  max_attempts: number;
  task_count: number;
  created_at: number;
  started_at: number | null;
  canceled_at: number | null;
  counts: StatusCounts;
  done: boolean;
  correct: number;
  // succeeded + failed: tasks that reached an outcome
  finished: number;
  // queued + running
  not_finished: number;
  // failed + canceled: terminal and not succeeded (the ids a re-run needs)
  missing: number;
  infra_failed: number;
  // correct / finished: how often the tasks that reached an outcome were right
  accuracy: number | null;
  // correct / all tasks: unfinished and missing tasks count as wrong (the number a paper reports once done)
  score: number | null;
  // correct / (all tasks - infrastructure failures)
  score_excluding_infra: number | null;
  // completions (succeeded + failed) per minute over the last RATE_WINDOW_MS
  rate_per_min: number | null;
  eta_ms: number | null;
  now: number;
};

// Long enough to smooth out batch claims, short enough to follow a job array growing.
export const RATE_WINDOW_MS = 5 * 60_000;

export async function getRunSummary({ db, ref }: { db: Db; ref: string | number }): Promise<RunSummary> {
  const run = await findRun({ db, ref });
  // O(1) in the run's size: the counters kept by the task triggers (migration 0010) and a range
  // of tasks_run_finished_idx (run, status, finished_at) for the rate
  const [agg] = (
    await db.run(sql`
      SELECT ${dbNowMs} AS now, c.queued, c.running, c.succeeded, c.failed, c.canceled, c.correct,
        (SELECT count(*) FROM tasks t WHERE t.run_id = ${run.id} AND t.status IN ('succeeded', 'failed')
           AND t.finished_at >= ${dbNowMs} - ${RATE_WINDOW_MS}) AS recent
      FROM (SELECT 1) LEFT JOIN run_counts c ON c.run_id = ${run.id}`)
  ).rows as any[];
  const counts = emptyCounts();
  for (const s of TASK_STATUSES) counts[s] = Number(agg?.[s] ?? 0);
  const correct = Number(agg?.correct ?? 0);
  const now = Number(agg?.now ?? Date.now());
  const recent = Number(agg?.recent ?? 0);
  const finished = counts.succeeded + counts.failed;
  const remaining = counts.queued + counts.running;
  const infraFailed = counts.failed > 0 ? await countInfraFailed({ db, runId: run.id }) : 0;
  let rate: number | null = null;
  if (run.startedAt != null && recent > 0) {
    const windowMs = Math.max(1_000, Math.min(RATE_WINDOW_MS, now - run.startedAt));
    rate = (recent / windowMs) * 60_000;
  }
  return {
    id: run.id,
    name: run.name,
    benchmark: run.benchmark,
    config: run.config,
    max_attempts: run.maxAttempts,
    task_count: run.taskCount,
    created_at: run.createdAt,
    started_at: run.startedAt,
    canceled_at: run.canceledAt,
    counts,
    done: remaining === 0,
    correct,
    finished,
    not_finished: remaining,
    missing: counts.failed + counts.canceled,
    infra_failed: infraFailed,
    accuracy: finished > 0 ? correct / finished : null,
    score: run.taskCount > 0 ? correct / run.taskCount : null,
    score_excluding_infra: run.taskCount - infraFailed > 0 ? correct / (run.taskCount - infraFailed) : null,
    rate_per_min: rate,
    eta_ms: remaining === 0 ? 0 : rate ? Math.round((remaining / rate) * 60_000) : null,
    now,
  };
}

export type TaskListItem = {
  id: number;
  external_id: string;
  status: TaskStatus;
  attempt: number;
  max_attempts: number;
  prediction: string | null;
  correct: boolean | null;
  error_class: string | null;
  error_message: string | null;
  lease_owner: string | null;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
};

/** The largest page of a run's tasks (db/task-list.ts) one request may ask for. */
export const TASK_PAGE_MAX = 1_000;

export type AttemptItem = {
  attempt: number;
  runner_id: string | null;
  outcome: string;
  error_class: string | null;
  error_message: string | null;
  started_at: number;
  ended_at: number | null;
};

export type TaskDetail = TaskListItem & {
  run_id: number;
  input: Record<string, unknown>;
  result: Record<string, unknown> | null;
  progress: unknown;
  lease_expires_at: number | null;
  available_at: number;
  created_at: number;
  attempts: AttemptItem[];
};

export async function getTask({ db, taskId }: { db: Db; taskId: number }): Promise<TaskDetail> {
  const [t] = await db.select().from(tasks).where(eq(tasks.id, taskId)).limit(1);
  if (!t) throw new DbError("not_found", "tasks.not_found", `task ${taskId} not found`);
  const attempts = await db
    .select({
      attempt: taskAttempts.attempt,
      runner_id: taskAttempts.runnerId,
      outcome: taskAttempts.outcome,
      error_class: taskAttempts.errorClass,
      error_message: taskAttempts.errorMessage,
      started_at: taskAttempts.startedAt,
      ended_at: taskAttempts.endedAt,
    })
    .from(taskAttempts)
    .where(eq(taskAttempts.taskId, taskId))
    .orderBy(asc(taskAttempts.id));
  return {
    id: t.id,
    run_id: t.runId,
    external_id: t.externalId,
    status: t.status,
    attempt: t.attempt,
    max_attempts: t.maxAttempts,
    input: t.input,
    result: t.result ?? null,
    prediction: t.prediction,
    correct: t.correct,
    error_class: t.errorClass,
    error_message: t.errorMessage,
    lease_owner: t.leaseOwner,
    lease_expires_at: t.leaseExpiresAt,
    progress: t.progress ?? null,
    available_at: t.availableAt,
    created_at: t.createdAt,
    started_at: t.startedAt,
    finished_at: t.finishedAt,
    updated_at: t.updatedAt,
    attempts,
  };
}

/**
 * How a lease token's attempt at one task ended, from the attempt history. Lets a finishing
 * write that is re-sent after a lost reply learn that its first copy already landed. Both
 * must match: a token used up on another task says nothing about this one.
 */
export async function readAttemptOutcome({
  db,
  taskId,
  leaseToken,
}: {
  db: Db;
  taskId: number;
  leaseToken: string;
}): Promise<string | null> {
  const [a] = await db
    .select({ outcome: taskAttempts.outcome })
    .from(taskAttempts)
    .where(and(eq(taskAttempts.leaseToken, leaseToken), eq(taskAttempts.taskId, taskId)))
    .limit(1);
  return a?.outcome ?? null;
}

/** Row counts of the tables a run touches: what tests compare before and after bad input. */
export async function countRows({ db }: { db: Db }): Promise<{ runs: number; tasks: number }> {
  const [r] = await db.select({ n: sql<number>`count(*)` }).from(runs);
  const [t] = await db.select({ n: sql<number>`count(*)` }).from(tasks);
  return { runs: Number(r.n), tasks: Number(t.n) };
}
