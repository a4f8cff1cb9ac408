// The run configuration on the wire: every surface a user touches (the API's `config`, the
// files given to --config, sweep paths, what GET /v1/runs/:id answers) speaks snake_case like
// the rest of the API; the code and the stored rows speak camelCase (db/run-config.ts types).
// These functions rename at the boundary. Keys that are data, not field names, are never
// renamed: model aliases, tool names, endpoint model names, OpenAI tool definitions, the
// reference's extra request body. Imports nothing from run-config.ts, which uses it for its
// issue paths.
import { camelCaseKey, snakeCaseKey } from "./keys";

export type ConfigWireIssue = { path: string; message: string };

// Where the keys of an object are data (kept as they are, values too), by the internal path of
// the object (array indices left out).
const DATA_KEYS: ReadonlySet<string> = new Set([
  // alias → served model ("search-1", "reasoner_2", …)
  "models",
  // tool name → aliases ("enhance_reasoning")
  "toolModels",
  // the reference's per-tool numbers, keyed by tool name (derived; shown by GET)
  "reference.context.expertDocumentChars",
  "reference.context.expertCodeTokens",
]);
// Where the whole value is data: nothing below is renamed.
const VERBATIM: ReadonlySet<string> = new Set([
  // OpenAI function definitions, as in ToolOrchestra's tools.json
  "tools",
  // a ToolOrchestra model config: model names → [{ip_addr, port}]
  "endpoints",
  // a body merged into the reference's answer requests (chat_template_kwargs, …)
  "reference.experts.answerExtraBody",
]);

/** The internal paths whose keys (DATA_KEYS) or contents (VERBATIM) are data; for tests. */
export const CONFIG_DATA_PATHS = { keys: [...DATA_KEYS], verbatim: [...VERBATIM] };

type Kind = "fields" | "keys" | "verbatim";

// By prefix: a sweep value can sit below a data position (`endpoints.my_model`).
function kindAt(path: readonly string[]): Kind {
  for (let i = 1; i <= path.length; i++) {
    const p = path.slice(0, i).join(".");
    if (VERBATIM.has(p)) return "verbatim";
    if (DATA_KEYS.has(p)) return i === path.length ? "keys" : "verbatim";
  }
  return "fields";
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === "object" && !Array.isArray(x);
}

const splitPath = (at: string | undefined): string[] => (at ? at.split(".") : []);
const isIndex = (seg: string | number) => typeof seg === "number" || /^\d+$/.test(seg);

type Mode = "read" | "lenient" | "write";

/**
 * Renames the field keys of `node`, found at internal path `path` (wire path `wire`, for
 * messages). read: snake → camel, refusing a camelCase key; lenient: snake or camel → camel;
 * write: camel → snake.
 */
function convert(node: unknown, path: string[], wire: string[], mode: Mode, issues: ConfigWireIssue[]): unknown {
  const kind = kindAt(path);
  if (kind === "verbatim") return node;
  if (Array.isArray(node)) return node.map((x, i) => convert(x, path, [...wire, String(i)], mode, issues));
  if (!isPlainObject(node) || kind === "keys") return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (mode === "read" && /[A-Z]/.test(key)) {
      const snake = snakeCaseKey(key);
      issues.push({ path: [...wire, key].join("."), message: snake.startsWith("_") ? "unknown field" : `unknown field, did you mean ${snake}?` });
      continue;
    }
    const internal = camelCaseKey(key);
    const name = mode === "write" ? snakeCaseKey(key) : internal;
    out[name] = convert(value, [...path, internal], [...wire, mode === "write" ? name : key], mode, issues);
  }
  return out;
}

/**
 * A configuration document as a user wrote it (snake_case) in the code's spelling. `at` is the
 * internal path the document sits at (a sweep value for `orchestrator` is an orchestrator
 * block); `where` prefixes the issue paths. A camelCase field name is refused with the right
 * spelling; anything else (unknown fields, wrong types) is left to resolveRunConfig.
 */
export function readConfigDocument({
  document,
  at,
  where = "config",
}: {
  document: unknown;
  at?: string;
  where?: string;
}): { ok: true; config: any } | { ok: false; issues: ConfigWireIssue[] } {
  const issues: ConfigWireIssue[] = [];
  const config = convert(document, splitPath(at), [where], "read", issues);
  return issues.length ? { ok: false, issues } : { ok: true, config };
}

/**
 * Either spelling to the code's: what a stored config (camelCase) or one read back from the
 * API (snake_case) becomes before it is resolved. Identity on a stored config.
 */
export function normalizeConfigDocument(document: unknown): any {
  return convert(document, [], [], "lenient", []);
}

/** A configuration (resolved, stored or partial, found at internal path `at`) in the wire's snake_case. */
export function writeConfigDocument(config: unknown, at?: string): any {
  return convert(config, splitPath(at), [], "write", []);
}

function writeConfigPathSegments(segments: readonly (string | number)[]): string[] {
  const path: string[] = [];
  const out: string[] = [];
  let kind: Kind = "fields";
  for (const seg of segments) {
    if (kind === "fields") kind = kindAt(path);
    if (kind !== "fields") {
      out.push(String(seg));
      // under data keys, the key is data and so is everything below it
      kind = "verbatim";
      continue;
    }
    if (isIndex(seg)) {
      out.push(String(seg));
      continue;
    }
    out.push(snakeCaseKey(String(seg)));
    path.push(camelCaseKey(String(seg)));
  }
  return out;
}

/** An internal configuration path (`orchestrator.maxTokens`, or its segments) as the wire spells it. */
export function writeConfigPath(path: string | readonly (string | number)[]): string {
  return writeConfigPathSegments(typeof path === "string" ? path.split(".") : path).join(".");
}

/**
 * A dotted path as a user wrote it (`orchestrator.max_tokens`) in the code's spelling; a
 * camelCase field name is refused with the right spelling of the whole path.
 */
export function readConfigPath(path: string): { ok: true; path: string } | { ok: false; message: string } {
  const segments = path.split(".");
  const internal: string[] = [];
  let kind: Kind = "fields";
  for (const [i, seg] of segments.entries()) {
    if (kind === "fields") kind = kindAt(internal.filter((s) => !isIndex(s)));
    if (kind !== "fields" || isIndex(seg)) {
      internal.push(seg);
      if (kind !== "fields") kind = "verbatim";
      continue;
    }
    if (/[A-Z]/.test(seg)) {
      const fixed = [...segments.slice(0, i), snakeCaseKey(seg), ...segments.slice(i + 1)].join(".");
      return { ok: false, message: `${path}: unknown field, did you mean ${writeConfigPath(readConfigPathLenient(fixed))}?` };
    }
    internal.push(camelCaseKey(seg));
  }
  return { ok: true, path: internal.join(".") };
}

// the suggestion for a path with several camelCase segments fixes them all
function readConfigPathLenient(path: string): string {
  const segments = path.split(".");
  const internal: string[] = [];
  let kind: Kind = "fields";
  for (const seg of segments) {
    if (kind === "fields") kind = kindAt(internal.filter((s) => !isIndex(s)));
    if (kind !== "fields" || isIndex(seg)) {
      internal.push(seg);
      if (kind !== "fields") kind = "verbatim";
      continue;
    }
    internal.push(camelCaseKey(snakeCaseKey(seg)));
  }
  return internal.join(".");
}

/** Issues as one message line: `config.maxRounds: unknown field, did you mean max_rounds?; …`. */
export function formatConfigIssues(issues: readonly ConfigWireIssue[]): string {
  return issues.map((i) => `${i.path}: ${i.message}`).join("; ");
}
