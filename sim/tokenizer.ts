// The simulators' tokenizer: deterministic and cheap, shared by /tokenize, usage counting,
// context-length checks and max_tokens truncation so all four always agree. A token is a run
// of up to 6 letters, one digit, or one other non-space character — close enough to a BPE
// for budget arithmetic (~4 characters per token on English text).
const TOKEN = /\p{L}{1,6}|\p{N}|[^\s\p{L}\p{N}]/gu;

// classes of one code point for countTokens: letter, number, space, other
const LETTER = /^\p{L}$/u;
const NUMBER = /^\p{N}$/u;
const SPACE = /^\s$/u;

/** The number of TOKEN matches, counted by one pass over the code points (the regex per token costs 10x). */
export function countTokens(text: string): number {
  let n = 0;
  // letters in the current run: TOKEN takes them 6 at a time
  let run = 0;
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    let kind: number;
    if (c < 128) {
      kind = (c >= 97 && c <= 122) || (c >= 65 && c <= 90) ? 0 : c >= 48 && c <= 57 ? 1 : c === 32 || (c >= 9 && c <= 13) ? 2 : 3;
    } else {
      let ch = text[i]!;
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
        const d = text.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          ch = text.slice(i, i + 2);
          i++;
        }
      }
      kind = LETTER.test(ch) ? 0 : NUMBER.test(ch) ? 1 : SPACE.test(ch) ? 2 : 3;
    }
    if (kind === 0) {
      if (run++ % 6 === 0) n++;
      continue;
    }
    run = 0;
    if (kind !== 2) n++;
  }
  return n;
}

/** Token ids: a stable hash of each piece into a 151k vocabulary (Qwen-sized). */
export function tokenize(text: string): number[] {
  const ids: number[] = [];
  for (const m of text.matchAll(TOKEN)) {
    let h = 0x811c9dc5;
    const s = m[0];
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    ids.push((h >>> 0) % 151_643);
  }
  return ids;
}

/** The prefix of `text` holding at most `maxTokens` tokens (cut at a token boundary). */
export function truncateToTokens(text: string, maxTokens: number): string {
  if (maxTokens <= 0) return "";
  TOKEN.lastIndex = 0;
  let n = 0;
  let m: RegExpExecArray | null;
  while ((m = TOKEN.exec(text)) !== null) {
    n++;
    if (n === maxTokens) return text.slice(0, m.index + m[0].length);
  }
  return text;
}

/** Splits text into pieces of one token each (leading whitespace kept with its token). */
export function splitTokens(text: string): string[] {
  const out: string[] = [];
  TOKEN.lastIndex = 0;
  let prev = 0;
  let m: RegExpExecArray | null;
  while ((m = TOKEN.exec(text)) !== null) {
    const end = m.index + m[0].length;
    out.push(text.slice(prev, end));
    prev = end;
  }
  if (prev < text.length) {
    if (out.length) out[out.length - 1] += text.slice(prev);
    else out.push(text.slice(prev));
  }
  return out;
}

export type ChatMessage = {
  role: string;
  content?: unknown;
  tool_calls?: { function?: { name?: string; arguments?: string } }[];
  [k: string]: unknown;
};

export function messageText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    let s = "";
    for (const part of content) {
      if (part && typeof part === "object" && typeof (part as { text?: unknown }).text === "string") {
        s += (part as { text: string }).text;
      }
    }
    return s;
  }
  return "";
}

/**
 * The prompt as a ChatML string, the way a chat template would render it (tools in the
 * system preamble, tool calls inline, generation prompt at the end). Prompt token counts are
 * the token count of this string, for usage, /tokenize and context-length checks alike.
 */
export function renderChat(messages: ChatMessage[], tools?: unknown): string {
  let s = "";
  if (Array.isArray(tools) && tools.length > 0) {
    s += `<|im_start|>system\n# Tools\n${JSON.stringify(tools)}<|im_end|>\n`;
  }
  for (const m of messages) {
    s += `<|im_start|>${m.role}\n${messageText(m.content)}`;
    if (Array.isArray(m.tool_calls)) {
      for (const c of m.tool_calls) {
        s += `<tool_call>${c?.function?.name ?? ""} ${c?.function?.arguments ?? ""}</tool_call>`;
      }
    }
    s += "<|im_end|>\n";
  }
  return s + "<|im_start|>assistant\n";
}
