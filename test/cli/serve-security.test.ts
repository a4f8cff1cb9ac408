// `baton serve` as a real process: the token file made on first start (0600, read by the
// CLI), loopback Host names only, and a chunked body past the limit refused in the error shape.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BATON } from "./_helpers";

let dir: string;
let env: Record<string, string>;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "baton-serve-sec-"));
  env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "BATON_TOKEN" && k !== "BATON_TOKEN_FILE")) as Record<string, string>;
  env.XDG_CONFIG_HOME = join(dir, "config");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function startServe(args: string[] = [], db = "a.db") {
  const proc = Bun.spawn([process.execPath, BATON, "serve", "--port", "0", "--db", join(dir, db), ...args], { stdout: "pipe", stderr: "pipe", env });
  const reader = proc.stdout.getReader();
  let banner = "";
  while (!/auth .*\n/.test(banner)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`serve exited: ${banner}${await new Response(proc.stderr).text()}`);
    banner += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return { base: /serving (http:\/\/\S+)/.exec(banner)![1], banner, proc };
}

async function baton(args: string[], extra: Record<string, string> = {}) {
  const p = Bun.spawn([process.execPath, BATON, ...args], { stdout: "pipe", stderr: "pipe", env: { ...env, ...extra } });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { stdout, stderr, code };
}

test("serve makes a token file on first start, keeps it on the next, and the CLI finds it", async () => {
  const file = join(dir, "config", "baton", "token");
  const first = await startServe();
  try {
    expect(first.banner).toContain(`auth on (token file ${file}, just created)`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "config", "baton")).mode & 0o077).toBe(0);
    const token = readFileSync(file, "utf8").trim();
    expect(token).toMatch(/^[0-9a-f]{48}$/);
    expect(first.banner).not.toContain(token);
    expect((await fetch(`${first.base}/v1/runs`)).status).toBe(401);
    const listed = await baton(["runs", "--server", first.base]);
    expect(listed.stderr).toBe("");
    expect(listed.code).toBe(0);
  } finally {
    first.proc.kill("SIGTERM");
    await first.proc.exited;
  }
  const second = await startServe();
  try {
    expect(second.banner).toContain(`auth on (token file ${file})`);
    const token = readFileSync(file, "utf8").trim();
    expect((await fetch(`${second.base}/v1/runs`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
  } finally {
    second.proc.kill("SIGTERM");
    await second.proc.exited;
  }
}, 60_000);

test("a real server answers a rebinding Host with 421 and a chunked body past the limit with 413 in the error shape", async () => {
  const s = await startServe(["--max-body-mb", "0.01"], "b.db");
  try {
    const token = readFileSync(join(dir, "config", "baton", "token"), "utf8").trim();
    const rebound = await fetch(`${s.base}/healthz`, { headers: { host: "evil.example:3000" } });
    expect(rebound.status).toBe(421);
    expect((await rebound.json()).error.code).toBe("request.bad_host");
    // no Content-Length: the body streams in 1 KiB chunks until well past 10 KiB
    let sent = 0;
    const body = new ReadableStream({
      pull(c) {
        if (sent > 200_000) return c.close();
        sent += 1024;
        c.enqueue(new TextEncoder().encode(sent === 1024 ? '{"name":"x","benchmark":"frames","tasks":[' + " ".repeat(1024 - 41) : " ".repeat(1024)));
      },
    });
    const res = await fetch(`${s.base}/v1/runs`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body,
      // @ts-ignore Bun and undici need this for a streamed request body
      duplex: "half",
    });
    expect(res.status).toBe(413);
    const err = await res.json();
    expect(err.error.code).toBe("request.too_large");
    expect(err.error.message).toContain("10485");
  } finally {
    s.proc.kill("SIGTERM");
    await s.proc.exited;
  }
}, 60_000);

test("a token file other users can read is refused by serve and by the CLI, naming the fix", async () => {
  const file = join(dir, "shared-token");
  writeFileSync(file, "abc\n", { mode: 0o644 });
  chmodSync(file, 0o644);
  const cli = await baton(["runs"], { BATON_TOKEN_FILE: file });
  expect(cli.code).toBe(1);
  expect(cli.stderr).toContain(`chmod 600 ${file}`);
  const serve = await baton(["serve", "--port", "0", "--db", join(dir, "d.db")], { BATON_TOKEN_FILE: file });
  expect(serve.code).toBe(1);
  expect(serve.stderr).toContain("can be read by other users");
}, 30_000);

test("--allow-origin takes origins only, and a bad one is a usage error", async () => {
  const r = await baton(["serve", "--port", "0", "--db", join(dir, "c.db"), "--allow-origin", "https://x.example/path"]);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain("--allow-origin");
});
