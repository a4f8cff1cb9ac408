// GET /v1/runs/:id/export streams a run as it is read: back-pressure bounds what is produced
// ahead of the reader, a reader that leaves stops the reading of the database, and a failure
// midway fails the stream instead of ending it like a complete export.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { generateRun } from "../../bench/gen-latency-rows";
import { streamText } from "../../functions/export";
import { AUTH, makeApp, type TestApp } from "./_app";

let t: TestApp;
let server: ReturnType<typeof Bun.serve>;

beforeAll(async () => {
  t = await makeApp();
  await generateRun({ db: t.db, tasks: 300, seed: 7, name: "exported" });
  server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => t.app.handle(req) });
}, 60_000);

afterAll(() => {
  server?.stop(true);
  t?.close();
});

const LINE = "x".repeat(99) + "\n";

describe("streamText", () => {
  test("a reader that takes one chunk and leaves stops the producer within a few chunks", async () => {
    let emitted = 0;
    let finished!: Promise<unknown>;
    const stream = streamText((emit) => {
      finished = (async () => {
        // far more than any buffer: only back-pressure and cancellation stop it early
        for (; emitted < 5_000_000; emitted++) await emit(LINE);
      })();
      return finished;
    });
    const reader = stream.getReader();
    const first = await reader.read();
    expect(first.value!.length).toBeGreaterThan(0);
    await reader.cancel();
    await finished.catch(() => {});
    // a 64 KB chunk is ~650 lines; the queue holds 4 chunks
    expect(emitted).toBeLessThan(20_000);
  });

  test("a producer that fails midway makes the reader fail, not end", async () => {
    const stream = streamText(async (emit) => {
      for (let i = 0; i < 2000; i++) await emit(LINE);
      throw new Error("stored transcript unreadable");
    });
    const reading = (async () => {
      let bytes = 0;
      for await (const chunk of stream as any) bytes += (chunk as Uint8Array).length;
      return bytes;
    })();
    await expect(reading).rejects.toThrow("stored transcript unreadable");
  });
});

describe("GET /v1/runs/:id/export over HTTP", () => {
  const get = (path: string) => fetch(`http://127.0.0.1:${server.port}${path}`, { headers: AUTH });

  test("jsonl results: one line per task, in id order, as the database has them", async () => {
    const res = await get("/v1/runs/exported/export?format=jsonl");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    expect(res.headers.get("cache-control")).toBe("no-store");
    const rows = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
    const ids = ((await t.db.$client.execute("SELECT external_id FROM tasks WHERE run_id = 1 ORDER BY id")).rows as any[]).map((r) => r.external_id);
    expect(rows.map((r) => r.id)).toEqual(ids);
  });

  test("csv latency: a header and one row per latency component", async () => {
    const res = await get("/v1/runs/1/export?format=csv&what=latency");
    expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(res.headers.get("content-disposition")).toBe('attachment; filename="run-1-latency.csv"');
    const lines = (await res.text()).trim().split("\n");
    const [{ n }] = (await t.db.$client.execute("SELECT count(*) AS n FROM latency_components WHERE run_id = 1")).rows as any[];
    expect(lines[0].split(",")).toContain("component");
    expect(lines.length - 1).toBe(Number(n));
  });

  test("toolorchestra: one reference task file per line, for each finished task", async () => {
    const res = await get("/v1/runs/1/export?format=toolorchestra");
    const tasks = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
    const [{ n }] = (await t.db.$client.execute("SELECT count(*) AS n FROM tasks WHERE run_id = 1 AND status = 'succeeded'")).rows as any[];
    expect(tasks.length).toBe(Number(n));
    expect(Object.keys(tasks[0])).toEqual(["id", "all_tool_calls", "all_tool_responses", "correct", "status"]);
  });

  test("a client that disconnects after the first bytes leaves the server serving", async () => {
    const res = await get("/v1/runs/1/export?format=csv&what=latency");
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    const again = await get("/v1/runs/1/export?format=jsonl");
    expect((await again.text()).trim().split("\n").length).toBe(300);
  });

  test("bad parameters and unknown runs answer the one error shape before any row is read", async () => {
    const cases: [string, number, string][] = [
      ["/v1/runs/1/export?format=xml", 400, "query.format"],
      ["/v1/runs/1/export", 400, "query.format"],
      ["/v1/runs/1/export?format=jsonl&what=everything", 400, "query.what"],
      ["/v1/runs/1/export?format=toolorchestra&what=latency", 400, "query.what: only with format jsonl or csv"],
      ["/v1/runs/1/export?format=jsonl&limit=5", 400, "query.limit: unknown query parameter"],
      ["/v1/runs/999/export?format=jsonl", 404, "runs.not_found"],
    ];
    for (const [path, status, says] of cases) {
      const res = await get(path);
      const body = await res.json();
      expect({ path, status: res.status }).toEqual({ path, status });
      expect(JSON.stringify(body.error)).toContain(says);
    }
  });

  test("without the token nothing is exported", async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/v1/runs/1/export?format=jsonl`);
    expect(res.status).toBe(401);
  });
});
