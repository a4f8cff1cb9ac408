// `baton launch` on a real Slurm (scripts/setup-slurm.sh, one node): simulated vLLM and
// retrieval services run as job arrays whose endpoint agents register them with a Baton
// server in this process (all on 127.0.0.1); a run submitted before its retrieval exists
// waits without spending an attempt, then completes; a cancelled replica drains away, a
// killed agent's endpoint goes `gone`, and a failing service says why. Needs root on Debian.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { closeDb, type Db, openDb } from "../../db/client";
import { writeConfigDocument } from "../../db/config-wire";
import { createApp } from "../../functions/index";
import { HttpQueue } from "../../runner/queue-http";
import { resolveDeployment } from "../../runner/launch/deploy";
import { Runner } from "../../runner/runner";
import { EXPERT_MODELS, ORCHESTRATOR_MODEL } from "../../sim/models";

const REPO = resolve(import.meta.dir, "../..");
const BUN = join(REPO, "node_modules/.bin/bun");
const TOKEN = "launch-test-token";
const EXPERT = EXPERT_MODELS[0]!;

function unsupportedReason(): string | null {
  if (process.platform !== "linux") return `not Linux (${process.platform})`;
  if (process.getuid?.() !== 0) return "not root: setup-slurm.sh installs packages and starts system daemons";
  if (!existsSync("/etc/debian_version")) return "not Debian/Ubuntu: setup-slurm.sh uses Debian's slurm-wlm packages";
  return null;
}
const SKIP = unsupportedReason();
if (SKIP) console.warn(`\n*** SLURM LAUNCH TESTS SKIPPED: ${SKIP} ***\n`);

type Ran = { code: number; stdout: string; stderr: string };
// Asynchronous: the Baton server these commands talk to runs in this very process.
async function sh(argv: string[], timeoutMs = 60_000): Promise<Ran> {
  const proc = Bun.spawn(argv, {
    cwd: work || REPO,
    env: { ...process.env, BATON_TOKEN: TOKEN, BATON_SERVER: server } as Record<string, string>,
    stdout: "pipe",
    stderr: "pipe",
    timeout: timeoutMs,
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code: code ?? -1, stdout, stderr };
}
const baton = (...args: string[]) => sh([BUN, join(REPO, "cli/baton.ts"), ...args]);

async function waitFor<T>(what: string, fn: () => T | null | undefined | false | Promise<T | null | undefined | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(200);
  }
}

async function q<T = any>(sql: string, args: any[] = []): Promise<T[]> {
  return (await db.$client.execute({ sql, args })).rows as unknown as T[];
}

let work = "";
let server = "";
let db: Db;
let app: ReturnType<typeof createApp>;
const jobIds: string[] = [];

// Simulators stand in for vLLM exactly as a user's deployment would start vLLM. The setup
// reads a variable nobody set and the commands carry quotes and spaces: the generated
// scripts must survive both (bash, set +u around the setup, one quoted argument).
const SIM = "bun cli/baton.ts sim";
function deployment(services: unknown[]) {
  return {
    name: "it",
    server,
    log_dir: "logs",
    baton_home: REPO,
    bind_host: "127.0.0.1",
    advertise_host: "127.0.0.1",
    setup: 'echo "setup sees [${BATON_SURELY_UNSET_VARIABLE}]"; export GREETING="hello  world"',
    sbatch: { time: "15" },
    services,
  };
}
const llm = (name: string, role: string, model: string, mode: string, extra: Record<string, unknown> = {}) => ({
  name,
  role,
  model,
  replicas: 2,
  lease_ms: 3_000,
  grace_ms: 3_000,
  command: `echo "starting: $GREETING's \\"sim\\"" && ${SIM} vllm --model "{model}" --host {host} --port {port} --mode '${mode}' --latency-ms 60 --max-model-len 200000`,
  ...extra,
});
const MODELS = [llm("orch", "orchestrator", ORCHESTRATOR_MODEL, "orchestrator"), llm("expert", "expert_llm", EXPERT, "expert")];
const RETRIEVAL = { name: "wiki", role: "retrieval", backend: "wiki_retrieval", lease_ms: 3_000, command: `${SIM} retrieval --host {host} --port {port} --latency-ms 20` };
const BROKEN = { name: "broken", role: "retrieval", command: `echo "index file 'missing index' not found" >&2; exit 3 # {port}` };

const FAST = { attempts: 4, perAttemptTimeoutMs: 5_000, deadlineMs: 20_000, baseDelayMs: 20, maxDelayMs: 200 };
// in the code's spelling; sent through writeConfigDocument (the API takes snake_case)
const RUN_CONFIG = {
  maxRounds: 8,
  orchestrator: { history: "messages", policy: FAST },
  queryLlm: { policy: FAST },
  coder: { policy: FAST },
  answerer: { policy: FAST },
  judge: { model: EXPERT, endpoint: null, policy: FAST },
  models: { "search-1": EXPERT, "reasoner-1": EXPERT, "answer-1": EXPERT },
  toolModels: { search: ["search-1"], enhance_reasoning: ["reasoner-1"], answer: ["answer-1"] },
  retrieval: { topk: 3, backends: ["wiki_retrieval", "retrieval"], policy: { attempts: 2, perAttemptTimeoutMs: 2_000, deadlineMs: 5_000, baseDelayMs: 10, maxDelayMs: 50 } },
  sandbox: { timeoutMs: 5_000, memoryMb: 256 },
  tokenizer: { mode: "chars" },
};

async function launch(file: string, ...args: string[]): Promise<string[]> {
  const res = await baton("launch", file, ...args);
  if (res.code !== 0) throw new Error(`baton launch failed (${res.code}): ${res.stderr}${res.stdout}`);
  // the table: service role serves replicas job
  const ids = res.stdout.split("\n").slice(1).map((l) => l.trim().split(/\s+/)[4]).filter((x): x is string => !!x && /^\d+$/.test(x));
  jobIds.push(...ids);
  return ids;
}

type Ep = { id: number; name: string; base_url: string; state: string; role: string; node: string; slurm_array_job_id: string; slurm_array_task_id: string };
const endpoints = () =>
  q<Ep>(
    `SELECT id, name, base_url, role, node, slurm_array_job_id, slurm_array_task_id,
       CASE WHEN lease_expires_at < cast(unixepoch('subsec') * 1000 as integer) THEN 'gone' ELSE state END AS state FROM endpoints ORDER BY id`,
  );

describe.skipIf(!!SKIP)("baton launch on Slurm", () => {
  beforeAll(async () => {
    const res = Bun.spawnSync(["bash", join(REPO, "scripts/setup-slurm.sh")], { stdout: "pipe", stderr: "pipe", timeout: 240_000 });
    if (res.exitCode !== 0) throw new Error(`scripts/setup-slurm.sh could not start Slurm:\n${res.stderr}${res.stdout}`);
    work = await mkdtemp(join(tmpdir(), "baton-launch-it-"));
    db = await openDb({ url: `file:${join(work, "baton.db")}` });
    app = createApp({ db, token: TOKEN });
    app.listen({ port: 0, hostname: "127.0.0.1" });
    server = `http://127.0.0.1:${app.server!.port}`;
    writeFileSync(join(work, "models.json"), JSON.stringify(deployment(MODELS)));
    writeFileSync(join(work, "full.json"), JSON.stringify(deployment([...MODELS, RETRIEVAL])));
    writeFileSync(join(work, "broken.json"), JSON.stringify({ ...deployment([BROKEN]), name: "bad" }));
  }, 300_000);

  afterAll(async () => {
    if (jobIds.length) Bun.spawnSync(["scancel", ...jobIds]);
    await app?.stop(true);
    if (db) closeDb(db);
    if (work) await rm(work, { recursive: true, force: true });
  });

  test("--dry-run prints bash scripts with %x_%A_%a logs, USR1 before the limit, set +u around the setup and an exec'd agent", async () => {
    const res = await baton("launch", "full.json", "--dry-run");
    expect(res.code).toBe(0);
    const scripts = res.stdout.split(/^# ---- /m).filter(Boolean);
    expect(scripts).toHaveLength(3);
    for (const s of scripts) {
      expect(s).toContain("#!/bin/bash\n");
      expect(s).toMatch(/^#SBATCH --output=.*\/logs\/%x_%A_%a\.out$/m);
      expect(s).toMatch(/^#SBATCH --signal=B:USR1@120$/m);
      expect(s).toMatch(/^set \+u\n[\s\S]*BATON_SURELY_UNSET_VARIABLE[\s\S]*^set -u$/m);
      expect(s).toMatch(/^if command -v stdbuf >\/dev\/null; then exec stdbuf -oL -eL "\$BUN" cli\/baton.ts endpoint-agent/m);
    }
    expect(scripts[0]).toMatch(/^#SBATCH --array=0-1$/m);
    expect(jobIds).toEqual([]);
  });

  test("a bad deployment file is refused naming the field", async () => {
    writeFileSync(join(work, "bad.json"), JSON.stringify(deployment([{ ...MODELS[0], replicas: 0 }, { name: "r", role: "retrieval" }])));
    const res = await baton("launch", "bad.json");
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("services[0].replicas: expected at least 1");
    writeFileSync(join(work, "bad.json"), JSON.stringify(deployment([{ name: "r", role: "retrieval" }])));
    expect((await baton("launch", "bad.json")).stderr).toContain("services[0].command: required for role retrieval");
  });

  test("two replicas per model register as healthy from inside their jobs; a run submitted before retrieval waits with no attempt spent; launching retrieval completes it", async () => {
    const [orchJob, expertJob] = await launch("models.json");
    const healthy = await waitFor("4 healthy model endpoints", async () => {
      const eps = (await endpoints()).filter((e) => e.state === "healthy");
      return eps.length === 4 && eps;
    }, 60_000);
    expect(healthy.map((e) => `${e.role} ${e.name} ${e.slurm_array_job_id}_${e.slurm_array_task_id}`).sort()).toEqual(
      [`expert_llm ${EXPERT} ${expertJob}_0`, `expert_llm ${EXPERT} ${expertJob}_1`, `orchestrator ${ORCHESTRATOR_MODEL} ${orchJob}_0`, `orchestrator ${ORCHESTRATOR_MODEL} ${orchJob}_1`].sort(),
    );
    expect(healthy.every((e) => e.node)).toBe(true);
    const status = await baton("launch", "status", "models.json");
    expect(status.code).toBe(0);
    expect(status.stdout.split("\n").filter((l) => /RUNNING .* healthy/.test(l))).toHaveLength(4);
    // The unset variable and the quoting reached the service as written.
    const log = readFileSync(join(work, "logs", `baton-it-orch_${orchJob}_0.out`), "utf8");
    expect(log).toContain("setup sees []");
    expect(log).toContain(`starting: hello  world's "sim"`);

    const rows = JSON.parse(readFileSync(join(REPO, "data/frames-sample.jsonl"), "utf8").split("\n")[0]!);
    const tasks = Array.from({ length: 8 }, (_, i) => ({ ...rows, id: `t${i}`, question: `[${i}] ${rows.question}` }));
    const sub = await fetch(`${server}/v1/runs`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ name: "waits", benchmark: "frames", config: writeConfigDocument(RUN_CONFIG), tasks, max_attempts: 3 }),
    });
    expect(sub.status).toBe(201);
    const runId = ((await sub.json()) as any).id as number;

    const log2: string[] = [];
    const runner = new Runner({
      queue: new HttpQueue({ baseUrl: server, token: TOKEN }),
      runId,
      concurrency: 3,
      pollMs: 100,
      leaseMs: 15_000,
      graceMs: 5_000,
      endpointRefreshMs: 500,
      exitWhenIdle: true,
      log: (l) => log2.push(l),
    });
    const done = runner.run();
    await waitFor("the runner to say what the run waits for", () => log2.some((l) => l.includes("waits for endpoints")), 20_000);
    expect(log2.find((l) => l.includes("waits for endpoints"))).toContain("search → retrieval wiki_retrieval|retrieval: 0 healthy");
    expect(await q("SELECT attempt, status FROM tasks WHERE run_id = ? AND (attempt > 0 OR status != 'queued')", [runId])).toEqual([]);
    expect((await baton("status", String(runId))).stdout).toContain("waits for  search → retrieval wiki_retrieval|retrieval: 0 healthy");
    // preflight lists exactly what is missing: the retrieval backends
    const pre = await baton("preflight", String(runId));
    expect(pre.code).toBe(1);
    expect(pre.stdout.split("\n").filter((l) => l.startsWith("  - "))).toEqual([
      "  - retrieval probe: wiki_retrieval: 0 healthy endpoints",
      "  - retrieval probe: retrieval: 0 healthy endpoints",
    ]);

    await launch("full.json", "--only", "wiki");
    await waitFor("a task to succeed", async () => (await q("SELECT 1 FROM tasks WHERE run_id = ? AND status = 'succeeded'", [runId])).length > 0, 60_000);
    expect((await baton("preflight", String(runId))).code).toBe(0);

    // Cancel one expert replica mid-run: it drains and disappears; nothing is lost.
    expect((await sh(["scancel", `${expertJob}_1`])).code).toBe(0);
    const [{ open }] = await q<{ open: number }>("SELECT count(*) AS open FROM tasks WHERE run_id = ? AND status != 'succeeded'", [runId]);
    expect(open).toBeGreaterThan(0);
    await waitFor("the cancelled replica's endpoint to disappear", async () => !(await endpoints()).some((e) => e.slurm_array_job_id === expertJob && e.slurm_array_task_id === "1"), 30_000);
    await done;
    const outcome = await q<{ status: string; n: number }>("SELECT status, count(*) AS n FROM tasks WHERE run_id = ? GROUP BY status", [runId]);
    expect(outcome).toEqual([{ status: "succeeded", n: 8 }]);
    expect(runner.stats.failed).toBe(0);
  }, 150_000);

  test("an agent killed with SIGKILL leaves its endpoint, which becomes gone after its lease; its service does not outlive it", async () => {
    const orch = (await endpoints()).find((e) => e.role === "orchestrator" && e.slurm_array_task_id === "0")!;
    expect(orch.state).toBe("healthy");
    // --batch: only the batch shell, which is the exec'd agent; no drain, no deregistration.
    expect((await sh(["scancel", "--batch", "--signal=KILL", orch.slurm_array_job_id + "_0"])).code).toBe(0);
    // lease 3 s; a 10x margin for a loaded machine
    await waitFor("the killed agent's endpoint to be gone", async () => (await endpoints()).find((e) => e.id === orch.id)?.state === "gone", 30_000);
    // the agent's watchdog stops the orphaned service (Slurm's linuxproc tracking loses orphans)
    await waitFor("the orphaned service to stop answering", () => fetch(`${orch.base_url}/health`, { signal: AbortSignal.timeout(1_000) }).then(() => false, () => true), 30_000);
  }, 40_000);

  test("a service whose command fails: the job exits non-zero, nothing registers, and launch status shows why", async () => {
    const before = (await endpoints()).length;
    const [job] = await launch("broken.json");
    await waitFor("the broken job to fail", async () => {
      const r = await sh(["squeue", "-h", "-t", "all", "-j", job!, "-o", "%T"]);
      return r.stdout.trim() === "FAILED";
    }, 60_000);
    expect((await endpoints()).length).toBe(before);
    const status = await baton("launch", "status", "broken.json");
    expect(status.stdout).toMatch(/broken\s+retrieval\s+retrieval\s+\S+_0\s+FAILED\s+.*the service exited \(exit code 3\) before it was ready — index file 'missing index' not found/);
  }, 90_000);

  test("launch stop drains (draining, deregistered, service stopped, job completed); a relaunched service is tracked beside its earlier array", async () => {
    const wiki = (await endpoints()).find((e) => e.name === "wiki_retrieval")!;
    expect(wiki.state).toBe("healthy");
    const res = await baton("launch", "stop", "full.json", "wiki");
    expect(res.code).toBe(0);
    expect(res.stdout).toContain("draining: wiki");
    await waitFor("the drained endpoint to disappear", async () => !(await endpoints()).some((e) => e.id === wiki.id), 30_000);
    await waitFor("the drained job to complete", async () => (await sh(["squeue", "-h", "-t", "all", "-j", wiki.slurm_array_job_id, "-o", "%T"])).stdout.trim() === "COMPLETED", 30_000);
    // a second stop finds nothing left to stop
    expect((await baton("launch", "stop", "full.json", "wiki")).stdout).toContain("nothing to stop");
    // a service launched again is tracked beside its earlier array: status shows both while they run
    const [again] = await launch("full.json", "--only", "expert");
    const status = await waitFor("the relaunched expert replicas to be healthy", async () => {
      const out = (await baton("launch", "status", "full.json")).stdout;
      return out.split("\n").filter((l) => l.startsWith("expert") && l.includes(`${again}_`) && l.includes("healthy")).length === 2 && out;
    }, 60_000);
    // the earlier array's surviving replica (its task 1 was cancelled above) is still listed
    expect(status.split("\n").filter((l) => l.startsWith("expert") && / RUNNING .* healthy/.test(l))).toHaveLength(3);
    const stopped = await baton("launch", "stop", "full.json", "expert", "--now");
    expect(stopped.stdout).toMatch(new RegExp(`cancelled: expert \\(job \\d+, ${again}\\)`));
    const log = readFileSync(join(work, "logs", `baton-it-wiki_${wiki.slurm_array_job_id}_0.out`), "utf8");
    expect(log).toMatch(/draining \(SIGUSR1\)[\s\S]*deregistered endpoint[\s\S]*stopped \(SIGUSR1\)/);
  }, 60_000);
});

// No Slurm needed: the README's cluster guide must match what the code accepts.
describe("the README's cluster guide", () => {
  const readme = readFileSync(join(REPO, "README.md"), "utf8");
  const guide = readme.slice(readme.indexOf("## Running on a cluster"), readme.indexOf("## Asking the database"));

  test("its deployment files are valid deployments", () => {
    const files = [...guide.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]!));
    expect(files.length).toBeGreaterThanOrEqual(2);
    for (const f of files) expect(() => resolveDeployment(f, { file: join(REPO, "deploy.json"), server: "http://127.0.0.1:3000", batonHome: REPO })).not.toThrow();
  });

  test("every flag it gives launch, preflight, submit, status and endpoint-agent is one the command documents", () => {
    const used = new Map<string, Set<string>>();
    for (const m of guide.matchAll(/baton (launch|preflight|submit|status|inflight|endpoints|endpoint-agent)\b([^\n`]*)/g)) {
      const flags = used.get(m[1]!) ?? new Set<string>();
      for (const f of m[2]!.matchAll(/(--[a-z][a-z-]*)/g)) flags.add(f[1]!);
      used.set(m[1]!, flags);
    }
    expect(used.get("launch")?.size).toBeGreaterThan(0);
    for (const [cmd, flags] of used) {
      const help = Bun.spawnSync([BUN, join(REPO, "cli/baton.ts"), cmd, "--help"], { stdout: "pipe" }).stdout.toString();
      for (const f of flags) expect(`${cmd} ${help.includes(f) ? f : `${f} (not in --help)`}`).toBe(`${cmd} ${f}`);
    }
  }, 60_000);
});
