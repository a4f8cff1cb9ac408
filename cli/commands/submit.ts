// `baton submit FILE.jsonl`: checks the file locally (errors name the line), then POSTs
// the run as JSON so the config travels with it.
import { readFileSync } from "node:fs";
import { validateJsonlTasks, validateTasks } from "../../db/runs";
import { toApiError } from "../../functions/errors";
import { formatConfigIssues, readConfigDocument } from "../../db/config-wire";
import { configAtPath, mergeConfig } from "../../db/experiments";
import { resolveRunConfig } from "../../runner/config";
import { defineCommand, JSON_OUTPUT, SERVER } from "../define-command";
import { CliError, createApi, readJsonFile, usageError, printJson } from "./_api";
import { preflightConfig } from "./preflight";

const S = (value: string, help: string) => ({ type: "string", value, help }) as const;

export const { describe, run } = defineCommand({
  name: "submit",
  describe: "submit a dataset (JSONL: id, question, answer, ...) as a new run; prints the run id",
  usage: ["FILE.jsonl --name NAME --benchmark frames|hle", "--from RUN (--failed | --not-succeeded | --error-class C | --ids FILE)"],
  intro: `FILE is JSONL (one task per line) or a JSON array; each task needs id and question, all other
fields (answer, answer_type, image, ...) are kept. --config is the run configuration (models,
budgets, prompts; snake_case like the API: max_rounds, orchestrator.max_tokens); omitted
settings take the defaults. With --idempotency-key, submitting again
returns the first run instead of creating a second one.`,
  options: {
    name: S("NAME", "run name (status, report and the UI accept it instead of the id)"),
    benchmark: S("B", "frames or hle: picks the prompt template and grading"),
    config: S("FILE.json", "run configuration; unknown or invalid settings are refused by path"),
    profile: S("P", "toolorchestra (default: what the reference scripts send) or baton\n(Baton's own protocol); the same as \"profile\" in --config"),
    "max-attempts": S("N", "attempts per task before it fails (default 3)"),
    set: {
      type: "string",
      multiple: true,
      value: "PATH=VALUE",
      help: "one configuration setting (repeatable), merged over --config:\n--set orchestrator.max_tokens=32000 (VALUE is JSON where it parses, else a string)",
    },
    repeats: S("K", "attempt each question K times (K tasks, repeat 0..K-1 beside the id);\nthe report gives accuracy with its interval, pass@k and pass^k"),
    priority: S("P", "higher is claimed first (default 0; FIFO within a priority)"),
    "max-concurrency": S("N", "at most N of this run's tasks running at once, across all runners"),
    from: S(
      "RUN",
      `a derived run: re-run a subset of RUN's tasks with RUN's resolved
configuration; --config then holds only the overrides merged onto it
(e.g. {"orchestrator": {"max_tokens": 32000}}). Pick the subset with
--failed, --not-succeeded, --error-class C or --ids FILE (one id a line)`,
    ),
    failed: { type: "boolean", default: false, help: "with --from: the tasks that failed" },
    "not-succeeded": { type: "boolean", default: false, help: "with --from: every task that did not succeed" },
    "error-class": S("C", "with --from: the tasks that failed with this error class"),
    ids: S("FILE", "with --from: the tasks whose ids FILE lists (one a line)"),
    "idempotency-key": S("KEY", "a repeat with the same key returns the first run"),
    preflight: {
      type: "boolean",
      default: false,
      help: "first check that every model and retrieval backend the run calls is\nserved (as 'baton preflight'); submit nothing when something is missing",
    },
    json: { ...JSON_OUTPUT, help: "print the created run as JSON" },
    server: SERVER,
  },
  async run({ values, positionals }) {
    const controls = readControls(values);
    if (values.from != null) return submitDerived(values, positionals, controls);
    const file = positionals[0];
    if (!file || positionals.length > 1) throw usageError(`expected one FILE.jsonl, got ${positionals.length}`);
    if (!values.name) throw usageError("--name is required");
    if (!values.benchmark) throw usageError("--benchmark is required (frames, hle, ...)");
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
    }
    let rows: unknown[];
    try {
      if (/^\s*\[/.test(text)) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch (err) {
          throw new CliError(`${file}: invalid JSON (${(err as Error).message})`);
        }
        rows = validateTasks({ rows: parsed as unknown[] }).map((t) => t.input);
      } else {
        rows = validateJsonlTasks(text).map((t) => t.input);
      }
    } catch (err) {
      if (toApiError(err)) throw new CliError(`${file}: ${(err as Error).message}`);
      throw err;
    }
    let config = withSettings(values.config ? readJsonFile(values.config, "--config") : undefined, values.set);
    if (values.profile) {
      if (config != null && (typeof config !== "object" || Array.isArray(config))) throw new CliError("--config: must be a JSON object");
      config = { ...(config as Record<string, unknown> | undefined), profile: values.profile };
    }
    let maxAttempts: number | undefined;
    if (values["max-attempts"] != null) {
      maxAttempts = Number(values["max-attempts"]);
      if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw usageError("--max-attempts: expected a positive integer");
    }
    const api = createApi({ server: values.server });
    if (values.preflight) {
      // the file is in the API's snake_case; resolving is done in the code's spelling
      const read = readConfigDocument({ document: config });
      if (!read.ok) throw new CliError(`--config: ${formatConfigIssues(read.issues)}`);
      const resolved = resolveRunConfig({ benchmark: values.benchmark, config: read.config });
      if (!resolved.ok) throw new CliError(`--config: ${resolved.issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`);
      const missing = await preflightConfig(api, resolved.config);
      if (missing.length) throw new CliError(`preflight: ${missing.length} missing; nothing submitted (launch what is missing, or submit without --preflight: the run waits for it)`);
    }
    const headers: Record<string, string> = {};
    if (values["idempotency-key"]) headers["idempotency-key"] = values["idempotency-key"];
    const res = await api.call<{ id: number; name: string; tasks: number; created: boolean }>("POST", "/v1/runs", {
      json: { name: values.name, benchmark: values.benchmark, config, tasks: rows, max_attempts: maxAttempts, ...controls },
      headers,
      timeoutMs: 10 * 60_000,
    });
    if (values.json) printJson(res);
    else {
      console.log(
        res.created
          ? `run ${res.id} (${res.name}): ${res.tasks} tasks queued`
          : `run ${res.id} (${res.name}) already exists for this idempotency key: ${res.tasks} tasks`,
      );
      console.log(`  follow it with: bun run baton status ${res.id} --watch`);
    }
    return 0;
  },
});

function intFlag(value: string | undefined, flag: string, min: number): number | undefined {
  if (value == null) return undefined;
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) throw usageError(`${flag}: expected an integer of at least ${min}`);
  return n;
}

type Controls = { repeats?: number; priority?: number; max_concurrency?: number };

function readControls(values: Record<string, unknown>): Controls {
  const out: Controls = {};
  const repeats = intFlag(values.repeats as string | undefined, "--repeats", 1);
  const priority = intFlag(values.priority as string | undefined, "--priority", -1_000_000);
  const maxConcurrency = intFlag(values["max-concurrency"] as string | undefined, "--max-concurrency", 1);
  if (repeats != null) out.repeats = repeats;
  if (priority != null) out.priority = priority;
  if (maxConcurrency != null) out.max_concurrency = maxConcurrency;
  return out;
}

/** `submit --from RUN --failed ...`: POST /v1/runs/RUN/rerun with the selector and overrides. */
async function submitDerived(values: Record<string, any>, positionals: string[], controls: Controls): Promise<number> {
  if (positionals.length) throw usageError("--from takes no FILE: the tasks come from the parent run");
  if (controls.repeats != null) throw usageError("--repeats does not combine with --from (a re-run keeps each task's repeat)");
  const chosen = [values.failed && "--failed", values["not-succeeded"] && "--not-succeeded", values["error-class"] != null && "--error-class", values.ids != null && "--ids"].filter(Boolean);
  if (chosen.length !== 1) throw usageError(`--from needs exactly one of --failed, --not-succeeded, --error-class C, --ids FILE (got ${chosen.length ? chosen.join(", ") : "none"})`);
  let select: unknown = values.failed ? "failed" : values["not-succeeded"] ? "not_succeeded" : undefined;
  if (values["error-class"] != null) select = { error_class: values["error-class"] };
  if (values.ids != null) {
    let text: string;
    try {
      text = readFileSync(values.ids, "utf8");
    } catch (err) {
      throw new CliError(`--ids: cannot read ${values.ids}: ${(err as Error).message}`);
    }
    const ids = text.split("\n").map((l) => l.trim()).filter(Boolean);
    if (ids.length === 0) throw new CliError(`--ids: ${values.ids} lists no id`);
    select = { ids };
  }
  const config = withSettings(values.config ? readJsonFile(values.config, "--config") : undefined, values.set);
  let maxAttempts: number | undefined;
  if (values["max-attempts"] != null) maxAttempts = intFlag(values["max-attempts"], "--max-attempts", 1);
  const headers: Record<string, string> = {};
  if (values["idempotency-key"]) headers["idempotency-key"] = values["idempotency-key"];
  const api = createApi({ server: values.server });
  const res = await api.call<{ id: number; name: string; tasks: number; created: boolean; parent_run_id: number }>(
    "POST",
    `/v1/runs/${encodeURIComponent(values.from)}/rerun`,
    { json: { select, config, name: values.name, max_attempts: maxAttempts, priority: controls.priority, max_concurrency: controls.max_concurrency }, headers },
  );
  if (values.json) printJson(res);
  else {
    console.log(`run ${res.id} (${res.name}): ${res.tasks} tasks of run ${res.parent_run_id} queued again`);
    console.log(`  follow it with: bun run baton status ${res.id} --watch`);
  }
  return 0;
}

/** --config's object with each --set PATH=VALUE merged over it (VALUE is JSON when it parses). */
export function withSettings(config: unknown, settings: string[] | undefined): unknown {
  if (!settings?.length) return config;
  if (config != null && (typeof config !== "object" || Array.isArray(config))) throw new CliError("--config: must be a JSON object");
  let out = (config ?? {}) as Record<string, unknown>;
  for (const s of settings) {
    const eq = s.indexOf("=");
    const path = s.slice(0, eq).trim();
    if (eq <= 0 || !/^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$/.test(path)) throw usageError(`--set ${JSON.stringify(s)}: expected PATH=VALUE with a dotted configuration path`);
    const raw = s.slice(eq + 1).trim();
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {}
    out = mergeConfig(out, configAtPath(path, value));
  }
  return out;
}
