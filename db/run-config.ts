// Run configuration: every protocol setting a run is evaluated with, stored resolved (with
// defaults filled in) on the run so a result can always be traced to the exact settings.
// The defaults come from the run's profile (data/profiles/): `toolorchestra` (the default)
// is what the reference scripts eval_frames_oss.py / eval_hle_oss.py send, one sub-profile per
// benchmark; `baton` is Baton's own protocol. Fields given in the config override the profile.
import * as v from "valibot";

import { normalizeConfigDocument, writeConfigPath } from "./config-wire";
import {
  BATON_PROFILE,
  benchmarkKeyOf,
  PROFILE_NAMES,
  REFERENCE_PROFILES,
  referenceSettings,
  type BenchmarkKey,
  type ReferenceSettings,
  type ResolvedProfileName,
} from "./profiles";

// The prompt texts a run is evaluated with (profile data; runner/prompts.ts renders them).
export type PromptSet = {
  orchestratorSystem: string;
  orchestratorUser: string;
  query: string;
  code: string;
  answer: string;
  judge: string;
};

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

// An http(s) URL: a judge endpoint receives prompts (and possibly an API key), so a file: or
// other scheme is refused rather than fetched.
const HttpUrl = v.pipe(
  v.string(),
  v.check((s) => /^https?:\/\//i.test(s) && URL.canParse(s), "must be an http(s) URL"),
);
const EnvName = v.pipe(v.string(), v.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name"));

export const RunConfigInput = v.strictObject({
  // toolorchestra: the reference protocol (frames or hle by the run's benchmark); baton: Baton's own
  profile: v.optional(v.picklist(PROFILE_NAMES, `must be one of ${PROFILE_NAMES.join(", ")}`)),
  maxRounds: v.optional(v.pipe(positiveInt, v.maxValue(1000))),
  // invalid orchestrator replies in a row tolerated before the task fails as orchestrator_unparsable
  // (null: never; the reference only stops at maxRounds)
  maxInvalidSteps: v.nullish(v.pipe(v.number(), v.integer(), v.minValue(0))),
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
      endpoint: v.nullish(HttpUrl),
      // name of the environment variable holding the endpoint's API key (sent as Bearer);
      // the key itself is never part of a config, a log or a row
      apiKeyEnv: v.nullish(EnvName),
      // OpenAI reasoning models take max_completion_tokens instead of max_tokens
      maxCompletionTokens: v.nullish(positiveInt),
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
  // the resolved profile; `reference` holds the reference's context and tool rules (null for baton)
  profile: ResolvedProfileName;
  reference: ReferenceSettings | null;
  maxRounds: number;
  maxInvalidSteps: number | null;
  orchestrator: ResolvedRole & { model: string; history: "context" | "messages" };
  queryLlm: ResolvedRole;
  coder: ResolvedRole;
  answerer: ResolvedRole;
  judge: ResolvedRole & { model: string; endpoint: string | null; apiKeyEnv: string | null; maxCompletionTokens: number | null };
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

// Baton's own deployment (the `baton` profile's model map and tools).
export const DEFAULT_MODELS: Record<string, string> = BATON_PROFILE.models;
const TOOL_DESCRIPTIONS: Record<ToolName, string> = BATON_PROFILE.toolDescriptions;

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

/** The reference's retrieval retries: 8 tries per pool, 2 s doubling backoff capped at 15 s. */
function referenceRetrievalPolicy(s: (typeof REFERENCE_PROFILES)["frames"]["search"]): CallPolicy {
  const perAttemptTimeoutMs = s.connectTimeoutMs + s.readTimeoutMs;
  let backoff = 0;
  for (let i = 0; i < s.attemptsPerBackend - 1; i++) backoff += Math.min(s.backoffBaseMs * 2 ** Math.min(i, 4), s.backoffMaxMs);
  const perBackend = s.attemptsPerBackend * perAttemptTimeoutMs + backoff;
  return {
    attempts: s.attemptsPerBackend,
    perAttemptTimeoutMs,
    deadlineMs: perBackend * s.backends.length,
    baseDelayMs: s.backoffBaseMs,
    maxDelayMs: s.backoffMaxMs,
  };
}

function issueMessage(issue: v.BaseIssue<unknown>): string {
  return issue.kind === "schema" && issue.type === "strict_object" ? "unknown setting" : issue.message;
}

// Issue paths name fields as the user wrote them (snake_case, db/config-wire.ts); the
// schema's keys are the code's.
function issuePath(issue: v.BaseIssue<unknown>): string {
  const keys = (issue.path ?? []).map((p: any) => p.key as string | number);
  return keys.length ? `config.${writeConfigPath(keys)}` : "config";
}

/** The profile a run resolves to: an explicit sub-profile, or toolorchestra/baton by benchmark. */
function pickProfile(
  benchmark: string,
  asked: (typeof PROFILE_NAMES)[number] | undefined,
): { ok: true; name: ResolvedProfileName; key: BenchmarkKey } | { ok: false; issue: ConfigIssue } {
  if (asked === "toolorchestra-frames") return { ok: true, name: asked, key: "frames" };
  if (asked === "toolorchestra-hle") return { ok: true, name: asked, key: "hle" };
  const key = benchmarkKeyOf(benchmark);
  // An unknown benchmark is refused rather than run with FRAMES's prompts by default.
  if (!key)
    return {
      ok: false,
      issue: {
        path: "config.profile",
        message: `benchmark '${benchmark}' is neither frames nor hle: name the protocol with profile 'toolorchestra-frames' or 'toolorchestra-hle'`,
      },
    };
  if (asked === "baton") return { ok: true, name: "baton", key };
  return { ok: true, name: `toolorchestra-${key}`, key };
}

/** The profile's defaults, in the shape of a resolved config (overrides are applied after). */
function profileDefaults(name: ResolvedProfileName, key: BenchmarkKey) {
  if (name === "baton") {
    const b = BATON_PROFILE;
    const expert = { temperature: b.experts.temperature, maxTokens: b.experts.maxTokens, policy: EXPERT_POLICY };
    return {
      reference: null,
      maxRounds: b.maxRounds,
      maxInvalidSteps: b.maxInvalidSteps as number | null,
      orchestrator: { ...b.orchestrator, policy: ORCH_POLICY },
      queryLlm: expert,
      coder: expert,
      answerer: expert,
      judge: { ...b.judge, endpoint: null as string | null, apiKeyEnv: null as string | null, maxCompletionTokens: null as number | null, policy: JUDGE_POLICY },
      models: b.models,
      toolModels: b.toolModels,
      tools: null as ToolDefinition[] | null,
      prompts: b.prompts[key] as PromptSet,
      retrieval: { ...b.retrieval, policy: RETRIEVAL_POLICY },
      budgets: b.budgets,
      sandboxTimeoutMs: 60_000,
      outputChars: 20_000,
    };
  }
  const p = REFERENCE_PROFILES[key];
  const expert = { temperature: p.experts.temperature, maxTokens: p.experts.maxTokens, policy: EXPERT_POLICY };
  return {
    reference: referenceSettings(p),
    maxRounds: p.maxRounds,
    maxInvalidSteps: null as number | null,
    orchestrator: { ...p.orchestrator, policy: ORCH_POLICY },
    queryLlm: expert,
    coder: expert,
    answerer: expert,
    judge: {
      model: p.judge.model,
      temperature: p.judge.temperature,
      maxTokens: p.judge.maxCompletionTokens,
      endpoint: p.judge.endpoint as string | null,
      apiKeyEnv: p.judge.apiKeyEnv as string | null,
      maxCompletionTokens: p.judge.maxCompletionTokens as number | null,
      policy: JUDGE_POLICY,
    },
    models: p.models,
    toolModels: p.toolModels,
    tools: p.tools as ToolDefinition[],
    prompts: p.prompts as PromptSet,
    retrieval: { topk: p.search.topk, backends: p.search.backends, queryMaxChars: p.search.queryMaxChars, policy: referenceRetrievalPolicy(p.search) },
    // budgets.* in reference terms: contextTokens = the experts' context, documentTokens = the
    // orchestrator's context, codeTokens = its code cut, documentChars = its per-document cut
    budgets: {
      contextTokens: p.context.expertContextTokens,
      documentTokens: p.context.orchestratorContextTokens,
      codeTokens: p.context.orchestratorCodeTokens,
      attemptTokens: p.context.attemptTokens,
      documentChars: p.context.orchestratorDocumentChars,
    },
    sandboxTimeoutMs: p.enhanceReasoning.timeoutMs,
    // the reference keeps the whole stdout; the sandbox's own cap still applies
    outputChars: 10_000_000,
  };
}

/**
 * The judge: the profile's, field by field. Naming another model drops the profile's endpoint,
 * key variable and max_completion_tokens (they belong to the profile's model, e.g. gpt-5 at
 * OpenAI): the model is then looked up in the registry unless `endpoint` is given too.
 */
function resolveJudge(input: RunConfigInput["judge"], d: ReturnType<typeof profileDefaults>["judge"]): RunConfig["judge"] {
  const own = input?.model == null || input.model === d.model;
  const pick = <T>(given: T | undefined, fallback: T): T => (given !== undefined ? given : own ? fallback : (null as T));
  return {
    model: input?.model ?? d.model,
    endpoint: pick(input?.endpoint, d.endpoint) ?? null,
    apiKeyEnv: pick(input?.apiKeyEnv, d.apiKeyEnv) ?? null,
    maxCompletionTokens: pick(input?.maxCompletionTokens, d.maxCompletionTokens) ?? null,
    ...role(input, d),
  };
}

// Keys a resolved config carries that are derived, not settings.
const DERIVED_KEYS = ["benchmark", "reference"];

/** Validates a submitted config and fills in the profile's defaults; never throws on bad input. */
export function resolveRunConfig({ benchmark, config }: { benchmark: string; config: unknown }): ResolveResult {
  if (config != null && (typeof config !== "object" || Array.isArray(config)))
    return { ok: false, issues: [{ path: "config", message: "must be an object" }] };
  const raw = { ...((config as Record<string, unknown>) ?? {}) };
  for (const k of DERIVED_KEYS) delete raw[k];
  const parsed = v.safeParse(RunConfigInput, raw);
  if (!parsed.success)
    return { ok: false, issues: parsed.issues.map((i) => ({ path: issuePath(i), message: issueMessage(i) })) };
  const input = parsed.output;
  const picked = pickProfile(benchmark, input.profile);
  if (!picked.ok) return { ok: false, issues: [picked.issue] };
  const d = profileDefaults(picked.name, picked.key);
  const issues: ConfigIssue[] = [];

  const models = { ...d.models, ...input.models };
  let toolModels: Record<ToolName, string[]> = { ...d.toolModels };
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
          path: `config.${writeConfigPath(["toolModels", tool, i])}`,
          message: `model alias '${a}' has no served model in config.models`,
        });
    });

  const prompts: PromptSet = { ...d.prompts, ...input.prompts };
  for (const [name, text] of Object.entries(prompts))
    if (!text.includes("{question}") && name !== "orchestratorSystem")
      issues.push({ path: `config.${writeConfigPath(["prompts", name])}`, message: "must contain the {question} placeholder" });

  if (issues.length > 0) return { ok: false, issues };

  const tools = input.tools ?? d.tools ?? buildToolDefinitions({ toolModels, models });
  const b = input.budgets ?? {};
  const resolved: RunConfig = {
    benchmark,
    profile: picked.name,
    reference: d.reference,
    maxRounds: input.maxRounds ?? d.maxRounds,
    maxInvalidSteps: input.maxInvalidSteps !== undefined ? input.maxInvalidSteps : d.maxInvalidSteps,
    orchestrator: {
      model: input.orchestrator?.model ?? DEFAULT_ORCHESTRATOR_MODEL,
      history: input.orchestrator?.history ?? "context",
      ...role(input.orchestrator, d.orchestrator),
    },
    queryLlm: role(input.queryLlm, d.queryLlm),
    coder: role(input.coder, d.coder),
    answerer: role(input.answerer, d.answerer),
    judge: resolveJudge(input.judge, d.judge),
    models,
    toolModels,
    tools,
    retrieval: {
      topk: input.retrieval?.topk ?? d.retrieval.topk,
      backends: input.retrieval?.backends ?? d.retrieval.backends,
      queryMaxChars: input.retrieval?.queryMaxChars ?? d.retrieval.queryMaxChars,
      policy: { ...d.retrieval.policy, ...input.retrieval?.policy },
    },
    budgets: {
      contextTokens: b.contextTokens ?? d.budgets.contextTokens,
      documentTokens: b.documentTokens ?? d.budgets.documentTokens,
      codeTokens: b.codeTokens ?? d.budgets.codeTokens,
      attemptTokens: b.attemptTokens ?? d.budgets.attemptTokens,
      documentChars: b.documentChars ?? d.budgets.documentChars,
    },
    prompts,
    sandbox: {
      timeoutMs: input.sandbox?.timeoutMs ?? d.sandboxTimeoutMs,
      memoryMb: input.sandbox?.memoryMb ?? 2_048,
      outputChars: input.sandbox?.outputChars ?? d.outputChars,
    },
    tokenizer: { mode: input.tokenizer?.mode ?? "auto", path: input.tokenizer?.path ?? null },
    endpoints: input.endpoints ?? null,
  };
  return { ok: true, config: resolved };
}

/**
 * Reads a stored run config back, or one the API answered (snake_case, as a runner over HTTP
 * and `baton preflight` get it). A run stored before profiles existed (a resolved config, so it
 * has prompts, but no profile) was submitted under Baton's protocol and keeps it.
 */
export function loadRunConfig({ benchmark, config }: { benchmark: string; config: unknown }): RunConfig {
  let stored = normalizeConfigDocument(config);
  if (stored && typeof stored === "object" && !Array.isArray(stored) && !("profile" in stored) && "prompts" in stored)
    stored = { ...stored, profile: "baton" };
  const res = resolveRunConfig({ benchmark, config: stored });
  if (!res.ok) throw new Error(`run config invalid: ${res.issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`);
  return res.config;
}
