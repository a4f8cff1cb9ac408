// Reading request bodies so that what is stored is exactly what was sent: the byte limit is
// enforced while streaming (a chunked body has no Content-Length to check up front), the
// text must be valid UTF-8 (no silent U+FFFD), and parsed JSON may not nest deeper than
// MAX_JSON_DEPTH (a 100k-deep array would overflow the stack later, in validation or
// JSON.stringify) or hold numbers JSON.parse turned into Infinity (`1e999`).
import { checkJsonValue, MAX_JSON_DEPTH } from "../db/json-value";
import { ApiError } from "./errors";

// the walk is in db/ because db/runs.ts checks JSONL rows with it
export { checkJsonValue, MAX_JSON_DEPTH };

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
  // A body with a Content-Length within the limit cannot exceed it (HTTP framing reads that
  // many bytes, no more): read it whole, which for a 30 MB submit is much cheaper than pulling
  // chunks through a reader and concatenating them. Chunked bodies are counted while read.
  const declared = request.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) <= maxBodyBytes) {
    const bytes = new Uint8Array(await request.arrayBuffer());
    if (bytes.byteLength > maxBodyBytes) throw tooLarge(maxBodyBytes, maxBodyBytes);
    return decodeStrict(bytes);
  }
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
  return decodeStrict(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
}

function decodeStrict(bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new ApiError(400, "request.invalid_utf8", "the request body is not valid UTF-8");
  }
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
