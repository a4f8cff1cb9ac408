// What a real runner leaves in the database when tasks fail, and when it decides to exit:
// - an infrastructure failure (every orchestrator replica down, after the task's attempts)
//   is recorded as infrastructure, and a deterministic one (prompt longer than the context
//   window) is not, whatever their class names;
// - --exit-when-idle waits for work that is not claimable yet (a task under a dead runner's
//   lease) instead of leaving it behind, and --idle-grace-ms bounds that wait.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { buildReport } from "../../db/analysis";
import { cancelRun, claimTasks } from "../../db/queue";
import { DbQueue } from "../../runner/queue-db";
import { HttpQueue } from "../../runner/queue-http";
import { Runner } from "../../runner/runner";
import { q, readJsonl, simRunConfig, startWorld, submitRun, type World } from "./_harness";

const rows = readJsonl("data/frames-sample.jsonl").slice(0, 6);
const ORCHESTRATOR = "nvidia/Nemotron-Orchestrator-8B";
let world: World;

beforeAll(async () => {
  world = await startWorld({ rows, sim: { latency: { ttftMs: 5, jitter: 0 } } });
});

afterAll(async () => {
  await world?.close();
});

function fastRunner(runId: number, extra: Partial<ConstructorParameters<typeof Runner>[0]> = {}) {
  const lines: string[] = [];
  const runner = new Runner({
    queue: new DbQueue(world.db, { backoff: { baseMs: 20, capMs: 40 } }),
    concurrency: 4,
    runId,
    leaseMs: 5_000,
    pollMs: 20,
    exitWhenIdle: true,
    endpointRefreshMs: 60_000,
    log: (l) => lines.push(l),
    ...extra,
  });
  return { runner, lines };
}

describe("failed tasks", () => {
  test("a prompt longer than the context window fails the task as not infrastructure", async () => {
    const orch = world.cluster.byModel(ORCHESTRATOR);
    for (const r of orch) r.sim.update({ faults: { rates: { context_length: 1 }, queue: [], retryAfterS: 1 } });
    try {
      const runId = await submitRun(world, { name: "ctx", benchmark: "frames", rows: rows.slice(0, 2), config: simRunConfig(), maxAttempts: 3 });
      await fastRunner(runId).runner.run();
      const tasks = (await q(world.db, "SELECT status, attempt, error_class, error_infra FROM tasks WHERE run_id = ?", [runId])) as any[];
      expect(tasks).toHaveLength(2);
      for (const t of tasks) {
        expect(t).toMatchObject({ status: "failed", error_class: "context_length", error_infra: 0 });
        // deterministic: not retried
        expect(Number(t.attempt)).toBe(1);
      }
      const [summary] = (await q(world.db, "SELECT failed, infra_failed, score_excluding_infra FROM run_summary WHERE run_id = ?", [runId])) as any[];
      expect(summary).toMatchObject({ failed: 2, infra_failed: 0, score_excluding_infra: 0 });
      const report = (await buildReport({ db: world.db, runId }))!;
      expect(report.tasks.infraFailed).toBe(0);
    } finally {
      for (const r of orch) r.sim.update({ faults: { rates: {}, queue: [], retryAfterS: 1 } });
    }
  }, 30_000);

  test("every orchestrator replica down fails the task after its attempts as infrastructure", async () => {
    const orch = world.cluster.byModel(ORCHESTRATOR);
    for (const r of orch) await r.sim.down();
    try {
      const runId = await submitRun(world, { name: "down", benchmark: "frames", rows: rows.slice(0, 2), config: simRunConfig(), maxAttempts: 2 });
      const { runner } = fastRunner(runId);
      await runner.run();
      const tasks = (await q(world.db, "SELECT status, attempt, error_class, error_infra FROM tasks WHERE run_id = ?", [runId])) as any[];
      expect(tasks).toHaveLength(2);
      for (const t of tasks) {
        expect(t.status).toBe("failed");
        expect(Number(t.attempt)).toBe(2);
        expect(t.error_infra).toBe(1);
        // whatever the client called it (connection, no_endpoint, deadline, ...)
        expect(t.error_class).toBeTruthy();
      }
      // the runner itself waited out the backoff between the two attempts (exit when idle
      // means nothing left, not nothing claimable this instant)
      expect(runner.stats.retried).toBe(2);
      expect(runner.stats.failed).toBe(2);
      const [summary] = (await q(world.db, "SELECT failed, infra_failed, accuracy, score, score_excluding_infra FROM run_summary WHERE run_id = ?", [runId])) as any[];
      expect(summary).toMatchObject({ failed: 2, infra_failed: 2, accuracy: 0, score: 0, score_excluding_infra: null });
      const outcomes = (await q(world.db, "SELECT infra_failure FROM task_outcomes WHERE run_id = ?", [runId])) as any[];
      expect(outcomes.map((o) => o.infra_failure)).toEqual([1, 1]);
      const report = (await buildReport({ db: world.db, runId }))!;
      expect(report.tasks.infraFailed).toBe(2);
      expect(report.failed.map((f) => f.infra)).toEqual([true, true]);
      expect(report.errors.byTaskClass.every((e) => e.infra)).toBe(true);
    } finally {
      for (const r of orch) await r.sim.up();
    }
  }, 60_000);
});

describe("--exit-when-idle", () => {
  test("a runner keeps polling while a dead runner's lease runs out, then takes its task and exits", async () => {
    const runId = await submitRun(world, { name: "orphan", benchmark: "frames", rows: rows.slice(0, 3), config: simRunConfig() });
    // A runner that claims one task and dies: nobody heartbeats its lease.
    const [orphan] = await claimTasks({ db: world.db, runnerId: "dead-runner", limit: 1, leaseMs: 1_500, runId });
    // Over HTTP, as on a cluster: the server answers how much is left.
    const lines: string[] = [];
    const runner = new Runner({
      queue: new HttpQueue({ baseUrl: world.server.url, token: "test-token" }),
      concurrency: 4,
      runId,
      leaseMs: 5_000,
      pollMs: 20,
      exitWhenIdle: true,
      log: (l) => lines.push(l),
    });
    await runner.run();
    const tasks = (await q(world.db, "SELECT id, status, attempt FROM tasks WHERE run_id = ? ORDER BY id", [runId])) as any[];
    expect(tasks.map((t) => t.status)).toEqual(["succeeded", "succeeded", "succeeded"]);
    expect(runner.stats.claimed).toBe(3);
    expect(Number(tasks.find((t) => t.id === orphan.id).attempt)).toBe(2);
    expect(lines.some((l) => l.includes("idle: nothing left to do"))).toBe(true);
  }, 30_000);

  test("--idle-grace-ms bounds the wait when another runner still holds a task", async () => {
    const runId = await submitRun(world, { name: "held", benchmark: "frames", rows: rows.slice(0, 2), config: simRunConfig() });
    await claimTasks({ db: world.db, runnerId: "slow-runner", limit: 1, leaseMs: 120_000, runId });
    const { runner, lines } = fastRunner(runId, { idleGraceMs: 300 });
    const t0 = Date.now();
    await runner.run();
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(runner.stats.succeeded).toBe(1);
    expect(lines.some((l) => /idle for 300 ms .* 0 queued and 1 running elsewhere/.test(l))).toBe(true);
    const held = (await q(world.db, "SELECT count(*) AS n FROM tasks WHERE run_id = ? AND status = 'running'", [runId])) as any[];
    expect(Number(held[0].n)).toBe(1);
    await cancelRun({ db: world.db, runId });
  }, 30_000);

  test("a runner without --run exits only when no run that is not canceled has work", async () => {
    const busy = await submitRun(world, { name: "busy", benchmark: "frames", rows: rows.slice(0, 1), config: simRunConfig() });
    const canceled = await submitRun(world, { name: "canceled", benchmark: "frames", rows: rows.slice(1, 3), config: simRunConfig() });
    await q(world.db, "UPDATE runs SET canceled_at = 1 WHERE id = ?", [canceled]);
    const { runner, lines } = fastRunner(0, { runId: null });
    await runner.run();
    const [b] = (await q(world.db, "SELECT status FROM tasks WHERE run_id = ?", [busy])) as any[];
    expect(b.status).toBe("succeeded");
    const c = (await q(world.db, "SELECT status FROM tasks WHERE run_id = ?", [canceled])) as any[];
    expect(c.map((x) => x.status)).toEqual(["queued", "queued"]);
    expect(lines.some((l) => l.includes("idle: nothing left to do"))).toBe(true);
  }, 30_000);
});
