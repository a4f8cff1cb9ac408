import { sql } from "drizzle-orm";
import { Elysia } from "elysia";
import * as v from "valibot";
import type { Db } from "../db/client";
import type { AppDeps } from "./deps";
import { errorBody, ErrorBody } from "./errors";

export const Health = v.object({ ok: v.boolean(), db: v.string() });
export type Health = v.InferOutput<typeof Health>;

/** A trivial query proves the database answers (file locked, sqld down, ... show here). */
export async function checkHealth({ db }: { db: Db }): Promise<Health> {
  try {
    await db.run(sql`SELECT 1`);
    return { ok: true, db: "ok" };
  } catch (err) {
    return { ok: false, db: String((err as any)?.cause?.code ?? (err as Error).message ?? "error") };
  }
}

export const healthRoutes = (deps: AppDeps) =>
  new Elysia({ name: "health" }).get(
    "/healthz",
    async ({ status }) => {
      const h = await checkHealth({ db: deps.db });
      return h.ok ? h : status(503, errorBody("health.db_unavailable", `database check failed: ${h.db}`));
    },
    { response: { 200: Health, 503: ErrorBody }, detail: { summary: "Liveness and database check" } },
  );
