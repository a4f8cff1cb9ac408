import { statfsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { sql } from "drizzle-orm";
import { Elysia } from "elysia";
import * as v from "valibot";
import type { Db } from "../db/client";
import { SafeFileClient, sqliteCode } from "../db/safe-client";
import type { AppDeps } from "./deps";
import { errorBody, ErrorBody } from "./errors";

export const Health = v.object({
  ok: v.boolean(),
  db: v.string(),
  // a write went through just now (file databases; a libSQL server is checked by a read)
  writable: v.boolean(),
  // space left on the database file's volume, file databases only
  free_bytes: v.nullable(v.number()),
});
export type Health = v.InferOutput<typeof Health>;

// A probe that waits longer than this for the write lock reports "locked", not a hang.
const PROBE_MS = 2_000;

function freeBytes(client: unknown): number | null {
  if (!(client instanceof SafeFileClient)) return null;
  try {
    const st = statfsSync(dirname(resolve(client.path)));
    return Number(st.bavail) * Number(st.bsize);
  } catch {
    return null;
  }
}

const describe = (err: unknown) => sqliteCode(err) || String((err as any)?.cause?.message ?? (err as Error)?.message ?? err).slice(0, 200);

/**
 * The database answers a read, and (file databases) takes a write: rewriting the header's
 * user_version needs a WAL frame, so a full volume, a read-only file or a lock held for long
 * shows here before a runner's completion meets it.
 */
export async function checkHealth({ db }: { db: Db }): Promise<Health> {
  const free = freeBytes(db.$client);
  try {
    await db.run(sql`SELECT 1`);
  } catch (err) {
    return { ok: false, db: describe(err), writable: false, free_bytes: free };
  }
  if (!(db.$client instanceof SafeFileClient)) return { ok: true, db: "ok", writable: true, free_bytes: null };
  const probe = (async () => {
    const [row] = (await db.$client.execute("PRAGMA user_version")).rows as any[];
    await db.$client.execute(`PRAGMA user_version = ${Number(row?.user_version ?? 0)}`);
    return "ok";
  })().catch(describe);
  const timer = new Promise<string>((r) => setTimeout(() => r("locked: a write waited longer than 2 s"), PROBE_MS).unref?.());
  const state = await Promise.race([probe, timer]);
  const writable = state === "ok";
  return { ok: writable, db: writable ? "ok" : `unwritable: ${state}`, writable, free_bytes: free };
}

export const healthRoutes = (deps: AppDeps) =>
  new Elysia({ name: "health" }).get(
    "/healthz",
    async ({ status }) => {
      const h = await checkHealth({ db: deps.db });
      if (h.ok) return h;
      const space = h.free_bytes != null ? ` (${h.free_bytes} bytes free on its volume)` : "";
      return h.db.startsWith("unwritable")
        ? status(503, errorBody("health.db_unwritable", `database is not writable: ${h.db.slice("unwritable: ".length)}${space}`))
        : status(503, errorBody("health.db_unavailable", `database check failed: ${h.db}`));
    },
    { response: { 200: Health, 503: ErrorBody }, detail: { summary: "Liveness and database check: a read, and a write on file databases" } },
  );
