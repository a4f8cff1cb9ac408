// `baton sweep FILE.jsonl --benchmark B --config base.json --vary path=v1,v2 ...`: one run per
// combination of the varied values under one sweep id (--dry-run lists them first). Also
// the renderers `baton report --sweep ID` and the report's experiment section use.
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import type { compareWithParent, Lineage, RunStats, SweepReport, Vary } from "../../db/experiments";
import { validateJsonlTasks } from "../../db/runs";
import { toApiError } from "../../functions/errors";
import { defineCommand, JSON_OUTPUT, SERVER } from "../define-command";
import { type Api, CliError, createApi, encodeRef, formatColumns, formatPct, readJsonFile, usageError, printJson } from "./_api";

export function parseVary(spec: string): Vary {
  const eq = spec.indexOf("=");
  if (eq <= 0 || eq === spec.length - 1) throw usageError(`--vary ${JSON.stringify(spec)}: expected PATH=V1,V2,...`);
  const values = spec
    .slice(eq + 1)
    .split(",")
    .map((raw) => {
      const s = raw.trim();
      try {
        return JSON.parse(s) as unknown;
      } catch {
        return s;
      }
    });
  return { path: spec.slice(0, eq).trim(), values };
}

const S = (value: string, help: string) => ({ type: "string", value, help }) as const;

export const { describe, run } = defineCommand({
  name: "sweep",
  describe: "one run per combination of configuration values (--vary path=a,b), under one sweep id",
  usage: "FILE.jsonl --benchmark frames|hle --vary PATH=V1,V2",
  intro: `Every combination of the --vary values becomes one run of FILE with BASE.json and those
values set (PATH is a dotted configuration path: orchestrator.temperature, max_rounds, ...;
values are JSON where they parse as JSON, else strings). 'baton report --sweep ID' shows one
row per configuration with accuracy, its 95% interval, pass@k, tokens and p50/p95 per tool.`,
  options: {
    benchmark: S("B", "frames or hle"),
    vary: { type: "string", multiple: true, value: "PATH=V1,V2", help: "a configuration path and its values (repeatable: every combination)" },
    config: S("BASE.json", "the configuration every run starts from"),
    name: S("NAME", "sweep name, prefix of its run names (default: sweep-FILE)"),
    repeats: S("K", "attempt each question K times in every run"),
    "max-attempts": S("N", "attempts per task before it fails (default 3)"),
    priority: S("P", "higher is claimed first (default 0)"),
    "max-concurrency": S("N", "at most N of each run's tasks running at once"),
    "dry-run": { type: "boolean", default: false, help: "list the runs the sweep would create, create nothing" },
    json: { ...JSON_OUTPUT, help: "print the sweep and its runs as JSON" },
    server: SERVER,
  },
  async run({ values, positionals }) {
    if (positionals.length !== 1) throw usageError(`expected one FILE.jsonl, got ${positionals.length}`);
    if (!values.benchmark) throw usageError("--benchmark is required");
    if (!values.vary?.length) throw usageError("--vary PATH=V1,V2 is required (at least once)");
    const file = positionals[0];
    let rows: unknown[];
    try {
      rows = validateJsonlTasks(readFileSync(file, "utf8")).map((t) => t.input);
    } catch (err) {
      if (toApiError(err)) throw new CliError(`${file}: ${(err as Error).message}`);
      throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
    }
    const int = (flag: string, min: number) => {
      const v = (values as Record<string, unknown>)[flag] as string | undefined;
      if (v == null) return undefined;
      if (!/^-?\d+$/.test(v) || Number(v) < min) throw usageError(`--${flag}: expected an integer of at least ${min}`);
      return Number(v);
    };
    const body = {
      name: values.name ?? `sweep-${basename(file).replace(/\.[^.]*$/, "")}`,
      benchmark: values.benchmark,
      config: values.config ? readJsonFile(values.config, "--config") : undefined,
      vary: values.vary.map(parseVary),
      tasks: rows,
      repeats: int("repeats", 1),
      max_attempts: int("max-attempts", 1),
      priority: int("priority", -1_000_000),
      max_concurrency: int("max-concurrency", 1),
      dry_run: values["dry-run"],
    };
    const api = createApi({ server: values.server });
    const res = await api.call<{ sweep_id: number | null; runs: { run_id: number | null; name: string; values: Record<string, unknown> }[] }>("POST", "/v1/sweeps", {
      json: body,
      timeoutMs: 10 * 60_000,
    });
    if (values.json) {
      printJson(res);
      return 0;
    }
    const per = rows.length * (body.repeats ?? 1);
    console.log(res.sweep_id == null ? `dry run: ${res.runs.length} runs of ${per} tasks would be created` : `sweep ${res.sweep_id}: ${res.runs.length} runs of ${per} tasks queued`);
    console.log(formatColumns(["run", "name"], res.runs.map((r) => [r.run_id == null ? "-" : String(r.run_id), r.name])));
    if (res.sweep_id != null) console.log(`  compare them with: bun run baton report --sweep ${res.sweep_id}`);
    return 0;
  },
});

// ---------------------------------------------------------------- reading (report --sweep)

// (baton report reads these through the API routes, from the server or the file read-only)

const pct = formatPct;
const interval = (s: RunStats) => (s.interval ? `[${pct(s.interval.lo)}, ${pct(s.interval.hi)}]` : "-");
const ms = (x: number | null) => (x == null ? "-" : x < 1000 ? `${x.toFixed(0)}ms` : `${(x / 1000).toFixed(2)}s`);

export function renderRunStats(s: RunStats): string {
  const lines = [`Accuracy ${pct(s.accuracy)} (${s.correct}/${s.finished} finished; failures count as wrong), 95% Wilson interval ${interval(s)}`];
  if (s.repeats > 1) {
    const ks = Object.keys(s.pass_at_k);
    lines.push(`  repeats ${s.repeats} over ${s.questions} questions:  ${ks.map((k) => `pass@${k} ${pct(s.pass_at_k[k])}`).join("  ")}`);
    lines.push(`  ${" ".repeat(`repeats ${s.repeats} over ${s.questions} questions:`.length)}  ${ks.map((k) => `pass^${k} ${pct(s.pass_hat_k[k])}`).join("  ")}`);
    const c = s.consistency;
    lines.push(`  consistency: ${pct(c.consistent)} of questions answered alike every time (${c.all_correct} always right, ${c.all_wrong} always wrong, ${c.mixed} mixed)`);
  }
  return lines.join("\n");
}

export function renderSweepReport(r: SweepReport): string {
  const tools = [...new Set(r.rows.flatMap((x) => Object.keys(x.tools)))].sort();
  const head = ["run", ...r.vary.map((v) => v.path), "tasks", "accuracy", "95% interval", ...(r.repeats > 1 ? [`pass@${r.repeats}`, `pass^${r.repeats}`] : []), "tokens in/out", ...tools.map((t) => `${t} p50/p95`), "vs best"];
  const body = r.rows.map((x) => [
    String(x.run_id),
    ...r.vary.map((v) => JSON.stringify(x.values[v.path])),
    `${x.finished}/${x.tasks}`,
    pct(x.accuracy),
    interval(x),
    ...(r.repeats > 1 ? [pct(x.pass_at_k[r.repeats]), pct(x.pass_hat_k[r.repeats])] : []),
    `${x.prompt_tokens}/${x.completion_tokens}`,
    ...tools.map((t) => (x.tools[t] ? `${ms(x.tools[t].p50)}/${ms(x.tools[t].p95)}` : "-")),
    x.best ? "best" : x.significant === false ? `n.s. (p=${x.p_value_vs_best!.toFixed(2)})` : x.significant ? `p=${x.p_value_vs_best!.toFixed(3)}` : "-",
  ]);
  return [
    `Sweep ${r.sweep_id} (${r.name}, ${r.benchmark}): ${r.rows.length} configurations${r.repeats > 1 ? `, ${r.repeats} repeats each` : ""}`,
    formatColumns(head, body),
    "n.s.: not significantly different from the best configuration (two-proportion test, 5%)",
  ].join("\n");
}

export function renderParentCompare(c: Awaited<ReturnType<typeof compareWithParent>>): string {
  return [
    `Run ${c.run_id} re-ran ${c.tasks.length} tasks of run ${c.parent_run_id}: ${c.fixed} now succeed, ${c.still_failing} still fail; correct ${c.parent_correct} → ${c.child_correct}`,
    formatColumns(
      ["id", "repeat", "before", "after"],
      c.tasks.map((t) => [t.external_id, String(t.repeat), `${t.parent.status}${t.parent.error_class ? ` ${t.parent.error_class}` : ""}`, `${t.child.status}${t.child.error_class ? ` ${t.child.error_class}` : t.child.correct != null ? (t.child.correct ? " correct" : " wrong") : ""}`]),
    ),
  ].join("\n");
}

/** Lines for `baton status`: what the run was derived from or into, its sweep, its claim controls. */
export function formatLinks(l: Lineage): string[] {
  const out: string[] = [];
  if (l.parent_run_id != null) out.push(`  re-runs    tasks of run ${l.parent_run_id} (baton report RUN --compare parent)`);
  if (l.children.length) out.push(`  re-run by  ${l.children.map((c) => `run ${c.id} (${c.tasks} tasks)`).join(", ")}`);
  if (l.sweep_id != null) out.push(`  sweep      ${l.sweep_id}: ${Object.entries(l.sweep_values ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ")}`);
  if (l.repeats > 1) out.push(`  repeats    ${l.repeats} per question`);
  if (l.priority !== 0 || l.max_concurrency != null) out.push(`  claim      priority ${l.priority}, max concurrency ${l.max_concurrency ?? "none"}`);
  return out;
}

/** The links of a run, or none from a server without the route. */
export async function readLinks(api: Api, runId: number): Promise<string[]> {
  try {
    return formatLinks(await api.call<Lineage>("GET", `/v1/runs/${runId}/links`));
  } catch {
    return [];
  }
}
