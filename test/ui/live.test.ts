// The run page while a run really runs: the real runner calls the simulators (slow enough
// that a task takes seconds), and the page, opened once, follows it to the end without a
// reload. Every wait is on a condition the page shows, never on a clock.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { closeDb, openDb, type Db } from "../../db/client";
import { importToolOrchestraConfig } from "../../db/endpoints";
import { createRun } from "../../db/runs";
import { createApp } from "../../functions/index";
import { DbQueue } from "../../runner/queue-db";
import { Runner } from "../../runner/runner";
import { startSimCluster, type SimCluster } from "../../sim/cluster";
import { EXPERT_MODELS } from "../../sim/models";
import { answersOf, readJsonl, simRunConfig } from "../runner/_harness";

const ROOT = resolve(import.meta.dir, "../..");
const TASKS = 8;
let dir: string;
let db: Db;
let cluster: SimCluster;
let app: ReturnType<typeof createApp>;
let base: string;
let browser: Browser;

beforeAll(async () => {
  const setup = Bun.spawnSync(["bash", join(ROOT, "scripts/setup-chromium.sh")], { stdout: "inherit", stderr: "inherit" });
  if (setup.exitCode !== 0) throw new Error("scripts/setup-chromium.sh failed: the browser test needs /usr/bin/chromium");
  dir = mkdtempSync(join(tmpdir(), "baton-ui-live-"));
  db = await openDb({ url: `file:${join(dir, "b.db")}` });
  const rows = readJsonl("data/frames-sample.jsonl").slice(0, TASKS);
  // 400 ms to the first token: each model call takes that long, so a task lasts seconds
  cluster = await startSimCluster({
    seed: 11,
    answers: answersOf(rows),
    accuracy: 0.7,
    experts: { models: EXPERT_MODELS.slice(0, 3), replicas: 1 },
    latency: { ttftMs: 400, perTokenMs: 0.05, jitter: 0.1 },
    retrieval: { latency: { ms: 50, jitter: 0.1 } },
  });
  await importToolOrchestraConfig({ db, config: cluster.config });
  await createRun({ db, name: "frames-live", benchmark: "frames", config: simRunConfig(), tasks: rows.map((r) => ({ externalId: r.id, input: r })), maxAttempts: 2 });
  app = createApp({ db, token: null }).listen({ port: 0, hostname: "127.0.0.1" });
  base = `http://127.0.0.1:${app.server!.port}`;
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"] });
}, 600_000);

afterAll(async () => {
  await browser?.close();
  app?.stop();
  await cluster?.stop();
  if (db) closeDb(db);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the run page follows a real run from queued to done without a reload", async () => {
  const page = await browser.newPage();
  await page.setViewportSize({ width: 1360, height: 900 });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${base}/ui#/runs/1`);
  await page.waitForFunction(() => document.body.dataset.ready === "1", null, { timeout: 20_000 });
  expect(await page.textContent('[data-testid="progress"]')).toBe(`0/${TASKS}`);
  await page.evaluate(() => ((window as any).__same_page = true));

  const runner = new Runner({ queue: new DbQueue(db), concurrency: 2, runId: 1, leaseMs: 30_000, pollMs: 50, exitWhenIdle: true, idleGraceMs: 500, log: () => {} });
  const running = runner.run();
  try {
    // while tasks run: the in-flight table names what each waits on, at a simulator's address
    await page.waitForFunction(
      () => Array.from(document.querySelectorAll('[data-testid="inflight"] tbody tr')).some((tr) => tr.children[5]?.textContent?.includes("127.0.0.1:")),
      null,
      { timeout: 30_000 },
    );
    const endpoints = await page.locator('[data-testid="inflight"] tbody tr td:nth-child(6)').allTextContents();
    const hosts = cluster.replicas.map((r) => new URL(r.sim.url).host);
    const shown = endpoints.filter((e) => e.includes("127.0.0.1:"));
    expect(shown.length).toBeGreaterThan(0);
    for (const e of shown) expect(hosts.some((h) => e.includes(h))).toBe(true);
    await page.screenshot({ path: join(ROOT, "test-results", "live-real-run.png") });
    // part-way: some finished, some not, numbers as the API counts them a moment later
    await page.waitForFunction(
      (n) => {
        const done = Number(document.querySelector('[data-testid="tasks-finished"]')?.textContent);
        return done > 0 && done < n;
      },
      TASKS,
      { timeout: 60_000 },
    );
    // to the end
    await page.waitForFunction(() => document.querySelector('[data-testid="state"]')?.textContent === "done", null, { timeout: 120_000 });
  } finally {
    await running;
  }
  const summary = await (await fetch(`${base}/v1/runs/1`)).json();
  expect(await page.textContent('[data-testid="progress"]')).toBe(`${TASKS}/${TASKS}`);
  expect(await page.textContent('[data-testid="tasks-finished"]')).toBe(String(summary.finished));
  expect(await page.textContent('[data-testid="accuracy"]')).toBe(summary.accuracy == null ? "–" : `${(100 * summary.accuracy).toFixed(1)}%`);
  await page.waitForSelector('[data-testid="inflight-empty"]', { timeout: 20_000 });
  // the charts were redrawn for the finished run: one per tool plus "all tools"
  await page.waitForFunction(() => document.querySelectorAll("#charts .chart canvas").length > 1, null, { timeout: 20_000 });
  expect(await page.evaluate(() => (window as any).__same_page)).toBe(true);
  expect(errors).toEqual([]);
  mkdirSync(join(ROOT, "test-results"), { recursive: true });
  await page.screenshot({ path: join(ROOT, "test-results", "live-real-run-done.png"), fullPage: true });
  await page.close();
}, 300_000);
