// What a runner needs from the queue. Two implementations share these semantics: the
// database directly (DATABASE_URL, one machine or a libSQL server) and the Baton server
// over HTTP (compute nodes that must not open a DB file on a network filesystem).
import type { ClaimedTask, FailOutcome, RunnerInfo, TaskResult } from "../db/queue";
import type { RowBatch } from "../db/rows";
import type { TaskProgress } from "../db/schema";
import type { WaitingRun } from "../db/endpoints";

export type { ClaimedTask, FailOutcome, RunnerInfo, TaskResult, RowBatch, TaskProgress };

// state: healthy (gets calls) | draining (no new calls) | gone; absent means healthy
export type EndpointRow = { id: number; kind: string; name: string; baseUrl: string; enabled: boolean; state?: string };
export type { WaitingRun } from "../db/endpoints";
export type RunInfo = {
  id: number;
  name: string;
  benchmark: string;
  config: Record<string, unknown>;
  canceledAt: number | null;
};

export interface TaskQueue {
  registerRunner(runner: RunnerInfo): Promise<void>;
  setRunnerState(runnerId: string, state: "running" | "draining" | "stopped" | "crashed"): Promise<void>;
  // waitForEndpoints: skip runs whose models or retrieval have no healthy endpoint
  claim(opts: { runnerId: string; limit: number; leaseMs: number; runId?: number | null; waitForEndpoints?: boolean }): Promise<ClaimedTask[]>;
  // open runs that wait for an endpoint, and what for
  listWaiting(opts: { runId?: number | null }): Promise<WaitingRun[]>;
  heartbeat(opts: {
    runnerId: string;
    tokens: string[];
    leaseMs: number;
    progress?: Record<string, TaskProgress>;
  }): Promise<{ held: string[]; lost: string[] }>;
  complete(opts: { taskId: number; leaseToken: string; result: TaskResult }): Promise<boolean>;
  fail(opts: {
    taskId: number;
    leaseToken: string;
    errorClass: string;
    errorMessage?: string | null;
    retryable: boolean;
    result?: TaskResult | null;
  }): Promise<FailOutcome>;
  release(opts: { runnerId: string; tokens: string[] }): Promise<number>;
  // queued + running tasks of the run (or of every run not canceled): zero = nothing left
  countOpen(opts: { runId?: number | null }): Promise<{ queued: number; running: number }>;
  recordRows(rows: RowBatch): Promise<void>;
  listEndpoints(): Promise<EndpointRow[]>;
  getRun(runId: number): Promise<RunInfo | null>;
  close(): Promise<void>;
}
