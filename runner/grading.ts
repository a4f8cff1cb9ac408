// Grading. The reference profiles grade as eval_frames_oss.py:246-260 / eval_hle_oss.py:277-295
// do (gradeReference); the baton profile normalises before its exact match (gradeAnswer).
// Baton grading: a normalised exact match first (free, deterministic), else an LLM judge. A judge
// that fails is recorded as judge_error with correct = null, never as a wrong answer, so a
// flaky judge cannot silently lower a run's accuracy and the task can be re-judged later.
import { extractTag, renderPrompt } from "./prompts";
import { between, fill, pyStrip } from "./protocol/py";

export type Grade = {
  correct: boolean | null;
  // exact: normalised match; judge: the LLM judge decided; empty: no prediction;
  // judge_error: the judge failed or replied without a verdict
  // too_long: over the reference's 500-word limit
  method: "exact" | "judge" | "empty" | "judge_error" | "too_long";
  judgeReply?: string | null;
  judgeError?: string | null;
};

const ARTICLES = /\b(a|an|the)\b/g;

/** Canonical form of a number written with separators, signs or trailing zeros; else null. */
function canonicalNumber(text: string): string | null {
  const t = text.replace(/[,_\s]/g, "").replace(/^\$/, "").replace(/%$/, "");
  if (!/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(t)) return null;
  const n = Number(t);
  return Number.isFinite(n) ? String(n) : null;
}

/** Lowercase, drop punctuation, articles and extra whitespace; numbers in canonical form. */
export function normalizeAnswer(text: string): string {
  const trimmed = text.trim();
  const num = canonicalNumber(trimmed);
  if (num != null) return num;
  return trimmed
    .toLowerCase()
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .replace(/(\d),(\d{3})\b/g, "$1$2")
    .replace(/[^\p{L}\p{N}\s.]/gu, " ")
    .replace(/\.(?!\d)/g, " ")
    .replace(ARTICLES, " ")
    .split(/\s+/)
    .filter(Boolean)
    .map((w) => canonicalNumber(w) ?? w)
    .join(" ");
}

export function exactMatch(prediction: string, gold: string): boolean {
  const p = normalizeAnswer(prediction);
  return p.length > 0 && p === normalizeAnswer(gold);
}

/** Reads the judge's verdict; null when the reply has none (recorded as judge_error). */
export function parseJudgeVerdict(reply: string): boolean | null {
  const tag = extractTag(reply, "correct");
  const word = (tag ?? "").trim().toLowerCase();
  if (word === "true" || word === "yes") return true;
  if (word === "false" || word === "no") return false;
  return null;
}

export async function gradeAnswer({
  question,
  prediction,
  gold,
  judgeTemplate,
  judge,
}: {
  question: string;
  prediction: string | null;
  gold: string;
  judgeTemplate: string;
  // sends the judge prompt, returns the reply text; throws on failure
  judge: (prompt: string) => Promise<string>;
}): Promise<Grade> {
  if (prediction == null || prediction.trim() === "") return { correct: false, method: "empty" };
  if (exactMatch(prediction, gold)) return { correct: true, method: "exact" };
  const prompt = renderPrompt(judgeTemplate, { question, prediction, gold });
  let reply: string;
  try {
    reply = await judge(prompt);
  } catch (err) {
    return { correct: null, method: "judge_error", judgeError: (err as Error)?.message ?? String(err) };
  }
  const verdict = parseJudgeVerdict(reply);
  if (verdict == null)
    return { correct: null, method: "judge_error", judgeReply: reply.slice(0, 2000), judgeError: "no <correct> verdict" };
  return { correct: verdict, method: "judge", judgeReply: reply.slice(0, 2000) };
}

/** The reference's verdict: the text between the last <correct> and the next </correct>, == "true" ignoring case. */
export function parseReferenceVerdict(reply: string): boolean {
  return between(reply, "<correct>", "</correct>").toLowerCase() === "true";
}

/**
 * The reference's grading of one prediction (already `split('<answer>')[-1]…strip()`ed):
 * blank or more than `maxWords` space-separated words → wrong; `strip().lower()` equality →
 * right; otherwise the judge's verdict. A judge that fails is judge_error (correct null), as
 * in baton: the reference retries it forever, Baton records it so it can be re-judged.
 */
export async function gradeReference({
  question,
  prediction,
  gold,
  maxWords,
  judgeTemplate,
  judge,
}: {
  question: string;
  prediction: string;
  gold: string;
  maxWords: number;
  judgeTemplate: string;
  judge: (prompt: string) => Promise<string>;
}): Promise<Grade> {
  if (pyStrip(prediction) === "") return { correct: false, method: "empty" };
  if (prediction.split(" ").length > maxWords) return { correct: false, method: "too_long" };
  if (pyStrip(prediction).toLowerCase() === pyStrip(gold).toLowerCase()) return { correct: true, method: "exact" };
  const prompt = fill(judgeTemplate, { question, prediction, gold });
  let reply: string;
  try {
    reply = await judge(prompt);
  } catch (err) {
    return { correct: null, method: "judge_error", judgeError: (err as Error)?.message ?? String(err) };
  }
  return { correct: parseReferenceVerdict(reply), method: "judge", judgeReply: reply.slice(0, 2000) };
}
