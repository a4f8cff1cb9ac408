// The web page in a real browser: Debian's chromium driven by playwright-core, against the
// real app on 127.0.0.1 over a temp database with a generated run.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { generateRun } from "../../bench/gen-latency-rows";
import { closeDb, openDb, type Db } from "../../db/client";
import { createApp } from "../../functions/index";

const ROOT = resolve(import.meta.dir, "../..");
const SCREENSHOTS = join(ROOT, "test-results");
let dir: string;
let db: Db;
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
  dir = mkdtempSync(join(tmpdir(), "baton-ui-"));
  db = await openDb({ url: join(dir, "ui.db") });
  await generateRun({ db, tasks: 250, seed: 4, name: "frames-sample" });
  const app = createApp({ db, token: null }).listen({ port: 0, hostname: "127.0.0.1" });
  server = { stop: () => app.stop(), port: app.server!.port! };
  base = `http://127.0.0.1:${server.port}`;
  // a fresh profile (--user-data-dir) in the temp dir: no state from any earlier run
  browser = await chromium.launchPersistentContext(join(dir, "profile"), {
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
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

describe("the web page", () => {
  test("the run page shows the counts and percentiles the API reports, with charts", async () => {
    const report = await (await fetch(`${base}/v1/runs/1/report`)).json();
    const search = await (await fetch(`${base}/v1/runs/1/latency?tool=search`)).json();
    const page = await browser.newPage();
    await page.setViewportSize({ width: 1360, height: 900 });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`${base}/ui#/runs/1`);
    await page.waitForFunction(() => document.body.dataset.ready === "1", null, { timeout: 20_000 });
    expect(await page.textContent('[data-testid="tasks-total"]')).toBe(String(report.tasks.total));
    expect(await page.textContent('[data-testid="tasks-failed"]')).toBe(String(report.tasks.failed));
    expect(await page.textContent('[data-testid="accuracy"]')).toBe(`${(100 * report.tasks.accuracy).toFixed(1)}%`);
    expect(await page.textContent('[data-testid="pcts-search"] [data-k="p50"]')).toBe(ms(search.p50));
    expect(await page.textContent('[data-testid="pcts-search"] [data-k="p95"]')).toBe(ms(search.p95));
    // one chart per tool plus "all tools", each a uPlot canvas
    expect(await page.locator(".chart canvas").count()).toBe(report.tools.length + 1);
    expect(await page.locator('[data-testid="slowest"] tbody tr').count()).toBe(report.slowest.length);
    expect(await page.locator('[data-testid="failed"] tbody tr').count()).toBe(report.failed.length);
    expect(errors).toEqual([]);
    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: join(SCREENSHOTS, "run-page.png"), fullPage: true });
    expect(statSync(join(SCREENSHOTS, "run-page.png")).size).toBeGreaterThan(10_000);
    await page.close();
  }, 60_000);

  test("the runs list shows each run with its progress and links to it", async () => {
    const page = await browser.newPage();
    await page.setViewportSize({ width: 1360, height: 500 });
    await page.goto(`${base}/ui#/`);
    await page.waitForSelector('[data-testid="runs"] tbody tr', { timeout: 20_000 });
    const row = page.locator('[data-testid="runs"] tbody tr').first();
    expect(await row.textContent()).toContain("frames-sample");
    await page.screenshot({ path: join(SCREENSHOTS, "runs-page.png") });
    await row.locator("a").click();
    await page.waitForFunction(() => document.body.dataset.ready === "1", null, { timeout: 20_000 });
    expect(page.url()).toEndWith("#/runs/1");
    await page.close();
  }, 60_000);
});
