// An OpenAI-compatible vLLM simulator: the same routes, bodies, SSE chunks and error bodies
// as `vllm serve`, with seeded content (sim/policy.ts), a max_num_seqs scheduler, latency and
// fault injection. See sim/README.md for the wire formats and fault kinds.
import type { IncomingMessage, ServerResponse } from "node:http";
import { chooseFault, FAULT_KINDS, type FaultKind, UnknownFaultError } from "./faults";
import { faultHeader, handleAdmin, readBody, resetConnection, sendJson, sendText, serveSim, type SimServer, sleep, trackRequest } from "./http";
import { decideOrchestratorTurn, type Generation, type ToolSpec, writeExpertReply } from "./policy";
import { jittered, rngFor } from "./rng";
import { mergeSettings, parsePatch, SettingsError, type VllmSettings, VllmSettingsPatch } from "./settings";
import { type ChatMessage, countTokens, renderChat, splitTokens, tokenize, truncateToTokens } from "./tokenizer";

export type { FaultKind } from "./faults";
export type { VllmSettings } from "./settings";

export type VllmSimOptions = VllmSettingsPatch & {
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  model: string;
  mode: "orchestrator" | "expert";
};

export type VllmStats = {
  /** Chat completion requests received. */
  requests: number;
  /** Chat completion requests whose connection is still open. */
  inFlight: number;
  /** Requests holding one of the max_num_seqs slots. */
  running: number;
  /** Requests queued behind max_num_seqs. */
  waiting: number;
  /** Chat completions answered 200 and finished. */
  completed: number;
  byFault: Partial<Record<FaultKind, number>>;
  byStatus: Record<string, number>;
  promptTokens: number;
  completionTokens: number;
};

export type VllmSim = SimServer<VllmSettings, VllmSettingsPatch, VllmStats>;

const CUT_STALL_MS = 50;
const DEFAULT_LATENCY = { ttftMs: 0, perTokenMs: 0, perPromptTokenMs: 0, jitter: 0, maxNumSeqs: 256 };

function vllmError(status: number, type: string, message: string) {
  return { error: { message, type, param: null, code: status } };
}

/** Ends the TCP connection under a response that is not finished (the bytes written still arrive). */
function cutConnection(res: ServerResponse): void {
  const socket = res.socket;
  if (!socket) return;
  // Stall briefly first, as a dying stream does: some clients (Bun's fetch) drop body bytes
  // still unread when the connection closes, and would never see the partial stream.
  setTimeout(() => {
    socket.end();
    // If the peer never reads, do not keep the socket forever.
    setTimeout(() => socket.destroy(), 1_000).unref();
  }, CUT_STALL_MS).unref();
}

function randomId(prefix: string): string {
  return prefix + crypto.randomUUID().replaceAll("-", "");
}

/** FIFO admission like vLLM's scheduler: at most maxNumSeqs requests generate at once. */
class Scheduler {
  running = 0;
  private waiters: (() => void)[] = [];
  constructor(private max: () => number) {}

  get waiting(): number {
    return this.waiters.length;
  }

  /** null when admitted at once (no await on the hot path), else a promise plus a cancel. */
  acquire(): { wait: Promise<void>; cancel: () => void } | null {
    if (this.running < this.max() && this.waiters.length === 0) {
      this.running++;
      return null;
    }
    let resolveFn!: () => void;
    const wait = new Promise<void>((r) => (resolveFn = r));
    const waiter = () => {
      this.running++;
      resolveFn();
    };
    this.waiters.push(waiter);
    return {
      wait,
      cancel: () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
      },
    };
  }

  release(): void {
    this.running--;
    this.drain();
  }

  drain(): void {
    while (this.running < this.max() && this.waiters.length > 0) this.waiters.shift()!();
  }
}

type ChatBody = {
  model?: unknown;
  messages?: unknown;
  tools?: unknown;
  tool_choice?: unknown;
  stream?: unknown;
  stream_options?: { include_usage?: boolean } | null;
  max_tokens?: unknown;
  max_completion_tokens?: unknown;
};

/** The generated turn after applying max_tokens: what gets sent and how it finished. */
type Output = {
  reasoning: string | null;
  content: string | null;
  toolCalls: Generation["toolCalls"];
  finishReason: "stop" | "length" | "tool_calls";
  completionTokens: number;
};

function toolCallText(g: Generation): string {
  return g.toolCalls.map((c) => `<tool_call>\n{"name": "${c.name}", "arguments": ${c.arguments}}\n</tool_call>`).join("\n");
}

/** Applies the max_tokens limit the way vLLM does: the output stops mid-way with "length". */
function limitOutput(g: Generation, limit: number): Output {
  const reasoningTokens = g.reasoning ? countTokens(g.reasoning) : 0;
  const bodyText = g.toolCalls.length > 0 ? toolCallText(g) : (g.content ?? "");
  const bodyTokens = countTokens(bodyText);
  const total = reasoningTokens + bodyTokens;
  if (total <= limit) {
    return {
      reasoning: g.reasoning,
      content: g.content,
      toolCalls: g.toolCalls,
      finishReason: g.toolCalls.length > 0 ? "tool_calls" : "stop",
      completionTokens: total,
    };
  }
  // Cut output: the tool parser sees an unfinished <tool_call>, so vLLM returns it as text.
  if (limit <= reasoningTokens) {
    return { reasoning: truncateToTokens(g.reasoning ?? "", limit), content: null, toolCalls: [], finishReason: "length", completionTokens: limit };
  }
  return {
    reasoning: g.reasoning,
    content: truncateToTokens(bodyText, limit - reasoningTokens),
    toolCalls: [],
    finishReason: "length",
    completionTokens: limit,
  };
}

export async function startVllmSim(opts: VllmSimOptions): Promise<VllmSim> {
  const { host = "127.0.0.1", port = 0, ...patch } = opts;
  const parsed = parsePatch(VllmSettingsPatch, patch);
  if (!parsed.ok) throw new SettingsError(`startVllmSim: ${parsed.message}`);

  let settings: VllmSettings = mergeSettings(
    {
      model: opts.model,
      mode: opts.mode,
      seed: 0,
      maxModelLen: 32768,
      latency: { ...DEFAULT_LATENCY },
      faults: { rates: {}, queue: [], retryAfterS: 1 },
      answers: {},
      accuracy: 1,
      invalidToolCallRate: 0,
      enableAutoToolChoice: true,
    },
    parsed.value,
  );
  let faultRng = rngFor(settings.seed, "faults");
  let requestNo = 0;
  const counters = { requests: 0, inFlight: 0, completed: 0, promptTokens: 0, completionTokens: 0 };
  const byFault: Partial<Record<FaultKind, number>> = {};
  const byStatus: Record<string, number> = {};
  const scheduler = new Scheduler(() => settings.latency.maxNumSeqs);

  function update(p: VllmSettingsPatch): VllmSettings {
    const r = parsePatch(VllmSettingsPatch, p);
    if (!r.ok) throw new SettingsError(r.message);
    const seedChanged = r.value.seed !== undefined && r.value.seed !== settings.seed;
    settings = mergeSettings(settings, r.value);
    if (seedChanged) faultRng = rngFor(settings.seed, "faults");
    scheduler.drain();
    return snapshot();
  }

  function snapshot(): VllmSettings {
    return structuredClone(settings);
  }

  function count(status: number): void {
    byStatus[status] = (byStatus[status] ?? 0) + 1;
  }

  function reply(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
    count(status);
    sendJson(res, status, body, headers);
  }

  function contextLengthMessage(promptTokens: number, completion: number): string {
    return (
      `This model's maximum context length is ${settings.maxModelLen} tokens. However, you requested ` +
      `${promptTokens + completion} tokens (${promptTokens} in the messages, ${completion} in the completion). ` +
      `Please reduce the length of the messages or completion.`
    );
  }

  function maxTokensMessage(maxTokens: number, promptTokens: number): string {
    return (
      `'max_tokens' or 'max_completion_tokens' is too large: ${maxTokens}. This model's maximum context length is ` +
      `${settings.maxModelLen} tokens and your request has ${promptTokens} input tokens ` +
      `(${maxTokens} > ${settings.maxModelLen} - ${promptTokens}).`
    );
  }

  async function handleChat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const isClosed = trackRequest(res, counters);
    const s = settings;
    const raw = await readBody(req);

    let fault: FaultKind | null;
    try {
      fault = chooseFault({ kinds: FAULT_KINDS, header: faultHeader(req), faults: s.faults, rng: faultRng });
    } catch (err) {
      if (err instanceof UnknownFaultError) return reply(res, 400, vllmError(400, "BadRequestError", err.message));
      throw err;
    }
    if (fault) byFault[fault] = (byFault[fault] ?? 0) + 1;

    switch (fault) {
      case "hang":
        return; // accepted, never answered; the client's timeout (or down/stop) ends it
      case "reset":
        return resetConnection(req);
      case "429":
        return reply(
          res,
          429,
          vllmError(429, "RateLimitError", "Too many requests: the server is over capacity (simulated)."),
          s.faults.retryAfterS == null ? undefined : { "retry-after": String(s.faults.retryAfterS) },
        );
      case "500":
        return reply(res, 500, vllmError(500, "InternalServerError", "Internal server error (simulated)."));
      case "503":
        return reply(res, 503, vllmError(503, "ServiceUnavailableError", "The server is temporarily unavailable (simulated)."));
      case "malformed_json":
        count(200);
        return sendText(res, 200, `{"id":"${randomId("chatcmpl-")}","object":"chat.completion","choices":[{"index":0,"message":`, "application/json");
    }

    let body: ChatBody;
    try {
      body = JSON.parse(raw) as ChatBody;
    } catch (err) {
      return reply(res, 400, vllmError(400, "BadRequestError", `Invalid JSON body: ${(err as Error).message}`));
    }
    if (!body || typeof body !== "object" || Array.isArray(body)) {
      return reply(res, 400, vllmError(400, "BadRequestError", "body: expected a JSON object"));
    }
    if (body.model !== s.model) {
      return reply(res, 404, vllmError(404, "NotFoundError", `The model \`${String(body.model)}\` does not exist.`));
    }
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      return reply(res, 400, vllmError(400, "BadRequestError", "messages: field required (a non-empty array of {role, content})"));
    }
    for (const [i, m] of (body.messages as unknown[]).entries()) {
      if (!m || typeof m !== "object" || typeof (m as { role?: unknown }).role !== "string") {
        return reply(res, 400, vllmError(400, "BadRequestError", `messages[${i}].role: field required`));
      }
    }
    const messages = body.messages as ChatMessage[];
    const tools = Array.isArray(body.tools) ? (body.tools as ToolSpec[]) : [];
    for (const [i, t] of tools.entries()) {
      if (!t || typeof t !== "object" || !t.function || typeof t.function.name !== "string") {
        return reply(res, 400, vllmError(400, "BadRequestError", `tools[${i}].function.name: field required`));
      }
    }
    const toolChoice = body.tool_choice ?? (tools.length > 0 ? "auto" : "none");
    if (toolChoice === "auto" && tools.length > 0 && !s.enableAutoToolChoice) {
      return reply(
        res,
        400,
        vllmError(400, "BadRequestError", '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'),
      );
    }
    const rawMax = body.max_completion_tokens ?? body.max_tokens;
    if (rawMax != null && (typeof rawMax !== "number" || !Number.isInteger(rawMax) || rawMax < 1)) {
      return reply(res, 400, vllmError(400, "BadRequestError", `max_tokens must be at least 1, got ${String(rawMax)}.`));
    }
    const maxTokens = rawMax as number | null | undefined;
    const promptTokens = countTokens(renderChat(messages, tools));

    if (fault === "context_length") {
      const completion = maxTokens ?? 1000;
      const shown = Math.max(promptTokens, s.maxModelLen + 1 - completion);
      return reply(res, 400, vllmError(400, "BadRequestError", contextLengthMessage(shown, completion)));
    }
    if (fault === "max_tokens_too_large") {
      const shown = Math.max(maxTokens ?? 0, s.maxModelLen - promptTokens + 1);
      return reply(res, 400, vllmError(400, "BadRequestError", maxTokensMessage(shown, promptTokens)));
    }
    if (promptTokens >= s.maxModelLen) {
      return reply(res, 400, vllmError(400, "BadRequestError", contextLengthMessage(promptTokens, maxTokens ?? 0)));
    }
    if (maxTokens != null && promptTokens + maxTokens > s.maxModelLen) {
      return reply(res, 400, vllmError(400, "BadRequestError", maxTokensMessage(maxTokens, promptTokens)));
    }

    const generation =
      s.mode === "orchestrator"
        ? decideOrchestratorTurn({ messages, tools, toolChoice, seed: s.seed, invalidToolCallRate: s.invalidToolCallRate })
        : writeExpertReply({ messages, seed: s.seed, answers: s.answers, accuracy: s.accuracy });
    const out = limitOutput(generation, maxTokens ?? s.maxModelLen - promptTokens);

    // Scheduling: wait for a slot, then prefill (time to first token), then decode.
    const admission = scheduler.acquire();
    if (admission) {
      const cancel = () => admission.cancel();
      res.once("close", cancel);
      await admission.wait;
      res.off("close", cancel);
      if (isClosed()) return scheduler.release();
    }
    let released = false;
    const release = () => {
      if (!released) {
        released = true;
        scheduler.release();
      }
    };
    res.once("close", release);

    const lat = s.latency;
    const latRng = lat.jitter > 0 ? rngFor(s.seed, "latency", ++requestNo) : () => 0.5;
    const ttft = jittered(lat.ttftMs + promptTokens * lat.perPromptTokenMs, lat.jitter, latRng);
    const perToken = jittered(lat.perTokenMs, lat.jitter, latRng);
    if (ttft > 0) await sleep(ttft);
    if (isClosed()) return;

    counters.promptTokens += promptTokens;
    counters.completionTokens += out.completionTokens;
    const usage = { prompt_tokens: promptTokens, total_tokens: promptTokens + out.completionTokens, completion_tokens: out.completionTokens, prompt_tokens_details: null };
    const id = randomId("chatcmpl-");
    const created = Math.floor(Date.now() / 1000);

    if (body.stream === true) {
      await streamOut({ res, id, created, out, usage, perToken, fault, includeUsage: body.stream_options?.include_usage === true, isClosed });
      release();
      return;
    }

    if (perToken > 0 && out.completionTokens > 0) await sleep(perToken * out.completionTokens);
    if (isClosed()) return;
    if (fault === "stream_cut") {
      // A non-streaming response cut mid-body: headers promise more bytes than arrive.
      count(200);
      const text = JSON.stringify({ id, object: "chat.completion" });
      res.writeHead(200, { "content-type": "application/json", "content-length": text.length * 2 });
      res.write(text);
      cutConnection(res);
      return;
    }
    if (fault === "stream_error") {
      release();
      return reply(res, 500, vllmError(500, "InternalServerError", "Engine error during generation (simulated)."));
    }
    counters.completed++;
    release();
    reply(res, 200, {
      id,
      object: "chat.completion",
      created,
      model: s.model,
      choices: [
        {
          index: 0,
          message: {
            role: "assistant",
            reasoning_content: out.reasoning,
            content: out.content,
            tool_calls: out.toolCalls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } })),
          },
          logprobs: null,
          finish_reason: out.finishReason,
          stop_reason: null,
        },
      ],
      usage,
      prompt_logprobs: null,
    });
  }

  async function streamOut(o: {
    res: ServerResponse;
    id: string;
    created: number;
    out: Output;
    usage: Record<string, unknown>;
    perToken: number;
    fault: FaultKind | null;
    includeUsage: boolean;
    isClosed: () => boolean;
  }): Promise<void> {
    const { res, out } = o;
    const head = `data: {"id":"${o.id}","object":"chat.completion.chunk","created":${o.created},"model":${JSON.stringify(settings.model)},"choices":[{"index":0,"delta":`;
    const tail = `,"logprobs":null,"finish_reason":null}]}\n\n`;
    // Each event carries one token, as vLLM's per-step streaming does.
    const events: string[] = [`${head}{"role":"assistant","content":""}${tail}`];
    if (out.reasoning) for (const p of splitTokens(out.reasoning)) events.push(`${head}${JSON.stringify({ reasoning_content: p })}${tail}`);
    if (out.content) for (const p of splitTokens(out.content)) events.push(`${head}${JSON.stringify({ content: p })}${tail}`);
    out.toolCalls.forEach((c, index) => {
      events.push(`${head}${JSON.stringify({ tool_calls: [{ index, id: c.id, type: "function", function: { name: c.name, arguments: "" } }] })}${tail}`);
      for (const p of splitTokens(c.arguments)) events.push(`${head}${JSON.stringify({ tool_calls: [{ index, function: { arguments: p } }] })}${tail}`);
    });
    events.push(
      `data: ${JSON.stringify({ id: o.id, object: "chat.completion.chunk", created: o.created, model: settings.model, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: out.finishReason, stop_reason: null }] })}\n\n`,
    );
    if (o.includeUsage) {
      events.push(`data: ${JSON.stringify({ id: o.id, object: "chat.completion.chunk", created: o.created, model: settings.model, choices: [], usage: o.usage })}\n\n`);
    }
    // Faults mid-stream happen after about half of the events.
    const cutAt = o.fault === "stream_cut" || o.fault === "stream_error" ? Math.max(2, Math.floor(events.length / 2)) : events.length;
    count(200);
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive" });

    if (o.perToken <= 0) {
      res.write(events.slice(0, cutAt).join(""));
    } else {
      const start = performance.now();
      let pending = "";
      for (let i = 0; i < cutAt; i++) {
        pending += events[i];
        const due = start + i * o.perToken;
        const ahead = due - performance.now();
        // Sleep only when at least a millisecond ahead, so tiny per-token times batch up.
        if (ahead >= 1) {
          res.write(pending);
          pending = "";
          await sleep(ahead);
          if (o.isClosed()) return;
        }
      }
      if (pending) res.write(pending);
    }
    if (o.isClosed()) return;
    if (o.fault === "stream_cut") {
      // Close without [DONE] or the chunked terminator: end() flushes what was written, then
      // FIN (destroy() could drop the flushed-but-unsent bytes, so the client would see nothing).
      cutConnection(res);
      return;
    }
    if (o.fault === "stream_error") {
      res.write(`data: ${JSON.stringify(vllmError(500, "InternalServerError", "Engine error during generation (simulated)."))}\n\n`);
    } else {
      counters.completed++;
    }
    res.end("data: [DONE]\n\n");
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    const method = req.method ?? "GET";
    if (method === "POST" && path === "/v1/chat/completions") return handleChat(req, res);
    if (method === "GET" && path === "/health") return sendText(res, 200, "");
    if (method === "GET" && path === "/v1/models") {
      return sendJson(res, 200, {
        object: "list",
        data: [
          {
            id: settings.model,
            object: "model",
            created: Math.floor(Date.now() / 1000),
            owned_by: "vllm",
            root: settings.model,
            parent: null,
            max_model_len: settings.maxModelLen,
          },
        ],
      });
    }
    if (method === "POST" && path === "/tokenize") return handleTokenize(req, res);
    if (await handleAdmin<VllmSettingsPatch>({ req, res, path, method, snapshot, update, stats })) return;
    return sendJson(res, 404, { detail: "Not Found" });
  }

  async function handleTokenize(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body: { model?: unknown; prompt?: unknown; messages?: unknown; tools?: unknown };
    try {
      body = JSON.parse(await readBody(req));
    } catch (err) {
      return sendJson(res, 400, vllmError(400, "BadRequestError", `Invalid JSON body: ${(err as Error).message}`));
    }
    if (body.model !== undefined && body.model !== settings.model) {
      return sendJson(res, 404, vllmError(404, "NotFoundError", `The model \`${String(body.model)}\` does not exist.`));
    }
    let text: string;
    if (typeof body.prompt === "string") text = body.prompt;
    else if (Array.isArray(body.messages)) text = renderChat(body.messages as ChatMessage[], body.tools);
    else return sendJson(res, 400, vllmError(400, "BadRequestError", "prompt or messages: one of them is required"));
    const tokens = tokenize(text);
    return sendJson(res, 200, { count: tokens.length, max_model_len: settings.maxModelLen, tokens, token_strs: null });
  }

  function stats(): VllmStats {
    return {
      ...counters,
      running: scheduler.running,
      waiting: scheduler.waiting,
      byFault: { ...byFault },
      byStatus: { ...byStatus },
    };
  }

  return serveSim({ host, port, handle, settings: snapshot, update, stats });
}
