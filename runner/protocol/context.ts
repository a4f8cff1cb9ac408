// The context text each role sees. Reference profiles assemble it exactly as the reference
// scripts do (see data/profiles/toolorchestra-*.json for every string and number, with its
// source line); the baton profile keeps Baton's own assembly.
import type { RunConfig } from "../config";
import type { Tokenizer } from "../tokenizer";
import type { ReferenceSettings, ToolKey } from "./profile";
import { fill, pySlice } from "./py";
import type { CodePiece, Doc } from "./step";

type CutSeqTokenizer = Tokenizer & { cutSeq(text: string, keep: number): Promise<{ text: string; effectiveLength: number }> };

/**
 * The reference's cut_seq: the last `l` tokens of `seq` and its full length in tokens. A
 * tokenizer.json tokenizer does it exactly (its last l ids decoded one by one); others cut
 * between their own pieces. Python's `ids[-l:]` keeps everything when l is 0 and drops the
 * first |l| when l < 0.
 */
export async function cutSeq(tok: Tokenizer, seq: string, l: number): Promise<{ text: string; length: number }> {
  if (seq.length === 0) return { text: "", length: 0 };
  if (typeof (tok as Partial<CutSeqTokenizer>).cutSeq === "function") {
    const r = await (tok as CutSeqTokenizer).cutSeq(seq, l);
    return { text: r.text, length: r.effectiveLength };
  }
  const length = await tok.count(seq);
  if (l === 0) return { text: seq, length };
  const keep = l > 0 ? l : Math.max(0, length + l);
  if (keep === 0) return { text: "", length };
  return { text: (await tok.tail(seq, keep)).text, length };
}

function codeString(pieces: CodePiece[], template: string): string {
  return pieces.map((c) => fill(template, { code: c.code, output: c.output })).join("");
}

/** What follows "Problem: …" in the orchestrator's user message (eval_frames_oss.py:478-504, eval_hle_oss.py:569-599). */
export async function referenceOrchestratorContext({
  ref,
  config,
  tok,
  question,
  docs,
  code,
}: {
  ref: ReferenceSettings;
  config: Pick<RunConfig, "budgets">;
  tok: Tokenizer;
  question: string;
  docs: Doc[];
  code: CodePiece[];
}): Promise<string> {
  const c = ref.context;
  const docStr = docs
    .map((d, i) => fill(c.orchestratorDocument, { n: i + 1, document: pySlice(d.contents, config.budgets.documentChars) }))
    .join("");
  // The reference's attempt list is never appended to, so its attempt string is always empty.
  const cut = await cutSeq(tok, codeString(code, c.codePiece), config.budgets.codeTokens);
  let codeAttempt = cut.text;
  if (codeAttempt.length > 0 && !codeAttempt.startsWith("```")) codeAttempt = c.codeCutPrefix + codeAttempt;
  const limit = config.budgets.documentTokens - (c.orchestratorContextMinusQuestion ? await tok.count(question) : 0);
  if (cut.length >= limit) return codeAttempt;
  const body = c.codeHeaderOnlyWithCode && !codeAttempt ? docStr : docStr + c.codeHeader + codeAttempt;
  const context = (await cutSeq(tok, body, limit)).text;
  return docStr.length > 0 ? c.documentsHeader + context : context;
}

/** The context_str a tool's expert gets (eval_frames_oss.py:583-654, eval_hle_oss.py:720-796). */
export async function referenceExpertContext({
  ref,
  config,
  tok,
  tool,
  question,
  docs,
  code,
}: {
  ref: ReferenceSettings;
  config: Pick<RunConfig, "budgets">;
  tok: Tokenizer;
  tool: ToolKey;
  question: string;
  docs: Doc[];
  code: CodePiece[];
}): Promise<string> {
  const c = ref.context;
  const chars = c.expertDocumentChars[tool];
  const docStr = docs
    .map((d, i) => fill(c.expertDocument, { n: i + 1, document: chars == null ? d.contents : pySlice(d.contents, chars) }))
    .join("");
  // budgets.codeTokens stands for the reference's 12k; answer's own 10k follows an override of it
  const codeTokens = tool === "answer" ? c.expertCodeTokens.answer : config.budgets.codeTokens;
  let codeStr = (await cutSeq(tok, codeString(code, c.codePiece), codeTokens)).text;
  if (codeStr.length > 0 && !codeStr.startsWith("```")) codeStr = c.codeCutPrefix + codeStr;
  const problemLen = await tok.count(question);
  const context = (await cutSeq(tok, docStr + codeStr, config.budgets.contextTokens - problemLen)).text;
  return docStr.length > 0 ? c.documentsHeader + context : context;
}

/** Baton's context: documents cut per character, earlier code fenced as ```py, attempts. */
export async function batonContext({
  config,
  tok,
  question,
  docs,
  code,
  attempts,
}: {
  config: Pick<RunConfig, "budgets">;
  tok: Tokenizer;
  question: string;
  docs: Doc[];
  code: CodePiece[];
  attempts: { model: string; answer: string }[];
}): Promise<string> {
  const b = config.budgets;
  const docStr = docs.map((d, i) => `Doc ${i + 1}: ${d.contents.slice(0, b.documentChars)}\n\n`).join("");
  // Earlier code is fenced as ```py: "```python" marks the prompt that asks for new code.
  const codeStr = code.map((c) => `\`\`\`py\n${c.code}\n\`\`\`\n\n\`\`\`output\n${c.output}\n\`\`\`\n\n`).join("");
  let attemptStr = attempts.map((a, i) => `Attempt${i + 1} answer by ${a.model}: ${a.answer}\n`).join("");
  if (attemptStr) attemptStr = (await tok.tail(attemptStr, b.attemptTokens)).text;
  let codeAttempt = codeStr + attemptStr;
  if (codeAttempt) codeAttempt = (await tok.tail(codeAttempt, b.codeTokens)).text;
  const questionTokens = await tok.count(question);
  const room = Math.max(256, b.contextTokens - questionTokens);
  const body = docStr + (codeAttempt ? `\npython code and execution outputs:\n${codeAttempt}` : "");
  if (!body) return "";
  const cut = (await tok.tail(body, Math.min(room, b.documentTokens + b.codeTokens))).text;
  return docs.length > 0 ? `Documents:\n${cut}` : cut;
}
