// runProtocol on one task against the simulated cluster, with the rows it records.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { loadRunConfig } from "../../runner/config";
import { callChat, type ChatRequest } from "../../runner/llm-client";
import { correctionMessages, offeredTools, runProtocol, validateToolCall, type ProtocolDeps } from "../../runner/protocol";
import { cutSeq, referenceExpertContext, referenceOrchestratorContext } from "../../runner/protocol/context";
import { addReferenceDocuments, chooseQuery } from "../../runner/protocol/search";
import { retrieve } from "../../runner/retrieval-client";
import { Recorder } from "../../runner/recorder";
import { ReplicaPool } from "../../runner/replicas";
import type { RowBatch } from "../../runner/task-queue";
import { BpeTokenizer, CharsTokenizer, type Tokenizer } from "../../runner/tokenizer";
import { startSimCluster, type SimCluster } from "../../sim/cluster";
import { writeExpertReply } from "../../sim/policy";
import { fill } from "../../runner/protocol/py";
import { answersOf, readJsonl, simRunConfig } from "./_harness";

const rows = readJsonl("data/frames-sample.jsonl").slice(0, 40);
const ORCHESTRATOR = "nvidia/Nemotron-Orchestrator-8B";
let cluster: SimCluster;

beforeAll(async () => {
  cluster = await startSimCluster({ seed: 3, answers: answersOf(rows), accuracy: 1 });
});
afterAll(async () => {
  await cluster.stop();
});

function depsFor(c: SimCluster): ProtocolDeps {
  const urls = (name: string) => (c.config[name] ?? []).map((e) => `http://${e.ip_addr}:${e.port}`);
  const pools = new Map<string, ReplicaPool>();
  const pool = (name: string) => pools.get(name) ?? pools.set(name, new ReplicaPool(name, urls(name))).get(name)!;
  return {
    pool,
    retrievalBackends: (names) => names.map((name) => ({ name, pool: pool(name) })),
    judgePool: () => pool("openai/gpt-oss-20b"),
    tokenizer: new CharsTokenizer(),
  };
}

/** Sets the simulated orchestrator's invalid tool-call rate on every replica for one test. */
async function withInvalidRate<T>(rate: number, body: () => Promise<T>): Promise<T> {
  const sims = cluster.byModel(ORCHESTRATOR).map((r) => r.sim as any);
  for (const s of sims) s.update({ invalidToolCallRate: rate });
  try {
    return await body();
  } finally {
    for (const s of sims) s.update({ invalidToolCallRate: 0 });
  }
}

/** The longest run of consecutive invalid steps. */
function longestInvalidRun(toolCalls: { status: string }[]): number {
  let best = 0;
  let run = 0;
  for (const t of toolCalls) {
    run = t.status === "invalid" ? run + 1 : 0;
    best = Math.max(best, run);
  }
  return best;
}

async function runOne(config: Record<string, unknown>, row = rows[0], extraDeps: Partial<ProtocolDeps> = {}) {
  const batches: RowBatch[] = [];
  const recorder = new Recorder({ recordRows: async (b) => void batches.push(b) }, { flushMs: 10_000 });
  const outcome = await runProtocol({
    task: { id: 1, runId: 1, externalId: row.id, input: row, attempt: 1, maxAttempts: 3, leaseToken: "t", leaseExpiresAt: 0 },
    config: loadRunConfig({ benchmark: "frames", config }),
    deps: { ...depsFor(cluster), ...extraDeps },
    recorder: recorder.forTask({ runId: 1, taskId: 1, attempt: 1 }),
    signal: new AbortController().signal,
  });
  await recorder.close();
  const all = {
    toolCalls: batches.flatMap((b) => b.toolCalls ?? []),
    components: batches.flatMap((b) => b.components ?? []),
    llmCalls: batches.flatMap((b) => b.llmCalls ?? []),
  };
  return { outcome, ...all };
}

describe("runProtocol", () => {
  test("searches, answers and grades, leaving a tool call, components and LLM attempts per step", async () => {
    const { outcome, toolCalls, components, llmCalls } = await runOne(simRunConfig());
    expect(outcome.kind).toBe("succeeded");
    if (outcome.kind !== "succeeded") return;
    expect(outcome.result.correct).toBe(true);
    expect(outcome.result.prediction).toBe(rows[0].answer);
    expect(toolCalls.at(-1)!.tool).toBe("answer");
    expect(toolCalls.some((t) => t.tool === "search")).toBe(true);
    for (const t of toolCalls) {
      expect(components.some((c) => c.step === t.step && c.component === "orchestrator")).toBe(true);
      expect(llmCalls.some((l) => l.step === t.step && l.role === "orchestrator")).toBe(true);
    }
    const search = toolCalls.find((t) => t.tool === "search")!;
    const parts = components.filter((c) => c.step === search.step).map((c) => c.component).sort();
    expect(parts).toEqual(["orchestrator", "query_llm", "retrieval"]);
    // a tool's latency is its own components; the orchestrator call that chose it is its own row
    for (const t of toolCalls) {
      const own = components.filter((c) => c.step === t.step && c.component !== "orchestrator").reduce((n, c) => n + c.ms, 0);
      expect(t.durationMs).toBeCloseTo(own, 6);
    }
  });

  test("invalid tool calls are recorded with the raw reply, and too many in a row fail the task as unparsable", async () => {
    await withInvalidRate(1, async () => {
      const { outcome, toolCalls } = await runOne(simRunConfig({ maxInvalidSteps: 2 }));
      expect(outcome).toMatchObject({ kind: "failed", errorClass: "orchestrator_unparsable", retryable: false });
      expect(toolCalls.length).toBe(3);
      for (const t of toolCalls) {
        expect(t.status).toBe("invalid");
        expect(["unknown_tool", "arguments_not_json"]).toContain(t.errorClass!);
        expect(JSON.stringify(t.detail)).toContain("toolCalls");
      }
    });
  });

  test("the retry after an invalid reply carries that reply and what was wrong with it, until a valid step", async () => {
    const requests: ChatRequest["messages"][] = [];
    const chat: typeof callChat = (input) => {
      if (input.role === "orchestrator") requests.push(input.request.messages);
      return callChat(input);
    };
    // seeded: every row whose first reply is invalid shows the feedback; find one
    const found = await withInvalidRate(0.5, async () => {
      for (const row of rows) {
        requests.length = 0;
        const r = await runOne(simRunConfig({ maxInvalidSteps: 3 }), row, { chat });
        const first = r.toolCalls.findIndex((t) => t.status === "invalid");
        if (first >= 0 && first + 1 < requests.length) return { ...r, first, requests: [...requests] };
      }
      return null;
    });
    expect(found).not.toBeNull();
    const { toolCalls, first, requests: sent } = found!;
    const bad = toolCalls[first]!;
    const before = sent[first]!;
    const retry = sent[first + 1]!;
    // the retry is the same conversation plus the invalid reply and a note naming the problem
    expect(retry.slice(0, before.length)).toEqual(before);
    const [said, note] = retry.slice(before.length, before.length + 2);
    expect(said!.role).toBe("assistant");
    expect(String(said!.content)).toContain(`tool call: ${bad.tool}`);
    expect(note!.role).toBe("user");
    expect(String(note!.content)).toContain(bad.errorMessage!);
    expect(String(note!.content)).toMatch(/choose|JSON object/);
    // after the next valid step the notes are gone: the conversation is tool calls and results
    const nextValid = toolCalls.findIndex((t, i) => i > first && t.status !== "invalid");
    if (nextValid >= 0 && nextValid + 1 < sent.length) {
      expect(sent[nextValid + 1]!.some((m) => m.role === "user" && String(m.content).startsWith("Your last reply was not a valid tool call"))).toBe(false);
    }
  }, 60_000);

  test("with 30% invalid orchestrator replies most tasks still succeed, every invalid step is recorded, and only a run of invalid replies fails a task", async () => {
    const maxInvalidSteps = 2;
    const results = await withInvalidRate(0.3, () =>
      Promise.all(rows.map((row) => runOne(simRunConfig({ maxInvalidSteps, maxRounds: 20 }), row))),
    );
    const succeeded = results.filter((r) => r.outcome.kind === "succeeded");
    expect(succeeded.length).toBeGreaterThan(rows.length * 0.7);
    let invalidRows = 0;
    let recoveredTasks = 0;
    for (const r of results) {
      const invalid = r.toolCalls.filter((t) => t.status === "invalid");
      invalidRows += invalid.length;
      for (const t of invalid) {
        expect(t.errorClass).toBeTruthy();
        expect(JSON.stringify(t.detail)).toContain("toolCalls");
      }
      if (r.outcome.kind === "succeeded") {
        expect(r.outcome.result.invalid_steps).toBe(invalid.length);
        expect(longestInvalidRun(r.toolCalls)).toBeLessThanOrEqual(maxInvalidSteps);
        if (invalid.length > 0) recoveredTasks++;
      } else {
        // a failure is the unparsable orchestrator, reached by maxInvalidSteps + 1 in a row
        expect(r.outcome).toMatchObject({ kind: "failed", errorClass: "orchestrator_unparsable" });
        const tail = r.toolCalls.slice(-(maxInvalidSteps + 1));
        expect(tail.every((t) => t.status === "invalid")).toBe(true);
        expect(longestInvalidRun(r.toolCalls)).toBe(maxInvalidSteps + 1);
      }
    }
    expect(invalidRows).toBeGreaterThan(rows.length * 0.3);
    // the old behaviour (same conversation again) made every invalid reply repeat to failure
    expect(recoveredTasks).toBeGreaterThan(0);
    expect(recoveredTasks).toBeGreaterThan(invalidRows / (maxInvalidSteps + 1) / 4);
  }, 90_000);

  test("an endpoint without auto tool choice fails the task as tool_choice_unsupported", async () => {
    const orch = cluster.byModel(ORCHESTRATOR)[0].sim as any;
    orch.update({ enableAutoToolChoice: false });
    try {
      const { outcome } = await runOne(simRunConfig());
      expect(outcome).toMatchObject({ kind: "failed", errorClass: "tool_choice_unsupported", retryable: false });
    } finally {
      orch.update({ enableAutoToolChoice: true });
    }
  });

  test("an unreachable orchestrator ends the attempt as retryable (requeue), not as a wrong answer", async () => {
    const orch = cluster.byModel(ORCHESTRATOR)[0].sim;
    await orch.down();
    try {
      const { outcome } = await runOne(simRunConfig());
      expect(outcome).toMatchObject({ kind: "failed", retryable: true });
    } finally {
      await orch.up();
    }
  });
});

describe("validateToolCall", () => {
  const config = loadRunConfig({ benchmark: "frames", config: {} });
  const reply = (name: string, args: string) => ({ toolCalls: [{ id: "1", name, arguments: args }], finishReason: "tool_calls", content: "" });

  test("accepts an offered tool with an allowed alias", () => {
    expect(validateToolCall({ reply: reply("search", '{"model":"search-1"}'), config, withheld: null })).toEqual({ ok: true, tool: "search", alias: "search-1" });
  });

  test("rejects unknown tools, non-JSON arguments, disallowed aliases and a withheld tool", () => {
    const reason = (name: string, args: string, withheld: string | null = null) => {
      const r = validateToolCall({ reply: reply(name, args), config, withheld });
      return r.ok ? "ok" : r.reason;
    };
    expect(reason("browse", '{"model":"search-1"}')).toBe("unknown_tool");
    expect(reason("search", '{"model":')).toBe("arguments_not_json");
    expect(reason("search", '{"model":"answer-1"}')).toBe("model_not_allowed");
    expect(reason("search", '{"model":"search-1"}', "search")).toBe("tool_withheld");
    expect(validateToolCall({ reply: { toolCalls: [], finishReason: "length", content: "..." }, config, withheld: null })).toMatchObject({ ok: false, reason: "orchestrator_length" });
  });
});

describe("correctionMessages", () => {
  const config = loadRunConfig({ benchmark: "frames", config: {} });
  const offered = ["search", "enhance_reasoning", "answer"];
  const note = (name: string, args: string, content = "") => {
    const reply = { toolCalls: [{ id: "1", name, arguments: args }], finishReason: "tool_calls", content };
    const pick = validateToolCall({ reply, config, withheld: null });
    if (pick.ok) throw new Error("expected an invalid pick");
    return correctionMessages({ reply, pick, offered, config });
  };

  test("names an unknown tool and lists the tools offered", () => {
    const [said, told] = note("web_browse", '{"model":"search-1"}');
    expect(said).toEqual({ role: "assistant", content: 'tool call: web_browse {"model":"search-1"}' });
    expect(told!.role).toBe("user");
    expect(told!.content).toContain("unknown tool 'web_browse'");
    expect(told!.content).toContain("choose one of [search, enhance_reasoning, answer]");
  });

  test("quotes arguments that are not JSON and asks for a JSON object", () => {
    const told = note("search", "{'model': 'search-1'")[1]!;
    expect(told.content).toContain("arguments are not JSON: {'model': 'search-1'");
    expect(told.content).toContain("JSON object");
  });

  test("names a disallowed model alias and the aliases the tool allows", () => {
    const told = note("search", '{"model":"answer-1"}')[1]!;
    expect(told.content).toContain("model 'answer-1' is not allowed for search");
    const allowed = config.toolModels.search!.filter((a) => config.models[a]);
    expect(allowed.length).toBeGreaterThan(0);
    expect(told.content).toContain(`choose the model from [${allowed.join(", ")}]`);
  });

  test("keeps a long reply short", () => {
    const [said] = note("web_browse", "{}", "x".repeat(10_000));
    expect(String(said!.content).length).toBeLessThan(1100);
  });
});

// ---- the reference profiles' rules, one at a time ------------------------------------------

/** One token per character, so a budget of n keeps the last n characters (as in replay.test.ts). */
class CharPerToken implements Tokenizer {
  readonly source = "chars" as const;
  async count(text: string) {
    return text.length;
  }
  async tail(text: string, maxTokens: number) {
    return text.length <= maxTokens ? { text, tokens: text.length } : { text: text.slice(text.length - maxTokens), tokens: maxTokens };
  }
}

describe("reference documents", () => {
  test("each search's results join in reverse rank, a content already listed is skipped, ids are not used", () => {
    const state = { docs: [] as { id: string | null; contents: string }[], seenDocs: new Set<string>() };
    expect(addReferenceDocuments(state, ["A", "B", "C"])).toBe(3);
    expect(addReferenceDocuments(state, ["D", "B", "E", "E"])).toBe(2);
    expect(state.docs.map((d) => d.contents)).toEqual(["C", "B", "A", "E", "D"]);
  });
});

describe("tools offered", () => {
  const frames = loadRunConfig({ benchmark: "frames", config: {} });
  const hle = loadRunConfig({ benchmark: "hle", config: {} });
  const names = (o: ReturnType<typeof offeredTools>) => o.offered.map((t) => t.function.name);
  const doc = [{ id: null, contents: "x" }];

  test("FRAMES stops offering search once any document exists; HLE always offers every tool", () => {
    expect(names(offeredTools({ config: frames, reference: frames.reference, docs: [], used: [] }))).toEqual(["enhance_reasoning", "answer", "search"]);
    expect(names(offeredTools({ config: frames, reference: frames.reference, docs: doc, used: [] }))).toEqual(["enhance_reasoning", "answer"]);
    expect(names(offeredTools({ config: hle, reference: hle.reference, docs: doc, used: [] }))).toEqual(["enhance_reasoning", "answer", "search"]);
  });

  test("the same tool twice in a row is still sent under the reference (it computes the set, then sends every tool); baton withholds it", () => {
    const twice = ["enhance_reasoning", "enhance_reasoning"];
    expect(names(offeredTools({ config: hle, reference: hle.reference, docs: [], used: twice }))).toEqual(["enhance_reasoning", "answer", "search"]);
    const baton = loadRunConfig({ benchmark: "hle", config: { profile: "baton" } });
    const b = offeredTools({ config: baton, reference: null, docs: [], used: twice });
    expect(b.withheld).toBe("enhance_reasoning");
    expect(names(b)).toEqual(["search", "answer"]);
  });
});

describe("query", () => {
  const frames = loadRunConfig({ benchmark: "frames", config: {} }).reference!;
  const hle = loadRunConfig({ benchmark: "hle", config: {} }).reference!;
  const q = "Who wrote it?";

  test("no reply falls back to the question; FRAMES also on an empty reply, HLE searches the empty text (and skips it)", () => {
    expect(chooseQuery({ reply: null, question: q, ref: frames })).toEqual({ query: q, fellBack: true, skip: false });
    expect(chooseQuery({ reply: "", question: q, ref: frames })).toEqual({ query: q, fellBack: true, skip: false });
    expect(chooseQuery({ reply: "", question: q, ref: hle })).toEqual({ query: "", fellBack: false, skip: true });
  });

  test("the query is the text after the last <query> up to </query>, the whole reply without tags", () => {
    expect(chooseQuery({ reply: "<query>old one</query> <query>new query text</query> bye", question: q, ref: frames }).query).toBe("new query text");
    expect(chooseQuery({ reply: "plain words as the query", question: q, ref: frames }).query).toBe("plain words as the query");
    expect(chooseQuery({ reply: "<query>unclosed and long enough", question: q, ref: frames }).query).toBe("unclosed and long enough");
  });

  test("below 10 characters (FRAMES) or 5 (HLE) nothing is retrieved", () => {
    expect(chooseQuery({ reply: "<query>123456789</query>", question: q, ref: frames }).skip).toBe(true);
    expect(chooseQuery({ reply: "<query>1234567890</query>", question: q, ref: frames }).skip).toBe(false);
    expect(chooseQuery({ reply: "<query>1234</query>", question: q, ref: hle }).skip).toBe(true);
    expect(chooseQuery({ reply: "<query>12345</query>", question: q, ref: hle }).skip).toBe(false);
  });
});

describe("retrieval eid", () => {
  test("the request body is {queries, topk, return_scores, eid} with the task's id", async () => {
    const bodies: unknown[] = [];
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        bodies.push(await req.json());
        return Response.json([[{ document: { id: "1", content: "a document" }, score: 1 }]]);
      },
    });
    try {
      const r = await retrieve({ backends: [{ name: "retrieval", pool: new ReplicaPool("retrieval", [`http://127.0.0.1:${server.port}`]) }], query: "q", topk: 50, eid: "6721a42269600ecb23a3e623" });
      expect(r.status).toBe("ok");
      expect(bodies).toEqual([{ queries: ["q"], topk: 50, return_scores: true, eid: "6721a42269600ecb23a3e623" }]);
    } finally {
      server.stop(true);
    }
  });

  test("the retrieval simulator accepts a string eid and a top-k of 150, and refuses a non-string eid as the reference's server would", async () => {
    const e = cluster.config.retrieval![0]!;
    const url = `http://${e.ip_addr}:${e.port}/retrieve`;
    const post = (body: unknown) => fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect((await post({ queries: ["first lady"], topk: 150, return_scores: true, eid: "wiki____0" })).status).toBe(200);
    const bad = await post({ queries: ["first lady"], topk: 5, return_scores: true, eid: 7 });
    expect(bad.status).toBe(422);
    expect(JSON.stringify(await bad.json())).toContain('"eid"');
  });
});

describe("per-role budgets", () => {
  const tok = new CharPerToken();
  const question = "Q".repeat(100);
  const code = [{ code: "print('A' * 20000)", output: "A".repeat(20000) }];

  test("the answer expert's code is cut to 10k tokens, search's and the coder's to 12k, each context to 24k minus the question", async () => {
    const config = loadRunConfig({ benchmark: "frames", config: {} });
    const ref = config.reference!;
    const common = { ref, config, tok, question, docs: [], code };
    const answer = await referenceExpertContext({ ...common, tool: "answer" });
    const search = await referenceExpertContext({ ...common, tool: "search" });
    // cut text + the "```\n" the reference puts before a cut that lost its opening fence
    expect(answer.length).toBe(10_000 + 4);
    expect(search.length).toBe(12_000 + 4);
    const docs = Array.from({ length: 10 }, (_, i) => ({ id: null, contents: `${i}`.repeat(5000) }));
    const full = await referenceExpertContext({ ...common, docs, code: [], tool: "search" });
    expect(full.length).toBe("Documents:\n".length + 24_000 - question.length);
  });

  test("HLE experts see documents cut to 1,000 characters for search and code, whole for the answer; the orchestrator 1,200 with ' ...' and 27k minus the question", async () => {
    const config = loadRunConfig({ benchmark: "hle", config: {} });
    const ref = config.reference!;
    const docs = [{ id: null, contents: "d".repeat(1500) }];
    const common = { ref, config, tok, question, docs, code: [] };
    expect(await referenceExpertContext({ ...common, tool: "search" })).toBe(`Documents:\nDoc 1: ${"d".repeat(1000)}\n\n`);
    expect(await referenceExpertContext({ ...common, tool: "enhance_reasoning" })).toBe(`Documents:\nDoc 1: ${"d".repeat(1000)}\n\n`);
    expect(await referenceExpertContext({ ...common, tool: "answer" })).toBe(`Documents:\nDoc 1: ${"d".repeat(1500)}\n\n`);
    expect(await referenceOrchestratorContext({ ...common })).toBe(`Documents:\nDoc 1: ${"d".repeat(1200)} ...\n\n`);
    const many = Array.from({ length: 30 }, (_, i) => ({ id: null, contents: `${i % 10}`.repeat(1500) }));
    const orch = await referenceOrchestratorContext({ ...common, docs: many });
    expect(orch.length).toBe("Documents:\n".length + 27_000 - question.length);
  });

  test("FRAMES's orchestrator always has the code line, its budget is 24k whatever the question", async () => {
    const config = loadRunConfig({ benchmark: "frames", config: {} });
    const common = { ref: config.reference!, config, tok, question, code: [] };
    expect(await referenceOrchestratorContext({ ...common, docs: [] })).toBe("\npython code and execution outputs:\n");
    const many = Array.from({ length: 10 }, (_, i) => ({ id: null, contents: `${i}`.repeat(4500) }));
    const orch = await referenceOrchestratorContext({ ...common, docs: many });
    expect(orch.length).toBe("Documents:\n".length + 24_000);
    expect(orch.endsWith("\npython code and execution outputs:\n")).toBe(true);
  });
});

describe("latency rows", () => {
  test("every latency component row belongs to a tool-call row, also when the tool's expert is unreachable", async () => {
    const dead = new ReplicaPool("dead", ["http://127.0.0.1:9"]);
    const live = depsFor(cluster);
    const { outcome, toolCalls, components } = await runOne(simRunConfig(), rows[0], {
      pool: (model) => (model === ORCHESTRATOR ? live.pool(model) : dead),
    });
    expect(outcome).toMatchObject({ kind: "failed", retryable: true });
    expect(components.length).toBeGreaterThan(1);
    for (const c of components) expect(toolCalls.some((t) => t.step === c.step && t.tool === c.tool)).toBe(true);
    const failed = toolCalls.at(-1)!;
    expect(failed.status).toBe("error");
    // the tool's duration is its own work: the orchestrator call that chose it is its own row
    const orch = components.find((c) => c.step === failed.step && c.component === "orchestrator")!;
    const own = components.filter((c) => c.step === failed.step && c.component !== "orchestrator").reduce((n, c) => n + c.ms, 0);
    expect(failed.durationMs).toBeCloseTo(own, 6);
    expect(orch.ms).toBeGreaterThan(0);
  });
});

describe("cut_seq", () => {
  test("with a tokenizer.json the cut is the tokenizer's own cut_seq: exactly the last l tokens", async () => {
    const bpe = new BpeTokenizer(JSON.parse(readFileSync("test/fixtures/tiny-bpe-tokenizer.json", "utf8")));
    const text = "the quick brown fox jumps over the lazy dog ".repeat(3);
    const n = await bpe.count(text);
    const exact = await cutSeq(bpe, text, 5);
    expect(exact).toEqual({ text: (await bpe.cutSeq(text, 5)).text, length: n });
    expect(await bpe.count(exact.text)).toBe(5);
    // Python's ids[-0:] keeps every token
    expect((await cutSeq(bpe, text, 0)).text).toBe(text);
  });

  test("a tokenizer without cut_seq cuts with tail, and an empty text is empty", async () => {
    const tok = new CharPerToken();
    expect(await cutSeq(tok, "abcdef", 4)).toEqual({ text: "cdef", length: 6 });
    expect(await cutSeq(tok, "abcdef", -2)).toEqual({ text: "cdef", length: 6 });
    expect(await cutSeq(tok, "", 4)).toEqual({ text: "", length: 0 });
  });
});

describe("the reference profile against the simulator", () => {
  test("with no profile named, a FRAMES task runs the reference protocol end to end: rows per step, search hidden once documents exist", async () => {
    const [oss, qwen, coder] = ["openai/gpt-oss-20b", "Qwen/Qwen3-32B", "Qwen/Qwen2.5-Coder-32B-Instruct"];
    const aliases = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i + 1}`);
    const models = Object.fromEntries([
      ...aliases("search", 3).map((a) => [a, oss]),
      ...aliases("reasoner", 3).map((a) => [a, coder]),
      ...[...aliases("answer", 4), "answer-math-1", "answer-math-2"].map((a) => [a, qwen]),
    ]);
    const sent: ChatRequest[] = [];
    const { profile, ...baton } = simRunConfig();
    const { outcome, toolCalls, components } = await runOne({ ...baton, models, judge: { model: oss } }, rows[1], {
      chat: (input) => (sent.push(input.request), callChat(input)),
    });
    expect(outcome.kind).toBe("succeeded");
    expect(toolCalls.at(-1)!.tool).toBe("answer");
    for (const c of components) expect(toolCalls.some((t) => t.step === c.step && t.tool === c.tool)).toBe(true);
    const orchestrator = sent.filter((r) => Array.isArray(r.tools));
    const firstWithDocs = orchestrator.findIndex((r) => String(r.messages[1]!.content).includes("Documents:\nDoc 1: "));
    if (firstWithDocs >= 0)
      for (const r of orchestrator.slice(firstWithDocs)) expect(r.tools!.map((t: any) => t.function.name)).toEqual(["enhance_reasoning", "answer"]);
    expect(orchestrator.every((r) => r.tool_choice === undefined)).toBe(true);
    const answer = sent.find((r) => r.extra_body?.chat_template_kwargs);
    expect(answer?.extra_body).toEqual({ chat_template_kwargs: { enable_thinking: false } });
  }, 30_000);
});

test("the simulated judge reads the reference's judge prompt (Student answer / Reference answer)", () => {
  const judge = loadRunConfig({ benchmark: "hle", config: {} }).prompts.judge;
  const ask = (prediction: string) =>
    writeExpertReply({ messages: [{ role: "user", content: fill(judge, { question: "Q?", prediction, gold: "Jane Ballou" }) }], seed: 1, answers: {}, accuracy: 0 }).content;
  expect(ask("jane ballou")).toContain("<correct>True</correct>");
  expect(ask("Eliza Ballou")).toContain("<correct>False</correct>");
});
