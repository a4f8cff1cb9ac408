// The README's "Runs as experiments" walk-throughs, executed as written: each command line of
// the marked blocks runs as a real `baton` process against the Baton server on loopback, with
// a real runner process working the queue between them and the simulators as the models.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type CliResult, runBaton } from "../cli/_helpers";
import { writeConfigDocument } from "../../db/config-wire";
import { q, readJsonl, REPO, simRunConfig, startWorld, type World } from "./_harness";

const rows = readJsonl("data/frames-sample.jsonl").slice(0, 6);
const ORCHESTRATOR = "nvidia/Nemotron-Orchestrator-8B";
let world: World;

beforeAll(async () => {
  world = await startWorld({ rows, sim: { latency: { ttftMs: 5, jitter: 0 } } });
  writeFileSync(join(world.dir, "frames.jsonl"), rows.map((r) => JSON.stringify(r)).join("\n"));
  writeFileSync(join(world.dir, "run.json"), JSON.stringify(writeConfigDocument(simRunConfig())));
});

afterAll(async () => {
  await world?.close();
});

/** The command lines of the fenced block after `<!-- walkthrough: NAME -->`, comments dropped. */
function walkthrough(name: string): string[][] {
  const readme = readFileSync(join(REPO, "README.md"), "utf8");
  const at = readme.indexOf(`<!-- walkthrough: ${name} -->`);
  expect(at).toBeGreaterThan(-1);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at))![1];
  return block
    .split("\n")
    .map((l) => l.replace(/\s+#.*$/, "").trim())
    .filter(Boolean)
    .map((l) => {
      expect(l.startsWith("bun run baton ")).toBe(true);
      return l.slice("bun run baton ".length).split(/\s+/);
    });
}

const env = () => ({ BATON_SERVER: world.server.url, BATON_TOKEN: "test-token", DATABASE_URL: "" });
const baton = (args: string[]): Promise<CliResult> => runBaton(args, { env: env(), cwd: world.dir });

async function runQueueDry() {
  const r = await baton(["runner", "--concurrency", "4", "--exit-when-idle"]);
  expect(r.code).toBe(0);
}

test("re-run the failed ones, one at a time, with a larger orchestrator limit, ahead of everything else", async () => {
  const full = await baton(["submit", "frames.jsonl", "--name", "frames-full", "--benchmark", "frames", "--config", "run.json"]);
  expect(full.code).toBe(0);
  // the first two orchestrator calls each replica serves are refused (prompt too long)
  const orch = world.cluster.byModel(ORCHESTRATOR);
  for (const r of orch) r.sim.update({ faults: { rates: {}, queue: ["context_length", "context_length"] as any[], retryAfterS: 1 } });
  await runQueueDry();
  const failed = await q(world.db, "SELECT id FROM tasks WHERE run_id = (SELECT id FROM runs WHERE name = 'frames-full') AND status = 'failed' ORDER BY id");
  expect(failed.length).toBeGreaterThan(0);

  const [rerun, compare] = walkthrough("rerun");
  const sub = await baton(rerun);
  expect(sub.stderr).toBe("");
  expect(sub.code).toBe(0);
  const [hard] = await q(world.db, "SELECT id, priority, max_concurrency, config, parent_run_id FROM runs WHERE name = 'frames-hard'");
  expect(hard).toMatchObject({ priority: 10, max_concurrency: 1 });
  expect(JSON.parse(hard.config).orchestrator.maxTokens).toBe(32000);
  const parents = await q(world.db, "SELECT parent_task_id FROM tasks WHERE run_id = ? ORDER BY parent_task_id", [hard.id]);
  expect(parents.map((p) => Number(p.parent_task_id))).toEqual(failed.map((f) => Number(f.id)));

  await runQueueDry();
  const attempts = await q(world.db, "SELECT started_at, ended_at FROM task_attempts WHERE run_id = ? ORDER BY started_at, id", [hard.id]);
  for (let i = 1; i < attempts.length; i++) expect(Number(attempts[i].started_at)).toBeGreaterThanOrEqual(Number(attempts[i - 1].ended_at));
  const out = await baton(compare);
  expect(out.code).toBe(0);
  expect(out.stdout).toContain(`re-ran ${failed.length} tasks of run`);
  expect(out.stdout).toContain(`${failed.length} now succeed`);
}, 120_000);

test("sweep two temperatures with three repeats", async () => {
  const [sweep, report] = walkthrough("sweep");
  const made = await baton(sweep);
  expect(made.stderr).toBe("");
  expect(made.stdout).toContain("sweep 1: 2 runs of 18 tasks queued");
  await runQueueDry();
  const out = await baton(report);
  expect(out.code).toBe(0);
  expect(out.stdout).toContain("2 configurations, 3 repeats each");
  const lines = out.stdout.split("\n").filter((l) => /^\d+\s+(0\.6|1)\s/.test(l));
  expect(lines).toHaveLength(2);
  for (const l of lines) {
    expect(l).toContain("18/18");
    expect(l).toMatch(/\[\d+\.\d%, \d+\.\d%\]/);
  }
  console.log(out.stdout);
}, 180_000);
