// The worker: claims tasks, runs the protocol on up to `concurrency` of them at once, keeps
// their leases alive, and writes each outcome through the fenced queue operations.
// - A lease lost (expired and re-claimed, finished elsewhere, run canceled) aborts that
//   task's calls at once through its AbortController; its result is never written.
// - Shutdown (signal, or the Slurm job's end approaching): stop claiming, let in-flight
//   tasks finish within graceMs, release the rest without charging an attempt.
// - It never claims a task it cannot finish before the job's end time.
import { hostname } from "node:os";
import { parseToolOrchestraConfig } from "../db/endpoints";
import { CompletionBatcher } from "./completion-batcher";
import { isLockError, isStorageError, sqliteCode } from "../db/safe-client";
import { loadRunConfig, type RunConfig } from "./config";
import { EndpointRegistry, type StaticEndpoints } from "./endpoint-registry";
import { runProtocol, type ProtocolDeps, type TaskOutcome } from "./protocol";
import { Recorder } from "./recorder";
import { ReplicaPool } from "./replicas";
import type { SlurmContext } from "./slurm";
import { QueueHttpError } from "./queue-http";
import type { ClaimedTask, TaskProgress, TaskQueue } from "./task-queue";
import { createTokenizer } from "./tokenizer";
import { describeNeed } from "./launch/needs";
import { VERSION } from "../version";

const REGISTRY_FRESH_MS = 2_000;

export type RunnerOptions = {
  queue: TaskQueue;
  concurrency?: number;
  runId?: number | null;
  runnerId?: string;
  leaseMs?: number;
  heartbeatMs?: number;
  graceMs?: number;
  pollMs?: number;
  exitWhenIdle?: boolean;
  // with exitWhenIdle the runner stops once its run (or every run not canceled) has no
  // queued and no running task; idleGraceMs optionally bounds how long it keeps polling
  // without claiming anything while others still hold or wait on tasks (unbounded if null)
  idleGraceMs?: number | null;
  // what one task may take; with the job's end time it decides whether to claim at all
  taskBudgetMs?: number | null;
  endsAt?: number | null;
  slurm?: SlurmContext | null;
  progressMs?: number;
  endpointRefreshMs?: number;
  log?: (line: string) => void;
  // test seam: replaces parts of the protocol's dependencies (e.g. a code runner)
  protocolDeps?: Partial<ProtocolDeps>;
};

export class LeaseLost extends Error {
  constructor() {
    super("lease lost");
    this.name = "LeaseLost";
  }
}
export class ShuttingDown extends Error {
  constructor() {
    super("runner shutting down");
    this.name = "ShuttingDown";
  }
}

// leaseUntil: local time by which the lease surely ends unless renewed (claim or last
// heartbeat that held it, plus the lease length)
type Active = { task: ClaimedTask; ctrl: AbortController; progress: TaskProgress; startedAt: number; leaseUntil: number; slotFreed?: boolean };

type RunContext = { config: RunConfig; deps: ProtocolDeps; registry: EndpointRegistry };

export type RunnerStats = {
  claimed: number;
  succeeded: number;
  failed: number;
  retried: number;
  lost: number;
  released: number;
};

// Safety margin between a task's expected end and the job's end: the write must land too.
const END_MARGIN_MS = 5_000;
const WAITING_LOG_MS = 60_000;

export function staticEndpointsFrom(inline: unknown): StaticEndpoints {
  if (!inline) return {};
  const { endpoints } = parseToolOrchestraConfig(inline);
  const out: Required<StaticEndpoints> = { models: {}, retrieval: {} };
  for (const e of endpoints) {
    const map = e.kind === "retrieval" ? out.retrieval : out.models;
    (map[e.name] ??= []).push(e.baseUrl);
  }
  return out;
}

// claim refill: with fewer than this many slots free, wait REFILL_WAIT_MS for more first
const REFILL_BATCH = 8;
const REFILL_WAIT_MS = 2;

export class Runner {
  readonly id: string;
  readonly stats: RunnerStats = { claimed: 0, succeeded: 0, failed: 0, retried: 0, lost: 0, released: 0 };
  private readonly q: TaskQueue;
  private readonly o: Required<Omit<RunnerOptions, "runId" | "taskBudgetMs" | "endsAt" | "slurm" | "protocolDeps" | "runnerId" | "idleGraceMs">> &
    Pick<RunnerOptions, "runId" | "taskBudgetMs" | "endsAt" | "slurm" | "protocolDeps"> & { idleGraceMs: number | null };
  // leases held: tasks running their protocol, and finished ones whose result is being written
  private readonly active = new Map<string, Active>();
  // tasks running their protocol: what concurrency limits. A finished task's writes (rows,
  // completion) wait a few ms to share a statement with others; its slot is refilled meanwhile.
  private running = 0;
  private readonly runs = new Map<number, Promise<RunContext>>();
  private readonly durations: number[] = [];
  private readonly recorder: Recorder;
  private stopping: string | null = null;
  private wake: (() => void) | null = null;
  private startedAt = Date.now();
  private finished: Promise<void>[] = [];
  // completions that land within a few ms share one statement (runner/completion-batcher.ts)
  private readonly completions: CompletionBatcher;

  constructor(options: RunnerOptions) {
    this.q = options.queue;
    this.completions = new CompletionBatcher(options.queue);
    this.id = options.runnerId ?? `${hostname()}:${process.pid}:${crypto.randomUUID().slice(0, 8)}`;
    this.o = {
      queue: options.queue,
      concurrency: Math.max(1, options.concurrency ?? 4),
      runId: options.runId ?? null,
      leaseMs: options.leaseMs ?? 60_000,
      heartbeatMs: options.heartbeatMs ?? Math.min(5_000, Math.max(50, Math.floor((options.leaseMs ?? 60_000) / 4))),
      graceMs: options.graceMs ?? 30_000,
      pollMs: options.pollMs ?? 1_000,
      exitWhenIdle: options.exitWhenIdle ?? false,
      idleGraceMs: options.idleGraceMs ?? null,
      taskBudgetMs: options.taskBudgetMs ?? null,
      endsAt: options.endsAt ?? null,
      slurm: options.slurm ?? null,
      progressMs: options.progressMs ?? 10_000,
      // short enough that a draining endpoint stops getting calls well within its grace period
      endpointRefreshMs: options.endpointRefreshMs ?? 5_000,
      log: options.log ?? ((l) => console.log(l)),
      protocolDeps: options.protocolDeps,
    };
    this.recorder = new Recorder(this.q, { log: this.o.log });
  }

  private log(line: string) {
    this.o.log(`[runner ${this.id}] ${line}`);
  }

  /** Asks the runner to stop: no more claims, in-flight tasks get graceMs to finish. */
  stop(reason: string): void {
    if (this.stopping) return;
    this.stopping = reason;
    this.log(`stopping (${reason}): ${this.active.size} task(s) in flight, grace ${this.o.graceMs} ms`);
    this.wake?.();
  }

  get inFlight(): number {
    return this.active.size;
  }

  /** Expected duration of one task: the flag, else the slowest observed so far. */
  private taskEstimateMs(): number {
    if (this.o.taskBudgetMs != null) return this.o.taskBudgetMs;
    return this.durations.length > 0 ? Math.max(...this.durations.slice(-50)) : 0;
  }

  private canFinishBeforeEnd(): boolean {
    if (this.o.endsAt == null) return true;
    return Date.now() + this.taskEstimateMs() + END_MARGIN_MS < this.o.endsAt;
  }

  private async sleep(ms: number) {
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = null;
        resolve();
      };
    });
  }

  /** Runs until stopped (or idle with exitWhenIdle). Resolves after the drain. */
  async run(): Promise<void> {
    this.startedAt = Date.now();
    await this.q.registerRunner({
      id: this.id,
      host: hostname(),
      pid: process.pid,
      slurmJobId: this.o.slurm?.jobId ?? null,
      slurmArrayJobId: this.o.slurm?.arrayJobId ?? null,
      slurmArrayTaskId: this.o.slurm?.arrayTaskId ?? null,
      runId: this.o.runId ?? null,
      concurrency: this.o.concurrency,
      version: VERSION,
      endsAt: this.o.endsAt ?? null,
    });
    this.log(
      `started: host ${hostname()} pid ${process.pid}${this.o.slurm ? ` slurm job ${this.o.slurm.jobId}` : ""}, concurrency ${this.o.concurrency}` +
        `${this.o.runId != null ? `, run ${this.o.runId}` : ""}${this.o.endsAt ? `, job ends ${new Date(this.o.endsAt).toISOString()}` : ""}` +
        heapSizing(),
    );
    const hb = setInterval(() => void this.heartbeat(), this.o.heartbeatMs);
    const pr = setInterval(() => this.logProgress(), this.o.progressMs);
    let endTimer: ReturnType<typeof setTimeout> | null = null;
    if (this.o.endsAt != null) {
      // Start draining early enough that the grace period ends before Slurm's SIGKILL.
      const at = this.o.endsAt - this.o.graceMs - END_MARGIN_MS;
      endTimer = setTimeout(() => this.stop("job end time approaching"), Math.max(0, at - Date.now()));
    }
    try {
      await this.claimLoop();
      await this.drain();
    } finally {
      clearInterval(hb);
      clearInterval(pr);
      if (endTimer) clearTimeout(endTimer);
      await this.recorder.close();
      for (const ctx of this.runs.values()) void ctx.then((c) => c.registry.stop()).catch(() => {});
    }
    await this.q.setRunnerState(this.id, "stopped").catch((err) => this.log(`could not set state stopped: ${err.message}`));
    this.logProgress();
    // this process's own CPU (sandboxed code runs in child processes and is not in it), so a
    // benchmark can tell the runner's cost from the code it ran
    const cpu = process.cpuUsage();
    this.log(`stopped (${this.stopping ?? "done"}); own cpu ${Math.round((cpu.user + cpu.system) / 1000)} ms`);
  }

  private async claimLoop(): Promise<void> {
    let idleSince: number | null = null;
    let errors = 0;
    while (!this.stopping) {
      let free = this.freeSlots();
      if (free > 0 && free < REFILL_BATCH && this.running > 0) {
        // a slot just freed while others are busy: give the tasks finishing in the same few
        // milliseconds their slots too, and claim them in one statement instead of one each
        await Bun.sleep(REFILL_WAIT_MS);
        free = this.freeSlots();
      }
      if (free > 0) {
        if (!this.canFinishBeforeEnd()) {
          this.stop(`job ends at ${new Date(this.o.endsAt!).toISOString()}: no time for another task (estimate ${this.taskEstimateMs()} ms)`);
          break;
        }
        let claimed: ClaimedTask[] = [];
        try {
          // Runs whose models or retrieval have no healthy endpoint are skipped: they wait
          // with no attempt spent (see logWaiting for what they wait for).
          claimed = await this.q.claim({ runnerId: this.id, limit: free, leaseMs: this.o.leaseMs, runId: this.o.runId, waitForEndpoints: true });
          errors = 0;
        } catch (err) {
          if (errors++ % 10 === 0) this.log(`claim failed (will retry): ${(err as Error).message}`);
        }
        if (this.stopping) {
          // A signal arrived while the claim was on the wire: give those back untouched.
          if (claimed.length > 0) await this.q.release({ runnerId: this.id, tokens: claimed.map((t) => t.leaseToken) });
          break;
        }
        for (const t of claimed) this.start(t);
        if (claimed.length > 0) {
          idleSince = null;
          continue;
        }
        await this.logWaiting();
      }
      if (this.o.exitWhenIdle && this.active.size === 0 && free > 0) {
        idleSince ??= Date.now();
        // An empty claim is not "done": tasks in backoff, and tasks held by a runner that
        // may have died (their lease expires, then they are claimable here), still need a
        // runner. Only a run with nothing queued and nothing running is finished.
        let open: { queued: number; running: number } | null = null;
        try {
          open = await this.q.countOpen({ runId: this.o.runId });
        } catch (err) {
          if (errors++ % 10 === 0) this.log(`counting open tasks failed (will retry): ${(err as Error).message}`);
        }
        if (open && open.queued + open.running === 0) {
          this.stop("idle: nothing left to do");
          break;
        }
        if (this.o.idleGraceMs != null && Date.now() - idleSince >= this.o.idleGraceMs) {
          const left = open ? `${open.queued} queued and ${open.running} running elsewhere` : "open tasks unknown";
          this.stop(`idle for ${this.o.idleGraceMs} ms (--idle-grace-ms) with ${left}`);
          break;
        }
      } else if (this.active.size > 0) idleSince = null;
      await this.sleep(this.o.pollMs);
    }
  }

  private lastWaitingLog = 0;

  /** With nothing claimable, says once a minute (not per poll) which runs wait for what. */
  private async logWaiting(): Promise<void> {
    if (Date.now() - this.lastWaitingLog < WAITING_LOG_MS) return;
    this.lastWaitingLog = Date.now();
    try {
      for (const w of await this.q.listWaiting({ runId: this.o.runId }))
        this.log(`run ${w.runId} (${w.runName}) waits for endpoints: ${w.needs.map(describeNeed).join("; ")}`);
    } catch (err) {
      this.log(`could not read which runs wait for endpoints: ${(err as Error).message}`);
    }
  }

  private async drain(): Promise<void> {
    if (this.active.size === 0) return;
    await this.q.setRunnerState(this.id, "draining").catch(() => {});
    const deadline = Date.now() + this.o.graceMs;
    while (this.active.size > 0 && Date.now() < deadline) await this.sleep(Math.min(100, deadline - Date.now()));
    if (this.active.size > 0) {
      this.log(`grace period over: releasing ${this.active.size} task(s) without charging an attempt`);
      for (const a of this.active.values()) a.ctrl.abort(new ShuttingDown());
    }
    await Promise.allSettled(this.finished);
  }

  private start(task: ClaimedTask): void {
    this.stats.claimed++;
    const now = Date.now();
    const entry: Active = { task, ctrl: new AbortController(), progress: { step: 0, since: now }, startedAt: now, leaseUntil: now + this.o.leaseMs };
    this.active.set(task.leaseToken, entry);
    this.running++;
    const p = this.execute(entry)
      .catch((err) => this.log(`task ${task.id}: unexpected error: ${(err as Error)?.stack ?? err}`))
      .finally(() => {
        this.freeSlot(entry);
        this.active.delete(task.leaseToken);
        this.finished = this.finished.filter((f) => f !== p);
        this.wake?.();
      });
    this.finished.push(p);
  }

  /**
   * Slots for new tasks: concurrency minus the tasks running their protocol; and, should
   * finishing writes pile up (a queue that takes claims but not results), never more than
   * twice the concurrency in leases held.
   */
  private freeSlots(): number {
    return Math.min(this.o.concurrency - this.running, 2 * this.o.concurrency - this.active.size);
  }

  /** The task's protocol is over (its writes may still be under way): its slot can be refilled. */
  private freeSlot(entry: Active): void {
    if (entry.slotFreed) return;
    entry.slotFreed = true;
    this.running--;
    this.wake?.();
  }

  private runContext(runId: number): Promise<RunContext> {
    let ctx = this.runs.get(runId);
    if (!ctx) {
      ctx = (async () => {
        const run = await this.q.getRun(runId);
        if (!run) throw new Error(`run ${runId} not found`);
        const config = loadRunConfig({ benchmark: run.benchmark, config: run.config });
        const registry = new EndpointRegistry({
          source: () => this.q.listEndpoints(),
          refreshMs: this.o.endpointRefreshMs,
          fallback: staticEndpointsFrom(config.endpoints),
          pool: { coolDownMs: 2_000 },
          onError: (err) => this.log(`endpoint refresh failed: ${(err as Error)?.message ?? err}`),
        });
        await registry.start();
        const judgePool = config.judge.endpoint ? new ReplicaPool("judge", [config.judge.endpoint]) : null;
        const tokenizer = createTokenizer({
          mode: config.tokenizer.mode,
          path: config.tokenizer.path,
          serverUrl: () => registry.modelPool(config.orchestrator.model).urls()[0] ?? null,
          model: config.orchestrator.model,
          log: (l) => this.log(l),
        });
        const deps: ProtocolDeps = {
          pool: (model) => registry.modelPool(model),
          retrievalBackends: (names) => names.map((name) => ({ name, pool: registry.retrievalPool(name) })),
          judgePool: () => judgePool ?? registry.modelPool(config.judge.model),
          tokenizer,
          ...this.o.protocolDeps,
        };
        return { config, deps, registry };
      })();
      // A failed load is retried by the next task instead of poisoning the run.
      ctx.catch(() => this.runs.delete(runId));
      this.runs.set(runId, ctx);
    }
    return ctx;
  }

  private async execute(entry: Active): Promise<void> {
    const { task, ctrl } = entry;
    const label = `task ${task.id} (${task.externalId}) attempt ${task.attempt}`;
    let outcome: TaskOutcome;
    try {
      const { config, deps, registry } = await this.runContext(task.runId);
      // A run claimed because its endpoints just registered: see them before the first call.
      await registry.refreshIfOlderThan(REGISTRY_FRESH_MS);
      outcome = await runProtocol({
        task,
        config,
        deps,
        recorder: this.recorder.forTask({ runId: task.runId, taskId: task.id, attempt: task.attempt }),
        signal: ctrl.signal,
        onProgress: (p) => (entry.progress = p),
      });
    } catch (err) {
      if (ctrl.signal.aborted) outcome = { kind: "aborted", reason: ctrl.signal.reason };
      else {
        // A bug or a broken run config: charge the attempt but let another runner try.
        this.log(`${label}: runner_error: ${(err as Error)?.stack ?? err}`);
        outcome = { kind: "failed", errorClass: "runner_error", message: String((err as Error)?.message ?? err), retryable: true };
      }
    }
    const secs = ((Date.now() - entry.startedAt) / 1000).toFixed(1);
    this.freeSlot(entry);
    if (outcome.kind === "aborted") {
      if (outcome.reason instanceof ShuttingDown) {
        const n = await this.persist(entry, "release", () => this.q.release({ runnerId: this.id, tokens: [task.leaseToken] })).catch(() => 0);
        this.stats.released += n;
        this.log(`${label}: released (shutdown) after ${secs}s`);
      } else {
        this.stats.lost++;
        this.log(`${label}: lease lost after ${secs}s; work aborted, nothing written`);
      }
      return;
    }
    // Rows first, so a succeeded task always has its rows (if they cannot be written before
    // the lease ends, they stay buffered and the result still goes in).
    await this.persist(entry, "writing its rows", () => this.recorder.flushSoon()).catch(() => {});
    try {
      await this.finish(entry, outcome, label, secs);
    } catch (err) {
      this.stats.lost++;
      this.log(`${label}: result NOT recorded (${describeQueueError(err)}); the lease ends and the task will run again`);
    }
  }

  private async finish(entry: Active, outcome: Exclude<TaskOutcome, { kind: "aborted" }>, label: string, secs: string): Promise<void> {
    const { task } = entry;
    if (outcome.kind === "succeeded") {
      const result = outcome.result;
      const ok = await this.persist(entry, "completion", () => this.completions.complete({ taskId: task.id, leaseToken: task.leaseToken, result }));
      if (ok) {
        this.stats.succeeded++;
        this.durations.push(Date.now() - entry.startedAt);
        if (this.durations.length > 200) this.durations.shift();
        const r = outcome.result as any;
        this.log(`${label}: succeeded in ${secs}s, ${r.steps} steps, correct=${r.correct} (${r.grade})`);
      } else {
        this.stats.lost++;
        this.log(`${label}: lease lost before completion; result discarded`);
      }
      return;
    }
    const res = await this.persist(entry, "failure", () =>
      this.q.fail({
        taskId: task.id,
        leaseToken: task.leaseToken,
        errorClass: outcome.errorClass,
        errorMessage: outcome.message,
        retryable: outcome.retryable,
        result: outcome.result ?? null,
      }),
    );
    if (res === "retry") this.stats.retried++;
    else if (res === "failed") this.stats.failed++;
    else this.stats.lost++;
    this.log(`${label}: ${res === "retry" ? "requeued" : res === "failed" ? "failed" : "lost"} after ${secs}s: ${outcome.errorClass}: ${outcome.message.slice(0, 300)}`);
  }

  /**
   * A finishing write (rows, completion, failure, release) that fails for a transient reason
   * (database locked or full, server unreachable) is retried until shortly before the task's
   * lease ends: dropping it would lose a finished result. Past that point another runner may
   * hold the task and the fence would refuse the write anyway.
   */
  private async persist<T>(entry: Active, what: string, op: () => Promise<T>): Promise<T> {
    const margin = Math.max(200, Math.min(5_000, this.o.leaseMs / 10));
    for (let attempt = 0; ; attempt++) {
      try {
        return await op();
      } catch (err) {
        const delay = Math.min(2_000, 50 * 2 ** Math.min(attempt, 6));
        if (!isTransientQueueError(err) || Date.now() + delay >= entry.leaseUntil - margin) throw err;
        if (attempt % 10 === 0)
          this.log(`task ${entry.task.id}: ${what} failed (${describeQueueError(err)}); retrying until its lease ends`);
        await Bun.sleep(delay);
      }
    }
  }

  private hbBusy = false;
  private hbFailures = 0;

  private async heartbeat(): Promise<void> {
    if (this.hbBusy) return;
    this.hbBusy = true;
    try {
      const entries = [...this.active.values()];
      const progress: Record<string, TaskProgress> = {};
      for (const a of entries) progress[a.task.leaseToken] = a.progress;
      const sentAt = Date.now();
      const { lost } = await this.q.heartbeat({
        runnerId: this.id,
        tokens: entries.map((a) => a.task.leaseToken),
        leaseMs: this.o.leaseMs,
        progress,
      });
      this.hbFailures = 0;
      const lostSet = new Set(lost);
      for (const a of entries) if (!lostSet.has(a.task.leaseToken)) a.leaseUntil = sentAt + this.o.leaseMs;
      for (const token of lost) {
        const a = this.active.get(token);
        if (a && !a.ctrl.signal.aborted) {
          this.log(`task ${a.task.id}: lease lost (expired, canceled or finished elsewhere): aborting its calls`);
          a.ctrl.abort(new LeaseLost());
        }
      }
    } catch (err) {
      if (this.hbFailures++ % 5 === 0) this.log(`heartbeat failed (will retry): ${(err as Error).message}`);
    } finally {
      this.hbBusy = false;
    }
  }

  private logProgress(): void {
    const s = this.stats;
    const mins = Math.max(1e-9, (Date.now() - this.startedAt) / 60_000);
    this.log(
      `progress: ${this.active.size} in flight; claimed ${s.claimed}, succeeded ${s.succeeded}, failed ${s.failed}, ` +
        `requeued ${s.retried}, lost ${s.lost}, released ${s.released}; ${(s.succeeded / mins).toFixed(1)} tasks/min`,
    );
  }
}

/**
 * Worth retrying a finishing write: the database was locked, full or failing I/O, or the
 * server did not answer or answered 5xx/408/429. A refusal (4xx) or a SQL error is not.
 */
export function isTransientQueueError(err: unknown): boolean {
  if (err instanceof QueueHttpError) return err.status === 408 || err.status === 429 || err.status >= 500;
  if (sqliteCode(err)) return isLockError(err) || isStorageError(err);
  if (isLockError(err) || isStorageError(err)) return true;
  // fetch failures (connection refused/reset, timeouts) and a client closed under us
  const name = (err as Error)?.name ?? "";
  return name === "TimeoutError" || name === "AbortError" || (err as any)?.code === "CLIENT_CLOSED" || err instanceof TypeError;
}

function describeQueueError(err: unknown): string {
  const code = sqliteCode(err);
  const msg = String((err as any)?.cause?.message ?? (err as Error)?.message ?? err).split("\n")[0].slice(0, 200);
  return code && !msg.includes(code) ? `${code}: ${msg}` : msg;
}

/** How JavaScriptCore sizes this process's heap, when told (runner/sbatch/baton-runner.sbatch sets it). */
function heapSizing(): string {
  const bytes = Number(process.env.BUN_JSC_forceRAMSize);
  return bytes > 0 ? `, heap sized as for ${Math.round(bytes / 2 ** 20)} MiB of RAM (BUN_JSC_forceRAMSize)` : "";
}
