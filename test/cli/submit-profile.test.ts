// `submit --profile`: the protocol is one flag (or one config line) away, and the stored run
// says which one it got.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runBaton, type ServeProcess, startServe } from "./_helpers";

const TOKEN = "cli-profile-token";
let dir: string;
let server: ServeProcess;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-profile-"));
  server = await startServe({ db: join(dir, "baton.db"), env: { BATON_TOKEN: TOKEN } });
}, 30_000);

afterAll(async () => {
  expect(await server.stop()).toBe(0);
  rmSync(dir, { recursive: true, force: true });
});

const baton = (args: string[]) => runBaton(args, { env: { BATON_SERVER: server.base, BATON_TOKEN: TOKEN } });

test("a run gets the reference profile by default, --profile baton picks Baton's, and an unknown one is refused by name", async () => {
  const data = join(dir, "hle.jsonl");
  writeFileSync(data, '{"id":"a","question":"q?","answer":"x"}\n');
  const config = join(dir, "run.json");
  writeFileSync(config, JSON.stringify({ max_rounds: 9 }));
  const plain = await baton(["submit", data, "--name", "plain", "--benchmark", "hle", "--json"]);
  const mine = await baton(["submit", data, "--name", "mine", "--benchmark", "hle", "--config", config, "--profile", "baton", "--json"]);
  expect([plain.code, mine.code]).toEqual([0, 0]);
  const stored = async (name: string) => JSON.parse((await baton(["status", name, "--json"])).stdout).config;
  expect((await stored("plain")).profile).toBe("toolorchestra-hle");
  expect(await stored("mine")).toMatchObject({ profile: "baton", max_rounds: 9 });
  const bad = await baton(["submit", data, "--name", "bad", "--benchmark", "hle", "--profile", "reference"]);
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toContain("config.profile");
}, 30_000);
