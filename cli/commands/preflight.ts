// `baton preflight RUN`: checks that everything the run calls is served and usable before a
// task is spent on it (runner/launch/preflight.ts), prints the checks as a table, and exits 1
// listing what is missing. `submit --preflight` runs the same checks before submitting.
import { DB, defineCommand, JSON_OUTPUT, SERVER } from "../define-command";
import { parseToolOrchestraConfig } from "../../db/endpoints";
import { loadRunConfig, type RunConfig } from "../../runner/config";
import type { WaitingList } from "../../functions/endpoints";
import { describeNeed } from "../../runner/launch/needs";
import { runPreflight, type CheckRow, type PreflightEndpoint } from "../../runner/launch/preflight";
import { type Api, encodeRef, formatColumns, oneRun, openReader } from "./_api";

/** The registry's endpoints (full URLs: the runners' route), plus the run's own inline ones. */
async function endpointsFor(api: Api, config: RunConfig): Promise<PreflightEndpoint[]> {
  const wire = await api.call<{ endpoints: { base_url: string }[] }>("GET", "/v1/queue/endpoints");
  const endpoints = wire.endpoints.map(({ base_url, ...e }) => ({ ...e, baseUrl: base_url }) as PreflightEndpoint);
  if (!config.endpoints) return endpoints;
  const known = new Set(endpoints.filter((e) => e.enabled).map((e) => `${e.kind}\u0000${e.name}`));
  let inline: PreflightEndpoint[] = [];
  try {
    inline = parseToolOrchestraConfig(config.endpoints).endpoints.map((e) => ({ ...e, enabled: true, state: "healthy" }));
  } catch {}
  // As the runner does: a config's endpoints stand in only for names the registry lacks.
  return [...endpoints, ...inline.filter((e) => !known.has(`${e.kind}\u0000${e.name}`))];
}

/** Prints the table; returns the missing rows. */
export async function preflightConfig(api: Api, config: RunConfig, json = false): Promise<CheckRow[]> {
  const rows = await runPreflight({ config, endpoints: await endpointsFor(api, config) });
  const missing = rows.filter((r) => r.result === "missing");
  if (json) console.log(JSON.stringify({ ok: missing.length === 0, checks: rows }, null, 2));
  else {
    console.log(formatColumns(["check", "target", "result", "detail"], rows.map((r) => [r.check, r.target, r.result, r.detail])));
    if (missing.length) console.log(`\nmissing (${missing.length}):\n${missing.map((r) => `  - ${r.check}: ${r.target}: ${r.detail}`).join("\n")}`);
    else console.log("\nready: everything the run calls is served");
  }
  return missing;
}

export const { describe, run } = defineCommand({
  name: "preflight",
  describe: "check a run's models, context lengths, tokenizer, retrieval and judge key against what is served",
  usage: "RUN",
  intro: `Checks, for the run's configuration: each model has a healthy endpoint that lists it in
/v1/models; its max_model_len holds the profile's largest prompt budget; the tokenizer
loads (or the orchestrator's /tokenize answers); retrieval answers a probe for the
benchmark's backends; the judge's API key variable is set. Exit 1 when anything is missing.`,
  options: { server: SERVER, db: DB, json: JSON_OUTPUT },
  async run({ values, positionals }) {
    const ref = oneRun(positionals);
    const api = await openReader({ server: values.server, db: values.db });
    try {
      const run = await api.call<{ benchmark: string; config: unknown }>("GET", `/v1/runs/${encodeRef(ref)}`);
      const config = loadRunConfig({ benchmark: run.benchmark, config: run.config });
      return (await preflightConfig(api, config, values.json)).length === 0 ? 0 : 1;
    } finally {
      api.close();
    }
  },
});

/** `answer → Qwen/Qwen3-32B-FP8: 0 healthy; ...` when the run waits for endpoints, else null. */
export async function readWaiting(api: Api, runId: number): Promise<string | null> {
  const { runs } = await api.call<WaitingList>("GET", `/v1/waiting?run_id=${runId}`);
  const w = runs.find((r) => r.run_id === runId);
  return w ? w.needs.map(describeNeed).join("; ") : null;
}
