// Shared rules for every outgoing HTTP call (vLLM, retrieval): capped attempts, a timeout per
// attempt, one overall deadline, exponential backoff with full jitter, and Retry-After.
// The point is that no call can wait without end: every wait is bounded by the deadline and
// ends at once when the caller aborts.

export type RetryPolicy = {
  // total HTTP tries, first one included
  attempts: number;
  perAttemptTimeoutMs: number;
  // the whole call, retries and backoff sleeps included, measured from its start
  deadlineMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
  // [0, 1) source for the jitter; tests pin it to make delays predictable
  random?: () => number;
};

export const DEFAULT_LLM_POLICY: RetryPolicy = {
  attempts: 5,
  perAttemptTimeoutMs: 300_000,
  deadlineMs: 900_000,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
};

export const DEFAULT_RETRIEVAL_POLICY: RetryPolicy = {
  attempts: 3,
  perAttemptTimeoutMs: 30_000,
  deadlineMs: 90_000,
  baseDelayMs: 250,
  maxDelayMs: 5_000,
};

/** Fills missing fields from `base` and rejects nonsense early, naming the field. */
export function resolvePolicy(partial: Partial<RetryPolicy> | undefined, base: RetryPolicy): RetryPolicy {
  const p = { ...base, ...(partial ?? {}) };
  for (const key of ["attempts", "perAttemptTimeoutMs", "deadlineMs", "baseDelayMs", "maxDelayMs"] as const) {
    const value = p[key];
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0)
      throw new Error(`retry policy: ${key} must be a non-negative number, got ${JSON.stringify(value)}`);
  }
  if (p.attempts < 1) throw new Error("retry policy: attempts must be at least 1");
  if (p.perAttemptTimeoutMs <= 0) throw new Error("retry policy: perAttemptTimeoutMs must be positive");
  return p;
}

/**
 * Full jitter (AWS architecture blog): sleep a uniform random time in [0, min(cap, base*2^n)).
 * Spreads a herd of retrying runners instead of synchronising them on the same instants.
 * `retry` is 1 for the sleep before the second try.
 */
export function backoffDelayMs(retry: number, policy: RetryPolicy): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.floor((policy.random ?? Math.random)() * ceiling);
}

/** Retry-After is either delta-seconds or an HTTP date. Returns ms to wait, or null. */
export function parseRetryAfter(value: string | null | undefined, nowMs: number = Date.now()): number | null {
  if (value == null) return null;
  const text = value.trim();
  if (text === "") return null;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - nowMs);
}

export type AbortCause = "aborted" | "deadline" | "timeout";

/**
 * The signal one attempt runs under: its own timeout, the call's deadline (whichever comes
 * first) and the caller's signal, with the cause kept so the failure can be classed.
 *
 * One controller and one timer, both released by dispose() as soon as the attempt ends.
 * AbortSignal.any over AbortSignal.timeout(...) would do the same, but those timers and the
 * links between signals live until the timeouts fire (minutes), which at hundreds of calls
 * per second piles up work for the GC and measurably cut throughput (bench/client-overhead.ts).
 */
export class AttemptScope {
  private readonly controller = new AbortController();
  private readonly timer: ReturnType<typeof setTimeout>;
  private readonly caller: AbortSignal | null;
  private readonly onCallerAbort = () => this.abort("aborted");
  cause: AbortCause | null = null;

  constructor(opts: { caller?: AbortSignal | null; deadlineAt: number; perAttemptTimeoutMs: number }) {
    this.caller = opts.caller ?? null;
    const remaining = opts.deadlineAt - Date.now();
    const byTimeout = opts.perAttemptTimeoutMs < remaining;
    this.timer = setTimeout(() => this.abort(byTimeout ? "timeout" : "deadline"), Math.max(0, byTimeout ? opts.perAttemptTimeoutMs : remaining));
    if (this.caller?.aborted) this.abort("aborted");
    else this.caller?.addEventListener("abort", this.onCallerAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  private abort(cause: AbortCause): void {
    if (this.cause) return;
    this.cause = cause;
    this.controller.abort(new DOMException(`attempt ended: ${cause}`, cause === "timeout" ? "TimeoutError" : "AbortError"));
  }

  /** Which signal ended the attempt. The caller's abort wins any tie. */
  causeNow(): AbortCause | null {
    return this.caller?.aborted ? "aborted" : this.cause;
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.caller?.removeEventListener("abort", this.onCallerAbort);
  }
}

/** Sleeps `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleepUnlessAborted(ms: number, signal?: AbortSignal | null): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * How long to wait before the next try, or null when waiting would cross the deadline
 * (then the caller stops now rather than sleep only to give up).
 */
export function nextDelayMs(opts: {
  retry: number;
  policy: RetryPolicy;
  retryAfterMs: number | null;
  deadlineAt: number;
  nowMs?: number;
}): number | null {
  const now = opts.nowMs ?? Date.now();
  // The server's Retry-After is a floor: retrying earlier only earns another 429.
  const delay = Math.max(backoffDelayMs(opts.retry, opts.policy), opts.retryAfterMs ?? 0);
  if (now + delay >= opts.deadlineAt) return null;
  return delay;
}

/** Node/Bun fetch error → connection class text; keeps the message short and SQL-free. */
export function describeFetchError(err: unknown): string {
  const e = err as any;
  const code = e?.code ?? e?.cause?.code;
  const msg = String(e?.message ?? e);
  return code && !msg.includes(code) ? `${code}: ${msg}` : msg;
}

/**
 * A response body as text and, when it is JSON, parsed (else null): Baton's own error shape
 * and a proxy's HTML error page both have to come back as something the caller can report.
 */
export async function readBody(res: Response): Promise<{ text: string; json: any }> {
  const text = await res.text();
  try {
    return { text, json: text ? JSON.parse(text) : null };
  } catch {
    return { text, json: null };
  }
}
