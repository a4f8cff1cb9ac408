// `baton launch DEPLOY.json`: one Slurm job array per service of a deployment file, each task
// running `baton endpoint-agent` (runner/endpoint-agent.ts) around the service. `status` joins
// Slurm's view of those jobs with the endpoints they registered (and why a task failed, from
// its log); `stop` drains them (USR1 to the agent) or cancels them outright (--now).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { DeploymentError, renderScript, resolveDeployment, type ResolvedDeployment } from "../../runner/launch/deploy";
import { execCommand } from "../../runner/slurm";
import type { EndpointOut } from "../../functions/endpoints";
import { defineCommand, JSON_OUTPUT, SERVER } from "../define-command";
import { CliError, createApi, formatColumns, readJsonFile, usageError } from "./_api";
import { listAllEndpoints } from "./endpoints";

const REPO = resolve(import.meta.dir, "../..");

// job_id: the latest submission; earlier_job_ids: the service's earlier arrays (a launch --only
// that adds or replaces replicas), still shown and stopped while Slurm knows them.
type LaunchRecord = {
  deployment: string;
  file: string;
  services: Record<string, { job_id: string; earlier_job_ids?: string[]; replicas: number; role: string; name: string; script: string; submitted_at: number }>;
};

function jobsOf(s: LaunchRecord["services"][string]): string[] {
  return [...(s.earlier_job_ids ?? []), s.job_id];
}

function recordPath(d: ResolvedDeployment): string {
  return join(d.logDir, `launch-${d.name}.json`);
}

function readRecord(d: ResolvedDeployment): LaunchRecord | null {
  const p = recordPath(d);
  if (!existsSync(p)) return null;
  return JSON.parse(readFileSync(p, "utf8")) as LaunchRecord;
}

function loadDeployment(file: string, server: string | undefined): ResolvedDeployment {
  const raw = readJsonFile(file, "deployment");
  try {
    return resolveDeployment(raw, { file, server: server ?? process.env.BATON_SERVER ?? null, batonHome: REPO });
  } catch (err) {
    if (err instanceof DeploymentError) throw new CliError(`${file}:\n${err.message}`);
    throw err;
  }
}

async function submit(file: string, values: { "dry-run"?: boolean; only?: string; server?: string }): Promise<number> {
  const d = loadDeployment(file, values.server);
  const only = values.only ? values.only.split(",").map((s) => s.trim()).filter(Boolean) : null;
  for (const name of only ?? []) if (!d.services.some((s) => s.name === name)) throw usageError(`--only: no service '${name}' in ${file}`);
  const services = d.services.filter((s) => !only || only.includes(s.name));
  if (values["dry-run"]) {
    for (const s of services) console.log(`# ---- ${s.jobName}.sbatch ----\n${renderScript(d, s)}`);
    return 0;
  }
  mkdirSync(d.logDir, { recursive: true });
  const record: LaunchRecord = readRecord(d) ?? { deployment: d.name, file: resolve(file), services: {} };
  const rows: string[][] = [];
  for (const s of services) {
    const script = join(d.logDir, `${s.jobName}.sbatch`);
    writeFileSync(script, renderScript(d, s), { mode: 0o644 });
    const res = await execCommand(["sbatch", "--parsable", script], { timeoutMs: 60_000, env: process.env });
    if (res.code !== 0) {
      writeFileSync(recordPath(d), `${JSON.stringify(record, null, 2)}\n`);
      throw new CliError(`sbatch ${script} failed for service ${s.name}: ${(res.stderr || res.stdout).trim() || `exit ${res.code}`}`);
    }
    const jobId = res.stdout.trim().split(";")[0]!;
    const before = record.services[s.name];
    const earlier = before ? jobsOf(before) : [];
    record.services[s.name] = { job_id: jobId, earlier_job_ids: earlier, replicas: s.replicas, role: s.role, name: s.registeredName, script, submitted_at: Date.now() };
    rows.push([s.name, s.role, s.registeredName, String(s.replicas), jobId]);
  }
  writeFileSync(recordPath(d), `${JSON.stringify(record, null, 2)}\n`);
  console.log(formatColumns(["service", "role", "serves", "replicas", "job"], rows));
  console.log(`logs: ${d.logDir}/<job name>_<job>_<task>.out; 'baton launch status ${file}' shows their endpoints`);
  return 0;
}

type TaskRow = { service: string; task: string; arrayJobId: string; index: string; state: string; node: string };

/** Every array task of the recorded jobs that Slurm still knows (pending ranges expanded). */
async function slurmTasks(record: LaunchRecord): Promise<TaskRow[]> {
  const byJob = new Map(Object.entries(record.services).flatMap(([name, s]) => jobsOf(s).map((id) => [id, name] as const)));
  if (byJob.size === 0) return [];
  const res = await execCommand(["squeue", "-h", "-r", "-t", "all", "-j", [...byJob.keys()].join(","), "-o", "%i|%F|%K|%T|%N"], {
    timeoutMs: 30_000,
    env: process.env,
  });
  // squeue exits non-zero when every job id is too old to be listed: then nothing is known.
  if (res.code !== 0 && !/Invalid job id/i.test(res.stderr)) throw new CliError(`squeue failed: ${res.stderr.trim() || `exit ${res.code}`}`);
  const rows: TaskRow[] = [];
  for (const line of res.stdout.split("\n")) {
    const [task, arrayJobId, index, state, node] = line.trim().split("|");
    if (!task || !arrayJobId || !byJob.has(arrayJobId)) continue;
    rows.push({ service: byJob.get(arrayJobId)!, task, arrayJobId, index: index ?? "", state: state ?? "?", node: node ?? "" });
  }
  return rows;
}

/** The agent's FAILED line (or the script's own complaint) from a task's log. */
export function failureFromLog(text: string): string | null {
  const lines = text.split("\n");
  const failed = lines.findLast((l) => l.startsWith("endpoint-agent: FAILED: "));
  if (failed) {
    const tail = lines.filter((l) => l.startsWith("  | ")).slice(-3).map((l) => l.slice(4).trim());
    return `${failed.slice("endpoint-agent: FAILED: ".length)}${tail.length ? ` — ${tail.join(" / ")}` : ""}`;
  }
  const script = lines.findLast((l) => l.startsWith("baton launch: ") && !l.includes(": job "));
  return script ? script.slice("baton launch: ".length) : null;
}

async function status(file: string, values: { json?: boolean; server?: string }): Promise<number> {
  const d = loadDeployment(file, values.server);
  const record = readRecord(d);
  if (!record) throw new CliError(`nothing launched from ${file} yet (no ${recordPath(d)}); run 'baton launch ${file}'`);
  const tasks = await slurmTasks(record);
  let endpoints: EndpointOut[] = [];
  let serverNote = "";
  try {
    endpoints = await listAllEndpoints(createApi({ server: values.server ?? d.server }));
  } catch (err) {
    serverNote = `endpoints unknown: ${(err as Error).message}`;
  }
  const out: Record<string, string>[] = [];
  for (const [service, s] of Object.entries(record.services)) {
    const known = tasks.filter((t) => t.service === service);
    // Tasks Slurm no longer lists (finished a while ago) are still shown, from their logs.
    const latest = new Set(known.filter((t) => t.arrayJobId === s.job_id).map((t) => t.index));
    for (let i = 0; i < s.replicas; i++) if (!latest.has(String(i))) known.push({ service, task: `${s.job_id}_${i}`, arrayJobId: s.job_id, index: String(i), state: "(finished)", node: "" });
    for (const t of known.sort((a, b) => Number(a.arrayJobId) - Number(b.arrayJobId) || Number(a.index) - Number(b.index))) {
      const ep = endpoints.find((e) => e.slurm_array_job_id === t.arrayJobId && e.slurm_array_task_id === t.index);
      const log = join(d.logDir, `baton-${d.name}-${service}_${t.arrayJobId}_${t.index}.out`);
      const reason = t.state === "RUNNING" && ep ? null : existsSync(log) ? failureFromLog(readFileSync(log, "utf8")) : null;
      out.push({
        service,
        role: s.role,
        serves: s.name,
        task: t.task,
        slurm: t.state,
        node: t.node || "-",
        endpoint: ep?.base_url ?? "-",
        state: ep?.state ?? (t.state === "RUNNING" ? "starting" : "-"),
        reason: reason ?? "",
      });
    }
  }
  if (values.json) console.log(JSON.stringify({ deployment: d.name, tasks: out, ...(serverNote ? { note: serverNote } : {}) }, null, 2));
  else {
    const head = ["service", "role", "serves", "task", "slurm", "node", "endpoint", "state", "reason"];
    console.log(formatColumns(head, out.map((r) => head.map((h) => r[h]))));
    if (serverNote) console.log(serverNote);
  }
  return 0;
}

async function stop(file: string, names: string[], values: { all?: boolean; now?: boolean; server?: string }): Promise<number> {
  const d = loadDeployment(file, values.server);
  const record = readRecord(d);
  if (!record) throw new CliError(`nothing launched from ${file} yet (no ${recordPath(d)})`);
  if (!values.all && names.length === 0) throw usageError("name a service to stop, or --all");
  const chosen = values.all ? Object.keys(record.services) : names;
  for (const n of chosen) if (!record.services[n]) throw usageError(`no launched service '${n}' (launched: ${Object.keys(record.services).join(", ")})`);
  // Only arrays Slurm still runs or holds: scancel fails on one that is long gone.
  const alive = new Set((await slurmTasks(record)).filter((t) => t.state === "RUNNING" || t.state === "PENDING").map((t) => t.arrayJobId));
  const ids = chosen.flatMap((n) => jobsOf(record.services[n]!)).filter((id) => alive.has(id));
  if (ids.length === 0) {
    console.log(`nothing to stop: no task of ${chosen.join(", ")} is pending or running`);
    return 0;
  }
  const run = async (argv: string[]) => {
    const res = await execCommand(argv, { timeoutMs: 30_000, env: process.env });
    if (res.code !== 0) throw new CliError(`${argv.join(" ")} failed: ${res.stderr.trim() || `exit ${res.code}`}`);
  };
  if (values.now) await run(["scancel", ...ids]);
  else {
    // Pending tasks have no agent to drain; running ones get USR1 in their batch shell (the agent).
    await run(["scancel", "--state=PENDING", ...ids]);
    await run(["scancel", "--batch", "--signal=USR1", ...ids]);
  }
  const jobsText = (n: string) => jobsOf(record.services[n]!).filter((id) => alive.has(id)).join(", ") || "none running";
  console.log(`${values.now ? "cancelled" : "draining"}: ${chosen.map((n) => `${n} (job ${jobsText(n)})`).join(", ")}`);
  return 0;
}

export const { describe, run } = defineCommand({
  name: "launch",
  describe: "launch a deployment file's services as Slurm jobs that register themselves; launch status | launch stop",
  usage: ["DEPLOY.json [--dry-run] [--only NAME[,NAME...]]", "status [DEPLOY.json] [--json]", "stop [DEPLOY.json] NAME|--all [--now]"],
  intro: `launch   submits one job array per service (one task per replica) and prints the job ids;
         --dry-run prints the sbatch scripts instead. Scripts and logs (%x_%A_%a.out) go to
         the file's log_dir (default baton-logs/ beside it).
status   each service's array tasks: Slurm state, node, the endpoint it registered and its
         state (healthy, draining, gone), and for a failed task the reason from its log.
stop     drains: Slurm sends USR1 to each agent, which stops new calls, lets calls in flight
         finish, deregisters and stops its service; pending tasks are cancelled. --now cancels
         at once (scancel): in-flight calls are retried elsewhere by the runners.
DEPLOY.json defaults to ./deploy.json for status and stop.`,
  options: {
    "dry-run": { type: "boolean", help: "launch: print the sbatch scripts, submit nothing" },
    only: { type: "string", value: "NAMES", help: "launch: only these services (comma-separated)" },
    all: { type: "boolean", help: "stop: every launched service" },
    now: { type: "boolean", help: "stop: cancel at once instead of draining" },
    server: SERVER,
    json: { ...JSON_OUTPUT, help: "status: print the tasks as JSON" },
  },
  async run({ values, positionals }) {
    const [first, ...rest] = positionals;
    if (!first) throw usageError("expected a deployment file, or status / stop");
    if (first === "status" || first === "stop") {
      const file = rest[0]?.endsWith(".json") ? rest.shift()! : "deploy.json";
      if (first === "status") {
        if (rest.length) throw usageError(`status takes only the deployment file, got ${rest.join(" ")}`);
        return status(file, values);
      }
      return stop(file, rest, values);
    }
    if (rest.length) throw usageError(`expected one deployment file, got ${positionals.join(" ")}`);
    return submit(first, values);
  },
});
