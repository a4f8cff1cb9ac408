import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, openDb, type Db } from "../../db/client";
import {
  addEndpoint,
  claimReadyTasks,
  deregisterEndpoint,
  drainEndpoint,
  EndpointInputError,
  getEndpoint,
  heartbeatEndpoint,
  importToolOrchestraConfig,
  listEndpoints,
  listWaitingRuns,
  parseToolOrchestraConfig,
  redactUrl,
  registerEndpoint,
  setEndpointEnabled,
} from "../../db/endpoints";
import { createRun, validateTasks } from "../../db/runs";

let dir: string;
let db: Db;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-endpoints-"));
  db = await openDb({ url: `file:${join(dir, "t.db")}` });
});

afterEach(() => {
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

describe("endpoints", () => {
  test("an added endpoint is listed, and re-adding the same name and URL re-enables it instead of duplicating", async () => {
    const a = await addEndpoint({ db, endpoint: { kind: "model", name: "m", baseUrl: "http://127.0.0.1:8001/" } });
    expect(a.baseUrl).toBe("http://127.0.0.1:8001");
    await setEndpointEnabled({ db, id: a.id, enabled: false });
    expect((await listEndpoints({ db, enabledOnly: true })).length).toBe(0);
    const again = await addEndpoint({ db, endpoint: { kind: "model", name: "m", baseUrl: "http://127.0.0.1:8001" } });
    expect(again.id).toBe(a.id);
    expect(again.enabled).toBe(true);
    expect((await listEndpoints({ db })).length).toBe(1);
  });

  test("a bad URL or kind is refused naming the field", async () => {
    await expect(addEndpoint({ db, endpoint: { kind: "model", name: "m", baseUrl: "nope" } })).rejects.toThrow(/baseUrl/);
    await expect(addEndpoint({ db, endpoint: { kind: "gpu" as any, name: "m", baseUrl: "http://h:1" } })).rejects.toThrow(/kind/);
    await expect(addEndpoint({ db, endpoint: { kind: "model", name: "m", baseUrl: "ftp://h:1" } })).rejects.toThrow(/http/);
  });

  test("disabling an unknown id returns null", async () => {
    expect(await setEndpointEnabled({ db, id: 999, enabled: false })).toBeNull();
  });

  test("a ToolOrchestra model config imports as-is, retrieval keys as retrieval endpoints", async () => {
    const config = {
      "Qwen/Qwen3-32B": [
        { ip_addr: "10.0.0.5", port: 1234 },
        { ip_addr: "10.0.0.6", port: "1234" },
      ],
      retrieval: [{ ip_addr: "10.0.0.7", port: 8000 }],
      wiki_retrieval: [{ ip_addr: "10.0.0.8", port: 8001 }],
      vllm_model_config_path: "/some/path.json",
    };
    const res = await importToolOrchestraConfig({ db, config });
    expect(res.endpoints.length).toBe(4);
    expect(res.ignoredKeys).toEqual(["vllm_model_config_path"]);
    const rows = await listEndpoints({ db });
    const byName = (n: string) => rows.filter((r) => r.name === n);
    expect(byName("Qwen/Qwen3-32B").map((r) => r.baseUrl).sort()).toEqual(["http://10.0.0.5:1234", "http://10.0.0.6:1234"]);
    expect(byName("Qwen/Qwen3-32B").every((r) => r.kind === "model")).toBe(true);
    expect(byName("retrieval")[0].kind).toBe("retrieval");
    expect(byName("wiki_retrieval")[0]).toMatchObject({ kind: "retrieval", baseUrl: "http://10.0.0.8:8001" });
    // importing again upserts: nothing doubles
    await importToolOrchestraConfig({ db, config });
    expect((await listEndpoints({ db })).length).toBe(4);
  });

  test("a bad entry names its key and index and nothing is written", async () => {
    const config = {
      good: [{ ip_addr: "10.0.0.5", port: 1 }],
      "my-model": [{ ip_addr: "10.0.0.6", port: 2 }, { ip_addr: "10.0.0.7", port: "eighty" }],
    };
    let caught: unknown;
    try {
      await importToolOrchestraConfig({ db, config });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(EndpointInputError);
    expect((caught as Error).message).toContain("my-model[1].port");
    expect((await listEndpoints({ db })).length).toBe(0);
  });

  test("structural problems are named: non-object config, non-list value, missing ip_addr", () => {
    expect(() => parseToolOrchestraConfig([1])).toThrow(/config/);
    expect(() => parseToolOrchestraConfig({ m: 3 })).toThrow(/^m: /);
    expect(() => parseToolOrchestraConfig({ m: [{ port: 1 }] })).toThrow(/m\[0\]\.ip_addr/);
    expect(() => parseToolOrchestraConfig({ m: [{ ip_addr: "h", port: 70000 }] })).toThrow(/m\[0\]\.port/);
  });
});

const agent = (name: string, port: number, over: Record<string, unknown> = {}) => ({
  kind: "model" as const,
  name,
  baseUrl: `http://127.0.0.1:${port}`,
  role: "expert_llm" as const,
  service: "experts",
  node: "vm",
  slurmJobId: "41",
  slurmArrayJobId: "40",
  slurmArrayTaskId: "1",
  ...over,
});

describe("endpoint lifecycle", () => {
  test("a registered endpoint is healthy with its placement, draining after drain, and disappears on deregister", async () => {
    const e = await registerEndpoint({ db, endpoint: agent("m", 8001), leaseMs: 60_000 });
    expect(e).toMatchObject({ state: "healthy", role: "expert_llm", service: "experts", node: "vm", slurmJobId: "41", slurmArrayJobId: "40", slurmArrayTaskId: "1" });
    expect(e.leaseExpiresAt! - Date.now()).toBeGreaterThan(50_000);
    expect((await drainEndpoint({ db, id: e.id }))!.state).toBe("draining");
    // a heartbeat while draining keeps it draining
    expect((await heartbeatEndpoint({ db, id: e.id, leaseMs: 60_000 }))!.state).toBe("draining");
    expect(await deregisterEndpoint({ db, id: e.id })).toBe(true);
    expect(await getEndpoint({ db, id: e.id })).toBeNull();
    expect(await deregisterEndpoint({ db, id: e.id })).toBe(false);
    expect(await heartbeatEndpoint({ db, id: e.id, leaseMs: 1_000 })).toBeNull();
  });

  test("an endpoint whose heartbeats stop is gone after its lease, read from a second connection; a late heartbeat brings it back", async () => {
    const e = await registerEndpoint({ db, endpoint: agent("m", 8002), leaseMs: 1_000 });
    // the lease is DB time: move it into the past instead of sleeping
    await db.$client.execute({ sql: "UPDATE endpoints SET lease_expires_at = lease_expires_at - 5000 WHERE id = ?", args: [e.id] });
    const other = await openDb({ url: `file:${join(dir, "t.db")}` });
    try {
      expect((await getEndpoint({ db: other, id: e.id }))!.state).toBe("gone");
    } finally {
      closeDb(other);
    }
    expect((await heartbeatEndpoint({ db, id: e.id, leaseMs: 60_000 }))!.state).toBe("healthy");
    expect((await getEndpoint({ db, id: e.id }))!.state).toBe("healthy");
  });

  test("imported endpoints have no lease and stay healthy; registering on the same host and port takes the row over", async () => {
    await importToolOrchestraConfig({ db, config: { m: [{ ip_addr: "127.0.0.1", port: 8003 }] } });
    const [imported] = await listEndpoints({ db });
    expect(imported).toMatchObject({ state: "healthy", leaseExpiresAt: null, role: null });
    const e = await registerEndpoint({ db, endpoint: agent("m", 8003), leaseMs: 60_000 });
    expect(e.id).toBe(imported.id);
    expect(e.role).toBe("expert_llm");
  });

  test("a registration with a bad role, URL host or overlong name is refused naming the field", async () => {
    await expect(registerEndpoint({ db, endpoint: agent("m", 1, { role: "gpu" }), leaseMs: 1_000 })).rejects.toThrow(/^role: /);
    await expect(registerEndpoint({ db, endpoint: agent("m", 1, { baseUrl: "http://bad_host!:1" }), leaseMs: 1_000 })).rejects.toThrow(/baseUrl/);
    await expect(registerEndpoint({ db, endpoint: agent("x".repeat(201), 1), leaseMs: 1_000 })).rejects.toThrow(/^name: must be at most 200/);
    expect(await listEndpoints({ db })).toEqual([]);
  });
});

describe("ToolOrchestra config checks (from #8)", () => {
  test("ip_addr must be a host name or IP: a path, query, port or credentials are refused naming ip_addr", () => {
    for (const ip_addr of ["127.0.0.1/evil?x=", "host name", "http://u:p@h", "http://h/path", "a..b", "h:1"]) {
      expect(() => parseToolOrchestraConfig({ m: [{ ip_addr, port: 1 }] })).toThrow(/^m\[0\]\.ip_addr: must be a host name or IP address/);
    }
    const ok = parseToolOrchestraConfig({ m: [{ ip_addr: "node-01.cluster", port: 1 }, { ip_addr: "::1", port: 2 }, { ip_addr: "http://10.0.0.5", port: 3 }] });
    expect(ok.endpoints.map((e) => e.baseUrl)).toEqual(["http://node-01.cluster:1", "http://[::1]:2", "http://10.0.0.5:3"]);
  });

  test("a list instead of an object says what it got; an overlong model name is refused", () => {
    expect(() => parseToolOrchestraConfig([1])).toThrow("config: must be a JSON object mapping model names to lists of {ip_addr, port}, got a list");
    expect(() => parseToolOrchestraConfig({ ["m".repeat(300)]: [{ ip_addr: "h", port: 1 }] })).toThrow(/at most 200 characters/);
  });

  test("credentials inside a URL are redacted for display", () => {
    expect(redactUrl("http://user:secret@10.0.0.5:8000")).toBe("http://***@10.0.0.5:8000");
    expect(redactUrl("https://10.0.0.5:8000/v1")).toBe("https://10.0.0.5:8000/v1");
  });
});

describe("runs wait for their endpoints", () => {
  const config = {
    orchestrator: { model: "orch" },
    judge: { model: "judge-m" },
    models: { "search-1": "q", "search-2": "q", "reasoner-1": "c", "reasoner-2": "c", "answer-1": "Qwen/Qwen3-32B-FP8", "answer-2": "Qwen/Qwen3-32B-FP8" },
    toolModels: { search: ["search-1", "search-2"], enhance_reasoning: ["reasoner-1", "reasoner-2"], answer: ["answer-1", "answer-2"] },
    retrieval: { backends: ["wiki_retrieval", "retrieval"] },
  };
  const tasks = [{ id: "a", question: "q1", answer: "1" }, { id: "b", question: "q2", answer: "2" }];

  test("a run with no healthy endpoint for a model is not claimed, and says what it waits for, until one registers", async () => {
    const { run } = await createRun({ db, name: "w", benchmark: "frames", config, tasks: validateTasks({ rows: tasks }) });
    for (const m of ["orch", "judge-m", "q", "c"]) await registerEndpoint({ db, endpoint: agent(m, 9000 + m.length), leaseMs: 60_000 });
    const waiting = await listWaitingRuns({ db });
    expect(waiting).toHaveLength(1);
    expect(waiting[0].runId).toBe(run.id);
    expect(waiting[0].needs.map((n) => `${n.label} ${n.kind} ${n.names.join("|")}`).sort()).toEqual([
      "answer model Qwen/Qwen3-32B-FP8",
      "search retrieval wiki_retrieval|retrieval",
    ]);
    expect(await claimReadyTasks({ db, runnerId: "r", limit: 5, leaseMs: 60_000, waitForEndpoints: true })).toEqual([]);
    expect(await claimReadyTasks({ db, runnerId: "r", limit: 5, leaseMs: 60_000, runId: run.id, waitForEndpoints: true })).toEqual([]);
    const attempts = await db.$client.execute("SELECT attempt, status FROM tasks");
    expect(attempts.rows.map((r) => [r.attempt, r.status])).toEqual([[0, "queued"], [0, "queued"]]);

    const answer = await registerEndpoint({ db, endpoint: agent("Qwen/Qwen3-32B-FP8", 9100), leaseMs: 60_000 });
    await registerEndpoint({ db, endpoint: { ...agent("retrieval", 9200), kind: "retrieval", role: "retrieval" }, leaseMs: 60_000 });
    expect(await listWaitingRuns({ db })).toEqual([]);
    // draining counts as not served: the run waits again (nothing claimed)
    await drainEndpoint({ db, id: answer.id });
    expect((await listWaitingRuns({ db }))[0].needs.map((n) => n.names[0])).toEqual(["Qwen/Qwen3-32B-FP8"]);
    await heartbeatEndpoint({ db, id: (await registerEndpoint({ db, endpoint: agent("Qwen/Qwen3-32B-FP8", 9101), leaseMs: 60_000 })).id, leaseMs: 60_000 });
    const claimed = await claimReadyTasks({ db, runnerId: "r", limit: 5, leaseMs: 60_000, waitForEndpoints: true });
    expect(claimed.map((t) => t.attempt)).toEqual([1, 1]);
  });

  test("a tool waits only when none of its models is served", async () => {
    const split = { ...config, models: { ...config.models, "answer-2": "q" } };
    const { run } = await createRun({ db, name: "split", benchmark: "frames", config: split, tasks: validateTasks({ rows: tasks }) });
    for (const m of ["orch", "judge-m", "q", "c"]) await registerEndpoint({ db, endpoint: agent(m, 9300 + m.length), leaseMs: 60_000 });
    await registerEndpoint({ db, endpoint: { ...agent("retrieval", 9400), kind: "retrieval", role: "retrieval" }, leaseMs: 60_000 });
    // answer-1's model is not served, answer-2's is: the run can work
    expect(await listWaitingRuns({ db, runId: run.id })).toEqual([]);
  });

  test("endpoints listed in the run's own config count as served; a canceled or finished run is not reported", async () => {
    const inline = { ...config, endpoints: { orch: [{ ip_addr: "h", port: 1 }], "judge-m": [{ ip_addr: "h", port: 2 }], q: [{ ip_addr: "h", port: 3 }], c: [{ ip_addr: "h", port: 4 }], "Qwen/Qwen3-32B-FP8": [{ ip_addr: "h", port: 5 }], retrieval: [{ ip_addr: "h", port: 6 }] } };
    await createRun({ db, name: "inline", benchmark: "frames", config: inline, tasks: validateTasks({ rows: tasks }) });
    expect(await listWaitingRuns({ db })).toEqual([]);
    const { run } = await createRun({ db, name: "other", benchmark: "frames", config, tasks: validateTasks({ rows: tasks }) });
    expect((await listWaitingRuns({ db })).map((w) => w.runId)).toEqual([run.id]);
    await db.$client.execute({ sql: "UPDATE runs SET canceled_at = 1 WHERE id = ?", args: [run.id] });
    expect(await listWaitingRuns({ db })).toEqual([]);
  });
});
