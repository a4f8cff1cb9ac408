import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, openDb, type Db } from "../../db/client";
import { createApp } from "../../functions/index";
import { AUTH, makeApp } from "./_app";

let dir: string;
let db: Db;
let app: { handle(req: Request): Promise<Response> };

async function call(method: string, path: string, body?: unknown): Promise<[Response, any]> {
  const res = await app.handle(
    new Request(`http://localhost${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );
  const text = await res.text();
  return [res, text ? JSON.parse(text) : null];
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-endpoints-fn-"));
  db = await openDb({ url: `file:${join(dir, "t.db")}` });
  app = createApp({ db, token: null });
});

afterAll(() => {
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

describe("endpoint routes", () => {
  test("POST /v1/endpoints adds one and GET lists it", async () => {
    const [res, body] = await call("POST", "/v1/endpoints", { kind: "model", name: "orch", base_url: "http://127.0.0.1:9001" });
    expect(res.status).toBe(201);
    expect(body).toMatchObject({ kind: "model", name: "orch", base_url: "http://127.0.0.1:9001", enabled: true });
    const [res2, list] = await call("GET", "/v1/endpoints");
    expect(res2.status).toBe(200);
    expect(list.endpoints.some((e: any) => e.id === body.id)).toBe(true);
  });

  test("an invalid URL is a 400 in the one error shape, naming the field", async () => {
    const [res, body] = await call("POST", "/v1/endpoints", { kind: "model", name: "orch", base_url: "not a url" });
    expect(res.status).toBe(400);
    expect(body.error.code).toBe("endpoints.invalid");
    expect(body.error.message).toContain("baseUrl");
  });

  test("import takes a ToolOrchestra config and reports a bad entry by key and index", async () => {
    const [ok, body] = await call("POST", "/v1/endpoints/import", {
      "expert-a": [{ ip_addr: "127.0.0.1", port: 9100 }],
      retrieval: [{ ip_addr: "127.0.0.1", port: 9200 }],
    });
    expect(ok.status).toBe(200);
    expect(body.endpoints.map((e: any) => e.kind).sort()).toEqual(["model", "retrieval"]);
    const before = (await call("GET", "/v1/endpoints"))[1].endpoints.length;
    const [bad, err] = await call("POST", "/v1/endpoints/import", { x: [{ ip_addr: "127.0.0.1", port: 1 }], y: [{ ip_addr: "" }] });
    expect(bad.status).toBe(400);
    expect(err.error.message).toContain("y[0].ip_addr");
    expect((await call("GET", "/v1/endpoints"))[1].endpoints.length).toBe(before);
  });

  test("a body missing a field is a 400 naming it", async () => {
    const [res, body] = await call("POST", "/v1/endpoints", { kind: "model", base_url: "http://127.0.0.1:1" });
    expect(res.status).toBe(400);
    expect(body.error.message).toContain("name");
    const [res2, body2] = await call("POST", "/v1/endpoints", { kind: "gpu", name: "x", base_url: "http://127.0.0.1:1" });
    expect(res2.status).toBe(400);
    expect(body2.error.message).toContain("kind");
  });

  test("with a token configured, changes and the listing (URLs) need it", async () => {
    const guarded = createApp({ db, token: "s3cret" });
    const post = (auth?: string) =>
      guarded.handle(
        new Request("http://localhost/v1/endpoints", {
          method: "POST",
          headers: { "content-type": "application/json", ...(auth ? { authorization: auth } : {}) },
          body: JSON.stringify({ kind: "model", name: "guarded", base_url: "http://127.0.0.1:9400" }),
        }),
      );
    expect((await post()).status).toBe(401);
    expect((await post("Bearer s3cret")).status).toBe(201);
    expect((await guarded.handle(new Request("http://localhost/v1/endpoints"))).status).toBe(401);
    expect((await guarded.handle(new Request("http://localhost/v1/endpoints", { headers: { authorization: "Bearer s3cret" } }))).status).toBe(200);
  });

  test("disable and enable flip the flag, and an unknown id is a 404", async () => {
    const [, added] = await call("POST", "/v1/endpoints", { kind: "model", name: "flip", base_url: "http://127.0.0.1:9300" });
    const [r1, off] = await call("POST", `/v1/endpoints/${added.id}/disable`);
    expect(r1.status).toBe(200);
    expect(off.enabled).toBe(false);
    const [, on] = await call("POST", `/v1/endpoints/${added.id}/enable`);
    expect(on.enabled).toBe(true);
    const [r404, body] = await call("POST", "/v1/endpoints/424242/disable");
    expect(r404.status).toBe(404);
    expect(body.error.code).toBe("endpoints.not_found");
  });

  test("an endpoint agent registers, heartbeats, drains and deregisters; the list shows its state and placement", async () => {
    const reg = { kind: "model", name: "agent-m", base_url: "http://127.0.0.1:9500", role: "expert_llm", service: "experts", node: "vm", slurm_job_id: "12", slurm_array_job_id: "11", slurm_array_task_id: "1", lease_ms: 60_000 };
    const [r1, e] = await call("POST", "/v1/endpoints/register", reg);
    expect(r1.status).toBe(201);
    expect(e).toMatchObject({ state: "healthy", role: "expert_llm", service: "experts", node: "vm", slurm_job_id: "12", slurm_array_task_id: "1" });
    const [r2, hb] = await call("POST", `/v1/endpoints/${e.id}/heartbeat`, { lease_ms: 60_000 });
    expect(r2.status).toBe(200);
    expect(hb.lease_expires_at).toBeGreaterThanOrEqual(e.lease_expires_at);
    const [, drained] = await call("POST", `/v1/endpoints/${e.id}/drain`);
    expect(drained.state).toBe("draining");
    expect((await call("GET", "/v1/endpoints"))[1].endpoints.find((x: any) => x.id === e.id).state).toBe("draining");
    const [r3] = await call("DELETE", `/v1/endpoints/${e.id}`);
    expect(r3.status).toBe(200);
    expect((await call("GET", "/v1/endpoints"))[1].endpoints.some((x: any) => x.id === e.id)).toBe(false);
    const [r4, gone] = await call("POST", `/v1/endpoints/${e.id}/heartbeat`, { lease_ms: 60_000 });
    expect(r4.status).toBe(404);
    expect(gone.error.code).toBe("endpoints.not_found");
  });

  test("a registration without a valid role or lease is a 400 naming the field", async () => {
    const [r1, b1] = await call("POST", "/v1/endpoints/register", { kind: "model", name: "m", base_url: "http://127.0.0.1:1", role: "gpu", lease_ms: 5_000 });
    expect(r1.status).toBe(400);
    expect(b1.error.message).toContain("role");
    const [r2, b2] = await call("POST", "/v1/endpoints/register", { kind: "model", name: "m", base_url: "http://127.0.0.1:1", role: "judge" });
    expect(r2.status).toBe(400);
    expect(b2.error.message).toContain("lease_ms");
  });

  test("import [1] is a 400 that says a JSON object was expected and a list was given", async () => {
    const [res, body] = await call("POST", "/v1/endpoints/import", [1]);
    expect(res.status).toBe(400);
    expect(body.error.message).toContain("config: must be a JSON object");
    expect(body.error.message).toContain("got a list");
  });

  test("ip_addr with a path or query is refused naming ip_addr; an overlong name is refused", async () => {
    const [res, body] = await call("POST", "/v1/endpoints/import", { m: [{ ip_addr: "127.0.0.1/evil?x=", port: 1 }] });
    expect(res.status).toBe(400);
    expect(body.error.message).toContain("m[0].ip_addr");
    const [res2, body2] = await call("POST", "/v1/endpoints", { kind: "model", name: "n".repeat(201), base_url: "http://127.0.0.1:1" });
    expect(res2.status).toBe(400);
    expect(body2.error.message).toContain("name");
  });

  test("credentials inside an endpoint URL are never returned by the public list, but runners (token) get them", async () => {
    const guarded = createApp({ db, token: "s3cret" });
    const add = await guarded.handle(
      new Request("http://localhost/v1/endpoints", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer s3cret" },
        body: JSON.stringify({ kind: "model", name: "cred", base_url: "http://user:hunter2@127.0.0.1:9600" }),
      }),
    );
    const added = (await add.json()) as any;
    expect(added.base_url).toBe("http://***@127.0.0.1:9600");
    const listText = await (await guarded.handle(new Request("http://localhost/v1/endpoints", { headers: { authorization: "Bearer s3cret" } }))).text();
    expect(listText).not.toContain("hunter2");
    const runnerView = (await (await guarded.handle(new Request("http://localhost/v1/queue/endpoints", { headers: { authorization: "Bearer s3cret" } }))).json()) as any;
    expect(runnerView.endpoints.find((e: any) => e.name === "cred").base_url).toBe("http://user:hunter2@127.0.0.1:9600");
    expect((await guarded.handle(new Request("http://localhost/v1/queue/endpoints"))).status).toBe(401);
  });

  test("GET /v1/waiting lists open runs with what they wait for", async () => {
    const [sub] = await call("POST", "/v1/runs", {
      name: "waits",
      benchmark: "frames",
      config: { orchestrator: { model: "nobody-serves-this" } },
      tasks: [{ id: "a", question: "q", answer: "a" }],
    });
    expect(sub.status).toBeLessThan(300);
    const [res, body] = await call("GET", "/v1/waiting");
    expect(res.status).toBe(200);
    const run = body.runs.find((r: any) => r.run_name === "waits");
    expect(run.needs).toContainEqual({ label: "orchestrator", kind: "model", names: ["nobody-serves-this"], healthy: 0 });
  });
});

describe("GET /v1/endpoints pages", () => {
  test("by kind and name, every endpoint once, next_cursor until the last page; a bad cursor is a 400 naming it", async () => {
    const t = await makeApp();
    try {
      const added = [["retrieval", "r1"], ["model", "b"], ["model", "a"], ["model", "a"], ["retrieval", "r0"]] as const;
      for (const [i, [kind, name]] of added.entries())
        expect((await t.req("/v1/endpoints", { method: "POST", headers: AUTH, json: { kind, name, base_url: `http://127.0.0.1:${9100 + i}` } }))[0].status).toBe(201);
      const [, all] = await t.req("/v1/endpoints", { headers: AUTH });
      expect(all.next_cursor).toBeNull();
      expect(all.endpoints).toHaveLength(5);
      const seen: string[] = [];
      let cursor: number | null = null;
      do {
        const [res, page] = await t.req(`/v1/endpoints?limit=2${cursor != null ? `&cursor=${cursor}` : ""}`, { headers: AUTH });
        expect(res.status).toBe(200);
        expect(page.endpoints.length).toBeLessThanOrEqual(2);
        seen.push(...page.endpoints.map((e: any) => `${e.kind}/${e.name}/${e.id}`));
        cursor = page.next_cursor;
      } while (cursor != null);
      expect(seen).toEqual(all.endpoints.map((e: any) => `${e.kind}/${e.name}/${e.id}`));
      expect(seen.map((s) => s.split("/").slice(0, 2).join("/"))).toEqual([...seen.map((s) => s.split("/").slice(0, 2).join("/"))].sort());
      const [bad, err] = await t.req("/v1/endpoints?cursor=999", { headers: AUTH });
      expect(bad.status).toBe(400);
      expect(err.error.message).toMatch(/^cursor: /);
    } finally {
      t.close();
    }
  });
});
