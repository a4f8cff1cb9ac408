import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateRun } from "../../bench/gen-latency-rows";
import { buildReport, getLatency } from "../../db/analysis";
import { closeDb, openDb, type Db } from "../../db/client";
import { snakeKeysDeep } from "../../db/keys";
import { createApp } from "../../functions/index";

let dir: string;
let db: Db;
let app: ReturnType<typeof createApp>;

async function get(path: string): Promise<[Response, any]> {
  // with a token set, reports (task ids, failures) need it like every /v1 read
  const res = await app.handle(new Request(`http://localhost${path}`, { headers: { authorization: "Bearer secret-token" } }));
  const type = res.headers.get("content-type") ?? "";
  return [res, type.includes("json") ? await res.json() : await res.text()];
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-report-routes-"));
  db = await openDb({ url: join(dir, "r.db") });
  await generateRun({ db, tasks: 150, seed: 2, name: "routes" });
  app = createApp({ db, token: "secret-token" });
});

afterAll(() => {
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

describe("GET /v1/runs/:id/report", () => {
  test("returns the same report as the CLI's --json, by id or by name", async () => {
    const expected = await buildReport({ db, runId: 1 });
    const [res, body] = await get("/v1/runs/1/report");
    expect(res.status).toBe(200);
    // the API's snake_case of db/analysis's report, key for key (a call's components keep their names)
    expect({ ...body, generated_at: 0 }).toEqual({ ...snakeKeysDeep(JSON.parse(JSON.stringify(expected))), generated_at: 0 });
    expect(body.tasks).toHaveProperty("infra_failed");
    expect(body.tasks).not.toHaveProperty("infraFailed");
    const [res2, byName] = await get("/v1/runs/routes/report");
    expect(res2.status).toBe(200);
    expect(byName.run.id).toBe(1);
  });

  test("an unknown run is a 404 in the error shape", async () => {
    const [res, body] = await get("/v1/runs/4242/report");
    expect(res.status).toBe(404);
    expect(body.error.code).toBe("runs.not_found");
    expect(body.error.message).toContain("4242");
  });

  test("?all_attempts=true widens the per-tool tables to abandoned attempts; anything but true/false is a 400 naming it", async () => {
    // one task's final attempt becomes attempt 2: its attempt-1 rows are now abandoned
    const [t] = (await db.$client.execute("SELECT task_id FROM tool_calls WHERE run_id = 1 AND tool = 'search' LIMIT 1")).rows as any;
    await db.$client.execute({ sql: "UPDATE tasks SET attempt = attempt + 1 WHERE id = ?", args: [t.task_id] });
    try {
      const [, final] = await get("/v1/runs/1/report");
      const [, all] = await get("/v1/runs/1/report?all_attempts=true");
      expect([final.attempts, all.attempts]).toEqual(["final", "all"]);
      const searches = (r: any) => r.tools.find((x: any) => x.tool === "search").count;
      expect(searches(all)).toBeGreaterThan(searches(final));
      const [, dist] = await get("/v1/runs/1/latency?tool=search&all_attempts=true");
      expect(dist.count).toBe(searches(all));
    } finally {
      await db.$client.execute({ sql: "UPDATE tasks SET attempt = attempt - 1 WHERE id = ?", args: [t.task_id] });
    }
    const [res, body] = await get("/v1/runs/1/report?all_attempts=yes");
    expect(res.status).toBe(400);
    expect(body.error.message).toContain("all_attempts");
  });

  test("a bad limit is a 400 naming the field", async () => {
    const [res, body] = await get("/v1/runs/1/report?slowest=0");
    expect(res.status).toBe(400);
    expect(JSON.stringify(body)).toContain("limit");
  });
});

describe("GET /v1/runs/:id/latency", () => {
  test("gives the distribution of one tool with CDF points and percentiles", async () => {
    const [res, body] = await get("/v1/runs/1/latency?tool=search&points=20");
    expect(res.status).toBe(200);
    const expected = await getLatency({ db, runId: 1, tool: "search", points: 20 });
    expect(body).toEqual(snakeKeysDeep(JSON.parse(JSON.stringify(expected))));
    expect(body).toHaveProperty("log_histogram");
    expect(body.histogram.counts.length).toBe(10);
  });

  test("gives one component of a tool", async () => {
    const [, body] = await get("/v1/runs/1/latency?tool=search&component=retrieval");
    expect(body.component).toBe("retrieval");
    expect(body.count).toBeGreaterThan(0);
  });

  test("rejects points out of range with a 400", async () => {
    const [res, body] = await get("/v1/runs/1/latency?points=1");
    expect(res.status).toBe(400);
    expect(JSON.stringify(body)).toContain("points");
  });
});

describe("slowest calls and failed tasks", () => {
  test("the slowest calls come slowest first and honour the limit", async () => {
    const [res, body] = await get("/v1/runs/1/slowest?limit=5");
    expect(res.status).toBe(200);
    expect(body.calls.length).toBe(5);
    const d = body.calls.map((c: any) => c.duration_ms);
    expect(d).toEqual([...d].sort((a: number, b: number) => b - a));
  });

  test("the failed tasks list every failed task of the run", async () => {
    const [, body] = await get("/v1/runs/1/failed?limit=1000");
    const [row] = (await db.$client.execute("SELECT count(*) AS n FROM tasks WHERE run_id = 1 AND status = 'failed'")).rows as any;
    expect(body.tasks.length).toBe(row.n);
    expect(body.next_cursor).toBeNull();
  });

  test("the failed tasks page by cursor: every failed task once, in task order, until next_cursor is null", async () => {
    const [row] = (await db.$client.execute("SELECT count(*) AS n FROM tasks WHERE run_id = 1 AND status = 'failed'")).rows as any;
    expect(row.n).toBeGreaterThan(3);
    const ids: number[] = [];
    let cursor: number | null = null;
    let pages = 0;
    do {
      const [res, body] = await get(`/v1/runs/1/failed?limit=3${cursor != null ? `&cursor=${cursor}` : ""}`);
      expect(res.status).toBe(200);
      expect(body.tasks.length).toBeLessThanOrEqual(3);
      ids.push(...body.tasks.map((x: any) => x.task_id));
      cursor = body.next_cursor;
      pages++;
    } while (cursor != null);
    expect(ids).toHaveLength(row.n);
    expect(ids).toEqual([...new Set(ids)].sort((a, b) => a - b));
    expect(pages).toBe(Math.ceil(row.n / 3));
    const [bad, err] = await get("/v1/runs/1/failed?cursor=abc");
    expect(bad.status).toBe(400);
    expect(err.error.message).toContain("cursor");
  });
});

describe("the web page", () => {
  test("/ui serves the page and its scripts; / redirects there", async () => {
    const [res, html] = await get("/ui");
    expect(res.status).toBe(200);
    expect(html).toContain('<script src="/ui/app.js">');
    const [js] = await get("/ui/uplot.js");
    expect(js.headers.get("content-type")).toContain("javascript");
    const root = await app.handle(new Request("http://localhost/"));
    expect(root.status).toBe(302);
    expect(root.headers.get("location")).toBe("/ui");
  });

  test("only the listed files are served", async () => {
    const [res, body] = await get("/ui/..%2Fpackage.json");
    expect(res.status).toBe(404);
    expect(body.error.code).toBe("ui.not_found");
  });
});
