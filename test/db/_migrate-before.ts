// A database as it stood before one migration: every migration whose journal entry comes
// earlier, applied from a copy of the folder, so a test can write rows the old way and then
// let openDb run the rest.
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { migrate } from "drizzle-orm/libsql/migrator";
import { MIGRATIONS_DIR, type Db } from "../../db/client";

export async function migrateBefore({ db, tagPrefix, scratchDir }: { db: Db; tagPrefix: string; scratchDir: string }): Promise<void> {
  mkdirSync(join(scratchDir, "meta"), { recursive: true });
  const journal = JSON.parse(readFileSync(join(MIGRATIONS_DIR, "meta/_journal.json"), "utf8"));
  const mine = journal.entries.find((e: any) => e.tag.startsWith(tagPrefix));
  if (!mine) throw new Error(`no migration ${tagPrefix} in the journal`);
  journal.entries = journal.entries.filter((e: any) => e.when < mine.when);
  writeFileSync(join(scratchDir, "meta/_journal.json"), JSON.stringify(journal));
  for (const e of journal.entries) cpSync(join(MIGRATIONS_DIR, `${e.tag}.sql`), join(scratchDir, `${e.tag}.sql`));
  await migrate(db, { migrationsFolder: scratchDir });
}
