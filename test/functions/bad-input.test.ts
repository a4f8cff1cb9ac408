// Issue #8 part 3: input that used to be stored wrongly or crash the server is refused with
// a 4xx naming the field, and nothing is written.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { LibsqlBatchError, LibsqlError } from "@libsql/core/api";
import { join } from "node:path";
import { closeDb, openDb } from "../../db/client";
import { createApp } from "../../functions/index";
import { countRows } from "../../db/runs";
import { toErrorResponse } from "../../functions/index";
import { AUTH, makeApp, tasksOf, type TestApp } from "./_app";

let t: TestApp;
beforeEach(async () => {
  t = await makeApp();
});
afterEach(() => t.close());

const post = (path: string, body: string, type = "application/json") =>
  t.req(path, { method: "POST", headers: { ...AUTH, "content-type": type }, body });
const submit = (fields: Record<string, unknown>) =>
  post("/v1/runs", JSON.stringify({ name: "r", benchmark: "frames", tasks: tasksOf(1), ...fields }));

async function expectRefused(send: Promise<[Response, any]>, status: number, message: RegExp) {
  const before = await countRows({ db: t.db });
  const [res, body] = await send;
  expect(`${res.status} ${body?.error?.message}`).toMatch(new RegExp(`^${status} `));
  expect(body.error.message).toMatch(message);
  expect(await countRows({ db: t.db })).toEqual(before);
}

describe("submits", () => {
  test("a 100k-deep JSON body is a 400 (not a stack overflow)", async () => {
    const deep = `{"name":"r","benchmark":"frames","tasks":[{"id":1,"question":"q","x":${"[".repeat(100_000)}${"]".repeat(100_000)}}]}`;
    await expectRefused(post("/v1/runs", deep), 400, /nested deeper than 64 levels/);
    await expectRefused(post("/v1/runs", "[".repeat(100_000) + "]".repeat(100_000)), 400, /nested deeper than 64/);
    const line = `{"id":1,"question":"q","x":${"[".repeat(100_000)}${"]".repeat(100_000)}}`;
    await expectRefused(post("/v1/runs?name=r&benchmark=hle", line, "application/x-ndjson"), 400, /^line 1\.x.*nested/);
  });

  test("ids that cannot be stored exactly are refused, naming the task", async () => {
    await expectRefused(post("/v1/runs", '{"name":"r","benchmark":"frames","tasks":[{"id":1e999,"question":"q"}]}'), 400, /^tasks\[0\]\.id: .*infinity/);
    await expectRefused(post("/v1/runs", '{"name":"r","benchmark":"frames","tasks":[{"id":18446744073709551617,"question":"q"}]}'), 400, /^tasks\[0\]\.id: .*as strings/);
    await expectRefused(submit({ tasks: [{ id: 1.5, question: "q" }] }), 400, /^tasks\[0\]\.id/);
    await expectRefused(submit({ tasks: [{ id: "a\u0000b", question: "q" }] }), 400, /^tasks\[0\]\.id: must not contain control characters/);
    await expectRefused(submit({ tasks: [{ id: "x".repeat(300), question: "q" }] }), 400, /^tasks\[0\]\.id: expected at most 256/);
    // a big id sent as a string is kept exactly
    const [ok, created] = await submit({ tasks: [{ id: "18446744073709551617", question: "q" }] });
    expect(ok.status).toBe(201);
    const [, page] = await t.req(`/v1/runs/${created.id}/tasks`, { headers: AUTH });
    expect(page.tasks[0].external_id).toBe("18446744073709551617");
  });

  test("a number that overflows to infinity anywhere in a task is refused, naming where", async () => {
    await expectRefused(post("/v1/runs", '{"name":"r","benchmark":"frames","tasks":[{"id":1,"question":"q","meta":{"year":-1e400}}]}'), 400, /^tasks\[0\]\.meta\.year: /);
  });

  test("names: NUL, over 200 characters, or only digits (read as a run id) are refused", async () => {
    await expectRefused(submit({ name: "a\u0000b" }), 400, /^name: must not contain control characters/);
    await expectRefused(submit({ name: "n".repeat(201) }), 400, /^name: expected at most 200/);
    await expectRefused(submit({ name: "007" }), 400, /^name: a name made only of digits/);
    await expectRefused(post("/v1/runs?name=42&benchmark=hle", '{"id":1,"question":"q"}', "application/x-ndjson"), 400, /^name: a name made only of digits/);
  });

  test("benchmark: only frames or hle, never 5 MB of it", async () => {
    await expectRefused(submit({ benchmark: "gsm8k" }), 400, /^benchmark: expected one of frames, hle/);
    await expectRefused(submit({ benchmark: "x".repeat(5_000_000) }), 400, /^benchmark: expected one of/);
    const [ok, created] = await submit({ benchmark: " HLE " });
    expect(ok.status).toBe(201);
    expect((await t.req(`/v1/runs/${created.id}`, { headers: AUTH }))[1].benchmark).toBe("hle");
  });

  test("a body that is not UTF-8, or a query that is not, is refused rather than stored with U+FFFD", async () => {
    const bytes = new Uint8Array([...new TextEncoder().encode('{"name":"r'), 0xff, 0xfe, ...new TextEncoder().encode('","benchmark":"frames","tasks":[{"id":1,"question":"q"}]}')]);
    const [res, body] = await t.req("/v1/runs", { method: "POST", headers: { ...AUTH, "content-type": "application/json", "content-length": String(bytes.length) }, body: bytes });
    expect(res.status).toBe(400);
    expect(body.error.message).toMatch(/not valid UTF-8/);
    await expectRefused(post("/v1/runs?name=r%FF&benchmark=hle", '{"id":1,"question":"q"}', "application/x-ndjson"), 400, /^name: .*UTF-8/);
    expect((await countRows({ db: t.db })).runs).toBe(0);
  });

  test("an encoded surrogate, an overlong form or a cut character is not UTF-8 either", async () => {
    for (const bad of [[0xed, 0xa0, 0x80], [0xc0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]]) {
      const bytes = new Uint8Array([...new TextEncoder().encode('{"name":"r","benchmark":"frames","tasks":[{"id":1,"question":"q'), ...bad, ...new TextEncoder().encode('"}]}')]);
      const [res, body] = await t.req("/v1/runs", { method: "POST", headers: { ...AUTH, "content-type": "application/json" }, body: bytes });
      expect(`${res.status} ${body.error?.message}`).toMatch(/^400 .*not valid UTF-8/);
    }
    expect((await countRows({ db: t.db })).runs).toBe(0);
  });

  test("a body with a leading byte-order mark and non-ASCII text is stored exactly as sent", async () => {
    const question = "Quel café à Zürich? 東京 😀 — \u00e9\u0301";
    const json = JSON.stringify({ name: "r", benchmark: "frames", tasks: [{ id: "é1", question }] });
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(json)]);
    const [res, created] = await t.req("/v1/runs", { method: "POST", headers: { ...AUTH, "content-type": "application/json" }, body: bytes });
    expect(res.status).toBe(201);
    const [, page] = await t.req(`/v1/runs/${created.id}/tasks`, { headers: AUTH });
    expect(page.tasks[0].external_id).toBe("é1");
    const [, task] = await t.req(`/v1/tasks/${page.tasks[0].id}`, { headers: AUTH });
    expect(task.input.question).toBe(question);
  });

  test("an empty JSONL body names what is missing", async () => {
    await expectRefused(post("/v1/runs?name=r&benchmark=hle", "", "application/x-ndjson"), 400, /^tasks: the JSONL body has no rows/);
    await expectRefused(post("/v1/runs?name=r&benchmark=hle", "\n\n", "application/x-ndjson"), 400, /^tasks: the JSONL body has no rows/);
  });
});

describe("requeue", () => {
  test("a body that is an array, or an empty status list, is refused", async () => {
    await submit({});
    await expectRefused(post("/v1/runs/1/requeue", "[]"), 400, /^body: expected a JSON object, not a list/);
    await expectRefused(post("/v1/runs/1/requeue", '{"statuses":[]}'), 400, /^statuses: expected at least one status/);
    const [bare] = await t.req("/v1/runs/1/requeue", { method: "POST", headers: AUTH });
    expect(bare.status).toBe(200);
    const [empty] = await post("/v1/runs/1/requeue", "");
    expect(empty.status).toBe(200);
  });
});

describe("queue", () => {
  const q = (path: string, json: unknown) => t.req(`/v1/queue/${path}`, { method: "POST", headers: AUTH, json });

  test("the fence's 'already' answer needs the task and the token to match", async () => {
    await submit({ tasks: tasksOf(2) });
    const [, claim] = await q("claim", { runner_id: "r1", limit: 2, lease_ms: 60_000 });
    const [a, b] = claim.tasks;
    expect((await q("complete", { task_id: a.id, lease_token: a.lease_token, result: { prediction: "x" } }))[1]).toEqual({ ok: true, already: false });
    // a's used token on task b: not b's completion, and b stays running
    expect((await q("complete", { task_id: b.id, lease_token: a.lease_token, result: { prediction: "y" } }))[1]).toEqual({ ok: false, already: false });
    expect((await q("complete-many", { items: [{ task_id: b.id, lease_token: a.lease_token, result: {} }] }))[1].results).toEqual([{ ok: false, already: false }]);
    expect((await q("fail", { task_id: b.id, lease_token: a.lease_token, error_class: "x", retryable: false }))[1]).toEqual({ outcome: "lost", already: false });
    expect((await t.req(`/v1/tasks/${b.id}`, { headers: AUTH }))[1].status).toBe("running");
  });

  test("latency rows: every numeric field finite, in range and of the right type, named when not", async () => {
    await submit({});
    const [, claim] = await q("claim", { runner_id: "r1", limit: 1, lease_ms: 60_000 });
    const k = { run_id: claim.tasks[0].run_id, task_id: claim.tasks[0].id, attempt: 1, step: 0, tool: "search" };
    const tool = { ...k, status: "ok", started_at: 1_700_000_000_000, duration_ms: 12.5 };
    const bad: [unknown, RegExp][] = [
      [{ tool_calls: [{ ...tool, duration_ms: "fast" }] }, /^tool_calls\.0\.duration_ms: expected a number/],
      [{ tool_calls: [{ ...tool, duration_ms: -5 }] }, /^tool_calls\.0\.duration_ms: expected at least 0/],
      [{ tool_calls: [{ ...tool, started_at: 1.5 }] }, /^tool_calls\.0\.started_at: expected an integer/],
      [{ tool_calls: [{ ...tool, step: -1 }] }, /^tool_calls\.0\.step: /],
      [{ tool_calls: [{ ...tool, task_id: "1" }] }, /^tool_calls\.0\.task_id: expected a number/],
      [{ components: [{ ...k, component: "retrieval", ms: -1, started_at: 1 }] }, /^components\.0\.ms: /],
      [{ components: [{ ...k, component: "retrieval", ms: 1, retries: 0.5, started_at: 1 }] }, /^components\.0\.retries: /],
      [{ llm_calls: [{ ...k, role: "r", model: "m", endpoint: "e", http_attempt: 0, outcome: "ok", total_ms: 1, started_at: 1 }] }, /^llm_calls\.0\.http_attempt: /],
      [{ llm_calls: [{ ...k, role: "r", model: "m", endpoint: "e", http_attempt: 1, outcome: "ok", total_ms: 1, ttft_ms: -2, started_at: 1 }] }, /^llm_calls\.0\.ttft_ms: /],
      [{ llm_calls: [{ ...k, role: "r", model: "m", endpoint: "e", http_attempt: 1, outcome: "ok", total_ms: 1, http_status: 1000, started_at: 1 }] }, /^llm_calls\.0\.http_status: /],
      [{ llm_calls: [{ ...k, role: "r", model: "m", endpoint: "e", http_attempt: 1, outcome: "ok", total_ms: 1, prompt_tokens: -1, started_at: 1 }] }, /^llm_calls\.0\.prompt_tokens: /],
    ];
    for (const [batch, message] of bad) {
      const [res, body] = await q("rows", batch);
      expect(`${res.status} ${body.error?.message}`).toMatch(/^400 /);
      expect(body.error.message).toMatch(message);
    }
    const count = (await t.db.run("SELECT (SELECT count(*) FROM tool_calls) + (SELECT count(*) FROM latency_components) + (SELECT count(*) FROM llm_calls) AS n" as any)) as any;
    expect(count.rows[0].n).toBe(0);
    expect((await q("rows", { tool_calls: [tool] }))[1]).toEqual({ written: 1 });
    expect((await t.req(`/v1/runs/${k.run_id}/report`, { headers: AUTH }))[0].status).toBe(200);
  });

  test("task ids, pids and run ids must be whole numbers in range", async () => {
    for (const [path, body, field] of [
      ["complete", { task_id: 1.5, lease_token: "t", result: {} }, "task_id"],
      ["complete", { task_id: -1, lease_token: "t", result: {} }, "task_id"],
      ["runners", { id: "r", host: "h", pid: 2 ** 40 }, "pid"],
      ["claim", { runner_id: "r", limit: 1, lease_ms: 1000, run_id: 0.5 }, "run_id"],
    ] as const) {
      const [res, err] = await q(path, body);
      expect(`${path} ${res.status}`).toBe(`${path} 400`);
      expect(err.error.message).toMatch(new RegExp(`^${field}: `));
    }
  });
});

describe("driver errors", () => {
  const drizzle = (cause: Error) => Object.assign(new Error("Failed query"), { name: "DrizzleQueryError", query: "INSERT ...", cause });
  test("a batch error maps like any driver error: busy 503 with Retry-After, full 507, constraint 409", () => {
    const cases: [Error, number, string][] = [
      [new LibsqlBatchError("database is locked", 1, "SQLITE_BUSY"), 503, "db.busy"],
      [drizzle(new LibsqlBatchError("database is locked", 0, "SQLITE_BUSY")), 503, "db.busy"],
      [new LibsqlBatchError("database or disk is full", 2, "SQLITE_FULL"), 507, "db.full"],
      [new LibsqlError("disk I/O error", "SQLITE_IOERR", "SQLITE_IOERR_WRITE"), 507, "db.full"],
      [new LibsqlBatchError("UNIQUE constraint failed", 0, "SQLITE_CONSTRAINT", "SQLITE_CONSTRAINT_UNIQUE"), 409, "db.conflict"],
    ];
    for (const [error, status, code] of cases) {
      const out = toErrorResponse({ code: "UNKNOWN", error });
      expect(`${error.message} ${out.status} ${out.body.error.code}`).toBe(`${error.message} ${status} ${code}`);
      expect(out.body.error.message).not.toContain("INSERT");
    }
    expect(toErrorResponse({ code: "UNKNOWN", error: new LibsqlBatchError("locked", 0, "SQLITE_BUSY") }).headers?.["retry-after"]).toBeDefined();
  });

  test("through the real driver: a duplicate key in a batch is 409, a write lock held past the busy timeout is 503 with Retry-After", async () => {
    const db = await openDb({ url: `file:${join(t.dir, "busy.db")}`, busyTimeoutMs: 200 });
    try {
      await db.$client.execute("CREATE TABLE k (id INTEGER PRIMARY KEY)");
      const dup = await db.$client.batch(["INSERT INTO k VALUES (1)", "INSERT INTO k VALUES (1)"], "write").catch((e) => e);
      expect(dup.name).toBe("LibsqlBatchError");
      expect(toErrorResponse({ code: "UNKNOWN", error: dup }).status).toBe(409);

      const app = createApp({ db, token: null });
      // another process (in this one, two SQLite libraries would not see each other's locks)
      const holder = Bun.spawn([process.execPath, join(import.meta.dir, "../db/_lock-holder.ts"), join(t.dir, "busy.db"), "30000"], { stdout: "pipe" });
      try {
        const reader = holder.stdout.getReader();
        let said = "";
        while (!said.includes("locked")) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`the lock holder exited: ${said}`);
          said += new TextDecoder().decode(value);
        }
        const res = await app.handle(
          new Request("http://localhost/v1/runs", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "r", benchmark: "frames", tasks: tasksOf(2) }) }),
        );
        const text = await res.text();
        expect(`${res.status} ${text}`).toMatch(/^503 .*"db\.busy"/);
        expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
      } finally {
        holder.kill("SIGKILL");
        await holder.exited;
      }
      expect((await db.$client.execute("SELECT count(*) AS n FROM runs")).rows[0].n).toBe(0);
    } finally {
      closeDb(db);
    }
  }, 30_000);
});
