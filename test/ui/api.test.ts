// The routes behind the web page, over real HTTP on 127.0.0.1 and a real database file: the
// runs list's cursor paging, the task table's filters, the timeline's buckets, and the one
// meaning of each number.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatStatus } from "../../cli/commands/status";
import { closeDb, openDb, type Db } from "../../db/client";
import { claimTasks, completeTask, failTask, registerRunner } from "../../db/queue";
import { recordRows } from "../../db/rows";
import { createRun, validateTasks } from "../../db/runs";
import { createApp } from "../../functions/index";

let dir: string;
let db: Db;
let app: ReturnType<typeof createApp>;
let base: string;
// the run with one task in each situation the filters tell apart, by external id
let runId: number;
const ids: Record<string, number> = {};
// calls start here, a whole second some seconds before the tasks finish (the timeline spans both)
const T0 = Math.floor(Date.now() / 1000) * 1000 - 10_000;

const get = async (path: string) => {
  const res = await fetch(base + path);
  return { status: res.status, body: (await res.json()) as any };
};
const idsOf = async (query: string) => {
  const { status, body } = await get(`/v1/runs/${runId}/tasks?${query}`);
  expect(status).toBe(200);
  return body.tasks.map((t: any) => t.external_id);
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-ui-api-"));
  db = await openDb({ url: `file:${join(dir, "b.db")}` });
  const rows = [
    { id: "right", question: "Who sold it at 50% off?" },
    { id: "wrong", question: "What is 500 minus one?" },
    { id: "too-long", question: "A question with an under_score" },
    { id: "running", question: "A question with an underscore" },
    { id: "queued-1", question: "q" },
    { id: "queued-2", question: "q" },
  ];
  ({ run: { id: runId } } = await createRun({ db, name: "filters", benchmark: "frames", tasks: validateTasks({ rows }), maxAttempts: 1 }));
  await registerRunner({ db, runner: { id: "r1", host: "h", pid: 1 } });
  const claimed = await claimTasks({ db, runnerId: "r1", limit: 4, leaseMs: 600_000, runId });
  for (const t of claimed) ids[t.externalId] = t.id;
  const by = (x: string) => claimed.find((t) => t.externalId === x)!;
  await completeTask({ db, taskId: by("right").id, leaseToken: by("right").leaseToken, result: { prediction: "me", correct: true } });
  await completeTask({ db, taskId: by("wrong").id, leaseToken: by("wrong").leaseToken, result: { prediction: "7", correct: false } });
  await failTask({ db, taskId: by("too-long").id, leaseToken: by("too-long").leaseToken, errorClass: "context_length", retryable: false });
  const call = (x: string, step: number, tool: string, at: number, ms: number, status = "ok", errorClass: string | null = null) => ({
    runId, taskId: ids[x], attempt: 1, step, tool, status, errorClass, startedAt: T0 + at, durationMs: ms,
  });
  const llm = (x: string, step: number, at: number, ms: number, outcome = "ok", endpoint = "http://127.0.0.1:9/v1") => ({
    runId, taskId: ids[x], attempt: 1, step, tool: "search", role: "query_llm", model: "m", endpoint, httpAttempt: 1, outcome, totalMs: ms, startedAt: T0 + at,
  });
  await recordRows({
    db,
    rows: {
      toolCalls: [
        call("right", 0, "search", 0, 100),
        call("right", 1, "answer", 500, 300),
        call("wrong", 0, "answer", 1_500, 200),
        call("too-long", 0, "orchestrator", 2_500, 50, "error", "context_length"),
      ],
      llmCalls: [llm("right", 0, 0, 80), llm("right", 1, 400, 120, "server_error"), llm("wrong", 0, 1_600, 40), llm("too-long", 0, 2_600, 30, "rate_limited", "http://127.0.0.1:8/v1")],
    },
  });
  app = createApp({ db, token: null }).listen({ port: 0, hostname: "127.0.0.1" });
  base = `http://127.0.0.1:${app.server!.port}`;
});

afterAll(() => {
  app?.stop();
  if (db) closeDb(db);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("the task table's filters", () => {
  test("each filter returns exactly the tasks it names", async () => {
    expect(await idsOf("status=succeeded")).toEqual(["right", "wrong"]);
    expect(await idsOf("correct=true")).toEqual(["right"]);
    // not correct = answered wrong; a failed or unfinished task has no verdict
    expect(await idsOf("correct=false")).toEqual(["wrong"]);
    expect(await idsOf("error_class=context_length")).toEqual(["too-long"]);
    expect(await idsOf("tool=search")).toEqual(["right"]);
    expect(await idsOf("tool=answer")).toEqual(["right", "wrong"]);
    expect(await idsOf("min_steps=2")).toEqual(["right"]);
    expect(await idsOf("max_steps=0")).toEqual(["running", "queued-1", "queued-2"]);
    // duration: finished tasks only (the others have none yet)
    expect(await idsOf("min_duration_ms=0")).toEqual(["right", "wrong", "too-long"]);
    expect(await idsOf("max_duration_ms=0&status=queued")).toEqual([]);
  });

  test("text search takes % and _ literally and matches the question or the id", async () => {
    expect(await idsOf("q=50%25")).toEqual(["right"]);
    expect(await idsOf("q=under_")).toEqual(["too-long"]);
    expect(await idsOf("q=UNDER")).toEqual(["too-long", "running"]);
    expect(await idsOf("q=queued")).toEqual(["queued-1", "queued-2"]);
  });

  test("filters combine, and each row carries its steps, tools and duration", async () => {
    const { body } = await get(`/v1/runs/${runId}/tasks?status=succeeded&tool=answer&correct=false`);
    expect(body.tasks).toHaveLength(1);
    expect(body.tasks[0]).toMatchObject({ external_id: "wrong", steps: 1, tools: ["answer"], question: "What is 500 minus one?" });
    expect(body.tasks[0].duration_ms).toBe(body.tasks[0].finished_at - body.tasks[0].started_at);
    const right = (await get(`/v1/runs/${runId}/tasks?correct=true`)).body.tasks[0];
    expect([right.steps, right.tools]).toEqual([2, ["answer", "search"]]);
  });

  test("a filtered list pages by cursor without losing or repeating a task", async () => {
    const first = (await get(`/v1/runs/${runId}/tasks?max_steps=0&limit=2`)).body;
    expect(first.tasks.map((t: any) => t.external_id)).toEqual(["running", "queued-1"]);
    const second = (await get(`/v1/runs/${runId}/tasks?max_steps=0&limit=2&cursor=${first.next_cursor}`)).body;
    expect(second.tasks.map((t: any) => t.external_id)).toEqual(["queued-2"]);
    expect(second.next_cursor).toBeNull();
  });

  test("a bad or unknown filter is a 400 naming the parameter", async () => {
    const cases: [string, string][] = [
      ["correct=maybe", "query.correct: expected true or false"],
      ["min_steps=-1", "query.min_steps: expected a non-negative integer"],
      ["stauts=failed", "query.stauts: unknown query parameter"],
      ["status=done", "query.status: expected one of queued, running, succeeded, failed, canceled"],
    ];
    for (const [query, message] of cases) {
      const { status, body } = await get(`/v1/runs/${runId}/tasks?${query}`);
      expect(status).toBe(400);
      expect(body.error.message).toBe(message);
    }
  });
});

describe("the numbers", () => {
  test("accuracy is over finished tasks, score over all; queued and running are not finished, not missing", async () => {
    const { body: s } = await get(`/v1/runs/${runId}`);
    expect([s.finished, s.not_finished, s.missing, s.correct, s.infra_failed]).toEqual([3, 3, 1, 1, 0]);
    expect(s.accuracy).toBeCloseTo(1 / 3, 12);
    expect(s.score).toBeCloseTo(1 / 6, 12);
    expect(s.score_excluding_infra).toBeCloseTo(1 / 6, 12);
    expect(s).not.toContainKey("accuracy_finished");
    // the view and the report say the same
    const [v] = (await db.$client.execute({ sql: "SELECT * FROM run_summary WHERE run_id = ?", args: [runId] })).rows as any[];
    expect([v.finished, v.not_finished, v.missing, v.accuracy, v.score]).toEqual([3, 3, 1, 0.3333, 0.1667]);
    const { body: report } = await get(`/v1/runs/${runId}/report`);
    expect(report.tasks.accuracy).toBeCloseTo(s.accuracy, 12);
    expect(report.tasks.score).toBeCloseTo(s.score, 12);
    expect(report.missing_ids).toEqual(["too-long"]);
    // `baton status` prints them under the same names
    const text = formatStatus(s);
    expect(text).toContain("accuracy   33.3% = correct / finished (1/3)");
    expect(text).toContain("score      16.7% = correct / all tasks (1/6); 16.7% excluding 0 infrastructure failures");
    expect(text).toContain("not finished 3 (queued + running), missing 1 (failed + canceled)");
  });
});

describe("the runs list", () => {
  test("pages newest first by cursor, each run with its numbers", async () => {
    for (const name of ["p1", "p2", "p3", "p4"]) await createRun({ db, name, benchmark: "frames", tasks: validateTasks({ rows: [{ id: 1, question: "q" }] }) });
    const seen: string[] = [];
    let cursor: number | null = null;
    let pages = 0;
    do {
      const { status, body } = await get(`/v1/runs?limit=2${cursor != null ? `&cursor=${cursor}` : ""}`);
      expect(status).toBe(200);
      expect(body.runs.length).toBeLessThanOrEqual(2);
      seen.push(...body.runs.map((r: any) => r.name));
      cursor = body.next_cursor;
      pages++;
    } while (cursor != null);
    expect(seen).toEqual(["p4", "p3", "p2", "p1", "filters"]);
    expect(pages).toBe(3);
    const { body } = await get("/v1/runs?limit=1&cursor=" + runId);
    expect(body).toEqual({ runs: [], next_cursor: null });
    const first = (await get("/v1/runs")).body.runs.find((r: any) => r.name === "filters");
    expect(first).toMatchObject({ finished: 3, not_finished: 3, missing: 1, score: 1 / 6 });
    for (const [query, message] of [
      ["limit=0", "query.limit"],
      ["limit=201", "query.limit"],
      ["page=2", "query.page: unknown query parameter"],
    ]) {
      const res = await get(`/v1/runs?${query}`);
      expect(res.status).toBe(400);
      expect(res.body.error.message).toStartWith(message);
    }
  });
});

describe("the timeline", () => {
  test("buckets calls, errors by class and percentiles per endpoint and per tool", async () => {
    const { status, body: t } = await get(`/v1/runs/${runId}/timeline?bucket_ms=1000`);
    expect(status).toBe(200);
    expect(t.start).toBe(T0);
    expect(t.bucket_ms).toBe(1000);
    const byKey = (list: any[], key: string) => list.find((s) => s.key === key);
    const main = byKey(t.endpoints, "http://127.0.0.1:9/v1");
    // calls at +0 and +400 (bucket 0) and +1600 (bucket 1); the 500 at +400
    expect(t.buckets).toBeGreaterThanOrEqual(10);
    expect(main.calls.length).toBe(t.buckets);
    expect(main.calls.slice(0, 3)).toEqual([2, 1, 0]);
    expect(Object.keys(main.errors)).toEqual(["server_error"]);
    expect(main.errors.server_error.slice(0, 3)).toEqual([1, 0, 0]);
    expect([main.p50[0], main.p95[0], main.p50[1]]).toEqual([80, 120, 40]);
    expect(byKey(t.endpoints, "http://127.0.0.1:8/v1").errors.rate_limited.slice(0, 3)).toEqual([0, 0, 1]);
    expect(byKey(t.tools, "answer").calls.slice(0, 3)).toEqual([1, 1, 0]);
    expect(byKey(t.tools, "orchestrator").errors.context_length.slice(0, 3)).toEqual([0, 0, 1]);
    // the three finished tasks, in the buckets of their finishing time
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    expect([sum(t.finished.succeeded), sum(t.finished.failed)]).toEqual([2, 1]);
    expect(t.runners.map((r: any) => r.id)).toEqual(["r1"]);
  });

  test("a bucket under 100 ms or an unknown parameter is refused by name", async () => {
    expect((await get(`/v1/runs/${runId}/timeline?bucket_ms=5`)).body.error.message).toBe("query.bucket_ms: expected at least 100 ms");
    expect((await get(`/v1/runs/${runId}/timeline?bucket=5`)).body.error.message).toBe("query.bucket: unknown query parameter");
    expect((await get(`/v1/runs/999/timeline`)).status).toBe(404);
  });
});
