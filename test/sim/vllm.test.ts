import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { startVllmSim, type VllmSim } from "../../sim/vllm";
import { fetchError, postJson, sseData, tools, waitFor } from "./_helpers";

const MODEL = "nvidia/Nemotron-Orchestrator-8B";
const question = "Which country held the FIFA World Cup the last time the UEFA Champions League was won by a club from London?";

function orchestratorBody(extra: Record<string, unknown> = {}) {
  return { model: MODEL, messages: [{ role: "user", content: question }], tools: tools(), tool_choice: "auto", max_tokens: 512, ...extra };
}

describe("vLLM simulator wire format", () => {
  let sim: VllmSim;
  beforeAll(async () => {
    sim = await startVllmSim({ model: MODEL, mode: "orchestrator", seed: 7 });
  });
  afterAll(() => sim.stop());

  test("a non-streaming completion has vLLM's chat.completion shape with a tool call and consistent usage", async () => {
    const res = await postJson(`${sim.url}/v1/chat/completions`, orchestratorBody());
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.object).toBe("chat.completion");
    expect(body.id).toMatch(/^chatcmpl-/);
    expect(body.model).toBe(MODEL);
    expect(typeof body.created).toBe("number");
    const choice = body.choices[0];
    expect(choice.index).toBe(0);
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.role).toBe("assistant");
    expect(typeof choice.message.reasoning_content).toBe("string");
    const call = choice.message.tool_calls[0];
    expect(call.type).toBe("function");
    expect(call.id).toMatch(/^chatcmpl-tool-/);
    expect(["search", "enhance_reasoning", "answer"]).toContain(call.function.name);
    const args = JSON.parse(call.function.arguments);
    expect(args.model).toMatch(new RegExp(`^${call.function.name}-[123]$`));
    const u = body.usage;
    expect(u.total_tokens).toBe(u.prompt_tokens + u.completion_tokens);
    expect(u.completion_tokens).toBeGreaterThan(0);

    const tok = await postJson(`${sim.url}/tokenize`, { model: MODEL, messages: orchestratorBody().messages, tools: tools() });
    expect((await tok.json()).count).toBe(u.prompt_tokens);
  });

  test("a streamed completion sends role, split tool-call arguments, finish_reason, a usage chunk, then [DONE]", async () => {
    const plain = await (await postJson(`${sim.url}/v1/chat/completions`, orchestratorBody())).json();
    const res = await postJson(`${sim.url}/v1/chat/completions`, orchestratorBody({ stream: true, stream_options: { include_usage: true } }));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/event-stream");
    const data = sseData(await res.text());
    expect(data.at(-1)).toBe("[DONE]");
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    for (const c of chunks) expect(c.object).toBe("chat.completion.chunk");
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks[0].choices[0].delta.role).toBe("assistant");

    const usageChunk = chunks.at(-1);
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage).toEqual(plain.usage);
    const finish = chunks.at(-2).choices[0];
    expect(finish.finish_reason).toBe("tool_calls");

    let name = "";
    let args = "";
    let argChunks = 0;
    let reasoning = "";
    for (const c of chunks.slice(0, -1)) {
      const d = c.choices[0].delta;
      if (d.reasoning_content) reasoning += d.reasoning_content;
      for (const t of d.tool_calls ?? []) {
        expect(t.index).toBe(0);
        if (t.function?.name) name = t.function.name;
        if (t.function?.arguments) {
          args += t.function.arguments;
          argChunks++;
        }
      }
    }
    const plainCall = plain.choices[0].message.tool_calls[0];
    expect(name).toBe(plainCall.function.name);
    expect(args).toBe(plainCall.function.arguments);
    expect(argChunks).toBeGreaterThan(1);
    expect(reasoning).toBe(plain.choices[0].message.reasoning_content);
  });

  test("a stream without include_usage has no usage chunk", async () => {
    const res = await postJson(`${sim.url}/v1/chat/completions`, orchestratorBody({ stream: true }));
    const data = sseData(await res.text());
    expect(data.at(-1)).toBe("[DONE]");
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    expect(chunks.every((c) => c.choices.length === 1 && c.usage === undefined)).toBe(true);
  });

  test("max_tokens cuts the output with finish_reason length and no parsed tool call", async () => {
    const res = await postJson(`${sim.url}/v1/chat/completions`, orchestratorBody({ max_tokens: 3 }));
    const body = await res.json();
    expect(body.choices[0].finish_reason).toBe("length");
    expect(body.usage.completion_tokens).toBe(3);
    expect(body.choices[0].message.tool_calls).toEqual([]);
  });

  test("an unknown model gets vLLM's 404 body", async () => {
    const res = await postJson(`${sim.url}/v1/chat/completions`, orchestratorBody({ model: "nope/model" }));
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { message: "The model `nope/model` does not exist.", type: "NotFoundError", param: null, code: 404 } });
  });

  test("a body without messages is a 400 naming the field", async () => {
    const res = await postJson(`${sim.url}/v1/chat/completions`, { model: MODEL });
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toContain("messages");
  });

  test("/v1/models, /health and /tokenize answer like vLLM", async () => {
    const models = await (await fetch(`${sim.url}/v1/models`)).json();
    expect(models.object).toBe("list");
    expect(models.data[0]).toMatchObject({ id: MODEL, object: "model", owned_by: "vllm", max_model_len: 32768 });
    expect((await fetch(`${sim.url}/health`)).status).toBe(200);
    const short = await (await postJson(`${sim.url}/tokenize`, { model: MODEL, prompt: "one two" })).json();
    const long = await (await postJson(`${sim.url}/tokenize`, { model: MODEL, prompt: "one two three four five" })).json();
    expect(long.count).toBeGreaterThan(short.count);
    expect(long.tokens).toHaveLength(long.count);
    expect(long.max_model_len).toBe(32768);
  });
});

describe("vLLM simulator context limits", () => {
  let sim: VllmSim;
  beforeAll(async () => {
    sim = await startVllmSim({ model: MODEL, mode: "expert", maxModelLen: 200 });
  });
  afterAll(() => sim.stop());

  test("a prompt longer than the context window gets the real maximum-context-length 400", async () => {
    const res = await postJson(`${sim.url}/v1/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "word ".repeat(400) }], max_tokens: 10 });
    expect(res.status).toBe(400);
    const { error } = await res.json();
    expect(error.type).toBe("BadRequestError");
    expect(error.code).toBe(400);
    expect(error.message).toMatch(/^This model's maximum context length is 200 tokens\. However, you requested (\d+) tokens \((\d+) in the messages, 10 in the completion\)\. Please reduce the length of the messages or completion\.$/);
  });

  test("max_tokens beyond the window gets the real 'is too large' 400 with the numbers", async () => {
    const res = await postJson(`${sim.url}/v1/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "hello" }], max_tokens: 500 });
    expect(res.status).toBe(400);
    const { error } = await res.json();
    const m = error.message.match(/^'max_tokens' or 'max_completion_tokens' is too large: 500\. This model's maximum context length is 200 tokens and your request has (\d+) input tokens \(500 > 200 - (\d+)\)\.$/);
    expect(m).not.toBeNull();
    expect(m[1]).toBe(m[2]);
  });
});

describe("vLLM simulator faults", () => {
  let sim: VllmSim;
  const url = () => `${sim.url}/v1/chat/completions`;
  const body = orchestratorBody({ stream: true, stream_options: { include_usage: true } });
  beforeAll(async () => {
    sim = await startVllmSim({ model: MODEL, mode: "orchestrator", seed: 1, faults: { retryAfterS: 2 } });
  });
  afterAll(() => sim.stop());

  test("429 carries Retry-After and vLLM's error body", async () => {
    const res = await postJson(url(), body, { "x-sim-fault": "429" });
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("2");
    expect((await res.json()).error.code).toBe(429);
  });

  test("500 and 503 answer with their status and an error body", async () => {
    for (const status of [500, 503]) {
      const res = await postJson(url(), body, { "x-sim-fault": String(status) });
      expect(res.status).toBe(status);
      expect((await res.json()).error.code).toBe(status);
    }
  });

  test("hang accepts the request and never answers until the client aborts", async () => {
    const before = sim.stats().inFlight;
    const p = postJson(url(), body, { "x-sim-fault": "hang" }, AbortSignal.timeout(300));
    await waitFor(() => sim.stats().inFlight === before + 1, 2_000, "the hung request to be in flight");
    const err = await fetchError(p);
    expect(["TimeoutError", "AbortError"]).toContain(err.name);
    await waitFor(() => sim.stats().inFlight === before, 2_000, "the aborted request to close");
  });

  test("reset destroys the connection without any response", async () => {
    const err = await fetchError(postJson(url(), body, { "x-sim-fault": "reset" }));
    expect(String(err)).toMatch(/ECONNRESET|closed|socket/i);
  });

  test("stream_cut sends part of the stream, no [DONE], then closes the connection", async () => {
    // On the wire (raw TCP, so no client buffering hides bytes): SSE events, then the close.
    const payload = JSON.stringify(body);
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(sim.port, "127.0.0.1", () =>
        socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: sim\r\nx-sim-fault: stream_cut\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`),
      );
      let buf = "";
      socket.on("data", (d) => (buf += d));
      socket.on("close", () => resolve(buf));
      socket.on("error", reject);
    });
    expect(raw).toStartWith("HTTP/1.1 200");
    const data = sseData(raw.slice(raw.indexOf("\r\n\r\n") + 4).replace(/^[0-9a-f]+\r\n/gm, ""));
    expect(data.length).toBeGreaterThan(1);
    expect(raw).not.toContain("[DONE]");
    expect(raw).not.toContain("\r\n0\r\n\r\n"); // no chunked terminator either

    // Through fetch: the body read fails before any [DONE].
    const res = await postJson(url(), body, { "x-sim-fault": "stream_cut" });
    expect(res.status).toBe(200);
    const err = await fetchError(res.text());
    expect(String(err)).toMatch(/ECONNRESET|closed|socket/i);
  });

  test("stream_error puts an error event inside a 200 stream", async () => {
    const res = await postJson(url(), body, { "x-sim-fault": "stream_error" });
    expect(res.status).toBe(200);
    const data = sseData(await res.text());
    const events = data.filter((d) => d !== "[DONE]").map((d) => JSON.parse(d));
    const errors = events.filter((e) => e.error);
    expect(errors).toHaveLength(1);
    expect(errors[0].error.code).toBe(500);
    expect(events.some((e) => e.object === "chat.completion.chunk")).toBe(true);
    expect(events.some((e) => e.choices?.[0]?.finish_reason)).toBe(false);
  });

  test("forced context_length and max_tokens_too_large give vLLM's 400 wording", async () => {
    const a = await postJson(url(), body, { "x-sim-fault": "context_length" });
    expect(a.status).toBe(400);
    expect((await a.json()).error.message).toMatch(/^This model's maximum context length is 32768 tokens\. However, you requested \d+ tokens/);
    const b = await postJson(url(), body, { "x-sim-fault": "max_tokens_too_large" });
    expect(b.status).toBe(400);
    expect((await b.json()).error.message).toMatch(/^'max_tokens' or 'max_completion_tokens' is too large: \d+\. This model's maximum context length is 32768 tokens/);
  });

  test("malformed_json answers 200 with a body that is not JSON", async () => {
    const res = await postJson(url(), orchestratorBody(), { "x-sim-fault": "malformed_json" });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(() => JSON.parse(text)).toThrow();
  });

  test("an unknown x-sim-fault is a 400 naming the header", async () => {
    const res = await postJson(url(), body, { "x-sim-fault": "meteor" });
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toContain("x-sim-fault");
  });

  test("the fault queue forces the next requests in order, then requests succeed", async () => {
    sim.update({ faults: { queue: ["503", "500", "429"] } });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await postJson(url(), orchestratorBody())).status);
    expect(statuses).toEqual([503, 500, 429, 200]);
    expect(sim.settings().faults.queue).toEqual([]);
  });

  test("a fault rate of 1 fails every request and is counted in stats", async () => {
    const before = sim.stats().byFault["500"] ?? 0;
    sim.update({ faults: { rates: { "500": 1 } } });
    for (let i = 0; i < 3; i++) expect((await postJson(url(), orchestratorBody())).status).toBe(500);
    sim.update({ faults: { rates: {} } });
    expect((await postJson(url(), orchestratorBody())).status).toBe(200);
    expect(sim.stats().byFault["500"]).toBe(before + 3);
  });

  test("admin routes read and change settings and reject a bad patch naming the field", async () => {
    const ok = await postJson(`${sim.url}/admin/settings`, { faults: { queue: ["503"] }, latency: { ttftMs: 1 } });
    expect(ok.status).toBe(200);
    expect((await ok.json()).faults.queue).toEqual(["503"]);
    expect((await postJson(url(), orchestratorBody())).status).toBe(503);
    const bad = await postJson(`${sim.url}/admin/settings`, { faults: { rates: { "418": 0.5 } } });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.message).toContain("faults.rates");
    const stats = await (await fetch(`${sim.url}/admin/stats`)).json();
    expect(stats.requests).toBe(sim.stats().requests);
    expect((await (await fetch(`${sim.url}/admin/settings`)).json()).latency.ttftMs).toBe(1);
  });
});

describe("vLLM simulator scheduling and lifecycle", () => {
  test("with maxNumSeqs + 1 concurrent requests the last one waits for a slot", async () => {
    const sim = await startVllmSim({ model: MODEL, mode: "expert", latency: { maxNumSeqs: 2, ttftMs: 400 } });
    try {
      const done: number[] = [];
      const reqs = [0, 1, 2].map(async (i) => {
        await new Promise((r) => setTimeout(r, i * 20)); // arrival order 0, 1, 2
        const res = await postJson(`${sim.url}/v1/chat/completions`, { model: MODEL, messages: [{ role: "user", content: `q${i}` }] });
        await res.json();
        done.push(i);
      });
      await waitFor(() => sim.stats().running === 2 && sim.stats().waiting === 1, 3_000, "two running, one waiting");
      await Promise.all(reqs);
      expect(done.at(-1)).toBe(2);
      expect(sim.stats()).toMatchObject({ running: 0, waiting: 0, completed: 3 });
    } finally {
      await sim.stop();
    }
  }, 10_000);

  test("time to first token delays a streamed response by at least ttftMs", async () => {
    const sim = await startVllmSim({ model: MODEL, mode: "expert", latency: { ttftMs: 150, perTokenMs: 1 } });
    try {
      const t0 = performance.now();
      const res = await postJson(`${sim.url}/v1/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "hi <answer>" }], stream: true });
      const reader = res.body!.getReader();
      await reader.read();
      expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
      while (!(await reader.read()).done);
    } finally {
      await sim.stop();
    }
  });

  test("down refuses connections and up accepts them again on the same port", async () => {
    const sim = await startVllmSim({ model: MODEL, mode: "expert" });
    try {
      const port = sim.port;
      expect((await fetch(`${sim.url}/health`)).status).toBe(200);
      await sim.down();
      const err = await fetchError(fetch(`${sim.url}/health`));
      expect(String((err as { code?: string }).code ?? err)).toMatch(/ECONNREFUSED|ConnectionRefused/);
      await sim.up();
      expect(sim.port).toBe(port);
      expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    } finally {
      await sim.stop();
    }
  });

  test("down resets requests that were hanging", async () => {
    const sim = await startVllmSim({ model: MODEL, mode: "expert", faults: { queue: ["hang"] } });
    try {
      const p = postJson(`${sim.url}/v1/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "x" }] });
      await waitFor(() => sim.stats().inFlight === 1, 2_000, "the hang");
      await sim.down();
      await fetchError(p);
    } finally {
      await sim.stop();
    }
  });
});
