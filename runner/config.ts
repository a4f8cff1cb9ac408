// Run configuration: every protocol setting a run is evaluated with, stored resolved (with
// defaults filled in) on the run so a result can always be traced to the exact settings.
// Defaults follow the published ToolOrchestra evaluation (eval_frames.py / eval_hle.py and
// their OSS model config): 50 rounds, orchestrator at temperature 1 with 12k max tokens,
// experts at 0.2, context budgets of 24k/12k/8k tokens for documents / code / attempts.
import * as v from "valibot";
import { DEFAULT_PROMPTS, type PromptSet } from "./prompts";

export type ConfigIssue = { path: string; message: string };
export type ResolveResult = { ok: true; config: RunConfig } | { ok: false; issues: ConfigIssue[] };

export const TOOL_NAMES = ["search", "enhance_reasoning", "answer"] as const;
export type ToolName = (typeof TOOL_NAMES)[number];

// Retry/timeout policy of one role; passed through to the LLM and retrieval clients.
// Field names are runner/http-policy.ts RetryPolicy's.
export const CallPolicy = v.strictObject({
  // total HTTP tries, the first included
  attempts: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(20))),
  perAttemptTimeoutMs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  deadlineMs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  baseDelayMs: v.optional(v.pipe(v.number(), v.minValue(0))),
  maxDelayMs: v.optional(v.pipe(v.number(), v.minValue(0))),
});
export type CallPolicy = v.InferOutput<typeof CallPolicy>;

export const RoleSettings = v.strictObject({
  temperature: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(2))),
  maxTokens: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  topP: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(1))),
  policy: v.optional(CallPolicy),
});
export type RoleSettings = v.InferOutput<typeof RoleSettings>;

// An OpenAI function tool, as in ToolOrchestra's tools.json.
export const ToolDefinition = v.looseObject({
  type: v.literal("function"),
  function: v.looseObject({
    name: v.pipe(v.string(), v.minLength(1)),
    description: v.optional(v.string()),
    parameters: v.optional(v.record(v.string(), v.unknown())),
  }),
});
export type ToolDefinition = v.InferOutput<typeof ToolDefinition>;

// ToolOrchestra model config: { "<model>": [{ip_addr, port}], retrieval: [...], ... }.
export const EndpointAddress = v.looseObject({
  ip_addr: v.pipe(v.string(), v.minLength(1)),
  port: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535)),
});
export const InlineEndpoints = v.record(v.string(), v.union([v.array(EndpointAddress), v.unknown()]));
export type InlineEndpoints = v.InferOutput<typeof InlineEndpoints>;

const Prompts = v.strictObject({
  orchestratorSystem: v.optional(v.string()),
  orchestratorUser: v.optional(v.string()),
  query: v.optional(v.string()),
  code: v.optional(v.string()),
  answer: v.optional(v.string()),
  judge: v.optional(v.string()),
});

const positiveInt = v.pipe(v.number(), v.integer(), v.minValue(1));

export const RunConfigInput = v.strictObject({
  maxRounds: v.optional(v.pipe(positiveInt, v.maxValue(1000))),
  // invalid orchestrator replies in a row tolerated before the task fails as orchestrator_unparsable
  maxInvalidSteps: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
  orchestrator: v.optional(
    v.strictObject({
      model: v.optional(v.pipe(v.string(), v.minLength(1))),
      // context: ToolOrchestra's format, the state travels only in the context text each round;
      // messages: earlier steps are also sent as assistant tool-call turns + short tool results
      history: v.optional(v.picklist(["context", "messages"])),
      ...RoleSettings.entries,
    }),
  ),
  queryLlm: v.optional(RoleSettings),
  coder: v.optional(RoleSettings),
  answerer: v.optional(RoleSettings),
  judge: v.optional(
    v.strictObject({
      model: v.optional(v.pipe(v.string(), v.minLength(1))),
      // its own endpoint, e.g. "http://127.0.0.1:8000"; else the registry pool of `model`
      endpoint: v.nullish(v.pipe(v.string(), v.url())),
      ...RoleSettings.entries,
    }),
  ),
  // tool alias → served model (search-1 → openai/gpt-oss-20b)
  models: v.optional(v.record(v.string(), v.pipe(v.string(), v.minLength(1)))),
  // tool → aliases the orchestrator may pick; derived from tools.json when absent
  toolModels: v.optional(v.record(v.picklist(TOOL_NAMES), v.array(v.string()))),
  tools: v.optional(v.pipe(v.array(ToolDefinition), v.minLength(1))),
  retrieval: v.optional(
    v.strictObject({
      topk: v.optional(v.pipe(positiveInt, v.maxValue(1000))),
      backends: v.optional(v.pipe(v.array(v.string()), v.minLength(1))),
      queryMaxChars: v.optional(positiveInt),
      policy: v.optional(CallPolicy),
    }),
  ),
  budgets: v.optional(
    v.strictObject({
      contextTokens: v.optional(positiveInt),
      documentTokens: v.optional(positiveInt),
      codeTokens: v.optional(positiveInt),
      attemptTokens: v.optional(positiveInt),
      documentChars: v.optional(positiveInt),
    }),
  ),
  prompts: v.optional(Prompts),
  sandbox: v.optional(
    v.strictObject({ timeoutMs: v.optional(positiveInt), memoryMb: v.optional(positiveInt), outputChars: v.optional(positiveInt) }),
  ),
  tokenizer: v.optional(
    v.strictObject({
      // auto: file if given, else the orchestrator server's /tokenize, else chars/4
      mode: v.optional(v.picklist(["auto", "file", "server", "chars"])),
      path: v.nullish(v.string()),
    }),
  ),
  endpoints: v.nullish(InlineEndpoints),
});
export type RunConfigInput = v.InferOutput<typeof RunConfigInput>;

export type ResolvedRole = { temperature: number; maxTokens: number; topP?: number; policy: CallPolicy };

export type RunConfig = {
  benchmark: string;
  maxRounds: number;
  maxInvalidSteps: number;
  orchestrator: ResolvedRole & { model: string; history: "context" | "messages" };
  queryLlm: ResolvedRole;
  coder: ResolvedRole;
  answerer: ResolvedRole;
  judge: ResolvedRole & { model: string; endpoint: string | null };
  models: Record<string, string>;
  toolModels: Record<ToolName, string[]>;
  tools: ToolDefinition[];
  retrieval: { topk: number; backends: string[]; queryMaxChars: number; policy: CallPolicy };
  budgets: {
    contextTokens: number;
    documentTokens: number;
    codeTokens: number;
    attemptTokens: number;
    documentChars: number;
  };
  prompts: PromptSet;
  sandbox: { timeoutMs: number; memoryMb: number; outputChars: number };
  tokenizer: { mode: "auto" | "file" | "server" | "chars"; path: string | null };
  endpoints: InlineEndpoints | null;
};

export const DEFAULT_ORCHESTRATOR_MODEL = "nvidia/Nemotron-Orchestrator-8B";

// The OSS deployment of the ToolOrchestra evaluation (model_config_oss_new.json).
export const DEFAULT_MODELS: Record<string, string> = {
  "search-1": "openai/gpt-oss-20b",
  "search-2": "Qwen/Qwen3-32B",
  "reasoner-1": "Qwen/Qwen2.5-Coder-32B-Instruct",
  "reasoner-2": "openai/gpt-oss-20b",
  "answer-1": "Qwen/Qwen3-32B",
  "answer-2": "openai/gpt-oss-20b",
};

const DEFAULT_TOOL_MODELS: Record<ToolName, string[]> = {
  search: ["search-1", "search-2"],
  enhance_reasoning: ["reasoner-1", "reasoner-2"],
  answer: ["answer-1", "answer-2"],
};

const TOOL_DESCRIPTIONS: Record<ToolName, string> = {
  search: "Search for missing information.",
  enhance_reasoning:
    "Enhance the reasoning: an expert writes Python code for the problem; its execution output returns intermediate results.",
  answer: "Give the final answer. Call it only when the documents and results support an answer.",
};

/** Tool definitions in ToolOrchestra's tools.json shape, listing each tool's model choices. */
export function buildToolDefinitions({
  toolModels,
  models,
}: {
  toolModels: Record<ToolName, string[]>;
  models: Record<string, string>;
}): ToolDefinition[] {
  return TOOL_NAMES.map((name) => {
    const choices = toolModels[name];
    const mapping = choices.map((a) => `${a} -> ${models[a] ?? "?"}`).join(", ");
    return {
      type: "function" as const,
      function: {
        name,
        description: TOOL_DESCRIPTIONS[name],
        parameters: {
          type: "object",
          title: "parameters",
          properties: {
            model: {
              type: "string",
              enum: choices,
              description: `The model to use. Choices: ${JSON.stringify(choices)} (${mapping}).`,
            },
          },
          required: ["model"],
        },
      },
    };
  });
}

/**
 * The aliases a ToolOrchestra tools.json allows for a tool: the `enum` of its `model`
 * parameter, else the list in "Choices: ['a', 'b']" of its description.
 */
export function aliasesFromTool(tool: ToolDefinition): string[] | null {
  const model = (tool.function.parameters as any)?.properties?.model;
  if (Array.isArray(model?.enum)) return model.enum.map(String);
  const m = typeof model?.description === "string" ? /Choices:\s*\[([^\]]*)\]/.exec(model.description) : null;
  if (!m) return null;
  const names = [...m[1].matchAll(/['"]([^'"]+)['"]/g)].map((x) => x[1]);
  return names.length > 0 ? names : null;
}

function role(input: RoleSettings | undefined, d: ResolvedRole): ResolvedRole {
  return {
    temperature: input?.temperature ?? d.temperature,
    maxTokens: input?.maxTokens ?? d.maxTokens,
    ...(input?.topP != null ? { topP: input.topP } : d.topP != null ? { topP: d.topP } : {}),
    policy: { ...d.policy, ...input?.policy },
  };
}

const ORCH_POLICY: CallPolicy = { attempts: 5, perAttemptTimeoutMs: 300_000, deadlineMs: 900_000 };
const EXPERT_POLICY: CallPolicy = { attempts: 5, perAttemptTimeoutMs: 300_000, deadlineMs: 900_000 };
const JUDGE_POLICY: CallPolicy = { attempts: 5, perAttemptTimeoutMs: 120_000, deadlineMs: 600_000 };
const RETRIEVAL_POLICY: CallPolicy = { attempts: 3, perAttemptTimeoutMs: 30_000, deadlineMs: 90_000 };

function issueMessage(issue: v.BaseIssue<unknown>): string {
  return issue.kind === "schema" && issue.type === "strict_object" ? "unknown setting" : issue.message;
}

function issuePath(issue: v.BaseIssue<unknown>): string {
  const keys = (issue.path ?? []).map((p: any) => String(p.key));
  return ["config", ...keys].join(".");
}

/** Validates a submitted config and fills in the defaults; never throws on bad input. */
export function resolveRunConfig({ benchmark, config }: { benchmark: string; config: unknown }): ResolveResult {
  if (config != null && (typeof config !== "object" || Array.isArray(config)))
    return { ok: false, issues: [{ path: "config", message: "must be an object" }] };
  const raw = { ...((config as Record<string, unknown>) ?? {}) };
  // A resolved config (e.g. copied from an earlier run) carries these; they are derived.
  delete raw.benchmark;
  const parsed = v.safeParse(RunConfigInput, raw);
  if (!parsed.success)
    return { ok: false, issues: parsed.issues.map((i) => ({ path: issuePath(i), message: issueMessage(i) })) };
  const input = parsed.output;
  const issues: ConfigIssue[] = [];

  const models = { ...DEFAULT_MODELS, ...input.models };
  let toolModels: Record<ToolName, string[]> = { ...DEFAULT_TOOL_MODELS };
  if (input.tools) {
    const names = input.tools.map((t) => t.function.name);
    input.tools.forEach((t, i) => {
      if (!(TOOL_NAMES as readonly string[]).includes(t.function.name))
        issues.push({
          path: `config.tools.${i}.function.name`,
          message: `unknown tool '${t.function.name}' (expected one of ${TOOL_NAMES.join(", ")})`,
        });
    });
    for (const t of input.tools) {
      const aliases = aliasesFromTool(t);
      if (aliases && (TOOL_NAMES as readonly string[]).includes(t.function.name))
        toolModels[t.function.name as ToolName] = aliases;
    }
    if (!names.includes("answer")) issues.push({ path: "config.tools", message: "must include the 'answer' tool" });
  }
  toolModels = { ...toolModels, ...input.toolModels };
  for (const [tool, aliases] of Object.entries(toolModels))
    aliases.forEach((a, i) => {
      if (!models[a])
        issues.push({
          path: `config.toolModels.${tool}.${i}`,
          message: `model alias '${a}' has no served model in config.models`,
        });
    });

  const benchmarkKey = benchmark.toLowerCase().includes("hle") ? "hle" : "frames";
  const prompts: PromptSet = { ...DEFAULT_PROMPTS[benchmarkKey], ...input.prompts };
  for (const [name, text] of Object.entries(prompts))
    if (!text.includes("{question}") && name !== "orchestratorSystem")
      issues.push({ path: `config.prompts.${name}`, message: "must contain the {question} placeholder" });

  if (issues.length > 0) return { ok: false, issues };

  const tools = input.tools ?? buildToolDefinitions({ toolModels, models });
  const b = input.budgets ?? {};
  const resolved: RunConfig = {
    benchmark,
    maxRounds: input.maxRounds ?? 50,
    maxInvalidSteps: input.maxInvalidSteps ?? 5,
    orchestrator: {
      model: input.orchestrator?.model ?? DEFAULT_ORCHESTRATOR_MODEL,
      history: input.orchestrator?.history ?? "context",
      ...role(input.orchestrator, { temperature: 1, maxTokens: 12_000, policy: ORCH_POLICY }),
    },
    queryLlm: role(input.queryLlm, { temperature: 0.2, maxTokens: 8_000, policy: EXPERT_POLICY }),
    coder: role(input.coder, { temperature: 0.2, maxTokens: 8_000, policy: EXPERT_POLICY }),
    answerer: role(input.answerer, { temperature: 0.2, maxTokens: 8_000, policy: EXPERT_POLICY }),
    judge: {
      model: input.judge?.model ?? "openai/gpt-oss-20b",
      endpoint: input.judge?.endpoint ?? null,
      ...role(input.judge, { temperature: 0, maxTokens: 2_000, policy: JUDGE_POLICY }),
    },
    models,
    toolModels,
    tools,
    retrieval: {
      topk: input.retrieval?.topk ?? 50,
      backends: input.retrieval?.backends ?? ["wiki_retrieval", "retrieval"],
      // ToolOrchestra truncates queries to 390 characters before retrieval
      queryMaxChars: input.retrieval?.queryMaxChars ?? 390,
      policy: { ...RETRIEVAL_POLICY, ...input.retrieval?.policy },
    },
    budgets: {
      contextTokens: b.contextTokens ?? 24_000,
      documentTokens: b.documentTokens ?? 24_000,
      codeTokens: b.codeTokens ?? 12_000,
      attemptTokens: b.attemptTokens ?? 8_000,
      documentChars: b.documentChars ?? 4_000,
    },
    prompts,
    sandbox: {
      timeoutMs: input.sandbox?.timeoutMs ?? 60_000,
      memoryMb: input.sandbox?.memoryMb ?? 2_048,
      outputChars: input.sandbox?.outputChars ?? 20_000,
    },
    tokenizer: { mode: input.tokenizer?.mode ?? "auto", path: input.tokenizer?.path ?? null },
    endpoints: input.endpoints ?? null,
  };
  return { ok: true, config: resolved };
}

/** Reads a stored run config back; a run stored by an older version gets today's defaults. */
export function loadRunConfig({ benchmark, config }: { benchmark: string; config: unknown }): RunConfig {
  const res = resolveRunConfig({ benchmark, config });
  if (!res.ok) throw new Error(`run config invalid: ${res.issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`);
  return res.config;
}
