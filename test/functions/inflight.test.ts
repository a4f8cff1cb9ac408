import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, openDb, type Db } from "../../db/client";
import { claimTasks, heartbeatLeases, registerRunner } from "../../db/queue";
import { createRun } from "../../db/runs";
import { formatInflight } from "../../cli/commands/inflight";
import { createApp } from "../../functions/index";

let dir: string;
let db: Db;
let app: ReturnType<typeof createApp>;

async function get(path: string): Promise<[Response, any]> {
  const res = await app.handle(new Request(`http://localhost${path}`));
  return [res, await res.json()];
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-inflight-"));
  db = await openDb({ url: `file:${join(dir, "baton.db")}` });
  app = createApp({ db, token: null });
});

afterAll(() => {
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

describe("GET /v1/runs/:id/inflight", () => {
  test("lists each running task with its runner, step, the call it waits on and for how long", async () => {
    const { run } = await createRun({
      db,
      name: "inflight",
      benchmark: "frames",
      tasks: ["a", "b", "c"].map((id) => ({ externalId: id, input: { question: `q ${id}`, answer: "x" } })),
    });
    await registerRunner({
      db,
      runner: { id: "r1", host: "node7", pid: 4242, slurmJobId: "900", slurmArrayJobId: "899", slurmArrayTaskId: "3" },
    });
    const claimed = await claimTasks({ db, runnerId: "r1", limit: 2, leaseMs: 60_000, runId: run.id });
    expect(claimed.length).toBe(2);
    const since = Date.now() - 5_000;
    await heartbeatLeases({
      db,
      runnerId: "r1",
      tokens: claimed.map((t) => t.leaseToken),
      leaseMs: 60_000,
      progress: { [claimed[0].leaseToken]: { step: 3, tool: "search", component: "retrieval", endpoint: "http://127.0.0.1:9/", since } },
    });

    const [res, body] = await get(`/v1/runs/${run.id}/inflight`);
    expect(res.status).toBe(200);
    expect(body.tasks.length).toBe(2);
    const busy = body.tasks.find((t: any) => t.task_id === claimed[0].id);
    expect(busy.runner).toMatchObject({ host: "node7", pid: 4242, slurm_job_id: "900", slurm_array_job_id: "899", slurm_array_task_id: "3" });
    expect(busy).toMatchObject({ step: 3, tool: "search", component: "retrieval", endpoint: "http://127.0.0.1:9/" });
    expect(busy.waiting_ms).toBeGreaterThanOrEqual(4_000);
    const idle = body.tasks.find((t: any) => t.task_id === claimed[1].id);
    expect(idle.step).toBeNull();
    // the queued task is not in flight
    expect(body.tasks.some((t: any) => t.external_id === "c")).toBe(false);
    expect(formatInflight(body)).toContain("retrieval");
  });

  test("answers 404 in the error shape for an unknown run", async () => {
    const [res, body] = await get("/v1/runs/9999/inflight");
    expect(res.status).toBe(404);
    expect(body.error.code).toBe("runs.not_found");
  });
});
