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

// The Qwen2/GPT-4 style split; JS has no inline (?i:…) so the contractions are spelled out.
const DEFAULT_SPLIT =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

function findSplitPattern(pre: any): string | null {
  if (!pre) return null;
  if (pre.type === "Split" && pre.pattern?.Regex) return pre.pattern.Regex;
  if (Array.isArray(pre.pretokenizers))
    for (const p of pre.pretokenizers) {
      const found = findSplitPattern(p);
      if (found) return found;
    }
  return null;
}

type AddedToken = { id: number; content: string };

// A tokenizer.json that loads but tokenizes wrongly would make every budget silently wrong,
// so the loader checks what the counts depend on and names the first thing that is off.
function checkedModel(json: any): { vocab: Map<string, number>; merges: [string, string][]; added: AddedToken[]; ignoreMerges: boolean } {
  const model = json?.model;
  if (model == null || typeof model !== "object") throw new Error("no model section: not a tokenizer.json");
  if (model.type !== "BPE") throw new Error(`model.type is ${JSON.stringify(model.type)}, expected "BPE" (byte-level BPE)`);
  if (model.vocab == null || typeof model.vocab !== "object" || Array.isArray(model.vocab))
    throw new Error("model.vocab must be an object of token → id");
  if (!Array.isArray(model.merges)) throw new Error("model.merges must be an array");
  const vocab = new Map<string, number>();
  for (const [piece, id] of Object.entries(model.vocab)) {
    if (!Number.isInteger(id)) throw new Error(`model.vocab[${JSON.stringify(piece)}] is ${JSON.stringify(id)}, expected an integer id`);
    vocab.set(piece, id as number);
  }
  for (const [b, ch] of bytesToUnicode().entries())
    if (!vocab.has(ch)) throw new Error(`model.vocab lacks the byte token ${JSON.stringify(ch)} (byte ${b}): not a byte-level vocabulary`);
  const merges = model.merges.map((m: unknown, i: number): [string, string] => {
    const pair = typeof m === "string" ? m.split(" ") : m;
    if (!Array.isArray(pair) || pair.length !== 2 || pair.some((x) => typeof x !== "string" || x === ""))
      throw new Error(`model.merges[${i}] is ${JSON.stringify(m)}, expected "a b" or ["a", "b"]`);
    if (!vocab.has(pair[0] + pair[1]))
      throw new Error(`model.merges[${i}] ${JSON.stringify(m)} makes ${JSON.stringify(pair[0] + pair[1])}, which is not in model.vocab`);
    return pair as [string, string];
  });
  const added: AddedToken[] = [];
  for (const [i, t] of (Array.isArray(json.added_tokens) ? json.added_tokens : []).entries()) {
    if (!Number.isInteger(t?.id) || typeof t?.content !== "string" || t.content === "")
      throw new Error(`added_tokens[${i}] needs an integer id and a non-empty content`);
    added.push({ id: t.id, content: t.content });
  }
  return { vocab, merges, added, ignoreMerges: model.ignore_merges === true };
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Byte-level BPE over a tokenizer.json (model.type BPE with vocab + merges, added tokens). */
export class BpeTokenizer implements Tokenizer {
  readonly source = "file" as const;
  private readonly ranks = new Map<string, number>();
  private readonly vocab: Map<string, number>;
  private readonly ignoreMerges: boolean;
  private readonly split: RegExp;
  // Added tokens (<|im_start|>, <|endoftext|>, …) are matched before the split, one id each.
  private readonly added: RegExp | null;
  private readonly addedIds = new Map<string, number>();
  private readonly byteTable = bytesToUnicode();
  private readonly cache = new Map<string, number[]>();

  constructor(json: any) {
    const { vocab, merges, added, ignoreMerges } = checkedModel(json);
    this.vocab = vocab;
    this.ignoreMerges = ignoreMerges;
    merges.forEach(([a, b], i) => this.ranks.set(`${a} ${b}`, i));
    const pattern = findSplitPattern(json.pre_tokenizer);
    const source = pattern ? pattern.replace(/\(\?i:'s\|'t\|'re\|'ve\|'m\|'ll\|'d\)/, "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])") : DEFAULT_SPLIT;
    try {
      this.split = new RegExp(source, "gu");
    } catch (err) {
      throw new Error(`pre_tokenizer Split pattern is not a usable regex: ${(err as Error).message}`);
    }
    for (const t of added) this.addedIds.set(t.content, t.id);
    const longestFirst = [...this.addedIds.keys()].sort((a, b) => b.length - a.length);
    this.added = longestFirst.length > 0 ? new RegExp(longestFirst.map(escapeRegex).join("|"), "g") : null;
  }

  private pieces(text: string): string[] {
    if (!this.added) return text.match(this.split) ?? [];
    const out: string[] = [];
    let at = 0;
    for (const m of text.matchAll(this.added)) {
      if (m.index > at) out.push(...(text.slice(at, m.index).match(this.split) ?? []));
      out.push(m[0]);
      at = m.index + m[0].length;
    }
    if (at < text.length) out.push(...(text.slice(at).match(this.split) ?? []));
    return out;
  }

  private encodePiece(piece: string): number[] {
    const hit = this.cache.get(piece);
    if (hit) return hit;
    const special = this.addedIds.get(piece);
    if (special != null) return [special];
    let parts = [...new TextEncoder().encode(piece)].map((b) => this.byteTable[b]);
    const whole = parts.join("");
    if (this.ignoreMerges && this.vocab.has(whole)) parts = [whole];
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < parts.length - 1; i++) {
        const r = this.ranks.get(`${parts[i]} ${parts[i + 1]}`);
        if (r != null && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      parts = [...parts.slice(0, best), parts[best] + parts[best + 1], ...parts.slice(best + 2)];
    }
    // every part is in the vocab: bytes and merge results were checked at load
    const ids = parts.map((p) => this.vocab.get(p)!);
    if (this.cache.size < 100_000) this.cache.set(piece, ids);
    return ids;
  }

  /** Token ids, as the model's tokenizer would give them (no special tokens added). */
  encode(text: string): number[] {
    return this.pieces(text).flatMap((p) => this.encodePiece(p));
  }

  async count(text: string): Promise<number> {
    let n = 0;
    for (const p of this.pieces(text)) n += this.encodePiece(p).length;
    return n;
  }

  async tail(text: string, maxTokens: number) {
    const pieces = this.pieces(text);
    let n = 0;
    let i = pieces.length;
    while (i > 0) {
      const c = this.encodePiece(pieces[i - 1]).length;
      if (n + c > maxTokens) break;
      n += c;
      i--;
    }
    return { text: pieces.slice(i).join(""), tokens: n };
  }
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
