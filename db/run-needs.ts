// What a run needs served before any of its tasks can make progress: the orchestrator model,
// every model a tool may route to, the judge (unless it is an external API), and at least
// one retrieval backend. A run with an unmet need waits: its tasks are not claimed, so no
// attempt is spent and no backoff burned on calls that cannot succeed.
import type { RunConfig, ToolName } from "./run-config";
import { TOOL_NAMES } from "./run-config";

export type Need = {
  // who needs it: orchestrator, search, enhance_reasoning, answer, judge
  label: string;
  kind: "model" | "retrieval";
  // satisfied when any of these names has a usable endpoint (retrieval: primary or fallback)
  names: string[];
};

export type UnmetNeed = Need & { healthy: 0 };

/**
 * What the run cannot start without: the orchestrator, for each tool at least one of the
 * models its aliases route to, a retrieval backend, and the judge. A tool with some of its
 * models unserved still runs (a call routed there fails and is retried like any endpoint
 * failure); `baton preflight` lists every unserved model one by one.
 */
export function needsOf(config: RunConfig): Need[] {
  const needs: Need[] = [{ label: "orchestrator", kind: "model", names: [config.orchestrator.model] }];
  for (const tool of TOOL_NAMES as readonly ToolName[]) {
    const models = [...new Set((config.toolModels[tool] ?? []).map((alias) => config.models[alias]).filter((m): m is string => !!m))];
    if (models.length > 0) needs.push({ label: tool, kind: "model", names: models });
  }
  if ((config.toolModels.search ?? []).length > 0 && config.retrieval.backends.length > 0)
    needs.push({ label: "search", kind: "retrieval", names: [...config.retrieval.backends] });
  if (!config.judge.endpoint) needs.push({ label: "judge", kind: "model", names: [config.judge.model] });
  return needs;
}

export type Served = { kind: string; name: string };

/**
 * The needs no served endpoint meets. `served` are the usable endpoints (enabled and
 * healthy); `inline` are the names the run's own config lists endpoints for (a model config
 * submitted with the run), which the runner falls back to.
 */
export function unmetNeeds(needs: Need[], served: Served[], inline: Served[] = []): UnmetNeed[] {
  const have = new Set([...served, ...inline].map((s) => `${s.kind}\u0000${s.name}`));
  return needs.filter((n) => !n.names.some((name) => have.has(`${n.kind}\u0000${name}`))).map((n) => ({ ...n, healthy: 0 as const }));
}

/** `answer → Qwen/Qwen3-32B-FP8: 0 healthy`; retrieval: `search → retrieval wiki_retrieval|retrieval: 0 healthy`. */
export function describeNeed(n: { label: string; kind: string; names: string[]; healthy?: number }): string {
  const what = n.kind === "retrieval" ? `retrieval ${n.names.join("|")}` : n.names.join("|");
  return `${n.label} → ${what}: ${n.healthy ?? 0} healthy`;
}
