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

/** Byte-level BPE over a tokenizer.json (model.type BPE with vocab + merges). */
export class BpeTokenizer implements Tokenizer {
  readonly source = "file" as const;
  private readonly ranks = new Map<string, number>();
  private readonly split: RegExp;
  private readonly byteTable = bytesToUnicode();
  private readonly cache = new Map<string, number>();

  constructor(json: any) {
    if (json?.model?.type !== "BPE" || !Array.isArray(json.model.merges))
      throw new Error("not a byte-level BPE tokenizer.json (model.type must be BPE with merges)");
    json.model.merges.forEach((m: string | [string, string], i: number) =>
      this.ranks.set(Array.isArray(m) ? `${m[0]} ${m[1]}` : m, i),
    );
    const pattern = findSplitPattern(json.pre_tokenizer);
    const source = pattern ? pattern.replace(/\(\?i:'s\|'t\|'re\|'ve\|'m\|'ll\|'d\)/, "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])") : DEFAULT_SPLIT;
    this.split = new RegExp(source, "gu");
  }

  private pieces(text: string): string[] {
    return text.match(this.split) ?? [];
  }

  private countPiece(piece: string): number {
    const hit = this.cache.get(piece);
    if (hit != null) return hit;
    let parts = [...new TextEncoder().encode(piece)].map((b) => this.byteTable[b]);
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
    if (this.cache.size < 100_000) this.cache.set(piece, parts.length);
    return parts.length;
  }

  async count(text: string): Promise<number> {
    let n = 0;
    for (const p of this.pieces(text)) n += this.countPiece(p);
    return n;
  }

  async tail(text: string, maxTokens: number) {
    const pieces = this.pieces(text);
    let n = 0;
    let i = pieces.length;
    while (i > 0) {
      const c = this.countPiece(pieces[i - 1]);
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
