// `baton runner` as a real process: its log is one line per task outcome plus periodic
// progress lines, and a crash leaves a stack trace and a non-zero exit.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { q, readJsonl, REPO, simRunConfig, startWorld, submitRun, type World } from "./_harness";

const rows = readJsonl("data/frames-sample.jsonl").slice(0, 4);
let world: World;

beforeAll(async () => {
  // model calls take ~100 ms, so the run outlasts a few 100 ms progress intervals
  world = await startWorld({ rows, sim: { latency: { ttftMs: 100 } } });
});
afterAll(async () => {
  await world?.close();
});

async function runCli(args: string[], env: Record<string, string> = {}) {
  const child = Bun.spawn([process.execPath, join(REPO, "cli/baton.ts"), "runner", ...args], {
    cwd: REPO,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, BATON_SERVER: "", BATON_TOKEN: "", ...env },
  });
  const [code, stdout, stderr] = await Promise.all([child.exited, new Response(child.stdout).text(), new Response(child.stderr).text()]);
  return { code, stdout, stderr, pid: child.pid };
}

// what runner.ts prints when a task attempt ends with a written outcome
const OUTCOME = /^\[runner [^\]]+\] task \d+ \(.+\) attempt \d+: (succeeded in|requeued after|failed after|lost after) /;
const STACK_FRAME = /^\s+at .+:\d+:\d+\)?$/m;

describe("baton runner process", () => {
  test("prints one line per task outcome and a progress line every --progress-ms", async () => {
    const runId = await submitRun(world, { name: "lines", benchmark: "frames", rows, config: simRunConfig() });
    const { code, stdout, stderr } = await runCli([
      "--db", world.dbUrl, "--run", String(runId), "--concurrency", "2", "--poll-ms", "50", "--progress-ms", "100", "--exit-when-idle",
    ]);
    expect(stderr).not.toMatch(STACK_FRAME);
    expect(code).toBe(0);
    expect(stdout.endsWith("\n")).toBe(true);
    const lines = stdout.trimEnd().split("\n");
    const outcomes = lines.filter((l) => OUTCOME.test(l));
    const attempts = (await q(world.db, "SELECT a.outcome FROM task_attempts a JOIN tasks t ON t.id = a.task_id WHERE t.run_id = ?", [runId])) as any[];
    expect(attempts.length).toBeGreaterThanOrEqual(rows.length);
    expect(outcomes).toHaveLength(attempts.length);
    // every task ended, and each has its own "succeeded"/"failed" line
    const tasks = (await q(world.db, "SELECT id, status FROM tasks WHERE run_id = ?", [runId])) as any[];
    for (const t of tasks) {
      expect(["succeeded", "failed"]).toContain(t.status);
      expect(outcomes.filter((l) => l.includes(`task ${t.id} (`) && l.includes(t.status === "succeeded" ? ": succeeded in " : ": failed after ")).length).toBe(1);
    }
    // periodic lines while tasks ran, not only the final summary after "stopping"
    const stopAt = lines.findIndex((l) => l.includes("stopping ("));
    const progress = lines.map((l, i) => [l, i] as const).filter(([l]) => / progress: \d+ in flight; claimed \d+/.test(l));
    expect(progress.filter(([, i]) => i < stopAt).length).toBeGreaterThanOrEqual(1);
    expect(lines.at(-1)).toContain("stopped (idle: nothing left to do)");
    const runners = (await q(world.db, "SELECT state FROM runners WHERE run_id = ?", [runId])) as any[];
    expect(runners.map((r) => r.state)).toEqual(["stopped"]);
  }, 60_000);

  test("a --db file that is not a database crashes with a stack trace and exit 1, not a usage error", async () => {
    const path = join(world.dir, "tasks.jsonl");
    writeFileSync(path, JSON.stringify(rows[0]) + "\n");
    const { code, stdout, stderr } = await runCli(["--db", `file:${path}`, "--exit-when-idle"]);
    expect(code).toBe(1);
    expect(stderr).toContain("baton runner crashed: cannot open the queue");
    expect(stderr).toContain("SQLITE_NOTADB");
    expect(stderr).toMatch(STACK_FRAME);
    expect(stderr).not.toContain("Usage:");
    expect(stdout).toBe("");
  }, 30_000);

  test("a runner the server refuses (wrong BATON_TOKEN) crashes at registration with a stack trace and exit 1", async () => {
    const { code, stderr, pid } = await runCli(["--server", world.server.url, "--exit-when-idle"], { BATON_TOKEN: "not-the-token" });
    expect(code).toBe(1);
    expect(stderr).toContain("baton runner crashed:");
    expect(stderr).toMatch(/401|unauthori[sz]ed|token/i);
    expect(stderr).toMatch(STACK_FRAME);
    expect(stderr).not.toContain("not-the-token");
    // it never registered, so there is no runner row to mark crashed
    expect(await q(world.db, "SELECT state FROM runners WHERE pid = ?", [pid])).toEqual([]);
  }, 30_000);

  test("bad flags are a usage error (exit 2) naming the flag, with no stack trace", async () => {
    const { code, stderr } = await runCli(["--db", world.dbUrl, "--concurrency", "zero"]);
    expect(code).toBe(2);
    expect(stderr).toContain('--concurrency: expected an integer >= 1, got "zero"');
    expect(stderr).not.toMatch(STACK_FRAME);
  }, 30_000);
});
