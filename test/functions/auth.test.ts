import { afterEach, expect, test } from "bun:test";
import { checkBearer, isLoopbackHost, tokensMatch } from "../../functions/auth";
import { AUTH, makeApp, TOKEN, type TestApp } from "./_app";

let t: TestApp | null = null;
afterEach(() => t?.close());

const submit = { name: "victim", benchmark: "frames", tasks: [{ id: 1, question: "q" }] };

async function statusOf(path: string): Promise<string> {
  const [, run] = await t!.req(path, { headers: AUTH });
  return JSON.stringify(run.counts);
}

test("with a token, every write, every queue route and every /v1 read needs it", async () => {
  t = await makeApp();
  expect((await t.req("/v1/runs", { method: "POST", headers: AUTH, json: submit }))[0].status).toBe(201);
  const claim = { runner_id: "r", limit: 1, lease_ms: 1000 };
  const cases: [string, RequestInit & { json?: unknown }][] = [
    ["/v1/runs", { method: "POST", json: submit }],
    ["/v1/queue/claim", { method: "POST", json: claim }],
    ["/v1/runs/1/cancel", { method: "POST" }],
    // reads: task inputs carry gold answers, endpoints carry URLs, runners hosts and pids
    ["/v1/runs", {}],
    ["/v1/runs/1", {}],
    ["/v1/runs/1/tasks", {}],
    ["/v1/tasks/1", {}],
    ["/v1/runs/1/report", {}],
    ["/v1/runs/1/inflight", {}],
    ["/v1/endpoints", {}],
  ];
  for (const [path, init] of cases) {
    const [missing, m] = await t.req(path, init);
    expect(`${path} ${missing.status}`).toBe(`${path} 401`);
    expect(m.error.code).toBe("auth.missing_token");
    const [wrong, w] = await t.req(path, { ...init, headers: { authorization: `Bearer ${TOKEN}x` } });
    expect(wrong.status).toBe(401);
    expect(w.error.code).toBe("auth.invalid_token");
    expect(JSON.stringify(w)).not.toContain(TOKEN);
  }
  expect((await t.req("/v1/queue/claim", { method: "POST", headers: AUTH, json: claim }))[0].status).toBe(200);
  expect((await t.req("/v1/runs", { headers: AUTH }))[0].status).toBe(200);
});

test("the health check, the API description and the web page's files stay open", async () => {
  t = await makeApp();
  for (const path of ["/healthz", "/openapi/json", "/ui", "/ui/app.js", "/ui/style.css"])
    expect(`${path} ${(await t.req(path))[0].status}`).toBe(`${path} 200`);
});

test("without a token configured, nothing asks for one", async () => {
  t = await makeApp({ token: null });
  const [res] = await t.req("/v1/runs", { method: "POST", json: submit });
  expect(res.status).toBe(201);
  expect((await t.req("/v1/runs/1"))[0].status).toBe(200);
});

test("token comparison accepts only the exact token", () => {
  expect(tokensMatch("abc", "abc")).toBe(true);
  expect(tokensMatch("abc", "abcd")).toBe(false);
  expect(tokensMatch("", "abc")).toBe(false);
  expect(checkBearer({ token: "abc", method: "GET", path: "/v1/queue/x", authorization: "bearer abc" })).toBeNull();
  expect(checkBearer({ token: "abc", method: "GET", path: "/v1/queue/x", authorization: "Basic abc" })?.code).toBe("auth.invalid_token");
});

test("the web page logs in once: ?token= sets an HttpOnly SameSite=Strict cookie the API accepts", async () => {
  t = await makeApp();
  const [bad, b] = await t.req(`/ui?token=${TOKEN}x`);
  expect(bad.status).toBe(401);
  expect(bad.headers.get("set-cookie")).toBeNull();
  expect(b.error.code).toBe("auth.invalid_token");

  const [ok] = await t.req(`/ui?token=${TOKEN}`, { redirect: "manual" });
  expect(ok.status).toBe(303);
  expect(ok.headers.get("location")).toBe("/ui");
  const cookie = ok.headers.get("set-cookie")!;
  expect(cookie).toMatch(/HttpOnly/);
  expect(cookie).toMatch(/SameSite=Strict/);
  const pair = cookie.split(";")[0];
  expect((await t.req("/v1/runs", { headers: { cookie: pair } }))[0].status).toBe(200);
  expect((await t.req("/v1/runs", { headers: { cookie: "baton_token=nope" } }))[0].status).toBe(401);

  // the login form posts the token as JSON and gets the same cookie
  const [formOk, f] = await t.req("/ui/login", { method: "POST", json: { token: TOKEN } });
  expect(formOk.status).toBe(200);
  expect(f).toEqual({ ok: true });
  expect(formOk.headers.get("set-cookie")!.split(";")[0]).toBe(pair);
  const [formBad] = await t.req("/ui/login", { method: "POST", json: { token: "guess" } });
  expect(formBad.status).toBe(401);
  expect(formBad.headers.get("set-cookie")).toBeNull();
});

test("a cross-origin page cannot change anything, with or without a token configured", async () => {
  t = await makeApp({ token: null });
  await t.req("/v1/runs", { method: "POST", json: submit });
  const before = await statusOf("/v1/runs/1");
  const attacks: Record<string, string>[] = [
    { origin: "http://evil.example" },
    { origin: "null" },
    // another port on localhost is another origin
    { origin: "http://localhost:8080" },
    { "sec-fetch-site": "cross-site" },
    { "sec-fetch-site": "same-site" },
  ];
  for (const headers of attacks) {
    const [res, body] = await t.req("/v1/runs/1/cancel", { method: "POST", headers, json: {} });
    expect(`${JSON.stringify(headers)} ${res.status}`).toBe(`${JSON.stringify(headers)} 403`);
    expect(body.error.code).toBe("request.cross_origin");
  }
  expect(await statusOf("/v1/runs/1")).toBe(before);
  // the page itself (same origin) may, and so may a non-browser client (no Origin)
  const [same] = await t.req("/v1/runs/1/cancel", { method: "POST", headers: { origin: "http://localhost", "sec-fetch-site": "same-origin" } });
  expect(same.status).toBe(200);
});

test("an origin named by --allow-origin may send changes", async () => {
  t = await makeApp({ token: null, allowOrigins: ["https://dash.example"] });
  const [ok] = await t.req("/v1/runs", { method: "POST", headers: { origin: "https://dash.example" }, json: submit });
  expect(ok.status).toBe(201);
  expect(ok.headers.get("access-control-allow-origin")).toBe("https://dash.example");
  const [no] = await t.req("/v1/runs", { method: "POST", headers: { origin: "https://other.example" }, json: submit });
  expect(no.status).toBe(403);
  expect(no.headers.get("access-control-allow-origin")).toBeNull();
  // the browser's preflight for a JSON POST with a bearer header
  const preflight = { method: "OPTIONS", headers: { origin: "https://dash.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" } };
  const [pre] = await t.req("/v1/runs", preflight);
  expect(pre.status).toBe(204);
  expect(pre.headers.get("access-control-allow-headers")).toContain("authorization");
  const [other] = await t.req("/v1/runs", { ...preflight, headers: { ...preflight.headers, origin: "https://other.example" } });
  expect(other.headers.get("access-control-allow-origin")).toBeNull();
});

test("changes must be sent as JSON: a form, text/plain, text/xml or an untyped body is 415", async () => {
  t = await makeApp({ token: null });
  await t.req("/v1/runs", { method: "POST", json: submit });
  const before = await statusOf("/v1/runs/1");
  const sends: [string, string | null, string][] = [
    ["/v1/runs/1/cancel", "application/x-www-form-urlencoded", "a=b"],
    ["/v1/runs/1/cancel", "multipart/form-data; boundary=x", "--x--"],
    ["/v1/endpoints/import", "text/plain", JSON.stringify({ x: [{ ip_addr: "127.0.0.1", port: 1 }] })],
    ["/v1/runs", "text/xml", JSON.stringify(submit)],
    ["/v1/runs", "text/plain", '{"id":1,"question":"q"}'],
    ["/v1/runs", null, JSON.stringify(submit)],
    ["/v1/runs/1/requeue", null, "{}"],
  ];
  for (const [path, type, body] of sends) {
    const headers: Record<string, string> = type ? { "content-type": type } : {};
    const [res, err] = await t.req(path, { method: "POST", headers, body });
    expect(`${path} ${type} ${res.status}`).toBe(`${path} ${type} 415`);
    expect(err.error.code).toBe("request.unsupported_media_type");
    expect(err.error.message).toMatch(/^content-type: /);
  }
  expect(await statusOf("/v1/runs/1")).toBe(before);
  expect((await t.req("/v1/runs", { headers: AUTH }))[1].runs).toHaveLength(1);
  // JSONL is a submit format; other routes take JSON only
  const [jl, e] = await t.req("/v1/runs/1/requeue", { method: "POST", headers: { "content-type": "application/x-ndjson" }, body: "{}" });
  expect(jl.status).toBe(415);
  expect(e.error.message).toMatch(/^content-type: /);
  // a bare POST (curl -X POST, no body) needs no content type
  expect((await t.req("/v1/runs/1/cancel", { method: "POST" }))[0].status).toBe(200);
});

test("bound to loopback, only loopback Host names are served (DNS rebinding)", async () => {
  t = await makeApp({ token: null });
  const at = (host: string) => t!.app.handle(new Request(`http://${host}/healthz`));
  for (const host of ["evil.example", "evil.example:3000", "127.0.0.1.evil.example", "10.0.0.1", "128.0.0.1"]) {
    const res = await at(host);
    expect(`${host} ${res.status}`).toBe(`${host} 421`);
    expect((await res.json()).error.code).toBe("request.bad_host");
  }
  for (const host of ["127.0.0.1:3000", "127.1.2.3", "localhost:3000", "[::1]:3000", "LOCALHOST"])
    expect(`${host} ${(await at(host)).status}`).toBe(`${host} 200`);
  expect(isLoopbackHost("127.0.0.256")).toBe(false);
  const open = await makeApp({ token: TOKEN, hosts: "any" });
  expect((await open.app.handle(new Request("http://baton.cluster.example:3000/healthz"))).status).toBe(200);
  open.close();
});
