import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, openDb, type Db } from "../../db/client";
import {
  addEndpoint,
  EndpointInputError,
  importToolOrchestraConfig,
  listEndpoints,
  parseToolOrchestraConfig,
  setEndpointEnabled,
} from "../../db/endpoints";

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
