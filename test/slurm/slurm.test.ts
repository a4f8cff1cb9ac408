// Baton on a real Slurm: scripts/setup-slurm.sh brings up slurmctld + slurmd on this machine,
// and job arrays of the real sbatch template run real runners against a Baton server and the
// simulators in this process (all on 127.0.0.1). Needs root on Debian; elsewhere it says so
// and skips. When Slurm cannot start on a machine that should have it, the tests FAIL with
// the script's reason.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { closeDb, type Db, openDb } from "../../db/client";
import { createApp } from "../../functions/index";
import { type SimCluster, startSimCluster } from "../../sim/cluster";

const REPO = resolve(import.meta.dir, "../..");
const FRAMES = join(REPO, "data/frames-sample.jsonl");
const TEMPLATE = join(REPO, "runner/sbatch/baton-runner.sbatch");

function unsupportedReason(): string | null {
  if (process.platform !== "linux") return `not Linux (${process.platform})`;
  if (process.getuid?.() !== 0) return "not root: setup-slurm.sh installs packages and starts system daemons";
  if (!existsSync("/etc/debian_version")) return "not Debian/Ubuntu: setup-slurm.sh uses Debian's slurm-wlm packages";
  return null;
}
const SKIP = unsupportedReason();
if (SKIP) console.warn(`\n*** SLURM TESTS SKIPPED: ${SKIP} ***\n`);

type Ran = { code: number; stdout: string; stderr: string };
function sh(argv: string[], opts: { env?: Record<string, string | undefined>; timeoutMs?: number } = {}): Ran {
  const res = Bun.spawnSync(argv, {
    cwd: REPO,
    env: (opts.env ?? process.env) as Record<string, string>,
    stdout: "pipe",
    stderr: "pipe",
    timeout: opts.timeoutMs ?? 30_000,
  });
  return { code: res.exitCode ?? -1, stdout: res.stdout.toString(), stderr: res.stderr.toString() };
}

async function waitFor<T>(what: string, fn: () => T | null | undefined | false | Promise<T | null | undefined | false>, timeoutMs: number, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(everyMs);
  }
}

const submitted: string[] = [];
function sbatch(args: string[], env: Record<string, string | undefined> = process.env): string {
  const res = sh(["sbatch", "--parsable", ...args], { env });
  if (res.code !== 0) throw new Error(`sbatch ${args.join(" ")} failed: ${res.stderr.trim()}`);
  const id = res.stdout.trim().split(";")[0]!;
  submitted.push(id);
  return id;
}

/** State of every job (array task) of a job id: e.g. { "12_0": "RUNNING", "12_1": "PENDING" }. */
function jobStates(jobId: string): Record<string, string> {
  const res = sh(["squeue", "-h", "-t", "all", "-j", jobId, "-o", "%i|%T"]);
  const out: Record<string, string> = {};
  for (const line of res.stdout.split("\n")) {
    const [id, state] = line.trim().split("|");
    if (id && state) out[id] = state;
  }
  return out;
}
const FINISHED = new Set(["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"]);
function allFinished(states: Record<string, string>, expected: number): boolean {
  const values = Object.values(states);
  return values.length >= expected && values.every((s) => FINISHED.has(s));
}

let work = "";

describe.skipIf(!!SKIP)("Slurm", () => {
  beforeAll(async () => {
    const res = sh(["bash", join(REPO, "scripts/setup-slurm.sh")], { timeoutMs: 240_000 });
    if (res.code !== 0) {
      throw new Error(`scripts/setup-slurm.sh could not start Slurm (exit ${res.code}):\n${res.stderr}${res.stdout}`);
    }
    work = await mkdtemp(join(tmpdir(), "baton-slurm-it-"));
  }, 300_000);

  afterAll(async () => {
    // Only the jobs this file submitted; the cluster keeps running for other suites.
    if (submitted.length) sh(["scancel", ...submitted]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  test("the single-node cluster is up and idle", () => {
    const res = sh(["sinfo", "-h", "-o", "%t %c"]);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^(idle|mix|alloc)/m);
  });

  test("a runner inside a real job reads its ids and its end time from squeue", async () => {
    const script = `import { readSlurmContext, readJobEndTime } from ${JSON.stringify(join(REPO, "runner/slurm.ts"))};
const ctx = readSlurmContext();
console.log(JSON.stringify({ ctx, end: ctx && (await readJobEndTime(ctx)), now: Date.now() }));`;
    const scriptPath = join(work, "ctx.ts");
    await Bun.write(scriptPath, script);
    const bun = join(REPO, "node_modules/.bin/bun");
    const id = sbatch(["--array=0-1", "--time=7", `--output=${work}/ctx_%a.out`, "--wrap", `${bun} ${scriptPath}`]);
    await waitFor("the context job array to finish", () => allFinished(jobStates(id), 2), 60_000);
    for (const task of ["0", "1"]) {
      const text = readFileSync(join(work, `ctx_${task}.out`), "utf8");
      const line = text.trim().split("\n").at(-1)!;
      const { ctx, end, now } = JSON.parse(line);
      expect(ctx.arrayJobId).toBe(id);
      expect(ctx.arrayTaskId).toBe(task);
      expect(end.source).toMatch(/^(env|squeue-end)$/);
      // --time=7 minutes, counted from the start a few seconds before `now`.
      expect(end.endTimeMs - now).toBeGreaterThan(6 * 60_000);
      expect(end.endTimeMs - now).toBeLessThanOrEqual(7 * 60_000);
    }
  }, 90_000);

  test("the template refuses to start without a server and says why", async () => {
    const env = { ...process.env, BATON_SERVER: "", DATABASE_URL: "", BATON_HOME: REPO };
    const id = sbatch(["--array=0", "--time=1", `--output=${work}/noserver_%a.out`, TEMPLATE], env);
    await waitFor("the job to fail", () => allFinished(jobStates(id), 1), 60_000);
    expect(Object.values(jobStates(id))).toEqual(["FAILED"]);
    expect(readFileSync(join(work, "noserver_0.out"), "utf8")).toContain("set BATON_SERVER");
  }, 90_000);
  describe("runners as a job array", () => {
    const token = `t-${crypto.randomUUID()}`;
    let db: Db;
    let sim: SimCluster;
    let server: ReturnType<typeof Bun.serve>;
    let base = "";

    async function api(method: string, path: string, body?: unknown): Promise<any> {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const json = await res.json();
      if (!res.ok) throw new Error(`${method} ${path} -> ${res.status} ${JSON.stringify(json)}`);
      return json;
    }

    /** Every array task of `id` ran the real template against this server. */
    function launch(args: string[], runnerArgs: string[], runId: number): string {
      const env = { ...process.env, BATON_SERVER: base, BATON_TOKEN: token, BATON_RUN: String(runId), BATON_HOME: REPO };
      return sbatch([`--output=${work}/runner_%A_%a.out`, ...args, TEMPLATE, ...runnerArgs], env);
    }

    function setTaskLatency(latency: { ttftMs: number; perTokenMs: number }) {
      for (const r of sim.replicas) if (r.kind === "orchestrator" || r.kind === "expert") r.sim.update({ latency });
    }

    async function submitRun(name: string, n: number, { inlineEndpoints }: { inlineEndpoints: boolean }): Promise<number> {
      const rows = readFileSync(FRAMES, "utf8").trim().split("\n").map((l) => JSON.parse(l));
      const tasks = Array.from({ length: n }, (_, i) => ({ ...rows[i % rows.length], id: `${name}-${i}` }));
      // Either the registry (imported below) or the run's own config carries the endpoints.
      // (profile baton: the simulator serves Baton's model map, not the reference's)
      const config = inlineEndpoints ? { profile: "baton", endpoints: sim.config } : { profile: "baton" };
      return (await api("POST", "/v1/runs", { name, benchmark: "frames", tasks, max_attempts: 5, config })).id;
    }

    async function counts(runId: number): Promise<Record<string, number>> {
      return (await api("GET", `/v1/runs/${runId}`)).counts;
    }

    /** Array task index -> tasks its runner holds right now (status running, its lease). */
    async function heldByArrayTask(runId: number, arrayJobId: string): Promise<Map<string, number[]>> {
      const rows = await db.$client.execute({
        sql: `SELECT r.slurm_array_task_id AS idx, t.id AS id FROM tasks t JOIN runners r ON r.id = t.lease_owner
              WHERE t.run_id = ? AND t.status = 'running' AND r.slurm_array_job_id = ?`,
        args: [runId, arrayJobId],
      });
      const out = new Map<string, number[]>();
      for (const row of rows.rows) {
        const idx = String(row.idx);
        out.set(idx, [...(out.get(idx) ?? []), Number(row.id)]);
      }
      return out;
    }

    async function expectNothingLost(runId: number, n: number) {
      const c = await counts(runId);
      expect(c.running).toBe(0);
      expect(c.queued).toBe(0);
      expect(c.succeeded + c.failed).toBe(n);
      const failed = await db.$client.execute({
        sql: "SELECT id, error_class FROM tasks WHERE run_id = ? AND status = 'failed' AND (error_class IS NULL OR error_class = '')",
        args: [runId],
      });
      expect(failed.rows).toEqual([]);
    }

    function log(id: string, idx: string): string {
      const path = join(work, `runner_${id}_${idx}.out`);
      return existsSync(path) ? readFileSync(path, "utf8") : "";
    }

    beforeAll(async () => {
      db = await openDb({ url: `file:${join(work, "baton.db")}` });
      const app = createApp({ db, token });
      server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => app.handle(req) });
      base = `http://127.0.0.1:${server.port}`;
      sim = await startSimCluster({ latency: { ttftMs: 100, perTokenMs: 1 } });
      // As the README's "Running on a cluster" does it: the ToolOrchestra model config into the registry.
      const imported = await api("POST", "/v1/endpoints/import", sim.config);
      expect(imported.endpoints.length).toBe(sim.replicas.length);
    }, 60_000);

    afterAll(async () => {
      server?.stop(true);
      await sim?.stop();
      if (db) closeDb(db);
    });

    test("finishes a 60-task run although one runner is cancelled and another killed mid-run", async () => {
      setTaskLatency({ ttftMs: 100, perTokenMs: 1 });
      const n = 60;
      const runId = await submitRun("slurm-array", n, { inlineEndpoints: false });
      // Short leases so the killed runner's tasks come back within seconds; the survivors keep
      // polling past a lease so they pick those tasks up instead of exiting early.
      const id = launch(
        ["--array=0-2", "--time=5"],
        ["--exit-when-idle", "--idle-grace-ms", "10000", "--lease-ms", "3000", "--grace-ms", "1000", "--concurrency", "6", "--poll-ms", "200"],
        runId,
      );
      const held = await waitFor(
        "array tasks 1 and 2 to hold tasks",
        async () => {
          const h = await heldByArrayTask(runId, id);
          return (h.get("1")?.length ?? 0) > 0 && (h.get("2")?.length ?? 0) > 0 ? h : null;
        },
        60_000,
        100,
      );
      expect(held.size).toBeGreaterThanOrEqual(2);
      // the template sizes the runner's heap (its started line says so): read from a runner
      // that holds tasks, so it has started (array task 0 may still be starting)
      const started = await waitFor("array task 1's started line", () => log(id, "1").match(/started: .*/)?.[0], 10_000, 100);
      expect(started).toContain("heap sized as for 256 MiB of RAM (BUN_JSC_forceRAMSize)");
      expect(sh(["scancel", `${id}_1`]).code).toBe(0); // SIGTERM: drain and release
      // A real SIGKILL to the runner (--batch: the batch shell, which the runner replaced);
      // plain `scancel --signal=KILL` would be a normal cancel, SIGTERM first.
      expect(sh(["scancel", "--batch", "--signal=KILL", `${id}_2`]).code).toBe(0);
      await waitFor("the killed array task to end", () => FINISHED.has(jobStates(id)[`${id}_2`] ?? ""), 30_000, 100);
      // What the dead runner still held: nobody will finish or release these but the lease.
      const orphaned = (await heldByArrayTask(runId, id)).get("2") ?? [];
      expect(orphaned.length).toBeGreaterThan(0);

      await waitFor("the job array to finish", () => allFinished(jobStates(id), 3), 150_000, 500);
      const states = jobStates(id);
      expect(states[`${id}_0`]).toBe("COMPLETED");
      expect(states[`${id}_1`]).toBe("CANCELLED");
      expect(states[`${id}_2`]).toBe("FAILED"); // killed by a signal
      await expectNothingLost(runId, n);

      // The killed runner's tasks were finished by someone else, on a later attempt.
      const again = await db.$client.execute({
        sql: `SELECT id, attempt, status FROM tasks WHERE id IN (${orphaned.map(() => "?").join(",")})`,
        args: orphaned,
      });
      expect(again.rows.length).toBe(orphaned.length);
      for (const row of again.rows) {
        expect(["succeeded", "failed"]).toContain(String(row.status));
        expect(Number(row.attempt)).toBeGreaterThanOrEqual(2);
      }
      expect(log(id, "1")).toMatch(/stopping \(SIGTERM\)/);
      expect(log(id, "0")).toMatch(/stopped \(idle/);
    }, 200_000);

    test("a runner whose job reaches its time limit hands back its tasks and another finishes them", async () => {
      // Tasks (several steps of ~4 calls each) far longer than the jobs: the runners are
      // mid-task when their time runs out.
      setTaskLatency({ ttftMs: 10_000, perTokenMs: 1 });
      const n = 8;
      const runId = await submitRun("slurm-timeout", n, { inlineEndpoints: true });
      // Job A: --time=1 with the template's own #SBATCH lines; its runner sees the end time
      // (squeue) and SIGUSR1, and stops before Slurm kills it.
      const a = launch(["--array=0", "--time=1", "--signal=B:USR1@1"], ["--lease-ms", "3000", "--grace-ms", "2000", "--concurrency", "4"], runId);
      // Job B: believes it has 10 minutes, then the limit is cut to 1 minute under it, so
      // Slurm's own time-limit SIGTERM (then SIGKILL after KillWait) is what stops it. Its
      // warning signal is swapped for SIGURG (ignored by default) so nothing stops it earlier.
      const b = launch(["--array=0", "--time=10", "--signal=B:URG@1"], ["--lease-ms", "3000", "--grace-ms", "2000", "--concurrency", "4"], runId);
      await waitFor("both runners to hold tasks", async () => {
        const ha = await heldByArrayTask(runId, a);
        const hb = await heldByArrayTask(runId, b);
        return ha.size > 0 && hb.size > 0;
      }, 60_000, 100);
      expect(sh(["scontrol", "update", `JobId=${b}_0`, "TimeLimit=1"]).code).toBe(0);

      await waitFor("both time-limited jobs to end", () => allFinished(jobStates(a), 1) && allFinished(jobStates(b), 1), 150_000, 500);
      expect(Object.values(jobStates(b))).toEqual(["TIMEOUT"]);
      expect(log(b, "0")).toMatch(/stopping \(SIGTERM\)/);
      expect(log(b, "0")).toMatch(/released \(shutdown\)/);
      // Job A's runner left on its own (end-time guard or SIGUSR1) before Slurm had to kill it.
      expect(Object.values(jobStates(a))).toEqual(["COMPLETED"]);
      expect(log(a, "0")).toMatch(/stopping \((SIGUSR1|job end)/);
      expect(log(a, "0")).toMatch(/released \(shutdown\)/);
      // Nothing is left running: the tasks were released (or their leases expired).
      await waitFor("no task of the run to be running", async () => (await counts(runId)).running === 0, 15_000, 200);
      const mid = await counts(runId);
      expect(mid.queued + mid.succeeded + mid.failed).toBe(n);
      // The in-flight tasks of both runners went back to the queue.
      expect(mid.queued).toBeGreaterThanOrEqual(2);

      setTaskLatency({ ttftMs: 50, perTokenMs: 1 });
      const fin = launch(["--array=0", "--time=5"], ["--exit-when-idle", "--idle-grace-ms", "5000", "--concurrency", "8"], runId);
      await waitFor("the finishing runner to exit", () => allFinished(jobStates(fin), 1), 120_000, 500);
      expect(Object.values(jobStates(fin))).toEqual(["COMPLETED"]);
      await expectNothingLost(runId, n);
    }, 330_000);
  });
});
