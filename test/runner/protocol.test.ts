// runProtocol on one task against the simulated cluster, with the rows it records.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { loadRunConfig } from "../../runner/config";
import { callChat, type ChatRequest } from "../../runner/llm-client";
import { correctionMessages, runProtocol, validateToolCall, type ProtocolDeps } from "../../runner/protocol";
import { Recorder } from "../../runner/recorder";
import { ReplicaPool } from "../../runner/replicas";
import type { RowBatch } from "../../runner/task-queue";
import { CharsTokenizer } from "../../runner/tokenizer";
import { startSimCluster, type SimCluster } from "../../sim/cluster";
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
        expect(r.outcome.result.invalidSteps).toBe(invalid.length);
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
