// Parsed JSON that can be stored: it may not nest deeper than MAX_JSON_DEPTH (a 100k-deep
// array would overflow the stack later, in validation or JSON.stringify) or hold numbers
// JSON.parse turned into Infinity (`1e999`). functions/body.ts checks request bodies with it,
// db/runs.ts each JSONL row.
import { DbError } from "./errors";

export const MAX_JSON_DEPTH = 64;

/** Dot path of a location inside a parsed value, as error messages name fields. */
function joinPath(path: (string | number)[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

/**
 * Walks a parsed JSON value without recursion; throws a 400 naming the place where it nests
 * too deep or holds a non-finite number. `where` prefixes the path (e.g. "line 3"). Only
 * containers go on the stack and no path is kept: 100k tasks take a few tens of ms. When
 * something is wrong, a second walk (findBad) finds the path for the message.
 */
export function checkJsonValue(value: unknown, where = ""): void {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isFinite(value)) throw invalidAt(where, [], NON_FINITE);
    return;
  }
  const values: object[] = [value];
  const depths: number[] = [0];
  while (values.length > 0) {
    const v = values.pop()!;
    const depth = depths.pop()! + 1;
    const children: unknown[] = Array.isArray(v) ? v : Object.values(v);
    for (let i = 0; i < children.length; i++) {
      const c = children[i];
      if (typeof c === "number") {
        if (!Number.isFinite(c)) return reportBad(value, where);
      } else if (c !== null && typeof c === "object") {
        if (depth >= MAX_JSON_DEPTH) return reportBad(value, where);
        values.push(c);
        depths.push(depth);
      }
    }
  }
}

const NON_FINITE = "a number too large to store (it parsed as infinity)";

function reportBad(value: unknown, where: string): never {
  const found = findBad(value, []);
  if (!found) throw invalidAt(where, [], "invalid value");
  throw found.tooDeep
    ? invalidAt(where, found.path, `nested deeper than ${MAX_JSON_DEPTH} levels`, "request.too_deep")
    : invalidAt(where, found.path, NON_FINITE);
}

/** The first bad place, depth first; recursion stops at MAX_JSON_DEPTH so it cannot overflow. */
function findBad(v: unknown, path: (string | number)[]): { path: (string | number)[]; tooDeep: boolean } | null {
  if (typeof v === "number") return Number.isFinite(v) ? null : { path, tooDeep: false };
  if (v === null || typeof v !== "object") return null;
  if (path.length >= MAX_JSON_DEPTH) return { path, tooDeep: true };
  const entries: [string | number, unknown][] = Array.isArray(v) ? v.map((x, i) => [i, x]) : Object.entries(v);
  for (const [k, x] of entries) {
    const found = findBad(x, [...path, k]);
    if (found) return found;
  }
  return null;
}

function invalidAt(where: string, path: (string | number)[], problem: string, code = "request.invalid"): DbError {
  // a path 64 levels deep says no more than its first few steps
  if (path.length > 6) path = [...path.slice(0, 6), "…"];
  const field = [where, joinPath(path)].filter(Boolean).join(path.length && typeof path[0] === "number" ? "" : ".");
  return new DbError("invalid", code, `${field || "body"}: ${problem}`);
}

