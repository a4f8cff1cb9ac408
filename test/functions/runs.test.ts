import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { countRows } from "../../db/runs";
import { AUTH, makeApp, tasksOf, type TestApp } from "./_app";

let t: TestApp;
beforeEach(async () => {
  t = await makeApp({ maxBodyBytes: 64 * 1024 });
});
afterEach(() => t.close());

const post = (body: unknown, headers: Record<string, string> = {}) =>
  t.req("/v1/runs", { method: "POST", headers: { ...AUTH, ...headers }, json: body });

describe("POST /v1/runs", () => {
  test("a JSON submit queues every task and keeps the dataset's extra fields", async () => {
    const rows = [
      { id: 7, question: "q7", answer: "x", answer_type: "exactMatch", image: "data:..", canary: "c" },
      { id: "b", question: "qb" },
    ];
    const [res, body] = await post({ name: "frames-a", benchmark: "frames", tasks: rows, max_attempts: 2 });
    expect(res.status).toBe(201);
    expect(body).toMatchObject({ name: "frames-a", tasks: 2, created: true });
    const [, page] = await t.req(`/v1/runs/${body.id}/tasks`, { headers: AUTH });
    expect(page.tasks.map((x: any) => x.external_id)).toEqual(["7", "b"]);
    expect(page.tasks.every((x: any) => x.status === "queued" && x.max_attempts === 2)).toBe(true);
    const [, detail] = await t.req(`/v1/tasks/${page.tasks[0].id}`, { headers: AUTH });
    expect(detail.input).toEqual(rows[0]);
  });

  test("the stored config is the resolved one, with defaults filled in", async () => {
    const [, created] = await post({ name: "c", benchmark: "hle", config: {}, tasks: tasksOf(1) });
    const [res, run] = await t.req(`/v1/runs/${created.id}`, { headers: AUTH });
    expect(res.status).toBe(200);
    expect(run.config.benchmark).toBe("hle");
    expect(Object.keys(run.config).length).toBeGreaterThan(1);
  });

  test("a JSONL upload takes run fields from the query string", async () => {
    const jsonl = '{"id":1,"question":"a"}\n\n{"id":2,"question":"b","answer":"B"}\n';
    const [res, body] = await t.req("/v1/runs?name=jl&benchmark=hle&max_attempts=5", {
      method: "POST",
      headers: { ...AUTH, "content-type": "application/x-ndjson" },
      body: jsonl,
    });
    expect(res.status).toBe(201);
    expect(body.tasks).toBe(2);
    const [, run] = await t.req(`/v1/runs/${body.id}`, { headers: AUTH });
    expect(run).toMatchObject({ name: "jl", benchmark: "hle", max_attempts: 5, task_count: 2 });
  });

  const bad: [string, () => Promise<[Response, any]>, number, RegExp][] = [
    ["a task without a question", () => post({ name: "r", benchmark: "frames", tasks: [{ id: 1, question: "q" }, { id: 2 }] }), 400, /tasks\[1\]\.question: expected a non-empty string/],
    ["an empty question", () => post({ name: "r", benchmark: "frames", tasks: [{ id: 1, question: "" }] }), 400, /tasks\[0\]\.question/],
    ["an id that is an object", () => post({ name: "r", benchmark: "frames", tasks: [{ id: { x: 1 }, question: "q" }] }), 400, /tasks\[0\]\.id/],
    ["a task that is not an object", () => post({ name: "r", benchmark: "frames", tasks: [{ id: 1, question: "q" }, "nope"] }), 400, /tasks\[1\]: expected an object/],
    ["duplicate ids", () => post({ name: "r", benchmark: "frames", tasks: [{ id: 1, question: "a" }, { id: 2, question: "b" }, { id: "1", question: "c" }] }), 400, /tasks\[2\]\.id: duplicate id "1" \(first at tasks\[0\]\)/],
    ["an empty task list", () => post({ name: "r", benchmark: "frames", tasks: [] }), 400, /tasks: expected at least one task/],
    ["a missing name", () => post({ benchmark: "frames", tasks: tasksOf(1) }), 400, /^name: /],
    ["max_attempts of 0", () => post({ name: "r", benchmark: "frames", tasks: tasksOf(1), max_attempts: 0 }), 400, /max_attempts/],
    ["an invalid config", () => post({ name: "r", benchmark: "frames", tasks: tasksOf(1), config: { max_rounds: "many" } }), 400, /^config\.max_rounds: /],
    ["a camelCase config field", () => post({ name: "r", benchmark: "frames", tasks: tasksOf(1), config: { maxRounds: 3 } }), 400, /^config\.maxRounds: unknown field, did you mean max_rounds\?$/],
    ["a body that is not JSON", () => t.req("/v1/runs", { method: "POST", headers: { ...AUTH, "content-type": "application/json" }, body: "{nope" }), 400, /not valid JSON/],
    ["a bad JSONL line", () => t.req("/v1/runs?name=r&benchmark=hle", { method: "POST", headers: { ...AUTH, "content-type": "application/x-ndjson" }, body: '{"id":1,"question":"a"}\n{"id":2,"question":"b"\n' }), 400, /^line 2: invalid JSON/],
    ["a JSONL row without a question", () => t.req("/v1/runs?name=r&benchmark=hle", { method: "POST", headers: { ...AUTH, "content-type": "application/x-ndjson" }, body: '{"id":1,"question":"a"}\n\n{"id":2}\n' }), 400, /^line 3\.question/],
    ["JSONL duplicate ids", () => t.req("/v1/runs?name=r&benchmark=hle", { method: "POST", headers: { ...AUTH, "content-type": "application/x-ndjson" }, body: '{"id":1,"question":"a"}\n{"id":1,"question":"b"}' }), 400, /line 2\.id: duplicate id "1" \(first at line 1\)/],
    ["JSONL without a name", () => t.req("/v1/runs?benchmark=hle", { method: "POST", headers: { ...AUTH, "content-type": "application/x-ndjson" }, body: '{"id":1,"question":"a"}' }), 400, /^name/],
    ["an oversize body", () => post({ name: "r", benchmark: "frames", tasks: tasksOf(2000) }), 413, /limit is 65536/],
    ["no token", () => t.req("/v1/runs", { method: "POST", json: { name: "r", benchmark: "frames", tasks: tasksOf(1) } }), 401, /Bearer/],
    ["a wrong token", () => t.req("/v1/runs", { method: "POST", headers: { authorization: "Bearer wrong" }, json: { name: "r", benchmark: "frames", tasks: tasksOf(1) } }), 401, /not valid/],
  ];

  for (const [what, send, status, message] of bad) {
    test(`${what} is answered ${status} with a message naming it, and nothing is written`, async () => {
      await post({ name: "existing", benchmark: "frames", tasks: tasksOf(3) });
      const before = await countRows({ db: t.db });
      const [res, body] = await send();
      expect(res.status).toBe(status);
      expect(body.error.message).toMatch(message);
      expect(typeof body.error.code).toBe("string");
      expect(await countRows({ db: t.db })).toEqual(before);
    });
  }

  test("a repeated Idempotency-Key returns the first run and creates nothing", async () => {
    const [first, a] = await post({ name: "once", benchmark: "frames", tasks: tasksOf(5) }, { "idempotency-key": "k-1" });
    expect(first.status).toBe(201);
    const before = await countRows({ db: t.db });
    const [again, b] = await post({ name: "once", benchmark: "frames", tasks: tasksOf(5) }, { "idempotency-key": "k-1" });
    expect(again.status).toBe(200);
    expect(b).toMatchObject({ id: a.id, created: false, tasks: 5 });
    expect(await countRows({ db: t.db })).toEqual(before);
    const [other] = await post({ name: "once", benchmark: "frames", tasks: tasksOf(5) }, { "idempotency-key": "k-2" });
    expect(other.status).toBe(201);
  });

  test("concurrent submits with one Idempotency-Key make exactly one run", async () => {
    const results = await Promise.all(
      Array.from({ length: 6 }, () => post({ name: "race", benchmark: "frames", tasks: tasksOf(50) }, { "idempotency-key": "race" })),
    );
    const ids = new Set(results.map(([, b]) => b.id));
    expect(ids.size).toBe(1);
    expect(results.filter(([r]) => r.status === 201)).toHaveLength(1);
    expect(await countRows({ db: t.db })).toEqual({ runs: 1, tasks: 50 });
  });
});

describe("reading runs", () => {
  test("an unknown run is a 404 naming it", async () => {
    for (const path of ["/v1/runs/999", "/v1/runs/nope/tasks"]) {
      const [res, body] = await t.req(path, { headers: AUTH });
      expect(res.status).toBe(404);
      expect(body.error).toMatchObject({ code: "runs.not_found" });
      expect(body.error.message).toContain(path.split("/")[3]);
    }
    const [res] = await t.req("/v1/runs/999/cancel", { method: "POST", headers: AUTH });
    expect(res.status).toBe(404);
  });

  test("a run is found by a unique name, and a shared name asks for the id", async () => {
    await post({ name: "solo", benchmark: "frames", tasks: tasksOf(1) });
    const [ok, run] = await t.req("/v1/runs/solo", { headers: AUTH });
    expect(ok.status).toBe(200);
    expect(run.name).toBe("solo");
    await post({ name: "twice", benchmark: "frames", tasks: tasksOf(1) });
    await post({ name: "twice", benchmark: "frames", tasks: tasksOf(1) });
    const [amb, body] = await t.req("/v1/runs/twice", { headers: AUTH });
    expect(amb.status).toBe(409);
    expect(body.error.code).toBe("runs.ambiguous");
  });

  test("task pages follow the cursor to the end without gaps or repeats", async () => {
    const [, run] = await post({ name: "pages", benchmark: "frames", tasks: tasksOf(25) });
    const seen: string[] = [];
    let cursor: number | null = null;
    for (let i = 0; i < 10; i++) {
      const q: string = cursor == null ? "" : `&cursor=${cursor}`;
      const [res, page] = await t.req(`/v1/runs/${run.id}/tasks?limit=10${q}`, { headers: AUTH });
      expect(res.status).toBe(200);
      seen.push(...page.tasks.map((x: any) => x.external_id));
      cursor = page.next_cursor;
      if (cursor == null) break;
    }
    expect(seen).toEqual(tasksOf(25).map((x) => x.id));
    const [, offsetPage] = await t.req(`/v1/runs/${run.id}/tasks?limit=5&offset=20`, { headers: AUTH });
    expect(offsetPage.tasks.map((x: any) => x.external_id)).toEqual(seen.slice(20));
    const [bad, err] = await t.req(`/v1/runs/${run.id}/tasks?limit=0`, { headers: AUTH });
    expect(bad.status).toBe(400);
    expect(err.error.message).toMatch(/limit/);
  });

  test("the list shows every run with counts by status", async () => {
    await post({ name: "a", benchmark: "frames", tasks: tasksOf(2) });
    await post({ name: "b", benchmark: "hle", tasks: tasksOf(3) });
    const [res, body] = await t.req("/v1/runs", { headers: AUTH });
    expect(res.status).toBe(200);
    expect(body.runs.map((r: any) => [r.name, r.counts.queued])).toEqual([
      ["b", 3],
      ["a", 2],
    ]);
  });
});

describe("cancel and requeue", () => {
  test("cancel stops the queue for a run; requeue of canceled tasks restores it", async () => {
    const [, run] = await post({ name: "c", benchmark: "frames", tasks: tasksOf(4) });
    const [c, canceled] = await t.req(`/v1/runs/${run.id}/cancel`, { method: "POST", headers: AUTH });
    expect(c.status).toBe(200);
    expect(canceled.canceled).toBe(4);
    const [, claim] = await t.req("/v1/queue/claim", { method: "POST", headers: AUTH, json: { runner_id: "r", limit: 10, lease_ms: 60_000 } });
    expect(claim.tasks).toHaveLength(0);
    const [, failedOnly] = await t.req(`/v1/runs/${run.id}/requeue`, { method: "POST", headers: AUTH, json: {} });
    expect(failedOnly.requeued).toBe(0);
    const [, rq] = await t.req(`/v1/runs/${run.id}/requeue`, { method: "POST", headers: AUTH, json: { statuses: ["canceled"] } });
    expect(rq.requeued).toBe(4);
    const [, claim2] = await t.req("/v1/queue/claim", { method: "POST", headers: AUTH, json: { runner_id: "r", limit: 10, lease_ms: 60_000 } });
    expect(claim2.tasks).toHaveLength(4);
  });

  test("requeue refuses a status it does not know", async () => {
    const [, run] = await post({ name: "c", benchmark: "frames", tasks: tasksOf(1) });
    const [res, body] = await t.req(`/v1/runs/${run.id}/requeue`, { method: "POST", headers: AUTH, json: { statuses: ["succeeded"] } });
    expect(res.status).toBe(400);
    expect(body.error.message).toMatch(/statuses\.0/);
  });
});

test("every route is in the OpenAPI document with its JSON body schema", async () => {
  const [res, spec] = await t.req("/openapi/json", { headers: AUTH });
  expect(res.status).toBe(200);
  for (const p of ["/v1/runs", "/v1/runs/{id}", "/v1/runs/{id}/tasks", "/v1/tasks/{id}", "/v1/queue/claim", "/healthz"])
    expect(Object.keys(spec.paths)).toContain(p);
  const schema = spec.paths["/v1/runs"].post.requestBody.content["application/json"].schema;
  expect(schema.required).toEqual(expect.arrayContaining(["name", "benchmark", "tasks"]));
});
