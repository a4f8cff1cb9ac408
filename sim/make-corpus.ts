#!/usr/bin/env bun
// Generates sim/data/corpus.jsonl, the retrieval simulator's passages: deterministic (same
// output on every run), a few thousand short Wikipedia-style passages. Entities and answers
// come from the first questions of the FRAMES sample in data/frames-sample.jsonl, so searches
// built from FRAMES questions find related passages; the rest is seeded filler so ranking has
// competition.
//
//   bun sim/make-corpus.ts            # rewrites sim/data/corpus.jsonl
//   bun sim/make-corpus.ts --check    # exits 1 if the committed file differs
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createRng, pickOne } from "./rng";

export type Passage = { id: string; title: string; text: string };

const DATA = join(import.meta.dir, "data");
export const FRAMES_SAMPLE = join(import.meta.dir, "../data/frames-sample.jsonl");
// The committed corpus was generated from these many sample rows; more would change it.
const SEED_ROWS = 150;
const FILLER_PASSAGES = 2600;
const SEED = 20240801;

const SYLLABLES = "ka ren mor vel tas lin dor eth bra sil qua nor wen tor ala mir zen hol pra ves cor lun fa gri ost ber".split(" ");
const KINDS = ["river", "village", "novel", "album", "football club", "mountain", "painter", "composer", "ship", "railway station", "university", "festival", "newspaper", "castle", "poet"];
const REGIONS = ["Northern Valoria", "the Kessar Coast", "Upper Dremland", "the Isle of Orrin", "Southern Marvest", "the Telric Basin", "East Halvard", "the Quellan Plains"];
const THINGS = ["its annual harvest fair", "a disputed border treaty", "an early steam engine", "a collection of medieval manuscripts", "a record-breaking flood", "a celebrated choir", "its limestone bridges", "a rare species of orchid", "a long rivalry with its neighbours", "an experimental observatory"];
const LEADING = new Set(["If", "What", "How", "Imagine", "As", "According", "The", "In", "Which", "Who", "When", "Where", "I", "My", "A", "An", "Of", "On", "At", "This", "That", "Round", "Please", "Consider", "Among", "There", "Is", "Was", "Did", "Do", "Does", "For", "From", "It", "By"]);

function name(rng: () => number): string {
  const parts = 2 + Math.floor(rng() * 2);
  let s = "";
  for (let i = 0; i < parts; i++) s += pickOne(rng, SYLLABLES);
  return s[0]!.toUpperCase() + s.slice(1);
}

/** Runs of capitalised words ("Punxsutawney Phil", "UEFA Champions League"). */
function entities(question: string): string[] {
  const out: string[] = [];
  for (const m of question.matchAll(/\b[\p{Lu}][\p{L}\p{N}'’.-]*(?:\s+(?:of\s+|the\s+|de\s+)?[\p{Lu}][\p{L}\p{N}'’.-]*)*/gu)) {
    let phrase = m[0].replace(/[.'’]+$/, "");
    const words = phrase.split(/\s+/);
    while (words.length && (LEADING.has(words[0]!) || /^\p{Ll}/u.test(words[0]!))) words.shift();
    phrase = words.join(" ");
    if (phrase.length >= 3 && !out.includes(phrase)) out.push(phrase);
  }
  return out;
}

export function makeCorpus(sample: { question: string; answer: string }[]): Passage[] {
  const rng = createRng(SEED);
  const passages: Omit<Passage, "id">[] = [];
  const seenTitles = new Set<string>();
  const add = (title: string, text: string) => {
    if (seenTitles.has(title)) return;
    seenTitles.add(title);
    passages.push({ title, text });
  };

  for (const { question, answer } of sample) {
    const ents = entities(question);
    const years = question.match(/\b(1[5-9]\d\d|20[0-2]\d)\b/g) ?? [];
    ents.forEach((e, i) => {
      const next = ents[(i + 1) % ents.length];
      const other = next && next !== e ? next : pickOne(rng, REGIONS);
      const year = years[0] ?? String(1800 + Math.floor(rng() * 220));
      const lines = [
        `${e} is frequently discussed together with ${other}.`,
        `Records from ${year} describe ${e} in connection with ${pickOne(rng, THINGS)}.`,
      ];
      // The first entity of each question carries the answer, so a good search can find it.
      if (i === 0) lines.push(`Historians link ${e} to ${answer}.`);
      add(e, lines.join(" "));
    });
    if (answer.length <= 60 && ents.length > 0) {
      add(answer, `${answer} is mentioned in sources about ${ents.slice(0, 3).join(", ")}. ${question.trim()}`);
    }
  }

  const fillerTitles: string[] = [];
  for (let i = 0; i < FILLER_PASSAGES; i++) {
    const kind = pickOne(rng, KINDS);
    let title = `${name(rng)} ${kind === "painter" || kind === "composer" || kind === "poet" ? name(rng) : `(${kind})`}`;
    if (seenTitles.has(title)) title = `${title} ${i}`;
    fillerTitles.push(title);
    const year = 1500 + Math.floor(rng() * 520);
    const ref = fillerTitles.length > 1 ? pickOne(rng, fillerTitles) : pickOne(rng, REGIONS);
    const text =
      `${title} is a ${kind} in ${pickOne(rng, REGIONS)}, first recorded in ${year}. ` +
      `It is known for ${pickOne(rng, THINGS)}. ` +
      `In ${year + 1 + Math.floor(rng() * 80)} it was associated with ${ref}, and its population was about ${100 + Math.floor(rng() * 90000)}.`;
    add(title, text);
  }
  return passages.map((p, i) => ({ id: String(i), ...p }));
}

/** The FRAMES rows the corpus is built from. */
export function readCorpusSeed(path = FRAMES_SAMPLE): { question: string; answer: string }[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .slice(0, SEED_ROWS)
    .map((l) => JSON.parse(l) as { question: string; answer: string });
}

function render(passages: Passage[]): string {
  return passages.map((p) => JSON.stringify(p)).join("\n") + "\n";
}

if (import.meta.main) {
  const text = render(makeCorpus(readCorpusSeed()));
  const target = join(DATA, "corpus.jsonl");
  if (process.argv.includes("--check")) {
    const same = readFileSync(target, "utf8") === text;
    console.log(same ? "corpus.jsonl is up to date" : "corpus.jsonl differs from the generator's output");
    process.exit(same ? 0 : 1);
  }
  writeFileSync(target, text);
  console.log(`wrote ${target}: ${text.split("\n").length - 1} passages, ${text.length} bytes`);
}
