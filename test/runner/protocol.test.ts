// runProtocol on one task against the simulated cluster, with the rows it records.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { loadRunConfig } from "../../runner/config";
import { runProtocol, validateToolCall, type ProtocolDeps } from "../../runner/protocol";
import { Recorder } from "../../runner/recorder";
import { ReplicaPool } from "../../runner/replicas";
import type { RowBatch } from "../../runner/task-queue";
import { CharsTokenizer } from "../../runner/tokenizer";
import { startSimCluster, type SimCluster } from "../../sim/cluster";
import { answersOf, readJsonl, simRunConfig } from "./_harness";

const rows = readJsonl("data/frames-sample.jsonl").slice(0, 5);
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

async function runOne(config: Record<string, unknown>, row = rows[0]) {
  const batches: RowBatch[] = [];
  const recorder = new Recorder({ recordRows: async (b) => void batches.push(b) }, { flushMs: 10_000 });
  const outcome = await runProtocol({
    task: { id: 1, runId: 1, externalId: row.id, input: row, attempt: 1, maxAttempts: 3, leaseToken: "t", leaseExpiresAt: 0 },
    config: loadRunConfig({ benchmark: "frames", config }),
    deps: depsFor(cluster),
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

  test("invalid tool calls are recorded with the raw reply, and too many fail the task as unparsable", async () => {
    const orch = cluster.byModel("nvidia/Nemotron-Orchestrator-8B")[0].sim as any;
    orch.update({ invalidToolCallRate: 1 });
    try {
      const { outcome, toolCalls } = await runOne(simRunConfig({ maxInvalidSteps: 2 }));
      expect(outcome).toMatchObject({ kind: "failed", errorClass: "orchestrator_unparsable", retryable: false });
      expect(toolCalls.length).toBe(3);
      for (const t of toolCalls) {
        expect(t.status).toBe("invalid");
        expect(["unknown_tool", "arguments_not_json"]).toContain(t.errorClass!);
        expect(JSON.stringify(t.detail)).toContain("toolCalls");
      }
    } finally {
      orch.update({ invalidToolCallRate: 0 });
    }
  });

  test("an endpoint without auto tool choice fails the task as tool_choice_unsupported", async () => {
    const orch = cluster.byModel("nvidia/Nemotron-Orchestrator-8B")[0].sim as any;
    orch.update({ enableAutoToolChoice: false });
    try {
      const { outcome } = await runOne(simRunConfig());
      expect(outcome).toMatchObject({ kind: "failed", errorClass: "tool_choice_unsupported", retryable: false });
    } finally {
      orch.update({ enableAutoToolChoice: true });
    }
  });

  test("an unreachable orchestrator ends the attempt as retryable (requeue), not as a wrong answer", async () => {
    const orch = cluster.byModel("nvidia/Nemotron-Orchestrator-8B")[0].sim;
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
