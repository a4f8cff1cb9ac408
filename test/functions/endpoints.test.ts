import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, openDb, type Db } from "../../db/client";
import { createApp } from "../../functions/index";

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

  test("with a token configured, changes need it while listing stays open", async () => {
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
    expect((await guarded.handle(new Request("http://localhost/v1/endpoints"))).status).toBe(200);
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
});
