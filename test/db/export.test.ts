import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateRun } from "../../bench/gen-latency-rows";
import { closeDb, openDb, type Db } from "../../db/client";
import { csvField, exportLatency, exportResults, exportToolOrchestra, type ToolOrchestraTask } from "../../db/export";

let dir: string;
let db: Db;

async function q(sql: string, args: any[] = []): Promise<Record<string, any>[]> {
  return (await db.$client.execute({ sql, args })).rows as any;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-export-"));
  db = await openDb({ url: join(dir, "e.db") });
  // two runs in one file: pages of one must never pick up rows of the other
  await generateRun({ db, tasks: 60, seed: 1 });
  await generateRun({ db, tasks: 40, seed: 2 });
});

afterAll(() => {
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

describe("exports page through a run", () => {
  test("latency rows come out exactly once each, in id order, across many small pages", async () => {
    const seen: number[] = [];
    const n = await exportLatency({ db, runId: 2, pageSize: 7, onRow: (r) => void seen.push(Number(r.ms)) });
    const raw = await q("SELECT ms FROM latency_components WHERE run_id = 2 ORDER BY id");
    expect(n).toBe(raw.length);
    expect(seen).toEqual(raw.map((r) => r.ms));
  });

  test("results have one row per task with its step count", async () => {
    const rows: Record<string, unknown>[] = [];
    await exportResults({ db, runId: 1, pageSize: 9, onRow: (r) => void rows.push(r) });
    const raw = await q(
      "SELECT t.external_id, (SELECT count(*) FROM tool_calls c WHERE c.task_id = t.id AND c.attempt = t.attempt) AS steps FROM tasks t WHERE run_id = 1 ORDER BY id",
    );
    expect(rows.map((r) => [r.id, r.steps])).toEqual(raw.map((r) => [r.external_id, r.steps]));
  });

  test("ToolOrchestra tasks carry every step of the final attempt under turn_<step>_response", async () => {
    const tasks: ToolOrchestraTask[] = [];
    await exportToolOrchestra({ db, runId: 1, pageSize: 11, onTask: (t) => void tasks.push(t) });
    expect(tasks.length).toBe(60);
    for (const t of tasks.slice(0, 20)) {
      const [task] = await q("SELECT id, attempt FROM tasks WHERE run_id = 1 AND external_id = ?", [t.id]);
      const steps = await q("SELECT step FROM tool_calls WHERE task_id = ? AND attempt = ? ORDER BY step", [task.id, task.attempt]);
      expect(Object.keys(t.all_tool_responses)).toEqual(steps.map((s) => `turn_${s.step}_response`));
    }
  });
});

test("csv fields are quoted only when they must be", () => {
  expect(csvField("plain")).toBe("plain");
  expect(csvField('say "hi", then\nleave')).toBe('"say ""hi"", then\nleave"');
  expect(csvField(null)).toBe("");
  expect(csvField({ a: 1 })).toBe('"{""a"":1}"');
});
