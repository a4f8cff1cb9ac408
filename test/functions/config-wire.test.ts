// The run configuration speaks snake_case on every surface (issue 11, "One naming"): what is
// submitted, what GET answers, sweep paths and values; the code and the stored rows keep
// camelCase; keys that are data (aliases, tool names, model names, tool definitions) are kept.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { CONFIG_DATA_PATHS, readConfigDocument, readConfigPath, writeConfigDocument, writeConfigPath } from "../../db/config-wire";
import { createRun, findRun, validateTasks } from "../../db/runs";
import { loadRunConfig, resolveRunConfig, RunConfigInput } from "../../db/run-config";
import { AUTH, makeApp, tasksOf, type TestApp } from "./_app";

let t: TestApp;
beforeEach(async () => {
  t = await makeApp();
});
afterEach(() => t.close());

const post = (path: string, json: unknown) => t.req(path, { method: "POST", headers: AUTH, json });
const get = (path: string) => t.req(path, { headers: AUTH });

// a tool definition is OpenAI's JSON Schema: its camelCase keys are data, not config fields
const TOOLS = ["search", "enhance_reasoning", "answer"].map((name) => ({
  type: "function",
  function: {
    name,
    parameters: { type: "object", additionalProperties: false, properties: { model: { type: "string", enum: [`${name}_alias`] } } },
  },
}));

// every key here that is data has an underscore or a capital the renaming would touch
const SNAKE_CONFIG = {
  profile: "baton",
  max_rounds: 7,
  max_invalid_steps: 2,
  orchestrator: { max_tokens: 4321, top_p: 0.5, policy: { per_attempt_timeout_ms: 1_234, base_delay_ms: 5 } },
  query_llm: { max_tokens: 99 },
  judge: { model: "judge/model", api_key_env: "MY_KEY", max_completion_tokens: 77 },
  models: { search_alias: "org/search_model", enhance_reasoning_alias: "org/reason_model", answer_alias: "org/answer_model", camelAlias: "org/x" },
  tool_models: { search: ["search_alias"], enhance_reasoning: ["enhance_reasoning_alias", "camelAlias"], answer: ["answer_alias"] },
  tools: TOOLS,
  retrieval: { query_max_chars: 321, policy: { deadline_ms: 9_000 } },
  budgets: { context_tokens: 1_000, document_chars: 500 },
  prompts: { orchestrator_user: "Q: {question} {context}" },
  sandbox: { timeout_ms: 2_000, memory_mb: 128 },
  endpoints: { "org/search_model": [{ ip_addr: "127.0.0.1", port: 9 }], retrieval_pool: [{ ip_addr: "127.0.0.1", port: 10 }] },
};

describe("the conversion", () => {
  test("snake_case in, camelCase inside, snake_case out; data keys untouched both ways", () => {
    const read = readConfigDocument({ document: SNAKE_CONFIG });
    if (!read.ok) throw new Error(JSON.stringify(read.issues));
    expect(read.config).toMatchObject({
      maxRounds: 7,
      maxInvalidSteps: 2,
      orchestrator: { maxTokens: 4321, topP: 0.5, policy: { perAttemptTimeoutMs: 1_234, baseDelayMs: 5 } },
      queryLlm: { maxTokens: 99 },
      judge: { apiKeyEnv: "MY_KEY", maxCompletionTokens: 77 },
      models: SNAKE_CONFIG.models,
      toolModels: SNAKE_CONFIG.tool_models,
      tools: TOOLS,
      endpoints: SNAKE_CONFIG.endpoints,
      prompts: { orchestratorUser: "Q: {question} {context}" },
    });
    expect(writeConfigDocument(read.config)).toEqual(SNAKE_CONFIG);
  });

  test("a resolved config written out and read back resolves to the same config", () => {
    for (const [benchmark, config] of [["frames", {}], ["hle", {}], ["frames", { profile: "baton" }]] as const) {
      const res = resolveRunConfig({ benchmark, config });
      if (!res.ok) throw new Error("resolve");
      const wire = writeConfigDocument(res.config);
      expect(JSON.stringify(wire)).not.toMatch(/"(maxRounds|maxTokens|toolModels|queryLlm|perAttemptTimeoutMs|apiKeyEnv|orchestratorDocument)"/);
      // the reference's per-tool numbers and extra body are keyed by data
      if (res.config.reference) {
        expect(Object.keys(wire.reference.context.expert_code_tokens)).toEqual(["search", "enhance_reasoning", "answer"]);
        expect(wire.reference.experts.answer_extra_body).toEqual(res.config.reference.experts.answerExtraBody);
      }
      const back = readConfigDocument({ document: wire });
      if (!back.ok) throw new Error(JSON.stringify(back.issues));
      expect(resolveRunConfig({ benchmark, config: back.config })).toEqual(res);
      // what a runner over HTTP reads (the API's snake_case) loads like the stored row
      expect(loadRunConfig({ benchmark, config: wire })).toEqual(loadRunConfig({ benchmark, config: res.config }));
    }
  });

  test("a camelCase field is refused with its snake_case spelling, wherever it is", () => {
    const read = readConfigDocument({ document: { maxRounds: 1, orchestrator: { maxTokens: 2, policy: { perAttemptTimeoutMs: 3 } }, models: { okAlias: "m" } } });
    expect(read).toEqual({
      ok: false,
      issues: [
        { path: "config.maxRounds", message: "unknown field, did you mean max_rounds?" },
        { path: "config.orchestrator.maxTokens", message: "unknown field, did you mean max_tokens?" },
        { path: "config.orchestrator.policy.perAttemptTimeoutMs", message: "unknown field, did you mean per_attempt_timeout_ms?" },
      ],
    });
  });

  test("paths: snake_case in and out, data segments kept, camelCase refused", () => {
    expect(readConfigPath("orchestrator.max_tokens")).toEqual({ ok: true, path: "orchestrator.maxTokens" });
    expect(readConfigPath("tool_models.enhance_reasoning")).toEqual({ ok: true, path: "toolModels.enhance_reasoning" });
    expect(readConfigPath("models.search_alias")).toEqual({ ok: true, path: "models.search_alias" });
    expect(readConfigPath("models.camelAlias")).toEqual({ ok: true, path: "models.camelAlias" });
    expect(readConfigPath("retrieval.policy.perAttemptTimeoutMs")).toEqual({ ok: false, message: "retrieval.policy.perAttemptTimeoutMs: unknown field, did you mean retrieval.policy.per_attempt_timeout_ms?" });
    expect(writeConfigPath("toolModels.enhance_reasoning.0")).toBe("tool_models.enhance_reasoning.0");
    expect(writeConfigPath(["models", "camelAlias"])).toBe("models.camelAlias");
    expect(writeConfigPath(["tools", 0, "function", "name"])).toBe("tools.0.function.name");
    // a value set below a data position is data all the way down
    const endpoint = [{ ip_addr: "127.0.0.1", port: 1 }];
    expect(readConfigDocument({ document: endpoint, at: "endpoints.my_model" })).toEqual({ ok: true, config: endpoint });
    expect(writeConfigDocument(endpoint, "endpoints.my_model")).toEqual(endpoint);
    expect(readConfigDocument({ document: { maxTokens: 1 }, at: "orchestrator" })).toMatchObject({ ok: false });
  });

  test("validation messages name snake_case paths", () => {
    const res = resolveRunConfig({ benchmark: "frames", config: { orchestrator: { maxTokens: "x" }, toolModels: { enhance_reasoning: ["nope"] } } });
    expect(res.ok).toBe(false);
    if (res.ok) return;
    expect(res.issues.map((i) => i.path)).toEqual(["config.orchestrator.max_tokens"]);
    const alias = resolveRunConfig({ benchmark: "frames", config: { toolModels: { enhance_reasoning: ["nope"] }, prompts: { orchestratorUser: "x" } } });
    expect(alias.ok ? [] : alias.issues.map((i) => i.path)).toEqual(["config.tool_models.enhance_reasoning.0", "config.prompts.orchestrator_user"]);
  });

  test("every place of the schema whose keys are data is listed (records and free-form objects)", () => {
    // walk RunConfigInput: a record, or an object that takes any key, holds data keys
    const found: string[] = [];
    const walk = (schema: any, path: string[]) => {
      while (schema.type === "optional" || schema.type === "nullish" || schema.type === "nullable") schema = schema.wrapped;
      if (schema.type === "record" || schema.type === "loose_object" || schema.type === "unknown") found.push(path.join("."));
      else if (schema.type === "array") walk(schema.item, path);
      else if (schema.type === "strict_object" || schema.type === "object")
        for (const [k, s] of Object.entries(schema.entries)) walk(s, [...path, k]);
    };
    walk(RunConfigInput, []);
    // tools is an array of loose objects (OpenAI definitions)
    expect(found.sort()).toEqual(["endpoints", "models", "toolModels", "tools"]);
    const listed = [...CONFIG_DATA_PATHS.keys, ...CONFIG_DATA_PATHS.verbatim];
    for (const p of found) expect(listed).toContain(p);
    expect(v.safeParse(RunConfigInput, {}).success).toBe(true);
  });
});

describe("over the API", () => {
  test("a snake_case config round-trips: stored camelCase and resolved, answered snake_case, data keys verbatim", async () => {
    const [res, created] = await post("/v1/runs", { name: "wire", benchmark: "frames", config: SNAKE_CONFIG, tasks: tasksOf(1) });
    expect(res.status).toBe(201);
    // stored as the code reads it
    const stored = (await findRun({ db: t.db, ref: created.id })).config as any;
    expect(stored).toMatchObject({ maxRounds: 7, orchestrator: { maxTokens: 4321 }, toolModels: SNAKE_CONFIG.tool_models, endpoints: SNAKE_CONFIG.endpoints });
    expect(loadRunConfig({ benchmark: "frames", config: stored }).maxRounds).toBe(7);
    // answered as the user wrote it
    const [, run] = await get(`/v1/runs/${created.id}`);
    expect(run.config).toMatchObject(SNAKE_CONFIG);
    // (no expect.any inside toMatchObject: Bun 1.4 writes the matcher into the received object)
    expect(run.config.retrieval).toMatchObject({ query_max_chars: 321, policy: { deadline_ms: 9_000 } });
    expect(typeof run.config.retrieval.policy.per_attempt_timeout_ms).toBe("number");
    expect(JSON.stringify(run.config)).not.toMatch(/"(maxRounds|maxTokens|toolModels|queryLlm|perAttemptTimeoutMs|apiKeyEnv|maxInvalidSteps)"/);
    // what a runner over HTTP gets loads as the stored config does
    expect(loadRunConfig({ benchmark: "frames", config: run.config })).toEqual(loadRunConfig({ benchmark: "frames", config: stored }));
    // the config GET answers can be submitted again as is
    const [again, copy] = await post("/v1/runs", { name: "wire-copy", benchmark: "frames", config: run.config, tasks: tasksOf(1) });
    expect(again.status).toBe(201);
    expect((await findRun({ db: t.db, ref: copy.id })).config).toEqual(stored);
  });

  test("a config stored before this change (camelCase, as stored configs stay) is answered in snake_case", async () => {
    const { run: created } = await createRun({ db: t.db, name: "plain", benchmark: "hle", config: { maxRounds: 4 }, tasks: validateTasks({ rows: tasksOf(1) }) });
    const [, run] = await get(`/v1/runs/${created.id}`);
    expect(run.config.max_rounds).toBe(4);
    expect(run.config).toMatchObject({ benchmark: "hle", profile: "toolorchestra-hle" });
    expect([typeof run.config.max_rounds, typeof run.config.query_llm.max_tokens]).toEqual(["number", "number"]);
  });

  test("camelCase is refused with the same message through JSON, JSONL, a derived run and a sweep, and nothing is written", async () => {
    const [, parent] = await post("/v1/runs", { name: "p", benchmark: "frames", tasks: tasksOf(2) });
    const message = "config.maxRounds: unknown field, did you mean max_rounds?";
    const jsonl = tasksOf(1).map((r) => JSON.stringify(r)).join("\n");
    const sends: [string, () => Promise<[Response, any]>][] = [
      ["JSON", () => post("/v1/runs", { name: "c", benchmark: "frames", config: { maxRounds: 3 }, tasks: tasksOf(1) })],
      [
        "JSONL",
        () =>
          t.req(`/v1/runs?name=c&benchmark=frames&config=${encodeURIComponent(JSON.stringify({ maxRounds: 3 }))}`, {
            method: "POST",
            headers: { ...AUTH, "content-type": "application/x-ndjson" },
            body: jsonl,
          }),
      ],
      ["rerun", () => post(`/v1/runs/${parent.id}/rerun`, { select: "not_succeeded", config: { maxRounds: 3 } })],
      ["sweep", () => post("/v1/sweeps", { name: "s", benchmark: "frames", config: { maxRounds: 3 }, vary: [{ path: "orchestrator.temperature", values: [0.1] }], tasks: tasksOf(1) })],
    ];
    for (const [what, send] of sends) {
      const [res, body] = await send();
      expect(`${what}: ${res.status} ${body.error?.message}`).toBe(`${what}: 400 ${message}`);
    }
    const [, runs] = await get("/v1/runs");
    expect(runs.runs.map((r: any) => r.name)).toEqual(["p"]);
  });

  test("JSONL ?config= takes snake_case", async () => {
    const jsonl = tasksOf(2).map((r) => JSON.stringify(r)).join("\n");
    const config = encodeURIComponent(JSON.stringify({ max_rounds: 11, orchestrator: { max_tokens: 2222 }, tool_models: { enhance_reasoning: ["reasoner-2"] } }));
    const [res, created] = await t.req(`/v1/runs?name=jl&benchmark=frames&config=${config}`, {
      method: "POST",
      headers: { ...AUTH, "content-type": "application/x-ndjson" },
      body: jsonl,
    });
    expect(res.status).toBe(201);
    const [, run] = await get(`/v1/runs/${created.id}`);
    expect(run.config).toMatchObject({ max_rounds: 11, orchestrator: { max_tokens: 2222 }, tool_models: { enhance_reasoning: ["reasoner-2"] } });
    expect(((await findRun({ db: t.db, ref: created.id })).config as any).maxRounds).toBe(11);
  });

  test("a derived run merges snake_case overrides onto the parent's resolved config", async () => {
    const [, parent] = await post("/v1/runs", { name: "p", benchmark: "frames", config: { max_rounds: 9 }, tasks: tasksOf(2) });
    const [res, child] = await post(`/v1/runs/${parent.id}/rerun`, { select: "not_succeeded", config: { orchestrator: { max_tokens: 32000 } } });
    expect(res.status).toBe(201);
    const [, run] = await get(`/v1/runs/${child.id}`);
    expect(run.config).toMatchObject({ max_rounds: 9, orchestrator: { max_tokens: 32000 } });
    const [bad, why] = await post(`/v1/runs/${parent.id}/rerun`, { select: "not_succeeded", config: { orchestrator: { max_tokens: -1 } } });
    expect(bad.status).toBe(400);
    expect(why.error.message).toMatch(/^config\.orchestrator\.max_tokens: /);
  });

  test("a sweep varies orchestrator.max_tokens: run names, values, report and links in snake_case, stored configs resolved", async () => {
    const body = {
      name: "tok",
      benchmark: "frames",
      config: { max_rounds: 5 },
      vary: [
        { path: "orchestrator.max_tokens", values: [1000, 2000] },
        { path: "retrieval.policy", values: [{ per_attempt_timeout_ms: 700 }] },
      ],
      tasks: tasksOf(1),
    };
    const [res, sweep] = await post("/v1/sweeps", body);
    expect(res.status).toBe(201);
    expect(sweep.runs.map((r: any) => r.name)).toEqual([
      'tok orchestrator.max_tokens=1000 retrieval.policy={"per_attempt_timeout_ms":700}',
      'tok orchestrator.max_tokens=2000 retrieval.policy={"per_attempt_timeout_ms":700}',
    ]);
    expect(sweep.runs[0].values).toEqual({ "orchestrator.max_tokens": 1000, "retrieval.policy": { per_attempt_timeout_ms: 700 } });
    const stored = await Promise.all(sweep.runs.map(async (r: any) => (await findRun({ db: t.db, ref: r.run_id })).config as any));
    expect(stored.map((c) => [c.maxRounds, c.orchestrator.maxTokens, c.retrieval.policy.perAttemptTimeoutMs])).toEqual([
      [5, 1000, 700],
      [5, 2000, 700],
    ]);
    const [, report] = await get(`/v1/sweeps/${sweep.sweep_id}/report`);
    expect(report.vary).toEqual(body.vary);
    expect(report.rows.map((r: any) => r.values["orchestrator.max_tokens"])).toEqual([1000, 2000]);
    const [, links] = await get(`/v1/runs/${sweep.runs[1].run_id}/links`);
    expect(links.sweep_values).toEqual({ "orchestrator.max_tokens": 2000, "retrieval.policy": { per_attempt_timeout_ms: 700 } });
    const [, stats] = await get(`/v1/runs/${sweep.runs[1].run_id}/stats`);
    expect(stats.lineage.sweep_values).toEqual(links.sweep_values);
    // a camelCase path or value is refused with the right spelling
    const [bad, why] = await post("/v1/sweeps", { ...body, vary: [{ path: "orchestrator.maxTokens", values: [1] }] });
    expect(bad.status).toBe(400);
    expect(why.error.message).toBe("vary[0].path: orchestrator.maxTokens: unknown field, did you mean orchestrator.max_tokens?");
    const [badValue, why2] = await post("/v1/sweeps", { ...body, vary: [{ path: "retrieval.policy", values: [{ perAttemptTimeoutMs: 1 }] }] });
    expect(badValue.status).toBe(400);
    expect(why2.error.message).toBe("vary[0].values.0.perAttemptTimeoutMs: unknown field, did you mean per_attempt_timeout_ms?");
  });
});

describe("the README", () => {
  test("its configuration example is snake_case and resolves", () => {
    const readme = readFileSync(join(import.meta.dir, "../../README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## Configuration"), readme.indexOf("## Fidelity"));
    const example = JSON.parse(/```json\n([\s\S]*?)```/.exec(section)![1]);
    const read = readConfigDocument({ document: example });
    if (!read.ok) throw new Error(JSON.stringify(read.issues));
    const res = resolveRunConfig({ benchmark: "frames", config: read.config });
    if (!res.ok) throw new Error(JSON.stringify(res.issues));
    expect(res.config).toMatchObject({ maxRounds: 30, orchestrator: { maxTokens: 8000 }, judge: { apiKeyEnv: "OPENAI_API_KEY" }, sandbox: { memoryMb: 2048 } });
    expect(readme).not.toContain("keeps its own field names");
  });
});
