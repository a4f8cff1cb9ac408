// The only code that changes a task's state. Every function is one SQL statement (or one
// batch) so that a process killed at any instant leaves the queue consistent, and every
// finishing write is fenced by the lease token: 0 rows changed = the caller lost the task.
import { sql } from "drizzle-orm";
import type { InValue } from "@libsql/client";
import type { Db } from "./client";
import { dbNowMs } from "./schema";
import type { TaskInput, TaskProgress } from "./schema";

export type ClaimedTask = {
  id: number;
  runId: number;
  externalId: string;
  input: TaskInput;
  attempt: number;
  maxAttempts: number;
  leaseToken: string;
  leaseExpiresAt: number;
};

export type TaskResult = {
  prediction?: string | null;
  correct?: boolean | null;
  [k: string]: unknown;
};

export type FailOutcome = "retry" | "failed" | "lost";

export type Backoff = { baseMs: number; capMs: number };
export const DEFAULT_BACKOFF: Backoff = { baseMs: 5_000, capMs: 10 * 60_000 };

function rowsOf(res: unknown): any[] {
  return ((res as any)?.rows ?? []) as any[];
}

function toClaimed(r: any): ClaimedTask {
  return {
    id: Number(r.id),
    runId: Number(r.run_id),
    externalId: String(r.external_id),
    input: typeof r.input === "string" ? JSON.parse(r.input) : r.input,
    attempt: Number(r.attempt),
    maxAttempts: Number(r.max_attempts),
    leaseToken: String(r.lease_token),
    leaseExpiresAt: Number(r.lease_expires_at),
  };
}

/**
 * Claims up to `limit` tasks in one statement: queued tasks whose backoff has passed and
 * running tasks whose lease expired (their holder is presumed dead). Each gets a fresh
 * lease token and attempt + 1. Tasks of canceled runs are never claimed.
 */
export async function claimTasks({
  db,
  runnerId,
  limit,
  leaseMs,
  runId,
  excludeRunIds = [],
}: {
  db: Db;
  runnerId: string;
  limit: number;
  leaseMs: number;
  runId?: number | null;
  // runs that wait for an endpoint (db/endpoints listWaitingRuns): none of their tasks is claimed
  excludeRunIds?: number[];
}): Promise<ClaimedTask[]> {
  if (limit <= 0) return [];
  // pre-built text (no sql builder per claim), prepared once per connection by the file driver
  const excluding = excludeRunIds.length > 0;
  // as many values as the highest parameter the shape uses (?4 may be a gap: bound to null)
  const args: InValue[] = [runnerId, leaseMs, limit, runId ?? null, JSON.stringify(excludeRunIds)].slice(0, excluding ? 5 : runId != null ? 4 : 3);
  const variant = claimSqlFor(runId != null, excluding);
  // one transaction: the exhausted leases are failed first, so the claim never takes them
  const [, res] = await db.$client.batch(
    [
      { sql: variant.expire, args: runId != null ? [runId] : [] },
      { sql: variant.claim, args },
    ],
    "write",
  );
  const claimed = rowsOf(res).map(toClaimed);
  const known = startedRuns.get(db) ?? startedRuns.set(db, new Set()).get(db)!;
  const runIds = [...new Set(claimed.map((t) => t.runId))].filter((id) => !known.has(id));
  if (runIds.length > 0) {
    await db.run(
      sql`UPDATE runs SET started_at = ${dbNowMs} WHERE started_at IS NULL AND id IN (${sql.join(runIds, sql`, `)})`,
    );
    // started_at is never cleared: once set, later claims need not write it again
    for (const id of runIds) known.add(id);
  }
  return claimed;
}

const startedRuns = new WeakMap<Db, Set<number>>();

const NOW = "(cast(unixepoch('subsec') * 1000 as integer))";

// The claim's SQL in its four shapes (a run or all runs; runs excluded or not), built once.
// Parameters: ?1 runner, ?2 lease ms, ?3 limit, ?4 run id, ?5 JSON array of excluded run ids.
const claimSqlCache = new Map<string, { expire: string; claim: string }>();
function claimSqlFor(byRun: boolean, excluding: boolean): { expire: string; claim: string } {
  const key = `${byRun}:${excluding}`;
  const hit = claimSqlCache.get(key);
  if (hit) return hit;
  const exclude = excluding ? "AND t.run_id NOT IN (SELECT value FROM json_each(?5))" : "";
  const runFilter = byRun ? `AND t.run_id = ?4 ${exclude}` : exclude;
  const laneExclude = excluding ? "AND r.id NOT IN (SELECT value FROM json_each(?5))" : "";
  const laneFilter = byRun ? `AND r.id = ?4 ${laneExclude}` : laneExclude;
  const built = {
    expire: expireExhaustedText(byRun),
    claim: `
    UPDATE tasks SET
      status = 'running',
      attempt = attempt + 1,
      lease_owner = ?1,
      lease_token = lower(hex(randomblob(16))),
      progress = NULL,
      lease_expires_at = ${NOW} + ?2,
      started_at = coalesce(started_at, ${NOW}),
      updated_at = ${NOW}
    WHERE id IN (
      -- Two index walks, each stopping after \`limit\` rows: one ORDER BY over an OR of both
      -- made SQLite collect and sort every queued task on each claim (O(n log n) per claim,
      -- seconds with 100k queued). Expired leases first (the oldest work), then queued
      -- tasks in the order they became available (FIFO across runs; a retry's backoff puts
      -- it behind what is already waiting).
      -- The expiry walk names its index: with a run filter the planner would rather read the
      -- run's every row through its unique index (O(run size) per claim).
      SELECT id FROM (
        SELECT t.id FROM tasks t INDEXED BY tasks_lease_idx
        WHERE t.status = 'running' AND t.lease_expires_at < ${NOW} AND t.attempt < t.max_attempts
          ${runFilter}
          AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = t.run_id AND r.canceled_at IS NOT NULL)
        ORDER BY t.lease_expires_at
        LIMIT ?3
      )
      UNION ALL
      -- Queued tasks: higher run priority first, then FIFO within a priority. One lane per
      -- run with queued work (run_counts.queued > 0): its first \`limit\` tasks by its own
      -- index walk (tasks_run_queue_idx), cut to the room its max_concurrency leaves
      -- (run_counts.running, kept by triggers inside this statement). The cost is the number
      -- of runs with queued work, never the queue's depth: a capped run's backlog is not walked.
      SELECT id FROM (
        SELECT id FROM (
          SELECT t.id, r.priority AS p, t.available_at AS a,
            row_number() OVER (PARTITION BY r.id ORDER BY t.available_at, t.id) AS k,
            CASE WHEN r.max_concurrency IS NULL THEN ?3 ELSE r.max_concurrency - c.running END AS room
          FROM run_counts c JOIN runs r ON r.id = c.run_id,
            json_each((SELECT json_group_array(qid) FROM (
              SELECT x.id AS qid FROM tasks x
              WHERE x.run_id = r.id AND x.status = 'queued' AND x.available_at <= ${NOW}
              ORDER BY x.available_at, x.id LIMIT ?3))) j
            JOIN tasks t ON t.id = j.value
          WHERE c.queued > 0 AND r.canceled_at IS NULL ${laneFilter}
        )
        WHERE k <= room
        ORDER BY p DESC, a, id
        LIMIT ?3
      )
      LIMIT ?3
    )
    RETURNING id, run_id, external_id, input, attempt, max_attempts, lease_token, lease_expires_at`,
  };
  claimSqlCache.set(key, built);
  return built;
}

/**
 * A running task whose lease expired and has no attempts left would otherwise sit in
 * `running` forever: fail it with the class `lease_expired`.
 */
export async function expireExhaustedLeases({ db, runId }: { db: Db; runId?: number | null }): Promise<number> {
  const res = await db.$client.execute({ sql: expireExhaustedText(runId != null), args: runId != null ? [runId] : [] });
  return Number(res.rowsAffected ?? 0);
}

function expireExhaustedText(byRun: boolean): string {
  return `
    UPDATE tasks INDEXED BY tasks_lease_idx SET status = 'failed', error_class = 'lease_expired', error_infra = 1,
      error_message = 'lease expired on the last attempt (runner died or stalled)',
      lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL, progress = NULL,
      finished_at = ${NOW}, updated_at = ${NOW}
    WHERE status = 'running' AND lease_expires_at < ${NOW} AND attempt >= max_attempts ${byRun ? "AND run_id = ?" : ""}`;
}

/**
 * Tasks not finished yet: queued (waiting, or in backoff) and running (maybe held by a
 * runner that died: its lease expires and the task is claimed again). Both zero means
 * nothing is left to do for `runId` (or for every run not canceled). `--exit-when-idle`
 * asks this instead of "did my claim come back empty?".
 */
export async function countOpenTasks({
  db,
  runId,
}: {
  db: Db;
  runId?: number | null;
}): Promise<{ queued: number; running: number }> {
  const runFilter = runId != null ? sql`AND t.run_id = ${runId}` : sql``;
  // one arm per status, each on its own partial index (migrations 0010, 0012): the running arm
  // names its index, or the planner walks the run's every row by the unique index
  const res = await db.run(sql`
    SELECT 'queued' AS status, count(*) AS n FROM tasks t
    WHERE t.status = 'queued' ${runFilter}
      AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = t.run_id AND r.canceled_at IS NOT NULL)
    UNION ALL
    SELECT 'running' AS status, count(*) AS n FROM tasks t INDEXED BY tasks_lease_idx
    WHERE t.status = 'running' ${runFilter}
      AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = t.run_id AND r.canceled_at IS NOT NULL)`);
  const out = { queued: 0, running: 0 };
  for (const r of rowsOf(res)) out[r.status as "queued" | "running"] = Number(r.n);
  return out;
}

/**
 * Extends every lease the runner still holds among `tokens`, in one statement, and
 * returns the tokens it no longer holds (expired and claimed by another, finished, or
 * canceled) so the runner can abort that work at once.
 */
export async function heartbeatLeases({
  db,
  runnerId,
  tokens,
  leaseMs,
  progress,
}: {
  db: Db;
  runnerId: string;
  tokens: string[];
  leaseMs: number;
  // by lease token: what each task is doing now (shown by `baton inflight`)
  progress?: Record<string, TaskProgress>;
}): Promise<{ held: string[]; lost: string[] }> {
  await db.run(sql`UPDATE runners SET last_seen_at = ${dbNowMs} WHERE id = ${runnerId}`);
  if (tokens.length === 0) return { held: [], lost: [] };
  const withProgress = tokens.filter((t) => progress?.[t]);
  const progressSet =
    withProgress.length > 0
      ? sql`, progress = CASE lease_token ${sql.join(
          withProgress.map((t) => sql`WHEN ${t} THEN ${JSON.stringify(progress![t])}`),
          sql` `,
        )} ELSE progress END`
      : sql``;
  const res = await db.run(sql`
    UPDATE tasks SET lease_expires_at = ${dbNowMs} + ${leaseMs}, updated_at = ${dbNowMs} ${progressSet}
    WHERE status = 'running' AND lease_owner = ${runnerId}
      AND lease_token IN (${sql.join(tokens, sql`, `)})
    RETURNING lease_token`);
  const held = new Set(rowsOf(res).map((r) => String(r.lease_token)));
  return { held: [...held], lost: tokens.filter((t) => !held.has(t)) };
}

const COMPLETE_SQL = `
    UPDATE tasks SET status = 'succeeded', result = ?, prediction = ?, correct = ?,
      error_class = NULL, error_message = NULL, error_infra = NULL,
      lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL, progress = NULL,
      finished_at = ${NOW}, updated_at = ${NOW}
    WHERE id = ? AND lease_token = ? AND status = 'running'`;

/** Fenced success. Returns false when the lease was lost: the result is discarded. */
export async function completeTask({
  db,
  taskId,
  leaseToken,
  result,
}: {
  db: Db;
  taskId: number;
  leaseToken: string;
  result: TaskResult;
}): Promise<boolean> {
  const prediction = result.prediction == null ? null : String(result.prediction);
  const correct = result.correct == null ? null : result.correct ? 1 : 0;
  // the hottest statement: its text is fixed, so it goes to the client as is (prepared once
  // per connection) instead of being rebuilt by drizzle's sql builder on every call
  const res = await db.$client.execute({ sql: COMPLETE_SQL, args: [JSON.stringify(result), prediction, correct, taskId, leaseToken] });
  return Number((res as any).rowsAffected ?? 0) === 1;
}

/**
 * Fenced success for many tasks in one statement (each row still fenced by its own lease
 * token). Returns, in input order, whether each completion was written. One statement
 * instead of one per task is what lets a single SQLite writer keep up with many claimers.
 */
export async function completeTasks({
  db,
  items,
}: {
  db: Db;
  items: { taskId: number; leaseToken: string; result: TaskResult }[];
}): Promise<boolean[]> {
  if (items.length === 0) return [];
  const args: InValue[] = new Array(items.length * 5);
  for (let i = 0, a = 0; i < items.length; i++, a += 5) {
    const r = items[i].result;
    args[a] = items[i].taskId;
    args[a + 1] = items[i].leaseToken;
    args[a + 2] = JSON.stringify(r);
    args[a + 3] = r.prediction == null ? null : String(r.prediction);
    args[a + 4] = r.correct == null ? null : r.correct ? 1 : 0;
  }
  const res = await db.$client.execute({ sql: completeManyText(items.length), args });
  const written = new Set(rowsOf(res).map((r) => Number(r.id)));
  return items.map((it) => written.has(it.taskId));
}

// completeTasks' statement for n items, built once per n (a runner's batches take few sizes)
const completeManySql = new Map<number, string>();
function completeManyText(n: number): string {
  let text = completeManySql.get(n);
  if (!text) {
    text = `
    UPDATE tasks SET status = 'succeeded', result = v.result, prediction = v.prediction, correct = v.correct,
      error_class = NULL, error_message = NULL, error_infra = NULL,
      lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL, progress = NULL,
      finished_at = ${NOW}, updated_at = ${NOW}
    FROM (SELECT column1 AS id, column2 AS token, column3 AS result, column4 AS prediction, column5 AS correct
          FROM (VALUES ${"(?, ?, ?, ?, ?), ".repeat(n - 1)}(?, ?, ?, ?, ?))) AS v
    WHERE tasks.id = v.id AND tasks.lease_token = v.token AND tasks.status = 'running'
    RETURNING tasks.id`;
    completeManySql.set(n, text);
  }
  return text;
}

/**
 * Fenced failure. Retryable (infrastructure) failures go back to the queue with
 * exponential backoff and jitter while attempts remain; the rest, and the last attempt,
 * fail the task with its class. `retryable` is also stored as error_infra: the runner's
 * verdict is what "accuracy excluding infrastructure failures" counts. The backoff is computed in SQL from the task's own
 * attempt count so the decision and the write are one statement.
 */
export async function failTask({
  db,
  taskId,
  leaseToken,
  errorClass,
  errorMessage,
  retryable,
  backoff = DEFAULT_BACKOFF,
  result,
}: {
  db: Db;
  taskId: number;
  leaseToken: string;
  errorClass: string;
  errorMessage?: string | null;
  retryable: boolean;
  backoff?: Backoff;
  result?: TaskResult | null;
}): Promise<FailOutcome> {
  const retry = retryable ? 1 : 0;
  const message = errorMessage == null ? null : String(errorMessage).slice(0, 4000);
  // delay = d/2 + uniform(0, d/2) with d = min(cap, base * 2^(attempt-1)): grows with each
  // attempt, and the jitter keeps a job array that failed together from returning together.
  const res = await db.run(sql`
    UPDATE tasks SET
      status = CASE WHEN ${retry} = 1 AND attempt < max_attempts THEN 'queued' ELSE 'failed' END,
      available_at = CASE WHEN ${retry} = 1 AND attempt < max_attempts THEN
        ${dbNowMs} + (min(${backoff.capMs}, ${backoff.baseMs} * (1 << min(attempt - 1, 30))) / 2)
          + (abs(random()) % (min(${backoff.capMs}, ${backoff.baseMs} * (1 << min(attempt - 1, 30))) / 2 + 1))
        ELSE available_at END,
      finished_at = CASE WHEN ${retry} = 1 AND attempt < max_attempts THEN NULL ELSE ${dbNowMs} END,
      result = coalesce(${result == null ? null : JSON.stringify(result)}, result),
      error_class = ${errorClass}, error_message = ${message}, error_infra = ${retry},
      lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL, progress = NULL,
      updated_at = ${dbNowMs}
    WHERE id = ${taskId} AND lease_token = ${leaseToken} AND status = 'running'
    RETURNING status`);
  const rows = rowsOf(res);
  if (rows.length === 0) return "lost";
  return rows[0].status === "queued" ? "retry" : "failed";
}

/**
 * Gives tasks back without charging an attempt (shutdown, job end approaching). Only the
 * runner's own current leases are touched. The attempt is given back by raising
 * max_attempts, not by lowering attempt: attempt numbers key the latency rows, and a
 * reused number would make the next attempt's rows collide with this one's.
 */
export async function releaseTasks({
  db,
  runnerId,
  tokens,
}: {
  db: Db;
  runnerId: string;
  tokens: string[];
}): Promise<number> {
  if (tokens.length === 0) return 0;
  const res = await db.run(sql`
    UPDATE tasks SET status = 'queued', max_attempts = max_attempts + 1, available_at = ${dbNowMs},
      lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL, progress = NULL, updated_at = ${dbNowMs}
    WHERE status = 'running' AND lease_owner = ${runnerId}
      AND lease_token IN (${sql.join(tokens, sql`, `)})`);
  return Number((res as any).rowsAffected ?? 0);
}

/** Cancels a run: queued and running tasks become canceled; runners see their leases lost. */
export async function cancelRun({ db, runId }: { db: Db; runId: number }): Promise<{ canceled: number } | null> {
  // one statement per status: the running one reads tasks_lease_idx (running tasks only), not
  // every row of the run
  const cancel = (status: "queued" | "running") => db.run(sql`
      UPDATE tasks ${sql.raw(status === "running" ? "INDEXED BY tasks_lease_idx " : "")}SET status = 'canceled', error_class = 'canceled',
        error_message = 'run canceled', error_infra = NULL,
        lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL, progress = NULL,
        finished_at = ${dbNowMs}, updated_at = ${dbNowMs}
      WHERE run_id = ${runId} AND status = ${sql.raw(`'${status}'`)}`);
  const [runRes, taskRes, runningRes] = await db.batch([
    db.run(sql`UPDATE runs SET canceled_at = coalesce(canceled_at, ${dbNowMs}) WHERE id = ${runId} RETURNING id`),
    cancel("queued"),
    cancel("running"),
  ]);
  if (rowsOf(runRes).length === 0) return null;
  return { canceled: Number((taskRes as any).rowsAffected ?? 0) + Number((runningRes as any).rowsAffected ?? 0) };
}

/**
 * Puts a run's failed (and optionally canceled) tasks back in the queue with a fresh
 * attempt budget; succeeded tasks are never re-run.
 */
export async function requeueTasks({
  db,
  runId,
  statuses = ["failed"],
  errorClass,
}: {
  db: Db;
  runId: number;
  statuses?: ("failed" | "canceled")[];
  errorClass?: string;
}): Promise<{ requeued: number } | null> {
  if (statuses.length === 0) return { requeued: 0 };
  const classFilter = errorClass ? sql`AND error_class = ${errorClass}` : sql``;
  const [runRes, taskRes] = await db.batch([
    db.run(
      statuses.includes("canceled")
        ? sql`UPDATE runs SET canceled_at = NULL WHERE id = ${runId} RETURNING id`
        : sql`SELECT id FROM runs WHERE id = ${runId}`,
    ),
    db.run(sql`
      UPDATE tasks SET status = 'queued', available_at = ${dbNowMs},
        -- a fresh budget above the attempts already made (numbers are never reused)
        max_attempts = attempt + coalesce((SELECT r.max_attempts FROM runs r WHERE r.id = tasks.run_id), 3),
        error_class = NULL, error_message = NULL, error_infra = NULL, result = NULL, prediction = NULL, correct = NULL,
        finished_at = NULL, updated_at = ${dbNowMs}
      WHERE run_id = ${runId} AND status IN (${sql.join(statuses, sql`, `)}) AND finished_at IS NOT NULL ${classFilter}`),
  ]);
  if (rowsOf(runRes).length === 0) return null;
  return { requeued: Number((taskRes as any).rowsAffected ?? 0) };
}

export type RunnerInfo = {
  id: string;
  host: string;
  pid: number;
  slurmJobId?: string | null;
  slurmArrayJobId?: string | null;
  slurmArrayTaskId?: string | null;
  runId?: number | null;
  concurrency?: number;
  version?: string | null;
  endsAt?: number | null;
};

export async function registerRunner({ db, runner }: { db: Db; runner: RunnerInfo }): Promise<void> {
  await db.run(sql`
    INSERT INTO runners (id, host, pid, slurm_job_id, slurm_array_job_id, slurm_array_task_id, run_id,
      concurrency, state, version, started_at, last_seen_at, ends_at)
    VALUES (${runner.id}, ${runner.host}, ${runner.pid}, ${runner.slurmJobId ?? null},
      ${runner.slurmArrayJobId ?? null}, ${runner.slurmArrayTaskId ?? null}, ${runner.runId ?? null},
      ${runner.concurrency ?? 1}, 'running', ${runner.version ?? null}, ${dbNowMs}, ${dbNowMs}, ${runner.endsAt ?? null})
    ON CONFLICT (id) DO UPDATE SET state = 'running', last_seen_at = ${dbNowMs}, stopped_at = NULL`);
}

export async function setRunnerState({
  db,
  runnerId,
  state,
}: {
  db: Db;
  runnerId: string;
  state: "running" | "draining" | "stopped" | "crashed";
}): Promise<void> {
  const stopped = state === "stopped" || state === "crashed";
  await db.run(sql`
    UPDATE runners SET state = ${state}, last_seen_at = ${dbNowMs},
      stopped_at = CASE WHEN ${stopped ? 1 : 0} = 1 THEN ${dbNowMs} ELSE stopped_at END
    WHERE id = ${runnerId}`);
}

/** The database's clock, for callers that must agree with lease arithmetic. */
export async function readDbNow({ db }: { db: Db }): Promise<number> {
  const res = await db.run(sql`SELECT ${dbNowMs} AS now`);
  return Number(rowsOf(res)[0].now);
}
