// Runs as experiments (issue 14): derived runs (re-run a subset of a run with overrides),
// repeats and their statistics, sweeps, the claim controls, and a task's last model calls.
// The statistics are plain functions so the report and the tests share them.
import { sql } from "drizzle-orm";
import { writeConfigDocument, writeConfigPath } from "./config-wire";
import { DbError } from "./errors";
import { resolveRunConfig } from "./run-config";
import type { Db } from "./client";
import { createRun, findRun, MAX_ATTEMPTS_LIMIT, MAX_REPEATS, type RunRecord, type ValidTask } from "./runs";

type Row = Record<string, any>;

async function rows(db: Db, sql: string, args: any[] = []): Promise<Row[]> {
  return (await db.$client.execute({ sql, args })).rows as unknown as Row[];
}

const num = (x: unknown): number | null => (x == null ? null : Number(x));

// ---------------------------------------------------------------- a task's last model calls

export type LastCall = {
  step: number | null;
  tool: string | null;
  role: string;
  model: string;
  endpoint: string;
  http_attempt: number;
  // ok | <error class>
  outcome: string;
  http_status: number | null;
  error_message: string | null;
  finish_reason: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  total_ms: number;
  started_at: number;
};

export type AttemptDiagnosis = {
  attempt: number;
  runner_id: string | null;
  outcome: string;
  error_class: string | null;
  error_message: string | null;
  started_at: number;
  ended_at: number | null;
  llm_calls: number;
  last_call: LastCall | null;
};

export type TaskDiagnosis = {
  id: number;
  run_id: number;
  external_id: string;
  repeat: number;
  parent_task_id: number | null;
  status: string;
  attempt: number;
  max_attempts: number;
  error_class: string | null;
  error_message: string | null;
  prediction: string | null;
  correct: boolean | null;
  attempts: AttemptDiagnosis[];
};

/** A task's attempts, each with its number of model calls and the last one it made. */
export async function readTaskDiagnosis({ db, taskId }: { db: Db; taskId: number }): Promise<TaskDiagnosis> {
  const [t] = await rows(db, "SELECT * FROM tasks WHERE id = ?", [taskId]);
  if (!t) throw new DbError("not_found", "tasks.not_found", `task ${taskId} not found`);
  const attempts = await rows(db, "SELECT * FROM task_attempts WHERE task_id = ? ORDER BY id", [taskId]);
  // the last HTTP try of the attempt: by start time, then by id (rows of one batch share ms)
  const calls = await rows(
    db,
    `SELECT * FROM (
       SELECT l.*, count(*) OVER (PARTITION BY l.attempt) AS n,
              row_number() OVER (PARTITION BY l.attempt ORDER BY l.started_at DESC, l.id DESC) AS rn
       FROM llm_calls l WHERE l.task_id = ?) WHERE rn = 1`,
    [taskId],
  );
  const byAttempt = new Map(calls.map((c) => [Number(c.attempt), c]));
  return {
    id: Number(t.id),
    run_id: Number(t.run_id),
    external_id: String(t.external_id),
    repeat: Number(t.repeat ?? 0),
    parent_task_id: num(t.parent_task_id),
    status: String(t.status),
    attempt: Number(t.attempt),
    max_attempts: Number(t.max_attempts),
    error_class: t.error_class ?? null,
    error_message: t.error_message ?? null,
    prediction: t.prediction ?? null,
    correct: t.correct == null ? null : Boolean(t.correct),
    attempts: attempts.map((a) => {
      const c = byAttempt.get(Number(a.attempt));
      return {
        attempt: Number(a.attempt),
        runner_id: a.runner_id ?? null,
        outcome: String(a.outcome),
        error_class: a.error_class ?? null,
        error_message: a.error_message ?? null,
        started_at: Number(a.started_at),
        ended_at: num(a.ended_at),
        llm_calls: c ? Number(c.n) : 0,
        last_call: c ? toLastCall(c) : null,
      };
    }),
  };
}

function toLastCall(c: Row): LastCall {
  return {
    step: num(c.step),
    tool: c.tool ?? null,
    role: String(c.role),
    model: String(c.model),
    endpoint: String(c.endpoint),
    http_attempt: Number(c.http_attempt),
    outcome: String(c.outcome),
    http_status: num(c.http_status),
    error_message: c.error_message ?? null,
    finish_reason: c.finish_reason ?? null,
    prompt_tokens: num(c.prompt_tokens),
    completion_tokens: num(c.completion_tokens),
    total_ms: Number(c.total_ms),
    started_at: Number(c.started_at),
  };
}

// ---------------------------------------------------------------- configuration paths

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === "object" && !Array.isArray(x);
}

/** base with override merged in: objects key by key, anything else replaced. Never mutates. */
export function mergeConfig(base: Record<string, unknown>, override: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(override)) out[k] = isPlainObject(v) && isPlainObject(base[k]) ? mergeConfig(base[k], v) : v;
  return out;
}

/** { "a.b": v } → { a: { b: v } } */
export function configAtPath(path: string, value: unknown): Record<string, unknown> {
  return path
    .split(".")
    .reverse()
    .reduce<unknown>((inner, key) => ({ [key]: inner }), value) as Record<string, unknown>;
}

function resolveOrThrow(benchmark: string, config: unknown, where = "config"): Record<string, unknown> {
  const r = resolveRunConfig({ benchmark, config });
  if (!r.ok) throw new DbError("invalid", "runs.invalid_config", r.issues.map((i) => `${where}.${i.path.replace(/^config\.?/, "")}: ${i.message}`).join("; "));
  return r.config as unknown as Record<string, unknown>;
}

// ---------------------------------------------------------------- derived runs

export const SELECTORS = ["failed", "not_succeeded", "error_class", "ids"] as const;
export type Selector = { kind: "failed" | "not_succeeded" } | { kind: "error_class"; error_class: string } | { kind: "ids"; ids: string[] };

/** The parent's tasks a selector picks, in id order, as tasks of a new run linked to them. */
export async function selectParentTasks({ db, runId, select }: { db: Db; runId: number; select: Selector }): Promise<ValidTask[]> {
  let where: string;
  const args: any[] = [runId];
  if (select.kind === "failed" || select.kind === "not_succeeded") where = select.kind === "failed" ? "status = 'failed' AND finished_at IS NOT NULL" : "status <> 'succeeded'";
  else if (select.kind === "error_class") {
    where = "status = 'failed' AND finished_at IS NOT NULL AND error_class = ?";
    args.push(select.error_class);
  } else {
    where = "external_id IN (SELECT value FROM json_each(?))";
    args.push(JSON.stringify((select as { ids: string[] }).ids));
  }
  const picked = await rows(db, `SELECT id, external_id, input, repeat FROM tasks WHERE run_id = ? AND ${where} ORDER BY id`, args);
  if (select.kind === "ids") {
    const found = new Set(picked.map((r) => String(r.external_id)));
    const unknown = select.ids.filter((id) => !found.has(id));
    if (unknown.length) throw new DbError("invalid", "runs.unknown_ids", `ids: ${unknown.length} not in run ${runId} (first: ${JSON.stringify(unknown[0])})`);
  }
  return picked.map((r) => ({
    externalId: String(r.external_id),
    input: typeof r.input === "string" ? JSON.parse(r.input) : r.input,
    parentTaskId: Number(r.id),
    repeat: Number(r.repeat ?? 0),
  }));
}

export type DerivedRunInput = {
  parent: string | number;
  select: Selector;
  config?: Record<string, unknown> | null;
  name?: string | null;
  maxAttempts?: number;
  priority?: number;
  maxConcurrency?: number | null;
  idempotencyKey?: string | null;
};

/**
 * A run of the parent's selected tasks with the parent's resolved configuration and only
 * `config` changed. Selecting nothing is a 409 (there is nothing to re-run), not an empty run.
 */
export async function createDerivedRun({ db, input }: { db: Db; input: DerivedRunInput }): Promise<{ run: RunRecord; created: boolean }> {
  const parent = await findRun({ db, ref: input.parent });
  const picked = await selectParentTasks({ db, runId: parent.id, select: input.select });
  if (picked.length === 0) throw new DbError("conflict", "runs.nothing_selected", `from.select: no task of run ${parent.id} matches ${describeSelector(input.select)}`);
  const config = mergeConfig(parent.config, input.config ?? {});
  resolveOrThrow(parent.benchmark, config);
  return createRun({
    db,
    name: input.name ?? `${parent.name} rerun`,
    benchmark: parent.benchmark,
    config,
    tasks: picked,
    maxAttempts: input.maxAttempts ?? parent.maxAttempts,
    idempotencyKey: input.idempotencyKey ?? null,
    links: { parentRunId: parent.id, priority: input.priority ?? 0, maxConcurrency: input.maxConcurrency ?? null },
  });
}

export function describeSelector(s: Selector): string {
  if (s.kind === "error_class") return `error class ${JSON.stringify(s.error_class)}`;
  if (s.kind === "ids") return `${s.ids.length} ids`;
  return s.kind.replace("_", "-");
}

// ---------------------------------------------------------------- claim controls

export const MAX_PRIORITY = 1_000_000;

/** Changes priority and/or max_concurrency (null clears it) of a run, active or not. */
export async function setRunControls({
  db,
  ref,
  priority,
  maxConcurrency,
}: {
  db: Db;
  ref: string | number;
  priority?: number;
  maxConcurrency?: number | null;
}): Promise<{ id: number; priority: number; max_concurrency: number | null }> {
  if (priority !== undefined && (!Number.isInteger(priority) || Math.abs(priority) > MAX_PRIORITY))
    throw new DbError("invalid", "runs.invalid", `priority: expected an integer from -${MAX_PRIORITY} to ${MAX_PRIORITY}`);
  if (maxConcurrency != null && (!Number.isInteger(maxConcurrency) || maxConcurrency < 1 || maxConcurrency > 100_000))
    throw new DbError("invalid", "runs.invalid", "max_concurrency: expected a positive integer, or null for no limit");
  const run = await findRun({ db, ref });
  const [r] = await rows(
    db,
    `UPDATE runs SET priority = coalesce(?, priority), max_concurrency = CASE WHEN ? THEN ? ELSE max_concurrency END
     WHERE id = ? RETURNING id, priority, max_concurrency`,
    [priority ?? null, maxConcurrency !== undefined ? 1 : 0, maxConcurrency ?? null, run.id],
  );
  return { id: Number(r.id), priority: Number(r.priority), max_concurrency: num(r.max_concurrency) };
}

// ---------------------------------------------------------------- statistics

const Z95 = 1.959963984540054;

/** Wilson score interval of k successes in n trials (95% by default); null when n = 0. */
export function wilsonInterval(k: number, n: number, z = Z95): { lo: number; hi: number } | null {
  if (n <= 0) return null;
  const p = k / n;
  const z2 = z * z;
  const center = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return { lo: Math.max(0, center - half), hi: Math.min(1, center + half) };
}

/** log C(n, k) */
function logChoose(n: number, k: number): number {
  let s = 0;
  for (let i = 1; i <= k; i++) s += Math.log(n - k + i) - Math.log(i);
  return s;
}

/** Unbiased pass@k from n tries with c correct: 1 - C(n-c, k) / C(n, k) (Chen et al. 2021). */
export function passAtK(n: number, c: number, k: number): number {
  if (k > n) throw new RangeError(`pass@${k} needs at least ${k} tries, got ${n}`);
  if (n - c < k) return 1;
  return 1 - Math.exp(logChoose(n - c, k) - logChoose(n, k));
}

/** Unbiased pass^k from n tries with c correct: C(c, k) / C(n, k) (tau-bench, Yao et al. 2024). */
export function passHatK(n: number, c: number, k: number): number {
  if (k > n) throw new RangeError(`pass^${k} needs at least ${k} tries, got ${n}`);
  if (c < k) return 0;
  return Math.exp(logChoose(c, k) - logChoose(n, k));
}

/** Two-sided p-value of a difference between two proportions (pooled z-test). */
export function twoProportionP(k1: number, n1: number, k2: number, n2: number): number | null {
  if (n1 === 0 || n2 === 0) return null;
  const p = (k1 + k2) / (n1 + n2);
  const se = Math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2));
  if (se === 0) return k1 / n1 === k2 / n2 ? 1 : 0;
  const z = Math.abs(k1 / n1 - k2 / n2) / se;
  return 2 * (1 - normalCdf(z));
}

function normalCdf(z: number): number {
  // Abramowitz–Stegun 7.1.26, |error| < 1.5e-7
  const t = 1 / (1 + 0.3275911 * (z / Math.SQRT2));
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496735) * t + 0.254829592) * t * Math.exp(-(z * z) / 2);
  return 0.5 * (1 + y);
}

// ---------------------------------------------------------------- accuracy, repeats

export type Interval = { lo: number; hi: number };

export type RunStats = {
  run_id: number;
  repeats: number;
  tasks: number;
  // succeeded + failed: a failure counts as a wrong answer
  finished: number;
  correct: number;
  accuracy: number | null;
  // 95% Wilson interval of accuracy over the finished tasks (repeats counted as tries)
  interval: Interval | null;
  questions: number;
  // by k = 1..repeats, averaged over the questions with at least k finished tries
  pass_at_k: Record<string, number | null>;
  pass_hat_k: Record<string, number | null>;
  // questions whose finished tries (at least 2) all agree, and those that do not
  consistency: { all_correct: number; all_wrong: number; mixed: number; consistent: number | null };
};

export type QuestionStats = { external_id: string; tries: number; correct: number };

/** One row per question of a run: finished tries and correct ones (failures are wrong). */
export async function listQuestionStats({ db, runId }: { db: Db; runId: number }): Promise<QuestionStats[]> {
  const r = await rows(
    db,
    `SELECT external_id, sum(status IN ('succeeded', 'failed')) AS tries, sum(status = 'succeeded' AND correct = 1) AS correct
     FROM tasks WHERE run_id = ? GROUP BY external_id ORDER BY min(id)`,
    [runId],
  );
  return r.map((x) => ({ external_id: String(x.external_id), tries: Number(x.tries ?? 0), correct: Number(x.correct ?? 0) }));
}

export function computeRunStats({ runId, repeats, tasks, questions }: { runId: number; repeats: number; tasks: number; questions: QuestionStats[] }): RunStats {
  let finished = 0;
  let correct = 0;
  const consistency = { all_correct: 0, all_wrong: 0, mixed: 0, consistent: null as number | null };
  for (const q of questions) {
    finished += q.tries;
    correct += q.correct;
    if (q.tries < 2) continue;
    if (q.correct === q.tries) consistency.all_correct++;
    else if (q.correct === 0) consistency.all_wrong++;
    else consistency.mixed++;
  }
  const judged = consistency.all_correct + consistency.all_wrong + consistency.mixed;
  consistency.consistent = judged > 0 ? (consistency.all_correct + consistency.all_wrong) / judged : null;
  const pass_at_k: Record<string, number | null> = {};
  const pass_hat_k: Record<string, number | null> = {};
  for (let k = 1; k <= repeats; k++) {
    const eligible = questions.filter((q) => q.tries >= k);
    const mean = (f: (q: QuestionStats) => number) => (eligible.length ? eligible.reduce((s, q) => s + f(q), 0) / eligible.length : null);
    pass_at_k[k] = mean((q) => passAtK(q.tries, q.correct, k));
    pass_hat_k[k] = mean((q) => passHatK(q.tries, q.correct, k));
  }
  return {
    run_id: runId,
    repeats,
    tasks,
    finished,
    correct,
    accuracy: finished > 0 ? correct / finished : null,
    interval: wilsonInterval(correct, finished),
    questions: questions.length,
    pass_at_k,
    pass_hat_k,
    consistency,
  };
}

export async function readRunStats({ db, ref }: { db: Db; ref: string | number }): Promise<RunStats & { questions_detail: QuestionStats[] }> {
  const run = await findRun({ db, ref });
  const questions = await listQuestionStats({ db, runId: run.id });
  return { ...computeRunStats({ runId: run.id, repeats: run.repeats, tasks: run.taskCount, questions }), questions_detail: questions };
}

// ---------------------------------------------------------------- lineage (status, report, compare)

export type Lineage = {
  parent_run_id: number | null;
  children: { id: number; name: string; tasks: number }[];
  sweep_id: number | null;
  sweep_values: Record<string, unknown> | null;
  repeats: number;
  priority: number;
  max_concurrency: number | null;
};

export async function readLineage({ db, ref }: { db: Db; ref: string | number }): Promise<Lineage> {
  const run = await findRun({ db, ref });
  const children = await rows(db, "SELECT id, name, task_count FROM runs WHERE parent_run_id = ? ORDER BY id", [run.id]);
  return {
    parent_run_id: run.parentRunId,
    children: children.map((c) => ({ id: Number(c.id), name: String(c.name), tasks: Number(c.task_count) })),
    sweep_id: run.sweepId,
    sweep_values: run.sweepValues ?? null,
    repeats: run.repeats,
    priority: run.priority,
    max_concurrency: run.maxConcurrency,
  };
}

export type ReplacedRow = {
  external_id: string;
  repeat: number;
  parent: { task_id: number; status: string; correct: boolean | null; error_class: string | null };
  child: { task_id: number; status: string; correct: boolean | null; error_class: string | null };
};

/** A derived run beside the tasks it replaced: what each re-run changed. */
export async function compareWithParent({ db, ref }: { db: Db; ref: string | number }): Promise<{
  run_id: number;
  parent_run_id: number;
  tasks: ReplacedRow[];
  fixed: number;
  still_failing: number;
  parent_correct: number;
  child_correct: number;
}> {
  const run = await findRun({ db, ref });
  if (run.parentRunId == null) throw new DbError("conflict", "runs.no_parent", `run ${run.id} was not derived from another run (submit --from)`);
  const r = await rows(
    db,
    `SELECT c.id AS cid, c.external_id, c.repeat, c.status AS cs, c.correct AS cc, c.error_class AS ce,
            p.id AS pid, p.status AS ps, p.correct AS pc, p.error_class AS pe
     FROM tasks c JOIN tasks p ON p.id = c.parent_task_id WHERE c.run_id = ? ORDER BY c.id`,
    [run.id],
  );
  const bool = (x: unknown) => (x == null ? null : Boolean(x));
  const tasks = r.map((x) => ({
    external_id: String(x.external_id),
    repeat: Number(x.repeat),
    parent: { task_id: Number(x.pid), status: String(x.ps), correct: bool(x.pc), error_class: x.pe ?? null },
    child: { task_id: Number(x.cid), status: String(x.cs), correct: bool(x.cc), error_class: x.ce ?? null },
  }));
  const ok = (s: { status: string; correct: boolean | null }) => s.status === "succeeded" && s.correct === true;
  return {
    run_id: run.id,
    parent_run_id: run.parentRunId,
    tasks,
    fixed: tasks.filter((t) => t.parent.status !== "succeeded" && t.child.status === "succeeded").length,
    still_failing: tasks.filter((t) => t.child.status === "failed").length,
    parent_correct: tasks.filter((t) => ok(t.parent)).length,
    child_correct: tasks.filter((t) => ok(t.child)).length,
  };
}

// ---------------------------------------------------------------- sweeps

export type Vary = { path: string; values: unknown[] };
export const MAX_SWEEP_POINTS = 64;
const CONFIG_PATH = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

/** Every combination of the varied values, the first --vary changing slowest. */
export function expandSweep(vary: Vary[]): Record<string, unknown>[] {
  vary.forEach((v, i) => {
    if (!CONFIG_PATH.test(v.path)) throw new DbError("invalid", "sweeps.invalid", `vary[${i}].path: expected a dotted configuration path like orchestrator.temperature, got ${JSON.stringify(writeConfigPath(v.path))}`);
    if (!Array.isArray(v.values) || v.values.length === 0) throw new DbError("invalid", "sweeps.invalid", `vary[${i}].values: expected at least one value`);
    if (vary.findIndex((w) => w.path === v.path) !== i) throw new DbError("invalid", "sweeps.invalid", `vary[${i}].path: ${writeConfigPath(v.path)} is varied twice`);
  });
  if (vary.length === 0) throw new DbError("invalid", "sweeps.invalid", "vary: expected at least one path to vary");
  const total = vary.reduce((n, v) => n * v.values.length, 1);
  if (total > MAX_SWEEP_POINTS) throw new DbError("invalid", "sweeps.invalid", `vary: ${total} combinations; at most ${MAX_SWEEP_POINTS}`);
  return vary.reduce<Record<string, unknown>[]>((acc, v) => acc.flatMap((p) => v.values.map((x) => ({ ...p, [v.path]: x }))), [{}]);
}

// A point's paths and values as the user wrote them (snake_case, db/config-wire.ts): the
// vary paths here are the code's.
const wireSetting = (path: string, value: unknown, quote: boolean) =>
  `${writeConfigPath(path)}=${typeof value === "string" && !quote ? value : JSON.stringify(writeConfigDocument(value, path))}`;

export function pointName(sweepName: string, point: Record<string, unknown>): string {
  return `${sweepName} ${Object.entries(point).map(([k, v]) => wireSetting(k, v, false)).join(" ")}`;
}

export type SweepInput = {
  name: string;
  benchmark: string;
  config?: Record<string, unknown> | null;
  vary: Vary[];
  tasks: ValidTask[];
  repeats?: number;
  maxAttempts?: number;
  priority?: number;
  maxConcurrency?: number | null;
  dryRun?: boolean;
};

export type SweepPoint = { values: Record<string, unknown>; name: string; config: Record<string, unknown>; run_id: number | null };

/**
 * One run per combination under one sweep id. Every point's configuration is checked before
 * anything is written, so a bad value names its point and stores nothing; dryRun only plans.
 */
export async function createSweep({ db, input }: { db: Db; input: SweepInput }): Promise<{ sweep_id: number | null; runs: SweepPoint[] }> {
  const repeats = input.repeats ?? 1;
  if (!Number.isInteger(repeats) || repeats < 1 || repeats > MAX_REPEATS) throw new DbError("invalid", "sweeps.invalid", `repeats: expected an integer from 1 to ${MAX_REPEATS}`);
  if (input.maxAttempts != null && (!Number.isInteger(input.maxAttempts) || input.maxAttempts < 1 || input.maxAttempts > MAX_ATTEMPTS_LIMIT))
    throw new DbError("invalid", "sweeps.invalid", `max_attempts: expected an integer from 1 to ${MAX_ATTEMPTS_LIMIT}`);
  const base = input.config ?? {};
  const points = expandSweep(input.vary).map((values) => {
    const config = Object.entries(values).reduce((c, [path, v]) => mergeConfig(c, configAtPath(path, v)), base);
    const label = Object.entries(values).map(([k, v]) => wireSetting(k, v, true)).join(", ");
    resolveOrThrow(input.benchmark, config, `config (at ${label})`);
    return { values, name: pointName(input.name, values), config, run_id: null as number | null };
  });
  if (input.dryRun) return { sweep_id: null, runs: points };
  const [sweep] = await rows(
    db,
    "INSERT INTO sweeps (name, benchmark, base_config, vary, repeats, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
    [input.name, input.benchmark, JSON.stringify(base), JSON.stringify(input.vary), repeats, Date.now()],
  );
  const sweepId = Number(sweep.id);
  try {
    for (const p of points) {
      const { run } = await createRun({
        db,
        name: p.name,
        benchmark: input.benchmark,
        config: p.config,
        tasks: input.tasks,
        maxAttempts: input.maxAttempts,
        links: { sweepId, sweepValues: p.values, repeats, priority: input.priority ?? 0, maxConcurrency: input.maxConcurrency ?? null },
      });
      p.run_id = run.id;
    }
  } catch (err) {
    // each run is its own all-or-nothing batch; a failure midway (disk full, busy past the
    // timeout) takes back the runs already made, so a sweep is never half there
    await db.batch([
      db.run(sql`DELETE FROM tasks WHERE run_id IN (SELECT id FROM runs WHERE sweep_id = ${sweepId})`),
      db.run(sql`DELETE FROM runs WHERE sweep_id = ${sweepId}`),
      db.run(sql`DELETE FROM sweeps WHERE id = ${sweepId}`),
    ]).catch(() => {});
    throw err;
  }
  return { sweep_id: sweepId, runs: points };
}

export type ToolLatency = { n: number; p50: number | null; p95: number | null };

export type SweepRow = RunStats & {
  name: string;
  values: Record<string, unknown>;
  prompt_tokens: number;
  completion_tokens: number;
  tools: Record<string, ToolLatency>;
  // two-proportion test of this row's accuracy against the best row's
  p_value_vs_best: number | null;
  // false: the difference from the best configuration is not significant at 5%
  significant: boolean | null;
  best: boolean;
};

export type SweepReport = { sweep_id: number; name: string; benchmark: string; vary: Vary[]; repeats: number; rows: SweepRow[] };

function nearest(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function readToolLatency(db: Db, runId: number): Promise<Record<string, ToolLatency>> {
  const r = await rows(db, "SELECT tool, duration_ms FROM tool_calls WHERE run_id = ? ORDER BY tool, duration_ms", [runId]);
  const by = new Map<string, number[]>();
  for (const x of r) {
    const list = by.get(String(x.tool)) ?? [];
    list.push(Number(x.duration_ms));
    by.set(String(x.tool), list);
  }
  return Object.fromEntries([...by].map(([tool, ms]) => [tool, { n: ms.length, p50: nearest(ms, 50), p95: nearest(ms, 95) }]));
}

export async function readSweepReport({ db, sweepId }: { db: Db; sweepId: number }): Promise<SweepReport> {
  const [s] = await rows(db, "SELECT * FROM sweeps WHERE id = ?", [sweepId]);
  if (!s) throw new DbError("not_found", "sweeps.not_found", `sweep ${sweepId} not found`);
  const runRows = await rows(db, "SELECT id, name, task_count, repeats, sweep_values FROM runs WHERE sweep_id = ? ORDER BY id", [sweepId]);
  const out: SweepRow[] = [];
  for (const r of runRows) {
    const runId = Number(r.id);
    const stats = computeRunStats({ runId, repeats: Number(r.repeats), tasks: Number(r.task_count), questions: await listQuestionStats({ db, runId }) });
    const [tok] = await rows(db, "SELECT coalesce(sum(prompt_tokens), 0) AS p, coalesce(sum(completion_tokens), 0) AS c FROM llm_calls WHERE run_id = ?", [runId]);
    out.push({
      ...stats,
      name: String(r.name),
      values: r.sweep_values ? JSON.parse(r.sweep_values) : {},
      prompt_tokens: Number(tok.p),
      completion_tokens: Number(tok.c),
      tools: await readToolLatency(db, runId),
      p_value_vs_best: null,
      significant: null,
      best: false,
    });
  }
  markSignificance(out);
  return { sweep_id: sweepId, name: String(s.name), benchmark: String(s.benchmark), vary: JSON.parse(s.vary), repeats: Number(s.repeats), rows: out };
}

/** The best accuracy is the reference; every other row is tested against it at 5%. */
export function markSignificance(list: (RunStats & { p_value_vs_best: number | null; significant: boolean | null; best: boolean })[]): void {
  const scored = list.filter((r) => r.accuracy != null);
  if (scored.length === 0) return;
  const best = scored.reduce((a, b) => (b.accuracy! > a.accuracy! ? b : a));
  best.best = true;
  for (const r of scored) {
    if (r === best) continue;
    r.p_value_vs_best = twoProportionP(r.correct, r.finished, best.correct, best.finished);
    r.significant = r.p_value_vs_best == null ? null : r.p_value_vs_best < 0.05;
  }
}
