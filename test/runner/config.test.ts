import { describe, expect, test } from "bun:test";
import { aliasesFromTool, loadRunConfig, resolveRunConfig } from "../../runner/config";

describe("resolveRunConfig", () => {
  test("fills the ToolOrchestra defaults for an empty config", () => {
    const r = resolveRunConfig({ benchmark: "frames", config: {} });
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    expect(r.config.profile).toBe("toolorchestra-frames");
    expect(r.config.maxRounds).toBe(50);
    expect(r.config.models["search-1"]).toBe("openai/gpt-oss-20b");
    expect(r.config.tools.map((t) => t.function.name).sort()).toEqual(["answer", "enhance_reasoning", "search"]);
    expect(r.config.prompts.query).toContain("<query>");
    expect(r.config.prompts.judge).toContain("<correct>");
  });

  test("the reference profiles carry the reference's model map, tools, top-k, pools and judge", () => {
    const frames = loadRunConfig({ benchmark: "frames", config: {} });
    const hle = loadRunConfig({ benchmark: "hle", config: {} });
    expect(frames.models["reasoner-2"]).toBe("Qwen/Qwen2.5-Coder-14B-Instruct");
    expect(frames.models["answer-math-1"]).toBe("Qwen/Qwen3-32B-FP8");
    // tools.json's order: enhance_reasoning, answer, search
    expect(frames.tools.map((t) => t.function.name)).toEqual(["enhance_reasoning", "answer", "search"]);
    expect(frames.toolModels.answer).toEqual(["answer-math-1", "answer-math-2", "answer-1", "answer-2", "answer-3", "answer-4"]);
    expect(frames.retrieval).toMatchObject({ topk: 150, backends: ["wiki_retrieval", "retrieval"], queryMaxChars: 390 });
    expect(hle.retrieval).toMatchObject({ topk: 50, backends: ["retrieval"] });
    expect(hle.prompts.orchestratorUser.endsWith("Choose an appropriate tool.'")).toBe(true);
    expect(frames.prompts.orchestratorUser.endsWith("Choose an appropriate tool.")).toBe(true);
    expect(frames.judge).toMatchObject({ model: "gpt-5", temperature: 1, maxCompletionTokens: 16384, apiKeyEnv: "OPENAI_API_KEY" });
    expect(frames.maxInvalidSteps).toBeNull();
    expect(hle.budgets.documentTokens).toBe(27000);
    expect(hle.reference?.context.expertDocumentChars).toEqual({ search: 1000, enhance_reasoning: 1000, answer: null });
  });

  test("one config line picks Baton's protocol, and overrides still apply on top of a profile", () => {
    const baton = loadRunConfig({ benchmark: "frames", config: { profile: "baton" } });
    expect(baton.profile).toBe("baton");
    expect(baton.reference).toBeNull();
    expect(baton.maxInvalidSteps).toBe(5);
    expect(baton.models["answer-1"]).toBe("Qwen/Qwen3-32B");
    const tuned = loadRunConfig({ benchmark: "hle", config: { retrieval: { topk: 7 }, judge: { model: "judge-x", endpoint: null } } });
    expect(tuned.profile).toBe("toolorchestra-hle");
    expect(tuned.retrieval.topk).toBe(7);
    expect(tuned.retrieval.backends).toEqual(["retrieval"]);
    // another judge model is looked up in the registry, without gpt-5's key variable or token field
    expect(tuned.judge).toMatchObject({ model: "judge-x", endpoint: null, apiKeyEnv: null, maxCompletionTokens: null });
    const viaOpenAi = loadRunConfig({ benchmark: "hle", config: { judge: { model: "gpt-4.1", endpoint: "https://api.openai.com", apiKeyEnv: "OPENAI_API_KEY" } } });
    expect(viaOpenAi.judge).toMatchObject({ model: "gpt-4.1", endpoint: "https://api.openai.com", apiKeyEnv: "OPENAI_API_KEY" });
  });

  test("an unknown profile, or a benchmark that is neither frames nor hle, is refused naming config.profile", () => {
    const bad = resolveRunConfig({ benchmark: "frames", config: { profile: "reference" } });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.issues[0]!.path).toBe("config.profile");
    for (const profile of [undefined, "toolorchestra", "baton"]) {
      const r = resolveRunConfig({ benchmark: "gaia", config: profile ? { profile } : {} });
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.issues).toEqual([{ path: "config.profile", message: expect.stringContaining("'gaia' is neither frames nor hle") }]);
    }
    const named = resolveRunConfig({ benchmark: "gaia", config: { profile: "toolorchestra-hle" } });
    expect(named.ok && named.config.profile).toBe("toolorchestra-hle");
  });

  test("the judge endpoint must be an http(s) URL and its key is named by an environment variable, never given", () => {
    for (const endpoint of ["file:///etc/passwd", "ftp://example.org", "not a url"]) {
      const r = resolveRunConfig({ benchmark: "frames", config: { judge: { endpoint } } });
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.issues.map((i) => i.path)).toEqual(["config.judge.endpoint"]);
    }
    const key = resolveRunConfig({ benchmark: "frames", config: { judge: { apiKey: "sk-123" } } });
    expect(key.ok).toBe(false);
    // issue paths name fields as users write them (snake_case)
    if (!key.ok) expect(key.issues).toEqual([{ path: "config.judge.api_key", message: "unknown setting" }]);
    const env = resolveRunConfig({ benchmark: "frames", config: { judge: { apiKeyEnv: "sk-123 oops" } } });
    expect(env.ok).toBe(false);
    if (!env.ok) expect(env.issues[0]!.path).toBe("config.judge.api_key_env");
    const ok = resolveRunConfig({ benchmark: "frames", config: { judge: { endpoint: "http://127.0.0.1:8000", apiKeyEnv: "MY_JUDGE_KEY" } } });
    expect(ok.ok && ok.config.judge).toMatchObject({ endpoint: "http://127.0.0.1:8000", apiKeyEnv: "MY_JUDGE_KEY" });
  });

  test("a run stored before profiles existed keeps Baton's protocol when read back", () => {
    const old = loadRunConfig({ benchmark: "frames", config: { profile: "baton" } }) as Record<string, any>;
    const { profile, reference, ...stored } = old;
    stored.judge = { ...stored.judge };
    delete stored.judge.apiKeyEnv;
    delete stored.judge.maxCompletionTokens;
    const again = loadRunConfig({ benchmark: "frames", config: JSON.parse(JSON.stringify(stored)) });
    expect(again.profile).toBe("baton");
    expect(again.prompts).toEqual(old.prompts);
  });

  test("a stored resolved config resolves to itself", () => {
    const r = resolveRunConfig({ benchmark: "hle", config: { maxRounds: 7 } });
    if (!r.ok) throw new Error("unexpected");
    const again = loadRunConfig({ benchmark: "hle", config: JSON.parse(JSON.stringify(r.config)) });
    expect(again).toEqual(r.config);
  });

  test("every bad field is reported by its path, unknown settings included", () => {
    const r = resolveRunConfig({ benchmark: "frames", config: { maxRounds: 0, retrieval: { topk: "x" }, maxRound: 3 } });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const paths = r.issues.map((i) => i.path);
    expect(paths).toContain("config.max_rounds");
    expect(paths).toContain("config.retrieval.topk");
    expect(r.issues.find((i) => i.path === "config.max_round")?.message).toBe("unknown setting");
  });

  test("accepts a ToolOrchestra tools.json and takes the allowed aliases from its Choices", () => {
    const tools = ["search", "enhance_reasoning", "answer"].map((name, i) => ({
      type: "function",
      function: {
        name,
        description: "x",
        parameters: { type: "object", properties: { model: { type: "string", description: `Choices: ['expert-${i}'] (expert-${i} -> m).` } }, required: ["model"] },
      },
    }));
    const models = { "expert-0": "openai/gpt-oss-20b", "expert-1": "Qwen/Qwen3-32B", "expert-2": "openai/gpt-oss-20b" };
    const r = resolveRunConfig({ benchmark: "frames", config: { tools, models } });
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    expect(r.config.toolModels.search).toEqual(["expert-0"]);
    expect(aliasesFromTool(r.config.tools[2])).toEqual(["expert-2"]);
  });

  test("an alias without a served model is an error naming it", () => {
    const r = resolveRunConfig({ benchmark: "frames", config: { toolModels: { search: ["nope"] } } });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues[0]).toEqual({ path: "config.tool_models.search.0", message: "model alias 'nope' has no served model in config.models" });
  });
});
