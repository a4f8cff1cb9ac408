// The recorder's coalesced flush: tasks finishing within a few ms share one batch, each
// caller's rows are written when its promise resolves, and a failed batch rejects every
// caller and is sent again by the next flush.
import { describe, expect, test } from "bun:test";
import type { RowBatch } from "../../db/rows";
import { Recorder } from "../../runner/recorder";

function toolCall(step: number) {
  return { step, tool: "search", status: "ok", startedAt: 0, durationMs: 1 } as const;
}

describe("Recorder.flushSoon", () => {
  test("tasks finishing together share one batch; each promise resolves after its rows are written", async () => {
    const batches: RowBatch[] = [];
    const recorder = new Recorder({ recordRows: async (b) => void batches.push(b) }, { flushMs: 60_000, coalesceMs: 20 });
    const tasks = [1, 2, 3].map((taskId) => recorder.forTask({ runId: 1, taskId, attempt: 1 }));
    const done = tasks.map((t, i) => {
      t.toolCall(toolCall(i));
      return t.flush().then(() => batches.flatMap((b) => b.toolCalls ?? []).some((r) => r.taskId === t.ctx.taskId));
    });
    expect(await Promise.all(done)).toEqual([true, true, true]);
    expect(batches.length).toBe(1);
    expect(batches[0]!.toolCalls!.map((r) => r.taskId)).toEqual([1, 2, 3]);
    // nothing buffered: resolves without another batch
    await tasks[0]!.flush();
    expect(batches.length).toBe(1);
    await recorder.close();
  });

  test("a failed batch rejects its callers and goes out again with the next flush", async () => {
    const batches: RowBatch[] = [];
    let failNext = true;
    const recorder = new Recorder(
      {
        recordRows: async (b) => {
          if (failNext) {
            failNext = false;
            throw new Error("database is locked");
          }
          batches.push(b);
        },
      },
      { flushMs: 60_000, coalesceMs: 5, log: () => {} },
    );
    const t = recorder.forTask({ runId: 1, taskId: 7, attempt: 1 });
    t.toolCall(toolCall(0));
    await expect(t.flush()).rejects.toThrow("locked");
    await t.flush();
    expect(batches.flatMap((b) => b.toolCalls ?? []).map((r) => r.taskId)).toEqual([7]);
    await recorder.close();
  });
});
