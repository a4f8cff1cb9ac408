// Prompt helpers. The prompt texts are profile data (data/profiles/*.json): the reference's
// under `toolorchestra-*`, Baton's own under `baton`. Placeholders are {name}; unknown
// placeholders are left as written so a template with literal braces (LaTeX, code) is not
// mangled. The markers the experts are asked for (<query>, ```python, <answer>, <correct>) are
// also what the simulator keys on, so changing them changes what the simulated experts do.

export type { PromptSet } from "../db/run-config";

/** Baton's rendering: {name} placeholders filled in one pass (a value containing "{x}" is never re-expanded), then trimmed. */
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
