// The deployment file `baton launch` reads, and the sbatch scripts it writes from it: one job
// array per service, each array task running `baton endpoint-agent` around the service.
//
// The scripts avoid what broke hand-written ones: they are bash (not /bin/sh, which has no
// `source`), the user's setup runs with `set +u` (activation scripts read unset variables),
// the command is passed as one single-quoted argument (no --wrap quoting), output is line
// buffered into %x_%A_%a logs, and `--signal=B:USR1@N` gives the agent time to drain.
import { dirname, isAbsolute, join, resolve } from "node:path";
import * as v from "valibot";
import { AGENT_ROLES } from "../endpoint-agent";

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const Name = (what: string) => v.pipe(v.string(), v.regex(NAME, `expected ${what}: letters, digits, '.', '_' or '-' (at most 64, starting with a letter or digit)`));
// Served model names go into commands and URLs: Hugging Face ids and paths, nothing a shell would interpret.
const Model = v.pipe(v.string(), v.regex(/^[A-Za-z0-9._/:@+-]{1,200}$/, "expected a model name such as Qwen/Qwen3-32B (letters, digits and . _ / : @ + -)"));
const Slurm = v.pipe(v.string(), v.regex(/^[^\s'"\\$`;|&<>]{1,200}$/, "expected a Slurm value without spaces, quotes or shell characters"));
const Int = (min: number, max: number) => v.pipe(v.number("expected a number"), v.integer("expected an integer"), v.minValue(min, `expected at least ${min}`), v.maxValue(max, `expected at most ${max}`));

export const SbatchOptions = v.strictObject({
  partition: v.optional(Slurm),
  account: v.optional(Slurm),
  qos: v.optional(Slurm),
  gres: v.optional(Slurm),
  cpus_per_task: v.optional(Int(1, 4096)),
  mem: v.optional(Slurm),
  time: v.optional(Slurm),
  constraint: v.optional(Slurm),
  // more #SBATCH lines, each one option such as "--exclusive" or "--nodelist=gpu01"
  extra: v.optional(v.array(v.pipe(v.string(), v.regex(/^--[a-z][a-z-]*(=[^\s'"\\$`;|&<>]+)?$/, "expected one sbatch option such as --exclusive or --nodelist=gpu01")))),
});
export type SbatchOptions = v.InferOutput<typeof SbatchOptions>;

export const ServiceSpec = v.strictObject({
  name: Name("a service name"),
  role: v.picklist(AGENT_ROLES, `expected one of ${AGENT_ROLES.join(", ")}`),
  // LLM roles: the served model (what /v1/models lists and runs call)
  model: v.optional(Model),
  // retrieval: the backend name runs call (retrieval, the fallback, or wiki_retrieval, the primary)
  backend: v.optional(v.picklist(["retrieval", "wiki_retrieval"], "expected retrieval or wiki_retrieval")),
  replicas: v.optional(Int(1, 1000)),
  command: v.optional(v.pipe(v.string(), v.minLength(1, "expected a command"), v.maxLength(10_000))),
  setup: v.optional(v.pipe(v.string(), v.maxLength(100_000))),
  sbatch: v.optional(SbatchOptions),
  ready_timeout_ms: v.optional(Int(1_000, 24 * 3600_000)),
  grace_ms: v.optional(Int(0, 3600_000)),
  lease_ms: v.optional(Int(1_000, 3600_000)),
  // seconds before the time limit Slurm sends USR1 to the agent
  signal_before_s: v.optional(Int(10, 65_535)),
  probe_query: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(1_000))),
});
export type ServiceSpec = v.InferOutput<typeof ServiceSpec>;

export const Deployment = v.strictObject({
  name: Name("a deployment name"),
  // the Baton server agents register with (default: --server / $BATON_SERVER at launch)
  server: v.optional(v.pipe(v.string(), v.url("expected a URL such as http://login01:3000"))),
  // where scripts and %x_%A_%a logs go; relative to the deployment file (default baton-logs)
  log_dir: v.optional(v.pipe(v.string(), v.minLength(1))),
  // the Baton checkout the jobs run from (default: this one)
  baton_home: v.optional(v.pipe(v.string(), v.minLength(1))),
  // what {host} becomes (default 0.0.0.0), and the address runners connect to (default: the node's name)
  bind_host: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9.:_-]{1,253}$/, "expected a host name or IP address"))),
  advertise_host: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9.:_-]{1,253}$/, "expected a host name or IP address"))),
  setup: v.optional(v.pipe(v.string(), v.maxLength(100_000))),
  sbatch: v.optional(SbatchOptions),
  services: v.pipe(v.array(ServiceSpec), v.minLength(1, "expected at least one service")),
});
export type Deployment = v.InferOutput<typeof Deployment>;

export class DeploymentError extends Error {}

const LLM_DEFAULT = "vllm serve {model} --host {host} --port {port}";
// vLLM refuses tool_choice "auto" without these; the orchestrator's calls need them.
const ORCHESTRATOR_FLAGS = " --enable-auto-tool-choice --tool-call-parser hermes";

/** The command a service runs when the file gives none. null: the role has no default. */
export function defaultCommand(role: ServiceSpec["role"]): string | null {
  if (role === "retrieval") return null;
  return role === "orchestrator" ? LLM_DEFAULT + ORCHESTRATOR_FLAGS : LLM_DEFAULT;
}

export type ResolvedService = ServiceSpec & {
  registeredName: string;
  replicas: number;
  command: string;
  setup: string;
  sbatch: SbatchOptions;
  signalBeforeS: number;
  jobName: string;
};

export type ResolvedDeployment = {
  name: string;
  server: string;
  logDir: string;
  batonHome: string;
  bindHost: string;
  advertiseHost: string | null;
  services: ResolvedService[];
};

function issuePath(issue: v.BaseIssue<unknown>): string {
  let out = "";
  for (const p of issue.path ?? []) out += typeof p.key === "number" ? `[${p.key}]` : out ? `.${String(p.key)}` : String(p.key);
  return out || "deployment";
}

/** Validates a parsed deployment file; every problem names its field (services[1].replicas). */
export function resolveDeployment(raw: unknown, opts: { file: string; server: string | null; batonHome: string }): ResolvedDeployment {
  const parsed = v.safeParse(Deployment, raw);
  if (!parsed.success) {
    const lines = parsed.issues.map((i) => `${issuePath(i)}: ${i.kind === "schema" && i.type === "strict_object" ? `unknown setting` : i.message}`);
    throw new DeploymentError(lines.join("\n"));
  }
  const d = parsed.output;
  const problems: string[] = [];
  const seen = new Set<string>();
  const services = d.services.map((s, i) => {
    const at = `services[${i}]`;
    if (seen.has(s.name)) problems.push(`${at}.name: '${s.name}' is used by another service`);
    seen.add(s.name);
    if (s.role === "retrieval" && s.model) problems.push(`${at}.model: a retrieval service has a backend (retrieval or wiki_retrieval), not a model`);
    if (s.role !== "retrieval" && !s.model) problems.push(`${at}.model: required for role ${s.role} (the served model name runs call)`);
    if (s.role !== "retrieval" && s.backend) problems.push(`${at}.backend: only for role retrieval`);
    const command = s.command ?? defaultCommand(s.role);
    if (!command) problems.push(`${at}.command: required for role retrieval (e.g. "python retrieval_wiki.py --port {port}")`);
    else if (!command.includes("{port}")) problems.push(`${at}.command: must contain {port} (the agent picks a free port and fills it in)`);
    const sbatch = { ...d.sbatch, ...s.sbatch, extra: [...(d.sbatch?.extra ?? []), ...(s.sbatch?.extra ?? [])] };
    return {
      ...s,
      registeredName: s.role === "retrieval" ? (s.backend ?? "retrieval") : s.model!,
      replicas: s.replicas ?? 1,
      command: command ?? "",
      setup: [d.setup, s.setup].filter((x) => x && x.trim()).join("\n"),
      sbatch,
      signalBeforeS: s.signal_before_s ?? 120,
      jobName: `baton-${d.name}-${s.name}`,
    };
  });
  const server = d.server ?? opts.server;
  if (!server) problems.push("server: no Baton server: set \"server\" in the file, --server, or BATON_SERVER");
  if (problems.length) throw new DeploymentError(problems.join("\n"));
  const base = dirname(resolve(opts.file));
  const logDir = d.log_dir ? (isAbsolute(d.log_dir) ? d.log_dir : join(base, d.log_dir)) : join(base, "baton-logs");
  // #SBATCH --output cannot quote: a log path with spaces would be cut at the first one.
  if (/[\s%]/.test(logDir)) throw new DeploymentError(`log_dir: ${logDir} contains a space or '%'; choose a directory without them`);
  return {
    name: d.name,
    server: server!,
    logDir,
    batonHome: d.baton_home ? resolve(base, d.baton_home) : opts.batonHome,
    bindHost: d.bind_host ?? "0.0.0.0",
    advertiseHost: d.advertise_host ?? null,
    services,
  };
}

/** One single-quoted shell word: safe for any text, quotes and spaces included. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function sbatchLines(o: SbatchOptions): string[] {
  const lines: string[] = [];
  if (o.partition) lines.push(`--partition=${o.partition}`);
  if (o.account) lines.push(`--account=${o.account}`);
  if (o.qos) lines.push(`--qos=${o.qos}`);
  if (o.gres) lines.push(`--gres=${o.gres}`);
  if (o.cpus_per_task) lines.push(`--cpus-per-task=${o.cpus_per_task}`);
  if (o.mem) lines.push(`--mem=${o.mem}`);
  if (o.time) lines.push(`--time=${o.time}`);
  if (o.constraint) lines.push(`--constraint=${o.constraint}`);
  return [...lines, ...(o.extra ?? [])].map((l) => `#SBATCH ${l}`);
}

/** The bash script of one service's job array. */
export function renderScript(d: ResolvedDeployment, s: ResolvedService): string {
  const agent = [
    "--role", s.role,
    "--name", s.registeredName,
    "--service", s.name,
    "--command", s.command,
    "--bind-host", d.bindHost,
    ...(d.advertiseHost ? ["--advertise-host", d.advertiseHost] : []),
    ...(s.ready_timeout_ms != null ? ["--ready-timeout-ms", String(s.ready_timeout_ms)] : []),
    ...(s.grace_ms != null ? ["--grace-ms", String(s.grace_ms)] : []),
    ...(s.lease_ms != null ? ["--lease-ms", String(s.lease_ms)] : []),
    ...(s.probe_query != null ? ["--probe-query", s.probe_query] : []),
  ];
  const setup = s.setup.trim()
    ? `# The deployment's setup, as written. set +u: activation scripts read variables that may be unset.
set +u
trap 'echo "baton launch: the setup of service ${s.name} failed at line $LINENO of this script (exit $?)" >&2' ERR
${s.setup}
trap - ERR
set -u
`
    : "";
  return `#!/bin/bash
# Written by 'baton launch' for deployment ${d.name}, service ${s.name} (${s.role} ${s.registeredName}).
# One array task per replica; each runs 'baton endpoint-agent', which starts the service on a
# free port, registers it with the Baton server once ready, and drains it on USR1/TERM.
#SBATCH --job-name=${s.jobName}
#SBATCH --output=${d.logDir}/%x_%A_%a.out
#SBATCH --array=0-${s.replicas - 1}
#SBATCH --signal=B:USR1@${s.signalBeforeS}
${sbatchLines(s.sbatch).join("\n")}
set -euo pipefail
cd ${shellQuote(d.batonHome)}
export BATON_SERVER=${shellQuote(d.server)}
# Line by line into the log, from Python services too.
export PYTHONUNBUFFERED=1
# The checkout's pinned Bun first (a command such as 'bun cli/baton.ts sim vllm ...' uses it).
export PATH="$PWD/node_modules/.bin:$PATH"
${setup}BUN="$(command -v bun || true)"
if [[ -z "$BUN" ]]; then echo "baton launch: no bun in $PWD/node_modules/.bin or on PATH; run 'bun install' in $PWD" >&2; exit 2; fi
echo "baton launch: job \${SLURM_JOB_ID:-?} (array \${SLURM_ARRAY_JOB_ID:-none} task \${SLURM_ARRAY_TASK_ID:-none}) on $(hostname): service ${s.name}"
# exec: the agent receives Slurm's signals itself (USR1 before the time limit, TERM on cancel).
agent=(${agent.map(shellQuote).join(" ")})
if command -v stdbuf >/dev/null; then exec stdbuf -oL -eL "$BUN" cli/baton.ts endpoint-agent "\${agent[@]}"; fi
exec "$BUN" cli/baton.ts endpoint-agent "\${agent[@]}"
`;
}
