import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { cancelRun } from "../../db/queue";
import { DbQueue } from "../../runner/queue-db";
import { Runner } from "../../runner/runner";
import { q, readJsonl, REPO, simRunConfig, startWorld, submitRun, waitFor, type World } from "./_harness";

const rows = readJsonl("data/frames-sample.jsonl").slice(0, 6);
let world: World;

beforeAll(async () => {
  // Every model call takes 30 s: tasks stay in flight until something stops them.
  world = await startWorld({ rows, sim: { latency: { ttftMs: 30_000 } } });
});

afterAll(async () => {
  await world?.close();
});

const slowConfig = () =>
  simRunConfig({ orchestrator: { history: "messages", policy: { attempts: 1, perAttemptTimeoutMs: 60_000, deadlineMs: 60_000 } } });

describe("runner", () => {
  test("a lost lease (run canceled) aborts the task's calls at once and writes nothing", async () => {
    const runId = await submitRun(world, { name: "lease-lost", benchmark: "frames", rows: rows.slice(0, 2), config: slowConfig() });
    const lines: string[] = [];
    const runner = new Runner({ queue: new DbQueue(world.db), concurrency: 2, runId, leaseMs: 2_000, heartbeatMs: 100, pollMs: 50, log: (l) => lines.push(l) });
    const done = runner.run();
    const orch = world.cluster.byModel("nvidia/Nemotron-Orchestrator-8B")[0].sim;
    await waitFor(() => orch.stats().inFlight === 2, 5_000, "two orchestrator calls in flight");
    await cancelRun({ db: world.db, runId });
    const t0 = Date.now();
    await waitFor(() => runner.inFlight === 0, 3_000, "tasks aborted");
    expect(Date.now() - t0).toBeLessThan(2_000);
    await waitFor(() => orch.stats().inFlight === 0, 3_000, "orchestrator connections closed");
    expect(lines.filter((l) => l.includes("lease lost")).length).toBeGreaterThanOrEqual(2);
    runner.stop("test over");
    await done;
    const tasks = await q(world.db, "SELECT status FROM tasks WHERE run_id = ?", [runId]);
    expect(tasks.every((t: any) => t.status === "canceled")).toBe(true);
  }, 20_000);

  test("SIGTERM drains: in-flight tasks are released without charging an attempt and the runner exits 0", async () => {
    const runId = await submitRun(world, { name: "sigterm", benchmark: "frames", rows: rows.slice(0, 3), config: slowConfig() });
    const child = Bun.spawn(
      [process.execPath, join(REPO, "cli/baton.ts"), "runner", "--db", world.dbUrl, "--run", String(runId), "--concurrency", "2", "--grace-ms", "300", "--poll-ms", "50", "--lease-ms", "5000"],
      { cwd: REPO, stdout: "pipe", stderr: "pipe" },
    );
    await waitFor(
      async () => Number(((await q(world.db, "SELECT count(*) AS n FROM tasks WHERE run_id = ? AND status = 'running'", [runId]))[0] as any).n) === 2,
      10_000,
      "two tasks running in the child",
    );
    child.kill("SIGTERM");
    const code = await child.exited;
    const out = await new Response(child.stdout).text();
    expect(code).toBe(0);
    expect(out).toContain("released (shutdown)");
    const tasks = (await q(world.db, "SELECT status, attempt, max_attempts FROM tasks WHERE run_id = ?", [runId])) as any[];
    expect(tasks.map((t) => t.status)).toEqual(["queued", "queued", "queued"]);
    // no attempt charged: the budget left is the run's whole budget (a release raises
    // max_attempts rather than reusing an attempt number)
    const [run] = (await q(world.db, "SELECT max_attempts FROM runs WHERE id = ?", [runId])) as any[];
    expect(tasks.map((t) => Number(t.max_attempts) - Number(t.attempt))).toEqual([1, 1, 1].map(() => Number(run.max_attempts)));
    const outcomes = (await q(world.db, "SELECT outcome FROM task_attempts a JOIN tasks t ON t.id = a.task_id WHERE t.run_id = ?", [runId])) as any[];
    expect(outcomes.map((o) => o.outcome)).toEqual(["released", "released"]);
    const runners = (await q(world.db, "SELECT state FROM runners WHERE pid = ?", [child.pid])) as any[];
    expect(runners[0].state).toBe("stopped");
  }, 30_000);

  test("never claims a task it cannot finish before the Slurm job's end time", async () => {
    const runId = await submitRun(world, { name: "end-guard", benchmark: "frames", rows: rows.slice(0, 2), config: slowConfig() });
    const lines: string[] = [];
    const runner = new Runner({
      queue: new DbQueue(world.db),
      runId,
      endsAt: Date.now() + 20_000,
      taskBudgetMs: 60_000,
      graceMs: 100,
      pollMs: 50,
      log: (l) => lines.push(l),
    });
    await runner.run();
    expect(runner.stats.claimed).toBe(0);
    expect(lines.some((l) => l.includes("no time for another task"))).toBe(true);
    const tasks = (await q(world.db, "SELECT status, attempt FROM tasks WHERE run_id = ?", [runId])) as any[];
    expect(tasks.every((t) => t.status === "queued" && Number(t.attempt) === 0)).toBe(true);
  }, 20_000);
});
