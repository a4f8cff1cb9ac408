import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, openDb, type Db } from "../../db/client";
import { addEndpoint, drainEndpoint, listEndpoints, registerEndpoint, setEndpointEnabled } from "../../db/endpoints";
import { EndpointRegistry } from "../../runner/endpoint-registry";
import { callChat } from "../../runner/llm-client";
import { startVllmSim, type VllmSim } from "../../sim/vllm";

const MODEL = "sim/expert";
let dir: string;
let db: Db;
let first: VllmSim;
let second: VllmSim;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-registry-"));
  db = await openDb({ url: `file:${join(dir, "t.db")}` });
  first = await startVllmSim({ model: MODEL, mode: "expert" });
  second = await startVllmSim({ model: MODEL, mode: "expert" });
});

afterAll(async () => {
  await first.stop();
  await second.stop();
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

async function until(cond: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await Bun.sleep(10);
  }
}

describe("EndpointRegistry", () => {
  test(
    "a newly added endpoint is used without a restart, and a disabled one is dropped",
    async () => {
      const a = await addEndpoint({ db, endpoint: { kind: "model", name: MODEL, baseUrl: first.url } });
      const registry = new EndpointRegistry({ source: () => listEndpoints({ db, enabledOnly: true }), refreshMs: 50 });
      await registry.start();
      try {
        const pool = registry.modelPool(MODEL);
        expect(pool.urls()).toEqual([first.url]);
        // the replacement node comes up and is registered while the "run" goes on
        await addEndpoint({ db, endpoint: { kind: "model", name: MODEL, baseUrl: second.url } });
        await setEndpointEnabled({ db, id: a.id, enabled: false });
        await until(() => pool.urls().length === 1 && pool.urls()[0] === second.url);
        const before = second.stats().completed;
        const r = await callChat({ pool, role: "expert_llm", request: { model: MODEL, messages: [{ role: "user", content: "hi" }] } });
        expect(r.endpoint).toBe(second.url);
        expect(second.stats().completed).toBe(before + 1);
      } finally {
        registry.stop();
      }
    },
    15_000,
  );

  test("refresh() on demand picks up a change at once", async () => {
    const registry = new EndpointRegistry({ source: () => listEndpoints({ db, enabledOnly: true }), refreshMs: 0 });
    await registry.start();
    const pool = registry.retrievalPool("wiki_retrieval");
    expect(pool.size).toBe(0);
    await addEndpoint({ db, endpoint: { kind: "retrieval", name: "wiki_retrieval", baseUrl: "http://127.0.0.1:1" } });
    await registry.refresh();
    expect(pool.urls()).toEqual(["http://127.0.0.1:1"]);
    // a model of the same name is a different pool
    expect(registry.modelPool("wiki_retrieval").size).toBe(0);
  });

  test("static endpoints from a run config fill names the registry does not know", async () => {
    const registry = new EndpointRegistry({
      source: () => listEndpoints({ db, enabledOnly: true }),
      fallback: { models: { "only/in-config": ["http://127.0.0.1:2"], [MODEL]: ["http://127.0.0.1:3"] } },
    });
    await registry.start();
    expect(registry.modelPool("only/in-config").urls()).toEqual(["http://127.0.0.1:2"]);
    // the registry has MODEL, so it wins over a possibly stale config
    expect(registry.modelPool(MODEL).urls()).toEqual([second.url]);
    registry.stop();
  });

  test("a failing source keeps the last good set and reports the error", async () => {
    let fail = false;
    const errors: unknown[] = [];
    const registry = new EndpointRegistry({
      source: async () => {
        if (fail) throw new Error("server unreachable");
        return [{ id: 1, kind: "model", name: "m", baseUrl: "http://127.0.0.1:4", enabled: true }];
      },
      onError: (e) => errors.push(e),
    });
    await registry.start();
    fail = true;
    await registry.refresh();
    expect(registry.modelPool("m").urls()).toEqual(["http://127.0.0.1:4"]);
    expect(errors.length).toBe(1);
    registry.stop();
  });

  test("only healthy endpoints get calls: a draining one gets none new, a gone one none, and the config does not stand in for them", async () => {
    const name = "lifecycle/model";
    const reg = (url: string) => registerEndpoint({ db, endpoint: { kind: "model", name, baseUrl: url, role: "expert_llm" }, leaseMs: 60_000 });
    const a = await reg("http://127.0.0.1:11");
    const b = await reg("http://127.0.0.1:12");
    const registry = new EndpointRegistry({ source: () => listEndpoints({ db }), refreshMs: 0, fallback: { models: { [name]: ["http://127.0.0.1:13"] } } });
    await registry.start();
    const pool = registry.modelPool(name);
    expect(pool.urls().sort()).toEqual(["http://127.0.0.1:11", "http://127.0.0.1:12"]);
    await drainEndpoint({ db, id: a.id });
    await registry.refresh();
    expect(pool.urls()).toEqual(["http://127.0.0.1:12"]);
    // b's agent stopped heartbeating long ago
    await db.$client.execute({ sql: "UPDATE endpoints SET lease_expires_at = 1 WHERE id = ?", args: [b.id] });
    await registry.refresh();
    expect(pool.urls()).toEqual([]);
  });
});
