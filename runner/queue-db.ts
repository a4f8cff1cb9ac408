// TaskQueue straight on the database (one machine on a file DB, or a libSQL server).
import { eq } from "drizzle-orm";
import type { Db } from "../db/client";
import { closeDb } from "../db/client";
import {
  countOpenTasks,
  completeTasks,
  heartbeatLeases,
  registerRunner,
  releaseTasks,
  setRunnerState,
  type Backoff,
} from "../db/queue";
import { claimReadyTasks, listEndpoints, listWaitingRuns } from "../db/endpoints";
import { recordRows } from "../db/rows";
import { completeIdempotent, failIdempotent } from "../db/queue-resend";
import { runs } from "../db/schema";
import type { ClaimedTask, EndpointRow, FailOutcome, RunInfo, RunnerInfo, RowBatch, TaskQueue, WaitingRun } from "./task-queue";

export class DbQueue implements TaskQueue {
  constructor(
    readonly db: Db,
    private readonly options: { backoff?: Backoff; closeDbOnClose?: boolean } = {},
  ) {}

  registerRunner(runner: RunnerInfo): Promise<void> {
    return registerRunner({ db: this.db, runner });
  }

  setRunnerState(runnerId: string, state: "running" | "draining" | "stopped" | "crashed"): Promise<void> {
    return setRunnerState({ db: this.db, runnerId, state });
  }

  claim(opts: { runnerId: string; limit: number; leaseMs: number; runId?: number | null; waitForEndpoints?: boolean }): Promise<ClaimedTask[]> {
    return claimReadyTasks({ db: this.db, ...opts });
  }

  listWaiting(opts: { runId?: number | null }): Promise<WaitingRun[]> {
    return listWaitingRuns({ db: this.db, runId: opts.runId });
  }

  heartbeat(opts: Parameters<TaskQueue["heartbeat"]>[0]) {
    return heartbeatLeases({ db: this.db, ...opts });
  }

  // A re-sent completion whose first try landed although its answer did not (a libSQL server
  // over HTTP) learns so from the attempt history instead of reporting the lease lost.
  async complete(opts: Parameters<TaskQueue["complete"]>[0]): Promise<boolean> {
    return (await completeIdempotent({ db: this.db, ...opts })).ok;
  }

  /** Not in TaskQueue (yet): many completions in one statement, each fenced. */
  completeMany(items: Parameters<TaskQueue["complete"]>[0][]): Promise<boolean[]> {
    return completeTasks({ db: this.db, items });
  }

  async fail(opts: Parameters<TaskQueue["fail"]>[0]): Promise<FailOutcome> {
    return (await failIdempotent({ db: this.db, ...opts, backoff: this.options.backoff })).outcome;
  }


  release(opts: { runnerId: string; tokens: string[] }): Promise<number> {
    return releaseTasks({ db: this.db, ...opts });
  }

  countOpen(opts: { runId?: number | null }): Promise<{ queued: number; running: number }> {
    return countOpenTasks({ db: this.db, runId: opts.runId });
  }

  async recordRows(rows: RowBatch): Promise<void> {
    await recordRows({ db: this.db, rows });
  }

  async listEndpoints(): Promise<EndpointRow[]> {
    const rows = await listEndpoints({ db: this.db });
    return rows.sort((a, b) => a.id - b.id).map((e) => ({ id: e.id, kind: e.kind, name: e.name, baseUrl: e.baseUrl, enabled: e.enabled, state: e.state }));
  }

  async getRun(runId: number): Promise<RunInfo | null> {
    const [run] = await this.db
      .select({
        id: runs.id,
        name: runs.name,
        benchmark: runs.benchmark,
        config: runs.config,
        canceledAt: runs.canceledAt,
      })
      .from(runs)
      .where(eq(runs.id, runId))
      .limit(1);
    return run ?? null;
  }

  async close(): Promise<void> {
    if (this.options.closeDbOnClose) closeDb(this.db);
  }
}
