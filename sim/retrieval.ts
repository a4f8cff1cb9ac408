// A retrieval service simulator speaking the FlashRAG/Search-R1 wire format ToolOrchestra
// uses: POST /retrieve {queries, topk, return_scores} → one ranked list per query, BM25 over
// the shipped corpus, with latency and fault injection like the vLLM simulator.
import type { IncomingMessage, ServerResponse } from "node:http";
import { type CorpusInput, indexFor } from "./corpus";
import { chooseFault, RETRIEVAL_FAULT_KINDS, type RetrievalFaultKind, UnknownFaultError } from "./faults";
import { faultHeader, handleAdmin, readBody, resetConnection, sendJson, sendText, serveSim, type SimServer, sleep, trackRequest } from "./http";
import { jittered, rngFor } from "./rng";
import { mergeSettings, parsePatch, type RetrievalSettings, RetrievalSettingsPatch, SettingsError } from "./settings";

export type { RetrievalSettings } from "./settings";

export type RetrievalSimOptions = RetrievalSettingsPatch & {
  host?: string;
  port?: number;
  /** A JSONL path or passages; default sim/data/corpus.jsonl. */
  corpus?: CorpusInput;
};

export type RetrievalStats = {
  requests: number;
  inFlight: number;
  completed: number;
  queries: number;
  byFault: Partial<Record<RetrievalFaultKind, number>>;
  byStatus: Record<string, number>;
};

export type RetrievalSim = SimServer<RetrievalSettings, RetrievalSettingsPatch, RetrievalStats>;

// the reference FRAMES evaluation asks for 150 (eval_frames_oss.py:303)
const MAX_TOPK = 1000;

type FastApiIssue = { type: string; loc: (string | number)[]; msg: string; input: unknown };

/** Validates a /retrieve body the way the FastAPI server's pydantic model would. */
export function validateRetrieveBody(body: unknown): { queries: string[]; topk: number; returnScores: boolean } | FastApiIssue[] {
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    return [{ type: "model_attributes_type", loc: ["body"], msg: "Input should be a valid dictionary or object", input: body }];
  }
  const b = body as { queries?: unknown; topk?: unknown; return_scores?: unknown; eid?: unknown };
  const issues: FastApiIssue[] = [];
  if (b.queries === undefined) issues.push({ type: "missing", loc: ["body", "queries"], msg: "Field required", input: body });
  else if (!Array.isArray(b.queries)) issues.push({ type: "list_type", loc: ["body", "queries"], msg: "Input should be a valid list", input: b.queries });
  else b.queries.forEach((q, i) => {
    if (typeof q !== "string") issues.push({ type: "string_type", loc: ["body", "queries", i], msg: "Input should be a valid string", input: q });
  });
  if (b.topk !== undefined && b.topk !== null && (typeof b.topk !== "number" || !Number.isInteger(b.topk) || b.topk < 1 || b.topk > MAX_TOPK)) {
    issues.push({ type: "int_range", loc: ["body", "topk"], msg: `Input should be an integer between 1 and ${MAX_TOPK}`, input: b.topk });
  }
  if (b.return_scores !== undefined && typeof b.return_scores !== "boolean") {
    issues.push({ type: "bool_type", loc: ["body", "return_scores"], msg: "Input should be a valid boolean", input: b.return_scores });
  }
  // the reference retrievers declare `eid: str = None` (retrieval_hle.py:399)
  if (b.eid !== undefined && b.eid !== null && typeof b.eid !== "string") {
    issues.push({ type: "string_type", loc: ["body", "eid"], msg: "Input should be a valid string", input: b.eid });
  }
  if (issues.length > 0) return issues;
  return { queries: b.queries as string[], topk: (b.topk as number | undefined) ?? 3, returnScores: b.return_scores !== false };
}

export async function startRetrievalSim(opts: RetrievalSimOptions = {}): Promise<RetrievalSim> {
  const { host = "127.0.0.1", port = 0, corpus, ...patch } = opts;
  const parsed = parsePatch(RetrievalSettingsPatch, patch);
  if (!parsed.ok) throw new SettingsError(`startRetrievalSim: ${parsed.message}`);
  const index = indexFor(corpus);

  let settings: RetrievalSettings = mergeSettings(
    { seed: 0, latency: { ms: 0, jitter: 0 }, faults: { rates: {}, queue: [], retryAfterS: 1 }, shape: "list" },
    parsed.value,
  );
  let faultRng = rngFor(settings.seed, "faults");
  let requestNo = 0;
  const counters = { requests: 0, inFlight: 0, completed: 0, queries: 0 };
  const byFault: Partial<Record<RetrievalFaultKind, number>> = {};
  const byStatus: Record<string, number> = {};

  const snapshot = (): RetrievalSettings => structuredClone(settings);
  function update(p: RetrievalSettingsPatch): RetrievalSettings {
    const r = parsePatch(RetrievalSettingsPatch, p);
    if (!r.ok) throw new SettingsError(r.message);
    if (r.value.seed !== undefined && r.value.seed !== settings.seed) faultRng = rngFor(r.value.seed, "faults");
    settings = mergeSettings(settings, r.value);
    return snapshot();
  }
  function stats(): RetrievalStats {
    return { ...counters, byFault: { ...byFault }, byStatus: { ...byStatus } };
  }
  function reply(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    sendJson(res, status, body, headers);
  }

  async function handleRetrieve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const isClosed = trackRequest(res, counters);
    const s = settings;
    const raw = await readBody(req);
    let fault: RetrievalFaultKind | null;
    try {
      fault = chooseFault({ kinds: RETRIEVAL_FAULT_KINDS, header: faultHeader(req), faults: s.faults, rng: faultRng });
    } catch (err) {
      if (err instanceof UnknownFaultError) return reply(res, 400, { detail: err.message });
      throw err;
    }
    if (fault) byFault[fault] = (byFault[fault] ?? 0) + 1;
    switch (fault) {
      case "hang":
        return;
      case "reset":
        return resetConnection(req);
      case "429":
        return reply(res, 429, { detail: "Too Many Requests (simulated)" }, s.faults.retryAfterS == null ? undefined : { "retry-after": String(s.faults.retryAfterS) });
      case "500":
        return reply(res, 500, { detail: "Internal Server Error (simulated)" });
      case "503":
        return reply(res, 503, { detail: "Service Unavailable (simulated)" });
      case "malformed_json":
        byStatus[200] = (byStatus[200] ?? 0) + 1;
        return sendText(res, 200, `[[{"document": {"id": "0", "contents": "`, "application/json");
    }

    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch (err) {
      return reply(res, 422, { detail: [{ type: "json_invalid", loc: ["body", 0], msg: `JSON decode error: ${(err as Error).message}`, input: {} }] });
    }
    const valid = validateRetrieveBody(body);
    if (Array.isArray(valid)) return reply(res, 422, { detail: valid });

    const ms = jittered(s.latency.ms, s.latency.jitter, rngFor(s.seed, "latency", ++requestNo));
    if (ms > 0) await sleep(ms);
    if (isClosed()) return;

    counters.queries += valid.queries.length;
    const result = valid.queries.map((q) =>
      index.search(q, valid.topk).map((h) => {
        const document = { id: h.passage.id, contents: `${h.passage.title}\n${h.passage.text}` };
        return valid.returnScores ? { document, score: h.score } : document;
      }),
    );
    counters.completed++;
    reply(res, 200, s.shape === "wrapped" ? { result } : result);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    const method = req.method ?? "GET";
    if (method === "POST" && path === "/retrieve") return handleRetrieve(req, res);
    if (method === "GET" && path === "/health") return sendJson(res, 200, { status: "ok", passages: index.passages.length });
    if (await handleAdmin<RetrievalSettingsPatch>({ req, res, path, method, snapshot, update, stats })) return;
    return sendJson(res, 404, { detail: "Not Found" });
  }

  return serveSim({ host, port, handle, settings: snapshot, update, stats });
}
