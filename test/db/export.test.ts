import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateRun } from "../../bench/gen-latency-rows";
import { closeDb, openDb, type Db } from "../../db/client";
import { csvField, exportLatency, exportResults, exportToolOrchestra, toPythonJson, type ToolOrchestraTask } from "../../db/export";
import { recordSimulatedRun } from "./_transcript-run";

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

  test("tasks recorded before transcripts: each succeeded task's final attempt, rebuilt from its latency rows", async () => {
    const tasks: ToolOrchestraTask[] = [];
    await exportToolOrchestra({ db, runId: 1, pageSize: 11, onTask: (t) => void tasks.push(t) });
    const succeeded = await q("SELECT external_id FROM tasks WHERE run_id = 1 AND status = 'succeeded' ORDER BY id");
    expect(tasks.map((t) => t.id)).toEqual(succeeded.map((r) => r.external_id));
    for (const t of tasks.slice(0, 20)) {
      const [task] = await q("SELECT id, attempt FROM tasks WHERE run_id = 1 AND external_id = ?", [t.id]);
      const steps = await q("SELECT step FROM tool_calls WHERE task_id = ? AND attempt = ? AND status <> 'invalid' ORDER BY step", [task.id, task.attempt]);
      expect(Object.keys(t.all_tool_responses)).toEqual(steps.map((s) => `turn_${s.step}_response`));
      expect(t.status).toBe("done");
    }
  });
});

test("csv fields are quoted only when they must be", () => {
  expect(csvField("plain")).toBe("plain");
  expect(csvField('say "hi", then\nleave')).toBe('"say ""hi"", then\nleave"');
  expect(csvField(null)).toBe("");
  expect(csvField({ a: 1 })).toBe('"{""a"":1}"');
});

describe("the ToolOrchestra export from step transcripts", () => {
  let tdir: string;
  let tdb: Db;
  beforeAll(async () => {
    tdir = mkdtempSync(join(tmpdir(), "baton-export-to-"));
    tdb = await openDb({ url: join(tdir, "t.db") });
  });
  afterAll(() => {
    closeDb(tdb);
    rmSync(tdir, { recursive: true, force: true });
  });

  // What run_single writes, per benchmark (evaluation/eval_frames_oss.py and eval_hle_oss.py).
  const KEYS = {
    frames: ["id", "all_tool_calls", "all_tool_responses", "correct", "status"],
    hle: ["id", "problem", "all_tool_calls", "all_tool_responses", "answer", "all_message_responses", "correct", "status"],
  };

  for (const benchmark of ["frames", "hle"] as const) {
    test(`${benchmark}: one file per finished task, the reference's keys in its order and types, final attempt only`, async () => {
      const { runId, tasks } = await recordSimulatedRun({ db: tdb, benchmark, tasks: 21, seed: benchmark.length });
      const files: ToolOrchestraTask[] = [];
      await exportToolOrchestra({ db: tdb, runId, pageSize: 4, onTask: (t) => void files.push(JSON.parse(toPythonJson(t))) });
      const finished = tasks.filter((t) => t.status !== null);
      expect(files.map((f) => f.id)).toEqual(finished.map((t) => t.externalId));
      for (const [f, t] of files.map((f, i) => [f, finished[i]!] as const)) {
        expect(Object.keys(f)).toEqual(t.status === "error" ? [...KEYS[benchmark], "error_type"] : KEYS[benchmark]);
        expect(f.status).toBe(t.status!);
        expect(typeof f.correct).toBe("boolean");
        if (t.status === "error") expect(f.error_type).toBe("ConnectionError");
        expect(Array.isArray(f.all_tool_calls)).toBe(true);
        // steps whose orchestrator call failed add no tool call and no response
        const steps = (await tdb.$client.execute({ sql: "SELECT step, tool FROM tool_calls WHERE task_id = ? AND attempt = ? ORDER BY step", args: [t.taskId, t.finalAttempt] })).rows;
        const ran = steps.filter((s) => s.tool !== "orchestrator");
        expect(Object.keys(f.all_tool_responses)).toEqual(ran.map((s) => `turn_${s.step}_response`));
        expect(f.all_tool_calls.length).toBe(ran.length);
        const comps = (await tdb.$client.execute({ sql: "SELECT step, component, ms FROM latency_components WHERE task_id = ? AND attempt = ?", args: [t.taskId, t.finalAttempt] })).rows;
        const own = { search: "query_llm", answer: "expert_llm", enhance_reasoning: "expert_llm" } as Record<string, string>;
        const key = { search: "_query_llm_ms", answer: "_expert_ms", enhance_reasoning: "_llm_ms" } as Record<string, string>;
        for (const [turn, rs] of Object.entries(f.all_tool_responses)) {
          const r = rs[0] as Record<string, unknown>;
          expect(rs.length).toBe(1);
          // the final attempt's numbers, not the abandoned attempt's (20x slower) at the same step
          const step = Number(turn.split("_")[1]);
          expect(r[key[r.tool as string]!]).toBe(comps.find((c) => Number(c.step) === step && c.component === own[r.tool as string])!.ms as number);
          if (r.tool === "search") for (const k of ["_query_llm_ms", "_retrieval_ms", "_retrieval_retries"]) expect(typeof r[k]).toBe("number");
          if (r.tool === "answer") expect(typeof r._expert_ms).toBe("number");
          if (r.tool === "enhance_reasoning") for (const k of ["_llm_ms", "_exec_ms"]) expect(typeof r[k]).toBe("number");
        }
        if (benchmark === "hle") {
          expect(Object.keys(f.all_message_responses!)).toEqual(ran.map((s) => `turn_${s.step}_message`));
          expect(typeof f.problem).toBe("string");
          expect(f.answer).toBe(`a${t.externalId.split("-")[1]}`);
        }
      }
    });
  }

  test("files are written as Python's json.dump(indent=2) writes them: non-ASCII escaped", () => {
    expect(toPythonJson({ q: "ünï\u2028", n: [1, 2.5], e: {} })).toBe('{\n  "q": "\\u00fcn\\u00ef\\u2028",\n  "n": [\n    1,\n    2.5\n  ],\n  "e": {}\n}');
  });
});
