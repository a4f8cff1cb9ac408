// What the simulated models write. Pure functions of (settings, request): the orchestrator
// picks tool calls with a seeded policy among the tools the request offers; an expert answers
// by the marker in the last user message (judge, query, code, answer).
import { hashString, pickOne, rngFor } from "./rng";
import { type ChatMessage, messageText } from "./tokenizer";

export type ToolSpec = {
  type?: string;
  function: {
    name: string;
    description?: string;
    parameters?: {
      properties?: Record<string, { type?: string; enum?: unknown[]; description?: string }>;
      required?: string[];
    };
  };
};

export type ToolCallOut = { id: string; name: string; arguments: string };

/** One model turn before tokenisation: reasoning (reasoning_content), content, tool calls. */
export type Generation = { reasoning: string | null; content: string | null; toolCalls: ToolCallOut[] };

/** Tools the simulator emits when asked to make an invalid call and none is offered under that name. */
const UNKNOWN_TOOL = "web_browse";
/** After this many tool results the orchestrator answers whenever `answer` is offered. */
const MAX_STEPS_BEFORE_ANSWER = 6;

const STOPWORDS = new Set(
  ("a an and are as at be but by did do does for from had has have he her his how i if in into is it its " +
    "my of on or she so than that the their them then there these they this to was were what when where " +
    "which who whom whose why will with would you your as of year years many much name named same first " +
    "second third answer question please following given use using based").split(" "),
);

function toolCallId(rng: () => number): string {
  let s = "";
  for (let i = 0; i < 4; i++) s += Math.floor(rng() * 0x100000000).toString(16).padStart(8, "0");
  return `chatcmpl-tool-${s}`;
}

function lastUserText(messages: ChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]!.role === "user") return messageText(messages[i]!.content);
  }
  return "";
}

function firstUserText(messages: ChatMessage[]): string {
  for (const m of messages) if (m.role === "user") return messageText(m.content);
  return "";
}

function conversationKey(messages: ChatMessage[]): number {
  let h = 0;
  for (const m of messages) {
    h = hashString(m.role, h);
    h = hashString(messageText(m.content), h);
    if (Array.isArray(m.tool_calls)) for (const c of m.tool_calls) h = hashString(`${c?.function?.name}${c?.function?.arguments}`, h);
  }
  return h;
}

/** Steps so far: tool results in the conversation (or assistant tool-call turns, if more). */
export function countSteps(messages: ChatMessage[]): number {
  let toolResults = 0;
  let callTurns = 0;
  for (const m of messages) {
    if (m.role === "tool") toolResults++;
    else if (m.role === "assistant" && Array.isArray(m.tool_calls) && m.tool_calls.length > 0) callTurns++;
  }
  return Math.max(toolResults, callTurns);
}

// keywords of the same question are asked for on every turn of its task: remembered (bounded;
// whole prompts are not kept)
const keywordCache = new Map<string, string[]>();
const KEYWORD_CACHE_MAX = 4096;

export function keywords(text: string, max = 8): string[] {
  if (text.length > 2000) return extractKeywords(text, max);
  const key = `${max}\u0000${text}`;
  const hit = keywordCache.get(key);
  if (hit) return [...hit];
  const found = extractKeywords(text, max);
  if (keywordCache.size >= KEYWORD_CACHE_MAX) keywordCache.clear();
  keywordCache.set(key, found);
  return [...found];
}

const WORD = /[\p{L}\p{N}][\p{L}\p{N}'’-]*/gu;

function extractKeywords(text: string, max: number): string[] {
  const seen = new Set<string>();
  const capitalised: string[] = [];
  const rest: string[] = [];
  const re = new RegExp(WORD);
  // capitalised words come first: once `max` of them are found the rest of a long prompt
  // cannot change the answer
  for (let m = re.exec(text); m !== null && capitalised.length < max; m = re.exec(text)) {
    const w = m[0];
    const lower = w.toLowerCase();
    if (STOPWORDS.has(lower) || seen.has(lower) || w.length < 2) continue;
    seen.add(lower);
    (/^\p{Lu}/u.test(w) || /\d/.test(w) ? capitalised : rest).push(w);
  }
  return [...capitalised, ...rest].slice(0, max);
}

function buildArguments(tool: ToolSpec, rng: () => number, question: string): Record<string, unknown> {
  const props = tool.function.parameters?.properties ?? {};
  const required = new Set(tool.function.parameters?.required ?? []);
  const args: Record<string, unknown> = {};
  for (const [name, p] of Object.entries(props)) {
    if (Array.isArray(p.enum) && p.enum.length > 0) {
      args[name] = pickOne(rng, p.enum);
      continue;
    }
    // ToolOrchestra's tools.json lists the choices in the description: "Choices: ['a', 'b']"
    const choices = typeof p.description === "string" ? /Choices:\s*\[([^\]]*)\]/.exec(p.description) : null;
    const listed = choices ? [...choices[1]!.matchAll(/['"]([^'"]+)['"]/g)].map((m) => m[1]!) : [];
    if (listed.length > 0) {
      args[name] = pickOne(rng, listed);
      continue;
    }
    if (!required.has(name)) continue;
    if (p.type === "number" || p.type === "integer") args[name] = 1 + Math.floor(rng() * 5);
    else if (p.type === "boolean") args[name] = rng() < 0.5;
    else args[name] = keywords(question, 6).join(" ");
  }
  return args;
}

/** The tool plan for one question: 1–3 searches, sometimes enhance_reasoning, then answer. */
function planFor(seed: number, question: string): string[] {
  const rng = rngFor(seed, "plan", question);
  const searches = 1 + Math.floor(rng() * 3);
  const plan = Array.from({ length: searches }, () => "search");
  if (rng() < 0.35) plan.splice(1 + Math.floor(rng() * searches), 0, "enhance_reasoning");
  plan.push("answer");
  return plan;
}

export function decideOrchestratorTurn(opts: {
  messages: ChatMessage[];
  tools: ToolSpec[];
  toolChoice: unknown;
  seed: number;
  invalidToolCallRate: number;
}): Generation {
  const { messages, tools, toolChoice, seed, invalidToolCallRate } = opts;
  const question = firstUserText(messages);
  const topic = keywords(question, 4).join(" ") || "the question";
  const steps = countSteps(messages);
  const rng = rngFor(seed, "turn", conversationKey(messages));

  if (tools.length === 0 || toolChoice === "none") {
    return {
      reasoning: `I have gathered what I can about ${topic}.`,
      content: `Based on the information so far about ${topic}, I am ready to answer.`,
      toolCalls: [],
    };
  }

  const offered = new Map(tools.map((t) => [t.function.name, t]));
  let name: string;
  const forced =
    toolChoice && typeof toolChoice === "object" ? (toolChoice as { function?: { name?: string } }).function?.name : undefined;
  if (forced && offered.has(forced)) {
    name = forced;
  } else if (steps >= MAX_STEPS_BEFORE_ANSWER && offered.has("answer")) {
    name = "answer";
  } else {
    const plan = planFor(seed, question);
    const desired = plan[Math.min(steps, plan.length - 1)]!;
    name = offered.has(desired) ? desired : pickOne(rng, [...offered.keys()]);
  }

  const reasoning =
    name === "search"
      ? `I need more information about ${topic}; I will search.`
      : name === "enhance_reasoning"
        ? `Some calculation about ${topic} would help; I will write code.`
        : name === "answer"
          ? `I have enough information about ${topic} to answer.`
          : `I will call ${name} for ${topic}.`;

  const args = buildArguments(offered.get(name)!, rng, question);
  let argText = JSON.stringify(args);
  if (invalidToolCallRate > 0 && rng() < invalidToolCallRate) {
    // The two ways real orchestrators go wrong: a tool that does not exist, or arguments that
    // are not JSON (cut or unbalanced).
    if (rng() < 0.5 && !offered.has(UNKNOWN_TOOL)) name = UNKNOWN_TOOL;
    else argText = argText.slice(0, Math.max(1, argText.length - 1)).replace(/"/, "'");
  }
  return { reasoning, content: null, toolCalls: [{ id: toolCallId(rng), name, arguments: argText }] };
}

// ---- experts ---------------------------------------------------------------------------

type QuestionIndex = {
  // longest first; ties keep the answers' order
  list: [string, string][];
  // questions by their last SUFFIX characters: one scan of the text per distinct ending finds
  // where any of them can end (variants of one question share it) instead of one per question
  bySuffix: Map<string, number[]>;
  // questions shorter than SUFFIX, searched one by one
  short: number[];
};
const SUFFIX = 8;
const questionIndexes = new WeakMap<Record<string, string>, QuestionIndex>();

function questionIndex(answers: Record<string, string>): QuestionIndex {
  let index = questionIndexes.get(answers);
  if (!index) {
    const list = Object.entries(answers)
      .map(([q, a]) => [q.trim(), a] as [string, string])
      .filter(([q]) => q.length > 0)
      .sort((a, b) => b[0].length - a[0].length);
    const bySuffix = new Map<string, number[]>();
    const short: number[] = [];
    list.forEach(([q], i) => {
      if (q.length < SUFFIX) short.push(i);
      else {
        const key = q.slice(-SUFFIX);
        const group = bySuffix.get(key);
        if (group) group.push(i);
        else bySuffix.set(key, [i]);
      }
    });
    index = { list, bySuffix, short };
    questionIndexes.set(answers, index);
  }
  return index;
}

/**
 * The gold answer of the known question the text asks. Retrieved documents earlier in the
 * prompt may quote other questions, and prompts put the question after the context, so the
 * question ending last wins; among those ending at the same place, the longest.
 */
export function findGold(answers: Record<string, string>, text: string): { question: string; answer: string } | null {
  const { list, bySuffix, short } = questionIndex(answers);
  // where each question last ends in the text (-1: absent)
  const ends = new Map<number, number>();
  for (const i of short) {
    const at = text.lastIndexOf(list[i]![0]);
    if (at >= 0) ends.set(i, at + list[i]![0].length);
  }
  for (const [suffix, group] of bySuffix) {
    for (let at = text.indexOf(suffix); at >= 0; at = text.indexOf(suffix, at + 1)) {
      const end = at + SUFFIX;
      for (const i of group) {
        const q = list[i]![0];
        if (end >= q.length && text.startsWith(q, end - q.length)) ends.set(i, end);
      }
    }
  }
  let best: { question: string; answer: string } | null = null;
  let bestEnd = -1;
  for (const [i, end] of [...ends].sort((a, b) => a[0] - b[0])) {
    // The list is longest first, so ">" keeps the longest among equal ends.
    if (end > bestEnd) {
      best = { question: list[i]![0], answer: list[i]![1] };
      bestEnd = end;
    }
  }
  return best;
}

export function normaliseAnswer(s: string): string {
  return s
    .toLowerCase()
    .replace(/[\p{P}\p{S}]/gu, " ")
    .replace(/\b(a|an|the)\b/g, " ")
    .replace(/\s+/g, " ")
    .trim();
}

// every answer beside its normalised form, computed once per answer set (not per wrong answer)
const normalisedAnswers = new WeakMap<Record<string, string>, [string, string][]>();

function wrongAnswer(gold: string, answers: Record<string, string>, rng: () => number): string {
  const num = Number(gold.replace(/,/g, ""));
  if (gold.trim() !== "" && Number.isFinite(num)) return String(num + 1 + Math.floor(rng() * 9));
  let normalised = normalisedAnswers.get(answers);
  if (!normalised) normalisedAnswers.set(answers, (normalised = Object.values(answers).map((a) => [a, normaliseAnswer(a)])));
  const g = normaliseAnswer(gold);
  const others = normalised.filter(([, n]) => n !== g).map(([a]) => a);
  return others.length > 0 ? pickOne(rng, others) : `Not ${gold}`;
}

function lineValue(text: string, label: RegExp): string | null {
  const m = text.match(label);
  return m ? m[1]!.trim() : null;
}

type ExpertMode = "judge" | "query" | "code" | "answer";

function markerIn(text: string): ExpertMode | null {
  if (text.includes("<correct>")) return "judge";
  if (text.includes("<query>")) return "query";
  if (text.includes("```python") || /\bPython\b/.test(text)) return "code";
  if (text.includes("<answer>")) return "answer";
  return null;
}

/**
 * Which reply a prompt asks for. The instruction comes last, after the context, and the
 * context may itself hold markers (earlier code in ```python fences, quoted answers), so the
 * last paragraph decides; the whole prompt only when the last paragraph has no marker.
 */
export function expertMode(prompt: string): ExpertMode {
  const trimmed = prompt.trimEnd();
  const cut = trimmed.lastIndexOf("\n\n");
  return markerIn(cut < 0 ? trimmed : trimmed.slice(cut + 2)) ?? markerIn(trimmed) ?? "answer";
}

export function writeExpertReply(opts: {
  messages: ChatMessage[];
  seed: number;
  answers: Record<string, string>;
  accuracy: number;
}): Generation {
  const { messages, seed, answers, accuracy } = opts;
  const prompt = lastUserText(messages);
  const known = findGold(answers, prompt);
  const subject = known?.question ?? prompt;
  const mode = expertMode(prompt);

  if (mode === "judge") {
    // Baton's judge prompt, or the reference's ("Student answer:" / "Reference answer:")
    const prediction = lineValue(prompt, /^\s*(?:Prediction|Student answer):\s*(.*)$/im);
    const gold = lineValue(prompt, /^\s*(?:Gold answer|Reference answer):\s*(.*)$/im);
    let verdict: boolean;
    if (prediction !== null && gold !== null) {
      const p = normaliseAnswer(prediction);
      const g = normaliseAnswer(gold);
      verdict = p.length > 0 && (p === g || (g.length > 3 && p.includes(g)));
    } else {
      verdict = rngFor(seed, "judge", prompt)() < accuracy;
    }
    return {
      reasoning: `Comparing the prediction with the gold answer.`,
      content: `The prediction ${verdict ? "matches" : "does not match"} the gold answer. <correct>${verdict ? "True" : "False"}</correct>`,
      toolCalls: [],
    };
  }

  if (mode === "query") {
    const words = keywords(subject, 8);
    const query = words.length ? words.join(" ") : "general knowledge";
    return { reasoning: `The key terms are: ${words.join(", ")}.`, content: `<query>${query}</query>`, toolCalls: [] };
  }

  if (mode === "code") {
    const nums = (subject.match(/\d+/g) ?? []).slice(0, 6).map((n) => Number(n) % 100000);
    const values = nums.length ? nums : [hashString(subject, seed) % 1000];
    const code = [
      "```python",
      `values = [${values.join(", ")}]`,
      "total = sum(values)",
      `print(f"sum={total} max={max(values)} count={len(values)}")`,
      "```",
    ].join("\n");
    return { reasoning: "A short script can compute this.", content: code, toolCalls: [] };
  }

  // Answer mode: right with probability `accuracy`, seeded per question so retries agree.
  let answer: string;
  if (known) {
    const right = rngFor(seed, "accuracy", known.question)() < accuracy;
    answer = right ? known.answer : wrongAnswer(known.answer, answers, rngFor(seed, "wrong", known.question));
  } else {
    const guess = keywords(prompt, 12).filter((w) => /^\p{Lu}/u.test(w));
    answer = guess.length ? pickOne(rngFor(seed, "guess", prompt), guess) : "42";
  }
  return {
    reasoning: `Considering the evidence about ${keywords(subject, 4).join(" ") || "the question"}.`,
    content: `Based on the documents, the answer is ${answer}.\n<answer>${answer}</answer>`,
    toolCalls: [],
  };
}
