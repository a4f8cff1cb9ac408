import { afterEach, expect, test } from "bun:test";
import { checkBearer, tokensMatch } from "../../functions/auth";
import { AUTH, makeApp, TOKEN, type TestApp } from "./_app";

let t: TestApp | null = null;
afterEach(() => t?.close());

test("with a token, every write and every queue route needs it; plain reads stay open", async () => {
  t = await makeApp();
  const claim = { runnerId: "r", limit: 1, leaseMs: 1000 };
  const cases: [string, RequestInit & { json?: unknown }][] = [
    ["/v1/runs", { method: "POST", json: { name: "a", benchmark: "frames", tasks: [{ id: 1, question: "q" }] } }],
    ["/v1/queue/claim", { method: "POST", json: claim }],
    ["/v1/runs/1/cancel", { method: "POST" }],
  ];
  for (const [path, init] of cases) {
    const [missing, m] = await t.req(path, init);
    expect(missing.status).toBe(401);
    expect(m.error.code).toBe("auth.missing_token");
    const [wrong, w] = await t.req(path, { ...init, headers: { authorization: `Bearer ${TOKEN}x` } });
    expect(wrong.status).toBe(401);
    expect(w.error.code).toBe("auth.invalid_token");
    expect(JSON.stringify(w)).not.toContain(TOKEN);
  }
  expect((await t.req("/v1/queue/claim", { method: "POST", headers: AUTH, json: claim }))[0].status).toBe(200);
  expect((await t.req("/v1/runs"))[0].status).toBe(200);
  expect((await t.req("/healthz"))[0].status).toBe(200);
});

test("without a token configured, nothing asks for one", async () => {
  t = await makeApp({ token: null });
  const [res] = await t.req("/v1/runs", { method: "POST", json: { name: "a", benchmark: "frames", tasks: [{ id: 1, question: "q" }] } });
  expect(res.status).toBe(201);
});

test("token comparison accepts only the exact token", () => {
  expect(tokensMatch("abc", "abc")).toBe(true);
  expect(tokensMatch("abc", "abcd")).toBe(false);
  expect(tokensMatch("", "abc")).toBe(false);
  expect(checkBearer({ token: "abc", method: "GET", path: "/v1/queue/x", authorization: "bearer abc" })).toBeNull();
  expect(checkBearer({ token: "abc", method: "GET", path: "/v1/queue/x", authorization: "Basic abc" })?.code).toBe("auth.invalid_token");
});
