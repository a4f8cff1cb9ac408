// The web page in a real browser: Debian's chromium driven by playwright-core, against the
// real app on 127.0.0.1 over a REAL simulated run (run 1: the runner calling the simulators
// with seeded faults, test/_sim-run.ts) and a large generated run (run 2: queued and running
// tasks, latencies in seconds).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { generateRun } from "../../bench/gen-latency-rows";
import { createRun, validateTasks } from "../../db/runs";
import { createApp } from "../../functions/index";
import { makeSimRun, type SimRun } from "../_sim-run";

const ROOT = resolve(import.meta.dir, "../..");
const SCREENSHOTS = join(ROOT, "test-results");
let sim: SimRun;
let server: { stop(): void; port: number };
let browser: BrowserContext;
let base: string;

// The same formatting as ui/app.js, so the test compares what a user reads.
function ms(x: number | null): string {
  if (x == null) return "–";
  if (x < 1000) return x.toFixed(0) + " ms";
  if (x < 60000) return (x / 1000).toFixed(2) + " s";
  return (x / 60000).toFixed(1) + " min";
}

beforeAll(async () => {
  // CI machines start without a browser: the script installs Debian's chromium once.
  const setup = Bun.spawnSync(["bash", join(ROOT, "scripts/setup-chromium.sh")], { stdout: "inherit", stderr: "inherit" });
  if (setup.exitCode !== 0) throw new Error("scripts/setup-chromium.sh failed: the browser test needs /usr/bin/chromium");
  sim = await makeSimRun({ tasks: 120, name: "frames-sim" });
  await generateRun({ db: sim.db, tasks: 250, seed: 4, name: "frames-generated" });
  const app = createApp({ db: sim.db, token: null }).listen({ port: 0, hostname: "127.0.0.1" });
  server = { stop: () => app.stop(), port: app.server!.port! };
  base = `http://127.0.0.1:${server.port}`;
  // a fresh profile (--user-data-dir) in the temp dir: no state from any earlier run
  browser = await chromium.launchPersistentContext(join(sim.dir, "profile"), {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}, 600_000);

afterAll(async () => {
  await browser?.close();
  server?.stop();
  sim?.close();
});

describe("the web page", () => {
  async function openRun(id: number, width = 1360) {
    const page = await browser.newPage();
    await page.setViewportSize({ width, height: 900 });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`${base}/ui#/runs/${id}`);
    await page.waitForFunction(() => document.body.dataset.ready === "1", null, { timeout: 20_000 });
    return { page, errors };
  }

  test("the page of a real simulated run shows the counts, accuracy, percentiles and slowest call the API reports", async () => {
    const report = await (await fetch(`${base}/v1/runs/${sim.runId}/report`)).json();
    const { page, errors } = await openRun(sim.runId);
    const text = (sel: string) => page.textContent(sel);
    expect(await text('[data-testid="tasks-total"]')).toBe(String(sim.tasks));
    expect(await text('[data-testid="tasks-total"]')).toBe(String(report.tasks.total));
    expect(await text('[data-testid="tasks-succeeded"]')).toBe(String(report.tasks.succeeded));
    expect(await text('[data-testid="tasks-failed"]')).toBe(String(report.tasks.failed));
    // the seeded context-length refusals fail tasks: the page must show failures
    expect(report.tasks.failed).toBeGreaterThanOrEqual(sim.facts.contextLengthFailures);
    expect(await text('[data-testid="accuracy"]')).toBe(`${(100 * report.tasks.accuracy).toFixed(1)}%`);
    expect(await text('[data-testid="accuracy-excl"]')).toBe(`${(100 * report.tasks.accuracyExcludingInfra).toFixed(1)}%`);
    // p50/p95 per tool: the chart header and the tools table both say what the report says
    const toolRows = page.locator('[data-testid="tools"] tbody tr');
    expect(await toolRows.count()).toBe(report.tools.length);
    for (const t of report.tools) {
      expect(await text(`[data-testid="pcts-${t.tool}"] [data-k="p50"]`)).toBe(ms(t.p50));
      expect(await text(`[data-testid="pcts-${t.tool}"] [data-k="p95"]`)).toBe(ms(t.p95));
      const cells = await toolRows.filter({ has: page.locator("td:first-child", { hasText: new RegExp(`^${t.tool}$`) }) }).locator("td").allTextContents();
      expect(cells.slice(0, 4)).toEqual([t.tool, String(t.count), ms(t.p50), ms(t.p95)]);
    }
    expect(await text('[data-testid="pcts-all"] [data-k="p50"]')).toBe(ms(report.all.p50));
    // one chart per tool plus "all tools", each a uPlot canvas
    expect(await page.locator(".chart canvas").count()).toBe(report.tools.length + 1);
    // the slowest call first, with its duration
    const slowest = page.locator('[data-testid="slowest"] tbody tr');
    expect(await slowest.count()).toBe(report.slowest.length);
    const first = await slowest.first().locator("td").allTextContents();
    expect(first[0]).toBe(report.slowest[0].externalId);
    expect(first[5]).toBe(ms(report.slowest[0].durationMs));
    const [raw] = (await sim.db.$client.execute("SELECT max(duration_ms) AS m FROM tool_calls WHERE run_id = 1 AND status <> 'invalid'")).rows as any[];
    expect(first[5]).toBe(ms(raw.m));
    // the slow replica is in the endpoints table; the failed tasks are listed with their class
    expect(await page.locator('[data-testid="endpoints"]').textContent()).toContain(sim.facts.slowEndpoint);
    const failed = page.locator('[data-testid="failed"] tbody tr');
    expect(await failed.count()).toBe(report.failed.length);
    expect(await page.locator('[data-testid="failed"]').textContent()).toContain("context_length");
    // vLLM's long context-length message wraps in its cell instead of widening the page
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    expect(errors).toEqual([]);
    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: join(SCREENSHOTS, "run-page.png"), fullPage: true });
    expect(statSync(join(SCREENSHOTS, "run-page.png")).size).toBeGreaterThan(10_000);
    await page.close();
  }, 60_000);

  test("the page of a large generated run shows its counts and percentiles in seconds", async () => {
    const runId = sim.runId + 1;
    const report = await (await fetch(`${base}/v1/runs/${runId}/report`)).json();
    const search = await (await fetch(`${base}/v1/runs/${runId}/latency?tool=search`)).json();
    const { page, errors } = await openRun(runId);
    expect(await page.textContent('[data-testid="tasks-total"]')).toBe(String(report.tasks.total));
    expect(await page.textContent('[data-testid="tasks-failed"]')).toBe(String(report.tasks.failed));
    expect(await page.textContent('[data-testid="accuracy"]')).toBe(`${(100 * report.tasks.accuracy).toFixed(1)}%`);
    expect(await page.textContent('[data-testid="pcts-search"] [data-k="p50"]')).toBe(ms(search.p50));
    expect(await page.textContent('[data-testid="pcts-search"] [data-k="p95"]')).toBe(ms(search.p95));
    expect(await page.locator(".chart canvas").count()).toBe(report.tools.length + 1);
    expect(await page.locator('[data-testid="slowest"] tbody tr').count()).toBe(report.slowest.length);
    expect(errors).toEqual([]);
    await page.screenshot({ path: join(SCREENSHOTS, "generated-run-page.png"), fullPage: true });
    await page.close();
  }, 60_000);

  test("the runs list shows each run with its progress and links to it", async () => {
    const page = await browser.newPage();
    await page.setViewportSize({ width: 1360, height: 500 });
    await page.goto(`${base}/ui#/`);
    await page.waitForSelector('[data-testid="runs"] tbody tr', { timeout: 20_000 });
    const row = page.locator('[data-testid="runs"] tbody tr', { hasText: "frames-sim" }).first();
    expect(await row.textContent()).toContain(String(sim.tasks));
    await page.screenshot({ path: join(SCREENSHOTS, "runs-page.png") });
    await row.locator("a").click();
    await page.waitForFunction(() => document.body.dataset.ready === "1", null, { timeout: 20_000 });
    expect(page.url()).toEndWith("#/runs/1");
    await page.close();
  }, 60_000);

  test("the runs list says what a run waits for while nothing serves one of its models", async () => {
    const { run } = await createRun({
      db: sim.db,
      name: "frames-waits",
      benchmark: "frames",
      config: { orchestrator: { model: "nobody/serves-this" } },
      tasks: validateTasks({ rows: [{ id: "w1", question: "q", answer: "a" }] }),
    });
    const page = await browser.newPage();
    await page.goto(`${base}/ui#/`);
    const waits = page.locator(`[data-testid="waits-${run.id}"]`);
    await waits.waitFor({ timeout: 20_000 });
    expect(await waits.textContent()).toContain("waits for orchestrator → nobody/serves-this: 0 healthy");
    // a finished run waits for nothing
    expect(await page.locator('[data-testid="waits-1"]').count()).toBe(0);
    await page.close();
  }, 60_000);
});
