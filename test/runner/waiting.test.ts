// A run whose endpoints are not served waits: the runner claims nothing of it (no attempt
// spent), says once (not per poll) what it waits for, and starts the moment they register.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, type Db, openDb } from "../../db/client";
import { registerEndpoint } from "../../db/endpoints";
import { createRun, validateTasks } from "../../db/runs";
import { DbQueue } from "../../runner/queue-db";
import { Runner } from "../../runner/runner";

let dir: string;
let db: Db;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-waiting-"));
  db = await openDb({ url: `file:${join(dir, "t.db")}` });
});

afterAll(() => {
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

test("a runner polls a waiting run many times, logs what it waits for once, spends no attempt, and claims once the endpoints register", async () => {
  const config = {
    orchestrator: { model: "orch" },
    judge: { model: "m", endpoint: null },
    models: { "search-1": "m", "reasoner-1": "m", "answer-1": "m" },
    toolModels: { search: ["search-1"], enhance_reasoning: ["reasoner-1"], answer: ["answer-1"] },
    retrieval: { backends: ["wiki_retrieval"] },
  };
  const { run } = await createRun({ db, name: "w", benchmark: "frames", config, tasks: validateTasks({ rows: [{ id: "a", question: "q", answer: "1" }] }) });
  const queue = new DbQueue(db);
  let claims = 0;
  const claim = queue.claim.bind(queue);
  queue.claim = async (opts) => {
    claims++;
    return claim(opts);
  };
  const lines: string[] = [];
  const runner = new Runner({ queue, runId: run.id, pollMs: 10, leaseMs: 60_000, log: (l) => lines.push(l) });
  const done = runner.run();
  const deadline = Date.now() + 20_000;
  while (claims < 30 && Date.now() < deadline) await Bun.sleep(10);
  expect(claims).toBeGreaterThanOrEqual(30);
  const waits = lines.filter((l) => l.includes("waits for endpoints"));
  expect(waits).toHaveLength(1);
  expect(waits[0]).toContain(`run ${run.id} (w) waits for endpoints: orchestrator → orch: 0 healthy; search → m: 0 healthy`);
  expect(waits[0]).toContain("search → retrieval wiki_retrieval: 0 healthy");
  expect((await db.$client.execute("SELECT attempt, status FROM tasks")).rows.map((r) => [r.attempt, r.status])).toEqual([[0, "queued"]]);

  for (const name of ["orch", "m"]) await registerEndpoint({ db, endpoint: { kind: "model", name, baseUrl: `http://127.0.0.1:${name.length + 1}`, role: "expert_llm" }, leaseMs: 60_000 });
  await registerEndpoint({ db, endpoint: { kind: "retrieval", name: "wiki_retrieval", baseUrl: "http://127.0.0.1:9", role: "retrieval" }, leaseMs: 60_000 });
  while (runner.stats.claimed === 0 && Date.now() < deadline) await Bun.sleep(10);
  expect(runner.stats.claimed).toBe(1);
  runner.stop("test over");
  await done;
}, 30_000);
