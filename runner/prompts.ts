// Prompt templates per benchmark. Placeholders are {name}; unknown placeholders are left
// as written so a template with literal braces (LaTeX, code) is not mangled.
// The markers the experts are asked for (<query>, ```python, <answer>, <correct>) are also
// what the simulator keys on, so changing them changes what the simulated experts do.

export type PromptSet = {
  orchestratorSystem: string;
  orchestratorUser: string;
  query: string;
  code: string;
  answer: string;
  judge: string;
};

const QUERY =
  "{context}\n\nQuestion: {question}\nInstead of directly answering the question, think hard and write one concise query to search Wikipedia for the missing information. Wrap the query within <query> and </query>.";

const CODE =
  "{context}\n\nQuestion: {question}\nInstead of directly answering the question, write additional Python code whose output gives intermediate results that help answer it. Wrap the code within ```python and ```. The code must be self-contained, with every import and initialization, and print its results.";

const ANSWER =
  "{context}\n\n{question}\n\nThink step by step, then wrap only the exact answer, without any explanation, within <answer> and </answer>.";

const JUDGE =
  "Decide whether a predicted answer to a question matches the gold answer.\n\nQuestion: {question}\nPrediction: {prediction}\nGold answer: {gold}\n\nAssume the gold answer is correct. Equivalent forms (units, rounding the question allows, synonyms, formatting) count as matching. Reply with <correct>True</correct> if the prediction matches the gold answer, otherwise <correct>False</correct>.";

export const DEFAULT_PROMPTS: Record<"frames" | "hle", PromptSet> = {
  frames: {
    orchestratorSystem: "You are good at using tools.",
    orchestratorUser: "Problem: {question}\n\n{context}\n\nChoose an appropriate tool.",
    query: QUERY,
    code: CODE,
    answer: ANSWER,
    judge: JUDGE,
  },
  hle: {
    orchestratorSystem: "You are good at using tools.",
    orchestratorUser: "Problem: {question}\n\n{context}\n\nChoose an appropriate tool.",
    query:
      "{context}\n\nQuestion: {question}\nInstead of directly answering the question, think hard and write one concise query to search for the background knowledge it needs. Wrap the query within <query> and </query>.",
    code: CODE,
    answer:
      "{context}\n\n{question}\n\nReason carefully, then wrap only the final answer (an expression, a number, a letter for multiple choice, or a short phrase), without explanation, within <answer> and </answer>.",
    judge: JUDGE,
  },
};

/** Fills {name} placeholders in one pass, so a value containing "{x}" is never re-expanded. */
export function renderPrompt(template: string, values: Record<string, string>): string {
  return template.replace(/\{([a-z_]+)\}/g, (whole, key: string) => (key in values ? values[key] : whole)).trim();
}

/** The text of the last <tag>…</tag>; an unclosed final tag yields the rest of the text. */
export function extractTag(text: string, tag: string): string | null {
  const open = `<${tag}>`;
  const at = text.lastIndexOf(open);
  if (at < 0) return null;
  const rest = text.slice(at + open.length);
  const end = rest.indexOf(`</${tag}>`);
  return (end < 0 ? rest : rest.slice(0, end)).trim();
}

/** The last ```python block (or the last fenced block when none is labelled python). */
export function extractPython(text: string): string | null {
  const blocks = [...text.matchAll(/```(\w*)[^\n]*\n([\s\S]*?)(?:```|$)/g)];
  if (blocks.length === 0) return null;
  const py = blocks.filter((b) => b[1].toLowerCase() === "python" || b[1].toLowerCase() === "py");
  const code = (py.length > 0 ? py[py.length - 1] : blocks[blocks.length - 1])[2].trim();
  return code.length > 0 ? code : null;
}
