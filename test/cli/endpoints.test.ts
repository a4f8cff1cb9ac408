// `baton endpoints` both ways a user runs it: on a database file (--db) and through a real
// `baton serve` process with a token.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runBaton, type ServeProcess, startServe } from "./_helpers";

const TOKEN = "endpoints-cli-token";
const CONFIG = {
  "Qwen/Qwen3-32B": [
    { ip_addr: "10.0.0.5", port: 8000 },
    { ip_addr: "10.0.0.6", port: 8000 },
  ],
  retrieval: [{ ip_addr: "10.0.0.9", port: 8001 }],
  vllm_model_config_path: "ignored.json",
};
let dir: string;
let configPath: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "baton-cli-endpoints-"));
  configPath = join(dir, "model_config.json");
  writeFileSync(configPath, JSON.stringify(CONFIG));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The same cases run on a database file and through the server; `via` says which.
function cases(via: () => { args: string[]; env: Record<string, string> }) {
  const baton = (...args: string[]) => runBaton([...args, ...via().args], { env: { BATON_SERVER: "", DATABASE_URL: "", ...via().env } });

  test("import, list, disable and enable round-trip through the registry", async () => {
    const imported = await baton("endpoints", "import", configPath, "--json");
    expect(imported.stderr).toBe("");
    expect(imported.code).toBe(0);
    const r = JSON.parse(imported.stdout);
    expect(r.endpoints.map((e: any) => `${e.kind} ${e.name} ${e.base_url}`).sort()).toEqual([
      "model Qwen/Qwen3-32B http://10.0.0.5:8000",
      "model Qwen/Qwen3-32B http://10.0.0.6:8000",
      "retrieval retrieval http://10.0.0.9:8001",
    ]);
    expect(r.ignored_keys).toEqual(["vllm_model_config_path"]);

    const id = r.endpoints.find((e: any) => e.base_url === "http://10.0.0.6:8000").id;
    const off = await baton("endpoints", "disable", String(id));
    expect(off.code).toBe(0);
    expect(off.stdout).toContain("disabled");
    const table = await baton("endpoints", "list");
    const row = table.stdout.split("\n").find((l) => l.startsWith(`${id} `))!;
    expect(row).toMatch(/http:\/\/10\.0\.0\.6:8000\s+no$/);
    expect((await baton("endpoints", "enable", String(id))).stdout).toContain("enabled");
    const listed = JSON.parse((await baton("endpoints", "list", "--json")).stdout);
    expect(listed.every((e: any) => e.enabled)).toBe(true);
  }, 30_000);

  test("bad input is refused in one line with a usage or failure exit code", async () => {
    const missing = await baton("endpoints", "disable", "999999");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^baton endpoints: .*endpoint 999999 not found\n$/);

    const badId = await baton("endpoints", "enable", "abc");
    expect(badId.code).toBe(2);
    expect(badId.stderr).toContain('expected a numeric endpoint id, got "abc"');

    const notJson = join(dir, "not.json");
    writeFileSync(notJson, "{ nope");
    const bad = await baton("endpoints", "import", notJson);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toStartWith(`baton endpoints: import: ${notJson} is not valid JSON`);

    const badEntry = join(dir, "bad-entry.json");
    writeFileSync(badEntry, JSON.stringify({ "Qwen/Qwen3-32B": [{ ip_addr: "10.0.0.5" }] }));
    const entry = await baton("endpoints", "import", badEntry);
    expect(entry.code).toBe(1);
    expect(entry.stderr).toContain("Qwen/Qwen3-32B[0]");
    expect(entry.stderr.trimEnd().split("\n")).toHaveLength(1);
  }, 30_000);

  test("the list shows each endpoint's state and never prints credentials inside a URL", async () => {
    const added = await baton("endpoints", "add", "--name", "cred/model", "--url", "http://user:s3cr3t-pw@10.0.0.7:8000");
    expect(added.code).toBe(0);
    const list = await baton("endpoints", "list");
    expect(list.stdout.split("\n")[0]).toMatch(/^id\s+kind\s+name\s+state\s+role\s+job\s+base_url\s+enabled$/);
    expect(list.stdout).toMatch(/cred\/model\s+healthy\s+-\s+-\s+http:\/\/\*\*\*@10\.0\.0\.7:8000\s+yes/);
    const json = await baton("endpoints", "list", "--json");
    for (const out of [added.stdout, list.stdout, json.stdout]) expect(out).not.toContain("s3cr3t-pw");
  }, 30_000);
}

describe("with --db", () => {
  cases(() => ({ args: ["--db", join(dir, "direct.db")], env: {} }));
});

describe("through baton serve", () => {
  let server: ServeProcess;
  beforeAll(async () => {
    server = await startServe({ db: join(dir, "served.db"), env: { BATON_TOKEN: TOKEN } });
  }, 30_000);
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });
  cases(() => ({ args: [], env: { BATON_SERVER: server.base, BATON_TOKEN: TOKEN } }));

  test("a wrong token is refused with the server's error code and is not printed", async () => {
    const r = await runBaton(["endpoints", "import", configPath], { env: { BATON_SERVER: server.base, BATON_TOKEN: "wrong-token" } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("auth.invalid_token");
    expect(r.stderr).not.toContain("wrong-token");
  }, 30_000);
});
