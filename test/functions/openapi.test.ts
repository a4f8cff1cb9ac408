// The OpenAPI page is generated from the routes' valibot schemas: every route must show up
// with a schema for each status it declares, and every route that takes a body with its body.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { makeApp, type TestApp } from "./_app";

let t: TestApp;
let doc: any;

beforeAll(async () => {
  t = await makeApp();
  const [res, body] = await t.req("/openapi/json");
  expect(res.status).toBe(200);
  doc = body;
});

afterAll(() => t.close());

// Routes the page leaves out on purpose: the page itself, and the web page (HTML) and its static files.
const HIDDEN = new Set(["/", "/openapi", "/openapi/json", "/ui", "/ui/:file"]);
const openapiPath = (path: string) => path.replace(/:(\w+)/g, "{$1}");

test("every route of the app is on the page", () => {
  const routes = t.app.routes.filter((r) => !HIDDEN.has(r.path));
  expect(routes.length).toBeGreaterThan(20);
  const missing = routes.filter((r) => !doc.paths[openapiPath(r.path)]?.[r.method.toLowerCase()]).map((r) => `${r.method} ${r.path}`);
  expect(missing).toEqual([]);
});

test("every declared status of a JSON route has a schema, and every error status the error shape", () => {
  const problems: string[] = [];
  for (const [path, ops] of Object.entries<any>(doc.paths)) {
    if (path === "/ui") continue; // HTML
    for (const [method, op] of Object.entries<any>(ops)) {
      const responses = Object.entries<any>(op.responses ?? {});
      if (!responses.some(([s]) => s.startsWith("2"))) problems.push(`${method} ${path}: no success status`);
      for (const [status, r] of responses) {
        // a streamed export is JSONL or CSV; every other answer, and every error, is JSON
        const schema = r.content?.["application/json"]?.schema ?? (status.startsWith("2") ? Object.values<any>(r.content ?? {})[0]?.schema : undefined);
        if (!schema) problems.push(`${method} ${path} ${status}: no schema`);
        else if (Number(status) >= 400 && !schema.properties?.error) problems.push(`${method} ${path} ${status}: not the error shape`);
      }
      if (!op.summary) problems.push(`${method} ${path}: no summary`);
    }
  }
  expect(problems).toEqual([]);
});

test("routes that read a body show its schema, and guarded routes declare their 401", () => {
  const problems: string[] = [];
  // These act on the run or endpoint in the path and take no body.
  const bodyless = /\/(cancel|disable|enable|drain)$|^\/v1\/endpoints\/{id}$/;
  for (const [path, ops] of Object.entries<any>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(ops)) {
      if (method === "get") continue;
      if (!bodyless.test(path) && !op.requestBody?.content?.["application/json"]?.schema) problems.push(`${method} ${path}: no JSON body schema`);
      if (!op.responses?.["401"]) problems.push(`${method} ${path}: no 401`);
    }
  }
  expect(problems).toEqual([]);
});

test("the streamed export documents the media types it answers, not JSON", () => {
  const ok = doc.paths["/v1/runs/{id}/export"].get.responses["200"];
  expect(Object.keys(ok.content).sort()).toEqual(["application/x-ndjson", "text/csv"]);
});
