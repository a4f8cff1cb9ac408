// The infrastructure error classes are listed once, in db/analysis.ts; the task_outcomes view
// (SQL, migrations/) cannot import it, so this test holds the view to the same list.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { INFRA_FALLBACK_CLASSES } from "../../db/analysis";
import { closeDb, openDb, type Db } from "../../db/client";

let dir: string;
let db: Db;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-infra-"));
  db = await openDb({ url: `file:${join(dir, "baton.db")}` });
});
afterAll(() => {
  closeDb(db);
  rmSync(dir, { recursive: true, force: true });
});

test("the migrated task_outcomes view counts exactly INFRA_FALLBACK_CLASSES as infrastructure", async () => {
  const res = (await db.$client.execute("SELECT sql FROM sqlite_master WHERE type = 'view' AND name = 'task_outcomes'")) as any;
  const sql = String(res.rows[0].sql);
  const list = /`error_class` IN \(([^)]*)\)/.exec(sql)?.[1] ?? "";
  const classes = [...list.matchAll(/'([^']+)'/g)].map((m) => m[1]);
  expect(classes).toEqual([...INFRA_FALLBACK_CLASSES]);
});
