// callChat over real loopback HTTP against the vLLM simulator, one test per failure class.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { startVllmSim, type VllmSim } from "../../sim/vllm";
import { callChat, classifyHttpError, drainingBodies, LlmCallError, readChatStream, shrunkMaxTokens, toLlmCallRow, type LlmAttempt } from "../../runner/llm-client";
import { ReplicaPool } from "../../runner/replicas";
import type { RetryPolicy } from "../../runner/http-policy";

const MODEL = "sim/expert";
const messages = [{ role: "user", content: "What is the capital of France?" }];

// Fast, predictable retries: jitter pinned to its ceiling so delays are base, 2*base, 4*base.
const FAST: Partial<RetryPolicy> = { attempts: 4, perAttemptTimeoutMs: 5_000, deadlineMs: 20_000, baseDelayMs: 5, maxDelayMs: 200, random: () => 1 };

let sim: VllmSim;
let pool: ReplicaPool;

beforeAll(async () => {
  sim = await startVllmSim({ model: MODEL, mode: "expert", seed: 7 });
  pool = new ReplicaPool(MODEL, [sim.url], { failureThreshold: 100 });
});

afterEach(() => {
  sim.update({ faults: { queue: [], rates: {}, retryAfterS: 1 }, enableAutoToolChoice: true, maxModelLen: 32768 });
});

afterAll(async () => {
  await sim.stop();
});

async function failureOf(p: Promise<unknown>): Promise<LlmCallError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof LlmCallError) return err;
    throw err;
  }
  throw new Error("expected the call to fail");
}

/** A tiny server answering every request with one fixed status and body. */
function fixedServer(status: number, body: unknown): { url: string; stop(): void } {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => Response.json(body, { status }) });
  return { url: `http://127.0.0.1:${server.port}`, stop: () => server.stop(true) };
}

describe("callChat", () => {
  test("a streamed reply accumulates content, usage and time to first token in one attempt", async () => {
    const seen: LlmAttempt[] = [];
    const r = await callChat({ pool, role: "expert_llm", request: { model: MODEL, messages }, policy: FAST, onAttempt: (a) => seen.push(a) });
    expect(r.content.length).toBeGreaterThan(0);
    expect(r.finishReason).toBe("stop");
    expect(r.usage.promptTokens).toBeGreaterThan(0);
    expect(r.usage.completionTokens).toBeGreaterThan(0);
    expect(r.ttftMs).not.toBeNull();
    expect(r.ttftMs!).toBeLessThanOrEqual(r.totalMs);
    expect(r.attempts.map((a) => a.outcome)).toEqual(["ok"]);
    expect(seen).toEqual(r.attempts);
    expect(r.endpoint).toBe(sim.url);
  });

  test("streaming and non-streaming give the same tool calls from the orchestrator", async () => {
    const orch = await startVllmSim({ model: "sim/orch", mode: "orchestrator", seed: 3 });
    try {
      const tools = ["search", "enhance_reasoning", "answer"].map((name) => ({
        type: "function",
        function: { name, description: name, parameters: { type: "object", properties: { model: { type: "string" } } } },
      }));
      const p = new ReplicaPool("sim/orch", [orch.url]);
      const request = { model: "sim/orch", messages, tools, extra_body: { chat_template_kwargs: { enable_thinking: true } } };
      const streamed = await callChat({ pool: p, role: "orchestrator", request, policy: FAST });
      const plain = await callChat({ pool: p, role: "orchestrator", request: { ...request, stream: false }, policy: FAST });
      expect(streamed.toolCalls.length).toBeGreaterThan(0);
      expect(streamed.toolCalls.map((c) => [c.name, JSON.parse(c.arguments)])).toEqual(plain.toolCalls.map((c) => [c.name, JSON.parse(c.arguments)]));
      expect(streamed.finishReason).toBe(plain.finishReason);
      expect(streamed.reasoning).toBe(plain.reasoning);
    } finally {
      await orch.stop();
    }
  });

  test.each([
    ["429", "rate_limited", 429],
    ["500", "server_error", 500],
    ["503", "server_error", 503],
    ["reset", "connection", null],
    ["stream_cut", "stream_cut", 200],
    ["stream_error", "stream_error", 200],
    ["malformed_json", "malformed_response", 200],
  ] as const)("fault %s is retried as %s until the call succeeds", async (fault, errorClass, status) => {
    sim.update({ faults: { queue: [fault, fault], retryAfterS: null } });
    const r = await callChat({ pool, role: "expert_llm", request: { model: MODEL, messages, stream: fault !== "malformed_json" }, policy: FAST });
    expect(r.attempts.map((a) => a.outcome)).toEqual([errorClass, errorClass, "ok"]);
    expect(r.attempts.map((a) => a.httpAttempt)).toEqual([1, 2, 3]);
    expect(r.attempts[0].httpStatus).toBe(status);
    expect(r.attempts[0].errorMessage).toBeTruthy();
    expect(r.content.length).toBeGreaterThan(0);
  });

  test("a retried class gives up after the configured attempts, with growing gaps between them", async () => {
    sim.update({ faults: { queue: ["500", "500", "500", "500", "500"] } });
    const policy = { ...FAST, attempts: 4, baseDelayMs: 100, maxDelayMs: 1_000 };
    const starts: number[] = [];
    const err = await failureOf(
      callChat({ pool, role: "expert_llm", request: { model: MODEL, messages }, policy, onAttempt: (a) => starts.push(performance.now()) }),
    );
    expect(err.errorClass).toBe("server_error");
    expect(err.retryable).toBe(true);
    expect(err.attempts.length).toBe(4);
    const gaps = starts.slice(1).map((t, i) => t - starts[i]);
    // delays are 100, 200, 400 ms: the last gap is longer than the first by 300 ms, more than
    // a loaded machine's scheduling noise
    expect(gaps[2]).toBeGreaterThan(gaps[0]);
    expect(gaps[0]).toBeGreaterThanOrEqual(90);
  });

  test("a prompt longer than the context window fails at once as context_length", async () => {
    sim.update({ faults: { queue: ["context_length", "context_length"] } });
    const err = await failureOf(callChat({ pool, role: "expert_llm", request: { model: MODEL, messages }, policy: FAST }));
    expect(err.errorClass).toBe("context_length");
    expect(err.retryable).toBe(false);
    expect(err.httpStatus).toBe(400);
    expect(err.attempts.length).toBe(1);
  });

  test("an unknown model fails at once as model_not_found", async () => {
    const err = await failureOf(callChat({ pool, role: "expert_llm", request: { model: "no/such", messages }, policy: FAST }));
    expect(err.errorClass).toBe("model_not_found");
    expect(err.attempts.length).toBe(1);
  });

  test("an endpoint without auto tool choice fails at once as tool_choice_unsupported", async () => {
    sim.update({ enableAutoToolChoice: false });
    const tools = [{ type: "function", function: { name: "answer", parameters: { type: "object" } } }];
    const err = await failureOf(callChat({ pool, role: "orchestrator", request: { model: MODEL, messages, tools, tool_choice: "auto" }, policy: FAST }));
    expect(err.errorClass).toBe("tool_choice_unsupported");
    expect(err.retryable).toBe(false);
    expect(err.attempts.length).toBe(1);
  });

  test.each([
    [401, "auth"],
    [403, "auth"],
    [400, "bad_request"],
  ] as const)("HTTP %d fails at once as %s", async (status, errorClass) => {
    const s = fixedServer(status, { error: { message: "nope", type: "Whatever", param: null, code: status } });
    try {
      const err = await failureOf(callChat({ pool: new ReplicaPool("x", [s.url]), role: "judge", request: { model: "x", messages }, policy: FAST }));
      expect(err.errorClass).toBe(errorClass);
      expect(err.attempts.length).toBe(1);
    } finally {
      s.stop();
    }
  });

  test("HTTP 408 with an old-style error body is retried as http_408", async () => {
    const s = fixedServer(408, { object: "error", message: "request timeout", type: "x", code: 408 });
    try {
      const err = await failureOf(
        callChat({ pool: new ReplicaPool("x", [s.url]), role: "judge", request: { model: "x", messages }, policy: { ...FAST, attempts: 2 } }),
      );
      expect(err.errorClass).toBe("http_408");
      expect(err.attempts.length).toBe(2);
      expect(err.attempts[0].errorMessage).toContain("request timeout");
    } finally {
      s.stop();
    }
  });

  test("a hung request ends at the per-attempt timeout", async () => {
    sim.update({ faults: { queue: ["hang"] } });
    const t0 = performance.now();
    const err = await failureOf(
      callChat({ pool, role: "expert_llm", request: { model: MODEL, messages }, policy: { ...FAST, attempts: 1, perAttemptTimeoutMs: 300 } }),
    );
    const ms = performance.now() - t0;
    expect(err.errorClass).toBe("timeout");
    expect(err.retryable).toBe(true);
    expect(ms).toBeGreaterThanOrEqual(250);
    expect(ms).toBeLessThan(3_000);
  });

  test("a hang followed by success is retried after the timeout", async () => {
    sim.update({ faults: { queue: ["hang"] } });
    const r = await callChat({ pool, role: "expert_llm", request: { model: MODEL, messages }, policy: { ...FAST, perAttemptTimeoutMs: 300 } });
    expect(r.attempts.map((a) => a.outcome)).toEqual(["timeout", "ok"]);
  });

  test("429 with Retry-After waits at least that long before the next try", async () => {
    sim.update({ faults: { queue: ["429"], retryAfterS: 1 } });
    const r = await callChat({ pool, role: "expert_llm", request: { model: MODEL, messages }, policy: FAST });
    expect(r.attempts.map((a) => a.outcome)).toEqual(["rate_limited", "ok"]);
    const gap = r.attempts[1].startedAt - r.attempts[0].startedAt;
    expect(gap).toBeGreaterThanOrEqual(950);
  });

  test("a Retry-After beyond the deadline fails now as deadline instead of sleeping", async () => {
    sim.update({ faults: { queue: ["429"], retryAfterS: 60 } });
    const t0 = performance.now();
    const err = await failureOf(callChat({ pool, role: "expert_llm", request: { model: MODEL, messages }, policy: { ...FAST, deadlineMs: 2_000 } }));
    expect(err.errorClass).toBe("deadline");
    expect(err.attempts.map((a) => a.outcome)).toEqual(["rate_limited"]);
    expect(performance.now() - t0).toBeLessThan(1_500);
  });

  test("max_tokens too large shrinks once to what fits and then succeeds", async () => {
    sim.update({ maxModelLen: 512 });
    const r = await callChat({ pool, role: "expert_llm", request: { model: MODEL, messages, max_tokens: 4_000 }, policy: FAST });
    expect(r.attempts.map((a) => a.outcome)).toEqual(["max_tokens_too_large", "ok"]);
    expect(r.usage.promptTokens! + r.usage.completionTokens!).toBeLessThanOrEqual(512);
  });

  test("max_tokens too large twice fails after the one shrink", async () => {
    sim.update({ faults: { queue: ["max_tokens_too_large", "max_tokens_too_large"] } });
    const err = await failureOf(callChat({ pool, role: "expert_llm", request: { model: MODEL, messages, max_tokens: 32_767 }, policy: FAST }));
    expect(err.errorClass).toBe("max_tokens_too_large");
    expect(err.retryable).toBe(false);
    expect(err.attempts.length).toBe(2);
  });

  test("finish_reason length is a result, not an error", async () => {
    const r = await callChat({ pool, role: "expert_llm", request: { model: MODEL, messages, max_tokens: 3 }, policy: FAST });
    expect(r.finishReason).toBe("length");
    expect(r.attempts.map((a) => a.outcome)).toEqual(["ok"]);
    expect(toLlmCallRow(r.attempts[0], { runId: 1, taskId: 2, attempt: 1, step: 0, tool: "answer" })).toMatchObject({
      runId: 1,
      taskId: 2,
      step: 0,
      role: "expert_llm",
      outcome: "ok",
      finishReason: "length",
      httpAttempt: 1,
    });
  });

  test("a caller abort ends a hung call at once, without retrying", async () => {
    sim.update({ faults: { queue: ["hang", "hang"] } });
    const ctl = new AbortController();
    const before = sim.stats().requests;
    const call = failureOf(callChat({ pool, role: "expert_llm", request: { model: MODEL, messages }, signal: ctl.signal, policy: { ...FAST, perAttemptTimeoutMs: 60_000 } }));
    const deadline = Date.now() + 5_000;
    while (sim.stats().requests === before && Date.now() < deadline) await Bun.sleep(5);
    const t0 = performance.now();
    ctl.abort();
    const err = await call;
    expect(performance.now() - t0).toBeLessThan(500);
    expect(err.errorClass).toBe("aborted");
    expect(err.attempts.length).toBe(1);
  });

  test("a caller abort during a backoff sleep ends the call at once", async () => {
    sim.update({ faults: { queue: ["500"] } });
    const ctl = new AbortController();
    const t0 = performance.now();
    const err = await failureOf(
      callChat({
        pool,
        role: "expert_llm",
        request: { model: MODEL, messages },
        signal: ctl.signal,
        policy: { ...FAST, baseDelayMs: 30_000, maxDelayMs: 30_000, deadlineMs: 60_000 },
        onAttempt: () => setTimeout(() => ctl.abort(), 20),
      }),
    );
    expect(err.errorClass).toBe("aborted");
    expect(performance.now() - t0).toBeLessThan(2_000);
  });

  test("a caller abort ends a call mid-stream at once", async () => {
    sim.update({ latency: { ttftMs: 0, perTokenMs: 100 } });
    try {
      const ctl = new AbortController();
      const call = failureOf(callChat({ pool, role: "expert_llm", request: { model: MODEL, messages }, signal: ctl.signal, policy: FAST }));
      const deadline = Date.now() + 5_000;
      // running = holding a generation slot: the stream's headers and first tokens are out
      while (sim.stats().running === 0 && Date.now() < deadline) await Bun.sleep(5);
      const t0 = performance.now();
      ctl.abort();
      const err = await call;
      expect(performance.now() - t0).toBeLessThan(500);
      expect(err.errorClass).toBe("aborted");
      expect(err.attempts.length).toBe(1);
    } finally {
      sim.update({ latency: { ttftMs: 0, perTokenMs: 0 } });
    }
  });

  test("the per-attempt timeout also cuts a stream that is too slow", async () => {
    sim.update({ latency: { ttftMs: 0, perTokenMs: 100 } });
    try {
      const t0 = performance.now();
      const err = await failureOf(
        callChat({ pool, role: "expert_llm", request: { model: MODEL, messages }, policy: { ...FAST, attempts: 1, perAttemptTimeoutMs: 300 } }),
      );
      expect(err.errorClass).toBe("timeout");
      expect(err.attempts[0].ttftMs).not.toBeNull();
      expect(performance.now() - t0).toBeLessThan(3_000);
    } finally {
      sim.update({ latency: { ttftMs: 0, perTokenMs: 0 } });
    }
  });

  test("the overall deadline ends a call even when each attempt could wait longer", async () => {
    sim.update({ faults: { queue: ["hang", "hang", "hang"] } });
    const t0 = performance.now();
    const err = await failureOf(
      callChat({ pool, role: "expert_llm", request: { model: MODEL, messages }, policy: { ...FAST, perAttemptTimeoutMs: 30_000, deadlineMs: 400 } }),
    );
    expect(err.errorClass).toBe("deadline");
    expect(performance.now() - t0).toBeLessThan(3_000);
  });

  test("a connection refused (nothing listening) is retried as connection", async () => {
    const dead = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
    const url = `http://127.0.0.1:${dead.port}`;
    dead.stop(true);
    const err = await failureOf(callChat({ pool: new ReplicaPool("x", [url]), role: "judge", request: { model: "x", messages }, policy: { ...FAST, attempts: 2 } }));
    expect(err.errorClass).toBe("connection");
    expect(err.attempts.length).toBe(2);
  });
});

// One reply as vLLM streams it: reasoning, content and a tool call split over events, then
// finish_reason and usage. Multi-byte characters so that a read can end inside one.
const EVENTS = [
  { choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }] },
  { choices: [{ index: 0, delta: { reasoning_content: "Thinking é" }, finish_reason: null }] },
  { choices: [{ index: 0, delta: { content: "Paris " }, finish_reason: null }] },
  { choices: [{ index: 0, delta: { content: "🙂" }, finish_reason: null }] },
  { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: "call_a", type: "function", function: { name: "search", arguments: '{"q":' } }] } }] },
  { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '"ü"}' } }] } }] },
  { choices: [{ index: 0, delta: {}, finish_reason: "tool_calls" }] },
  { choices: [], usage: { prompt_tokens: 5, completion_tokens: 7 } },
];
const EXPECTED = {
  content: "Paris 🙂",
  reasoning: "Thinking é",
  toolCalls: [{ id: "call_a", name: "search", arguments: '{"q":"ü"}' }],
  finishReason: "tool_calls",
  usage: { promptTokens: 5, completionTokens: 7 },
};

/** The SSE text of EVENTS with the given line ending; `multiLine` spreads each event's JSON over several data: lines. */
function sseBody(nl: string, opts: { multiLine?: boolean; extras?: boolean } = {}): string {
  let out = opts.extras ? `: keep-alive${nl}${nl}retry: 1000${nl}${nl}` : "";
  for (const [i, e] of EVENTS.entries()) {
    const json = opts.multiLine ? JSON.stringify(e, null, 1) : JSON.stringify(e);
    if (opts.extras) out += `: ping ${i}${nl}event: message${nl}id: ${i}${nl}`;
    out += json.split("\n").map((l) => `data: ${l}${nl}`).join("") + nl;
  }
  return `${out}data: [DONE]${nl}${nl}`;
}

/** A real Response whose body arrives in exactly these reads (one chunk per pull). */
function responseOf(chunks: Uint8Array[]): Response {
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (i < chunks.length) c.enqueue(chunks[i++]);
      else c.close();
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
}

async function parsedFrom(chunks: Uint8Array[]) {
  const out = await readChatStream(responseOf(chunks), performance.now(), new AbortController().signal);
  if (!out.ok) throw new Error(`${out.errorClass}: ${out.message}`);
  const { ttftMs, ...rest } = out.result;
  expect(ttftMs).not.toBeNull();
  return rest;
}

describe("stream parsing", () => {
  for (const [name, nl] of [["LF", "\n"], ["CRLF", "\r\n"], ["CR", "\r"]] as const) {
    test(`a reply with ${name} line endings split into two reads at every byte boundary parses the same`, async () => {
      const bytes = new TextEncoder().encode(sseBody(nl, { extras: true }));
      for (let k = 0; k <= bytes.length; k++) {
        const got = await parsedFrom([bytes.subarray(0, k), bytes.subarray(k)]);
        if (JSON.stringify(got) !== JSON.stringify(EXPECTED)) expect({ split: k, got }).toEqual({ split: k, got: EXPECTED });
      }
    });
  }

  test("a reply arriving one byte per read parses the same", async () => {
    const bytes = new TextEncoder().encode(sseBody("\r\n", { extras: true, multiLine: true }));
    expect(await parsedFrom(Array.from(bytes, (_, i) => bytes.subarray(i, i + 1)))).toEqual(EXPECTED);
  });

  test("an event whose JSON spans several data: lines is joined with newlines", async () => {
    expect(await parsedFrom([new TextEncoder().encode(sseBody("\n", { multiLine: true }))])).toEqual(EXPECTED);
  });

  test("an unparsable event is a malformed_response that keeps the event's text", async () => {
    const text = `data: ${JSON.stringify(EVENTS[2])}\n\ndata: {"choices": [oops\n\ndata: [DONE]\n\n`;
    const out = await readChatStream(responseOf([new TextEncoder().encode(text)]), performance.now(), new AbortController().signal);
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.errorClass).toBe("malformed_response");
    expect(out.message).toContain('{"choices": [oops');
    expect(out.ttftMs).not.toBeNull();
  });

  test("an error event inside a 200 stream is a stream_error, and a body ending without [DONE] is a stream_cut", async () => {
    const err = `data: ${JSON.stringify(EVENTS[2])}\n\ndata: {"error":{"message":"engine died","code":500}}\n\n`;
    const a = await readChatStream(responseOf([new TextEncoder().encode(err)]), performance.now(), new AbortController().signal);
    expect(a.ok ? "ok" : [a.errorClass, a.message]).toEqual(["stream_error", "error inside 200 response: engine died"]);
    // the last event is complete but not ended by a blank line: never dispatched, so no [DONE]
    const cut = `data: ${JSON.stringify(EVENTS[2])}\n\ndata: [DONE]\n`;
    const b = await readChatStream(responseOf([new TextEncoder().encode(cut)]), performance.now(), new AbortController().signal);
    expect(b.ok ? "ok" : b.errorClass).toBe("stream_cut");
  });

  test("a server that keeps the stream open after [DONE] does not hold the call, and its body is dropped after a grace", async () => {
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () =>
        new Response(
          new ReadableStream({
            start(c) {
              c.enqueue(new TextEncoder().encode(sseBody("\n")));
              // never closed: only our grace ends this body
            },
          }),
          { headers: { "content-type": "text/event-stream" } },
        ),
    });
    try {
      const url = `http://127.0.0.1:${server.port}`;
      const r = await callChat({ pool: new ReplicaPool("open", [url]), role: "judge", request: { model: "open", messages }, policy: FAST });
      expect(r.content).toBe(EXPECTED.content);
      expect(r.totalMs).toBeLessThan(1_000);
      expect(drainingBodies()).toBeGreaterThan(0);
      const deadline = Date.now() + 5_000;
      while (drainingBodies() > 0 && Date.now() < deadline) await Bun.sleep(20);
      expect(drainingBodies()).toBe(0);
    } finally {
      server.stop(true);
    }
  }, 10_000);
});

describe("classification", () => {
  test("decides on status and message text, never on the type field", () => {
    expect(classifyHttpError(400, "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens")).toBe("context_length");
    expect(classifyHttpError(400, "'max_tokens' or 'max_completion_tokens' is too large: 5000. This model's maximum context length is 4096 tokens")).toBe(
      "max_tokens_too_large",
    );
    expect(classifyHttpError(400, '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set')).toBe("tool_choice_unsupported");
    expect(classifyHttpError(502, "bad gateway")).toBe("server_error");
    expect(classifyHttpError(504, "")).toBe("server_error");
  });

  test("the shrink uses the numbers in vLLM's message", () => {
    expect(
      shrunkMaxTokens("'max_tokens' or 'max_completion_tokens' is too large: 5000. This model's maximum context length is 4096 tokens and your request has 1000 input tokens (5000 > 4096 - 1000)."),
    ).toBe(3096);
    expect(shrunkMaxTokens("max_tokens is too large")).toBeNull();
  });
});
