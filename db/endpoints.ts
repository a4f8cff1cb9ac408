// The endpoint registry: where each served model and retrieval backend lives. Runners re-read
// it while running, so adding or disabling a row steers calls without a restart.
import { asc, eq, sql } from "drizzle-orm";
import type { Db } from "./client";
import { endpoints } from "./schema";

export type EndpointKind = "model" | "retrieval";
export const ENDPOINT_KINDS = ["model", "retrieval"] as const;

export type Endpoint = {
  id: number;
  kind: string;
  name: string;
  baseUrl: string;
  enabled: boolean;
  createdAt: number;
  updatedAt: number;
};

// Keys of a ToolOrchestra model config that name retrieval services, not models.
export const RETRIEVAL_KEYS = ["retrieval", "wiki_retrieval"];

/** A thrown input problem; `field` names the key/index at fault. */
export class EndpointInputError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

export function normalizeEndpointUrl(url: string, field = "baseUrl"): string {
  const trimmed = url.trim().replace(/\/+$/, "");
  let parsed: URL;
  try {
    parsed = new URL(trimmed);
  } catch {
    throw new EndpointInputError(field, `not a URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
    throw new EndpointInputError(field, `must be http:// or https://, got ${parsed.protocol}`);
  return trimmed;
}

function toEndpoint(r: typeof endpoints.$inferSelect): Endpoint {
  return { id: r.id, kind: r.kind, name: r.name, baseUrl: r.baseUrl, enabled: Boolean(r.enabled), createdAt: r.createdAt, updatedAt: r.updatedAt };
}

export async function listEndpoints({ db, enabledOnly = false }: { db: Db; enabledOnly?: boolean }): Promise<Endpoint[]> {
  const q = db.select().from(endpoints);
  const rows = await (enabledOnly ? q.where(eq(endpoints.enabled, true)) : q).orderBy(asc(endpoints.kind), asc(endpoints.name), asc(endpoints.id));
  return rows.map(toEndpoint);
}

export type NewEndpoint = { kind: EndpointKind; name: string; baseUrl: string; enabled?: boolean };

function upsertStatement(db: Db, e: NewEndpoint, now: number) {
  return db
    .insert(endpoints)
    .values({ kind: e.kind, name: e.name, baseUrl: e.baseUrl, enabled: e.enabled ?? true, createdAt: now, updatedAt: now })
    .onConflictDoUpdate({
      target: [endpoints.name, endpoints.baseUrl],
      // Re-adding an endpoint re-enables it: that is what "this node is back" means.
      set: { kind: sql`excluded.kind`, enabled: sql`excluded.enabled`, updatedAt: now },
    })
    .returning();
}

function checkNew(e: NewEndpoint, field = ""): NewEndpoint {
  const at = (f: string) => (field ? `${field}.${f}` : f);
  if (!ENDPOINT_KINDS.includes(e.kind)) throw new EndpointInputError(at("kind"), `must be one of ${ENDPOINT_KINDS.join(", ")}`);
  if (typeof e.name !== "string" || e.name.trim() === "") throw new EndpointInputError(at("name"), "must be a non-empty string");
  return { ...e, name: e.name.trim(), baseUrl: normalizeEndpointUrl(e.baseUrl, at("baseUrl")) };
}

/** Adds an endpoint, or re-enables the existing row for the same (name, baseUrl). */
export async function addEndpoint({ db, endpoint }: { db: Db; endpoint: NewEndpoint }): Promise<Endpoint> {
  const e = checkNew(endpoint);
  const [row] = await upsertStatement(db, e, Date.now());
  return toEndpoint(row);
}

/** Returns the updated row, or null when no endpoint has that id. */
export async function setEndpointEnabled({ db, id, enabled }: { db: Db; id: number; enabled: boolean }): Promise<Endpoint | null> {
  const [row] = await db.update(endpoints).set({ enabled, updatedAt: Date.now() }).where(eq(endpoints.id, id)).returning();
  return row ? toEndpoint(row) : null;
}

/**
 * Parses a ToolOrchestra model config:
 *   { "<served model>": [{"ip_addr": h, "port": p}, ...], "retrieval": [...], "wiki_retrieval": [...] }
 * Every bad entry is an EndpointInputError naming its key and index. Top-level keys whose
 * value is a plain string (e.g. a path the launch scripts store beside the endpoints) are
 * not endpoints and are reported as ignored.
 */
export function parseToolOrchestraConfig(config: unknown): { endpoints: NewEndpoint[]; ignoredKeys: string[] } {
  if (config == null || typeof config !== "object" || Array.isArray(config))
    throw new EndpointInputError("config", "must be a JSON object mapping model names to lists of {ip_addr, port}");
  const out: NewEndpoint[] = [];
  const ignoredKeys: string[] = [];
  for (const [key, value] of Object.entries(config as Record<string, unknown>)) {
    if (typeof value === "string") {
      ignoredKeys.push(key);
      continue;
    }
    if (!Array.isArray(value)) throw new EndpointInputError(key, "must be a list of {ip_addr, port}");
    const kind: EndpointKind = RETRIEVAL_KEYS.includes(key) ? "retrieval" : "model";
    value.forEach((entry, i) => {
      const field = `${key}[${i}]`;
      if (entry == null || typeof entry !== "object" || Array.isArray(entry)) throw new EndpointInputError(field, "must be an object {ip_addr, port}");
      const { ip_addr, port } = entry as Record<string, unknown>;
      if (typeof ip_addr !== "string" || ip_addr.trim() === "") throw new EndpointInputError(`${field}.ip_addr`, "must be a non-empty string");
      const p = typeof port === "string" && /^\d+$/.test(port.trim()) ? Number(port) : port;
      if (typeof p !== "number" || !Number.isInteger(p) || p < 1 || p > 65535)
        throw new EndpointInputError(`${field}.port`, `must be a port number 1-65535, got ${JSON.stringify(port)}`);
      const host = ip_addr.trim();
      // A bare IPv6 address needs brackets in a URL.
      const hostPart = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
      const baseUrl = /^https?:\/\//.test(host) ? `${host.replace(/\/+$/, "")}:${p}` : `http://${hostPart}:${p}`;
      out.push(checkNew({ kind, name: key, baseUrl }, field));
    });
  }
  return { endpoints: out, ignoredKeys };
}

/** Imports a ToolOrchestra config in one batch: all entries are upserted, or none. */
export async function importToolOrchestraConfig({
  db,
  config,
}: {
  db: Db;
  config: unknown;
}): Promise<{ endpoints: Endpoint[]; ignoredKeys: string[] }> {
  const parsed = parseToolOrchestraConfig(config);
  if (parsed.endpoints.length === 0) return { endpoints: [], ignoredKeys: parsed.ignoredKeys };
  const now = Date.now();
  const statements = parsed.endpoints.map((e) => upsertStatement(db, e, now));
  const results = await db.batch(statements as [(typeof statements)[number], ...(typeof statements)[number][]]);
  return { endpoints: results.map((rows) => toEndpoint((rows as any[])[0])), ignoredKeys: parsed.ignoredKeys };
}
