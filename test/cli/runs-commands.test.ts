// The run commands as a user runs them: `baton serve` as a real process on loopback, the
// other commands as processes talking to it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CliResult, ROOT, runBaton, type ServeProcess, startServe } from "./_helpers";

const TOKEN = "cli-test-token";
let dir: string;
let server: ServeProcess;
let base: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-cli-"));
  server = await startServe({ db: join(dir, "baton.db"), env: { BATON_TOKEN: TOKEN } });
  base = server.base;
  expect(server.banner).toContain("/openapi");
  expect(server.banner).not.toContain(TOKEN);
}, 30_000);

afterAll(async () => {
  expect(await server.stop()).toBe(0);
  rmSync(dir, { recursive: true, force: true });
});

async function baton(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runBaton(args, { env: { BATON_SERVER: base, BATON_TOKEN: TOKEN, ...env } });
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

test("submit, status, runs, cancel and retry work against the server", async () => {
  const data = file("frames.jsonl", '{"id":1,"question":"a","answer":"x"}\n{"id":2,"question":"b"}\n{"id":3,"question":"c"}\n');
  const config = file("config.json", JSON.stringify({ max_rounds: 9 }));
  const sub = await baton(["submit", data, "--name", "cli-run", "--benchmark", "frames", "--config", config, "--json"]);
  expect(sub.code).toBe(0);
  const run = JSON.parse(sub.stdout);
  expect(run).toMatchObject({ name: "cli-run", tasks: 3, created: true });

  const again = await baton(["submit", data, "--name", "cli-run2", "--benchmark", "frames", "--idempotency-key", "k", "--json"]);
  const again2 = await baton(["submit", data, "--name", "cli-run2", "--benchmark", "frames", "--idempotency-key", "k", "--json"]);
  expect(JSON.parse(again2.stdout).id).toBe(JSON.parse(again.stdout).id);
  expect(JSON.parse(again2.stdout).created).toBe(false);

  const st = await baton(["status", "cli-run", "--json"]);
  expect(st.code).toBe(0);
  expect(JSON.parse(st.stdout)).toMatchObject({ id: run.id, counts: { queued: 3 }, config: { max_rounds: 9 } });
  // the config file speaks the API's snake_case; a camelCase field is refused with its spelling
  const camel = await baton(["submit", data, "--name", "camel", "--benchmark", "frames", "--config", file("camel.json", JSON.stringify({ maxRounds: 9 }))]);
  expect(camel.code).not.toBe(0);
  expect(camel.stderr).toContain("config.maxRounds: unknown field, did you mean max_rounds?");
  const set = await baton(["submit", data, "--name", "cli-set", "--benchmark", "frames", "--set", "orchestrator.max_tokens=1234", "--json"]);
  expect(set.code).toBe(0);
  expect(JSON.parse((await baton(["status", "cli-set", "--json"])).stdout).config.orchestrator.max_tokens).toBe(1234);
  // a sweep's paths are snake_case too; the dry run names each run by them
  const sweep = await baton(["sweep", data, "--benchmark", "frames", "--config", config, "--vary", "orchestrator.max_tokens=1000,2000", "--dry-run", "--json"]);
  expect(sweep.stderr).toBe("");
  expect(JSON.parse(sweep.stdout).runs.map((r: any) => [r.name, r.values])).toEqual([
    ["sweep-frames orchestrator.max_tokens=1000", { "orchestrator.max_tokens": 1000 }],
    ["sweep-frames orchestrator.max_tokens=2000", { "orchestrator.max_tokens": 2000 }],
  ]);
  const camelSweep = await baton(["sweep", data, "--benchmark", "frames", "--vary", "orchestrator.maxTokens=1000", "--dry-run"]);
  expect(camelSweep.code).not.toBe(0);
  expect(camelSweep.stderr).toContain("vary[0].path: orchestrator.maxTokens: unknown field, did you mean orchestrator.max_tokens?");
  const viaDb = await baton(["status", "cli-run", "--db", join(dir, "baton.db"), "--json"]);
  expect(JSON.parse(viaDb.stdout).config).toEqual(JSON.parse(st.stdout).config);
  const human = await baton(["status", String(run.id)]);
  expect(human.stdout).toContain("queued 3");

  const list = await baton(["runs", "--json"]);
  expect(JSON.parse(list.stdout).map((r: any) => r.name)).toEqual(["cli-set", "cli-run2", "cli-run"]);

  const cancel = await baton(["cancel", String(run.id)]);
  expect(cancel.stdout).toContain("3 tasks canceled");
  // --watch returns once the run has nothing left to do
  const watch = await baton(["status", String(run.id), "--watch", "--interval", "0.1"]);
  expect(watch.code).toBe(0);
  expect(watch.stdout).toContain("canceled 3");
  const retry = await baton(["retry", String(run.id), "--canceled"]);
  expect(retry.stdout).toContain("3 tasks requeued");
}, 60_000);

test("errors are reported with what was wrong, and a non-zero exit", async () => {
  const bad = file("bad.jsonl", '{"id":1,"question":"a"}\n{"id":2,"question":""}\n');
  const local = await baton(["submit", bad, "--name", "x", "--benchmark", "frames"]);
  expect(local.code).toBe(1);
  expect(local.stderr).toContain("line 2.question: expected a non-empty string");

  const good = file("good.jsonl", '{"id":1,"question":"a"}\n');
  const denied = await baton(["submit", good, "--name", "x", "--benchmark", "frames"], { BATON_TOKEN: "wrong" });
  expect(denied.code).toBe(1);
  expect(denied.stderr).toContain("auth.invalid_token");
  expect(denied.stderr).not.toContain("wrong");

  const missing = await baton(["status", "no-such-run"]);
  expect(missing.code).toBe(1);
  expect(missing.stderr).toContain('run "no-such-run" not found');

  const usage = await baton(["submit", good]);
  expect(usage.code).toBe(2);
  expect(usage.stderr).toContain("--name is required");
}, 60_000);

// 192.0.2.1 is TEST-NET-1: should the refusal ever fail, the bind fails too instead of listening.
test("serve refuses a non-loopback address without a token", async () => {
  const r = await baton(["serve", "--host", "192.0.2.1", "--port", "0", "--db", join(dir, "other.db")], { BATON_TOKEN: "" });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain("BATON_TOKEN");
}, 30_000);

const COMMANDS = readdirSync(join(ROOT, "cli/commands"))
  .filter((f) => f.endsWith(".ts") && !f.startsWith("_"))
  .map((f) => f.slice(0, -3));

test("every command has --help", async () => {
  expect(COMMANDS.length).toBeGreaterThan(10);
  for (const cmd of COMMANDS) {
    const r = await baton([cmd, "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage:");
  }
}, 60_000);

// runner and demo start long-lived work and keep their own multi-line usage message.
test("a bad flag is a usage error: exit 2 and one line naming the command and the flag", async () => {
  for (const cmd of COMMANDS.filter((c) => c !== "runner" && c !== "demo")) {
    const r = await baton([cmd, "--no-such-flag"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toStartWith(`baton ${cmd}: `);
    expect(lines[0]).toContain("--no-such-flag");
  }
}, 60_000);

test("a server error is one line with the server's error code", async () => {
  const r = await baton(["cancel", "no-such-run"]);
  expect(r.code).toBe(1);
  expect(r.stderr.trimEnd().split("\n")).toEqual([expect.stringMatching(/^baton cancel: .*runs\.not_found.*run "no-such-run" not found/)]);
}, 30_000);
