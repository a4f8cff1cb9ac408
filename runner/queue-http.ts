// TaskQueue over the Baton server's /v1/queue routes, for compute nodes that must not open
// the database file. Every request has its own timeout; connection errors, timeouts and
// 5xx are retried with backoff. Re-sending is safe: the server answers a repeated
// complete/fail whose first copy landed with its original outcome (see functions/queue.ts).
// The wire is snake_case; this file renames to and from the camelCase TaskQueue types.
import { camelKeys, snakeKeys } from "../db/keys";
import { incompatibility, VERSION } from "../version";
import type { ClaimedTask, EndpointRow, FailOutcome, RunInfo, RunnerInfo, RowBatch, TaskQueue, WaitingRun } from "./task-queue";
import { readBody } from "./http-policy";

export type HttpQueueOptions = {
  baseUrl: string;
  token?: string | null;
  // per request; a claim or heartbeat is one short statement on the server
  timeoutMs?: number;
  // tries per request, the first included
  attempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
};

/** A non-retryable answer from the server (4xx), carrying the error shape's code. */
export class QueueHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A row batch as POST /v1/queue/rows takes it (snake_case, each row's detail as recorded). */
export function rowBatchToWire(rows: RowBatch): Record<string, object[] | undefined> {
  return {
    tool_calls: rows.toolCalls?.map(snakeKeys),
    components: rows.components?.map(snakeKeys),
    llm_calls: rows.llmCalls?.map(snakeKeys),
    transcripts: rows.transcripts?.map(snakeKeys),
  };
}

function retryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export class HttpQueue implements TaskQueue {
  private readonly baseUrl: string;
  private readonly token: string | null;
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  // the server's version, checked on its first answer
  private serverChecked = false;

  constructor(options: HttpQueueOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.token = options.token ?? null;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.attempts = Math.max(1, options.attempts ?? 5);
    this.baseDelayMs = options.baseDelayMs ?? 250;
    this.maxDelayMs = options.maxDelayMs ?? 5_000;
  }

  private async request<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<T> {
    // the server refuses a runner it cannot work with (409 version.incompatible)
    const headers: Record<string, string> = { accept: "application/json", "x-baton-version": VERSION };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      try {
        const res = await fetch(this.baseUrl + path, {
          method,
          headers,
          body: payload,
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        this.checkServerVersion(res);
        const { json } = await readBody(res);
        if (res.ok) return json as T;
        const code = json?.error?.code ?? `http.${res.status}`;
        const message = json?.error?.message ?? `${method} ${path}: HTTP ${res.status}`;
        const err = new QueueHttpError(res.status, code, `${method} ${path}: ${message}`);
        if (!retryableStatus(res.status)) throw err;
        lastError = err;
      } catch (err) {
        if (err instanceof QueueHttpError && !retryableStatus(err.status)) throw err;
        lastError = err;
      }
      if (attempt < this.attempts) {
        // full jitter: runners that lost the server together do not return together
        const cap = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
        await Bun.sleep(Math.random() * cap);
      }
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  /** A server too old (or too new) for this runner is an error the runner stops on, not a retry. */
  private checkServerVersion(res: Response): void {
    if (this.serverChecked) return;
    const server = res.headers.get("x-baton-version");
    // a server from before versions were exchanged says nothing; its 4xx will say the rest
    if (server == null) return;
    const why = incompatibility({ runner: VERSION, server });
    if (why) throw new QueueHttpError(409, "version.incompatible", why);
    this.serverChecked = true;
  }

  async registerRunner(runner: RunnerInfo): Promise<void> {
    await this.request("POST", "/v1/queue/runners", snakeKeys(runner));
  }

  async setRunnerState(runnerId: string, state: "running" | "draining" | "stopped" | "crashed"): Promise<void> {
    await this.request("POST", `/v1/queue/runners/${encodeURIComponent(runnerId)}/state`, { state });
  }

  async claim(opts: { runnerId: string; limit: number; leaseMs: number; runId?: number | null; waitForEndpoints?: boolean }): Promise<ClaimedTask[]> {
    // A claim whose reply is lost leaves leases nobody works on; they expire and are claimed
    // again, costing an attempt but never a task.
    const res = await this.request<{ tasks: object[] }>("POST", "/v1/queue/claim", snakeKeys(opts));
    return res.tasks.map((t) => camelKeys<ClaimedTask>(t));
  }

  heartbeat(opts: Parameters<TaskQueue["heartbeat"]>[0]): Promise<{ held: string[]; lost: string[] }> {
    return this.request("POST", "/v1/queue/heartbeat", snakeKeys(opts));
  }

  async complete(opts: Parameters<TaskQueue["complete"]>[0]): Promise<boolean> {
    const res = await this.request<{ ok: boolean }>("POST", "/v1/queue/complete", snakeKeys(opts));
    return res.ok;
  }

  /** Not in TaskQueue (yet): many completions in one request; re-sending is safe. */
  async completeMany(items: Parameters<TaskQueue["complete"]>[0][]): Promise<boolean[]> {
    if (items.length === 0) return [];
    const res = await this.request<{ results: { ok: boolean }[] }>("POST", "/v1/queue/complete-many", { items: items.map(snakeKeys) });
    return res.results.map((r) => r.ok);
  }

  async fail(opts: Parameters<TaskQueue["fail"]>[0]): Promise<FailOutcome> {
    const res = await this.request<{ outcome: FailOutcome }>("POST", "/v1/queue/fail", snakeKeys(opts));
    return res.outcome;
  }

  async release(opts: { runnerId: string; tokens: string[] }): Promise<number> {
    const res = await this.request<{ released: number }>("POST", "/v1/queue/release", snakeKeys(opts));
    return res.released;
  }

  countOpen(opts: { runId?: number | null }): Promise<{ queued: number; running: number }> {
    return this.request("GET", opts.runId != null ? `/v1/queue/open?run_id=${opts.runId}` : "/v1/queue/open");
  }

  async recordRows(rows: RowBatch): Promise<void> {
    await this.request("POST", "/v1/queue/rows", rowBatchToWire(rows));
  }

  listWaiting(opts: { runId?: number | null }): Promise<WaitingRun[]> {
    const path = opts.runId != null ? `/v1/queue/waiting?run_id=${opts.runId}` : "/v1/queue/waiting";
    return this.request<{ runs: object[] }>("GET", path).then((r) => r.runs.map((w) => camelKeys<WaitingRun>(w)));
  }

  async listEndpoints(): Promise<EndpointRow[]> {
    // The runners' own route: full URLs (the public GET /v1/endpoints hides credentials).
    const res = await this.request<{ endpoints: object[] }>("GET", "/v1/queue/endpoints");
    return res.endpoints.map((e) => camelKeys<EndpointRow>(e));
  }

  async getRun(runId: number): Promise<RunInfo | null> {
    try {
      const r = await this.request<any>("GET", `/v1/runs/${runId}`);
      return { id: r.id, name: r.name, benchmark: r.benchmark, config: r.config, canceledAt: r.canceled_at ?? null };
    } catch (err) {
      if (err instanceof QueueHttpError && err.status === 404) return null;
      throw err;
    }
  }

  async close(): Promise<void> {}
}
