// Replay: with no config, Baton sends what the ToolOrchestra reference sends. A scripted
// OpenAI-compatible + /retrieve server on 127.0.0.1 answers from a fixed script and records every
// request body; the recorded list must equal the golden list, which was produced by running the
// reference's own run_single on the same script (test/fixtures/replay/README.md says how).
// Only `stream`, `stream_options` and `tool_choice: "auto"` may differ.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { loadRunConfig } from "../../runner/config";
import { runProtocol, type ProtocolDeps } from "../../runner/protocol";
import { decodeTranscript, type StepTranscript } from "../../db/rows";
import { Recorder } from "../../runner/recorder";
import type { RowBatch } from "../../runner/task-queue";
import { ReplicaPool } from "../../runner/replicas";
import type { Tokenizer } from "../../runner/tokenizer";

const DIR = "test/fixtures/replay";
const SCRIPTS = ["frames-search-code-code-answer", "frames-same-tool-twice", "hle-search-code-code-answer", "hle-same-tool-twice"];

type Reply = string | { content?: string | null; tool_calls?: { name: string; arguments: string }[] };
type DocSpec = { id: number; topic: string; chars: number };
type Script = {
  benchmark: "frames" | "hle";
  task: { id: string; question: string; answer: string };
  orchestrator: Reply[];
  query?: Reply[];
  code?: Reply[];
  answer?: Reply[];
  judge?: Reply[];
  retrieval?: DocSpec[][];
};
type Recorded = { kind: string; endpoint: string; body: Record<string, unknown>; authorization?: string | null };

/** One token per character: the reference's cut_seq keeps the last l characters, and so does tail. */
class CharPerToken implements Tokenizer {
  readonly source = "chars" as const;
  async count(text: string) {
    return text.length;
  }
  async tail(text: string, maxTokens: number) {
    return text.length <= maxTokens ? { text, tokens: text.length } : { text: text.slice(text.length - maxTokens), tokens: maxTokens };
  }
}

/** The script's documents, written out as the golden's generator writes them. */
function docText(d: DocSpec): string {
  let s = `Doc ${d.id} on ${d.topic}: `;
  while (s.length < d.chars) s += "the quick brown fox jumps over the lazy dog ";
  return s.slice(0, d.chars);
}

const KIND_OF_MODEL: Record<string, string> = {
  "openai/gpt-oss-20b": "query",
  "Qwen/Qwen2.5-Coder-14B-Instruct": "code",
  "Qwen/Qwen3-32B-FP8": "answer",
  "gpt-5": "judge",
};
const HOST_OF_MODEL: Record<string, string> = {
  "nvidia/Nemotron-Orchestrator-8B": "orchestrator",
  "openai/gpt-oss-20b": "query",
  "Qwen/Qwen2.5-Coder-14B-Instruct": "coder",
  "Qwen/Qwen3-32B-FP8": "answer",
};

/** A scripted server: replies pop from the script's queue of their kind; every request is recorded. */
function startScriptedServer() {
  let queues: Record<string, unknown[]> = {};
  const recorded: Recorded[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const [, endpoint, ...rest] = new URL(req.url).pathname.split("/");
      const body = (await req.json()) as Record<string, any>;
      if (rest.join("/") === "retrieve") {
        recorded.push({ kind: "retrieval", endpoint: endpoint!, body });
        const docs = (queues.retrieval?.shift() ?? []) as DocSpec[];
        return Response.json([docs.map((d, i) => ({ document: { id: String(d.id), content: docText(d) }, score: 0.9 - i * 0.001 }))]);
      }
      const kind = Array.isArray(body.tools) && body.tools.length > 0 ? "orchestrator" : KIND_OF_MODEL[body.model] ?? "unknown";
      recorded.push({ kind, endpoint: endpoint!, body, ...(kind === "judge" ? { authorization: req.headers.get("authorization") } : {}) });
      const next = queues[kind]?.shift() as Reply | undefined;
      if (next === undefined) return Response.json({ error: { message: `script has no ${kind} reply left` } }, { status: 500 });
      const r = typeof next === "string" ? { content: next } : next;
      const calls = (r.tool_calls ?? []).map((c, i) => ({ id: `call_${i}`, type: "function", function: c }));
      return Response.json({
        id: "cmpl-1",
        object: "chat.completion",
        model: body.model,
        choices: [{ index: 0, message: { role: "assistant", content: r.content ?? null, tool_calls: calls }, finish_reason: calls.length ? "tool_calls" : "stop" }],
        usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
      });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    recorded,
    load(script: Script) {
      recorded.length = 0;
      queues = {
        orchestrator: [...script.orchestrator],
        query: [...(script.query ?? [])],
        code: [...(script.code ?? [])],
        answer: [...(script.answer ?? [])],
        judge: [...(script.judge ?? [])],
        retrieval: [...(script.retrieval ?? [])],
      };
    },
    leftOver: () => Object.entries(queues).filter(([, q]) => q.length > 0).map(([k, q]) => `${k}: ${q.length}`),
    stop: () => server.stop(true),
  };
}

/** What may differ from the reference: streaming (Baton measures time to first token) and tool_choice "auto". */
function comparable(r: { kind: string; endpoint: string; body: Record<string, unknown> }) {
  const { stream, stream_options, tool_choice, ...body } = r.body;
  if (tool_choice !== undefined && tool_choice !== "auto") (body as any).tool_choice = tool_choice;
  return { kind: r.kind, endpoint: r.endpoint, body };
}

let server: ReturnType<typeof startScriptedServer>;
beforeAll(() => {
  server = startScriptedServer();
});
afterAll(() => server.stop());

async function replay(name: string) {
  const script: Script = JSON.parse(readFileSync(`${DIR}/${name}.script.json`, "utf8"));
  const golden = JSON.parse(readFileSync(`${DIR}/${name}.golden.json`, "utf8"));
  server.load(script);
  const pool = (name: string, url: string) => new ReplicaPool(name, [url]);
  const deps: ProtocolDeps = {
    pool: (model) => pool(model, `${server.url}/${HOST_OF_MODEL[model] ?? "unknown"}`),
    retrievalBackends: (names) => names.map((n) => ({ name: n, pool: pool(n, `${server.url}/${n === "wiki_retrieval" ? "wiki" : n}`) })),
    judgePool: () => pool("judge", `${server.url}/openai`),
    tokenizer: new CharPerToken(),
    env: { OPENAI_API_KEY: "sk-test" },
  };
  const batches: RowBatch[] = [];
  const recorder = new Recorder({ recordRows: async (b) => void batches.push(b) }, { flushMs: 60_000 });
  const outcome = await runProtocol({
    task: { id: 1, runId: 1, externalId: script.task.id, input: script.task, attempt: 1, maxAttempts: 3, leaseToken: "t", leaseExpiresAt: 0 },
    // no config: the defaults are the reference's
    config: loadRunConfig({ benchmark: script.benchmark, config: {} }),
    deps,
    recorder: recorder.forTask({ runId: 1, taskId: 1, attempt: 1 }),
    signal: new AbortController().signal,
  });
  await recorder.close();
  const transcripts: StepTranscript[] = batches
    .flatMap((b) => b.transcripts ?? [])
    .map((t) => decodeTranscript(new Uint8Array(Buffer.from(t.body, "base64"))));
  return { outcome, golden, recorded: [...server.recorded], leftOver: server.leftOver(), transcripts };
}

describe("replay against the reference", () => {
  for (const name of SCRIPTS)
    test(`${name}: every request equals the reference's, field by field`, async () => {
      const { outcome, golden, recorded, leftOver, transcripts } = await replay(name);
      expect(leftOver).toEqual([]);
      const ours = recorded.map(comparable);
      const theirs = (golden.requests as Recorded[]).map(comparable);
      expect(ours.map((r) => `${r.kind}@${r.endpoint}`)).toEqual(theirs.map((r) => `${r.kind}@${r.endpoint}`));
      for (let i = 0; i < theirs.length; i++) {
        const keys = new Set([...Object.keys(ours[i]!.body), ...Object.keys(theirs[i]!.body)]);
        for (const k of keys) expect({ request: i, kind: theirs[i]!.kind, field: k, value: ours[i]!.body[k] }).toEqual({ request: i, kind: theirs[i]!.kind, field: k, value: theirs[i]!.body[k] });
      }
      expect(outcome.kind).toBe("succeeded");
      if (outcome.kind === "succeeded") expect(outcome.result.correct).toBe(golden.result.correct);
      // all_tool_calls, step by step (an invalid call's text embeds Python's repr of the reply: compared up to it)
      const text = (v: unknown): unknown => (typeof v === "string" ? v.replace(/ \[[\s\S]*$/, "") : Array.isArray(v) ? v.map(text) : v);
      expect(text(transcripts.map((t) => t.tool_calls))).toEqual(text(golden.result.all_tool_calls));
      // the judge's key travels as a bearer token, from the variable the profile names
      for (const r of recorded.filter((r) => r.kind === "judge")) expect(r.authorization).toBe("Bearer sk-test");
    }, 60_000);
});

describe("trajectories", () => {
  test("every step leaves a transcript with the reference's per-turn fields and every request it sent", async () => {
    const { transcripts, recorded } = await replay("hle-search-code-code-answer");
    expect(transcripts.map((t) => [t.step, t.tool])).toEqual([
      [0, "search"],
      [1, "enhance_reasoning"],
      [2, "enhance_reasoning"],
      [3, "answer"],
    ]);
    // HLE wraps the chosen call in a list, and keeps the orchestrator's message per turn (its
    // streamed call joins the content parts, so no content is "")
    expect(transcripts[0]!.tool_calls).toEqual([[{ name: "search", arguments: { model: "search-1" } }]]);
    expect(transcripts[0]!.message_response).toEqual({ content: "", tool_calls: [{ tool_name: "search", tool_arguments: { model: "search-1" } }] });
    const [search] = transcripts[0]!.responses as Record<string, any>[];
    expect(Object.keys(search!).sort()).toEqual(
      ["tool", "model", "context_str", "problem", "answer", "id", "eid", "step", "_query_llm_ms", "_retrieval_ms", "_retrieval_retries", "_search_backend", "_search_local_hits", "_search_tavily_hits", "query", "search_results_data"].sort(),
    );
    expect(search!.search_results_data).toHaveLength(25);
    const [code] = transcripts[1]!.responses as Record<string, any>[];
    expect(code!.generated_code).toBe("\nprint('B' * 13000)\n");
    expect(code!.exec_result).toBe(`${"B".repeat(13000)}\n`);
    const [answer] = transcripts[3]!.responses as Record<string, any>[];
    expect(answer).toMatchObject({ tool: "answer", pred: "2/(10^{20}+10^{-20})", correctness: false });
    expect(typeof answer!._judge_ms).toBe("number");
    // the transcripts hold every request body that went out, in order, exactly as sent
    const sent = transcripts.flatMap((t) => t.llm.map((l) => l.request as Record<string, unknown>));
    expect(sent).toEqual(recorded.filter((r) => r.kind !== "retrieval").map((r) => r.body));
  }, 60_000);
});
