// Runs as experiments (issue 14) end to end: real runners against the simulated cluster, the
// Baton server on loopback, and the CLI as real processes talking to it.
// - `baton task` shows each attempt's last model call of a task the orchestrator refused
//   (prompt longer than its context window);
// - `submit --from` selects exactly the right tasks and carries the override, and only it;
// - repeats and sweeps have the expected counts and intervals on simulated runs.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { passAtK, passHatK, wilsonInterval } from "../../db/experiments";
import { claimTasks, completeTask, failTask } from "../../db/queue";
import { DbQueue } from "../../runner/queue-db";
import { Runner } from "../../runner/runner";
import { runBaton } from "../cli/_helpers";
import { writeConfigDocument } from "../../db/config-wire";
import { q, readJsonl, simRunConfig, startWorld, submitRun, type World } from "./_harness";

const rows = readJsonl("data/frames-sample.jsonl").slice(0, 6);
const ORCHESTRATOR = "nvidia/Nemotron-Orchestrator-8B";
let world: World;

beforeAll(async () => {
  world = await startWorld({ rows, sim: { latency: { ttftMs: 5, jitter: 0 } } });
});

afterAll(async () => {
  await world?.close();
});

const baton = (args: string[]) => runBaton(args, { env: { BATON_SERVER: world.server.url, BATON_TOKEN: "test-token", DATABASE_URL: "" } });

async function runAll(runId: number | null) {
  const runner = new Runner({
    queue: new DbQueue(world.db, { backoff: { baseMs: 20, capMs: 40 } }),
    concurrency: 4,
    runId,
    leaseMs: 5_000,
    pollMs: 20,
    exitWhenIdle: true,
    endpointRefreshMs: 60_000,
    log: () => {},
  });
  await runner.run();
}

function file(name: string, text: string): string {
  const path = join(world.dir, name);
  writeFileSync(path, text);
  return path;
}

describe("baton task", () => {
  test("shows the last model call of a task failed by a context-length refusal", async () => {
    const orch = world.cluster.byModel(ORCHESTRATOR);
    for (const r of orch) r.sim.update({ faults: { rates: { context_length: 1 }, queue: [], retryAfterS: 1 } });
    let runId: number;
    try {
      runId = await submitRun(world, { name: "ctx", benchmark: "frames", rows: rows.slice(0, 1), config: simRunConfig(), maxAttempts: 2 });
      await runAll(runId);
    } finally {
      for (const r of orch) r.sim.update({ faults: { rates: {}, queue: [], retryAfterS: 1 } });
    }
    const [task] = await q(world.db, "SELECT id FROM tasks WHERE run_id = ?", [runId]);
    const out = await baton(["task", String(task.id)]);
    expect(out.stderr).toBe("");
    expect(out.code).toBe(0);
    expect(out.stdout).toContain("failed — context_length");
    expect(out.stdout).toMatch(/attempt 1\s+failed context_length/);
    expect(out.stdout).toMatch(/last call: step \d+ .*orchestrator nvidia\/Nemotron-Orchestrator-8B at http:\/\/127\.0\.0\.1:\d+/);
    expect(out.stdout).toMatch(/context_length \(HTTP 400\)/);
    expect(out.stdout).toContain("maximum context length");

    const json = JSON.parse((await baton(["task", String(task.id), "--json"])).stdout);
    const last = json.attempts[0].last_call;
    expect(last).toMatchObject({ role: "orchestrator", outcome: "context_length", http_status: 400, model: ORCHESTRATOR });
    // the newest llm_calls row of that attempt, whatever the order they were written in
    const [newest] = await q(world.db, "SELECT id FROM llm_calls WHERE task_id = ? AND attempt = 1 ORDER BY started_at DESC, id DESC LIMIT 1", [task.id]);
    expect(newest).toBeTruthy();
    expect(json.attempts[0].llm_calls).toBeGreaterThanOrEqual(1);
  }, 30_000);

  test("a task id that does not exist is a 404 naming it", async () => {
    const out = await baton(["task", "987654"]);
    expect(out.code).toBe(1);
    expect(out.stderr).toContain("task 987654 not found");
  });
});

describe("derived runs", () => {
  let parent: number;
  let ids: Record<string, number>;

  beforeAll(async () => {
    // one succeeded, two failed (different classes), one never claimed
    parent = await submitRun(world, { name: "parent", benchmark: "frames", rows: rows.slice(0, 4), config: simRunConfig({ maxRounds: 7 }) });
    const claimed = await claimTasks({ db: world.db, runnerId: "t", limit: 3, leaseMs: 60_000, runId: parent });
    const [a, b, c] = claimed;
    await completeTask({ db: world.db, taskId: a.id, leaseToken: a.leaseToken, result: { prediction: "x", correct: true } });
    await failTask({ db: world.db, taskId: b.id, leaseToken: b.leaseToken, errorClass: "context_length", retryable: false });
    await failTask({ db: world.db, taskId: c.id, leaseToken: c.leaseToken, errorClass: "timeout", retryable: false });
    ids = { ok: a.id, ctx: b.id, timeout: c.id };
  });

  async function childOf(args: string[]) {
    const out = await baton(["submit", "--from", String(parent), ...args, "--json"]);
    expect(out.stderr).toBe("");
    const created = JSON.parse(out.stdout);
    const tasks = await q(world.db, "SELECT parent_task_id, external_id FROM tasks WHERE run_id = ? ORDER BY parent_task_id", [created.id]);
    return { created, parents: tasks.map((t) => Number(t.parent_task_id)) };
  }

  test("each selector picks exactly its tasks and links them to the ones they re-run", async () => {
    const allParent = (await q(world.db, "SELECT id FROM tasks WHERE run_id = ? ORDER BY id", [parent])).map((t) => Number(t.id));
    const queued = allParent.find((id) => !Object.values(ids).includes(id))!;
    expect((await childOf(["--failed"])).parents).toEqual([ids.ctx, ids.timeout].sort((x, y) => x - y));
    expect((await childOf(["--error-class", "context_length"])).parents).toEqual([ids.ctx]);
    expect((await childOf(["--not-succeeded"])).parents).toEqual([ids.ctx, ids.timeout, queued].sort((x, y) => x - y));
    const [okRow] = await q(world.db, "SELECT external_id FROM tasks WHERE id = ?", [ids.ok]);
    const idsFile = file("ids.txt", `${okRow.external_id}\n\n`);
    const byIds = await childOf(["--ids", idsFile]);
    expect(byIds.parents).toEqual([ids.ok]);
    expect(byIds.created.parent_run_id).toBe(parent);
  }, 30_000);

  test("the override is merged onto the parent's resolved configuration and nothing else changes", async () => {
    const overrides = file("more-tokens.json", JSON.stringify({ orchestrator: { max_tokens: 12345 } }));
    const { created } = await childOf(["--failed", "--config", overrides, "--priority", "10", "--max-concurrency", "1", "--name", "hard ones"]);
    const [p] = await q(world.db, "SELECT config FROM runs WHERE id = ?", [parent]);
    const [c] = await q(world.db, "SELECT config, parent_run_id, priority, max_concurrency, name FROM runs WHERE id = ?", [created.id]);
    const before = JSON.parse(p.config);
    const after = JSON.parse(c.config);
    expect(after.orchestrator.maxTokens).toBe(12345);
    expect(before.orchestrator.maxTokens).not.toBe(12345);
    after.orchestrator.maxTokens = before.orchestrator.maxTokens;
    expect(after).toEqual(before);
    expect(after.maxRounds).toBe(7);
    expect(c).toMatchObject({ parent_run_id: parent, priority: 10, max_concurrency: 1, name: "hard ones" });

    const status = await baton(["status", String(created.id)]);
    expect(status.stdout).toContain(`re-runs    tasks of run ${parent}`);
    expect(status.stdout).toContain("claim      priority 10, max concurrency 1");
    expect((await baton(["status", String(parent)])).stdout).toContain(`run ${created.id} (2 tasks)`);

    const st = await baton(["report", String(created.id), "--compare", "parent"]);
    expect(st.code).toBe(0);
    expect(st.stdout).toContain(`re-ran 2 tasks of run ${parent}`);
    expect(st.stdout).toMatch(/failed context_length\s+queued/);
  }, 30_000);

  test("bad selections are refused by name and create nothing", async () => {
    const [{ n: before }] = await q(world.db, "SELECT count(*) AS n FROM runs");
    const none = await baton(["submit", "--from", String(parent), "--error-class", "no_such_class"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("no task of run");
    const two = await baton(["submit", "--from", String(parent), "--failed", "--not-succeeded"]);
    expect(two.code).toBe(2);
    expect(two.stderr).toContain("exactly one of");
    const unknown = await baton(["submit", "--from", String(parent), "--ids", file("bad-ids.txt", "nope\n")]);
    expect(unknown.stderr).toContain('ids: 1 not in run');
    const badConfig = await baton(["submit", "--from", String(parent), "--failed", "--config", file("bad.json", '{"max_rounds": -1}')]);
    expect(badConfig.code).toBe(1);
    expect(badConfig.stderr).toContain("config.max_rounds: ");
    const [{ n: after }] = await q(world.db, "SELECT count(*) AS n FROM runs");
    expect(Number(after)).toBe(Number(before));
  }, 30_000);
});

describe("repeats and sweeps on simulated runs", () => {
  test("repeats: K tasks per question; accuracy, interval, pass@k and pass^k agree with the per-question outcomes", async () => {
    const data = file("six.jsonl", rows.map((r) => JSON.stringify(r)).join("\n"));
    const cfg = file("sim.json", JSON.stringify(writeConfigDocument(simRunConfig())));
    const out = await baton(["submit", data, "--name", "rep3", "--benchmark", "frames", "--config", cfg, "--repeats", "3", "--json"]);
    expect(out.stderr).toBe("");
    const { id, tasks } = JSON.parse(out.stdout);
    expect(tasks).toBe(18);
    const reps = await q(world.db, "SELECT external_id, group_concat(repeat) AS r FROM (SELECT * FROM tasks WHERE run_id = ? ORDER BY repeat) GROUP BY external_id", [id]);
    expect(reps).toHaveLength(6);
    for (const r of reps) expect(r.r).toBe("0,1,2");
    await runAll(id);

    const perQ = await q(world.db, "SELECT external_id, count(*) AS n, sum(correct = 1 AND status = 'succeeded') AS c FROM tasks WHERE run_id = ? GROUP BY external_id", [id]);
    const correct = perQ.reduce((s, x) => s + Number(x.c), 0);
    const res = await fetch(`${world.server.url}/v1/runs/${id}/stats`, { headers: { authorization: "Bearer test-token" } });
    const stats = (await res.json()) as any;
    expect(stats).toMatchObject({ repeats: 3, tasks: 18, finished: 18, correct, questions: 6 });
    expect(stats.accuracy).toBeCloseTo(correct / 18, 12);
    expect(stats.interval).toEqual(wilsonInterval(correct, 18));
    expect(stats.interval.lo).toBeLessThanOrEqual(stats.accuracy);
    expect(stats.interval.hi).toBeGreaterThanOrEqual(stats.accuracy);
    for (const k of [1, 2, 3]) {
      const mean = (f: (n: number, c: number) => number) => perQ.reduce((s, x) => s + f(Number(x.n), Number(x.c)), 0) / perQ.length;
      expect(stats.pass_at_k[k]).toBeCloseTo(mean((n, c) => passAtK(n, c, k)), 12);
      expect(stats.pass_hat_k[k]).toBeCloseTo(mean((n, c) => passHatK(n, c, k)), 12);
    }
    // pass@1 is the mean accuracy when every question has all its tries
    expect(stats.pass_at_k[1]).toBeCloseTo(stats.accuracy, 12);
    const c = stats.consistency;
    expect(c.all_correct + c.all_wrong + c.mixed).toBe(6);

    const rep = await baton(["report", String(id), "--server", world.server.url]);
    expect(rep.code).toBe(0);
    expect(rep.stdout).toContain("95% Wilson interval");
    expect(rep.stdout).toContain("pass@3");
    expect(rep.stdout).toContain("pass^3");
  }, 60_000);

  test("a sweep creates one run per combination; --dry-run creates none; the report has one row per configuration", async () => {
    const data = file("four.jsonl", rows.slice(0, 4).map((r) => JSON.stringify(r)).join("\n"));
    const cfg = file("base.json", JSON.stringify(writeConfigDocument(simRunConfig())));
    const args = ["sweep", data, "--benchmark", "frames", "--config", cfg, "--vary", "orchestrator.temperature=0.6,1.0", "--vary", "max_rounds=10,12", "--repeats", "2", "--name", "temps"];
    const [{ n: runsBefore }] = await q(world.db, "SELECT count(*) AS n FROM runs");
    const dry = await baton([...args, "--dry-run"]);
    expect(dry.stderr).toBe("");
    expect(dry.stdout).toContain("dry run: 4 runs of 8 tasks would be created");
    expect(dry.stdout).toContain("temps orchestrator.temperature=1 max_rounds=12");
    const [{ n: runsAfterDry }] = await q(world.db, "SELECT count(*) AS n FROM runs");
    expect(Number(runsAfterDry)).toBe(Number(runsBefore));

    const made = JSON.parse((await baton([...args, "--json"])).stdout);
    expect(made.runs).toHaveLength(4);
    const cfgs = await q(world.db, "SELECT config, task_count, sweep_id, sweep_values FROM runs WHERE sweep_id = ? ORDER BY id", [made.sweep_id]);
    expect(cfgs.map((r) => [JSON.parse(r.config).orchestrator.temperature, JSON.parse(r.config).maxRounds])).toEqual([[0.6, 10], [0.6, 12], [1, 10], [1, 12]]);
    for (const r of cfgs) expect(Number(r.task_count)).toBe(8);
    await runAll(null);

    const report = JSON.parse((await baton(["report", "--sweep", String(made.sweep_id), "--server", world.server.url, "--json"])).stdout);
    expect(report.rows).toHaveLength(4);
    for (const row of report.rows) {
      expect(row.finished).toBe(8);
      expect(row.interval).toEqual(wilsonInterval(row.correct, 8));
      expect(row.prompt_tokens).toBeGreaterThan(0);
      expect(Object.keys(row.tools).length).toBeGreaterThan(0);
      for (const t of Object.values(row.tools) as any[]) expect(t.p95).toBeGreaterThanOrEqual(t.p50);
    }
    expect(report.rows.filter((r: any) => r.best)).toHaveLength(1);
    // 8 tries per configuration cannot separate accuracies closer than this: not significant
    for (const r of report.rows) if (!r.best && Math.abs(r.accuracy - report.rows.find((x: any) => x.best).accuracy) <= 0.25) expect(r.significant).toBe(false);
    const human = await baton(["report", "--sweep", String(made.sweep_id), "--server", world.server.url]);
    expect(human.stdout).toContain("4 configurations, 2 repeats each");
    expect(human.stdout).toContain("95% interval");
  }, 90_000);
});
