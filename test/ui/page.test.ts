// The web page in a real browser: Debian's chromium driven by playwright-core, against the
// real app on 127.0.0.1 over a REAL simulated run (run 1: the runner calling the simulators
// with seeded faults, test/_sim-run.ts) and a large generated run (run 2: queued and running
// tasks, latencies in seconds).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { generateRun } from "../../bench/gen-latency-rows";
import { claimTasks, completeTask, failTask } from "../../db/queue";
import { encodeTranscript, recordRows } from "../../db/rows";
import { createRun, validateTasks } from "../../db/runs";
import { createApp } from "../../functions/index";
import { runBaton } from "../cli/_helpers";
import { makeSimRun, type SimRun } from "../_sim-run";

const ROOT = resolve(import.meta.dir, "../..");
const SCREENSHOTS = join(ROOT, "test-results");
let sim: SimRun;
let server: { stop(): void; port: number };
let browser: BrowserContext;
let base: string;

// The same formatting as ui/app.js, so the test compares what a user reads.
const pct = (x: number | null) => (x == null ? "–" : (100 * x).toFixed(1) + "%");
// 95% Wilson interval, as ui/compare.js computes it
function wilson(k: number, n: number, z = 1.96): [number, number] {
  const p = k / n;
  const d = 1 + (z * z) / n;
  const center = (p + (z * z) / (2 * n)) / d;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / d;
  return [Math.max(0, center - half), Math.min(1, center + half)];
}
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
    // one meaning per number: the cards are the summary's accuracy and scores
    const summary = await (await fetch(`${base}/v1/runs/${sim.runId}`)).json();
    expect(await text('[data-testid="accuracy"]')).toBe(pct(summary.correct / (summary.counts.succeeded + summary.counts.failed)));
    expect(await text('[data-testid="score"]')).toBe(pct(summary.correct / sim.tasks));
    expect(await text('[data-testid="score-excl"]')).toBe(pct(summary.score_excluding_infra));
    // the report's all-tasks number is the score
    expect(await text('[data-testid="score"]')).toBe(pct(report.tasks.score));
    expect(await text('[data-testid="accuracy"]')).toBe(pct(report.tasks.accuracy));
    expect(await text('[data-testid="tasks-missing"]')).toBe(String(summary.counts.failed + summary.counts.canceled));
    expect(await text('[data-testid="tasks-not-finished"]')).toBe("0");
    expect(await text('[data-testid="missing-count"]')).toBe(String(summary.missing));
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
    expect(await page.locator("#charts .chart canvas").count()).toBe(report.tools.length + 1);
    // the slowest call first, with its duration
    const slowest = page.locator('[data-testid="slowest"] tbody tr');
    expect(await slowest.count()).toBe(report.slowest.length);
    const first = await slowest.first().locator("td").allTextContents();
    expect(first[0]).toBe(report.slowest[0].external_id);
    expect(first[5]).toBe(ms(report.slowest[0].duration_ms));
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
    const summary = await (await fetch(`${base}/v1/runs/${runId}`)).json();
    expect(await page.textContent('[data-testid="accuracy"]')).toBe(pct(summary.accuracy));
    expect(await page.textContent('[data-testid="score"]')).toBe(pct(summary.score));
    // queued tasks are not finished, not missing
    expect(await page.textContent('[data-testid="tasks-not-finished"]')).toBe(String(summary.counts.queued + summary.counts.running));
    expect(await page.textContent('[data-testid="tasks-missing"]')).toBe(String(summary.counts.failed + summary.counts.canceled));
    expect(await page.textContent('[data-testid="missing-count"]')).toBe(String(summary.missing));
    expect(await page.textContent('[data-testid="pcts-search"] [data-k="p50"]')).toBe(ms(search.p50));
    expect(await page.textContent('[data-testid="pcts-search"] [data-k="p95"]')).toBe(ms(search.p95));
    expect(await page.locator("#charts .chart canvas").count()).toBe(report.tools.length + 1);
    expect(await page.locator('[data-testid="slowest"] tbody tr').count()).toBe(report.slowest.length);
    expect(errors).toEqual([]);
    await page.screenshot({ path: join(SCREENSHOTS, "generated-run-page.png"), fullPage: true });
    await page.close();
  }, 60_000);

  test("the run page's export links download what the export route streams", async () => {
    const runId = sim.runId + 1;
    const { page, errors } = await openRun(runId);
    for (const [testid, query] of [["export-results", "format=csv&what=results"], ["export-latency", "format=csv&what=latency"], ["export-toolorchestra", "format=toolorchestra"]]) {
      const [download] = await Promise.all([page.waitForEvent("download"), page.click(`[data-testid="${testid}"]`)]);
      const saved = join(sim.dir, `${testid}.download`);
      await download.saveAs(saved);
      const expected = await (await fetch(`${base}/v1/runs/${runId}/export?${query}`)).text();
      expect(expected.split("\n").length).toBeGreaterThan(100);
      expect({ testid, same: (await Bun.file(saved).text()) === expected }).toEqual({ testid, same: true });
    }
    expect(errors).toEqual([]);
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
  test("the run page follows a run live: numbers, progress and the in-flight table change without a reload", async () => {
    const rows = Array.from({ length: 6 }, (_, i) => ({ id: `live-${i}`, question: `live question ${i}`, answer: "a" }));
    const { run } = await createRun({ db: sim.db, name: "frames-live", benchmark: "frames", tasks: validateTasks({ rows }), maxAttempts: 1 });
    const { page, errors } = await openRun(run.id);
    const text = (id: string) => page.textContent(`[data-testid="${id}"]`);
    expect(await text("tasks-not-finished")).toBe("6");
    expect(await text("progress")).toBe("0/6");
    expect(await page.locator('[data-testid="inflight-empty"]').count()).toBe(1);
    // a marker on the window survives only if the page is never reloaded
    await page.evaluate(() => ((window as any).__same_page = true));
    const claimed = await claimTasks({ db: sim.db, runnerId: "ui-live", limit: 4, leaseMs: 600_000, runId: run.id });
    expect(claimed.length).toBe(4);
    for (const t of claimed.slice(0, 3)) await completeTask({ db: sim.db, taskId: t.id, leaseToken: t.leaseToken, result: { prediction: "a", correct: t.externalId !== "live-0" } });
    await page.waitForFunction(() => document.querySelector('[data-testid="progress"]')?.textContent === "3/6", null, { timeout: 20_000 });
    const summary = await (await fetch(`${base}/v1/runs/${run.id}`)).json();
    expect(await text("tasks-finished")).toBe("3");
    expect(await text("tasks-running")).toBe("1");
    expect(await text("tasks-queued")).toBe("2");
    expect(await text("accuracy")).toBe(pct(2 / 3));
    expect(await text("score")).toBe(pct(2 / 6));
    expect(await text("accuracy")).toBe(pct(summary.accuracy));
    expect(await text("rate")).toContain("tasks/min");
    // the one running task is in the in-flight table, linked to its task page
    await page.waitForSelector('[data-testid="inflight"] tbody tr', { timeout: 20_000 });
    const inflight = await (await fetch(`${base}/v1/runs/${run.id}/inflight`)).json();
    expect(inflight.tasks.map((t: any) => t.external_id)).toEqual([claimed[3].externalId]);
    expect(await page.locator('[data-testid="inflight"] tbody tr').allTextContents()).toEqual([expect.stringContaining(claimed[3].externalId)]);
    expect(await page.evaluate(() => (window as any).__same_page)).toBe(true);
    expect(Number(await page.evaluate(() => document.body.dataset.polls))).toBeGreaterThan(0);
    await completeTask({ db: sim.db, taskId: claimed[3].id, leaseToken: claimed[3].leaseToken, result: { prediction: "b", correct: false } });
    await page.waitForSelector('[data-testid="inflight-empty"]', { timeout: 20_000 });
    expect(await page.evaluate(() => (window as any).__same_page)).toBe(true);
    expect(errors).toEqual([]);
    await page.screenshot({ path: join(SCREENSHOTS, "live-run-page.png") });
    await page.close();
  }, 60_000);

  test("a task page shows every step with the values the steps API returns", async () => {
    // the task of the simulated run with the most steps that ran code, and one that failed
    const [many] = (await sim.db.$client.execute(
      `SELECT task_id AS id FROM tool_calls WHERE run_id = ${sim.runId} GROUP BY task_id
       ORDER BY max(tool = 'enhance_reasoning' AND status = 'ok') DESC, count(*) DESC, task_id LIMIT 1`,
    )).rows as any[];
    const ranCode = (await (await fetch(`${base}/v1/tasks/${many.id}/steps`)).json()).steps.filter((s: any) => s.transcript?.code);
    expect(ranCode.length).toBeGreaterThan(0);
    const [failed] = (await sim.db.$client.execute(`SELECT id FROM tasks WHERE run_id = ${sim.runId} AND status = 'failed' ORDER BY id LIMIT 1`)).rows as any[];
    for (const id of [Number(many.id), Number(failed.id)]) {
      const steps = await (await fetch(`${base}/v1/tasks/${id}/steps`)).json();
      const task = await (await fetch(`${base}/v1/tasks/${id}`)).json();
      const page = await browser.newPage();
      await page.setViewportSize({ width: 1360, height: 900 });
      await page.goto(`${base}/ui#/tasks/${id}`);
      await page.waitForFunction(() => document.body.dataset.ready === "1", null, { timeout: 20_000 });
      expect(await page.textContent('[data-testid="task-status"]')).toBe(task.status);
      const shown = page.locator('[data-testid="step"]');
      expect(await shown.count()).toBe(steps.steps.length);
      expect(steps.steps.length).toBeGreaterThan(0);
      for (const [i, s] of steps.steps.entries()) {
        const el = shown.nth(i);
        expect(await el.getAttribute("data-step")).toBe(String(s.step));
        expect(await el.locator('[data-k="tool"]').textContent()).toBe(s.tool_call.tool);
        expect(await el.locator('[data-k="status"]').textContent()).toBe(s.tool_call.status);
        expect(await el.locator('[data-k="duration"]').textContent()).toBe(ms(s.tool_call.duration_ms));
        // every latency component with its endpoint
        expect(await el.locator('[data-testid="components"] [data-k="ms"]').allTextContents()).toEqual(s.components.map((c: any) => ms(c.ms)));
        for (const c of s.components) if (c.endpoint) expect(await el.locator('[data-testid="components"]').textContent()).toContain(c.endpoint);
        // the orchestrator's raw reply and tool call, the tool's input and output
        const orch = s.transcript.llm.find((l: any) => l.component === "orchestrator");
        const body = (await el.textContent())!;
        if (orch?.reply?.reasoning) expect(body).toContain(orch.reply.reasoning);
        if (orch?.error) expect(await el.locator('[data-k="llm-error"]').first().textContent()).toBe(orch.error);
        for (const call of orch?.reply?.tool_calls ?? []) expect(body).toContain(call.name);
        if (s.transcript.retrieval) {
          const titles = s.transcript.retrieval.documents.map((d: any) => String(d.contents).split("\n")[0]);
          expect(await el.locator(".doc-title").allTextContents()).toEqual(titles);
          expect(body).toContain(s.transcript.retrieval.request.queries[0]);
        }
        if (s.transcript.code) {
          expect(await el.locator('[data-k="code"] pre.code').textContent()).toBe(s.transcript.code.code);
          expect(await el.locator('[data-k="code"] pre.stdout').textContent()).toBe(s.transcript.code.stdout);
        }
        if (s.transcript.grade) expect(await el.locator('[data-k="grade"] pre').textContent()).toBe(JSON.stringify(s.transcript.grade, null, 2));
      }
      await page.screenshot({ path: join(SCREENSHOTS, `task-page-${task.status}.png`), fullPage: true });
      await page.close();
    }
  }, 60_000);

  test("the task table's filters return what the API returns", async () => {
    const page = await browser.newPage();
    await page.setViewportSize({ width: 1360, height: 900 });
    await page.goto(`${base}/ui#/runs/${sim.runId}/tasks`);
    await page.waitForFunction(() => document.body.dataset.ready === "1", null, { timeout: 20_000 });
    const ids = async () => page.locator('[data-testid="tasks"] tbody tr td:first-child a').evaluateAll((as) => as.map((a) => Number(a.getAttribute("data-id"))));
    const api = async (q: string) => (await (await fetch(`${base}/v1/runs/${sim.runId}/tasks?limit=100&${q}`)).json()).tasks.map((t: any) => t.id);
    expect(await ids()).toEqual(await api(""));
    const cases: [Record<string, string>, string][] = [
      [{ status: "succeeded", correct: "false", tool: "search" }, "status=succeeded&correct=false&tool=search"],
      [{ status: "failed" }, "status=failed"],
      [{ min_steps: "4", tool: "enhance_reasoning" }, "min_steps=4&tool=enhance_reasoning"],
      [{ q: "first lady" }, "q=first+lady"],
    ];
    for (const [form, query] of cases) {
      await page.click('#filters a:text("clear")');
      await page.waitForFunction(() => document.body.dataset.ready === "1" && location.hash.endsWith("/tasks"), null, { timeout: 20_000 });
      for (const [k, v] of Object.entries(form)) {
        const el = page.locator(`#filters [name="${k}"]`);
        if ((await el.evaluate((e) => e.tagName)) === "SELECT") await el.selectOption(v);
        else await el.fill(v);
      }
      await page.click('#filters button[type="submit"]');
      await page.waitForFunction((q) => document.body.dataset.ready === "1" && location.hash.includes(q), Object.keys(form)[0], { timeout: 20_000 });
      const expected = await api(query);
      expect(expected.length).toBeGreaterThan(0);
      expect(await ids()).toEqual(expected);
    }
    await page.screenshot({ path: join(SCREENSHOTS, "task-table.png") });
    // a misspelt filter is refused by name instead of returning the whole run
    const bad = await fetch(`${base}/v1/runs/${sim.runId}/tasks?stauts=failed`);
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.message).toBe("query.stauts: unknown query parameter");
    await page.close();
  }, 60_000);

  test("the page draws calls, errors and latency over time per endpoint and per tool, as the timeline API counts them", async () => {
    const timeline = await (await fetch(`${base}/v1/runs/${sim.runId}/timeline`)).json();
    const { page } = await openRun(sim.runId);
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    for (const [kind, list] of [["endpoint", timeline.endpoints], ["tool", timeline.tools]] as const) {
      expect(await page.locator(`[data-testid^="tl-${kind}-"]`).count()).toBe(list.length);
      for (const s of list) {
        const box = page.locator(`[data-testid="tl-${kind}-${s.key}"]`);
        expect(await box.locator('[data-k="calls"]').textContent()).toBe(String(sum(s.calls)));
        expect(await box.locator('[data-k="errors"]').textContent()).toBe(String(sum(Object.values(s.errors).flat() as number[])));
        expect(await box.locator("canvas").count()).toBe(1);
      }
    }
    // the flaky replica's 500s and cut streams, and the context-length refusals, are errors of their class
    const flaky = timeline.endpoints.find((e: any) => e.key === sim.facts.flakyEndpoint);
    expect(Object.keys(flaky.errors).length).toBeGreaterThan(0);
    expect(sum(timeline.tools.find((t: any) => t.key === "orchestrator").errors.context_length)).toBe(sim.facts.contextLengthFailures);
    expect(sum(timeline.finished.succeeded) + sum(timeline.finished.failed)).toBe(sim.tasks);
    expect(timeline.runners.length).toBeGreaterThan(0);
    await page.locator('[data-testid="throughput"]').screenshot({ path: join(SCREENSHOTS, "throughput.png") });
    await page.close();
  }, 60_000);

  test("compare shows both runs' accuracy with an interval and exactly the questions whose correctness differs", async () => {
    const first = await (await fetch(`${base}/v1/runs/${sim.runId}/tasks?limit=1000`)).json();
    // a second run of the same questions, answered by the queue as a runner would: every
    // third question flips, one fails on its first attempt and succeeds on its second
    const rows = first.tasks.map((t: any) => ({ id: t.external_id, question: t.question ?? "q" }));
    const { run } = await createRun({ db: sim.db, name: "frames-sim-b", benchmark: "frames", tasks: validateTasks({ rows }), maxAttempts: 2 });
    const before = new Map<string, boolean>(first.tasks.map((t: any) => [t.external_id, t.correct === true]));
    const claimed = await claimTasks({ db: sim.db, runnerId: "ui-compare", limit: 1000, leaseMs: 600_000, runId: run.id });
    const retried = claimed[1];
    // its first attempt got as far as one step, whose query LLM answered 500
    await recordRows({
      db: sim.db,
      rows: {
        toolCalls: [{ runId: run.id, taskId: retried.id, attempt: 1, step: 0, tool: "search", status: "error", errorClass: "server_error", errorMessage: "query_llm: HTTP 500", startedAt: Date.now(), durationMs: 12 }],
        transcripts: [{
          taskId: retried.id, attempt: 1, step: 0, createdAt: Date.now(),
          body: encodeTranscript({ step: 0, tool: "search", tool_calls: [{ name: "search", arguments: {} }], responses: null, llm: [{ component: "query_llm", request: { model: "m", messages: [] }, reply: null, error: "HTTP 500", endpoint: "http://127.0.0.1:9/v1", ms: 12 }] }),
        }],
      },
    });
    await failTask({ db: sim.db, taskId: retried.id, leaseToken: retried.leaseToken, errorClass: "server_error", errorMessage: "HTTP 500", retryable: true, backoff: { baseMs: 0, capMs: 0 } });
    for (const [i, t] of claimed.entries()) {
      if (t === retried) continue;
      const correct = i % 3 === 0 ? !before.get(t.externalId) : before.get(t.externalId) === true;
      await completeTask({ db: sim.db, taskId: t.id, leaseToken: t.leaseToken, result: { prediction: "p", correct } });
    }
    const [again] = await claimTasks({ db: sim.db, runnerId: "ui-compare", limit: 1, leaseMs: 600_000, runId: run.id });
    expect(again.id).toBe(retried.id);
    await completeTask({ db: sim.db, taskId: again.id, leaseToken: again.leaseToken, result: { prediction: "p", correct: true } });
    const second = await (await fetch(`${base}/v1/runs/${run.id}/tasks?limit=1000`)).json();
    const after = new Map<string, boolean>(second.tasks.map((t: any) => [t.external_id, t.correct === true]));
    const expected = [...before.keys()].filter((id) => before.get(id) !== after.get(id)).sort();
    expect(expected.length).toBeGreaterThan(10);

    const page = await browser.newPage();
    await page.setViewportSize({ width: 1360, height: 900 });
    await page.goto(`${base}/ui#/`);
    await page.waitForSelector('[data-testid="runs"] tbody tr', { timeout: 20_000 });
    await page.check(`.pick[value="${sim.runId}"]`);
    await page.check(`.pick[value="${run.id}"]`);
    await page.click("#compare");
    await page.waitForFunction(() => document.body.dataset.ready === "1" && location.hash.startsWith("#/compare/"), null, { timeout: 20_000 });
    expect(page.url()).toEndWith(`#/compare/${sim.runId},${run.id}`);
    const shown = (await page.locator('[data-testid="differs"] tbody tr td:first-child').allTextContents()).sort();
    expect(shown).toEqual(expected);
    expect(await page.textContent('[data-testid="differs-count"]')).toBe(String(expected.length));
    // `baton report --compare` lists the same questions and the same accuracy and score
    const cli = await runBaton(["report", String(sim.runId), "--compare", String(run.id), "--server", base, "--json"], { env: { DATABASE_URL: "", BATON_TOKEN: "" } });
    expect(cli.stderr).toBe("");
    const cmp = JSON.parse(cli.stdout);
    expect(cmp.differs).toEqual(expected);
    // accuracy and score with their Wilson intervals, from the summaries
    const rowsShown = await page.locator('[data-testid="compare-runs"] tbody tr').allTextContents();
    for (const [i, id] of [sim.runId, run.id].entries()) {
      const s = await (await fetch(`${base}/v1/runs/${id}`)).json();
      const [lo, hi] = wilson(s.correct, s.finished);
      expect(rowsShown[i]).toContain(`${pct(s.accuracy)} [${pct(lo)}, ${pct(hi)}]`);
      const [slo, shi] = wilson(s.correct, s.task_count);
      expect(rowsShown[i]).toContain(`${pct(s.score)} [${pct(slo)}, ${pct(shi)}]`);
      const cliRow = (metric: string) => cmp.rows.find((r: any) => r.section === "tasks" && r.metric === metric)[i === 0 ? "a" : "b"];
      expect([pct(cliRow("accuracy")), pct(cliRow("score"))]).toEqual([pct(s.accuracy), pct(s.score)]);
    }
    expect(await page.locator('[data-testid^="cdf-"] canvas').count()).toBeGreaterThan(0);
    await page.screenshot({ path: join(SCREENSHOTS, "compare-page.png"), fullPage: true });

    // the retried task's page shows its abandoned first attempt as failed
    await page.goto(`${base}/ui#/tasks/${retried.id}`);
    await page.waitForFunction(() => document.body.dataset.ready === "1", null, { timeout: 20_000 });
    expect(await page.locator('[data-testid="attempts"] tbody tr').allTextContents()).toEqual([
      expect.stringContaining("server_error"),
      expect.stringContaining("succeeded"),
    ]);
    const abandoned = page.locator('[data-testid="attempt-1"]');
    expect(await abandoned.locator("h2").textContent()).toBe("Attempt 1 · failed attempt (server_error)");
    expect(await abandoned.locator('[data-k="status"]').textContent()).toBe("error");
    expect(await abandoned.locator('[data-k="llm-error"]').textContent()).toBe("HTTP 500");
    await page.close();
  }, 90_000);

  test("with repeats, compare counts a question's share of right answers, as the CLI does", async () => {
    const rows = [{ id: "rq1", question: "one" }, { id: "rq2", question: "two" }];
    // first run: rq1 right twice, rq2 right once of two; second run: both right twice
    const verdicts: Record<string, boolean[]>[] = [{ rq1: [true, true], rq2: [true, false] }, { rq1: [true, true], rq2: [true, true] }];
    const runIds: number[] = [];
    for (const [i, want] of verdicts.entries()) {
      const { run } = await createRun({ db: sim.db, name: `repeats-${i}`, benchmark: "frames", tasks: validateTasks({ rows }), links: { repeats: 2 } });
      runIds.push(run.id);
      const claimed = await claimTasks({ db: sim.db, runnerId: "ui-repeats", limit: 10, leaseMs: 600_000, runId: run.id });
      expect(claimed.length).toBe(4);
      const seen: Record<string, number> = {};
      for (const t of claimed) {
        const k = (seen[t.externalId] = (seen[t.externalId] ?? -1) + 1);
        await completeTask({ db: sim.db, taskId: t.id, leaseToken: t.leaseToken, result: { prediction: "p", correct: want[t.externalId][k] } });
      }
    }
    const page = await browser.newPage();
    await page.goto(`${base}/ui#/compare/${runIds.join(",")}`);
    await page.waitForFunction(() => document.body.dataset.ready === "1", null, { timeout: 20_000 });
    const rowsShown = await page.locator('[data-testid="differs"] tbody tr').allInnerTexts();
    expect(rowsShown).toEqual([expect.stringMatching(/^rq2\s+1\/2 right\s+2\/2 right/)]);
    const cli = await runBaton(["report", String(runIds[0]), "--compare", String(runIds[1]), "--server", base, "--json"], { env: { DATABASE_URL: "", BATON_TOKEN: "" } });
    expect(JSON.parse(cli.stdout).differs).toEqual(["rq2"]);
    await page.close();
  }, 60_000);

  test("an HLE question's image is shown on its task page from the task itself", async () => {
    // a 1x1 PNG, as HLE rows carry images: a data URL, so no request leaves the page
    const png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
    const { run } = await createRun({ db: sim.db, name: "hle-image", benchmark: "hle", tasks: validateTasks({ rows: [{ id: "img-1", question: "What is shown?", answer: "a dot", image: png }] }) });
    const [task] = (await (await fetch(`${base}/v1/runs/${run.id}/tasks`)).json()).tasks;
    const page = await browser.newPage();
    const urls: string[] = [];
    page.on("request", (r) => urls.push(r.url()));
    await page.goto(`${base}/ui#/tasks/${task.id}`);
    await page.waitForFunction(() => document.body.dataset.ready === "1", null, { timeout: 20_000 });
    await page.waitForFunction(() => (document.querySelector("img.question-image") as HTMLImageElement | null)?.complete === true, null, { timeout: 10_000 });
    expect(await page.evaluate(() => (document.querySelector("img.question-image") as HTMLImageElement).naturalWidth)).toBe(1);
    expect(urls.filter((u) => !u.startsWith(base) && !u.startsWith("data:"))).toEqual([]);
    await page.close();
  }, 60_000);

  test("every request the page makes stays on 127.0.0.1", async () => {
    const page = await browser.newPage();
    const urls: string[] = [];
    page.on("request", (r) => urls.push(r.url()));
    for (const hash of ["#/", `#/runs/${sim.runId}`, `#/runs/${sim.runId}/tasks`, `#/tasks/1`, `#/compare/1,2`]) {
      await page.goto(`${base}/ui${hash}`);
      await page.waitForFunction(() => document.body.dataset.ready === "1", null, { timeout: 20_000 });
    }
    // the API reference too: its viewer comes from Baton, not a CDN, and draws the routes
    await page.goto(`${base}/openapi`);
    await page.waitForSelector(".swagger-ui .opblock", { timeout: 20_000 });
    expect(await page.locator(".swagger-ui .opblock").count()).toBeGreaterThan(20);
    await page.screenshot({ path: join(SCREENSHOTS, "openapi-offline.png") });
    expect(urls.length).toBeGreaterThan(10);
    expect(urls.filter((u) => new URL(u).hostname !== "127.0.0.1")).toEqual([]);
    await page.close();
  }, 90_000);
});
