// Hostile inputs against a real server on 127.0.0.1 (issue #8): every mutating route gets
// malformed, oversize, deep, non-finite, wrong-type, wrongly-typed-media and cross-origin
// requests, plus the field-level cases the issue lists. Each must be refused with a 4xx whose
// message names the field (or the header / body part at fault); nothing may be stored.
//
//   bun bench/hostile-inputs.ts            # prints the table and every case that is not a
//                                          # named refusal; exit 1 if any 5xx or acceptance
//
// test/functions/hostile-inputs.test.ts runs the same cases and asserts 5xx = 0, accepted = 0.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, openDb, type Db } from "../db/client";
import { createApp } from "../functions/index";

export type Case = {
  route: string;
  what: string;
  method?: string;
  path: string;
  body?: string | Uint8Array | (() => ReadableStream<Uint8Array>);
  headers?: Record<string, string>;
  // what the refusal's message must mention (a field, a header, "body"); a 4xx without it is
  // counted as "refused, not named"
  names: RegExp;
  // leave the bearer token off
  noToken?: boolean;
};

export type Outcome = { c: Case; status: number; message: string; kind: "named" | "unnamed" | "5xx" | "accepted" };

const MAX_BODY = 64 * 1024;
// As `serve` sets it: the app's own limit (413 in the error shape) always answers first.
export const BUN_BODY_CAP = Number.MAX_SAFE_INTEGER;
// deep enough to have overflowed a recursive walk, small enough for the body limit
const DEEP = "[".repeat(20_000) + "]".repeat(20_000);
const json = (x: unknown) => JSON.stringify(x);

/** Streams `bytes` of JSON-ish filler with no Content-Length (chunked). */
function chunked(bytes: number): () => ReadableStream<Uint8Array> {
  return () => {
    let sent = 0;
    return new ReadableStream({
      pull(c) {
        if (sent >= bytes) return c.close();
        sent += 4096;
        c.enqueue(new TextEncoder().encode(sent === 4096 ? '{"x":"' + "a".repeat(4090) : "a".repeat(4096)));
      },
    });
  };
}

const invalidUtf8 = (prefix: string, suffix: string) =>
  new Uint8Array([...new TextEncoder().encode(prefix), 0xff, 0xfe, ...new TextEncoder().encode(suffix)]);

/** The cases every mutating route gets, whatever its body. */
function genericCases(method: string, path: string, route: string, takesBody: boolean): Case[] {
  const base = { route, method, path };
  const cases: Case[] = [
    { ...base, what: "cross-origin Origin", body: "{}", headers: { origin: "http://evil.example" }, names: /^origin /i },
    { ...base, what: "Origin: null", body: "{}", headers: { origin: "null" }, names: /^origin /i },
    { ...base, what: "Sec-Fetch-Site: cross-site", body: "{}", headers: { "sec-fetch-site": "cross-site" }, names: /cross-site/ },
    { ...base, what: "form content type", body: "a=b", headers: { "content-type": "application/x-www-form-urlencoded" }, names: /^content-type: / },
    { ...base, what: "text/plain JSON", body: "{}", headers: { "content-type": "text/plain" }, names: /^content-type: / },
    { ...base, what: "text/xml", body: "<a/>", headers: { "content-type": "text/xml" }, names: /^content-type: / },
    { ...base, what: "body without a content type", body: "{}", headers: { "content-type": "" }, names: /^content-type: / },
    { ...base, what: "DNS-rebinding Host", body: "{}", headers: { host: "evil.example:3000" }, names: /loopback/ },
    // the login route is the one that takes no token: it asks for the token field instead
    { ...base, what: "no token", body: "{}", noToken: true, names: path === "/ui/login" ? /^token: / : /Bearer/ },
    { ...base, what: "100k-deep JSON", body: DEEP, names: /nested deeper than 64/ },
    { ...base, what: "declared length over the limit", body: "x".repeat(MAX_BODY + 10), names: /limit is/ },
    { ...base, what: "chunked body over the limit", body: chunked(MAX_BODY * 4), names: /limit is/ },
    { ...base, what: "invalid UTF-8", body: invalidUtf8('{"x":"', '"}'), names: /UTF-8/ },
  ];
  if (takesBody) {
    cases.push(
      { ...base, what: "malformed JSON", body: "{nope", names: /not valid JSON/ },
      { ...base, what: "a list body", body: "[1]", names: /./ },
      { ...base, what: "a number body", body: "5", names: /./ },
      { ...base, what: "1e999 in the body", body: '{"x":1e999}', names: /^x: / },
    );
  }
  return cases;
}

/** Field-level cases of the issue, route by route; ids refer to setUp's rows. */
function fieldCases(): Case[] {
  const runs = (what: string, body: unknown, names: RegExp, raw?: string): Case => ({
    route: "POST /v1/runs",
    what,
    path: "/v1/runs",
    body: raw ?? json(body),
    names,
  });
  const run = (over: Record<string, unknown>) => ({ name: "h", benchmark: "frames", tasks: [{ id: 1, question: "q" }], ...over });
  const jsonl = (what: string, query: string, body: string | Uint8Array, names: RegExp): Case => ({
    route: "POST /v1/runs (JSONL)",
    what,
    path: `/v1/runs?${query}`,
    body,
    headers: { "content-type": "application/x-ndjson" },
    names,
  });
  const q = (path: string, what: string, body: unknown, names: RegExp, raw?: string): Case => ({
    route: `POST /v1/queue/${path}`,
    what,
    path: `/v1/queue/${path}`,
    body: raw ?? json(body),
    names,
  });
  const row = { run_id: 1, task_id: 1, attempt: 1, step: 0, tool: "search", status: "ok", started_at: 1_700_000_000_000, duration_ms: 5 };
  const llm = { run_id: 1, task_id: 1, attempt: 1, step: 0, role: "orchestrator", model: "m", endpoint: "e", http_attempt: 1, outcome: "ok", total_ms: 3, started_at: 1 };
  const ep = (path: string, what: string, body: unknown, names: RegExp, raw?: string): Case => ({
    route: `POST /v1/endpoints${path}`,
    what,
    path: `/v1/endpoints${path}`,
    body: raw ?? json(body),
    names,
  });
  return [
    runs("name with NUL", run({ name: "a\u0000b" }), /^name: /),
    runs("name of digits", run({ name: "007" }), /^name: /),
    runs("name of 5 MB", run({ name: "n".repeat(5_000_000) }), /limit is/),
    runs("name of 300 characters", run({ name: "n".repeat(300) }), /^name: /),
    runs("name a number", run({ name: 7 }), /^name: /),
    runs("unknown benchmark", run({ benchmark: "gsm8k" }), /^benchmark: /),
    runs("benchmark of 5 MB", run({ benchmark: "b".repeat(50_000) }), /^benchmark: /),
    runs("id 1e999", null, /^tasks\[0\]\.id: /, '{"name":"h","benchmark":"frames","tasks":[{"id":1e999,"question":"q"}]}'),
    runs("id 2^64+1", null, /^tasks\[0\]\.id: /, '{"name":"h","benchmark":"frames","tasks":[{"id":18446744073709551617,"question":"q"}]}'),
    runs("id with NUL", run({ tasks: [{ id: "a\u0000", question: "q" }] }), /^tasks\[0\]\.id: /),
    runs("id an object", run({ tasks: [{ id: { a: 1 }, question: "q" }] }), /^tasks\[0\]\.id: /),
    runs("question missing", run({ tasks: [{ id: 1 }] }), /^tasks\[0\]\.question: /),
    runs("tasks not a list", run({ tasks: "all" }), /^tasks: /),
    runs("tasks empty", run({ tasks: [] }), /^tasks: /),
    runs("max_attempts a string", run({ max_attempts: "3" }), /^max_attempts: /),
    runs("max_attempts 0", run({ max_attempts: 0 }), /^max_attempts: /),
    runs("max_attempts 1e999", null, /^max_attempts: /, '{"name":"h","benchmark":"frames","tasks":[{"id":1,"question":"q"}],"max_attempts":1e999}'),
    runs("config a list", run({ config: [1] }), /^config/),
    runs("config field of the wrong type", run({ config: { max_rounds: "many" } }), /^config\.max_rounds: /),
    runs("judge endpoint file://", run({ config: { judge: { endpoint: "file:///etc/passwd" } } }), /^config\.judge\.endpoint/),
    jsonl("empty JSONL body", "name=h&benchmark=hle", "", /^tasks: /),
    jsonl("bad JSONL line", "name=h&benchmark=hle", '{"id":1,"question":"q"}\n{nope\n', /^line 2: /),
    jsonl("deep JSONL line", "name=h&benchmark=hle", `{"id":1,"question":"q","x":${DEEP}}`, /^line 1\.x/),
    jsonl("JSONL name not UTF-8", "name=h%FF&benchmark=hle", '{"id":1,"question":"q"}', /^name: /),
    jsonl("JSONL body not UTF-8", "name=h&benchmark=hle", invalidUtf8('{"id":1,"question":"', '"}'), /UTF-8/),
    jsonl("JSONL name of digits", "name=42&benchmark=hle", '{"id":1,"question":"q"}', /^name: /),
    jsonl("JSONL unknown benchmark", "name=h&benchmark=x", '{"id":1,"question":"q"}', /^benchmark: /),
    jsonl("JSONL config not JSON", "name=h&benchmark=hle&config=%7Bx", '{"id":1,"question":"q"}', /^config: /),
    { route: "POST /v1/runs/:id/requeue", what: "a list body", path: "/v1/runs/1/requeue", body: "[]", names: /^body: / },
    { route: "POST /v1/runs/:id/requeue", what: "empty statuses", path: "/v1/runs/1/requeue", body: json({ statuses: [] }), names: /^statuses: / },
    { route: "POST /v1/runs/:id/requeue", what: "unknown status", path: "/v1/runs/1/requeue", body: json({ statuses: ["succeeded"] }), names: /^statuses/ },
    { route: "POST /v1/runs/:id/cancel", what: "run id 1e999", path: "/v1/runs/1e999/cancel", body: "{}", names: /1e999/ },
    q("claim", "limit a string", { runner_id: "r", limit: "1", lease_ms: 1000 }, /^limit: /),
    q("claim", "limit 1e999", null, /^limit: /, '{"runner_id":"r","limit":1e999,"lease_ms":1000}'),
    q("claim", "lease_ms negative", { runner_id: "r", limit: 1, lease_ms: -1 }, /^lease_ms: /),
    q("claim", "run_id fractional", { runner_id: "r", limit: 1, lease_ms: 1000, run_id: 1.5 }, /^run_id: /),
    q("runners", "pid 2^40", { id: "r", host: "h", pid: 2 ** 40 }, /^pid: /),
    q("runners", "ends_at a string", { id: "r", host: "h", pid: 1, ends_at: "soon" }, /^ends_at: /),
    q("heartbeat", "tokens not a list", { runner_id: "r", tokens: "t", lease_ms: 1000 }, /^tokens: /),
    q("complete", "task_id a string", { task_id: "1", lease_token: "t", result: {} }, /^task_id: /),
    q("complete", "task_id 1e999", null, /^task_id: /, '{"task_id":1e999,"lease_token":"t","result":{}}'),
    q("complete", "task_id negative", { task_id: -3, lease_token: "t", result: {} }, /^task_id: /),
    q("complete", "prediction a number", { task_id: 1, lease_token: "t", result: { prediction: 5 } }, /^result\.prediction: /),
    q("complete-many", "no items", { items: [] }, /^items: /),
    q("fail", "retryable a string", { task_id: 1, lease_token: "t", error_class: "x", retryable: "yes" }, /^retryable: /),
    q("release", "tokens of numbers", { runner_id: "r", tokens: [1] }, /^tokens\.0: /),
    q("rows", "duration_ms \"fast\"", { tool_calls: [{ ...row, duration_ms: "fast" }] }, /^tool_calls\.0\.duration_ms: /),
    q("rows", "duration_ms negative", { tool_calls: [{ ...row, duration_ms: -5 }] }, /^tool_calls\.0\.duration_ms: /),
    q("rows", "duration_ms 1e999", null, /^tool_calls\[0\]\.duration_ms: |^tool_calls\.0\.duration_ms: /, json({ tool_calls: [row] }).replace('"duration_ms":5', '"duration_ms":1e999')),
    q("rows", "started_at fractional", { tool_calls: [{ ...row, started_at: 1.5 }] }, /^tool_calls\.0\.started_at: /),
    q("rows", "step negative", { tool_calls: [{ ...row, step: -1 }] }, /^tool_calls\.0\.step: /),
    q("rows", "component ms a string", { components: [{ ...row, component: "retrieval", ms: "1" }] }, /^components\.0\.ms: /),
    q("rows", "ttft_ms negative", { llm_calls: [{ ...llm, ttft_ms: -1 }] }, /^llm_calls\.0\.ttft_ms: /),
    q("rows", "http_status 1000", { llm_calls: [{ ...llm, http_status: 1000 }] }, /^llm_calls\.0\.http_status: /),
    q("rows", "prompt_tokens fractional", { llm_calls: [{ ...llm, prompt_tokens: 1.5 }] }, /^llm_calls\.0\.prompt_tokens: /),
    q("rows", "tool_calls not a list", { tool_calls: {} }, /^tool_calls: /),
    ep("", "name of 5 MB", { kind: "model", name: "n".repeat(5_000_000), base_url: "http://127.0.0.1:1" }, /limit is/),
    ep("", "name of 5,000 characters", { kind: "model", name: "n".repeat(5_000), base_url: "http://127.0.0.1:1" }, /^name: /),
    ep("", "unknown kind", { kind: "gpu", name: "x", base_url: "http://127.0.0.1:1" }, /^kind: /),
    ep("/import", "import [1]", [1], /config/),
    ep("/import", "ip_addr with a path", { m: [{ ip_addr: "127.0.0.1/evil?x=", port: 1 }] }, /ip_addr/),
    { route: "POST /ui/login", what: "token a number", path: "/ui/login", body: json({ token: 5 }), names: /^token: / },
    { route: "POST /ui/login", what: "wrong token", path: "/ui/login", body: json({ token: "guess" }), names: /token/ },
  ];
}

/** One request per case; the server's answer classified. */
export async function runCases({ base, token, cases }: { base: string; token: string; cases: Case[] }): Promise<Outcome[]> {
  const out: Outcome[] = [];
  for (const c of cases) {
    const headers: Record<string, string> = { "content-type": "application/json", ...(c.noToken ? {} : { authorization: `Bearer ${token}` }), ...c.headers };
    if (headers["content-type"] === "") delete headers["content-type"];
    const body = typeof c.body === "function" ? c.body() : c.body;
    let status = 0;
    let message = "";
    try {
      const res = await fetch(base + c.path, { method: c.method ?? "POST", headers, body, duplex: "half", signal: AbortSignal.timeout(10_000) } as RequestInit);
      status = res.status;
      const text = await res.text();
      try {
        message = JSON.parse(text)?.error?.message ?? text.slice(0, 200);
      } catch {
        message = text.slice(0, 200);
      }
    } catch (err) {
      // no answer in 10 s counts with the server errors; a closed connection is a refusal
      // without a message
      const timedOut = (err as Error).name === "TimeoutError";
      message = timedOut ? "no answer within 10 s" : `connection error: ${(err as Error).message}`;
      status = timedOut ? 599 : 499;
    }
    const kind = status >= 500 ? "5xx" : status < 400 ? "accepted" : c.names.test(message) ? "named" : "unnamed";
    out.push({ c, status, message, kind });
  }
  return out;
}

/** Every mutating route of the app with the generic cases, then the field-level ones. */
export function buildCases(routes: { method: string; path: string }[]): Case[] {
  const concrete = (path: string) => path.replace(":id", path.startsWith("/v1/queue/runners") ? "r1" : "1");
  const bodyless = /\/(cancel|disable|enable|drain)$|^\/v1\/endpoints\/:id$/;
  const cases: Case[] = [];
  for (const r of routes) {
    if (["GET", "HEAD", "OPTIONS"].includes(r.method)) continue;
    const takesBody = !bodyless.test(r.path) && r.path !== "/v1/runs/:id/requeue";
    cases.push(...genericCases(r.method, concrete(r.path), `${r.method} ${r.path}`, takesBody));
  }
  return [...cases, ...fieldCases()];
}

async function counts(db: Db) {
  const r = await db.$client.execute(
    "SELECT (SELECT count(*) FROM runs) AS runs, (SELECT count(*) FROM tasks) AS tasks, (SELECT count(*) FROM tool_calls) + (SELECT count(*) FROM llm_calls) + (SELECT count(*) FROM latency_components) AS rows_, (SELECT count(*) FROM endpoints) AS endpoints, (SELECT count(*) FROM runners) AS runners, (SELECT count(*) FROM tasks WHERE status <> 'running') AS not_running",
  );
  return r.rows[0] as Record<string, unknown>;
}

/** A server on 127.0.0.1 over a temp database with one run, one claimed task and one endpoint. */
export async function startTarget() {
  const dir = mkdtempSync(join(tmpdir(), "baton-hostile-"));
  const db = await openDb({ url: `file:${join(dir, "h.db")}` });
  const token = `hostile-${crypto.randomUUID()}`;
  const app = createApp({ db, token }, { maxBodyBytes: MAX_BODY });
  app.listen({ port: 0, hostname: "127.0.0.1", maxRequestBodySize: BUN_BODY_CAP });
  const base = `http://127.0.0.1:${app.server!.port}`;
  const call = (path: string, body: unknown) =>
    fetch(base + path, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, body: json(body) });
  await call("/v1/runs", { name: "victim", benchmark: "frames", tasks: [{ id: 1, question: "q" }] });
  await call("/v1/queue/runners", { id: "r1", host: "h", pid: 1 });
  await call("/v1/queue/claim", { runner_id: "r1", limit: 1, lease_ms: 3_600_000 });
  await call("/v1/endpoints", { kind: "model", name: "m1", base_url: "http://127.0.0.1:9" });
  return {
    base,
    token,
    app,
    db,
    counts: () => counts(db),
    async stop() {
      await app.stop(true);
      closeDb(db);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function summarize(outcomes: Outcome[]) {
  const n = (k: Outcome["kind"]) => outcomes.filter((o) => o.kind === k).length;
  return { tried: outcomes.length, named: n("named"), unnamed: n("unnamed"), "5xx": n("5xx"), accepted: n("accepted") };
}

if (import.meta.main) {
  const target = await startTarget();
  try {
    const before = await target.counts();
    const outcomes = await runCases({ base: target.base, token: target.token, cases: buildCases(target.app.routes) });
    const after = await target.counts();
    const s = summarize(outcomes);
    console.log(`tried ${s.tried} / refused with field named ${s.named} / refused, not named ${s.unnamed} / 5xx ${s["5xx"]} / accepted ${s.accepted}`);
    console.log(`stored rows unchanged: ${JSON.stringify(before) === JSON.stringify(after)} ${JSON.stringify(after)}`);
    for (const o of outcomes.filter((o) => o.kind !== "named"))
      console.log(`  ${o.kind.padEnd(8)} ${o.status} ${o.c.route} · ${o.c.what}: ${o.message.slice(0, 160)}`);
    process.exitCode = s["5xx"] + s.accepted > 0 ? 1 : 0;
  } finally {
    await target.stop();
  }
}
