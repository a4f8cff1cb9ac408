// The run commands as a user runs them: `baton serve` as a real process on loopback, the
// other commands as processes talking to it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const BATON = join(import.meta.dir, "../../cli/baton.ts");
const TOKEN = "cli-test-token";
let dir: string;
let server: Bun.Subprocess<"ignore", "pipe", "pipe">;
let base: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-cli-"));
  server = Bun.spawn([process.execPath, BATON, "serve", "--port", "0", "--db", join(dir, "baton.db")], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, BATON_TOKEN: TOKEN },
  });
  const reader = server.stdout.getReader();
  let out = "";
  const deadline = Date.now() + 20_000;
  while (!/serving (http:\/\/\S+)/.test(out)) {
    if (Date.now() > deadline) throw new Error(`serve did not start: ${out}`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`serve exited: ${out}${await new Response(server.stderr).text()}`);
    out += new TextDecoder().decode(value);
  }
  base = /serving (http:\/\/\S+)/.exec(out)![1];
  expect(out).toContain("/openapi");
  expect(out).not.toContain(TOKEN);
  reader.releaseLock();
}, 30_000);

afterAll(async () => {
  server.kill("SIGTERM");
  expect(await server.exited).toBe(0);
  rmSync(dir, { recursive: true, force: true });
});

async function baton(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn([process.execPath, BATON, ...args], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, BATON_SERVER: base, BATON_TOKEN: TOKEN, ...env },
  });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

test("submit, status, runs, cancel and retry work against the server", async () => {
  const data = file("frames.jsonl", '{"id":1,"question":"a","answer":"x"}\n{"id":2,"question":"b"}\n{"id":3,"question":"c"}\n');
  const config = file("config.json", JSON.stringify({ maxRounds: 9 }));
  const sub = await baton(["submit", data, "--name", "cli-run", "--benchmark", "frames", "--config", config, "--json"]);
  expect(sub.code).toBe(0);
  const run = JSON.parse(sub.out);
  expect(run).toMatchObject({ name: "cli-run", tasks: 3, created: true });

  const again = await baton(["submit", data, "--name", "cli-run2", "--benchmark", "frames", "--idempotency-key", "k", "--json"]);
  const again2 = await baton(["submit", data, "--name", "cli-run2", "--benchmark", "frames", "--idempotency-key", "k", "--json"]);
  expect(JSON.parse(again2.out).id).toBe(JSON.parse(again.out).id);
  expect(JSON.parse(again2.out).created).toBe(false);

  const st = await baton(["status", "cli-run", "--json"]);
  expect(st.code).toBe(0);
  expect(JSON.parse(st.out)).toMatchObject({ id: run.id, counts: { queued: 3 }, config: { maxRounds: 9 } });
  const human = await baton(["status", String(run.id)]);
  expect(human.out).toContain("queued 3");

  const list = await baton(["runs", "--json"]);
  expect(JSON.parse(list.out).map((r: any) => r.name)).toEqual(["cli-run2", "cli-run"]);

  const cancel = await baton(["cancel", String(run.id)]);
  expect(cancel.out).toContain("3 tasks canceled");
  // --watch returns once the run has nothing left to do
  const watch = await baton(["status", String(run.id), "--watch", "--interval", "0.1"]);
  expect(watch.code).toBe(0);
  expect(watch.out).toContain("canceled 3");
  const retry = await baton(["retry", String(run.id), "--canceled"]);
  expect(retry.out).toContain("3 tasks requeued");
}, 60_000);

test("errors are reported with what was wrong, and a non-zero exit", async () => {
  const bad = file("bad.jsonl", '{"id":1,"question":"a"}\n{"id":2,"question":""}\n');
  const local = await baton(["submit", bad, "--name", "x", "--benchmark", "frames"]);
  expect(local.code).toBe(1);
  expect(local.err).toContain("line 2.question: expected a non-empty string");

  const good = file("good.jsonl", '{"id":1,"question":"a"}\n');
  const denied = await baton(["submit", good, "--name", "x", "--benchmark", "frames"], { BATON_TOKEN: "wrong" });
  expect(denied.code).toBe(1);
  expect(denied.err).toContain("auth.invalid_token");
  expect(denied.err).not.toContain("wrong");

  const missing = await baton(["status", "no-such-run"]);
  expect(missing.code).toBe(1);
  expect(missing.err).toContain('run "no-such-run" not found');

  const usage = await baton(["submit", good]);
  expect(usage.code).toBe(2);
  expect(usage.err).toContain("--name is required");
}, 60_000);

// 192.0.2.1 is TEST-NET-1: should the refusal ever fail, the bind fails too instead of listening.
test("serve refuses a non-loopback address without a token", async () => {
  const r = await baton(["serve", "--host", "192.0.2.1", "--port", "0", "--db", join(dir, "other.db")], { BATON_TOKEN: "" });
  expect(r.code).toBe(2);
  expect(r.err).toContain("BATON_TOKEN");
}, 30_000);

test("every command has --help", async () => {
  for (const cmd of ["serve", "submit", "status", "cancel", "requeue", "retry", "runs"]) {
    const r = await baton([cmd, "--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("Usage:");
  }
}, 60_000);
