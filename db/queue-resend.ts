// Finishing writes that are safe to re-send (a runner retries when a reply is lost): when
// the fence finds nothing, the attempt history says whether this same lease already finished
// the task, and the repeat answers `already` with the first outcome.
import type { Db } from "./client";
import { completeTask, completeTasks, failTask, type Backoff, type FailOutcome, type TaskResult } from "./queue";
import { readAttemptOutcome } from "./runs";

// failTask's arguments (the backoff: the queue's default unless given)
export type FailInput = Omit<Parameters<typeof failTask>[0], "db" | "backoff">;
/**
 * Fenced completion that tolerates a re-send: when the fence finds nothing, the attempt
 * history says whether this same lease already succeeded (the first reply was lost).
 */
export async function completeIdempotent({
  db,
  taskId,
  leaseToken,
  result,
}: {
  db: Db;
  taskId: number;
  leaseToken: string;
  result: TaskResult;
}): Promise<{ ok: boolean; already: boolean }> {
  if (await completeTask({ db, taskId, leaseToken, result })) return { ok: true, already: false };
  const outcome = await readAttemptOutcome({ db, taskId, leaseToken });
  return outcome === "succeeded" ? { ok: true, already: true } : { ok: false, already: false };
}

/** completeTasks with the same re-send rule as completeIdempotent, per item. */
export async function completeManyIdempotent({
  db,
  items,
}: {
  db: Db;
  items: { taskId: number; leaseToken: string; result: TaskResult }[];
}): Promise<{ results: { ok: boolean; already: boolean }[] }> {
  const written = await completeTasks({ db, items });
  const results = await Promise.all(
    written.map(async (ok, i) => {
      if (ok) return { ok: true, already: false };
      const outcome = await readAttemptOutcome({ db, taskId: items[i].taskId, leaseToken: items[i].leaseToken });
      return outcome === "succeeded" ? { ok: true, already: true } : { ok: false, already: false };
    }),
  );
  return { results };
}

export async function failIdempotent({
  db,
  backoff,
  ...input
}: FailInput & { db: Db; backoff?: Backoff }): Promise<{ outcome: FailOutcome; already: boolean }> {
  const outcome = await failTask({ db, ...input, result: input.result ?? null, backoff });
  if (outcome !== "lost") return { outcome, already: false };
  const previous = await readAttemptOutcome({ db, taskId: input.taskId, leaseToken: input.leaseToken });
  if (previous === "failed" || previous === "retry") return { outcome: previous, already: true };
  return { outcome: "lost", already: false };
}
