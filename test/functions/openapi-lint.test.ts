// The OpenAPI document passes a real linter (Redocly's recommended rules, plus the rules that
// ask for a description and one defined tag per operation): zero errors and zero warnings.
import { createConfig, lintFromString } from "@redocly/openapi-core";
import { afterAll, beforeAll, expect, test } from "bun:test";
import pkg from "../../package.json";
import { makeApp, type TestApp } from "./_app";

let t: TestApp;
let doc: any;

beforeAll(async () => {
  t = await makeApp();
  doc = (await t.req("/openapi/json"))[1];
});
afterAll(() => t.close());

const operations = () => Object.entries<any>(doc.paths).flatMap(([path, ops]) => Object.entries<any>(ops).map(([method, op]) => ({ where: `${method.toUpperCase()} ${path}`, op })));

test("Redocly's recommended ruleset, with descriptions and tags required, reports nothing", async () => {
  const config = await createConfig({
    extends: ["recommended"],
    rules: {
      "operation-description": "error",
      "operation-tag-defined": "error",
      "operation-singular-tag": "error",
      "tag-description": "error",
      "operation-operationId": "error",
      "operation-operationId-url-safe": "error",
    },
  } as any);
  const problems = await lintFromString({ source: JSON.stringify(doc), absoluteRef: "/openapi/json", config });
  expect(problems.map((p) => `${p.severity} ${p.ruleId} ${p.location?.[0]?.pointer}: ${p.message}`)).toEqual([]);
});

test("operationIds are camelCase identifiers: no hyphens, as client generators need", () => {
  const bad = operations().filter(({ op }) => !/^[a-z][A-Za-z0-9]*$/.test(op.operationId ?? "")).map(({ where, op }) => `${where}: ${op.operationId}`);
  expect(bad).toEqual([]);
  expect(doc.paths["/v1/queue/complete-many"].post.operationId).toBe("postV1QueueCompleteMany");
});

test("a route advertises only JSON bodies, the one media type every route but the JSONL submit takes", () => {
  const others = operations().flatMap(({ where, op }) => Object.keys(op.requestBody?.content ?? {}).filter((m) => m !== "application/json").map((m) => `${where}: ${m}`));
  expect(others).toEqual([]);
});

test("every GET declares a 4xx, and the document names its version (package.json), server and licence", () => {
  const without4xx = operations().filter(({ where, op }) => where.startsWith("GET") && !Object.keys(op.responses).some((s) => s.startsWith("4"))).map((o) => o.where);
  expect(without4xx).toEqual([]);
  expect(doc.info.version).toBe(pkg.version);
  expect(doc.servers).toEqual([{ url: "/", description: "this Baton server" }]);
  expect(doc.info.license.name).toBeTruthy();
});

test("every documented property and parameter name is snake_case: one naming across the API", () => {
  const camel: string[] = [];
  const walk = (x: any, where: string) => {
    if (!x || typeof x !== "object") return;
    for (const k of Object.keys(x.properties ?? {})) if (/[A-Z]/.test(k)) camel.push(`${where}: ${k}`);
    for (const v of Object.values(x)) walk(v, where);
  };
  for (const { where, op } of operations()) {
    walk(op, where);
    for (const p of op.parameters ?? []) if (/[A-Z]/.test(p.name)) camel.push(`${where}: ?${p.name}`);
  }
  expect(camel).toEqual([]);
});
