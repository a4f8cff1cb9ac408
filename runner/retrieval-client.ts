// Dense-retrieval calls that always come back: bounded tries per backend, then the fallback
// backend, then an empty document list with status retrieval_unavailable. Backend failures
// never throw; only the caller's own abort rejects, and at once.
import * as v from "valibot";
import {
  DEFAULT_RETRIEVAL_POLICY,
  AttemptScope,
  describeFetchError,
  nextDelayMs,
  parseRetryAfter,
  resolvePolicy,
  sleepUnlessAborted,
  type RetryPolicy,
} from "./http-policy";
import { NoReplicaError, type ReplicaPool } from "./replicas";

export const RetrievedItem = v.pipe(
  v.looseObject({
    document: v.looseObject({
      contents: v.optional(v.string()),
      content: v.optional(v.string()),
      id: v.optional(v.nullable(v.union([v.string(), v.number()]))),
    }),
    score: v.optional(v.nullable(v.number())),
    source: v.optional(v.nullable(v.string())),
  }),
  v.check((d) => d.document.contents != null || d.document.content != null, "document has neither contents nor content"),
);
export type RetrievedItem = v.InferOutput<typeof RetrievedItem>;

// The service answers a batch of queries; we always send one, so take the first list.
export const RetrievalResponse = v.union([
  v.array(v.array(RetrievedItem)),
  v.looseObject({ result: v.array(v.array(RetrievedItem)) }),
]);
export type RetrievalResponse = v.InferOutput<typeof RetrievalResponse>;

export type RetrievedDocument = { id: string | null; contents: string; score: number | null; source: string | null };

export type RetrievalStatus = "ok" | "fallback" | "retrieval_unavailable";

export type RetrievalAttempt = {
  backend: string;
  endpoint: string | null;
  // 1-based within its backend
  attempt: number;
  // ok | connection | timeout | http_408 | rate_limited | server_error | malformed_response | bad_request | no_endpoint | deadline
  outcome: string;
  httpStatus: number | null;
  errorMessage: string | null;
  ms: number;
  startedAt: number;
};

export type RetrievalResult = {
  documents: RetrievedDocument[];
  status: RetrievalStatus;
  // wall time of the whole retrieval, every backend and backoff included
  ms: number;
  // HTTP tries beyond the first, across backends
  retries: number;
  backend: string | null;
  endpoint: string | null;
  attempts: RetrievalAttempt[];
};

export type RetrievalBackend = { name: string; pool: ReplicaPool };

export type RetrieveOptions = {
  // primary first, then fallbacks in order (e.g. wiki_retrieval, then retrieval)
  backends: RetrievalBackend[];
  query: string;
  topk: number;
  // the task's id as the reference sends it: the HLE retriever keeps only that task's documents
  eid?: string | number | null;
  signal?: AbortSignal | null;
  policy?: Partial<RetryPolicy>;
  apiKey?: string | null;
};

type Outcome =
  | { ok: true; documents: RetrievedDocument[] }
  | { ok: false; outcome: string; httpStatus: number | null; message: string; retryable: boolean; retryAfterMs: number | null };

export async function retrieve(opts: RetrieveOptions): Promise<RetrievalResult> {
  const policy = resolvePolicy(opts.policy, DEFAULT_RETRIEVAL_POLICY);
  const caller = opts.signal ?? null;
  const t0 = performance.now();
  const deadlineAt = Date.now() + policy.deadlineMs;
  const attempts: RetrievalAttempt[] = [];
  const abortNow = () => caller!.reason ?? new DOMException("retrieval aborted by caller", "AbortError");
  const finish = (status: RetrievalStatus, documents: RetrievedDocument[], backend: string | null, endpoint: string | null): RetrievalResult => ({
    documents,
    status,
    ms: performance.now() - t0,
    retries: Math.max(0, attempts.length - 1),
    backend,
    endpoint,
    attempts,
  });
  const body = JSON.stringify({
    queries: [opts.query],
    topk: opts.topk,
    return_scores: true,
    ...(opts.eid !== undefined ? { eid: opts.eid } : {}),
  });

  for (const [index, backend] of opts.backends.entries()) {
    // Each backend gets an equal share of what is left, so a hanging primary cannot eat the
    // fallback's time.
    const share = (deadlineAt - Date.now()) / (opts.backends.length - index);
    const backendDeadlineAt = Date.now() + share;
    let lastUrl: string | null = null;
    for (let n = 1; n <= policy.attempts; n++) {
      if (caller?.aborted) throw abortNow();
      if (Date.now() >= backendDeadlineAt) break;
      let lease;
      try {
        lease = backend.pool.acquire(lastUrl);
      } catch (err) {
        if (!(err instanceof NoReplicaError)) throw err;
        attempts.push({ backend: backend.name, endpoint: null, attempt: n, outcome: "no_endpoint", httpStatus: null, errorMessage: err.message, ms: 0, startedAt: Date.now() });
        break;
      }
      const startedAt = Date.now();
      const a0 = performance.now();
      const scope = new AttemptScope({ caller, deadlineAt: backendDeadlineAt, perAttemptTimeoutMs: policy.perAttemptTimeoutMs });
      let outcome: Outcome;
      try {
        outcome = await runAttempt(lease.url, body, scope.signal, opts.apiKey);
      } catch (err) {
        const cause = scope.causeNow();
        outcome = {
          ok: false,
          outcome: cause ?? "connection",
          httpStatus: null,
          message: cause === "timeout" ? `no response within ${policy.perAttemptTimeoutMs} ms` : cause === "deadline" ? "retrieval deadline reached" : describeFetchError(err),
          retryable: cause !== "deadline",
          retryAfterMs: null,
        };
      } finally {
        scope.dispose();
      }
      const ms = performance.now() - a0;
      if (!outcome.ok && outcome.outcome === "aborted") {
        lease.release("neutral");
        throw abortNow();
      }
      attempts.push(
        outcome.ok
          ? { backend: backend.name, endpoint: lease.url, attempt: n, outcome: "ok", httpStatus: 200, errorMessage: null, ms, startedAt }
          : { backend: backend.name, endpoint: lease.url, attempt: n, outcome: outcome.outcome, httpStatus: outcome.httpStatus, errorMessage: outcome.message.slice(0, 2000), ms, startedAt },
      );
      if (outcome.ok) {
        lease.release("success");
        return finish(index === 0 ? "ok" : "fallback", outcome.documents, backend.name, lease.url);
      }
      const replicaFailure = outcome.outcome !== "rate_limited" && outcome.outcome !== "bad_request" && outcome.outcome !== "deadline";
      lease.release(replicaFailure ? "failure" : "neutral");
      if (!outcome.retryable || n >= policy.attempts) break;
      const delay = nextDelayMs({ retry: n, policy, retryAfterMs: outcome.retryAfterMs, deadlineAt: backendDeadlineAt });
      if (delay == null) break;
      lastUrl = lease.url;
      try {
        await sleepUnlessAborted(delay, caller);
      } catch {
        throw abortNow();
      }
    }
  }
  const last = attempts.at(-1);
  return finish("retrieval_unavailable", [], last?.backend ?? null, last?.endpoint ?? null);
}

async function runAttempt(baseUrl: string, body: string, signal: AbortSignal, apiKey: string | null | undefined): Promise<Outcome> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  const res = await fetch(`${baseUrl}/retrieve`, { method: "POST", headers, body, signal });
  const text = await res.text();
  if (res.status !== 200) {
    const s = res.status;
    const outcome = s === 408 ? "http_408" : s === 429 ? "rate_limited" : s >= 500 ? "server_error" : "bad_request";
    // A 4xx is about the request, so retrying the same backend is pointless; the fallback
    // (possibly another API version) may still answer.
    return { ok: false, outcome, httpStatus: s, message: `HTTP ${s}: ${text.slice(0, 500)}`, retryable: outcome !== "bad_request", retryAfterMs: parseRetryAfter(res.headers.get("retry-after")) };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, outcome: "malformed_response", httpStatus: 200, message: `unparsable JSON body: ${text.slice(0, 200)}`, retryable: true, retryAfterMs: null };
  }
  const parsed = v.safeParse(RetrievalResponse, json);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const path = issue.path?.map((p) => String(p.key)).join(".") ?? "";
    return { ok: false, outcome: "malformed_response", httpStatus: 200, message: `unexpected response shape${path ? ` at ${path}` : ""}: ${issue.message}`, retryable: true, retryAfterMs: null };
  }
  const lists = Array.isArray(parsed.output) ? parsed.output : parsed.output.result;
  return { ok: true, documents: (lists[0] ?? []).map(toDocument) };
}

function toDocument(item: RetrievedItem): RetrievedDocument {
  const d = item.document;
  return {
    id: d.id == null ? null : String(d.id),
    // the reference reads `content` first (eval_frames_oss.py:355-358)
    contents: d.content ?? d.contents ?? "",
    score: item.score ?? null,
    source: item.source ?? null,
  };
}
