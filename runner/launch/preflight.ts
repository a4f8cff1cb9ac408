// `baton preflight`: what a run needs, checked against what is actually served before any
// task is spent on it. Every check is a row: ok, missing (the run cannot succeed as is) or
// warn (it will run, with a caveat such as approximate token counts).
import { readFileSync } from "node:fs";
import type { RunConfig } from "../config";
import { BpeTokenizer } from "../tokenizer";
import { needsOf } from "./needs";

export type CheckRow = { check: string; target: string; result: "ok" | "missing" | "warn"; detail: string };

export type PreflightEndpoint = { kind: string; name: string; baseUrl: string; enabled: boolean; state?: string };

const PROBE_MS = 10_000;

async function getJson(url: string, init: RequestInit = {}, timeoutMs = PROBE_MS): Promise<{ ok: boolean; status: number; json: any; error?: string }> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    let json: any = null;
    try {
      json = JSON.parse(text);
    } catch {}
    return { ok: res.ok, status: res.status, json };
  } catch (err) {
    return { ok: false, status: 0, json: null, error: (err as Error).message };
  }
}

// The prompt budget a model must hold: the orchestrator sees documentTokens of context, the
// experts contextTokens (runner/config.ts, in the reference's terms).
function promptBudget(config: RunConfig, label: string): number {
  return label === "orchestrator" ? config.budgets.documentTokens : config.budgets.contextTokens;
}

async function checkModel(config: RunConfig, labels: string[], model: string, eps: PreflightEndpoint[]): Promise<CheckRow[]> {
  const who = `${labels.join(", ")} → ${model}`;
  if (eps.length === 0) return [{ check: "model served", target: who, result: "missing", detail: "0 healthy endpoints" }];
  const listed: { url: string; maxLen: number | null }[] = [];
  const problems: string[] = [];
  for (const e of eps) {
    const r = await getJson(`${e.baseUrl.replace(/\/+$/, "")}/v1/models`);
    const card = Array.isArray(r.json?.data) ? r.json.data.find((m: any) => m?.id === model) : null;
    if (card) listed.push({ url: e.baseUrl, maxLen: typeof card.max_model_len === "number" ? card.max_model_len : null });
    else problems.push(r.ok ? `${e.baseUrl} does not list it` : `${e.baseUrl}: ${r.error ?? `HTTP ${r.status}`}`);
  }
  const rows: CheckRow[] = [
    {
      check: "model served",
      target: who,
      result: listed.length > 0 ? "ok" : "missing",
      detail: `${listed.length}/${eps.length} healthy endpoints list it in /v1/models${problems.length ? `; ${problems.slice(0, 2).join("; ")}` : ""}`,
    },
  ];
  if (listed.length > 0) {
    const need = Math.max(...labels.map((l) => promptBudget(config, l)));
    const lens = listed.map((l) => l.maxLen).filter((n): n is number => n != null);
    const min = lens.length ? Math.min(...lens) : null;
    rows.push({
      check: "max_model_len",
      target: who,
      result: min == null ? "warn" : min >= need ? "ok" : "missing",
      detail: min == null ? `not reported; the prompt budget is ${need} tokens` : `${min} ${min >= need ? ">=" : "<"} prompt budget ${need}`,
    });
  }
  return rows;
}

async function checkTokenizer(config: RunConfig, orchestratorEps: PreflightEndpoint[]): Promise<CheckRow> {
  const target = `orchestrator ${config.orchestrator.model}`;
  const { mode, path } = config.tokenizer;
  if (mode === "chars") return { check: "tokenizer", target, result: "warn", detail: "tokenizer.mode = chars: budgets are approximate (chars/4)" };
  if (path && (mode === "auto" || mode === "file")) {
    try {
      new BpeTokenizer(JSON.parse(readFileSync(path, "utf8")));
      return { check: "tokenizer", target, result: "ok", detail: `${path} loads` };
    } catch (err) {
      if (mode === "file") return { check: "tokenizer", target, result: "missing", detail: `cannot load ${path}: ${(err as Error).message}` };
    }
  }
  for (const e of orchestratorEps) {
    const r = await getJson(`${e.baseUrl.replace(/\/+$/, "")}/tokenize`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: config.orchestrator.model, prompt: "preflight", add_special_tokens: false }),
    });
    if (r.ok && (typeof r.json?.count === "number" || Array.isArray(r.json?.tokens))) return { check: "tokenizer", target, result: "ok", detail: `${e.baseUrl}/tokenize answers` };
  }
  return {
    check: "tokenizer",
    target,
    result: mode === "server" ? "missing" : "warn",
    detail: `no tokenizer.json${path ? ` (${path} did not load)` : ""} and no /tokenize on the orchestrator's endpoints: budgets would be approximate`,
  };
}

async function checkRetrieval(config: RunConfig, byName: (kind: string, name: string) => PreflightEndpoint[]): Promise<CheckRow[]> {
  const rows: CheckRow[] = [];
  let anyOk = false;
  for (const backend of config.retrieval.backends) {
    const eps = byName("retrieval", backend);
    let answered = 0;
    let last = "";
    for (const e of eps) {
      const r = await getJson(`${e.baseUrl.replace(/\/+$/, "")}/retrieve`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ queries: ["preflight probe"], topk: 1, return_scores: true }),
      });
      const list = Array.isArray(r.json) ? r.json : r.json?.result;
      if (r.ok && Array.isArray(list)) answered++;
      else last = `${e.baseUrl}: ${r.error ?? `HTTP ${r.status}`}`;
    }
    if (answered > 0) anyOk = true;
    rows.push({
      check: "retrieval probe",
      target: backend,
      result: answered > 0 ? "ok" : "missing",
      detail: eps.length === 0 ? "0 healthy endpoints" : `${answered}/${eps.length} answer a probe within ${PROBE_MS / 1000} s${last ? `; ${last}` : ""}`,
    });
  }
  // One backend answering is enough: the other is the fallback (or the primary) of the pair.
  if (anyOk) for (const r of rows) if (r.result === "missing") r.result = "warn";
  return rows;
}

function checkJudgeKey(config: RunConfig, env: Record<string, string | undefined>): CheckRow | null {
  const name = (config.judge as { apiKeyEnv?: string | null }).apiKeyEnv;
  if (!name) return null;
  return {
    check: "judge API key",
    target: `judge ${config.judge.model}`,
    result: env[name] ? "ok" : "missing",
    detail: env[name] ? `${name} is set here (runners need it in their environment too)` : `${name} is not set`,
  };
}

/** Every check for a run's config against the endpoints the registry has now. */
export async function runPreflight({
  config,
  endpoints,
  env = process.env,
}: {
  config: RunConfig;
  endpoints: PreflightEndpoint[];
  env?: Record<string, string | undefined>;
}): Promise<CheckRow[]> {
  const usable = endpoints.filter((e) => e.enabled && (e.state ?? "healthy") === "healthy");
  const byName = (kind: string, name: string) => usable.filter((e) => e.kind === kind && e.name === name);
  const rows: CheckRow[] = [];
  // One row per model, naming every role that calls it.
  const models = new Map<string, string[]>();
  for (const n of needsOf(config)) if (n.kind === "model") for (const m of n.names) models.set(m, [...(models.get(m) ?? []), n.label]);
  for (const [model, labels] of models) rows.push(...(await checkModel(config, [...new Set(labels)], model, byName("model", model))));
  rows.push(await checkTokenizer(config, byName("model", config.orchestrator.model)));
  if ((config.toolModels.search ?? []).length > 0) rows.push(...(await checkRetrieval(config, byName)));
  const judge = checkJudgeKey(config, env);
  if (judge) rows.push(judge);
  return rows;
}
