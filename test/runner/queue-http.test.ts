// HttpQueue against a real server on 127.0.0.1 (Bun.serve of createApp, port 0).
import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, openDb, type Db } from "../../db/client";
import { createRun, getTask, validateTasks } from "../../db/runs";
import { loadRunConfig } from "../../db/run-config";
import { endpoints } from "../../db/schema";
import { createApp } from "../../functions/index";
import { HttpQueue, QueueHttpError } from "../../runner/queue-http";
import { VERSION } from "../../version";

const TOKEN = "http-queue-token";
let dir: string;
let db: Db;
let server: ReturnType<typeof Bun.serve>;
let runId: number;
// Lets a test break the transport on purpose: answer 503 before the app sees the request,
// or let the app do the work and then lose the reply.
let fault: { dropBefore: number; loseReplyOf: string | null; serverVersion: string | null } = { dropBefore: 0, loseReplyOf: null, serverVersion: null };
let seen: string[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-httpq-"));
  db = await openDb({ url: `file:${join(dir, "baton.db")}` });
  const rows = Array.from({ length: 5 }, (_, i) => ({ id: i, question: `q${i}` }));
  runId = (await createRun({ db, name: "h", benchmark: "frames", config: { maxRounds: 7 }, tasks: validateTasks({ rows }) })).run.id;
  const app = createApp({ db, token: TOKEN });
  fault = { dropBefore: 0, loseReplyOf: null, serverVersion: null };
  seen = [];
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      seen.push(path);
      if (fault.dropBefore > 0) {
        fault.dropBefore--;
        return new Response("upstream restarting", { status: 503 });
      }
      const res = await app.handle(req);
      if (fault.serverVersion) res.headers.set("x-baton-version", fault.serverVersion);
      if (fault.loseReplyOf === path) {
        fault.loseReplyOf = null;
        return new Response("gateway lost the reply", { status: 502 });
      }
      return res;
    },
  });
});
afterEach(() => {
  server.stop(true);
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

const queue = (token: string | null = TOKEN) =>
  new HttpQueue({ baseUrl: `http://127.0.0.1:${server.port}`, token, timeoutMs: 5_000, baseDelayMs: 5, maxDelayMs: 20 });

test("claim, heartbeat and complete round-trip with the bearer token", async () => {
  const q = queue();
  await q.registerRunner({ id: "rh", host: "node7", pid: 1234 });
  const claimed = await q.claim({ runnerId: "rh", limit: 2, leaseMs: 60_000 });
  expect(claimed.map((t) => t.externalId)).toEqual(["0", "1"]);
  expect(claimed[0].input).toEqual({ id: 0, question: "q0" });
  const hb = await q.heartbeat({ runnerId: "rh", tokens: claimed.map((t) => t.leaseToken), leaseMs: 60_000, progress: { [claimed[0].leaseToken]: { step: 1, tool: "answer" } } });
  expect(hb.lost).toEqual([]);
  expect(hb.held.sort()).toEqual(claimed.map((t) => t.leaseToken).sort());
  expect(await q.complete({ taskId: claimed[0].id, leaseToken: claimed[0].leaseToken, result: { prediction: "p", correct: true } })).toBe(true);
  expect(await q.fail({ taskId: claimed[1].id, leaseToken: claimed[1].leaseToken, errorClass: "context_length", retryable: false })).toBe("failed");
  expect(await q.release({ runnerId: "rh", tokens: [] })).toBe(0);
  await q.setRunnerState("rh", "stopped");
  expect((await getTask({ db, taskId: claimed[0].id })).status).toBe("succeeded");
  const run = await q.getRun(runId);
  expect(run).toMatchObject({ id: runId, name: "h", benchmark: "frames", canceledAt: null });
  // the API answers the config in snake_case; the runner loads it like the stored row
  expect(run!.config.max_rounds).toBe(7);
  expect(loadRunConfig({ benchmark: run!.benchmark, config: run!.config }).maxRounds).toBe(7);
  expect(await q.getRun(999)).toBeNull();
});

test("endpoints arrive as TaskQueue rows (camelCase baseUrl), and open tasks are counted by the server", async () => {
  await db.insert(endpoints).values({ kind: "model", name: "m", baseUrl: "http://127.0.0.1:9", createdAt: 1, updatedAt: 1 });
  const q = queue();
  expect(await q.listEndpoints()).toEqual([{ id: 1, kind: "model", name: "m", baseUrl: "http://127.0.0.1:9", enabled: true, state: "healthy" }]);
  expect(await q.countOpen({ runId })).toEqual({ queued: 5, running: 0 });
  await q.claim({ runnerId: "r", limit: 2, leaseMs: 60_000 });
  expect(await q.countOpen({ runId })).toEqual({ queued: 3, running: 2 });
  expect(await q.countOpen({})).toEqual({ queued: 3, running: 2 });
  expect(await q.countOpen({ runId: runId + 1 })).toEqual({ queued: 0, running: 0 });
});

test("a latency batch re-sent after its reply was lost is written once", async () => {
  const q = queue();
  const [task] = await q.claim({ runnerId: "r", limit: 1, leaseMs: 60_000 });
  const llm = (httpAttempt: number) => ({
    runId, taskId: task.id, attempt: 1, step: 0, tool: "orchestrator", role: "orchestrator", model: "m",
    endpoint: "http://127.0.0.1:1", httpAttempt, outcome: "ok", totalMs: 3, startedAt: 1,
  });
  fault.loseReplyOf = "/v1/queue/rows";
  await q.recordRows({ llmCalls: [llm(1), llm(2)] });
  expect(seen.filter((p) => p === "/v1/queue/rows")).toHaveLength(2);
  const r = await db.$client.execute("SELECT http_attempt FROM llm_calls ORDER BY http_attempt");
  expect(r.rows.map((x: any) => Number(x.http_attempt))).toEqual([1, 2]);
});

test("a wrong token is refused at once, without retries", async () => {
  const err = await queue("nope").claim({ runnerId: "x", limit: 1, leaseMs: 1000 }).catch((e) => e);
  expect(err).toBeInstanceOf(QueueHttpError);
  expect(err.status).toBe(401);
  expect(err.code).toBe("auth.invalid_token");
  expect(seen.filter((p) => p === "/v1/queue/claim")).toHaveLength(1);
});

test("5xx answers are retried until the server is back", async () => {
  fault.dropBefore = 2;
  const claimed = await queue().claim({ runnerId: "r", limit: 1, leaseMs: 60_000 });
  expect(claimed).toHaveLength(1);
  expect(seen.filter((p) => p === "/v1/queue/claim")).toHaveLength(3);
});

test("a completion whose reply was lost is re-sent and still reported as completed", async () => {
  const q = queue();
  const [task] = await q.claim({ runnerId: "r", limit: 1, leaseMs: 60_000 });
  fault.loseReplyOf = "/v1/queue/complete";
  expect(await q.complete({ taskId: task.id, leaseToken: task.leaseToken, result: { prediction: "p" } })).toBe(true);
  expect(seen.filter((p) => p === "/v1/queue/complete")).toHaveLength(2);
  const detail = await getTask({ db, taskId: task.id });
  expect(detail.status).toBe("succeeded");
  expect(detail.attempts).toHaveLength(1);
});

test("completeMany writes a batch over HTTP with one request", async () => {
  const q = queue();
  const claimed = await q.claim({ runnerId: "r", limit: 3, leaseMs: 60_000 });
  const before = seen.length;
  const oks = await q.completeMany(claimed.map((t) => ({ taskId: t.id, leaseToken: t.leaseToken, result: { prediction: "p" } })));
  expect(oks).toEqual([true, true, true]);
  expect(seen.slice(before)).toEqual(["/v1/queue/complete-many"]);
});

test("a server that is not there fails after the capped retries", async () => {
  const port = server.port;
  server.stop(true);
  const q = new HttpQueue({ baseUrl: `http://127.0.0.1:${port}`, token: TOKEN, timeoutMs: 1_000, attempts: 3, baseDelayMs: 5, maxDelayMs: 10 });
  await expect(q.claim({ runnerId: "r", limit: 1, leaseMs: 1000 })).rejects.toThrow();
});

test("runner and server exchange versions: an incompatible server is refused by the runner, naming the side to upgrade, without retries", async () => {
  fault.serverVersion = "0.9.0"; // not this checkout's minor: below 1.0 a different minor is incompatible
  const before = seen.length;
  const err = await queue().claim({ runnerId: "r", limit: 1, leaseMs: 60_000 }).catch((e) => e);
  expect(err).toBeInstanceOf(QueueHttpError);
  expect(err.code).toBe("version.incompatible");
  expect(err.message).toMatch(/upgrade the runner/);
  expect(seen.length - before).toBe(1);
});

test("the server refuses a runner whose version it cannot work with, before registering it", async () => {
  const res = await fetch(`http://127.0.0.1:${server.port}/v1/queue/claim`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", "x-baton-version": "1.2.0" },
    body: JSON.stringify({ runner_id: "r", limit: 1, lease_ms: 60_000 }),
  });
  expect(res.status).toBe(409);
  expect(((await res.json()) as any).error.message).toBe(`server ${VERSION} is older than runner 1.2.0: upgrade the server (baton serve) to 1.x`);
  expect(res.headers.get("x-baton-version")).toBe(VERSION);
  // nothing was claimed
  expect((await getTask({ db, taskId: 1 }))?.status).toBe("queued");
  const register = await fetch(`http://127.0.0.1:${server.port}/v1/queue/runners`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ id: "old", host: "h", pid: 1, version: "0.0.9" }),
  });
  expect(register.status).toBe(409);
  expect(((await register.json()) as any).error.message).toMatch(/upgrade the runner/);
  expect((await db.run("SELECT count(*) AS n FROM runners" as any) as any).rows[0].n).toBe(0);
});
