// The sweep page in a real browser (Debian's chromium via playwright-core) over a REAL simulated
// sweep: 2 temperatures × 2 repeats of 3 FRAMES questions, created by POST /v1/sweeps and worked
// by a real runner against the simulated cluster, served by the real app on 127.0.0.1 with a token.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { DbQueue } from "../../runner/queue-db";
import { Runner } from "../../runner/runner";
import { writeConfigDocument } from "../../db/config-wire";
import { readJsonl, simRunConfig as simRunConfigInCode, startWorld, type World } from "../runner/_harness";

// the API's spelling of the simulators' run config
const simRunConfig = () => writeConfigDocument(simRunConfigInCode());

const ROOT = resolve(import.meta.dir, "../..");
const SCREENSHOTS = join(ROOT, "test-results");
const TOKEN = "test-token";
const rows = readJsonl("data/frames-sample.jsonl").slice(0, 3);
let world: World;
let browser: BrowserContext;
let sweepId: number;
let runIds: number[];

// The same formatting as ui/app.js and ui/sweep.js, so the test compares what a user reads.
const pct = (x: number | null) => (x == null ? "–" : (100 * x).toFixed(1) + "%");
function ms(x: number | null): string {
  if (x == null) return "–";
  if (x < 1000) return x.toFixed(0) + " ms";
  if (x < 60000) return (x / 1000).toFixed(2) + " s";
  return (x / 60000).toFixed(1) + " min";
}
const count = (n: number) => n.toLocaleString("en-US");
const api = async (path: string, init: RequestInit = {}) =>
  fetch(`${world.server.url}${path}`, { ...init, headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}`, ...init.headers } });

beforeAll(async () => {
  const setup = Bun.spawnSync(["bash", join(ROOT, "scripts/setup-chromium.sh")], { stdout: "inherit", stderr: "inherit" });
  if (setup.exitCode !== 0) throw new Error("scripts/setup-chromium.sh failed: the browser test needs /usr/bin/chromium");
  mkdirSync(SCREENSHOTS, { recursive: true });
  world = await startWorld({ rows, token: TOKEN });
  const res = await api("/v1/sweeps", {
    method: "POST",
    body: JSON.stringify({ name: "temps", benchmark: "frames", config: simRunConfig(), vary: [{ path: "orchestrator.temperature", values: [0.6, 1.0] }], tasks: rows, repeats: 2 }),
  });
  expect(res.status).toBe(201);
  const made = (await res.json()) as { sweep_id: number; runs: { run_id: number }[] };
  sweepId = made.sweep_id;
  runIds = made.runs.map((r) => r.run_id);
  await runAll();
  browser = await chromium.launchPersistentContext(join(world.dir, "profile"), {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  // log in once the way `baton serve`'s link does: the cookie serves every page after it
  const login = await browser.newPage();
  await login.goto(`${world.server.url}/ui?token=${TOKEN}`);
  await login.close();
}, 600_000);

// a real runner over every queued task, against the simulated cluster, until none is left
async function runAll() {
  await new Runner({
    queue: new DbQueue(world.db, { backoff: { baseMs: 20, capMs: 40 } }),
    concurrency: 4,
    runId: null,
    leaseMs: 5_000,
    pollMs: 20,
    exitWhenIdle: true,
    endpointRefreshMs: 60_000,
    log: () => {},
  }).run();
}

afterAll(async () => {
  await browser?.close();
  await world?.close();
});

async function open(hash: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  await page.setViewportSize({ width: 1360, height: 700 });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${world.server.url}/ui#${hash}`);
  await page.waitForFunction(() => document.body.dataset.ready === "1", null, { timeout: 20_000 });
  return { page, errors };
}

// what a row reads, cell by cell, keyed by the data-k marks of ui/sweep.js
function readRows(page: Page) {
  return page.$$eval('[data-testid="sweep"] tbody tr', (trs) =>
    trs.map((tr) => {
      const one = (k: string) => tr.querySelector(`[data-k="${k}"]`)?.textContent ?? null;
      const bar = tr.querySelector<HTMLElement>(".ci-bar");
      const range = tr.querySelector<HTMLElement>(".ci-range");
      const point = tr.querySelector<HTMLElement>(".ci-point");
      const barBox = bar!.getBoundingClientRect();
      const rangeBox = range!.getBoundingClientRect();
      return {
        run: one("run"),
        href: tr.querySelector('[data-k="run"]')?.getAttribute("href"),
        values: Array.from(tr.querySelectorAll('[data-k="value"]')).map((e) => e.textContent),
        finished: one("finished"),
        accuracy: one("accuracy"),
        interval: one("interval"),
        pass: one("pass"),
        passHat: one("pass-hat"),
        tokens: one("tokens"),
        tools: Object.fromEntries(Array.from(tr.querySelectorAll<HTMLElement>('[data-k="tool"]')).map((e) => [e.dataset.tool, e.textContent])),
        vs: one("vs"),
        // where the whiskers and the dot are drawn, as shares of the bar's width
        drawn: {
          lo: (rangeBox.left - barBox.left) / barBox.width,
          hi: (rangeBox.right - barBox.left) / barBox.width,
          acc: (point!.getBoundingClientRect().left + point!.getBoundingClientRect().width / 2 - barBox.left) / barBox.width,
        },
      };
    }),
  );
}

describe("the sweep page", () => {
  test("shows one row per configuration, equal to GET /v1/sweeps/:id/report, with the interval drawn where it lies", async () => {
    const report = (await (await api(`/v1/sweeps/${sweepId}/report`)).json()) as any;
    expect(report.rows.map((r: any) => r.run_id)).toEqual(runIds);
    // the sweep really ran: every configuration finished its 6 tasks and called tools
    for (const r of report.rows) expect(r.finished).toBe(6);
    const { page, errors } = await open(`/sweeps/${sweepId}`);
    const seen = await readRows(page);
    const tools = [...new Set(report.rows.flatMap((r: any) => Object.keys(r.tools)))].sort() as string[];
    expect(tools.length).toBeGreaterThan(0);
    expect(seen).toHaveLength(2);
    seen.forEach((row, i) => {
      const r = report.rows[i];
      expect(row).toMatchObject({
        run: String(r.run_id),
        href: `#/runs/${r.run_id}`,
        values: [String(r.values["orchestrator.temperature"])],
        finished: `${r.finished}/${r.tasks}`,
        accuracy: pct(r.accuracy),
        interval: `[${pct(r.interval.lo)}, ${pct(r.interval.hi)}]`,
        pass: pct(r.pass_at_k["2"]),
        passHat: pct(r.pass_hat_k["2"]),
        tokens: `${count(r.prompt_tokens)} / ${count(r.completion_tokens)}`,
        tools: Object.fromEntries(tools.map((t) => [t, r.tools[t] ? `${ms(r.tools[t].p50)} / ${ms(r.tools[t].p95)}` : "–"])),
        vs: r.best ? "best" : r.significant === false ? `n.s. (p=${r.p_value_vs_best.toFixed(2)})` : r.significant ? `p=${r.p_value_vs_best.toFixed(3)}` : "–",
      });
      // within a pixel and a half of a 140 px bar
      expect(Math.abs(row.drawn.lo - r.interval.lo)).toBeLessThan(0.01);
      expect(Math.abs(row.drawn.hi - r.interval.hi)).toBeLessThan(0.01);
      expect(Math.abs(row.drawn.acc - r.accuracy)).toBeLessThan(0.01);
    });
    expect(seen.map((r) => r.values[0])).toEqual(["0.6", "1"]);
    expect(seen.filter((r) => r.vs === "best")).toHaveLength(1);
    // 6 tries per configuration (and a simulator that answers alike at both temperatures): the
    // other one cannot be told apart from the best
    expect(seen.filter((r) => r.vs !== "best")[0].vs).toStartWith("n.s. (p=");
    expect(await page.getByTestId("configurations").textContent()).toBe("2");
    expect(await page.getByTestId("compare-link").getAttribute("href")).toBe(`#/compare/${runIds.join(",")}`);
    await page.screenshot({ path: join(SCREENSHOTS, "sweep-page.png"), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  test("each row links to its run page, and that run's page links back to its sweep", async () => {
    const { page, errors } = await open(`/sweeps/${sweepId}`);
    await page.evaluate(() => delete document.body.dataset.ready);
    await page.locator('[data-testid="sweep"] tbody tr').nth(1).locator('[data-k="run"]').click();
    await page.waitForFunction(() => document.body.dataset.ready === "1", null, { timeout: 20_000 });
    expect(new URL(page.url()).hash).toBe(`#/runs/${runIds[1]}`);
    const back = page.getByTestId("sweep-link");
    expect(await back.textContent()).toBe(`sweep ${sweepId} (orchestrator.temperature=1) →`);
    await page.evaluate(() => delete document.body.dataset.ready);
    await back.click();
    await page.waitForFunction(() => document.body.dataset.ready === "1", null, { timeout: 20_000 });
    expect(new URL(page.url()).hash).toBe(`#/sweeps/${sweepId}`);
    expect(await page.locator('[data-testid="sweep"] tbody tr').count()).toBe(2);
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  test("a sweep still working is followed live: its rows fill in without a reload, and one repeat shows no pass@k", async () => {
    const res = await api("/v1/sweeps", {
      method: "POST",
      body: JSON.stringify({ name: "rounds", benchmark: "frames", config: simRunConfig(), vary: [{ path: "max_rounds", values: [10, 12] }], tasks: rows.slice(0, 1) }),
    });
    expect(res.status).toBe(201);
    const { sweep_id: id } = (await res.json()) as { sweep_id: number };
    const { page, errors } = await open(`/sweeps/${id}`);
    expect(await page.getByTestId("sweep-finished").textContent()).toBe("0/2");
    expect(await page.locator('[data-testid="sweep"] [data-k="accuracy"]').allTextContents()).toEqual(["–", "–"]);
    expect(await page.locator('[data-testid="sweep"] th').allTextContents()).not.toContain("pass@1");
    await runAll();
    // the page polls every 5 s: six polls' worth of margin
    await page.waitForFunction(() => document.querySelector('[data-testid="sweep-finished"]')?.textContent === "2/2", null, { timeout: 30_000 });
    const report = (await (await api(`/v1/sweeps/${id}/report`)).json()) as any;
    const seen = await readRows(page);
    expect(seen.map((r) => [r.values[0], r.finished, r.accuracy, r.pass])).toEqual(report.rows.map((r: any) => [String(r.values.max_rounds), "1/1", pct(r.accuracy), null]));
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  test("a run outside any sweep has no sweep link, and an unknown sweep says so", async () => {
    const res = await api("/v1/runs", { method: "POST", body: JSON.stringify({ name: "plain", benchmark: "frames", config: simRunConfig(), tasks: rows.slice(0, 1) }) });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: number };
    const { page } = await open(`/runs/${id}`);
    expect(await page.getByTestId("tasks-link").count()).toBe(1);
    expect(await page.getByTestId("sweep-link").count()).toBe(0);
    await page.goto(`${world.server.url}/ui#/sweeps/999999`);
    await page.locator(".err").waitFor({ timeout: 20_000 });
    expect(await page.locator(".err").textContent()).toBe("sweep 999999 not found");
    await page.close();
  }, 60_000);
});
