// The database's volume fills up (a small tmpfs mounted for the test). Writes fail with a
// storage error and leave nothing; /healthz says the database is unwritable; once space is
// back (also when the WAL itself filled the volume) every write goes through again and is
// seen by a second connection.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { closeSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, openDb, type Db } from "../../db/client";
import { claimTasks, completeTask, registerRunner, type ClaimedTask } from "../../db/queue";
import { createRun } from "../../db/runs";
import { isStorageError } from "../../db/safe-client";
import { createApp } from "../../functions/index";

const isRoot = process.getuid?.() === 0;
let mnt = "";
let db: Db;
let path = "";
let claimed: ClaimedTask[] = [];

function fillVolume(): string {
  const filler = join(mnt, "filler");
  const fd = openSync(filler, "w");
  const chunk = Buffer.alloc(64 * 1024, 1);
  const small = Buffer.alloc(512, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch {
    // ENOSPC at 64 KiB granularity; top up the last bytes too
    try {
      for (;;) writeSync(fd, small);
    } catch {}
  } finally {
    closeSync(fd);
  }
  return filler;
}

function freeBytes(): number {
  const st = statfsSync(mnt);
  return Number(st.bavail) * Number(st.bsize);
}

function statuses(ids: number[]): (string | null)[] {
  const other = new Database(path, { readonly: true });
  try {
    return ids.map((id) => (other.query("SELECT status FROM tasks WHERE id = ?").get(id) as any)?.status ?? null);
  } finally {
    other.close();
  }
}

function countRuns(): number {
  const other = new Database(path, { readonly: true });
  try {
    return Number((other.query("SELECT count(*) AS n FROM runs").get() as any).n);
  } finally {
    other.close();
  }
}

const tasks = (n: number, prefix: string, questionChars = 1) =>
  Array.from({ length: n }, (_, i) => ({ externalId: `${prefix}${i}`, input: { id: `${prefix}${i}`, question: "q".repeat(questionChars), answer: "a" } }));

describe.skipIf(!isRoot)("a full volume under the database (needs root to mount a tmpfs)", () => {
  beforeAll(async () => {
    mnt = mkdtempSync(join(tmpdir(), "baton-full-"));
    const m = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt], { stderr: "pipe" });
    if (m.exitCode !== 0) throw new Error(`cannot mount a tmpfs for the disk-full test: ${m.stderr.toString()}`);
    path = join(mnt, "baton.db");
    db = await openDb({ url: `file:${path}`, busyTimeoutMs: 2_000 });
    await registerRunner({ db, runner: { id: "r1", host: "h", pid: 1 } as any });
    await createRun({ db, name: "full", benchmark: "frames", tasks: tasks(12, "t") });
    claimed = await claimTasks({ db, runnerId: "r1", limit: 12, leaseMs: 600_000 });
  });

  afterAll(() => {
    if (db) closeDb(db);
    if (mnt) {
      Bun.spawnSync(["umount", "-l", mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  });

  test("writes fail with a storage error and leave nothing; /healthz says unwritable; with space back they land", async () => {
    const app = createApp({ db, token: null });
    const filler = fillVolume();
    try {
      const failed = await Promise.allSettled(
        claimed.slice(0, 3).map((t) => completeTask({ db, taskId: t.id, leaseToken: t.leaseToken, result: { correct: true } })),
      );
      for (const r of failed) {
        expect(r.status).toBe("rejected");
        if (r.status === "rejected") expect(isStorageError(r.reason)).toBe(true);
      }
      const runsBefore = countRuns();
      await expect(createRun({ db, name: "while-full", benchmark: "frames", tasks: tasks(50, "w", 200) })).rejects.toThrow();
      expect(countRuns()).toBe(runsBefore);
      expect(statuses(claimed.slice(0, 3).map((t) => t.id))).toEqual(["running", "running", "running"]);

      const res = await app.handle(new Request("http://127.0.0.1/healthz"));
      const body = (await res.json()) as any;
      expect(res.status).toBe(503);
      expect(body.error.code).toBe("health.db_unwritable");
      expect(body.error.message).toContain("SQLITE_FULL");
    } finally {
      rmSync(filler, { force: true });
    }
    const ok = await Promise.all(
      claimed.slice(0, 3).map((t) => completeTask({ db, taskId: t.id, leaseToken: t.leaseToken, result: { correct: true } })),
    );
    expect(ok).toEqual([true, true, true]);
    expect(statuses(claimed.slice(0, 3).map((t) => t.id))).toEqual(["succeeded", "succeeded", "succeeded"]);
    const healthy = await app.handle(new Request("http://127.0.0.1/healthz"));
    expect(healthy.status).toBe(200);
    expect(((await healthy.json()) as any).writable).toBe(true);
  });

  test("when the WAL itself filled the volume, the failed write leaves nothing, later writes land, and the WAL gives the space back", async () => {
    // what the operator will delete to make room
    const reserve = join(mnt, "reserve");
    await Bun.write(reserve, Buffer.alloc(512 * 1024, 1));
    const runsBefore = countRuns();
    // ~4 MB of questions into a 3 MB volume: the WAL grows until the volume is full
    const tooBig = await createRun({ db, name: "too-big", benchmark: "frames", tasks: tasks(200, "b", 20_000) }).then(
      () => null,
      (err) => err,
    );
    // the volume filled up (the WAL may already be gone: a connection closed last checkpoints it)
    expect(isStorageError(tooBig)).toBe(true);
    expect(countRuns()).toBe(runsBefore);
    rmSync(reserve);
    const ok = await Promise.all(
      claimed.slice(3, 6).map((t) => completeTask({ db, taskId: t.id, leaseToken: t.leaseToken, result: { correct: true } })),
    );
    expect(ok).toEqual([true, true, true]);
    expect(statuses(claimed.slice(3, 6).map((t) => t.id))).toEqual(["succeeded", "succeeded", "succeeded"]);
    // the failed write's WAL frames were given back to the volume
    expect(freeBytes()).toBeGreaterThan(2 * 1024 * 1024);
    await createRun({ db, name: "after", benchmark: "frames", tasks: tasks(20, "a", 100) });
    expect(countRuns()).toBe(runsBefore + 1);
  });
});
