// A finished simulated run for the analysis and browser tests: rows written by the real
// runner (runner/runner.ts + runner/protocol.ts) calling the simulators over loopback, with
// faults seeded where the README's questions look for them. It returns the database, the
// run id and what was done to which endpoint, so a test can check the analysis names it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, openDb, type Db } from "../db/client";
import { importToolOrchestraConfig } from "../db/endpoints";
import { createRun } from "../db/runs";
import { DbQueue } from "../runner/queue-db";
import { Runner } from "../runner/runner";
import { startSimCluster, type SimCluster } from "../sim/cluster";
import { EXPERT_MODELS, ORCHESTRATOR_MODEL } from "../sim/models";
import type { RetrievalSim } from "../sim/retrieval";
import type { VllmSim } from "../sim/vllm";
import { answersOf, readJsonl, simRunConfig, waitFor, type Row } from "./runner/_harness";

export type SimRunFacts = {
  /** The query LLM's model the slow replica serves, and that replica's base URL. */
  slowModel: string;
  slowEndpoint: string;
  slowTtftMs: number;
  /** The other replicas' time to first token. */
  ttftMs: number;
  /** The replica answering 500s and cut streams, and the faults it actually served. */
  flakyEndpoint: string;
  flakyFaults: Record<string, number>;
  /** Orchestrator requests answered with vLLM's context-length 400: each fails one task. */
  contextLengthFailures: number;
  invalidToolCallRate: number;
  /** The primary retriever was down between these retrieval counts; its fallback's URL. */
  primaryEndpoint: string;
  fallbackEndpoint: string;
  primaryDownFor: { afterRequests: number; untilFallbackRequests: number };
  /** Fallback requests numbered [from, until) were answered 503, while the primary was down. */
  fallbackFailing: { from: number; until: number };
  fallbackFaults: Record<string, number>;
  /** Run 2's size and time to first token, when there is a run 2. */
  slowerRerun: { tasks: number; ttftMs: number } | null;
};

export type SimRun = {
  dir: string;
  dbPath: string;
  db: Db;
  runId: number;
  runName: string;
  tasks: number;
  facts: SimRunFacts;
  elapsedMs: number;
  close(): void;
};

const CONTEXT_LENGTH_FAILURES = 4;
const INVALID_TOOL_CALL_RATE = 0.03;
const TTFT_MS = 6;
const SLOW_TTFT_MS = 120;

async function openTasks(db: Db, runId: number): Promise<number> {
  const r = await db.$client.execute({ sql: "SELECT count(*) AS n FROM tasks WHERE run_id = ? AND status IN ('queued', 'running')", args: [runId] });
  return Number(r.rows[0]!.n);
}

/** A runner in this process until the run has no queued or running task left. */
async function runToEnd(db: Db, runId: number): Promise<void> {
  // A task in backoff when a runner goes idle is picked up by the next one.
  await waitFor(async () => {
    const runner = new Runner({
      queue: new DbQueue(db, { backoff: { baseMs: 20, capMs: 100 } }),
      concurrency: 12,
      runId,
      leaseMs: 15_000,
      pollMs: 20,
      exitWhenIdle: true,
      idleGraceMs: 250,
      log: () => {},
    });
    await runner.run();
    return (await openTasks(db, runId)) === 0;
  }, 60_000, `run ${runId} to finish`);
}

/**
 * Runs `tasks` FRAMES sample questions to the end under the seeded faults (run 1). With
 * `slowerRerun`, the first `tasks` of them then run again as run 2, every replica answering
 * after `ttftMs` and no faults: a second, slower run to compare against. (On a shared
 * 2-core machine a few ms of simulated latency drown in scheduling noise, so the second
 * run's latency must be large to be seen.)
 */
export async function makeSimRun({
  tasks = 120,
  name = "frames-sim",
  slowerRerun = null,
}: { tasks?: number; name?: string; slowerRerun?: { tasks: number; ttftMs: number } | null } = {}): Promise<SimRun> {
  const t0 = performance.now();
  const rows: Row[] = readJsonl("data/frames-sample.jsonl").slice(0, tasks);
  if (rows.length < tasks) throw new Error(`data/frames-sample.jsonl has ${rows.length} rows, ${tasks} asked`);
  const dir = mkdtempSync(join(tmpdir(), "baton-simrun-"));
  const dbPath = join(dir, "run.db");
  const db = await openDb({ url: `file:${dbPath}` });
  const [oss, qwen, coder] = [EXPERT_MODELS[0], EXPERT_MODELS[1], EXPERT_MODELS[2]];
  let cluster: SimCluster | null = null;
  try {
    cluster = await startSimCluster({
      seed: 7,
      answers: answersOf(rows),
      accuracy: 0.7,
      invalidToolCallRate: INVALID_TOOL_CALL_RATE,
      experts: { models: [oss, qwen, coder], replicas: 2 },
      latency: { ttftMs: TTFT_MS, perTokenMs: 0.05, jitter: 0.3 },
      retrieval: { latency: { ms: 4, jitter: 0.3 } },
    });
    const vllm = (model: string, i: number) => cluster!.byModel(model)[i]!.sim as VllmSim;
    const retriever = (backend: string) => cluster!.byModel(backend)[0]!.sim as RetrievalSim;

    // The slow replica: one of the two serving the search-1 query LLM.
    const slow = vllm(oss, 0);
    slow.update({ latency: { ttftMs: SLOW_TTFT_MS } });
    // The flaky replica: 500s and streams cut before [DONE], all retried on the other replica.
    const flaky = vllm(qwen, 1);
    flaky.update({ faults: { rates: { "500": 0.08, stream_cut: 0.05 } } });
    // The orchestrator refuses a few prompts as too long: those tasks fail, not retried.
    vllm(ORCHESTRATOR_MODEL, 0).update({ faults: { queue: Array(CONTEXT_LENGTH_FAILURES).fill("context_length") } });
    // While the primary is down, the fallback answers 503 to a run of requests: the searches
    // caught in it find retrieval unavailable and go on without documents.
    const primary = retriever("wiki_retrieval");
    const fallback = retriever("retrieval");

    await importToolOrchestraConfig({ db, config: cluster.config });
    const { run } = await createRun({
      db,
      name,
      benchmark: "frames",
      config: simRunConfig(),
      tasks: rows.map((r) => ({ externalId: r.id, input: r })),
      maxAttempts: 3,
    });

    const downAfter = Math.floor(tasks * 0.5);
    const fallbackFailsFrom = 12;
    const fallbackFailsUntil = 28;
    const upAfterFallback = 40;
    let primaryState: "before" | "down" | "up" = "before";
    let fallbackState: "ok" | "failing" | "recovered" = "ok";
    let switching = false;
    // The primary goes down part-way through and comes back once the fallback has served a
    // share of the searches: the switch follows request counts, not a clock.
    const watcher = setInterval(async () => {
      if (switching) return;
      switching = true;
      try {
        if (primaryState === "before" && primary.stats().requests >= downAfter) {
          primaryState = "down";
          await primary.down();
        } else if (primaryState === "down" && fallbackState === "ok" && fallback.stats().requests >= fallbackFailsFrom) {
          fallbackState = "failing";
          fallback.update({ faults: { rates: { "503": 1 } } });
        } else if (fallbackState === "failing" && fallback.stats().requests >= fallbackFailsUntil) {
          fallbackState = "recovered";
          fallback.update({ faults: { rates: { "503": 0 } } });
        } else if (primaryState === "down" && fallbackState === "recovered" && fallback.stats().requests >= upAfterFallback) {
          primaryState = "up";
          await primary.up();
        }
      } finally {
        switching = false;
      }
    }, 5);

    try {
      await runToEnd(db, run.id);
    } finally {
      clearInterval(watcher);
    }
    if ((primaryState as string) !== "up") throw new Error(`the primary retriever never came back (state ${primaryState}): the fault schedule did not run`);

    const facts: SimRunFacts = {
      slowModel: oss,
      slowEndpoint: slow.url,
      slowTtftMs: SLOW_TTFT_MS,
      ttftMs: TTFT_MS,
      flakyEndpoint: flaky.url,
      flakyFaults: { ...flaky.stats().byFault },
      contextLengthFailures: CONTEXT_LENGTH_FAILURES,
      invalidToolCallRate: INVALID_TOOL_CALL_RATE,
      primaryEndpoint: primary.url,
      fallbackEndpoint: fallback.url,
      primaryDownFor: { afterRequests: downAfter, untilFallbackRequests: upAfterFallback },
      fallbackFailing: { from: fallbackFailsFrom, until: fallbackFailsUntil },
      fallbackFaults: { ...fallback.stats().byFault },
      slowerRerun,
    };
    if (slowerRerun != null) {
      for (const r of cluster.replicas) {
        if (r.kind !== "orchestrator" && r.kind !== "expert") continue;
        const sim = r.sim as VllmSim;
        sim.update({ latency: { ttftMs: slowerRerun.ttftMs }, faults: { rates: {}, queue: [] } });
      }
      const again = await createRun({
        db,
        name: `${name}-slower`,
        benchmark: "frames",
        config: simRunConfig(),
        tasks: rows.slice(0, slowerRerun.tasks).map((r) => ({ externalId: r.id, input: r })),
        maxAttempts: 3,
      });
      await runToEnd(db, again.run.id);
    }
    await cluster.stop();
    cluster = null;
    return {
      dir,
      dbPath,
      db,
      runId: run.id,
      runName: name,
      tasks,
      facts,
      elapsedMs: performance.now() - t0,
      close() {
        closeDb(db);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await cluster?.stop().catch(() => {});
    closeDb(db);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
