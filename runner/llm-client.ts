// Calls vLLM's OpenAI-compatible /v1/chat/completions so that a call can never hang and never
// retry without bound. Every HTTP try becomes one LlmAttempt (one llm_calls row), so the
// latency tail and each failure can be traced to a replica afterwards.
//
// Error classes are decided on HTTP status + message substrings, never on the body's `type`
// field (vLLM versions disagree on it). Retried: connection, timeout, http_408, rate_limited,
// server_error (any 5xx), stream_error (an error event inside a 200 response), stream_cut
// (stream ended before [DONE]) and malformed_response. Malformed bodies ARE retried: in
// practice they come from a proxy or an overloaded replica cutting a body short, not from the
// request, and counting them as a replica failure lets the breaker drop a node that keeps
// sending garbage. Not retried: context_length, max_tokens_too_large (after one shrink),
// tool_choice_unsupported, auth, model_not_found, bad_request. Plus aborted (the caller's
// signal) and deadline (the overall deadline ran out), and no_endpoint (empty pool).
import { createParser } from "eventsource-parser";
import type { LlmCallRow } from "../db/rows";
import {
  DEFAULT_LLM_POLICY,
  AttemptScope,
  describeFetchError,
  nextDelayMs,
  parseRetryAfter,
  resolvePolicy,
  sleepUnlessAborted,
  type RetryPolicy,
} from "./http-policy";
import { NoReplicaError, type ReplicaPool } from "./replicas";

export type ChatMessage = {
  role: string;
  content?: unknown;
  tool_calls?: unknown;
  tool_call_id?: string;
  name?: string;
  [k: string]: unknown;
};

export type ChatRequest = {
  model: string;
  messages: ChatMessage[];
  tools?: unknown[];
  tool_choice?: unknown;
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  // default true: streaming is how time to first token is measured
  stream?: boolean;
  // merged into the JSON body's top level (e.g. chat_template_kwargs)
  extra_body?: Record<string, unknown>;
};

export type ToolCall = { id: string; name: string; arguments: string };

export type LlmErrorClass =
  | "connection"
  | "timeout"
  | "http_408"
  | "rate_limited"
  | "server_error"
  | "stream_error"
  | "stream_cut"
  | "malformed_response"
  | "context_length"
  | "max_tokens_too_large"
  | "tool_choice_unsupported"
  | "auth"
  | "model_not_found"
  | "bad_request"
  | "aborted"
  | "deadline"
  | "no_endpoint";

const RETRYABLE: ReadonlySet<LlmErrorClass> = new Set<LlmErrorClass>([
  "connection",
  "timeout",
  "http_408",
  "rate_limited",
  "server_error",
  "stream_error",
  "stream_cut",
  "malformed_response",
  "deadline",
  "no_endpoint",
]);

// Failures that say the replica is unhealthy (they feed its circuit breaker). A 429 is a
// busy replica, not a broken one, and 4xx classes are about the request.
const REPLICA_FAILURES: ReadonlySet<LlmErrorClass> = new Set<LlmErrorClass>([
  "connection",
  "timeout",
  "http_408",
  "server_error",
  "stream_error",
  "stream_cut",
  "malformed_response",
]);

export function isRetryableClass(c: string): boolean {
  return RETRYABLE.has(c as LlmErrorClass);
}

export function isReplicaFailure(c: string): boolean {
  return REPLICA_FAILURES.has(c as LlmErrorClass);
}

export type LlmAttempt = {
  role: string;
  model: string;
  endpoint: string;
  httpAttempt: number;
  outcome: "ok" | LlmErrorClass;
  httpStatus: number | null;
  errorMessage: string | null;
  ttftMs: number | null;
  totalMs: number;
  promptTokens: number | null;
  completionTokens: number | null;
  finishReason: string | null;
  startedAt: number;
};

export type ChatResult = {
  content: string;
  reasoning: string | null;
  toolCalls: ToolCall[];
  finishReason: string | null;
  usage: { promptTokens: number | null; completionTokens: number | null };
  // time to first token of the successful attempt
  ttftMs: number | null;
  // wall time of the whole call, retries and backoff included
  totalMs: number;
  endpoint: string;
  model: string;
  attempts: LlmAttempt[];
};

export class LlmCallError extends Error {
  readonly retryable: boolean;
  constructor(
    readonly errorClass: LlmErrorClass,
    message: string,
    readonly httpStatus: number | null,
    readonly attempts: LlmAttempt[],
  ) {
    super(message);
    this.name = "LlmCallError";
    this.retryable = isRetryableClass(errorClass);
  }
}

/** Maps one attempt to an llm_calls row; ctx places it in a task's step. */
export function toLlmCallRow(
  attempt: LlmAttempt,
  ctx: { runId?: number | null; taskId?: number | null; attempt?: number | null; step?: number | null; tool?: string | null } = {},
): LlmCallRow {
  return {
    runId: ctx.runId ?? null,
    taskId: ctx.taskId ?? null,
    attempt: ctx.attempt ?? null,
    step: ctx.step ?? null,
    tool: ctx.tool ?? null,
    role: attempt.role,
    model: attempt.model,
    endpoint: attempt.endpoint,
    httpAttempt: attempt.httpAttempt,
    outcome: attempt.outcome,
    httpStatus: attempt.httpStatus,
    errorMessage: attempt.errorMessage,
    ttftMs: attempt.ttftMs,
    totalMs: attempt.totalMs,
    promptTokens: attempt.promptTokens,
    completionTokens: attempt.completionTokens,
    finishReason: attempt.finishReason,
    startedAt: attempt.startedAt,
  };
}

const MAX_TOKENS_TOO_LARGE = /max_tokens.{0,80}too large|max_completion_tokens.{0,40}too large/i;

/** Status + message → class. Exported for the retrieval client and tests. */
export function classifyHttpError(status: number, message: string): LlmErrorClass {
  if (status === 408) return "http_408";
  if (status === 429) return "rate_limited";
  if (status >= 500) return "server_error";
  if (status === 401 || status === 403) return "auth";
  if (status === 404) return "model_not_found";
  if (MAX_TOKENS_TOO_LARGE.test(message)) return "max_tokens_too_large";
  if (/maximum context length/i.test(message)) return "context_length";
  if (message.includes('"auto" tool choice requires') || /auto.{0,3} tool choice requires --enable-auto-tool-choice/.test(message))
    return "tool_choice_unsupported";
  return "bad_request";
}

/**
 * From vLLM's max_tokens message, the largest max_tokens that fits: "... maximum context
 * length is 4096 tokens and your request has 1000 input tokens ..." → 3096. Null when the
 * numbers are missing or nothing fits (then it is really a context_length failure).
 */
export function shrunkMaxTokens(message: string): number | null {
  const limit = /maximum context length is (\d+)/i.exec(message);
  const input = /(\d+) input tokens|(\d+) in the messages|prompt (?:contains|has) (\d+)/i.exec(message);
  if (!limit || !input) return null;
  const used = Number(input[1] ?? input[2] ?? input[3]);
  const room = Number(limit[1]) - used;
  return room > 0 ? room : null;
}

/** The message of an OpenAI-style error body, new ({error:{message}}) or old ({message}). */
export function errorMessageOf(text: string): string {
  try {
    const body = JSON.parse(text);
    const m = body?.error?.message ?? body?.message ?? body?.detail;
    if (typeof m === "string") return m;
    if (m != null) return JSON.stringify(m);
  } catch {
    // not JSON: the raw text is the best message there is
  }
  return text.slice(0, 1000) || "(empty body)";
}

type AttemptOk = { ok: true; result: Omit<ChatResult, "totalMs" | "endpoint" | "model" | "attempts"> };
type AttemptFailed = {
  ok: false;
  errorClass: LlmErrorClass;
  httpStatus: number | null;
  message: string;
  retryAfterMs: number | null;
  ttftMs: number | null;
};

export type CallChatOptions = {
  pool: ReplicaPool;
  // orchestrator | query_llm | expert_llm | judge: recorded on every attempt
  role: string;
  request: ChatRequest;
  signal?: AbortSignal | null;
  policy?: Partial<RetryPolicy>;
  // bearer token for the endpoint, if it wants one; never logged or recorded
  apiKey?: string | null;
  // called after every HTTP attempt, e.g. to write llm_calls rows as they happen
  onAttempt?: (attempt: LlmAttempt) => void;
  // called with each attempt's request body, as sent (the transcript keeps it without
  // serializing the conversation a second time)
  onSend?: (body: string) => void;
};

export async function callChat(opts: CallChatOptions): Promise<ChatResult> {
  const policy = resolvePolicy(opts.policy, DEFAULT_LLM_POLICY);
  const { pool, role, signal: caller } = opts;
  // Copied only when the max_tokens shrink changes it: the caller's request is never mutated.
  let request = opts.request;
  const stream = request.stream ?? true;
  const start = Date.now();
  const t0 = performance.now();
  const deadlineAt = start + policy.deadlineMs;
  const attempts: LlmAttempt[] = [];
  const fail = (c: LlmErrorClass, message: string, status: number | null = null) =>
    new LlmCallError(c, message, status, attempts);

  let shrunk = false;
  let tries = 0;
  let lastUrl: string | null = null;
  for (;;) {
    if (caller?.aborted) throw fail("aborted", "call aborted by caller");
    if (Date.now() >= deadlineAt) throw fail("deadline", `deadline of ${policy.deadlineMs} ms exhausted after ${tries} attempts`);
    let lease;
    try {
      lease = pool.acquire(lastUrl);
    } catch (err) {
      if (err instanceof NoReplicaError) throw fail("no_endpoint", err.message);
      throw err;
    }
    tries++;
    const startedAt = Date.now();
    const a0 = performance.now();
    const scope = new AttemptScope({ caller, deadlineAt, perAttemptTimeoutMs: policy.perAttemptTimeoutMs });
    let outcome: AttemptOk | AttemptFailed;
    try {
      const body = buildBody(request, stream);
      opts.onSend?.(body);
      outcome = await runAttempt(lease.url, body, stream, scope.signal, opts.apiKey, a0);
    } catch (err) {
      // Any throw here is the network: refused/reset, or one of our signals firing.
      const cause = scope.causeNow();
      outcome = {
        ok: false,
        errorClass: cause ?? "connection",
        httpStatus: null,
        message: cause === "timeout" ? `no complete response within ${policy.perAttemptTimeoutMs} ms` : cause === "deadline" ? `deadline of ${policy.deadlineMs} ms reached` : cause === "aborted" ? "call aborted by caller" : describeFetchError(err),
        retryAfterMs: null,
        ttftMs: err instanceof InterruptedStream ? err.ttftMs : null,
      };
    } finally {
      scope.dispose();
    }
    // A response that finished but raced a signal is still a failure the caller asked for.
    if (outcome.ok === false && outcome.errorClass !== "aborted" && caller?.aborted) outcome.errorClass = "aborted";
    const totalMs = performance.now() - a0;
    const attempt: LlmAttempt = outcome.ok
      ? {
          role,
          model: request.model,
          endpoint: lease.url,
          httpAttempt: tries,
          outcome: "ok",
          httpStatus: 200,
          errorMessage: null,
          ttftMs: outcome.result.ttftMs,
          totalMs,
          promptTokens: outcome.result.usage.promptTokens,
          completionTokens: outcome.result.usage.completionTokens,
          finishReason: outcome.result.finishReason,
          startedAt,
        }
      : {
          role,
          model: request.model,
          endpoint: lease.url,
          httpAttempt: tries,
          outcome: outcome.errorClass,
          httpStatus: outcome.httpStatus,
          errorMessage: outcome.message.slice(0, 2000),
          ttftMs: outcome.ttftMs,
          totalMs,
          promptTokens: null,
          completionTokens: null,
          finishReason: null,
          startedAt,
        };
    attempts.push(attempt);
    lease.release(outcome.ok ? "success" : isReplicaFailure(outcome.errorClass) ? "failure" : "neutral");
    opts.onAttempt?.(attempt);

    if (outcome.ok) {
      const r = outcome.result;
      return {
        content: r.content,
        reasoning: r.reasoning,
        toolCalls: r.toolCalls,
        finishReason: r.finishReason,
        usage: r.usage,
        ttftMs: r.ttftMs,
        totalMs: performance.now() - t0,
        endpoint: lease.url,
        model: request.model,
        attempts,
      };
    }
    const c = outcome.errorClass;
    if (c === "aborted" || c === "deadline") throw fail(c, outcome.message, outcome.httpStatus);
    if (c === "max_tokens_too_large" && !shrunk) {
      const fit = shrunkMaxTokens(outcome.message);
      if (fit != null && (request.max_tokens == null || fit < request.max_tokens)) {
        // One immediate retry with what fits; a second refusal is final.
        shrunk = true;
        request = { ...request, max_tokens: fit };
        lastUrl = null;
        continue;
      }
    }
    if (!isRetryableClass(c)) throw fail(c, outcome.message, outcome.httpStatus);
    if (tries >= policy.attempts + (shrunk ? 1 : 0))
      throw fail(c, `${outcome.message} (gave up after ${tries} attempts)`, outcome.httpStatus);
    const delay = nextDelayMs({ retry: tries, policy, retryAfterMs: outcome.retryAfterMs, deadlineAt });
    if (delay == null)
      throw fail("deadline", `deadline of ${policy.deadlineMs} ms would pass before the next try (last: ${c}: ${outcome.message})`, outcome.httpStatus);
    lastUrl = lease.url;
    try {
      // nextDelayMs already ended the sleep before the deadline; only the caller can cut it.
      await sleepUnlessAborted(delay, caller);
    } catch {
      throw fail("aborted", "call aborted by caller during backoff");
    }
  }
}

function buildBody(request: ChatRequest, stream: boolean): string {
  const body: Record<string, unknown> = { model: request.model, messages: request.messages };
  if (request.tools !== undefined) body.tools = request.tools;
  if (request.tool_choice !== undefined) body.tool_choice = request.tool_choice;
  if (request.max_tokens !== undefined) body.max_tokens = request.max_tokens;
  if (request.temperature !== undefined) body.temperature = request.temperature;
  if (request.top_p !== undefined) body.top_p = request.top_p;
  body.stream = stream;
  if (stream) body.stream_options = { include_usage: true };
  if (request.extra_body) Object.assign(body, request.extra_body);
  return JSON.stringify(body);
}

async function runAttempt(
  baseUrl: string,
  body: string,
  stream: boolean,
  signal: AbortSignal,
  apiKey: string | null | undefined,
  a0: number,
): Promise<AttemptOk | AttemptFailed> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  const res = await fetch(`${baseUrl}/v1/chat/completions`, { method: "POST", headers, body, signal });
  if (res.status !== 200) {
    const text = await res.text();
    const message = errorMessageOf(text);
    return {
      ok: false,
      errorClass: classifyHttpError(res.status, message),
      httpStatus: res.status,
      message: `HTTP ${res.status}: ${message}`,
      retryAfterMs: parseRetryAfter(res.headers.get("retry-after")),
      ttftMs: null,
    };
  }
  const type = res.headers.get("content-type") ?? "";
  // A server may ignore stream=true (or a proxy may buffer): read whatever came.
  if (stream && type.includes("text/event-stream")) return readChatStream(res, a0, signal);
  return readJson(await res.text(), a0);
}

/**
 * Reads the (normally empty) rest of the body after [DONE] so the keep-alive connection goes
 * back to the pool; cancelling instead closes it, and new connections per call cost more than
 * the whole client (bench/client-overhead.ts). The answer is complete at [DONE], so the call
 * returns without waiting for this. A server that keeps the stream open after [DONE] gets a
 * short grace, then the connection is dropped. One sweeper timer serves every body being
 * drained, so a finished call leaves no timer, race or promise of its own behind.
 */
const DRAIN_GRACE_MS = 1_000;
const draining = new Map<ReadableStreamDefaultReader<Uint8Array>, number>();
let drainSweeper: ReturnType<typeof setInterval> | null = null;

function drainAfterDone(reader: ReadableStreamDefaultReader<Uint8Array>): void {
  draining.set(reader, Date.now() + DRAIN_GRACE_MS);
  void (async () => {
    try {
      while (!(await reader.read()).done);
    } catch {
      // the connection died after [DONE], or the sweeper cancelled it: the answer is complete anyway
    }
    draining.delete(reader);
  })();
  if (drainSweeper === null) {
    drainSweeper = setInterval(sweepDrains, DRAIN_GRACE_MS / 4);
    // Never keeps a process alive on its own.
    drainSweeper.unref?.();
  }
}

function sweepDrains(): void {
  const now = Date.now();
  for (const [reader, until] of draining) {
    if (now < until) continue;
    draining.delete(reader);
    reader.cancel().catch(() => {});
  }
  if (draining.size === 0 && drainSweeper !== null) {
    clearInterval(drainSweeper);
    drainSweeper = null;
  }
}

/** How many bodies are still being read after [DONE] (tests wait on this). */
export function drainingBodies(): number {
  return draining.size;
}

/** One of our signals fired while reading a 200 stream. */
class InterruptedStream extends Error {
  constructor(readonly ttftMs: number | null) {
    super("stream interrupted");
  }
}

function malformed(message: string, ttftMs: number | null = null): AttemptFailed {
  return { ok: false, errorClass: "malformed_response", httpStatus: 200, message, retryAfterMs: null, ttftMs };
}

function streamError(err: any, ttftMs: number | null): AttemptFailed {
  const message = typeof err?.message === "string" ? err.message : JSON.stringify(err);
  return { ok: false, errorClass: "stream_error", httpStatus: 200, message: `error inside 200 response: ${message}`, retryAfterMs: null, ttftMs };
}

function readJson(text: string, a0: number): AttemptOk | AttemptFailed {
  const ttftMs = performance.now() - a0;
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    return malformed(`unparsable JSON body: ${text.slice(0, 200)}`);
  }
  if (body?.error != null || body?.object === "error") return streamError(body.error ?? body, null);
  const choice = body?.choices?.[0];
  const message = choice?.message;
  if (!message || typeof message !== "object") return malformed(`no choices[0].message in body: ${text.slice(0, 200)}`);
  const toolCalls: ToolCall[] = [];
  for (const [i, tc] of (Array.isArray(message.tool_calls) ? message.tool_calls : []).entries()) {
    const args = tc?.function?.arguments;
    toolCalls.push({
      id: String(tc?.id ?? `call_${i}`),
      name: String(tc?.function?.name ?? ""),
      arguments: typeof args === "string" ? args : JSON.stringify(args ?? {}),
    });
  }
  const reasoning = message.reasoning_content ?? message.reasoning ?? null;
  return {
    ok: true,
    result: {
      content: typeof message.content === "string" ? message.content : "",
      reasoning: typeof reasoning === "string" ? reasoning : null,
      toolCalls,
      finishReason: choice.finish_reason ?? null,
      usage: usageOf(body.usage),
      ttftMs,
    },
  };
}

function usageOf(u: any): { promptTokens: number | null; completionTokens: number | null } {
  return {
    promptTokens: typeof u?.prompt_tokens === "number" ? u.prompt_tokens : null,
    completionTokens: typeof u?.completion_tokens === "number" ? u.completion_tokens : null,
  };
}

/**
 * Reads one 200 text/event-stream reply of /v1/chat/completions into a result or a classed
 * failure. `a0` is the attempt's start (performance.now()) for the time to first token;
 * `signal` is the one the fetch runs under. Exported for tests that control read boundaries.
 */
export async function readChatStream(res: Response, a0: number, signal: AbortSignal): Promise<AttemptOk | AttemptFailed> {
  // Deltas are collected in arrays and joined once: a long reply is thousands of one-token
  // deltas, and the join is one copy instead of a rope to flatten.
  const contentParts: string[] = [];
  const reasoningParts: string[] = [];
  let contentChars = 0;
  const calls: { id: string; name: string; arguments: string }[] = [];
  let finishReason: string | null = null;
  let usage = usageOf(null);
  let ttftMs: number | null = null;
  let done = false;
  let failure: AttemptFailed | null = null;

  // eventsource-parser does the SSE framing (CRLF/CR/LF, lines split across reads, multi-line
  // data, comments, BOM). A hand-written splitter measured about 1 us faster per 33-event reply
  // in isolation, against about 10 us for the JSON.parse every event needs anyway, and no
  // faster end to end (bench/client-overhead.ts): not worth owning.
  const parser = createParser({ onEvent: (event) => onData(event.data) });
  function onData(data: string): void {
    // nothing after [DONE] or a failure matters
    if (done || failure) return;
    if (data === "[DONE]") {
      done = true;
      return;
    }
    let chunk: any;
    try {
      chunk = JSON.parse(data);
    } catch {
      failure = malformed(`unparsable stream event: ${data.slice(0, 200)}`, ttftMs);
      return;
    }
    if (chunk === null || typeof chunk !== "object") {
      failure = malformed(`stream event is not an object: ${data.slice(0, 200)}`, ttftMs);
      return;
    }
    if (chunk.error != null || chunk.object === "error") {
      failure = streamError(chunk.error ?? chunk, ttftMs);
      return;
    }
    if (chunk.usage) usage = usageOf(chunk.usage);
    const choices = chunk.choices;
    if (!Array.isArray(choices)) return;
    for (let c = 0; c < choices.length; c++) {
      const choice = choices[c];
      const delta = choice?.delta;
      let produced = false;
      if (delta != null) {
        const text = delta.content;
        if (typeof text === "string" && text !== "") {
          contentParts.push(text);
          contentChars += text.length;
          produced = true;
        }
        const r = delta.reasoning_content ?? delta.reasoning;
        if (typeof r === "string" && r !== "") {
          reasoningParts.push(r);
          produced = true;
        }
        const tcs = delta.tool_calls;
        if (Array.isArray(tcs)) {
          for (const tc of tcs) {
            const i = typeof tc?.index === "number" ? tc.index : calls.length;
            const slot = (calls[i] ??= { id: "", name: "", arguments: "" });
            if (tc?.id) slot.id = String(tc.id);
            if (tc?.function?.name) slot.name += String(tc.function.name);
            if (tc?.function?.arguments != null) {
              const a = tc.function.arguments;
              slot.arguments += typeof a === "string" ? a : JSON.stringify(a);
            }
            produced = true;
          }
        }
      }
      if (produced && ttftMs === null) ttftMs = performance.now() - a0;
      if (choice?.finish_reason) finishReason = choice.finish_reason;
    }
    return;
  }

  // stream: a read can end inside a multi-byte character. (A decoder shared by all calls for
  // reads ending on "\n" measured no faster: constructing one is not the cost.)
  const decoder = new TextDecoder();
  const reader = res.body!.getReader();
  try {
    for (;;) {
      const { value, done: eof } = await reader.read();
      if (eof) break;
      parser.feed(decoder.decode(value, { stream: true }));
      if (done || failure) break;
    }
  } catch (err) {
    // A read that throws while none of our signals fired is the connection dying mid-stream.
    if (!signal.aborted) {
      return {
        ok: false,
        errorClass: "stream_cut",
        httpStatus: 200,
        message: `stream broke before [DONE]: ${describeFetchError(err)}`,
        retryAfterMs: null,
        ttftMs,
      };
    }
    // Keep the time to first token: "slow decode" and "no first token" are different tails.
    throw new InterruptedStream(ttftMs);
  }
  if (done) drainAfterDone(reader);
  else if (failure) reader.cancel().catch(() => {});
  if (failure) return failure;
  if (!done) {
    return {
      ok: false,
      errorClass: "stream_cut",
      httpStatus: 200,
      message: `stream ended before [DONE] after ${contentChars} content chars`,
      retryAfterMs: null,
      ttftMs,
    };
  }
  return {
    ok: true,
    result: {
      content: contentParts.join(""),
      reasoning: reasoningParts.length > 0 ? reasoningParts.join("") : null,
      toolCalls: calls.filter(Boolean).map((c, i) => ({ id: c.id || `call_${i}`, name: c.name, arguments: c.arguments })),
      finishReason,
      usage,
      ttftMs,
    },
  };
}
