import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateRun } from "../../bench/gen-latency-rows";
import { buildReport } from "../../db/analysis";
import { snakeKeysDeep } from "../../db/keys";
import { closeDb, openDb, type Db } from "../../db/client";
import { createApp } from "../../functions/index";
import { runBaton } from "./_helpers";

let dir: string;
let dbPath: string;
let db: Db;

// DATABASE_URL and BATON_SERVER cleared: each test names its database or server.
const baton = (...args: string[]) => runBaton(args, { cwd: dir, env: { DATABASE_URL: "", BATON_SERVER: "" } });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-cli-report-"));
  dbPath = join(dir, "cli.db");
  db = await openDb({ url: dbPath });
  await generateRun({ db, tasks: 120, seed: 9, name: "first" });
  await generateRun({ db, tasks: 120, seed: 9, scale: 2, name: "second" });
});

afterAll(() => {
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

describe("baton report", () => {
  test("--json prints the report the API serves", async () => {
    const { code, stdout } = await baton("report", "1", "--db", dbPath, "--json");
    expect(code).toBe(0);
    const got = JSON.parse(stdout);
    const expected = snakeKeysDeep(JSON.parse(JSON.stringify(await buildReport({ db, runId: 1 }))));
    expect({ ...got, generated_at: 0 }).toEqual({ ...expected, generated_at: 0 });
    expect(got.tasks).toHaveProperty("score_excluding_infra");
  }, 20_000);

  test("--server asks the API and prints the same report as reading the database", async () => {
    const app = createApp({ db, token: null }).listen({ port: 0, hostname: "127.0.0.1" });
    try {
      const { code, stdout, stderr } = await baton("report", "second", "--server", `http://127.0.0.1:${app.server!.port}`, "--json");
      expect(stderr).toBe("");
      expect(code).toBe(0);
      const expected = snakeKeysDeep(JSON.parse(JSON.stringify(await buildReport({ db, runId: 2 }))));
      expect({ ...JSON.parse(stdout), generated_at: 0 }).toEqual({ ...expected, generated_at: 0 });
    } finally {
      app.stop();
    }
  }, 20_000);

  test("the terminal report shows accuracy both ways, per-tool percentiles and bar histograms", async () => {
    const r = (await buildReport({ db, runId: 1 }))!;
    const { code, stdout } = await baton("report", "first", "--db", dbPath);
    expect(code).toBe(0);
    expect(stdout).toContain(`Accuracy ${(100 * r.tasks.accuracy!).toFixed(1)}% = correct / finished`);
    expect(stdout).toContain(`Score ${(100 * r.tasks.score!).toFixed(1)}% = correct / all tasks`);
    expect(stdout).toContain(`${(100 * r.tasks.scoreExcludingInfra!).toFixed(1)}% excluding infrastructure failures`);
    const search = stdout.split("\n").find((l) => l.startsWith("search "))!;
    expect(search).toContain(String(r.tools.find((t) => t.tool === "search")!.count));
    expect(stdout).toContain("Histogram search");
    expect(stdout).toContain("█");
    expect(stdout).toContain("Endpoints");
  }, 20_000);

  test("--compare puts two runs side by side with ratios second/first", async () => {
    const { code, stdout } = await baton("report", "1", "--compare", "2", "--db", dbPath, "--json");
    expect(code).toBe(0);
    const cmp = JSON.parse(stdout);
    const p50 = cmp.rows.find((r: any) => r.section === "latency all" && r.metric === "p50_ms");
    expect(p50.ratio).toBeCloseTo(p50.b / p50.a, 10);
    expect(p50.ratio).toBeGreaterThan(1.6);
    const text = await baton("report", "1", "--compare", "second", "--db", dbPath);
    expect(text.stdout).toContain("ratio");
    expect(text.stdout).toMatch(/p50_ms .* \d\.\d\dx/);
  }, 20_000);

  test("an unknown run and a missing argument fail with a clear message", async () => {
    const missing = await baton("report", "nope", "--db", dbPath);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('run "nope" not found');
    const usage = await baton("report", "--db", dbPath);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("expected one RUN");
  }, 20_000);
});

describe("baton export", () => {
  test("--format toolorchestra writes one private JSON file per finished task in the reference's shape", async () => {
    const out = join(dir, "to");
    const { code, stderr } = await baton("export", "1", "--format", "toolorchestra", out, "--db", dbPath);
    expect(code).toBe(0);
    const files = readdirSync(out);
    // the generator writes no transcripts and no protocol status: its succeeded tasks are the finished ones
    const [{ n }] = (await db.$client.execute("SELECT count(*) AS n FROM tasks WHERE run_id = 1 AND status = 'succeeded'")).rows as any;
    expect(files.length).toBe(Number(n));
    expect(stderr).toContain(`wrote ${n} task files`);
    expect(files.some((f) => f.endsWith(".partial"))).toBe(false);
    for (const f of files) expect(statSync(join(out, f)).mode & 0o777).toBe(0o600);
    const tasks = files.map((f) => JSON.parse(readFileSync(join(out, f), "utf8")));
    const ok = tasks.find((t) => Object.values(t.all_tool_responses).some((rs: any) => rs[0].tool === "search"))!;
    expect(Object.keys(ok)).toEqual(["id", "all_tool_calls", "all_tool_responses", "correct", "status"]);
    expect(ok.status).toBe("done");
    expect(typeof ok.id).toBe("string");
    expect(typeof ok.correct).toBe("boolean");
    const search = (Object.values(ok.all_tool_responses) as any[]).map((rs) => rs[0]).find((r) => r.tool === "search");
    expect(typeof search._query_llm_ms).toBe("number");
    expect(typeof search._retrieval_retries).toBe("number");
    for (const key of Object.keys(ok.all_tool_responses)) expect(key).toMatch(/^turn_\d+_response$/);
    // the component ms in the file are the final attempt's rows
    const [row] = (await db.$client.execute({ sql: "SELECT sum(lc.ms) AS s FROM latency_components lc JOIN tasks t ON t.id = lc.task_id AND lc.attempt = t.attempt WHERE t.external_id = ? AND t.run_id = 1 AND lc.component = 'query_llm'", args: [ok.id] })).rows as any;
    const fileSum = (Object.values(ok.all_tool_responses) as any[]).map((rs) => rs[0]._query_llm_ms ?? 0).reduce((a, b) => a + b, 0);
    expect(fileSum).toBeCloseTo(row.s ?? 0, 6);
  }, 20_000);

  test("--format csv --what latency writes a header and one row per latency component", async () => {
    const file = join(dir, "lat.csv");
    const { code } = await baton("export", "1", "--format", "csv", "--what", "latency", "--out", file, "--db", dbPath);
    expect(code).toBe(0);
    const lines = readFileSync(file, "utf8").trim().split("\n");
    const [row] = (await db.$client.execute("SELECT count(*) AS n FROM latency_components WHERE run_id = 1")).rows as any;
    expect(lines[0].split(",")).toContain("component");
    expect(lines.length - 1).toBe(row.n);
    // readable by its owner only, like the database it came from
    expect((statSync(file).mode & 0o777).toString(8)).toBe("600");
  }, 20_000);

  test("--format jsonl --what results writes one line per task to stdout", async () => {
    const { code, stdout } = await baton("export", "first", "--format", "jsonl", "--db", dbPath);
    expect(code).toBe(0);
    const rows = stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(rows.length).toBe(120);
    expect(Object.keys(rows[0])).toEqual(["id", "status", "correct", "prediction", "attempt", "steps", "error_class", "error_message", "started_at", "finished_at"]);
  }, 20_000);

  test("a bad format is refused before anything is written", async () => {
    const r = await baton("export", "1", "--format", "xml", "--db", dbPath);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--format: expected toolorchestra, jsonl or csv");
  }, 20_000);
});
