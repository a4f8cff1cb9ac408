import { describe, expect, test } from "bun:test";
import { aliasesFromTool, loadRunConfig, resolveRunConfig } from "../../runner/config";

describe("resolveRunConfig", () => {
  test("fills the ToolOrchestra defaults for an empty config", () => {
    const r = resolveRunConfig({ benchmark: "frames", config: {} });
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    expect(r.config.maxRounds).toBe(50);
    expect(r.config.models["search-1"]).toBe("openai/gpt-oss-20b");
    expect(r.config.tools.map((t) => t.function.name).sort()).toEqual(["answer", "enhance_reasoning", "search"]);
    expect(r.config.prompts.query).toContain("<query>");
    expect(r.config.prompts.judge).toContain("<correct>");
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
    expect(paths).toContain("config.maxRounds");
    expect(paths).toContain("config.retrieval.topk");
    expect(r.issues.find((i) => i.path === "config.maxRound")?.message).toBe("unknown setting");
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
    if (!r.ok) expect(r.issues[0]).toEqual({ path: "config.toolModels.search.0", message: "model alias 'nope' has no served model in config.models" });
  });
});
