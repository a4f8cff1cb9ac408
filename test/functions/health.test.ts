import { expect, test } from "bun:test";
import { closeDb } from "../../db/client";
import { AUTH, makeApp } from "./_app";

test("health answers ok after a query, and 503 when the database is gone", async () => {
  const t = await makeApp();
  const [res, body] = await t.req("/healthz", { headers: AUTH });
  expect(res.status).toBe(200);
  expect(body).toMatchObject({ ok: true, db: "ok", writable: true });
  expect(body.free_bytes).toBeGreaterThan(0);
  closeDb(t.db);
  const [down, err] = await t.req("/healthz", { headers: AUTH });
  expect(down.status).toBe(503);
  expect(err.error.code).toBe("health.db_unavailable");
});

test("an unknown route answers in the error shape", async () => {
  const t = await makeApp();
  const [res, body] = await t.req("/v1/nope", { headers: AUTH });
  expect(res.status).toBe(404);
  expect(body.error.code).toBe("route.not_found");
  t.close();
});
