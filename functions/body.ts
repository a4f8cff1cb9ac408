// Reading request bodies so that what is stored is exactly what was sent: the byte limit is
// enforced while streaming (a chunked body has no Content-Length to check up front), the
// text must be valid UTF-8 (no silent U+FFFD), and parsed JSON may not nest deeper than
// MAX_JSON_DEPTH (a 100k-deep array would overflow the stack later, in validation or
// JSON.stringify) or hold numbers JSON.parse turned into Infinity (`1e999`).
import { ApiError } from "./errors";

export const MAX_JSON_DEPTH = 64;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

export function tooLarge(bytes: number | string, maxBodyBytes: number): ApiError {
  return new ApiError(
    413,
    "request.too_large",
    `the body is ${typeof bytes === "number" ? `over ${bytes}` : bytes} bytes; the limit is ${maxBodyBytes} (raise it with --max-body-mb / BATON_MAX_BODY_MB)`,
  );
}

/** The body as text, refusing more than maxBodyBytes (while reading) and invalid UTF-8. */
export async function readBodyText(request: Request, maxBodyBytes: number): Promise<string> {
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBodyBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge(maxBodyBytes, maxBodyBytes);
    }
    chunks.push(value);
  }
  const bytes = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new ApiError(400, "request.invalid_utf8", "the request body is not valid UTF-8");
  }
}

/** Dot path of a location inside a parsed value, as error messages name fields. */
function joinPath(path: (string | number)[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

/**
 * Walks a parsed JSON value without recursion; throws a 400 naming the place where it nests
 * too deep or holds a non-finite number. `where` prefixes the path (e.g. "line 3").
 */
export function checkJsonValue(value: unknown, where = ""): void {
  // parent links instead of a path per node: the path is built only for the error
  type Node = { v: unknown; depth: number; key: string | number; parent: Node | null };
  const stack: Node[] = [{ v: value, depth: 0, key: "", parent: null }];
  while (stack.length > 0) {
    const node = stack.pop()!;
    const v = node.v;
    if (typeof v === "number") {
      if (!Number.isFinite(v)) throw invalidAt(where, pathOf(node), "a number too large to store (it parsed as infinity)");
      continue;
    }
    if (v === null || typeof v !== "object") continue;
    if (node.depth >= MAX_JSON_DEPTH) throw invalidAt(where, pathOf(node), `nested deeper than ${MAX_JSON_DEPTH} levels`, "request.too_deep");
    const depth = node.depth + 1;
    if (Array.isArray(v)) for (let i = 0; i < v.length; i++) stack.push({ v: v[i], depth, key: i, parent: node });
    else for (const k in v) stack.push({ v: (v as Record<string, unknown>)[k], depth, key: k, parent: node });
  }
  function pathOf(node: { key: string | number; parent: any }): (string | number)[] {
    const path: (string | number)[] = [];
    for (let n: any = node; n?.parent; n = n.parent) path.unshift(n.key);
    return path;
  }
}

function invalidAt(where: string, path: (string | number)[], problem: string, code = "request.invalid"): ApiError {
  const field = [where, joinPath(path)].filter(Boolean).join(path.length && typeof path[0] === "number" ? "" : ".");
  return new ApiError(400, code, `${field || "body"}: ${problem}`);
}

/** JSON.parse with the checks above; `where` names the source in errors. */
export function parseJsonStrict(text: string, where = ""): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    if (err instanceof RangeError) throw new ApiError(400, "request.too_deep", `${where || "body"}: nested deeper than ${MAX_JSON_DEPTH} levels`);
    const detail = (err as Error).message;
    throw new ApiError(400, "request.invalid_json", `${where ? `${where}: ` : ""}the request body is not valid JSON (${detail})`);
  }
  checkJsonValue(value, where);
  return value;
}
