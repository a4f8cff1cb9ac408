// Chaos in one run: one runner SIGKILLed, one SIGTERMed, a vLLM replica hanging, the primary
// retriever down. Replacement runners are started as needed; the run must still finish with
// no task lost, none completed twice, none stuck in running.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { q, readJsonl, REPO, simRunConfig, startWorld, submitRun, waitFor, type World } from "./_harness";

const rows = readJsonl("data/frames-sample.jsonl").slice(0, 120);
let world: World;
const children: ReturnType<typeof Bun.spawn>[] = [];

beforeAll(async () => {
  world = await startWorld({
    rows,
    sim: { orchestrator: { replicas: 2 }, latency: { ttftMs: 20, jitter: 0.5 } },
  });
});

afterAll(async () => {
  for (const c of children) if (c.exitCode == null) c.kill("SIGKILL");
  await world?.close();
});

function spawnRunner(runId: number) {
  const child = Bun.spawn(
    [process.execPath, join(REPO, "cli/baton.ts"), "runner", "--server", world.server.url, "--run", String(runId),
      "--concurrency", "6", "--lease-ms", "1500", "--heartbeat-ms", "200", "--grace-ms", "2000", "--poll-ms", "50",
      "--exit-when-idle"],
    { cwd: REPO, env: { ...process.env, BATON_TOKEN: "test-token" }, stdout: "ignore", stderr: "ignore" },
  );
  children.push(child);
  return child;
}

async function counts(runId: number): Promise<Record<string, number>> {
  const r = (await q(world.db, "SELECT status, count(*) AS n FROM tasks WHERE run_id = ? GROUP BY status", [runId])) as any[];
  return Object.fromEntries(r.map((x) => [x.status, Number(x.n)]));
}

test(
  "a run survives a SIGKILLed runner, a SIGTERMed runner, a hanging vLLM replica and a dead primary retriever",
  async () => {
    const runId = await submitRun(world, { name: "chaos", benchmark: "frames", rows, config: simRunConfig(), maxAttempts: 5 });
    const a = spawnRunner(runId);
    const b = spawnRunner(runId);
    await waitFor(async () => ((await counts(runId)).succeeded ?? 0) >= 10, 30_000, "the run under way");

    // A replica of the orchestrator hangs: every request to it waits forever.
    const orch = world.cluster.byModel("nvidia/Nemotron-Orchestrator-8B");
    (orch[0].sim as any).update({ faults: { rates: { hang: 1 }, queue: [], retryAfterS: 1 } });
    // The primary retriever goes down: wiki_retrieval refuses connections, retrieval takes over.
    for (const r of world.cluster.byModel("wiki_retrieval")) await r.sim.down();

    a.kill("SIGKILL");
    b.kill("SIGTERM");
    expect(await b.exited).toBe(0);
    await a.exited;

    // One replacement finishes the run: with --exit-when-idle it stays while tasks are in
    // backoff or under the dead runner's expiring leases, takes them over, and exits by
    // itself only when nothing is queued or running.
    const r = spawnRunner(runId);
    const timer = setTimeout(() => r.kill("SIGKILL"), 90_000);
    expect(await r.exited).toBe(0);
    clearTimeout(timer);

    const c = await counts(runId);
    expect((c.succeeded ?? 0) + (c.failed ?? 0)).toBe(rows.length);
    expect(c.running ?? 0).toBe(0);
    // every failure carries a class
    const unclassified = await q(world.db, "SELECT count(*) AS n FROM tasks WHERE run_id = ? AND status = 'failed' AND error_class IS NULL", [runId]);
    expect(Number((unclassified[0] as any).n)).toBe(0);
    // none completed twice: one succeeded attempt per succeeded task in the history
    const twice = await q(
      world.db,
      "SELECT task_id, count(*) AS n FROM task_attempts WHERE run_id = ? AND outcome = 'succeeded' GROUP BY task_id HAVING n > 1",
      [runId],
    );
    expect(twice.length).toBe(0);
    const okAttempts = await q(world.db, "SELECT count(DISTINCT task_id) AS n FROM task_attempts WHERE run_id = ? AND outcome = 'succeeded'", [runId]);
    expect(Number((okAttempts[0] as any).n)).toBe(c.succeeded);
    // the fallback retriever served searches after the primary died
    const fallback = await q(world.db, "SELECT count(*) AS n FROM latency_components WHERE run_id = ? AND component = 'retrieval' AND backend = 'retrieval'", [runId]);
    expect(Number((fallback[0] as any).n)).toBeGreaterThan(0);
    expect((c.succeeded ?? 0)).toBeGreaterThan(rows.length * 0.8);
  },
  150_000,
);
