// The web page against a server with a token, in a real browser: it asks for the token once,
// keeps it in an HttpOnly cookie page scripts cannot read, and then shows the runs.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { closeDb, openDb, type Db } from "../../db/client";
import { createApp } from "../../functions/index";

const ROOT = resolve(import.meta.dir, "../..");
const TOKEN = `ui-${crypto.randomUUID()}`;
let dir: string;
let db: Db;
let app: ReturnType<typeof createApp>;
let base: string;
let browser: BrowserContext;

beforeAll(async () => {
  const setup = Bun.spawnSync(["bash", join(ROOT, "scripts/setup-chromium.sh")], { stdout: "inherit", stderr: "inherit" });
  if (setup.exitCode !== 0) throw new Error("scripts/setup-chromium.sh failed: the browser test needs /usr/bin/chromium");
  dir = mkdtempSync(join(tmpdir(), "baton-ui-login-"));
  db = await openDb({ url: `file:${join(dir, "b.db")}` });
  app = createApp({ db, token: TOKEN }).listen({ port: 0, hostname: "127.0.0.1" });
  base = `http://127.0.0.1:${app.server!.port}`;
  const res = await fetch(`${base}/v1/runs`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ name: "visible-after-login", benchmark: "frames", tasks: [{ id: 1, question: "q" }] }),
  });
  expect(res.status).toBe(201);
  browser = await chromium.launchPersistentContext(join(dir, "profile"), {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await app?.stop();
  if (db) closeDb(db);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the page asks for the token, refuses a wrong one, and after the right one shows runs from a cookie scripts cannot read", async () => {
  await browser.clearCookies();
  const page = await browser.newPage();
  await page.goto(`${base}/ui`);
  await page.waitForSelector("#login", { timeout: 20_000 });
  await page.fill('#login input[name="token"]', "wrong");
  await page.click('#login button[type="submit"]');
  await page.waitForFunction(() => document.getElementById("login-error")?.textContent !== "", null, { timeout: 10_000 });
  expect(await page.textContent("#login-error")).toContain("not valid");

  await page.fill('#login input[name="token"]', TOKEN);
  await page.click('#login button[type="submit"]');
  await page.waitForSelector("text=visible-after-login", { timeout: 20_000 });
  expect(await page.evaluate(() => document.cookie)).toBe("");
  const cookies = await browser.cookies(base);
  expect(cookies.find((c) => c.name === "baton_token")).toMatchObject({ httpOnly: true, sameSite: "Strict" });
  // a reload keeps the login
  await page.reload();
  await page.waitForSelector("text=visible-after-login", { timeout: 20_000 });
  await page.close();
}, 60_000);

test("a /ui?token= link logs in once and leaves the token out of the address bar", async () => {
  await browser.clearCookies();
  const page = await browser.newPage();
  await page.goto(`${base}/ui?token=${encodeURIComponent(TOKEN)}`);
  await page.waitForSelector("text=visible-after-login", { timeout: 20_000 });
  expect(page.url()).toBe(`${base}/ui`);
  await page.close();
}, 60_000);
