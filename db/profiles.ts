// The protocol profiles as data (data/profiles/*.json). `toolorchestra-frames` and
// `toolorchestra-hle` hold what the reference scripts send, each value with the reference file
// and line it was read from; `baton` holds Baton's own prompts and defaults. The few
// behaviours that are code (feeding an invalid reply back, withholding a tool used twice,
// dedup by id) are switched by the profile's name in runner/protocol/.
import batonJson from "../data/profiles/baton.json";
import framesJson from "../data/profiles/toolorchestra-frames.json";
import hleJson from "../data/profiles/toolorchestra-hle.json";

export const PROFILE_NAMES = ["toolorchestra", "toolorchestra-frames", "toolorchestra-hle", "baton"] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];
export type ResolvedProfileName = Exclude<ProfileName, "toolorchestra">;
export type BenchmarkKey = "frames" | "hle";
export type ToolKey = "search" | "enhance_reasoning" | "answer";

/** Drops the `{value, source}` wrappers: what the protocol reads is the value. */
function values(node: unknown): any {
  if (Array.isArray(node)) return node.map(values);
  if (node && typeof node === "object") {
    const o = node as Record<string, unknown>;
    if ("value" in o && "source" in o && Object.keys(o).length === 2) return o.value;
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, values(v)]));
  }
  return node;
}

/** The reference's context assembly and per-tool behaviour (see the profile files for sources). */
export type ReferenceSettings = {
  benchmark: BenchmarkKey;
  context: {
    orchestratorDocument: string;
    orchestratorDocumentChars: number;
    expertDocument: string;
    expertDocumentChars: Record<ToolKey, number | null>;
    codePiece: string;
    codeCutPrefix: string;
    codeHeader: string;
    codeHeaderOnlyWithCode: boolean;
    documentsHeader: string;
    attemptTokens: number;
    orchestratorCodeTokens: number;
    orchestratorContextTokens: number;
    orchestratorContextMinusQuestion: boolean;
    expertCodeTokens: Record<ToolKey, number>;
    expertContextTokens: number;
    hideSearchWhenDocuments: boolean;
  };
  experts: { toolsField: null; answerExtraBody: Record<string, unknown> };
  search: { minQueryChars: number; questionWhenReplyEmpty: boolean };
  enhanceReasoning: { keepOnlyWithStdout: boolean };
  answer: { maxWords: number };
};

export type ReferenceProfile = {
  profile: ResolvedProfileName;
  benchmark: BenchmarkKey;
  reference: { repository: string; commit: string; license: string };
  prompts: Record<"orchestratorSystem" | "orchestratorUser" | "query" | "code" | "answer" | "judge", string>;
  context: ReferenceSettings["context"];
  orchestrator: { temperature: number; maxTokens: number };
  experts: { temperature: number; maxTokens: number; toolsField: null; answerExtraBody: Record<string, unknown> };
  search: {
    queryMaxChars: number;
    minQueryChars: number;
    questionWhenReplyEmpty: boolean;
    topk: number;
    backends: string[];
    attemptsPerBackend: number;
    connectTimeoutMs: number;
    readTimeoutMs: number;
    backoffBaseMs: number;
    backoffMaxMs: number;
  };
  enhanceReasoning: { timeoutMs: number; keepOnlyWithStdout: boolean };
  answer: { maxWords: number };
  judge: { model: string; temperature: number; maxCompletionTokens: number; endpoint: string; apiKeyEnv: string };
  maxRounds: number;
  models: Record<string, string>;
  toolModels: Record<ToolKey, string[]>;
  tools: unknown[];
};

export type BatonProfile = {
  profile: "baton";
  prompts: Record<BenchmarkKey, Record<string, string>>;
  models: Record<string, string>;
  toolModels: Record<ToolKey, string[]>;
  toolDescriptions: Record<ToolKey, string>;
  maxRounds: number;
  maxInvalidSteps: number;
  orchestrator: { temperature: number; maxTokens: number };
  experts: { temperature: number; maxTokens: number };
  judge: { model: string; temperature: number; maxTokens: number };
  retrieval: { topk: number; backends: string[]; queryMaxChars: number };
  budgets: { contextTokens: number; documentTokens: number; codeTokens: number; attemptTokens: number; documentChars: number };
};

export const REFERENCE_PROFILES: Record<BenchmarkKey, ReferenceProfile> = {
  frames: values(framesJson),
  hle: values(hleJson),
};
export const BATON_PROFILE: BatonProfile = values(batonJson);

/** The benchmark a run's name stands for; null when it is neither FRAMES nor HLE. */
export function benchmarkKeyOf(benchmark: string): BenchmarkKey | null {
  const b = benchmark.toLowerCase();
  if (b.includes("hle")) return "hle";
  if (b.includes("frames")) return "frames";
  return null;
}

export function referenceSettings(p: ReferenceProfile): ReferenceSettings {
  return {
    benchmark: p.benchmark,
    context: p.context,
    experts: { toolsField: p.experts.toolsField, answerExtraBody: p.experts.answerExtraBody },
    search: { minQueryChars: p.search.minQueryChars, questionWhenReplyEmpty: p.search.questionWhenReplyEmpty },
    enhanceReasoning: { keepOnlyWithStdout: p.enhanceReasoning.keepOnlyWithStdout },
    answer: { maxWords: p.answer.maxWords },
  };
}
