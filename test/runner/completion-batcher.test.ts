// Completions finishing together share one fenced statement; each caller still gets its own
// answer, a lost lease among them is refused alone, and a failed batch fails each caller.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, openDb, type Db } from "../../db/client";
import { claimTasks } from "../../db/queue";
import { createRun, validateTasks } from "../../db/runs";
import { CompletionBatcher } from "../../runner/completion-batcher";
import { DbQueue } from "../../runner/queue-db";

let dir: string;
let path: string;
let db: Db;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-batcher-"));
  path = join(dir, "baton.db");
  db = await openDb({ url: `file:${path}` });
});
afterEach(() => {
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

/** The real queue, counting the statements it is asked for. */
class CountingQueue extends DbQueue {
  many: number[] = [];
  singles = 0;
  override completeMany(items: Parameters<DbQueue["complete"]>[0][]) {
    this.many.push(items.length);
    return super.completeMany(items);
  }
  override complete(opts: Parameters<DbQueue["complete"]>[0]) {
    this.singles++;
    return super.complete(opts);
  }
}

function statuses(): Record<string, number> {
  const other = new Database(path, { readonly: true });
  try {
    return Object.fromEntries((other.query("SELECT status, count(*) AS n FROM tasks GROUP BY status").all() as any[]).map((r) => [r.status, r.n]));
  } finally {
    other.close();
  }
}

test("twenty completions at once are one statement, and each caller learns its own outcome", async () => {
  await createRun({ db, name: "b", benchmark: "frames", tasks: validateTasks({ rows: Array.from({ length: 20 }, (_, i) => ({ id: i, question: `q${i}` })) }) });
  const claimed = await claimTasks({ db, runnerId: "r", limit: 20, leaseMs: 60_000 });
  const q = new CountingQueue(db);
  const batcher = new CompletionBatcher(q);
  // one of them lost its lease to another runner
  const stolen = claimed[7];
  const oks = await Promise.all(
    claimed.map((t) => batcher.complete({ taskId: t.id, leaseToken: t === stolen ? "not-the-token" : t.leaseToken, result: { correct: true } })),
  );
  expect(oks.filter(Boolean).length).toBe(19);
  expect(oks[7]).toBe(false);
  expect(q.many).toEqual([20]);
  // the refused one was asked again alone (the queue's own check decides it)
  expect(q.singles).toBe(1);
  expect(statuses()).toEqual({ succeeded: 19, running: 1 });
});

test("a batch that fails as a whole is tried item by item: only the bad completion fails", async () => {
  await createRun({ db, name: "b", benchmark: "frames", tasks: validateTasks({ rows: Array.from({ length: 3 }, (_, i) => ({ id: i, question: `q${i}` })) }) });
  const claimed = await claimTasks({ db, runnerId: "r", limit: 3, leaseMs: 60_000 });
  const q = new CountingQueue(db);
  const batcher = new CompletionBatcher(q);
  // a result that cannot be serialized makes the whole statement fail
  const results = await Promise.allSettled(
    claimed.map((t, i) => batcher.complete({ taskId: t.id, leaseToken: t.leaseToken, result: i === 1 ? ({ correct: true, big: 10n } as any) : { correct: true } })),
  );
  expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
  expect(q.many).toEqual([3]);
  expect(q.singles).toBe(3);
  expect(statuses()).toEqual({ succeeded: 2, running: 1 });
});
