// Run configuration: the protocol settings stored with each run. (Stub: the runner
// issue fills in the schema and ToolOrchestra defaults.)
export type ConfigIssue = { path: string; message: string };
export type ResolveResult = { ok: true; config: Record<string, unknown> } | { ok: false; issues: ConfigIssue[] };

/** Validates a submitted config and fills in the defaults; never throws on bad input. */
export function resolveRunConfig({
  benchmark,
  config,
}: {
  benchmark: string;
  config: unknown;
}): ResolveResult {
  if (config != null && (typeof config !== "object" || Array.isArray(config)))
    return { ok: false, issues: [{ path: "config", message: "must be an object" }] };
  return { ok: true, config: { benchmark, ...(config as Record<string, unknown> | undefined) } };
}
