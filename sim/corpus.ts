// The retrieval simulator's corpus and its BM25 index (built once per corpus, shared by every
// replica that serves the same file).
import { readFileSync } from "node:fs";
import { join } from "node:path";

export type CorpusPassage = { id: string; title: string; text: string };
export type CorpusInput = string | (CorpusPassage | { id?: string | number; contents: string })[];

export const DEFAULT_CORPUS = join(import.meta.dir, "data", "corpus.jsonl");

const TERM = /[\p{L}\p{N}]+/gu;
const K1 = 1.2;
const B = 0.75;

function terms(text: string): string[] {
  return text.toLowerCase().match(TERM) ?? [];
}

/** Parses a JSONL corpus; each line {id, title, text} or {id, contents: "Title\ntext"}. */
export function loadCorpus(path: string): CorpusPassage[] {
  const out: CorpusPassage[] = [];
  const lines = readFileSync(path, "utf8").split("\n");
  for (const [i, line] of lines.entries()) {
    if (!line.trim()) continue;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (err) {
      throw new Error(`${path}:${i + 1}: not JSON (${(err as Error).message})`);
    }
    out.push(toPassage(row, `${path}:${i + 1}`, out.length));
  }
  if (out.length === 0) throw new Error(`${path}: the corpus has no passages`);
  return out;
}

function toPassage(row: unknown, where: string, index: number): CorpusPassage {
  const r = row as { id?: unknown; title?: unknown; text?: unknown; contents?: unknown };
  if (!r || typeof r !== "object") throw new Error(`${where}: expected an object with title/text or contents`);
  const id = r.id === undefined ? String(index) : String(r.id);
  if (typeof r.contents === "string") {
    const nl = r.contents.indexOf("\n");
    return nl < 0 ? { id, title: "", text: r.contents } : { id, title: r.contents.slice(0, nl).replace(/^"|"$/g, ""), text: r.contents.slice(nl + 1) };
  }
  if (typeof r.title !== "string" || typeof r.text !== "string") throw new Error(`${where}: expected string fields title and text (or contents)`);
  return { id, title: r.title, text: r.text };
}

export type Hit = { passage: CorpusPassage; score: number };

export class Bm25Index {
  private postings = new Map<string, { doc: number; tf: number }[]>();
  private lengths: Float64Array;
  private avgLength: number;

  constructor(readonly passages: CorpusPassage[]) {
    this.lengths = new Float64Array(passages.length);
    let total = 0;
    passages.forEach((p, doc) => {
      // Title terms count twice: a query naming a passage's title should find that passage.
      const words = [...terms(p.title), ...terms(p.title), ...terms(p.text)];
      this.lengths[doc] = words.length;
      total += words.length;
      const tf = new Map<string, number>();
      for (const w of words) tf.set(w, (tf.get(w) ?? 0) + 1);
      for (const [w, n] of tf) {
        let list = this.postings.get(w);
        if (!list) this.postings.set(w, (list = []));
        list.push({ doc, tf: n });
      }
    });
    this.avgLength = total / Math.max(1, passages.length);
  }

  search(query: string, topk: number): Hit[] {
    const scores = new Map<number, number>();
    const n = this.passages.length;
    for (const w of new Set(terms(query))) {
      const list = this.postings.get(w);
      if (!list) continue;
      const idf = Math.log(1 + (n - list.length + 0.5) / (list.length + 0.5));
      for (const { doc, tf } of list) {
        const norm = tf + K1 * (1 - B + (B * this.lengths[doc]!) / this.avgLength);
        scores.set(doc, (scores.get(doc) ?? 0) + (idf * tf * (K1 + 1)) / norm);
      }
    }
    const ranked = [...scores.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, topk);
    // A query with no known term still returns passages (dense retrievers always return k).
    for (let doc = 0; ranked.length < Math.min(topk, n); doc++) if (!scores.has(doc)) ranked.push([doc, 0]);
    return ranked.map(([doc, score]) => ({ passage: this.passages[doc]!, score: Math.round(score * 1e4) / 1e4 }));
  }
}

const byPath = new Map<string, Bm25Index>();

export function indexFor(corpus: CorpusInput | undefined): Bm25Index {
  if (corpus === undefined || typeof corpus === "string") {
    const path = corpus ?? DEFAULT_CORPUS;
    let index = byPath.get(path);
    if (!index) byPath.set(path, (index = new Bm25Index(loadCorpus(path))));
    return index;
  }
  if (corpus.length === 0) throw new Error("corpus: expected at least one passage");
  return new Bm25Index(corpus.map((row, i) => toPassage(row, `corpus[${i}]`, i)));
}
