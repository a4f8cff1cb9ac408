// Reading step transcripts back (db/rows.ts writes them): one task's steps with the latency
// rows of each step joined on the shared key (task_id, attempt, step).
import type { InValue } from "@libsql/client";
import type { Db } from "./client";
import { decodeTranscript, type StepTranscript } from "./rows";

export type StepComponent = {
  component: string;
  model: string | null;
  ms: number;
  retries: number;
  backend: string | null;
  endpoint: string | null;
  status: string;
  started_at: number;
};

export type StepToolCall = {
  tool: string;
  model_alias: string | null;
  model: string | null;
  status: string;
  error_class: string | null;
  error_message: string | null;
  started_at: number;
  duration_ms: number;
};

export type TaskStep = {
  attempt: number;
  step: number;
  // whether this step belongs to the task's final (current) attempt
  final: boolean;
  // null for a step that has latency rows but no transcript (recorded before transcripts existed)
  transcript: StepTranscript | null;
  // set when the stored body could not be decompressed or parsed (transcript is then null)
  transcript_error?: string;
  recorded_at: number | null;
  tool_call: StepToolCall | null;
  components: StepComponent[];
};

export type TaskSteps = { task_id: number; final_attempt: number; steps: TaskStep[] };

type Row = Record<string, any>;

async function rows(db: Db, sql: string, args: InValue[]): Promise<Row[]> {
  return (await db.$client.execute({ sql, args })).rows as unknown as Row[];
}

/** A blob column as libSQL hands it back (ArrayBuffer), as bytes gunzip accepts. */
export function blobBytes(x: unknown): Uint8Array<ArrayBuffer> {
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  if (x instanceof Uint8Array) return new Uint8Array(x);
  throw new TypeError(`expected a blob, got ${typeof x}`);
}

/**
 * Every stored step of a task (or of one attempt), by attempt then step: the transcript
 * decompressed, with its tool_calls row and latency components. null for an unknown task.
 */
export async function listTaskSteps({ db, taskId, attempt = null }: { db: Db; taskId: number; attempt?: number | null }): Promise<TaskSteps | null> {
  const [task] = await rows(db, "SELECT id, attempt FROM tasks WHERE id = ?", [taskId]);
  if (!task) return null;
  const only = attempt == null ? "" : " AND attempt = ?";
  const args: InValue[] = attempt == null ? [taskId] : [taskId, attempt];
  const [transcripts, calls, comps] = await Promise.all([
    rows(db, `SELECT attempt, step, body, created_at FROM step_transcripts WHERE task_id = ?${only}`, args),
    rows(
      db,
      `SELECT attempt, step, tool, model_alias, model, status, error_class, error_message, started_at, duration_ms
       FROM tool_calls WHERE task_id = ?${only}`,
      args,
    ),
    rows(
      db,
      `SELECT attempt, step, component, model, ms, retries, backend, endpoint, status, started_at
       FROM latency_components WHERE task_id = ?${only} ORDER BY started_at, id`,
      args,
    ),
  ]);
  const finalAttempt = Number(task.attempt);
  const steps = new Map<string, TaskStep>();
  const stepOf = (r: Row): TaskStep => {
    const key = `${r.attempt}/${r.step}`;
    let s = steps.get(key);
    if (!s) {
      s = { attempt: Number(r.attempt), step: Number(r.step), final: Number(r.attempt) === finalAttempt, transcript: null, recorded_at: null, tool_call: null, components: [] };
      steps.set(key, s);
    }
    return s;
  };
  for (const r of transcripts) {
    const s = stepOf(r);
    s.recorded_at = Number(r.created_at);
    try {
      s.transcript = decodeTranscript(blobBytes(r.body));
    } catch (err) {
      // one unreadable row must not hide the task's other steps
      s.transcript_error = `stored transcript unreadable: ${(err as Error).message}`;
    }
  }
  for (const r of calls)
    stepOf(r).tool_call = {
      tool: r.tool,
      model_alias: r.model_alias ?? null,
      model: r.model ?? null,
      status: r.status,
      error_class: r.error_class ?? null,
      error_message: r.error_message ?? null,
      started_at: Number(r.started_at),
      duration_ms: Number(r.duration_ms),
    };
  for (const r of comps)
    stepOf(r).components.push({
      component: r.component,
      model: r.model ?? null,
      ms: Number(r.ms),
      retries: Number(r.retries),
      backend: r.backend ?? null,
      endpoint: r.endpoint ?? null,
      status: r.status,
      started_at: Number(r.started_at),
    });
  const ordered = [...steps.values()].sort((a, b) => a.attempt - b.attempt || a.step - b.step);
  return { task_id: taskId, final_attempt: finalAttempt, steps: ordered };
}
