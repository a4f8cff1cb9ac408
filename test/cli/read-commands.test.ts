// Reading never writes: `--db` opens the file read-only (a missing one is an error, nothing
// is created), a name two runs share is ambiguous everywhere, `--server` and `--db` answer
// alike, and `export | head` ends quietly.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateRun } from "../../bench/gen-latency-rows";
import { closeDb, openDb, type Db } from "../../db/client";
import { type CliResult, BATON, runBaton, type ServeProcess, startServe } from "./_helpers";

let dir: string;
let dbPath: string;
let copyPath: string; // no server on it: nothing else writes it
let server: ServeProcess;

const baton = (...args: string[]): Promise<CliResult> => runBaton(args, { cwd: dir, env: { DATABASE_URL: "", BATON_SERVER: "", BATON_TOKEN: "" } });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-cli-read-"));
  dbPath = join(dir, "runs.db");
  const db = await openDb({ url: dbPath });
  await generateRun({ db, tasks: 400, seed: 3, name: "big" });
  await generateRun({ db, tasks: 5, seed: 4, name: "twice" });
  await generateRun({ db, tasks: 5, seed: 5, name: "twice" });
  closeDb(db);
  copyPath = join(dir, "copy.db");
  copyFileSync(dbPath, copyPath);
  server = await startServe({ db: dbPath, env: { BATON_TOKEN: "" } });
}, 60_000);

afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("openDb({ readOnly })", () => {
  test("a missing file is an error naming it, and neither the file nor its directory is made", async () => {
    const path = join(dir, "no-such-dir", "x.db");
    await expect(openDb({ url: path, readOnly: true })).rejects.toThrow(`no database file at ${path}`);
    expect(existsSync(join(dir, "no-such-dir"))).toBe(false);
  });

  test("reads what is there and refuses to write", async () => {
    const db: Db = await openDb({ url: dbPath, readOnly: true });
    try {
      const r = await db.$client.execute("SELECT count(*) AS n FROM runs");
      expect(Number((r.rows[0] as any).n)).toBe(3);
      await expect(db.$client.execute("DELETE FROM runs")).rejects.toThrow(/readonly|read-only|query_only/i);
    } finally {
      closeDb(db);
    }
    const again = await openDb({ url: dbPath, readOnly: true });
    expect(Number(((await again.$client.execute("SELECT count(*) AS n FROM runs")).rows[0] as any).n)).toBe(3);
    closeDb(again);
  });
});

describe("--db on a file that is not there", () => {
  for (const args of [
    ["report", "1"],
    ["export", "1", "--format", "jsonl"],
    ["inflight", "1"],
    ["status", "1"],
    ["runs"],
    ["task", "1"],
    ["endpoints", "list"],
  ]) {
    test(`${args[0]} says so (exit 1) and creates nothing`, async () => {
      const missing = join(dir, `nowhere-${args[0]}`, "baton.db");
      const r = await baton(...args, "--db", missing);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`no database file at ${missing}`);
      expect(existsSync(join(dir, `nowhere-${args[0]}`))).toBe(false);
    }, 20_000);
  }
});

test("a file that is not a Baton database is named as such, by every read command", async () => {
  const other = join(dir, "other.db");
  const { Database } = await import("bun:sqlite");
  const d = new Database(other);
  d.run("CREATE TABLE notes (text TEXT)");
  d.close();
  for (const args of [["runs"], ["report", "1"], ["export", "1", "--format", "jsonl"]]) {
    const r = await baton(...args, "--db", other);
    expect({ args, code: r.code }).toEqual({ args, code: 1 });
    expect(r.stderr).toContain("--db: not a Baton database");
  }
}, 30_000);

describe("a name two runs share", () => {
  for (const args of [
    ["report", "twice"],
    ["export", "twice", "--format", "jsonl"],
    ["inflight", "twice"],
    ["status", "twice"],
  ]) {
    test(`${args[0]} --db refuses it as ambiguous, as --server does`, async () => {
      const viaDb = await baton(...args, "--db", dbPath);
      expect(viaDb.code).toBe(1);
      expect(viaDb.stderr).toContain('run name "twice" matches several runs; use the numeric id');
      expect(viaDb.stdout).toBe("");
      const viaServer = await baton(...args, "--server", server.base);
      expect(viaServer.code).toBe(1);
      expect(viaServer.stderr).toContain("[runs.ambiguous]");
    }, 20_000);
  }
});

test("reading a run with --db leaves the file byte for byte as it was", async () => {
  const before = readFileSync(copyPath);
  for (const args of [["report", "big", "--json"], ["export", "big", "--format", "csv"], ["inflight", "big"], ["preflight", "big", "--json"], ["status", "big"], ["runs"], ["task", "1"], ["endpoints", "list"]]) {
    const r = await baton(...args, "--db", copyPath);
    expect(r.stderr).not.toContain("readonly");
  }
  expect(readFileSync(copyPath).equals(before)).toBe(true);
  expect(existsSync(`${copyPath}-wal`)).toBe(false);
}, 60_000);

test("export --db and export --server write the same bytes, files included", async () => {
  for (const args of [["big", "--format", "jsonl"], ["big", "--format", "csv", "--what", "latency"]]) {
    const a = await baton("export", ...args, "--db", dbPath);
    const b = await baton("export", ...args, "--server", server.base);
    expect({ args, a: a.code, b: b.code }).toEqual({ args, a: 0, b: 0 });
    expect(a.stdout.length).toBeGreaterThan(1000);
    expect(b.stdout).toBe(a.stdout);
  }
  const viaDb = join(dir, "to-db");
  const viaServer = join(dir, "to-server");
  expect((await baton("export", "big", "--format", "toolorchestra", viaDb, "--db", dbPath)).code).toBe(0);
  expect((await baton("export", "big", "--format", "toolorchestra", viaServer, "--server", server.base)).code).toBe(0);
  const files = readdirSync(viaDb).sort();
  expect(files.length).toBeGreaterThan(100);
  expect(readdirSync(viaServer).sort()).toEqual(files);
  for (const f of files) expect(readFileSync(join(viaServer, f), "utf8")).toBe(readFileSync(join(viaDb, f), "utf8"));
}, 60_000);

test("export --out from a server that is not there leaves no file behind", async () => {
  const out = join(dir, "never.csv");
  const r = await baton("export", "big", "--format", "csv", "--out", out, "--server", "http://127.0.0.1:9");
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("cannot reach the Baton server at http://127.0.0.1:9");
  expect(existsSync(out)).toBe(false);
  expect(existsSync(`${out}.partial`)).toBe(false);
}, 20_000);

test("--db and --server print the same JSON", async () => {
  for (const args of [["inflight", "big"], ["task", "7"], ["runs"], ["report", "2"]]) {
    const a = await baton(...args, "--json", "--db", dbPath);
    const b = await baton(...args, "--json", "--server", server.base);
    expect({ args, code: a.code }).toEqual({ args, code: 0 });
    // when each answered, and what follows from it (the rate over the last minutes, the ETA)
    const strip = (x: any): any => (Array.isArray(x) ? x.map(strip) : { ...x, now: 0, generated_at: 0, rate_per_min: 0, eta_ms: 0 });
    expect(strip(JSON.parse(a.stdout))).toEqual(strip(JSON.parse(b.stdout)));
  }
}, 60_000);

test("export to a reader that stops early (| head) exits 0 with nothing on stderr", async () => {
  const p = Bun.spawn(["bash", "-c", `"$0" "$1" export big --format jsonl --what latency --db "$2" | head -c 200 >/dev/null; echo "exit=\${PIPESTATUS[0]}" >&2`, process.execPath, BATON, dbPath], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, DATABASE_URL: "" },
  });
  const [stderr] = await Promise.all([new Response(p.stderr).text(), p.exited]);
  expect(stderr).toBe("exit=0\n");
}, 30_000);

test("cancel and requeue print the server's answer with --json", async () => {
  const cancel = await baton("cancel", "big", "--json", "--server", server.base);
  expect(cancel.code).toBe(0);
  const canceled = JSON.parse(cancel.stdout);
  expect(canceled.id).toBe(1);
  expect(typeof canceled.canceled).toBe("number");
  const requeue = await baton("requeue", "big", "--canceled", "--json", "--server", server.base);
  expect(requeue.code).toBe(0);
  expect(JSON.parse(requeue.stdout)).toMatchObject({ id: 1, requeued: canceled.canceled });
}, 20_000);
