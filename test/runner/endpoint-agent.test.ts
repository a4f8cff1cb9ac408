// The endpoint agent outside Slurm: real services (the simulators, started by the command the
// agent runs), a real Baton server on loopback, a temp-file database read from a second
// connection. The Slurm side (signals, job ids, logs) is in test/slurm/launch.test.ts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { closeDb, type Db, openDb } from "../../db/client";
import { listEndpoints } from "../../db/endpoints";
import { createApp } from "../../functions/index";
import { EndpointAgent, fillCommand, readGauge, redactCommand, type AgentOptions } from "../../runner/endpoint-agent";
import { defaultCommand, renderScript, resolveDeployment } from "../../runner/launch/deploy";

const REPO = resolve(import.meta.dir, "../..");
const BUN = join(REPO, "node_modules/.bin/bun");
const TOKEN = "agent-token";
let dir: string;
let db: Db;
let other: Db;
let app: ReturnType<typeof createApp>;
let server: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-agent-"));
  db = await openDb({ url: `file:${join(dir, "t.db")}` });
  other = await openDb({ url: `file:${join(dir, "t.db")}` });
  app = createApp({ db, token: TOKEN });
  app.listen({ port: 0, hostname: "127.0.0.1" });
  server = `http://127.0.0.1:${app.server!.port}`;
});

afterAll(async () => {
  await app.stop(true);
  closeDb(db);
  closeDb(other);
  rmSync(dir, { recursive: true, force: true });
});

function agent(over: Partial<AgentOptions>, lines: string[]): EndpointAgent {
  return new EndpointAgent({
    server,
    token: TOKEN,
    role: "expert_llm",
    name: "agent/model",
    service: "experts",
    command: `${BUN} ${join(REPO, "cli/baton.ts")} sim vllm --model {model} --host {host} --port {port}`,
    bindHost: "127.0.0.1",
    advertiseHost: "127.0.0.1",
    port: null,
    readyTimeoutMs: 20_000,
    probeQuery: "test",
    probeTimeoutMs: 5_000,
    leaseMs: 5_000,
    heartbeatMs: 200,
    graceMs: 5_000,
    drainSettleMs: 300,
    slurm: null,
    log: (l) => lines.push(l),
    ...over,
  });
}

async function until(what: string, cond: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

describe("endpoint agent", () => {
  test("registers a ready LLM as healthy, and on drain deregisters it and stops the service", async () => {
    const lines: string[] = [];
    const a = agent({}, lines);
    const done = a.run();
    await until("the endpoint to register", async () => (await listEndpoints({ db: other })).some((e) => e.name === "agent/model" && e.state === "healthy"));
    const [e] = (await listEndpoints({ db: other })).filter((x) => x.name === "agent/model");
    expect(e).toMatchObject({ kind: "model", role: "expert_llm", service: "experts", baseUrl: a.baseUrl });
    // the service answers where it was registered
    expect((await fetch(`${a.baseUrl}/v1/models`)).status).toBe(200);
    a.drain("test");
    expect(await done).toBe(0);
    expect((await listEndpoints({ db: other })).some((x) => x.name === "agent/model")).toBe(false);
    await expect(fetch(`${a.baseUrl}/health`)).rejects.toThrow();
    expect(lines.join("\n")).toMatch(/draining \(test\)[\s\S]*deregistered endpoint[\s\S]*stopped \(test\)/);
  }, 30_000);

  test("a service that exits before it is ready: exit 1, the reason with its last lines, nothing registered", async () => {
    const lines: string[] = [];
    const code = await agent({ role: "retrieval", name: "retrieval", command: `echo "loading 'the index'"; echo "no such file: /idx" >&2; exit 4 # {port}` }, lines).run();
    expect(code).toBe(1);
    const text = lines.join("\n");
    expect(text).toContain("FAILED: the service exited (exit code 4) before it was ready");
    expect(text).toContain("  | loading 'the index'");
    expect(text).toContain("  | no such file: /idx");
    expect((await listEndpoints({ db: other })).some((x) => x.name === "retrieval")).toBe(false);
  }, 30_000);

  test("a service that never lists the model is not ready: it is stopped and the agent says what /v1/models listed", async () => {
    const lines: string[] = [];
    const command = `${BUN} ${join(REPO, "cli/baton.ts")} sim vllm --model other/model --host {host} --port {port}`;
    const code = await agent({ command, readyTimeoutMs: 3_000 }, lines).run();
    expect(code).toBe(1);
    expect(lines.join("\n")).toMatch(/FAILED: the service was not ready within 3000 ms \(last probe: GET \/v1\/models lists \["other\/model"\], not 'agent\/model'\)/);
    expect((await listEndpoints({ db: other })).some((x) => x.name === "agent/model")).toBe(false);
  }, 30_000);

  test("a retriever is ready when a probe query answers; if it dies while serving, the agent deregisters it and exits 1", async () => {
    const lines: string[] = [];
    const a = agent({ role: "retrieval", name: "wiki_retrieval", command: `${BUN} ${join(REPO, "cli/baton.ts")} sim retrieval --host {host} --port {port}` }, lines);
    const done = a.run();
    await until("the retriever to register", async () => (await listEndpoints({ db: other })).some((e) => e.name === "wiki_retrieval" && e.kind === "retrieval"));
    // kill the service, not the agent
    const pid = Number(Bun.spawnSync(["bash", "-c", `ss -ltnpH 'sport = :${a.port}' | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2`], { stdout: "pipe" }).stdout.toString().trim());
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, "SIGKILL");
    expect(await done).toBe(1);
    expect(lines.join("\n")).toContain("FAILED: the service exited (killed by SIGKILL) while serving");
    expect((await listEndpoints({ db: other })).some((x) => x.name === "wiki_retrieval")).toBe(false);
  }, 30_000);
});

describe("agent and deployment helpers", () => {
  test("placeholders are filled; other braces are left to the shell", () => {
    expect(fillCommand("vllm serve {model} --host {host} --port {port} ${HOME} {x}", { port: 8001, host: "0.0.0.0", model: "Q/M" })).toBe(
      "vllm serve Q/M --host 0.0.0.0 --port 8001 ${HOME} {x}",
    );
  });

  test("the logged command hides API keys and tokens", () => {
    expect(redactCommand(`HF_TOKEN=hf_abc vllm serve m --api-key sk-123 --port 1 --hf-token="x y"`)).toBe(
      `HF_TOKEN=*** vllm serve m --api-key *** --port 1 --hf-token=***`,
    );
  });

  test("vLLM's running and waiting gauges are summed over their label sets", () => {
    const metrics = [
      "# HELP vllm:num_requests_running Number of requests",
      'vllm:num_requests_running{model_name="a"} 2.0',
      'vllm:num_requests_running{model_name="b"} 1.0',
      'vllm:num_requests_running_total{model_name="b"} 9.0',
      'vllm:num_requests_waiting{model_name="a"} 3.0',
    ].join("\n");
    expect(readGauge(metrics, "vllm:num_requests_running")).toBe(3);
    expect(readGauge(metrics, "vllm:num_requests_waiting")).toBe(3);
    expect(readGauge(metrics, "vllm:gpu_cache_usage_perc")).toBeNull();
  });

  test("LLM roles default to vllm serve; the orchestrator gets the tool-call flags; retrieval has no default", () => {
    expect(defaultCommand("expert_llm")).toBe("vllm serve {model} --host {host} --port {port}");
    expect(defaultCommand("orchestrator")).toBe("vllm serve {model} --host {host} --port {port} --enable-auto-tool-choice --tool-call-parser hermes");
    expect(defaultCommand("retrieval")).toBeNull();
  });

  test("a deployment's problems are all named by field at once", () => {
    const bad = {
      name: "x y",
      services: [
        { name: "a", role: "expert_llm" },
        { name: "a", role: "retrieval", model: "m", command: "serve" },
      ],
    };
    expect(() => resolveDeployment(bad, { file: "/tmp/d.json", server: "http://127.0.0.1:1", batonHome: REPO })).toThrow(/^name: expected a deployment name/);
    let msg = "";
    try {
      resolveDeployment({ ...bad, name: "ok" }, { file: "/tmp/d.json", server: null, batonHome: REPO });
    } catch (err) {
      msg = (err as Error).message;
    }
    expect(msg.split("\n")).toEqual([
      "services[0].model: required for role expert_llm (the served model name runs call)",
      "services[1].name: 'a' is used by another service",
      "services[1].model: a retrieval service has a backend (retrieval or wiki_retrieval), not a model",
      "services[1].command: must contain {port} (the agent picks a free port and fills it in)",
      'server: no Baton server: set "server" in the file, --server, or BATON_SERVER',
    ]);
  });

  test("the script quotes a command with quotes and spaces as one argument that bash gives back unchanged", () => {
    const command = `echo "it's {model}" && serve --name 'a b' --port {port}`;
    const d = resolveDeployment(
      { name: "q", services: [{ name: "s", role: "judge", model: "J/m", command, setup: 'echo "${UNSET_X}"' }] },
      { file: join(dir, "d.json"), server: "http://127.0.0.1:1", batonHome: REPO },
    );
    const script = renderScript(d, d.services[0]!);
    const line = script.split("\n").find((l) => l.startsWith("agent=("))!;
    const echoed = Bun.spawnSync(["bash", "-c", `set -u; ${line}; printf '%s\\n' "\${agent[@]}"`], { stdout: "pipe" }).stdout.toString().split("\n");
    expect(echoed[echoed.indexOf("--command") + 1]).toBe(command);
    expect(Bun.spawnSync(["bash", "-n", "-c", script]).exitCode).toBe(0);
  });
});
