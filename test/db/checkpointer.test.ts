// The background checkpointer (db/checkpointer.ts): a long-lived process's commits only append
// to the WAL, a thread copies it back into the database soon after, and closing the database
// stops the thread without holding the process.
import { Database } from "bun:sqlite";
import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, openDb, type Db } from "../../db/client";
import { createRun, validateTasks } from "../../db/runs";

let dir: string;
let path: string;
let db: Db | null = null;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "baton-checkpointer-"));
  path = join(dir, "baton.db");
});
afterEach(() => {
  if (db && !db.$client.closed) closeDb(db);
  db = null;
  rmSync(dir, { recursive: true, force: true });
});

const submit = (d: Db, n: number) =>
  createRun({ db: d, name: "cp", benchmark: "frames", tasks: validateTasks({ rows: Array.from({ length: n }, (_, i) => ({ id: i, question: `question ${i} `.repeat(20) })) }) });

async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

test("a large commit returns with its pages in the WAL, and the thread copies them into the database soon after", async () => {
  // an interval far longer than the commit: the copy cannot have happened inside it
  db = await openDb({ url: `file:${path}`, backgroundCheckpoint: { intervalMs: 5000 } });
  const before = statSync(path).size;
  await submit(db, 20_000);
  const walAfterCommit = statSync(`${path}-wal`).size;
  // 20,000 tasks are megabytes: without the thread, the commit itself would have copied them
  // (the default automatic checkpoint is 1,000 pages)
  expect(walAfterCommit).toBeGreaterThan(4 * 1000 * 2048);
  expect(statSync(path).size - before).toBeLessThan(1_000_000);
  await until("the checkpoint", () => statSync(path).size - before > 4_000_000);
  // what the database file now holds is what was acknowledged, seen from a connection of its own
  const other = new Database(path, { readonly: true });
  expect(Number((other.query("SELECT count(*) AS n FROM tasks").get() as any).n)).toBe(20_000);
  other.close();
}, 30_000);

test("without it, the committing writer checkpoints as before", async () => {
  db = await openDb({ url: `file:${path}` });
  const before = statSync(path).size;
  await submit(db, 20_000);
  expect(statSync(path).size - before).toBeGreaterThan(4_000_000);
});

test("closing the database stops the thread: the process exits by itself", async () => {
  const script = join(dir, "open-close.ts");
  await Bun.write(
    script,
    `import { closeDb, openDb } from ${JSON.stringify(join(import.meta.dir, "../../db/client"))};
const db = await openDb({ url: "file:${path}", backgroundCheckpoint: { intervalMs: 10 } });
await db.$client.execute("CREATE TABLE IF NOT EXISTS t (x)");
closeDb(db);
console.log("closed");`,
  );
  const p = Bun.spawn([process.execPath, script], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), 20_000);
  const code = await p.exited;
  clearTimeout(timer);
  expect(await new Response(p.stdout).text()).toContain("closed");
  expect(p.signalCode).toBeNull();
  expect(code).toBe(0);
});

test("a checkpointer that cannot open its database fails to start with a reason, and leaves no thread behind", async () => {
  const script = join(dir, "fail-start.ts");
  await Bun.write(
    script,
    `import { startCheckpointer } from ${JSON.stringify(join(import.meta.dir, "../../db/checkpointer"))};
const err = await startCheckpointer({ path: ${JSON.stringify(join(dir, "missing", "none.db"))} }).catch((e) => e);
console.log(err instanceof Error ? err.message : "started");`,
  );
  const p = Bun.spawn([process.execPath, script], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), 20_000);
  const code = await p.exited;
  clearTimeout(timer);
  // the process ended by itself: the failed thread was not left running
  expect(p.signalCode).toBeNull();
  expect(code).toBe(0);
  expect(await new Response(p.stdout).text()).toContain("checkpointer:");
});
