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
import { readJobEndTime, readSlurmContext } from "../../runner/slurm";

const REPO = resolve(import.meta.dir, "../..");
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
});
