// A runner's finishing writes meet a database that cannot take them for a while: another
// process holds the write lock for ten times the busy timeout, or the volume is full. The
// writes are retried until shortly before the lease ends instead of being dropped, so every
// task a runner finished is recorded as finished — seen from a second connection.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, openDb, type Db } from "../../db/client";
import { DbQueue } from "../../runner/queue-db";
import { Runner } from "../../runner/runner";
import { readJsonl, simRunConfig, startWorld, submitRun, waitFor, type World } from "./_harness";

const rows = readJsonl("data/frames-sample.jsonl").slice(0, 16);
const HOLDER = join(import.meta.dir, "../db/_lock-holder.ts");
let world: World;

beforeAll(async () => {
  // 150 ms per model call: a task takes about a second, so some are always in flight
  world = await startWorld({ rows, sim: { latency: { ttftMs: 150 } } });
});

afterAll(async () => {
  await world?.close();
});

function dbStatuses(path: string, runId: number): Record<string, number> {
  const other = new Database(path, { readonly: true });
  try {
    const out: Record<string, number> = {};
    for (const r of other.query("SELECT status, count(*) AS n FROM tasks WHERE run_id = ? GROUP BY status").all(runId) as any[]) out[r.status] = Number(r.n);
    return out;
  } finally {
    other.close();
  }
}

async function runWith({ db, runId, lines }: { db: Db; runId: number; lines: string[] }) {
  const runner = new Runner({
    queue: new DbQueue(db),
    concurrency: 4,
    runId,
    leaseMs: 30_000,
    heartbeatMs: 200,
    pollMs: 20,
    exitWhenIdle: true,
    log: (l) => lines.push(l),
  });
  return { runner, done: runner.run() };
}

const succeededLines = (lines: string[]) => lines.filter((l) => / succeeded in /.test(l)).length;

describe("finishing writes", () => {
  test("a write lock held ten times the busy timeout: completions wait and land, none is dropped", async () => {
    const runId = await submitRun(world, { name: "locked", benchmark: "frames", rows, config: simRunConfig() });
    const path = world.dbUrl.slice("file:".length);
    const db = await openDb({ url: world.dbUrl, busyTimeoutMs: 300 });
    const lines: string[] = [];
    try {
      const holder = Bun.spawn([process.execPath, HOLDER, path, "3000", "--on-stdin"], { stdin: "pipe", stdout: "pipe" });
      const out = holder.stdout.getReader();
      const said = async (word: string) => {
        for (let seen = ""; !seen.includes(word); ) {
          const { value, done } = await out.read();
          if (done) throw new Error(`lock holder ended before saying ${word}`);
          seen += new TextDecoder().decode(value);
        }
      };
      await said("ready");
      const { runner, done } = await runWith({ db, runId, lines });
      await waitFor(() => runner.stats.succeeded + runner.stats.failed >= 2, 20_000, "two tasks finished");
      holder.stdin.write("lock\n");
      holder.stdin.end();
      await said("locked");
      const finishedAtLock = runner.stats.succeeded + runner.stats.failed;
      await holder.exited;
      await done;
      // tasks were still in flight when the lock came (each takes ~1 s; the lock 3 s)
      expect(finishedAtLock).toBeLessThan(rows.length);
      if (process.env.DEBUG_LINES) console.log(lines.join("\n"));
      const dropped = lines.filter((l) => l.includes("NOT recorded"));
      expect(dropped).toEqual([]);
      expect(runner.stats.lost).toBe(0);
      // the lock really was met and waited out (by a finishing write, or, when a loaded
      // machine slowed the tasks past the lock, by the rows and heartbeats written meanwhile)
      expect(lines.some((l) => /retrying until its lease ends|could not write|heartbeat failed/.test(l))).toBe(true);
      const seen = dbStatuses(path, runId);
      expect((seen.succeeded ?? 0) + (seen.failed ?? 0)).toBe(rows.length);
      expect(seen.succeeded ?? 0).toBe(succeededLines(lines));
    } finally {
      closeDb(db);
    }
  }, 60_000);

  test.skipIf(process.getuid?.() !== 0)("a full volume: completions are retried until space is back, none is dropped (needs root for a tmpfs)", async () => {
    const mnt = mkdtempSync(join(tmpdir(), "baton-runner-full-"));
    const m = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt], { stderr: "pipe" });
    if (m.exitCode !== 0) throw new Error(`cannot mount a tmpfs: ${m.stderr.toString()}`);
    const path = join(mnt, "baton.db");
    const db = await openDb({ url: `file:${path}`, busyTimeoutMs: 1_000 });
    const lines: string[] = [];
    try {
      // the same run, created on the small volume through the same code as the API
      const { createRun } = await import("../../db/runs");
      const { importToolOrchestraConfig } = await import("../../db/endpoints");
      await importToolOrchestraConfig({ db, config: world.cluster.config });
      const { run } = await createRun({
        db,
        name: "full",
        benchmark: "frames",
        config: simRunConfig(),
        tasks: rows.map((r) => ({ externalId: r.id, input: r })),
      });
      const { runner, done } = await runWith({ db, runId: run.id, lines });
      await waitFor(() => runner.stats.succeeded + runner.stats.failed >= 2, 20_000, "two tasks finished");
      const filler = join(mnt, "filler");
      const fd = openSync(filler, "w");
      try {
        for (const chunk = Buffer.alloc(16 * 1024, 1); ; ) writeSync(fd, chunk);
      } catch {
        // full
      } finally {
        closeSync(fd);
      }
      await waitFor(() => lines.some((l) => l.includes("SQLITE_FULL")), 20_000, "a finishing write meeting the full volume");
      rmSync(filler);
      await done;
      expect(lines.filter((l) => l.includes("NOT recorded"))).toEqual([]);
      expect(runner.stats.lost).toBe(0);
      const seen = dbStatuses(path, run.id);
      expect((seen.succeeded ?? 0) + (seen.failed ?? 0)).toBe(rows.length);
      expect(seen.succeeded ?? 0).toBe(succeededLines(lines));
    } finally {
      closeDb(db);
      Bun.spawnSync(["umount", "-l", mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  }, 60_000);
});
