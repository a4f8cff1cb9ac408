// claimTasks runs pre-built SQL in four shapes (one run or all; some runs excluded or none):
// each takes exactly the tasks it should, and the expire step fails only what it should.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, openDb, type Db } from "../../db/client";
import { claimTasks, expireExhaustedLeases } from "../../db/queue";
import { createRun, validateTasks } from "../../db/runs";

let dir: string;
let db: Db;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-claim-shapes-"));
  db = await openDb({ url: `file:${join(dir, "baton.db")}` });
});
afterEach(() => {
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

const submit = async (name: string, n: number) =>
  (await createRun({ db, name, benchmark: "frames", tasks: validateTasks({ rows: Array.from({ length: n }, (_, i) => ({ id: i, question: `q${i}` })) }) })).run.id;

test("one run or all, with runs excluded or not", async () => {
  const a = await submit("a", 3);
  const b = await submit("b", 3);
  const c = await submit("c", 3);
  const runsOf = (xs: { runId: number }[]) => [...new Set(xs.map((x) => x.runId))].sort();
  // one run, nothing excluded
  expect(runsOf(await claimTasks({ db, runnerId: "r", limit: 1, leaseMs: 60_000, runId: b }))).toEqual([b]);
  // one run that is excluded: nothing
  expect(await claimTasks({ db, runnerId: "r", limit: 5, leaseMs: 60_000, runId: b, excludeRunIds: [b] })).toEqual([]);
  // one run, another excluded
  expect(runsOf(await claimTasks({ db, runnerId: "r", limit: 1, leaseMs: 60_000, runId: b, excludeRunIds: [a] }))).toEqual([b]);
  // all runs but two
  const rest = await claimTasks({ db, runnerId: "r", limit: 100, leaseMs: 60_000, excludeRunIds: [a, b] });
  expect(runsOf(rest)).toEqual([c]);
  expect(rest.length).toBe(3);
  // all runs: what is left (a's three, b's last one)
  const all = await claimTasks({ db, runnerId: "r", limit: 100, leaseMs: 60_000 });
  expect(all.length).toBe(4);
  expect(runsOf(all)).toEqual([a, b].sort());
  // exhausted leases: per run, then all
  await db.$client.execute("UPDATE tasks SET lease_expires_at = 0, max_attempts = attempt");
  expect(await expireExhaustedLeases({ db, runId: c })).toBe(3);
  expect(await expireExhaustedLeases({ db })).toBe(6);
  expect(await claimTasks({ db, runnerId: "r", limit: 100, leaseMs: 60_000 })).toEqual([]);
});
