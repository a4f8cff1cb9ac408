// Fault injection shared by the vLLM and retrieval simulators. A request's fault comes from,
// in order: the `x-sim-fault` header, the forced queue (consumed one per request), then the
// seeded per-kind rates.
export const FAULT_KINDS = [
  "429",
  "500",
  "503",
  "hang",
  "stream_cut",
  "stream_error",
  "context_length",
  "max_tokens_too_large",
  "malformed_json",
  "reset",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** The kinds that make sense for the retrieval service (no streams, no token limits). */
export const RETRIEVAL_FAULT_KINDS = ["429", "500", "503", "hang", "reset", "malformed_json"] as const;
export type RetrievalFaultKind = (typeof RETRIEVAL_FAULT_KINDS)[number];

export type FaultSettings<K extends string = FaultKind> = {
  /** Probability per request of each kind, checked in FAULT_KINDS order. */
  rates?: Partial<Record<K, number>>;
  /** Forced for the next requests, in order; each request consumes one. */
  queue?: K[];
  /** Retry-After seconds sent with 429 (omit the header when null). Default 1. */
  retryAfterS?: number | null;
};

export const FAULT_HEADER = "x-sim-fault";

export function isFaultKind<K extends string>(kinds: readonly K[], value: string): value is K {
  return (kinds as readonly string[]).includes(value);
}

/** Thrown for a bad `x-sim-fault` header so the server can answer 400 naming it. */
export class UnknownFaultError extends Error {}

/**
 * Decides the fault for one request. Mutates `faults.queue` (consumes its head). The rate
 * roll uses its own PRNG stream so faults do not shift when other seeded choices change.
 */
export function chooseFault<K extends string>(opts: {
  kinds: readonly K[];
  header: string | null | undefined;
  faults: FaultSettings<K> | undefined;
  rng: () => number;
}): K | null {
  const { kinds, header, faults, rng } = opts;
  if (header) {
    if (!isFaultKind(kinds, header)) {
      throw new UnknownFaultError(
        `${FAULT_HEADER}: unknown fault '${header}' (expected one of ${kinds.join(", ")})`,
      );
    }
    return header;
  }
  if (!faults) return null;
  if (faults.queue && faults.queue.length > 0) return faults.queue.shift() as K;
  const rates = faults.rates;
  if (!rates) return null;
  for (const kind of kinds) {
    const p = rates[kind];
    if (p && p > 0 && rng() < p) return kind;
  }
  return null;
}
