// One guard for every API route: a query parameter the route does not declare is refused,
// named, before the route runs — a misspelt filter never silently widens an answer.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { AUTH, makeApp, tasksOf, type TestApp } from "./_app";

let t: TestApp;
beforeEach(async () => {
  t = await makeApp();
  for (const name of ["a", "b"]) await t.req("/v1/runs", { method: "POST", headers: AUTH, json: { name, benchmark: "frames", tasks: tasksOf(2) } });
});
afterEach(() => t.close());

test("/v1/queue/open?run_id=1 counts run 1 only, and the camelCase spelling is refused rather than counting every run", async () => {
  expect((await t.req("/v1/queue/open?run_id=1", { headers: AUTH }))[1]).toEqual({ queued: 2, running: 0 });
  const [res, body] = await t.req("/v1/queue/open?runId=1", { headers: AUTH });
  expect(res.status).toBe(400);
  expect(body.error).toEqual({ code: "request.invalid", message: "query.runId: unknown query parameter" });
});

test("routes without query parameters refuse any, naming the first unknown one", async () => {
  for (const path of ["/healthz?verbose=1", "/v1/endpoints?kind=model", "/v1/runs/1?fields=all", "/v1/tasks/1/attempts?x=1&y=2"]) {
    const [res, body] = await t.req(path, { headers: AUTH });
    expect(`${path} ${res.status} ${body.error?.message}`).toBe(`${path} 400 query.${new URL(path, "http://x").searchParams.keys().next().value}: unknown query parameter`);
  }
});

test("declared parameters still work, and nothing is written when a POST carries an unknown one", async () => {
  expect((await t.req("/v1/runs?limit=1", { headers: AUTH }))[0].status).toBe(200);
  expect((await t.req("/v1/waiting?run_id=1", { headers: AUTH }))[0].status).toBe(200);
  const [res] = await t.req("/v1/runs/1/cancel?force=1", { method: "POST", headers: AUTH });
  expect(res.status).toBe(400);
  expect((await t.req("/v1/runs/1", { headers: AUTH }))[1].canceled_at).toBeNull();
});

test("a JSONL submit still takes its run fields from the query string", async () => {
  const jsonl = tasksOf(2).map((x) => JSON.stringify(x)).join("\n");
  const headers = { ...AUTH, "content-type": "application/x-ndjson" };
  const [ok, run] = await t.req("/v1/runs?name=j&benchmark=frames&max_attempts=2&repeats=1", { method: "POST", headers, body: jsonl });
  expect(ok.status).toBe(201);
  expect(run.name).toBe("j");
  const [bad, body] = await t.req("/v1/runs?name=k&benchmark=frames&maxAttempts=2", { method: "POST", headers, body: jsonl });
  expect(bad.status).toBe(400);
  expect(body.error.message).toBe("query.maxAttempts: unknown query parameter");
});
