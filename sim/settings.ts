// Run-time settings of the simulators, validated the same way whether they come from code
// (startVllmSim options, update()) or from POST /admin/settings.
import * as v from "valibot";
import { FAULT_KINDS, RETRIEVAL_FAULT_KINDS } from "./faults";

const Probability = v.pipe(v.number(), v.minValue(0), v.maxValue(1));
const NonNegative = v.pipe(v.number(), v.minValue(0));

function faultSchema<const K extends readonly [string, ...string[]]>(kinds: K) {
  const kind = v.picklist(kinds, `expected one of ${kinds.join(", ")}`);
  return v.strictObject({
    rates: v.optional(v.record(kind, Probability)),
    queue: v.optional(v.array(kind)),
    retryAfterS: v.optional(v.nullable(NonNegative)),
  });
}

export const VllmFaults = faultSchema(FAULT_KINDS);
export type VllmFaults = v.InferOutput<typeof VllmFaults>;
export const RetrievalFaults = faultSchema(RETRIEVAL_FAULT_KINDS);
export type RetrievalFaults = v.InferOutput<typeof RetrievalFaults>;

export const VllmLatency = v.strictObject({
  ttftMs: v.optional(NonNegative),
  perTokenMs: v.optional(NonNegative),
  /** Extra time to first token per prompt token (prefill), ms. */
  perPromptTokenMs: v.optional(NonNegative),
  jitter: v.optional(Probability),
  maxNumSeqs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
});
export type VllmLatency = v.InferOutput<typeof VllmLatency>;

/** Everything of a vLLM replica that update() and POST /admin/settings may change. */
export const VllmSettingsPatch = v.strictObject({
  model: v.optional(v.pipe(v.string(), v.minLength(1))),
  mode: v.optional(v.picklist(["orchestrator", "expert"])),
  seed: v.optional(v.pipe(v.number(), v.integer())),
  maxModelLen: v.optional(v.pipe(v.number(), v.integer(), v.minValue(16))),
  latency: v.optional(VllmLatency),
  faults: v.optional(VllmFaults),
  answers: v.optional(v.record(v.string(), v.string())),
  accuracy: v.optional(Probability),
  invalidToolCallRate: v.optional(Probability),
  /** false → tool_choice "auto" gets vLLM's 400 about --enable-auto-tool-choice. */
  enableAutoToolChoice: v.optional(v.boolean()),
});
export type VllmSettingsPatch = v.InferOutput<typeof VllmSettingsPatch>;

export type VllmSettings = {
  model: string;
  mode: "orchestrator" | "expert";
  seed: number;
  maxModelLen: number;
  latency: { ttftMs: number; perTokenMs: number; perPromptTokenMs: number; jitter: number; maxNumSeqs: number };
  faults: { rates: VllmFaults["rates"]; queue: NonNullable<VllmFaults["queue"]>; retryAfterS: number | null };
  answers: Record<string, string>;
  accuracy: number;
  invalidToolCallRate: number;
  enableAutoToolChoice: boolean;
};

export const RetrievalLatency = v.strictObject({
  ms: v.optional(NonNegative),
  jitter: v.optional(Probability),
});

export const RetrievalSettingsPatch = v.strictObject({
  seed: v.optional(v.pipe(v.number(), v.integer())),
  latency: v.optional(RetrievalLatency),
  faults: v.optional(RetrievalFaults),
  shape: v.optional(v.picklist(["list", "wrapped"])),
});
export type RetrievalSettingsPatch = v.InferOutput<typeof RetrievalSettingsPatch>;

export type RetrievalSettings = {
  seed: number;
  latency: { ms: number; jitter: number };
  faults: { rates: RetrievalFaults["rates"]; queue: NonNullable<RetrievalFaults["queue"]>; retryAfterS: number | null };
  shape: "list" | "wrapped";
};

/** Parses a patch or returns one message naming every bad field. */
export function parsePatch<S extends v.GenericSchema>(
  schema: S,
  input: unknown,
): { ok: true; value: v.InferOutput<S> } | { ok: false; message: string } {
  const r = v.safeParse(schema, input);
  if (r.success) return { ok: true, value: r.output };
  const message = r.issues
    .map((i) => `${v.getDotPath(i) ?? "(body)"}: ${i.message}`)
    .join("; ");
  return { ok: false, message };
}

/** Merges a validated patch: nested latency/faults merge key by key; a given queue replaces. */
export function mergeSettings<T extends { latency: object; faults: object }>(current: T, patch: Record<string, unknown>): T {
  const next = { ...current } as Record<string, unknown>;
  for (const [k, val] of Object.entries(patch)) {
    if (val === undefined) continue;
    if (k === "latency" || k === "faults") {
      const merged = { ...(current[k] as object), ...(val as object) } as Record<string, unknown>;
      if (k === "faults" && (val as { queue?: unknown[] }).queue) merged.queue = [...(val as { queue: unknown[] }).queue];
      next[k] = merged;
    } else {
      next[k] = val;
    }
  }
  return next as T;
}

export class SettingsError extends Error {}
