// Token budgets with the orchestrator's tokenizer: a local tokenizer.json, the vLLM server's
// /tokenize, or chars/4 logged once.
//
// test/fixtures/tiny-bpe-tokenizer.json is a byte-level BPE made by hand (see
// test/fixtures/make-tiny-bpe-tokenizer.ts): byte b has id b, written as its GPT-2
// byte-to-unicode character (space → "Ġ" U+0120, 0xC3 → "Ã", 0xA9 → "©"), and these merges,
// rank i making id 256 + i:
//   0 Ġ t → Ġt 256   1 h e → he 257   2 Ġt he → Ġthe 258   3 l o → lo 259   4 e r → er 260
//   5 lo w → low 261   6 w e → we 262   7 Ã © → Ã© (é) 263   8 c a → ca 264   9 f Ã© → fÃ© 265
//   10 ca fÃ© → cafÃ© 266
// plus added tokens <|endoftext|> 300 and <|im_start|> 301, and Qwen2's pre-tokenizer split.
// The expected ids below are worked out by hand from that table.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadRunConfig } from "../../runner/config";
import { callChat } from "../../runner/llm-client";
import { runProtocol, type ProtocolDeps } from "../../runner/protocol";
import { Recorder } from "../../runner/recorder";
import { ReplicaPool } from "../../runner/replicas";
import { retrieve, type RetrievalResult } from "../../runner/retrieval-client";
import { BpeTokenizer, CharsTokenizer, createTokenizer, ServerTokenizer } from "../../runner/tokenizer";
import { startSimCluster, type SimCluster } from "../../sim/cluster";
import { startVllmSim, type VllmSim } from "../../sim/vllm";
import { answersOf, readJsonl, REPO, simRunConfig } from "./_harness";

const FIXTURE = join(REPO, "test/fixtures/tiny-bpe-tokenizer.json");
const fixtureJson = () => JSON.parse(readFileSync(FIXTURE, "utf8"));

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "baton-tokenizer-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A loopback port nothing listens on (bound, then closed). */
async function deadPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe("BpeTokenizer over a tokenizer.json", () => {
  const tok = new BpeTokenizer(fixtureJson());

  test("applies merges in rank order, not left to right", () => {
    // "lower": l-o (rank 3) first, then e-r (4) before lo-w (5)
    expect(tok.encode("lower")).toEqual([261, 260]);
    // "newer": w-e (6) and e-r (4) compete for the same "e"; rank 4 wins, leaving n e w er
    expect(tok.encode("newer")).toEqual(["n", "e", "w"].map((c) => c.charCodeAt(0)).concat(260));
    // "the": h-e merges, but "t he" is no merge (only "Ġt he" is)
    expect(tok.encode("the")).toEqual([116, 257]);
  });

  test("spaces are bytes mapped to Ġ and stay with the following word", () => {
    expect(tok.encode(" the")).toEqual([258]);
    expect(tok.encode("the lower")).toEqual([116, 257, 32, 261, 260]);
    // two spaces before a word: one piece of whitespace, then " the"
    expect(tok.encode("a  the")).toEqual([97, 32, 258]);
    expect(tok.encode("a\n\nb")).toEqual([97, 10, 10, 98]);
  });

  test("non-ASCII text is tokenized as its UTF-8 bytes, merged where the vocab has them", () => {
    // é is C3 A9 → "Ã©" (263), then f+é, then ca+fé: one token for five bytes
    expect(tok.encode("café")).toEqual([266]);
    expect(tok.encode("é")).toEqual([263]);
    // ï is C3 AF: no merge, so two byte tokens
    expect(tok.encode("naïve")).toEqual([110, 97, 0xc3, 0xaf, 118, 101]);
    expect(tok.encode("😀")).toEqual([0xf0, 0x9f, 0x98, 0x80]);
    // digits are split one by one (Qwen2's \p{N})
    expect(tok.encode("2024")).toEqual([50, 48, 50, 52]);
  });

  test("added tokens are one id each and are never split into bytes", () => {
    expect(tok.encode("<|im_start|>user")).toEqual([301, 117, 115, 260]);
    expect(tok.encode("the<|endoftext|><|im_start|>")).toEqual([116, 257, 300, 301]);
    // not an added token: its bytes
    expect(tok.encode("<|im_end|>").length).toBe("<|im_end|>".length);
  });

  test("count is the number of ids, and tail keeps the most recent whole pieces that fit", async () => {
    const text = "the lower café <|endoftext|> naïve 2024";
    expect(await tok.count(text)).toBe(tok.encode(text).length);
    expect(await tok.count("")).toBe(0);
    // " the" is 1 token, "x" is 1: a budget of 1 keeps only " the"
    expect(await tok.tail("x the", 1)).toEqual({ text: " the", tokens: 1 });
    expect(await tok.tail("x the", 5)).toEqual({ text: "x the", tokens: 2 });
    // " lower" is 2 tokens: it does not fit in 1 and is not cut inside
    expect(await tok.tail("the lower", 1)).toEqual({ text: "", tokens: 0 });
    const cut = await tok.tail(text, 7);
    expect(cut.tokens).toBeLessThanOrEqual(7);
    expect(await tok.count(cut.text)).toBe(cut.tokens);
    expect(text.endsWith(cut.text)).toBe(true);
  });
});

describe("a malformed tokenizer.json", () => {
  const broken: [string, (j: any) => void, RegExp][] = [
    ["a WordPiece model", (j) => (j.model.type = "WordPiece"), /model\.type is "WordPiece"/],
    ["no merges", (j) => delete j.model.merges, /model\.merges must be an array/],
    ["a merge whose result is not in the vocab", (j) => j.model.merges.push(["x", "y"]), /model\.merges\[11\].*"xy".*not in model\.vocab/],
    ["a merge that is not a pair", (j) => (j.model.merges[2] = "Ġt"), /model\.merges\[2\] is "Ġt"/],
    ["a vocabulary without the byte tokens", (j) => delete j.model.vocab["Ġ"], /lacks the byte token "Ġ" \(byte 32\)/],
    ["a non-integer id", (j) => (j.model.vocab.he = "257"), /model\.vocab\["he"\] is "257"/],
    ["an added token without an id", (j) => delete j.added_tokens[1].id, /added_tokens\[1\]/],
    ["no model at all", (j) => delete j.model, /no model section/],
  ];
  for (const [what, breakIt, message] of broken)
    test(`with ${what} is refused with an error naming the problem`, () => {
      const j = fixtureJson();
      breakIt(j);
      expect(() => new BpeTokenizer(j)).toThrow(message);
    });

  test("makes the runner fall back to the server's /tokenize with one warning naming the file and the problem", () => {
    const path = join(dir, "bad-tokenizer.json");
    const j = fixtureJson();
    j.model.merges.push(["x", "y"]);
    writeFileSync(path, JSON.stringify(j));
    const lines: string[] = [];
    const tok = createTokenizer({ mode: "auto", path, serverUrl: () => null, model: "m-bad-file", log: (l) => lines.push(l) });
    expect(tok.source).toBe("server");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(path);
    expect(lines[0]).toContain("not in model.vocab");
  });

  test("that is not JSON, or missing, falls back the same way", () => {
    const path = join(dir, "not-json.json");
    writeFileSync(path, "{ this is not json");
    for (const p of [path, join(dir, "missing.json")]) {
      const lines: string[] = [];
      const tok = createTokenizer({ mode: "file", path: p, serverUrl: () => null, model: "m-not-json", log: (l) => lines.push(l) });
      expect(tok.source).toBe("server");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`cannot load tokenizer ${p}`);
    }
  });

  test("a good file is used when given", () => {
    const lines: string[] = [];
    const tok = createTokenizer({ mode: "auto", path: FIXTURE, serverUrl: () => null, model: "m-file", log: (l) => lines.push(l) });
    expect(tok.source).toBe("file");
    expect(lines).toEqual([]);
  });
});

describe("the vLLM server's /tokenize", () => {
  let sim: VllmSim;
  beforeAll(async () => {
    sim = await startVllmSim({ model: "sim/orch-tok", mode: "orchestrator" });
  });
  afterAll(async () => {
    await sim.stop();
  });

  test("gives the server's count, with no warning", async () => {
    const lines: string[] = [];
    const tok = createTokenizer({ mode: "auto", path: null, serverUrl: () => sim.url, model: "sim/orch-tok", log: (l) => lines.push(l) });
    expect(tok.source).toBe("server");
    // the simulator's tokens: letter runs of at most 6, single digits, single other characters
    // Hello | , | world | 4 | 2 | ! | extrao | rdinar | y  → 9 (chars/4 would say 8)
    expect(await tok.count("Hello, world 42! extraordinary")).toBe(9);
    const res = await fetch(`${sim.url}/tokenize`, { method: "POST", body: JSON.stringify({ prompt: "a b c d e f g" }) });
    expect(await tok.count("a b c d e f g")).toBe(((await res.json()) as any).count);
    expect(lines).toEqual([]);
  });

  test("tail fits the server's count", async () => {
    const tok = new ServerTokenizer(() => sim.url, "sim/orch-tok", () => {});
    const text = Array.from({ length: 200 }, (_, i) => `w${i}`).join(" ");
    const cut = await tok.tail(text, 50);
    expect(cut.tokens).toBeLessThanOrEqual(50);
    expect(await tok.count(cut.text)).toBeLessThanOrEqual(50);
    expect(text.endsWith(cut.text)).toBe(true);
  });
});

describe("with neither a file nor a server", () => {
  test("chars/4 is used and the warning is logged once for many calls and many tokenizers", async () => {
    const url = `http://127.0.0.1:${await deadPort()}`;
    const lines: string[] = [];
    const log = (l: string) => lines.push(l);
    const model = "m-nothing-available";
    const a = createTokenizer({ mode: "auto", path: null, serverUrl: () => url, model, log });
    const b = createTokenizer({ mode: "server", path: null, serverUrl: () => url, model, log });
    const texts = Array.from({ length: 40 }, (_, i) => "x".repeat(i * 3 + 1));
    const counts = await Promise.all(texts.flatMap((t) => [a.count(t), b.count(t)]));
    expect(counts).toEqual(texts.flatMap((t) => [Math.ceil(t.length / 4), Math.ceil(t.length / 4)]));
    expect((await a.tail("y".repeat(100), 5)).text.length).toBeLessThanOrEqual(20);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^warning: token counts are APPROXIMATE \(chars\/4\)/);
    expect(lines[0]).toContain(url);
    expect(lines[0]).toContain(model);
  });

  test("no server configured at all is the same single warning", async () => {
    const lines: string[] = [];
    const tok = createTokenizer({ mode: "auto", path: null, serverUrl: () => null, model: "m-no-server", log: (l) => lines.push(l) });
    for (let i = 0; i < 20; i++) expect(await tok.count("abcdefgh")).toBe(2);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("no server/tokenize unavailable for m-no-server");
  });

  test("mode chars says once, when the tokenizer is made, that counts are approximate", async () => {
    const lines: string[] = [];
    const tok = createTokenizer({ mode: "chars", path: FIXTURE, serverUrl: () => null, model: "m-chars", log: (l) => lines.push(l) });
    expect(tok).toBeInstanceOf(CharsTokenizer);
    for (let i = 0; i < 10; i++) await tok.count("abcde");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("approximate");
  });
});

describe("documents budget in the protocol", () => {
  const rows = readJsonl("data/frames-sample.jsonl").slice(0, 3);
  let cluster: SimCluster;
  beforeAll(async () => {
    cluster = await startSimCluster({ seed: 3, answers: answersOf(rows), accuracy: 1 });
  });
  afterAll(async () => {
    await cluster.stop();
  });

  test("a tiny documents budget keeps the orchestrator's context under it, keeping the most recent text", async () => {
    const tok = new BpeTokenizer(fixtureJson());
    const urls = (name: string) => (cluster.config[name] ?? []).map((e) => `http://${e.ip_addr}:${e.port}`);
    const pools = new Map<string, ReplicaPool>();
    const pool = (name: string) => pools.get(name) ?? pools.set(name, new ReplicaPool(name, urls(name))).get(name)!;
    const contexts: string[] = [];
    const retrieved: RetrievalResult[] = [];
    const deps: ProtocolDeps = {
      pool,
      retrievalBackends: (names) => names.map((name) => ({ name, pool: pool(name) })),
      judgePool: () => pool("openai/gpt-oss-20b"),
      tokenizer: tok,
      chat: (input) => {
        if (input.role === "orchestrator") {
          const m = /<ctx>([\s\S]*)<\/ctx>/.exec(String(input.request.messages[1].content));
          contexts.push(m ? m[1] : "(no marker)");
        }
        return callChat(input);
      },
      retrieve: async (o) => {
        const r = await retrieve(o);
        retrieved.push(r);
        return r;
      },
    };
    const budget = { documentTokens: 40, codeTokens: 10 };
    const config = loadRunConfig({
      benchmark: "frames",
      config: simRunConfig({ budgets: budget, prompts: { orchestratorUser: "Problem: {question}\n<ctx>{context}</ctx>\nChoose an appropriate tool." } }),
    });
    const recorder = new Recorder({ recordRows: async () => {} }, { flushMs: 10_000 });
    const outcome = await runProtocol({
      task: { id: 1, runId: 1, externalId: rows[0].id, input: rows[0], attempt: 1, maxAttempts: 3, leaseToken: "t", leaseExpiresAt: 0 },
      config,
      deps,
      recorder: recorder.forTask({ runId: 1, taskId: 1, attempt: 1 }),
      signal: new AbortController().signal,
    });
    await recorder.close();
    expect(outcome.kind).toBe("succeeded");
    const docs = retrieved.flatMap((r) => r.documents);
    const allDocTokens = await tok.count(docs.map((d) => d.contents).join("\n\n"));
    // the budget had something to cut
    expect(allDocTokens).toBeGreaterThan(10 * (budget.documentTokens + budget.codeTokens));
    const withDocs = contexts.filter((c) => c.startsWith("Documents:\n"));
    expect(withDocs.length).toBeGreaterThan(0);
    for (const c of withDocs) {
      const body = c.slice("Documents:\n".length);
      const n = await tok.count(body);
      expect(n).toBeGreaterThan(0);
      expect(n).toBeLessThanOrEqual(budget.documentTokens + budget.codeTokens);
    }
    // the first context after a search ends with that search's last new document
    const lastDoc = retrieved[0].documents.at(-1)!;
    const end = lastDoc.contents.slice(0, config.budgets.documentChars).trimEnd().slice(-30);
    expect(withDocs[0].trimEnd().endsWith(end)).toBe(true);
  }, 30_000);
});
