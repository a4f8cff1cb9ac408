// Token budgets measured with the orchestrator's tokenizer. In order of preference:
// 1. a local Hugging Face tokenizer.json (byte-level BPE, as Qwen/Nemotron ship), exact;
// 2. the vLLM server's POST /tokenize, exact but one HTTP call per measurement;
// 3. chars/4, an approximation logged once as a warning so nobody mistakes it for exact.
import { readFileSync } from "node:fs";

export type TokenizerSource = "file" | "server" | "chars";

export interface Tokenizer {
  readonly source: TokenizerSource;
  count(text: string): Promise<number>;
  /** The end of `text` that fits in `maxTokens` (ToolOrchestra keeps the most recent part). */
  tail(text: string, maxTokens: number): Promise<{ text: string; tokens: number }>;
}

type Log = (line: string) => void;

const CHARS_PER_TOKEN = 4;

export class CharsTokenizer implements Tokenizer {
  readonly source = "chars" as const;
  async count(text: string): Promise<number> {
    return Math.ceil(text.length / CHARS_PER_TOKEN);
  }
  async tail(text: string, maxTokens: number) {
    const tokens = await this.count(text);
    if (tokens <= maxTokens) return { text, tokens };
    return { text: text.slice(text.length - maxTokens * CHARS_PER_TOKEN), tokens };
  }
}

// ---- A local tokenizer.json, run the way Hugging Face's tokenizers library runs it ----
// Pipeline: added tokens are cut out of the raw text, the rest is normalised (NFC for Qwen3),
// pre-tokenised (Split regex, ByteLevel), and each piece's UTF-8 bytes are merged by BPE.
// The merge is a heap over a linked list of symbols, O(n log n) in the piece length: the old
// rescan-the-word loop was quadratic, and 20,000 "=" (one piece) took 83 s on the runner's
// event loop. count() and tail() also pause every few milliseconds (see Slicer).

// GPT-2 byte → printable unicode table used by byte-level BPE vocabularies.
function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let i = 33; i <= 126; i++) bs.push(i);
  for (let i = 161; i <= 172; i++) bs.push(i);
  for (let i = 174; i <= 255; i++) bs.push(i);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++)
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  const table: string[] = new Array(256);
  bs.forEach((b, i) => (table[b] = String.fromCharCode(cs[i])));
  return table;
}

// Two ids (a merge's pair) or a rank and a position (a heap entry) are packed into one number,
// a * PACK + b: exact in a double, and a Map with number keys is much faster than string keys.
const PACK = 2 ** 26;

// The Rust library compiles Split patterns with Oniguruma, whose \s \d \w are Unicode classes;
// JavaScript's are ASCII (and its \s adds U+FEFF but lacks U+0085). Inline (?i:…) groups are
// native in JavaScript and fold case like Oniguruma ('ſ matches 's).
const ESCAPES: Record<string, string> = {
  s: "\\p{White_Space}",
  S: "\\P{White_Space}",
  d: "\\p{Nd}",
  D: "\\P{Nd}",
};
const WORD = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}";

/** An Oniguruma Split pattern as a JavaScript regex source with the same meaning. */
function translatePattern(source: string): string {
  let out = "";
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c !== "\\") {
      if (c === "[") inClass = true;
      else if (c === "]") inClass = false;
      out += c;
      continue;
    }
    const e = source[++i];
    if (e === undefined) throw new Error("ends with a lone backslash");
    if (e === "w") out += inClass ? WORD : `[${WORD}]`;
    else if (e === "W" && !inClass) out += `[^${WORD}]`;
    else if (e === "W") throw new Error("\\W inside a character class has no JavaScript equivalent");
    else if (e === "x" && source[i + 1] === "{") out += "\\u";
    else out += ESCAPES[e] ?? `\\${e}`;
  }
  return out;
}

type Normalize = (s: string) => string;
const UNICODE_FORMS = new Set(["NFC", "NFD", "NFKC", "NFKD"]);

function readNormalizers(n: any, at: string): Normalize[] {
  if (n == null) return [];
  if (UNICODE_FORMS.has(n.type)) return [(s) => s.normalize(n.type)];
  if (n.type === "Sequence" && Array.isArray(n.normalizers))
    return n.normalizers.flatMap((m: unknown, i: number) => readNormalizers(m, `${at}.normalizers[${i}]`));
  throw new Error(`${at}.type is ${JSON.stringify(n?.type)}: only NFC, NFD, NFKC, NFKD and a Sequence of them are supported`);
}

type Behavior = "Isolated" | "Removed" | "MergedWithPrevious" | "MergedWithNext" | "Contiguous";
const BEHAVIORS = new Set<string>(["Isolated", "Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous"]);
type SplitStep = { regex: RegExp; behavior: Behavior; invert: boolean };

// What ByteLevel splits with when use_regex is true (GPT-2's pattern).
const GPT2_SPLIT = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function compileSplit(source: string, at: string): RegExp {
  try {
    return new RegExp(translatePattern(source), "gu");
  } catch (err) {
    throw new Error(`${at} is not a usable regex: ${(err as Error).message}`);
  }
}

/** The pre-tokenizer as split steps; byteLevel says whether a ByteLevel step was seen. */
function readPreTokenizer(p: any, at: string): { steps: SplitStep[]; byteLevel: boolean } {
  if (p?.type === "Sequence" && Array.isArray(p.pretokenizers)) {
    const parts = p.pretokenizers.map((q: unknown, i: number) => readPreTokenizer(q, `${at}.pretokenizers[${i}]`));
    return { steps: parts.flatMap((x: any) => x.steps), byteLevel: parts.some((x: any) => x.byteLevel) };
  }
  if (p?.type === "ByteLevel") {
    // the Rust library's default is true (a space before every piece): not what byte-level LLMs use
    if (p.add_prefix_space !== false) {
      const value = p.add_prefix_space === undefined ? "absent (true by default)" : JSON.stringify(p.add_prefix_space);
      throw new Error(`${at}.add_prefix_space is ${value}: only false is supported`);
    }
    const steps = p.use_regex === false ? [] : [{ regex: compileSplit(GPT2_SPLIT, at), behavior: "Isolated" as const, invert: false }];
    return { steps, byteLevel: true };
  }
  if (p?.type === "Digits") {
    const regex = new RegExp(p.individual_digits ? "\\p{N}" : "\\p{N}+", "gu");
    return { steps: [{ regex, behavior: "Isolated", invert: false }], byteLevel: false };
  }
  if (p?.type === "Split") {
    if (!BEHAVIORS.has(p.behavior)) throw new Error(`${at}.behavior is ${JSON.stringify(p.behavior)}, expected one of ${[...BEHAVIORS].join(", ")}`);
    const pattern = p.pattern ?? {};
    let regex: RegExp;
    if (typeof pattern.Regex === "string") regex = compileSplit(pattern.Regex, `${at}.pattern.Regex`);
    else if (typeof pattern.String === "string" && pattern.String !== "") regex = new RegExp(escapeRegex(pattern.String), "gu");
    else throw new Error(`${at}.pattern needs a Regex or a non-empty String`);
    return { steps: [{ regex, behavior: p.behavior, invert: p.invert === true }], byteLevel: false };
  }
  throw new Error(`${at}.type is ${JSON.stringify(p?.type)}: only Sequence, Split, Digits and ByteLevel are supported`);
}

// Pre-tokenising a huge text is done in steps: the generators below yield every PAUSE_EVERY
// matches so that the async callers can give the event loop back in between.
const PAUSE_EVERY = 2048;

/**
 * Splits text[from, to) as the Rust library's NormalizedString::split does for `step`, pushing
 * each piece's start and end onto `out`. Matches and the gaps between them are spans; the
 * behaviour then keeps, drops or glues them. The regex is shared, so its lastIndex is saved
 * across pauses in a local.
 */
type PairSink = { push(a: number, b: number): void };

function* splitRange(text: string, from: number, to: number, step: SplitStep, out: PairSink, base: number): Generator<void> {
  const s = from === 0 && to === text.length ? text : text.slice(from, to);
  const { regex, behavior, invert } = step;
  const isolated = behavior === "Isolated" && !invert;
  const spans: number[] = []; // start, end, isMatch (1/0), flattened; not needed when Isolated
  const span = (start: number, end: number, isMatch: boolean) => {
    if (isolated) out.push(base + from + start, base + from + end);
    else spans.push(start, end, isMatch !== invert ? 1 : 0);
  };
  let prev = 0;
  let at = 0;
  for (let found = 1; ; found++) {
    regex.lastIndex = at;
    const m = regex.exec(s);
    if (!m) break;
    const end = m.index + m[0].length;
    at = end === m.index ? end + (s.codePointAt(end)! > 0xffff ? 2 : 1) : end;
    if (end === m.index) continue;
    if (m.index > prev) span(prev, m.index, false);
    span(m.index, end, true);
    prev = end;
    if (found % PAUSE_EVERY === 0) yield;
  }
  if (prev < s.length) span(prev, s.length, false);
  if (isolated) return;
  const kept = behavior === "Isolated" ? spans : glueSpans(spans, behavior);
  for (let i = 0; i < kept.length; i += 3) out.push(base + from + kept[i], base + from + kept[i + 1]);
}

// The Rust library's folds for the behaviours other than Isolated, over (start, end, isMatch).
function glueSpans(spans: number[], behavior: Behavior): number[] {
  if (behavior === "Removed") return spans.filter((_, i) => spans[i - (i % 3) + 2] === 0);
  const out: number[] = [];
  let previousMatch = false;
  const forward = behavior !== "MergedWithNext";
  const order = [...Array(spans.length / 3).keys()];
  if (!forward) order.reverse();
  for (const k of order) {
    const [start, end, isMatch] = [spans[3 * k], spans[3 * k + 1], spans[3 * k + 2] === 1];
    const glue = behavior === "Contiguous" ? isMatch === previousMatch : isMatch && !previousMatch;
    if (glue && out.length > 0) {
      if (forward) out[out.length - 2] = end;
      else out[out.length - 3] = start;
    } else out.push(start, end, 0);
    previousMatch = isMatch;
  }
  if (forward) return out;
  const reversed: number[] = [];
  for (let i = out.length - 3; i >= 0; i -= 3) reversed.push(out[i], out[i + 1], 0);
  return reversed;
}

type AddedToken = { id: number; content: string; normalized: boolean; special: boolean };

type Model = {
  vocab: Map<string, number>;
  /** pair (a * PACK + b) → rank */
  ranks: Map<number, number>;
  /** rank → id of the merged token */
  merged: Int32Array;
  byteIds: Int32Array;
  ignoreMerges: boolean;
};

function vocabId(vocab: Map<string, number>, piece: string, missing: string): number {
  const id = vocab.get(piece);
  if (id === undefined) throw new Error(`${missing}, which is not in model.vocab`);
  return id;
}

// A tokenizer.json that loads but tokenizes wrongly would make every budget silently wrong,
// so the loader checks what the counts depend on and names the first thing that is off.
function checkedModel(json: any): Model {
  const model = json?.model;
  if (model == null || typeof model !== "object") throw new Error("no model section: not a tokenizer.json");
  if (model.type !== "BPE") throw new Error(`model.type is ${JSON.stringify(model.type)}, expected "BPE" (byte-level BPE)`);
  if (model.vocab == null || typeof model.vocab !== "object" || Array.isArray(model.vocab))
    throw new Error("model.vocab must be an object of token → id");
  if (!Array.isArray(model.merges)) throw new Error("model.merges must be an array");
  for (const key of ["continuing_subword_prefix", "end_of_word_suffix"])
    if (model[key]) throw new Error(`model.${key} is ${JSON.stringify(model[key])}: not supported for byte-level BPE`);
  const vocab = new Map<string, number>();
  for (const [piece, id] of Object.entries(model.vocab)) {
    if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= PACK)
      throw new Error(`model.vocab[${JSON.stringify(piece)}] is ${JSON.stringify(id)}, expected an integer id below ${PACK}`);
    vocab.set(piece, id as number);
  }
  const byteIds = new Int32Array(256);
  for (const [b, ch] of bytesToUnicode().entries()) {
    const id = vocab.get(ch);
    if (id === undefined) throw new Error(`model.vocab lacks the byte token ${JSON.stringify(ch)} (byte ${b}): not a byte-level vocabulary`);
    byteIds[b] = id;
  }
  const ranks = new Map<number, number>();
  const merged = new Int32Array(model.merges.length);
  model.merges.forEach((m: unknown, i: number) => {
    const pair = typeof m === "string" ? m.split(" ") : m;
    if (!Array.isArray(pair) || pair.length !== 2 || pair.some((x) => typeof x !== "string" || x === ""))
      throw new Error(`model.merges[${i}] is ${JSON.stringify(m)}, expected "a b" or ["a", "b"]`);
    const at = `model.merges[${i}] ${JSON.stringify(m)}`;
    const [a, b] = pair.map((part) => vocabId(vocab, part, `${at} starts from ${JSON.stringify(part)}`));
    merged[i] = vocabId(vocab, pair[0] + pair[1], `${at} makes ${JSON.stringify(pair[0] + pair[1])}`);
    ranks.set(a * PACK + b, i);
  });
  return { vocab, ranks, merged, byteIds, ignoreMerges: model.ignore_merges === true };
}

function checkedAddedTokens(json: any): AddedToken[] {
  const added: AddedToken[] = [];
  for (const [i, t] of (Array.isArray(json.added_tokens) ? json.added_tokens : []).entries()) {
    if (!Number.isInteger(t?.id) || typeof t?.content !== "string" || t.content === "")
      throw new Error(`added_tokens[${i}] needs an integer id and a non-empty content`);
    // these change which text a token swallows; none of the byte-level models we run set them
    for (const flag of ["lstrip", "rstrip", "single_word"])
      if (t[flag] === true) throw new Error(`added_tokens[${i}] (${JSON.stringify(t.content)}) sets ${flag}: not supported`);
    added.push({ id: t.id, content: t.content, normalized: t.normalized === true, special: t.special === true });
  }
  return added;
}

/** One heap-driven BPE merge of a piece's bytes, resumable so a huge piece can be done in slices. */
class WordMerge {
  private readonly ids: Int32Array;
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  // min-heap of rank * PACK + position: lowest rank first, leftmost first among equals (as Rust);
  // it grows when full (at most n - 1 pairs plus 2 per merge are ever pushed)
  private heap = new Float64Array(64);
  private size = 0;
  // bytes not yet turned into symbols: run() does it, in slices too, for a huge piece
  private filled = 0;

  constructor(
    private readonly m: Model,
    private readonly bytes: Uint8Array,
  ) {
    const n = bytes.length;
    if (n >= PACK) throw new Error(`a single pre-token of ${n} bytes is too long to tokenize`);
    this.ids = new Int32Array(n);
    this.prev = new Int32Array(n);
    this.next = new Int32Array(n);
  }

  private fill(budget: number): number {
    const { ids, prev, next, bytes } = this;
    const n = ids.length;
    for (; this.filled < n && budget > 0; budget--) {
      const i = this.filled++;
      ids[i] = this.m.byteIds[bytes[i]];
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
      if (i > 0) this.offer(i - 1, ids[i - 1], ids[i]);
    }
    return budget;
  }

  private offer(pos: number, a: number, b: number): void {
    const rank = this.m.ranks.get(a * PACK + b);
    if (rank !== undefined) this.push(rank * PACK + pos);
  }

  /** Applies up to `budget` heap entries; true when no merge is left. */
  run(budget: number): boolean {
    const { ids, prev, next } = this;
    budget = this.fill(budget);
    if (this.filled < ids.length) return false;
    while (this.size > 0 && budget-- > 0) {
      const key = this.pop();
      const pos = key % PACK;
      const rank = (key - pos) / PACK;
      const right = next[pos];
      // stale entries: the left symbol was merged away, or either side changed since the push
      if (ids[pos] < 0 || right < 0 || this.m.ranks.get(ids[pos] * PACK + ids[right]) !== rank) continue;
      ids[pos] = this.m.merged[rank];
      ids[right] = -1;
      const after = next[right];
      next[pos] = after;
      if (after >= 0) prev[after] = pos;
      if (prev[pos] >= 0) this.offer(prev[pos], ids[prev[pos]], ids[pos]);
      if (after >= 0) this.offer(pos, ids[pos], ids[after]);
    }
    return this.size === 0;
  }

  result(): number[] {
    const out: number[] = [];
    for (let i = this.ids.length > 0 ? 0 : -1; i >= 0; i = this.next[i]) out.push(this.ids[i]);
    return out;
  }

  private push(key: number): void {
    if (this.size === this.heap.length) {
      const bigger = new Float64Array(this.heap.length * 2);
      bigger.set(this.heap);
      this.heap = bigger;
    }
    const h = this.heap;
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent] <= key) break;
      h[i] = h[parent];
      i = parent;
    }
    h[i] = key;
  }

  private pop(): number {
    const h = this.heap;
    const top = h[0];
    const last = h[--this.size];
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= this.size) break;
      if (child + 1 < this.size && h[child + 1] < h[child]) child++;
      if (h[child] >= last) break;
      h[i] = h[child];
      i = child;
    }
    h[i] = last;
    return top;
  }
}

/** Pairs of ints in a typed array that doubles: a million pieces without slow array growth. */
class PairList {
  private buf = new Int32Array(64);
  length = 0;
  push(a: number, b: number): void {
    if (this.length + 2 > this.buf.length) {
      const bigger = new Int32Array(this.buf.length * 2);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    this.buf[this.length++] = a;
    this.buf[this.length++] = b;
  }
  at(i: number): number {
    return this.buf[i];
  }
}

/** The pre-tokenised text: pieces as [start, end) of `text`; added tokens by piece index. */
class Pieces {
  text = "";
  readonly bounds = new PairList();
  readonly added = new Map<number, number>();
  get length(): number {
    return this.bounds.length / 2;
  }
  start(i: number): number {
    return this.bounds.at(2 * i);
  }
  piece(i: number): string {
    return this.text.slice(this.bounds.at(2 * i), this.bounds.at(2 * i + 1));
  }
}

// count() and tail() give the event loop back at least this often (the runner renews leases on
// it); a piece whose merge alone is longer is merged in slices of MERGE_SLICE heap entries.
const SLICE_MS = 10;
const LONG_PIECE = 4096;
const MERGE_SLICE = 16_384;
const CHECK_EVERY = 64;
const CACHE_MAX_ENTRIES = 100_000;
const CACHE_MAX_PIECE = 256;

class Slicer {
  private since = performance.now();
  get due(): boolean {
    return performance.now() - this.since > SLICE_MS;
  }
  async pause(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.since = performance.now();
  }
}

/** Byte-level BPE over a tokenizer.json (model.type BPE with vocab + merges, added tokens). */
export class BpeTokenizer implements Tokenizer {
  readonly source = "file" as const;
  private readonly model: Model;
  private readonly normalize: Normalize;
  private readonly steps: SplitStep[];
  // Added tokens (<|im_start|>, <think>, …) are one id each; "normalized: false" ones are found
  // in the raw text, the others after normalisation, as the Rust library does.
  private readonly addedRaw: RegExp | null;
  private readonly addedNormalized: RegExp | null;
  private readonly addedIds = new Map<string, number>();
  private readonly added: AddedToken[];
  // id → the bytes of a vocabulary token, or an added token; built on the first decode
  private decodeTable: { bytes: (Uint8Array | undefined)[]; added: Map<number, AddedToken> } | null = null;
  private readonly byteTable = bytesToUnicode();
  private readonly utf8 = new TextEncoder();
  private readonly utf8Decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  private readonly cache = new Map<string, number[]>();

  constructor(json: any) {
    this.model = checkedModel(json);
    const forms = readNormalizers(json.normalizer, "normalizer");
    this.normalize = forms.length === 0 ? (s) => s : (s) => forms.reduce((t, f) => f(t), s);
    const pre = readPreTokenizer(json.pre_tokenizer, "pre_tokenizer");
    if (!pre.byteLevel) throw new Error("pre_tokenizer has no ByteLevel step: not a byte-level BPE");
    this.steps = pre.steps;
    const added = checkedAddedTokens(json);
    for (const t of added) this.addedIds.set(t.content, t.id);
    this.added = added;
    this.addedRaw = alternation(added.filter((t) => !t.normalized));
    this.addedNormalized = alternation(added.filter((t) => t.normalized));
  }

  /** Added tokens cut out, the rest normalised and pre-tokenised (yields at pause points). */
  private *fill(out: Pieces, text: string): Generator<void> {
    for (const [raw, isAdded] of addedSplits(text, this.addedRaw)) {
      if (isAdded) {
        this.pushAdded(out, raw);
        yield;
        continue;
      }
      for (const [part, isAdded2] of addedSplits(this.normalize(raw), this.addedNormalized)) {
        if (isAdded2) this.pushAdded(out, part);
        else yield* this.pushText(out, part);
      }
    }
  }

  private pieces(text: string): Pieces {
    const out = new Pieces();
    for (const _ of this.fill(out, text));
    return out;
  }

  private async piecesSliced(text: string, slicer: Slicer): Promise<Pieces> {
    const out = new Pieces();
    for (const _ of this.fill(out, text)) if (slicer.due) await slicer.pause();
    return out;
  }

  private pushAdded(out: Pieces, content: string): void {
    out.added.set(out.length, this.addedIds.get(content)!);
    out.bounds.push(out.text.length, out.text.length + content.length);
    out.text += content;
  }

  // Each step splits the ranges of the one before; the last writes straight into `out`.
  private *pushText(out: Pieces, part: string): Generator<void> {
    let ranges = [0, part.length];
    const base = out.text.length;
    for (const [k, step] of this.steps.entries()) {
      const last = k === this.steps.length - 1;
      const next: number[] = [];
      const [into, offset] = last ? [out.bounds, base] : [next, 0];
      for (let i = 0; i < ranges.length; i += 2) yield* splitRange(part, ranges[i], ranges[i + 1], step, into, offset);
      ranges = next;
    }
    if (this.steps.length === 0) out.bounds.push(base, base + part.length);
    out.text += part;
  }

  /** Piece i's ids at once when it is an added token, cached or short; else a merge to finish. */
  private startPiece(p: Pieces, i: number): number[] | WordMerge {
    const added = p.added.get(i);
    if (added !== undefined) return [added];
    const piece = p.piece(i);
    const hit = this.cache.get(piece);
    if (hit) return hit;
    const bytes = this.utf8.encode(piece);
    if (this.model.ignoreMerges && bytes.length > 1) {
      let whole = "";
      for (const b of bytes) whole += this.byteTable[b];
      const id = this.model.vocab.get(whole);
      if (id !== undefined) return this.remember(piece, [id]);
    }
    const merge = new WordMerge(this.model, bytes);
    if (bytes.length >= LONG_PIECE) return merge;
    merge.run(Infinity);
    return this.remember(piece, merge.result());
  }

  private remember(piece: string, ids: number[]): number[] {
    if (piece.length < CACHE_MAX_PIECE) {
      if (this.cache.size >= CACHE_MAX_ENTRIES) this.cache.clear();
      this.cache.set(piece, ids);
    }
    return ids;
  }

  private async finishSliced(merge: WordMerge, slicer: Slicer): Promise<number[]> {
    while (!merge.run(MERGE_SLICE)) if (slicer.due) await slicer.pause();
    return merge.result();
  }

  /**
   * Visits the ids of text's pieces, first to last or last to first, until visit returns false;
   * gives the event loop back whenever a slice of time is used up (the clock is read every
   * CHECK_EVERY pieces and between merge slices). What count, tail and cutSeq build on.
   */
  private async visitPieces(text: string, backward: boolean, visit: (ids: number[], start: number) => boolean): Promise<Pieces> {
    const slicer = new Slicer();
    const p = await this.piecesSliced(text, slicer);
    for (let k = 0; k < p.length; k++) {
      if (k % CHECK_EVERY === 0 && slicer.due) await slicer.pause();
      const i = backward ? p.length - 1 - k : k;
      const started = this.startPiece(p, i);
      const ids = Array.isArray(started) ? started : await this.finishSliced(started, slicer);
      if (!visit(ids, p.start(i))) break;
    }
    return p;
  }

  /** Token ids, as the model's tokenizer would give them (no special tokens added). */
  encode(text: string): number[] {
    const p = this.pieces(text);
    const out: number[] = [];
    for (let i = 0; i < p.length; i++) {
      const started = this.startPiece(p, i);
      const ids = Array.isArray(started) ? started : (started.run(Infinity), started.result());
      for (const id of ids) out.push(id);
    }
    return out;
  }

  /**
   * The text of `ids` as Hugging Face's decode gives it: bytes of consecutive vocabulary tokens
   * are decoded together (an incomplete UTF-8 character becomes U+FFFD), added tokens are their
   * text, and special ones are dropped when skipSpecialTokens is set.
   */
  decode(ids: number[], { skipSpecialTokens = false } = {}): string {
    const table = (this.decodeTable ??= this.buildDecodeTable());
    const utf8 = this.utf8Decoder;
    let out = "";
    let pending: number[] = [];
    const flush = () => {
      out += utf8.decode(new Uint8Array(pending));
      pending = [];
    };
    for (const id of ids) {
      const added = table.added.get(id);
      if (added) {
        flush();
        if (!(skipSpecialTokens && added.special)) out += added.content;
        continue;
      }
      const bytes = table.bytes[id];
      if (!bytes) throw new Error(`token id ${id} is not in this tokenizer's vocabulary`);
      for (const b of bytes) pending.push(b);
    }
    flush();
    return out;
  }

  private buildDecodeTable() {
    const byteOf = new Map(this.byteTable.map((ch, b) => [ch, b]));
    const bytes: (Uint8Array | undefined)[] = [];
    for (const [piece, id] of this.model.vocab) {
      // a character outside the byte table stands for itself, as in the Rust ByteLevel decoder
      const out: number[] = [];
      for (const ch of piece) {
        const b = byteOf.get(ch);
        if (b !== undefined) out.push(b);
        else out.push(...this.utf8.encode(ch));
      }
      bytes[id] = Uint8Array.from(out);
    }
    return { bytes, added: new Map(this.added.map((t) => [t.id, t])) };
  }

  /**
   * ToolOrchestra's cut_seq (evaluation/eval_frames_oss.py and eval_hle_oss.py): the whole
   * text's token count (its effective_length), and its last `keep` tokens decoded one by one
   * and joined, special tokens dropped (batch_decode with skip_special_tokens). Decoding token
   * by token turns a character split across tokens into U+FFFD per token, as the reference does.
   * `keep` slices like Python's ids[-keep:]: 0 keeps every token, -k drops the first k.
   */
  async cutSeq(text: string, keep: number): Promise<{ text: string; effectiveLength: number }> {
    if (text === "") return { text: "", effectiveLength: 0 };
    const ids: number[] = [];
    await this.visitPieces(text, false, (piece) => {
      for (const id of piece) ids.push(id);
      return true;
    });
    const kept = ids.slice(-keep).map((id) => this.decode([id], { skipSpecialTokens: true }));
    return { text: kept.join(""), effectiveLength: ids.length };
  }

  async count(text: string): Promise<number> {
    let n = 0;
    await this.visitPieces(text, false, (ids) => ((n += ids.length), true));
    return n;
  }

  /**
   * The end of the text that fits in maxTokens, cut between pre-tokens. The text is the
   * normalised one (what the model sees; for NFC text, already-composed input is unchanged).
   */
  async tail(text: string, maxTokens: number) {
    let n = 0;
    let cut = -1; // start of the first kept piece, -1 while none is
    const p = await this.visitPieces(text, true, (ids, start) => {
      if (n + ids.length > maxTokens) return false;
      n += ids.length;
      cut = start;
      return true;
    });
    const whole = cut >= 0 && cut === p.start(0);
    return { text: whole ? p.text : cut < 0 ? "" : p.text.slice(cut), tokens: n };
  }
}

// Longest first, so that of two added tokens starting at the same place the longer wins.
function alternation(tokens: AddedToken[]): RegExp | null {
  if (tokens.length === 0) return null;
  const longestFirst = tokens.map((t) => t.content).sort((a, b) => b.length - a.length);
  return new RegExp(longestFirst.map(escapeRegex).join("|"), "g");
}

function* addedSplits(text: string, added: RegExp | null): Generator<[string, boolean]> {
  if (!added) {
    if (text !== "") yield [text, false];
    return;
  }
  let at = 0;
  for (const m of text.matchAll(added)) {
    if (m.index > at) yield [text.slice(at, m.index), false];
    yield [m[0], true];
    at = m.index + m[0].length;
  }
  if (at < text.length) yield [text.slice(at), false];
}
/** vLLM's POST /tokenize ({model, prompt} → {count}); falls back to chars/4 when it fails. */
// Warned once per process and model, however many tasks build a tokenizer.
const warnedModels = new Set<string>();
// A server without /tokenize is not asked again for a while: one failed call per step adds up.
const unavailableUntil = new Map<string, number>();
const RECHECK_MS = 60_000;

export class ServerTokenizer implements Tokenizer {
  readonly source = "server" as const;
  private readonly fallback = new CharsTokenizer();
  constructor(
    private readonly baseUrl: () => string | null,
    private readonly model: string,
    private readonly log: Log,
    private readonly timeoutMs = 10_000,
  ) {}

  async count(text: string): Promise<number> {
    const url = this.baseUrl();
    if (url && (unavailableUntil.get(url) ?? 0) < Date.now()) {
      try {
        const res = await fetch(`${url.replace(/\/+$/, "")}/tokenize`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: this.model, prompt: text, add_special_tokens: false }),
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        if (res.ok) {
          const body = (await res.json()) as { count?: number; tokens?: unknown[] };
          const n = typeof body.count === "number" ? body.count : Array.isArray(body.tokens) ? body.tokens.length : null;
          if (n != null) return n;
        }
        unavailableUntil.set(url, Date.now() + RECHECK_MS);
      } catch {
        unavailableUntil.set(url, Date.now() + RECHECK_MS);
      }
    }
    if (!warnedModels.has(this.model)) {
      warnedModels.add(this.model);
      this.log(`warning: token counts are APPROXIMATE (chars/4): ${url ?? "no server"}/tokenize unavailable for ${this.model}`);
    }
    return this.fallback.count(text);
  }

  async tail(text: string, maxTokens: number) {
    let tokens = await this.count(text);
    if (tokens <= maxTokens) return { text, tokens };
    // Proportional cut, then one correction pass: two calls instead of a binary search.
    let cut = text.slice(text.length - Math.floor((text.length * maxTokens) / tokens));
    tokens = await this.count(cut);
    if (tokens > maxTokens) {
      cut = cut.slice(cut.length - Math.floor((cut.length * maxTokens) / tokens * 0.98));
      tokens = Math.min(maxTokens, await this.count(cut));
    }
    return { text: cut, tokens };
  }
}

const fileCache = new Map<string, BpeTokenizer>();

/** Picks the best tokenizer available for the config; logs once when it must approximate. */
export function createTokenizer({
  mode,
  path,
  serverUrl,
  model,
  log = (l) => console.error(l),
}: {
  mode: "auto" | "file" | "server" | "chars";
  path: string | null;
  serverUrl: () => string | null;
  model: string;
  log?: Log;
}): Tokenizer {
  if (mode === "chars") {
    log("token budgets use chars/4 (tokenizer.mode = chars): counts are approximate");
    return new CharsTokenizer();
  }
  if (path && (mode === "auto" || mode === "file")) {
    try {
      let tok = fileCache.get(path);
      if (!tok) {
        tok = new BpeTokenizer(JSON.parse(readFileSync(path, "utf8")));
        fileCache.set(path, tok);
      }
      return tok;
    } catch (err) {
      log(`warning: cannot load tokenizer ${path} (${(err as Error).message}); using the server's /tokenize or chars/4`);
    }
  }
  return new ServerTokenizer(serverUrl, model, log);
}
