// Priority and per-run concurrency are honoured by the one claim statement (db/queue.ts):
// a high-priority run is claimed first however much is queued before it, FIFO holds within a
// priority, both controls can change while a run is active, and a max_concurrency 1 run never
// has two tasks running at once while other runs proceed — checked from task_attempts with
// several runner processes.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, openDb, type Db } from "../../db/client";
import { setRunControls } from "../../db/experiments";
import { claimTasks } from "../../db/queue";
import { createRun } from "../../db/runs";

let dir: string;
let url: string;
let db: Db;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-claim-"));
  url = `file:${join(dir, "baton.db")}`;
  db = await openDb({ url });
});

afterEach(() => {
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

async function submit(name: string, n: number, links: { priority?: number; maxConcurrency?: number | null } = {}): Promise<number> {
  const tasks = Array.from({ length: n }, (_, i) => ({ externalId: `${name}-${i}`, input: { question: `q${i}` } }));
  return (await createRun({ db, name, benchmark: "frames", tasks, links })).run.id;
}

const claim = (limit: number) => claimTasks({ db, runnerId: "r1", limit, leaseMs: 60_000 });
// which runs a claim took from, as a sorted list (RETURNING does not keep the claim's order)
const runsOf = (claimed: { runId: number }[]) => claimed.map((t) => t.runId).sort((x, y) => x - y);

describe("priority", () => {
  test("a high-priority run submitted behind 10k queued tasks is claimed first", async () => {
    const big = await submit("big", 10_000);
    const later = await submit("later", 5);
    const urgent = await submit("urgent", 3, { priority: 10 });
    const first = await claim(4);
    expect(runsOf(first)).toEqual([big, urgent, urgent, urgent]);
    const next = await claim(2);
    expect(runsOf(next)).toEqual([big, big]);
    expect(later).toBeGreaterThan(big);
  }, 60_000);

  test("FIFO within a priority, and a priority changed while the run is active counts at the next claim", async () => {
    const a = await submit("a", 5);
    const b = await submit("b", 5);
    expect(runsOf(await claim(2))).toEqual([a, a]);
    await setRunControls({ db, ref: b, priority: 5 });
    expect(runsOf(await claim(3))).toEqual([b, b, b]);
    await setRunControls({ db, ref: b, priority: -1 });
    expect(runsOf(await claim(4))).toEqual([a, a, a, b]);
  });
});

describe("max_concurrency", () => {
  test("one claim takes no more of a capped run than its room, and the cap can change while it runs", async () => {
    const capped = await submit("capped", 6, { maxConcurrency: 1 });
    const free = await submit("free", 12);
    const first = await claim(10);
    expect(runsOf(first).filter((r) => r === capped)).toHaveLength(1);
    expect(runsOf(first).filter((r) => r === free)).toHaveLength(9);
    expect(runsOf(await claim(10)).filter((r) => r === capped)).toHaveLength(0);
    await setRunControls({ db, ref: capped, maxConcurrency: 3 });
    expect(runsOf(await claim(10)).filter((r) => r === capped)).toHaveLength(2);
    await setRunControls({ db, ref: capped, maxConcurrency: null });
    expect(runsOf(await claim(10)).filter((r) => r === capped)).toHaveLength(3);
  });

  test("a max_concurrency 1 run never has two tasks running at once while other runs proceed (3 runner processes)", async () => {
    const capped = await submit("one-at-a-time", 8, { maxConcurrency: 1 });
    const free = await submit("free", 24);
    const worker = join(import.meta.dir, "_held-worker.ts");
    const procs = ["w1", "w2", "w3"].map((id) => Bun.spawn([process.execPath, worker, url, id, "40", "4"], { stdout: "pipe", stderr: "pipe" }));
    const codes = await Promise.all(procs.map((p) => p.exited));
    expect(codes).toEqual([0, 0, 0]);
    const rows = async (runId: number) =>
      (await db.$client.execute({ sql: "SELECT started_at, ended_at, runner_id FROM task_attempts WHERE run_id = ? ORDER BY started_at, id", args: [runId] })).rows as any[];
    const one = await rows(capped);
    expect(one).toHaveLength(8);
    for (let i = 1; i < one.length; i++) expect(Number(one[i].started_at)).toBeGreaterThanOrEqual(Number(one[i - 1].ended_at));
    const others = await rows(free);
    expect(others).toHaveLength(24);
    const maxOverlap = Math.max(...others.map((a) => others.filter((b) => Number(b.started_at) < Number(a.ended_at) && Number(b.ended_at) > Number(a.started_at)).length));
    expect(maxOverlap).toBeGreaterThan(1);
    const span = [Number(one[0].started_at), Number(one[one.length - 1].ended_at)];
    expect(others.some((a) => Number(a.started_at) > span[0] && Number(a.started_at) < span[1])).toBe(true);
  }, 60_000);
});
