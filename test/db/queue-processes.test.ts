// Several OS processes claiming from one file database: nothing lost, nothing done twice,
// and a claimer killed with SIGKILL mid-batch leaves nothing behind.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { closeDb, openDb, type Db } from "../../db/client";
import { createRun, validateTasks } from "../../db/runs";

const WORKER = join(import.meta.dir, "queue-worker.ts");

let dir: string;
let url: string;
let db: Db;
const procs: Bun.Subprocess[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-procs-"));
  url = `file:${join(dir, "baton.db")}`;
  db = await openDb({ url });
});
afterEach(() => {
  for (const p of procs.splice(0)) if (p.exitCode === null) p.kill("SIGKILL");
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

async function seed(n: number): Promise<number> {
  const rows = Array.from({ length: n }, (_, i) => ({ id: i, question: `q${i}` }));
  const { run } = await createRun({ db, name: "procs", benchmark: "frames", tasks: validateTasks({ rows }) });
  return run.id;
}

function spawnWorker(id: string, args: string[] = []): Bun.Subprocess<"ignore", "pipe", "pipe"> {
  const p = Bun.spawn([process.execPath, WORKER, url, id, join(dir, `${id}.log`), ...args], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  procs.push(p);
  return p;
}

function readLog(id: string): string[][] {
  const file = join(dir, `${id}.log`);
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => l.split(" "));
}

async function rows(query: ReturnType<typeof sql>): Promise<any[]> {
  return ((await db.run(query)) as any).rows;
}

async function waitFor(cond: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(25);
  }
}

async function expectExit(p: Bun.Subprocess<"ignore", "pipe", "pipe">): Promise<void> {
  const code = await p.exited;
  if (code !== 0) throw new Error(`worker exited ${code}: ${await new Response(p.stderr).text()}`);
}

for (const mode of ["one by one", "in batches"])
test(`four processes completing ${mode} complete every task exactly once`, async () => {
  const N = 2000;
  await seed(N);
  const ids = ["w1", "w2", "w3", "w4"];
  const workers = ids.map((id) => spawnWorker(id, ["--batch", "16", ...(mode === "in batches" ? ["--complete-many"] : [])]));
  await Promise.all(workers.map(expectExit));

  const [counts] = await rows(sql`SELECT count(*) AS n, sum(status = 'succeeded') AS ok FROM tasks`);
  expect(counts).toEqual({ n: N, ok: N });
  // the database's history: one successful attempt per task, nothing else
  const [att] = await rows(sql`SELECT count(*) AS n, count(DISTINCT task_id) AS tasks, sum(outcome = 'succeeded') AS ok FROM task_attempts`);
  expect(att).toEqual({ n: N, tasks: N, ok: N });
  // the processes' own logs: each task reported done=true by exactly one process
  const doneBy = new Map<string, string[]>();
  for (const id of ids)
    for (const [kind, taskId, , ok] of readLog(id))
      if (kind === "done" && ok === "true") doneBy.set(taskId, [...(doneBy.get(taskId) ?? []), id]);
  expect(doneBy.size).toBe(N);
  expect([...doneBy.values()].every((who) => who.length === 1)).toBe(true);
  // and the work really was shared
  const perWorker = ids.map((id) => readLog(id).filter((l) => l[0] === "done").length);
  expect(perWorker.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
  // the result written is the one from the process that logged the completion
  const sample = await rows(sql`SELECT id, json_extract(result, '$.by') AS by FROM tasks ORDER BY random() LIMIT 50`);
  for (const r of sample) expect(doneBy.get(String(r.id))).toEqual([r.by]);
}, 120_000);

test("tasks held by a claimer killed with SIGKILL mid-batch are done later by others", async () => {
  const N = 300;
  await seed(N);
  const victim = spawnWorker("victim", ["--batch", "25", "--lease-ms", "400", "--hang"]);
  await waitFor(() => readLog("victim").length === 25, 30_000, "the victim to claim its batch");
  victim.kill("SIGKILL");
  expect(await victim.exited).not.toBe(0);
  expect(victim.signalCode).toBe("SIGKILL");
  const held = readLog("victim").map((l) => l[1]);
  const [running] = await rows(sql`SELECT count(*) AS n FROM tasks WHERE status = 'running' AND lease_owner = 'victim'`);
  expect(running.n).toBe(25);

  const others = ["s1", "s2"].map((id) => spawnWorker(id, ["--batch", "10", "--lease-ms", "30000"]));
  await Promise.all(others.map(expectExit));

  const [counts] = await rows(sql`SELECT count(*) AS n, sum(status = 'succeeded') AS ok FROM tasks`);
  expect(counts).toEqual({ n: N, ok: N });
  for (const taskId of held) {
    const history = await rows(sql`SELECT attempt, runner_id, outcome FROM task_attempts WHERE task_id = ${Number(taskId)} ORDER BY id`);
    expect(history[0]).toMatchObject({ attempt: 1, runner_id: "victim", outcome: "expired" });
    expect(history[1].attempt).toBe(2);
    expect(["s1", "s2"]).toContain(history[1].runner_id);
    expect(history[1].outcome).toBe("succeeded");
  }
}, 120_000);
