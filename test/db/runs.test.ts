import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { closeDb, openDb, type Db } from "../../db/client";
import { claimTasks, completeTask, failTask } from "../../db/queue";
import { countRows, createRun, getRunSummary, parseJsonl, validateJsonlTasks, validateTasks } from "../../db/runs";
import { findRun as findReportRun } from "../../db/analysis";
import { DbError } from "../../db/errors";

let dir: string;
let db: Db;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-runs-"));
  db = await openDb({ url: `file:${join(dir, "baton.db")}` });
});
afterEach(() => {
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

function thrown(fn: () => unknown): DbError {
  try {
    fn();
  } catch (err) {
    return err as DbError;
  }
  throw new Error("expected a throw");
}

describe("task validation", () => {
  test("numeric ids become strings and every other field is kept as given", () => {
    const row = { id: 3, question: "q", answer: 4, answer_type: "exactMatch", image: "", canary: "x" };
    expect(validateTasks({ rows: [row] })).toEqual([{ externalId: "3", input: row }]);
  });

  test("errors name the position and the field", () => {
    expect(thrown(() => validateTasks({ rows: [{ id: 1, question: "a" }, { id: 2, question: 5 }] })).message).toBe(
      "tasks[1].question: expected a non-empty string",
    );
    expect(thrown(() => validateTasks({ rows: [{ question: "a" }] })).message).toMatch(/^tasks\[0\]\.id: missing/);
    expect(thrown(() => validateJsonlTasks('{"id":1,"question":"a"}\n\n{"id":1,"question":"b"}')).message).toBe(
      'line 3.id: duplicate id "1" (first at line 1)',
    );
  });

  test("JSONL line numbers count blank lines and a trailing newline is fine", () => {
    const { rows, lines } = parseJsonl('\n{"id":1,"question":"a"}\n\n{"id":2,"question":"b"}\n');
    expect(rows).toHaveLength(2);
    expect(lines).toEqual([2, 4]);
    expect(thrown(() => parseJsonl('{"id":1}\n{oops}\n')).message).toMatch(/^line 2: invalid JSON/);
  });
});

describe("createRun", () => {
  test("a duplicate id anywhere leaves the database unchanged", async () => {
    const rows = Array.from({ length: 12_000 }, (_, i) => ({ id: i, question: "q" }));
    const valid = validateTasks({ rows });
    // simulate a duplicate that slipped past validation: the unique index must still stop it
    valid[11_999] = { ...valid[11_999], externalId: "5" };
    const before = await countRows({ db });
    await expect(createRun({ db, name: "x", benchmark: "frames", tasks: valid })).rejects.toThrow();
    expect(await countRows({ db })).toEqual(before);
  });

  test("a rejected config names its path and writes nothing", async () => {
    const err = await createRun({ db, name: "x", benchmark: "frames", config: { maxRounds: -1 }, tasks: validateTasks({ rows: [{ id: 1, question: "q" }] }) }).catch((e) => e);
    expect(err).toBeInstanceOf(DbError);
    // paths are named as users write them (snake_case), though db callers pass camelCase
    expect(err.message).toMatch(/^config\.max_rounds: /);
    expect(await countRows({ db })).toEqual({ runs: 0, tasks: 0 });
  });

  test("two runs in a row each get their own tasks", async () => {
    const a = await createRun({ db, name: "a", benchmark: "frames", tasks: validateTasks({ rows: [{ id: 1, question: "q" }] }) });
    const b = await createRun({ db, name: "b", benchmark: "frames", tasks: validateTasks({ rows: [{ id: 1, question: "q" }, { id: 2, question: "r" }] }) });
    const res = (await db.run(sql`SELECT run_id, count(*) AS n FROM tasks GROUP BY run_id ORDER BY run_id`)) as any;
    expect(res.rows).toEqual([
      { run_id: a.run.id, n: 1 },
      { run_id: b.run.id, n: 2 },
    ]);
  });
});

test("the summary counts statuses and reports accuracy, rate and ETA", async () => {
  const rows = Array.from({ length: 10 }, (_, i) => ({ id: i, question: `q${i}` }));
  const { run } = await createRun({ db, name: "s", benchmark: "frames", tasks: validateTasks({ rows }), maxAttempts: 1 });
  const fresh = await getRunSummary({ db, ref: run.id });
  expect(fresh).toMatchObject({ counts: { queued: 10, running: 0 }, done: false, accuracy: null, rate_per_min: null, eta_ms: null });

  const claimed = await claimTasks({ db, runnerId: "r", limit: 6, leaseMs: 60_000 });
  for (const [i, t] of claimed.slice(0, 4).entries())
    await completeTask({ db, taskId: t.id, leaseToken: t.leaseToken, result: { prediction: "p", correct: i < 3 } });
  await failTask({ db, taskId: claimed[4].id, leaseToken: claimed[4].leaseToken, errorClass: "context_length", retryable: false });
  const s = await getRunSummary({ db, ref: "s" });
  expect(s.counts).toEqual({ queued: 4, running: 1, succeeded: 4, failed: 1, canceled: 0 });
  expect(s.correct).toBe(3);
  // one meaning per number: accuracy over the finished tasks, score over all of them
  expect([s.finished, s.not_finished, s.missing, s.infra_failed]).toEqual([5, 5, 1, 0]);
  expect(s.accuracy).toBeCloseTo(3 / 5);
  expect(s.score).toBeCloseTo(3 / 10);
  expect(s.score_excluding_infra).toBeCloseTo(3 / 10);
  expect(s.started_at).not.toBeNull();
  expect(s.rate_per_min).toBeGreaterThan(0);
  expect(s.eta_ms).toBeCloseTo((5 / s.rate_per_min!) * 60_000, -2);
});

describe("one findRun", () => {
  test("the report's run lookup is the API's: by id, by a unique name, and a shared name is ambiguous, not the newest", async () => {
    const tasks = validateTasks({ rows: [{ id: 1, question: "q" }] });
    const a = (await createRun({ db, name: "twin", benchmark: "frames", tasks })).run;
    expect((await findReportRun({ db, run: "twin" }))?.id).toBe(a.id);
    expect((await findReportRun({ db, run: a.id }))?.name).toBe("twin");
    expect(await findReportRun({ db, run: "nobody" })).toBeNull();
    await createRun({ db, name: "twin", benchmark: "frames", tasks });
    const err = await findReportRun({ db, run: "twin" }).catch((e) => e);
    expect(err).toBeInstanceOf(DbError);
    expect([err.kind, err.code]).toEqual(["ambiguous", "runs.ambiguous"]);
  });
});
