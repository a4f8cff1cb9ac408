// Another process holds the write lock (a sqlite3 shell in BEGIN EXCLUSIVE, a VACUUM, a
// backup) while claims, completions, heartbeats, row inserts and submissions run. Whatever
// is acknowledged must be seen by a second connection, whatever failed must leave nothing,
// and the event loop must keep turning meanwhile (heartbeats ride on it).
import { afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, openDb, type Db } from "../../db/client";
import { claimTasks, completeTask, heartbeatLeases, registerRunner } from "../../db/queue";
import { recordRows } from "../../db/rows";
import { createRun } from "../../db/runs";
import { isLockError } from "../../db/safe-client";

const HOLDER = join(import.meta.dir, "_lock-holder.ts");
const dirs: string[] = [];
const dbs: Db[] = [];

afterEach(() => {
  for (const db of dbs.splice(0)) closeDb(db);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function freshDb(busyTimeoutMs: number): Promise<{ db: Db; path: string }> {
  const dir = mkdtempSync(join(tmpdir(), "baton-lock-"));
  dirs.push(dir);
  const path = join(dir, "baton.db");
  const db = await openDb({ url: `file:${path}`, busyTimeoutMs });
  dbs.push(db);
  await registerRunner({ db, runner: { id: "r1", host: "h", pid: 1, concurrency: 8, version: "t" } as any });
  return { db, path };
}

const tasks = (n: number, prefix = "t") =>
  Array.from({ length: n }, (_, i) => ({ externalId: `${prefix}${i}`, input: { id: `${prefix}${i}`, question: `q${i}`, answer: "a" } }));

/** Starts the lock holder and resolves once it holds the lock; `released` resolves after. */
async function holdLock(path: string, ms: number): Promise<{ released: Promise<void> }> {
  const proc = Bun.spawn([process.execPath, HOLDER, path, String(ms)], { stdout: "pipe", stderr: "inherit" });
  const reader = proc.stdout.getReader();
  let seen = "";
  while (!seen.includes("locked")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`lock holder exited before locking: ${seen}`);
    seen += new TextDecoder().decode(value);
  }
  const released = (async () => {
    while (!seen.includes("released")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    expect(await proc.exited).toBe(0);
  })();
  return { released };
}

/** The longest gap between ticks of a 10 ms timer: how long the event loop was blocked. */
function watchEventLoop(): { stop(): number } {
  let last = performance.now();
  let worst = 0;
  const t = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 10);
  return {
    stop() {
      clearInterval(t);
      return worst;
    },
  };
}

/** What another connection (another process would see the same) reads. */
function secondConnection(path: string) {
  const other = new Database(path, { readonly: true });
  const status = (ids: number[]) =>
    ids.map((id) => (other.query("SELECT status FROM tasks WHERE id = ?").get(id) as any)?.status ?? null);
  const count = (sql: string) => Number((other.query(sql).get() as any).n);
  return { status, count, close: () => other.close() };
}

const settle = <T,>(p: Promise<T>) => p.then((value) => ({ ok: true as const, value }), (error) => ({ ok: false as const, error }));

describe("a write lock held by another process", () => {
  test("shorter than the busy timeout: every write waits, lands, and is seen by a second connection; the event loop keeps turning", async () => {
    const { db, path } = await freshDb(10_000);
    const { run } = await createRun({ db, name: "short", benchmark: "frames", tasks: tasks(10) });
    const claimed = await claimTasks({ db, runnerId: "r1", limit: 6, leaseMs: 60_000 });
    const lockMs = 4_000;
    const lock = await holdLock(path, lockMs);
    const loop = watchEventLoop();
    const t0 = Date.now();
    const [completions, heartbeat, moreClaims, rows, submission] = await Promise.all([
      Promise.all(claimed.slice(0, 3).map((t) => completeTask({ db, taskId: t.id, leaseToken: t.leaseToken, result: { prediction: "a", correct: true } }))),
      heartbeatLeases({ db, runnerId: "r1", tokens: claimed.slice(3).map((t) => t.leaseToken), leaseMs: 120_000 }),
      claimTasks({ db, runnerId: "r1", limit: 2, leaseMs: 60_000 }),
      recordRows({ db, rows: { toolCalls: [{ runId: run.id, taskId: claimed[0].id, attempt: 1, step: 0, tool: "search", status: "ok", startedAt: Date.now(), durationMs: 5 } as any] } }),
      createRun({ db, name: "during-lock", benchmark: "frames", tasks: tasks(5, "s") }),
    ]);
    const waited = Date.now() - t0;
    const worstGap = loop.stop();
    await lock.released;

    // the writes really waited for the lock, and nothing failed
    expect(waited).toBeGreaterThanOrEqual(lockMs - 200);
    expect(completions).toEqual([true, true, true]);
    expect(heartbeat.lost).toEqual([]);
    expect(moreClaims.length).toBe(2);
    expect(rows.written).toBe(1);
    // The event loop was never blocked for long: a try blocks it for 100 ms at most, while a
    // driver that waits out the lock synchronously blocks it for the whole lock. Half the lock
    // leaves room for a loaded machine descheduling the process.
    expect(worstGap).toBeLessThan(lockMs / 2);

    const other = secondConnection(path);
    try {
      expect(other.status(claimed.slice(0, 3).map((t) => t.id))).toEqual(["succeeded", "succeeded", "succeeded"]);
      expect(other.status(moreClaims.map((t) => t.id))).toEqual(["running", "running"]);
      expect(other.count("SELECT count(*) AS n FROM tool_calls")).toBe(1);
      expect(other.count(`SELECT count(*) AS n FROM tasks WHERE run_id = ${submission.run.id}`)).toBe(5);
      // the heartbeat's extension is there too: 120 s leases, not the claim's 60 s
      expect(other.count("SELECT count(*) AS n FROM tasks WHERE lease_expires_at > (unixepoch('subsec') * 1000) + 90000")).toBe(3);
    } finally {
      other.close();
    }
  }, 30_000);

  test("longer than the busy timeout: writes that fail leave nothing, and every write acknowledged afterwards is durable", async () => {
    const { db, path } = await freshDb(600);
    await createRun({ db, name: "long", benchmark: "frames", tasks: tasks(8) });
    const claimed = await claimTasks({ db, runnerId: "r1", limit: 8, leaseMs: 60_000 });
    const lockMs = 3_000;
    const lock = await holdLock(path, lockMs);
    const loop = watchEventLoop();

    const during = await Promise.all([
      ...claimed.slice(0, 3).map((t) => settle(completeTask({ db, taskId: t.id, leaseToken: t.leaseToken, result: { correct: true } }))),
      settle(heartbeatLeases({ db, runnerId: "r1", tokens: claimed.map((t) => t.leaseToken), leaseMs: 120_000 })),
      settle(createRun({ db, name: "refused", benchmark: "frames", tasks: tasks(4, "x") })),
    ]);
    // the lock outlasts the busy timeout: each of these gave up with a lock error
    for (const r of during) {
      expect(r.ok).toBe(false);
      if (!r.ok) expect(isLockError(r.error)).toBe(true);
    }
    await lock.released;
    const worstGap = loop.stop();
    // five statements that each gave up after the 600 ms busy timeout, one after another,
    // would have blocked it for the whole lock
    expect(worstGap).toBeLessThan(lockMs / 2);

    // After the failures, the same connection's writes must commit (they used to land in a
    // transaction that never committed, acknowledged all the same).
    const after = await Promise.all(
      claimed.slice(3, 6).map((t) => completeTask({ db, taskId: t.id, leaseToken: t.leaseToken, result: { correct: true } })),
    );
    expect(after).toEqual([true, true, true]);
    const hb = await heartbeatLeases({ db, runnerId: "r1", tokens: claimed.slice(6).map((t) => t.leaseToken), leaseMs: 120_000 });
    expect(hb.lost).toEqual([]);
    const rows = await recordRows({ db, rows: { toolCalls: [{ runId: 1, taskId: claimed[3].id, attempt: 1, step: 0, tool: "answer", status: "ok", startedAt: Date.now(), durationMs: 1 } as any] } });
    expect(rows.written).toBe(1);
    const second = await createRun({ db, name: "after-lock", benchmark: "frames", tasks: tasks(4, "y") });

    const check = () => {
      const other = secondConnection(path);
      try {
        expect(other.status(claimed.slice(0, 3).map((t) => t.id))).toEqual(["running", "running", "running"]);
        expect(other.status(claimed.slice(3, 6).map((t) => t.id))).toEqual(["succeeded", "succeeded", "succeeded"]);
        expect(other.count("SELECT count(*) AS n FROM tasks WHERE lease_expires_at > (unixepoch('subsec') * 1000) + 90000")).toBe(2);
        expect(other.count("SELECT count(*) AS n FROM tool_calls")).toBe(1);
        expect(other.count(`SELECT count(*) AS n FROM tasks WHERE run_id = ${second.run.id}`)).toBe(4);
        expect(other.count("SELECT count(*) AS n FROM runs WHERE name = 'refused'")).toBe(0);
      } finally {
        other.close();
      }
    };
    check(); // while the writer is still open
    closeDb(dbs.pop()!);
    check(); // and after it has gone
  }, 30_000);

  test("an interactive transaction owns the connection: a statement issued meanwhile runs after its commit, and both are durable", async () => {
    const { db, path } = await freshDb(5_000);
    const client = db.$client;
    await client.execute("CREATE TABLE marks (k TEXT)");
    const tx = await client.transaction("write");
    await tx.execute("INSERT INTO marks VALUES ('in-tx')");
    let outsideDone = false;
    const outside = client.execute("INSERT INTO marks VALUES ('outside')").then(() => (outsideDone = true));
    await Bun.sleep(0);
    expect(outsideDone).toBe(false);
    await tx.commit();
    await outside;
    const other = new Database(path, { readonly: true });
    try {
      expect((other.query("SELECT k FROM marks ORDER BY rowid").all() as any[]).map((r) => r.k)).toEqual(["in-tx", "outside"]);
    } finally {
      other.close();
    }
  });
});

test("a new database file and its WAL are readable by their owner only", async () => {
  const { statSync } = await import("node:fs");
  const dir = mkdtempSync(join(tmpdir(), "baton-mode-"));
  dirs.push(dir);
  const path = join(dir, "nested", "baton.db");
  const db = await openDb({ url: `file:${path}` });
  dbs.push(db);
  await createRun({ db, name: "m", benchmark: "frames", tasks: tasks(1) });
  for (const f of [path, `${path}-wal`, `${path}-shm`]) expect((statSync(f).mode & 0o777).toString(8)).toBe("600");
  expect((statSync(join(dir, "nested")).mode & 0o777).toString(8)).toBe("700");
});
