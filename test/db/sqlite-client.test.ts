// The bun:sqlite client behind SafeFileClient answers as @libsql/client did (rows, errors,
// batches), keeps its statements prepared, and never lets a failed statement keep a
// transaction open: what was acknowledged afterwards is seen from a second connection.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LibsqlBatchError, LibsqlError } from "@libsql/client";
import { closeDb, openDb } from "../../db/client";
import { SafeFileClient } from "../../db/safe-client";
import { SqliteClient } from "../../db/sqlite-client";

let dir: string;
let path: string;
let client: SqliteClient;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-sqlite-client-"));
  path = join(dir, "x.db");
  client = new SqliteClient({ url: `file:${path}` }, { busyTimeoutMs: 100 });
  await client.executeMultiple("PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE, n INTEGER);");
});
afterEach(() => {
  client.close();
  rmSync(dir, { recursive: true, force: true });
});

function seenFromOutside(sql: string): unknown[] {
  const other = new Database(path, { readonly: true });
  try {
    return other.query(sql).all();
  } finally {
    other.close();
  }
}

test("rows carry column names as their only enumerable keys, values by index too, the first of duplicate names", async () => {
  await client.execute({ sql: "INSERT INTO t (v, n) VALUES (?, ?), (?, ?)", args: ["a", 1, "b", true] });
  const res = await client.execute("SELECT id, v, n, v AS v FROM t ORDER BY id");
  expect(res.columns).toEqual(["id", "v", "n", "v"]);
  expect(res.rows.length).toBe(2);
  const row = res.rows[1];
  expect(Object.keys(row)).toEqual(["id", "v", "n"]);
  expect(JSON.parse(JSON.stringify(row))).toEqual({ id: 2, v: "b", n: 1 });
  expect(Array.prototype.slice.call(row)).toEqual([2, "b", 1, "b"]);
  expect(row.length).toBe(4);
});

test("a write reports rows changed and the last row id", async () => {
  const ins = await client.execute({ sql: "INSERT INTO t (v) VALUES (?)", args: ["x"] });
  expect(ins.rowsAffected).toBe(1);
  expect(ins.lastInsertRowid).toBe(1n);
  const upd = await client.execute({ sql: "UPDATE t SET n = 5 WHERE v = ?", args: ["nope"] });
  expect(upd.rowsAffected).toBe(0);
});

test("a constraint violation is a LibsqlError with the base and the extended code, and the next write commits", async () => {
  await client.execute({ sql: "INSERT INTO t (v) VALUES (?)", args: ["dup"] });
  const err = await client.execute({ sql: "INSERT INTO t (v) VALUES (?)", args: ["dup"] }).catch((e) => e);
  expect(err).toBeInstanceOf(LibsqlError);
  expect(err.code).toBe("SQLITE_CONSTRAINT");
  expect(err.extendedCode).toBe("SQLITE_CONSTRAINT_UNIQUE");
  // the same (failed, then finalized) statement text works again, and nothing is left open
  await client.execute({ sql: "INSERT INTO t (v) VALUES (?)", args: ["fresh"] });
  expect(seenFromOutside("SELECT v FROM t ORDER BY id")).toEqual([{ v: "dup" }, { v: "fresh" }]);
});

test("a batch is all or nothing, and names the statement that failed", async () => {
  const err = await client
    .batch([
      { sql: "INSERT INTO t (v) VALUES (?)", args: ["one"] },
      { sql: "INSERT INTO t (v) VALUES (?)", args: ["one"] },
    ])
    .catch((e) => e);
  expect(err).toBeInstanceOf(LibsqlBatchError);
  expect(err.statementIndex).toBe(1);
  expect(seenFromOutside("SELECT count(*) AS n FROM t")).toEqual([{ n: 0 }]);
  const ok = await client.batch([{ sql: "INSERT INTO t (v) VALUES (?)", args: ["two"] }, "SELECT count(*) AS n FROM t"]);
  expect(ok[1].rows[0].n).toBe(1);
  expect(seenFromOutside("SELECT v FROM t")).toEqual([{ v: "two" }]);
});

test("a statement that met another process's lock leaves no transaction open: later writes are durable", async () => {
  const holder = new Database(path);
  holder.exec("BEGIN IMMEDIATE");
  const err = await client.execute({ sql: "INSERT INTO t (v) VALUES (?)", args: ["blocked"] }).catch((e) => e);
  expect(err.code).toBe("SQLITE_BUSY");
  holder.exec("COMMIT");
  holder.close();
  await client.execute({ sql: "INSERT INTO t (v) VALUES (?)", args: ["after"] });
  expect(seenFromOutside("SELECT v FROM t")).toEqual([{ v: "after" }]);
});

test("a read-only database stays read-only after its connection is replaced", async () => {
  client.close();
  const rw = await openDb({ url: `file:${path}` });
  closeDb(rw);
  const db = await openDb({ url: `file:${path}`, readOnly: true });
  try {
    const safe = db.$client as unknown as SafeFileClient;
    await safe.reconnect();
    const err = await db.$client.execute("INSERT INTO t (v) VALUES ('w')").catch((e) => e);
    expect(String(err?.message)).toMatch(/readonly|read-only|query_only/i);
  } finally {
    closeDb(db);
  }
  client = new SqliteClient({ url: `file:${path}` }, { busyTimeoutMs: 100 });
});

test("BATON_FILE_DRIVER=libsql still opens a file on libsql's own driver, loaded only then, with the same error classes", async () => {
  const before = process.env.BATON_FILE_DRIVER;
  process.env.BATON_FILE_DRIVER = "libsql";
  try {
    const db = await openDb({ url: `file:${join(dir, "libsql.db")}` });
    expect(Number((await db.$client.execute("SELECT count(*) AS n FROM runs")).rows[0].n)).toBe(0);
    const err = await db.$client.execute("SELECT * FROM no_such_table").catch((e) => e);
    expect(err).toBeInstanceOf(LibsqlError);
    closeDb(db);
  } finally {
    if (before === undefined) delete process.env.BATON_FILE_DRIVER;
    else process.env.BATON_FILE_DRIVER = before;
  }
});
