// The endpoint registry: where each served model and retrieval backend lives. Runners re-read
// it while running, so adding or disabling a row steers calls without a restart.
import { and, asc, eq, getTableColumns, inArray, isNull, sql } from "drizzle-orm";
import { loadRunConfig } from "./run-config";
import { needsOf, unmetNeeds, type Need, type Served, type UnmetNeed } from "./run-needs";
import type { Db } from "./client";
import { DbError } from "./errors";
import { claimTasks, type ClaimedTask } from "./queue";
import { dbNowMs, endpoints, runs } from "./schema";

export type EndpointKind = "model" | "retrieval";
export const ENDPOINT_KINDS = ["model", "retrieval"] as const;

export const ENDPOINT_STATES = ["healthy", "draining", "gone"] as const;
export type EndpointState = (typeof ENDPOINT_STATES)[number];
export const ENDPOINT_ROLES = ["orchestrator", "expert_llm", "query_llm", "retrieval", "judge"] as const;
export type EndpointRole = (typeof ENDPOINT_ROLES)[number];

// Long enough for any Hugging Face repo id; short enough that a pasted document is refused.
export const MAX_ENDPOINT_NAME = 200;

export type Endpoint = {
  id: number;
  kind: string;
  name: string;
  baseUrl: string;
  enabled: boolean;
  createdAt: number;
  updatedAt: number;
  // healthy | draining | gone: gone when its lease ran out (read-time, from the DB clock)
  state: EndpointState;
  role: string | null;
  service: string | null;
  leaseExpiresAt: number | null;
  lastHeartbeatAt: number | null;
  node: string | null;
  slurmJobId: string | null;
  slurmArrayJobId: string | null;
  slurmArrayTaskId: string | null;
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

const HOST_LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/** A host name, an IPv4 address, or an IPv6 address (bare or in brackets); nothing else. */
export function isHostOrIp(host: string): boolean {
  if (host.length === 0 || host.length > 253) return false;
  const inner = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (inner.includes(":")) return /^[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?$/.test(inner) && inner.split(":").length <= 9;
  if (inner !== host) return false;
  return host.split(".").every((label) => HOST_LABEL.test(label));
}

/** The URL with any user:password@ replaced, for everything shown or returned to a user. */
export function redactUrl(url: string): string {
  return url.replace(/^(https?:\/\/)[^/@]*@/i, "$1***@");
}

type Row = typeof endpoints.$inferSelect;

function toEndpoint(r: Row): Endpoint {
  return {
    id: r.id,
    kind: r.kind,
    name: r.name,
    baseUrl: r.baseUrl,
    enabled: Boolean(r.enabled),
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    state: r.state as EndpointState,
    role: r.role ?? null,
    service: r.service ?? null,
    leaseExpiresAt: r.leaseExpiresAt ?? null,
    lastHeartbeatAt: r.lastHeartbeatAt ?? null,
    node: r.node ?? null,
    slurmJobId: r.slurmJobId ?? null,
    slurmArrayJobId: r.slurmArrayJobId ?? null,
    slurmArrayTaskId: r.slurmArrayTaskId ?? null,
  };
}

// An agent that stopped heartbeating is gone once its lease has run out; computed when read,
// so no sweeper has to run and a late heartbeat can still bring the row back.
const effectiveState = sql<string>`CASE WHEN ${endpoints.state} != 'gone' AND ${endpoints.leaseExpiresAt} IS NOT NULL
  AND ${endpoints.leaseExpiresAt} < ${dbNowMs} THEN 'gone' ELSE ${endpoints.state} END`;

function selectEndpoints(db: Db) {
  return db.select({ ...getTableColumns(endpoints), state: effectiveState }).from(endpoints);
}

/**
 * Endpoints by kind, name, id. A page starts after endpoint `after` (an id) in that order;
 * an id that no longer exists is refused rather than guessed at.
 */
export async function listEndpoints({
  db,
  enabledOnly = false,
  limit,
  after,
}: {
  db: Db;
  enabledOnly?: boolean;
  limit?: number;
  after?: number;
}): Promise<Endpoint[]> {
  const conds = [enabledOnly ? eq(endpoints.enabled, true) : undefined];
  if (after != null) {
    const [from] = await db.select({ kind: endpoints.kind, name: endpoints.name }).from(endpoints).where(eq(endpoints.id, after));
    if (!from) throw new DbError("invalid", "endpoints.invalid", `cursor: endpoint ${after} no longer exists; list again from the start`);
    conds.push(sql`(${endpoints.kind}, ${endpoints.name}, ${endpoints.id}) > (${from.kind}, ${from.name}, ${after})`);
  }
  const q = selectEndpoints(db).where(and(...conds)).orderBy(asc(endpoints.kind), asc(endpoints.name), asc(endpoints.id));
  return (await (limit != null ? q.limit(limit) : q)).map(toEndpoint);
}

export async function getEndpoint({ db, id }: { db: Db; id: number }): Promise<Endpoint | null> {
  const [row] = await selectEndpoints(db).where(eq(endpoints.id, id));
  return row ? toEndpoint(row) : null;
}

/** What runners may call: enabled and healthy. */
export function isUsable(e: { enabled: boolean; state?: string }): boolean {
  return e.enabled && (e.state ?? "healthy") === "healthy";
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
  if (e.name.trim().length > MAX_ENDPOINT_NAME) throw new EndpointInputError(at("name"), `must be at most ${MAX_ENDPOINT_NAME} characters, got ${e.name.trim().length}`);
  const baseUrl = normalizeEndpointUrl(e.baseUrl, at("baseUrl"));
  if (!isHostOrIp(new URL(baseUrl).hostname)) throw new EndpointInputError(at("baseUrl"), `the host must be a host name or an IP address`);
  return { ...e, name: e.name.trim(), baseUrl };
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
  if (config == null || typeof config !== "object" || Array.isArray(config)) {
    const got = Array.isArray(config) ? "a list" : config === null ? "null" : `a ${typeof config}`;
    throw new EndpointInputError("config", `must be a JSON object mapping model names to lists of {ip_addr, port}, got ${got}`);
  }
  const out: NewEndpoint[] = [];
  const ignoredKeys: string[] = [];
  for (const [key, value] of Object.entries(config as Record<string, unknown>)) {
    if (typeof value === "string") {
      ignoredKeys.push(key);
      continue;
    }
    if (!Array.isArray(value)) throw new EndpointInputError(key, "must be a list of {ip_addr, port}");
    if (key.length > MAX_ENDPOINT_NAME) throw new EndpointInputError(key.slice(0, 40) + "…", `a model name must be at most ${MAX_ENDPOINT_NAME} characters`);
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
      checkIpAddr(host, `${field}.ip_addr`);
      // A bare IPv6 address needs brackets in a URL.
      const hostPart = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
      const baseUrl = /^https?:\/\//.test(host) ? `${host.replace(/\/+$/, "")}:${p}` : `http://${hostPart}:${p}`;
      out.push(checkNew({ kind, name: key, baseUrl }, field));
    });
  }
  return { endpoints: out, ignoredKeys };
}

// ip_addr is a host, or the reference's "http://host" form; never a path, query or user info.
function checkIpAddr(host: string, field: string): void {
  let bare = host;
  if (/^https?:\/\//i.test(host)) {
    let u: URL;
    try {
      u = new URL(host);
    } catch {
      throw new EndpointInputError(field, `must be a host name or IP address, got ${JSON.stringify(host)}`);
    }
    if (u.username || u.password || u.search || u.hash || (u.pathname && u.pathname !== "/") || u.port)
      throw new EndpointInputError(field, `must be a host name or IP address (no port, path, query or credentials), got ${JSON.stringify(redactUrl(host))}`);
    bare = u.hostname;
  }
  if (!isHostOrIp(bare)) throw new EndpointInputError(field, `must be a host name or IP address, got ${JSON.stringify(host.slice(0, 80))}`);
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

export type EndpointRegistration = {
  kind: EndpointKind;
  name: string;
  baseUrl: string;
  role: EndpointRole;
  service?: string | null;
  node?: string | null;
  slurmJobId?: string | null;
  slurmArrayJobId?: string | null;
  slurmArrayTaskId?: string | null;
};

/**
 * An endpoint agent's service is ready: upsert it as healthy with a lease. A row left by an
 * earlier job on the same host and port (gone, or never deregistered) is taken over.
 */
export async function registerEndpoint({ db, endpoint, leaseMs }: { db: Db; endpoint: EndpointRegistration; leaseMs: number }): Promise<Endpoint> {
  const e = checkNew(endpoint);
  if (!ENDPOINT_ROLES.includes(endpoint.role)) throw new EndpointInputError("role", `must be one of ${ENDPOINT_ROLES.join(", ")}`);
  const now = Date.now();
  const placement = {
    role: endpoint.role,
    service: endpoint.service ?? null,
    node: endpoint.node ?? null,
    slurmJobId: endpoint.slurmJobId ?? null,
    slurmArrayJobId: endpoint.slurmArrayJobId ?? null,
    slurmArrayTaskId: endpoint.slurmArrayTaskId ?? null,
  };
  const lease = sql`${dbNowMs} + ${leaseMs}`;
  const [row] = await db
    .insert(endpoints)
    .values({ kind: e.kind, name: e.name, baseUrl: e.baseUrl, enabled: true, createdAt: now, updatedAt: now, state: "healthy", leaseExpiresAt: lease, lastHeartbeatAt: dbNowMs, ...placement })
    .onConflictDoUpdate({
      target: [endpoints.name, endpoints.baseUrl],
      set: { kind: e.kind, enabled: true, state: "healthy", leaseExpiresAt: lease, lastHeartbeatAt: dbNowMs, updatedAt: now, ...placement },
    })
    .returning();
  return toEndpoint(row);
}

/**
 * Extends the lease. A row that went gone (the agent was paused past its lease) comes back
 * healthy; a draining one stays draining. null when the row no longer exists.
 */
export async function heartbeatEndpoint({ db, id, leaseMs }: { db: Db; id: number; leaseMs: number }): Promise<Endpoint | null> {
  const [row] = await db
    .update(endpoints)
    .set({
      leaseExpiresAt: sql`${dbNowMs} + ${leaseMs}`,
      lastHeartbeatAt: dbNowMs,
      state: sql`CASE WHEN ${endpoints.state} = 'draining' THEN 'draining' ELSE 'healthy' END`,
    })
    .where(eq(endpoints.id, id))
    .returning();
  return row ? toEndpoint(row) : null;
}

/** No new calls from here on; calls in flight finish. null when the row no longer exists. */
export async function drainEndpoint({ db, id }: { db: Db; id: number }): Promise<Endpoint | null> {
  const [row] = await db.update(endpoints).set({ state: "draining", updatedAt: Date.now() }).where(eq(endpoints.id, id)).returning();
  return row ? toEndpoint(row) : null;
}

/** The service has stopped: the row disappears. False when there was none. */
export async function deregisterEndpoint({ db, id }: { db: Db; id: number }): Promise<boolean> {
  const rows = await db.delete(endpoints).where(eq(endpoints.id, id)).returning({ id: endpoints.id });
  return rows.length > 0;
}

export type WaitingRun = { runId: number; runName: string; needs: UnmetNeed[] };

// A run's needs follow from its config, which never changes: parse each config once (per
// database, since run ids repeat across databases).
const needsCaches = new WeakMap<Db, Map<number, { needs: Need[]; inline: Served[] }>>();

function needsOfRun(db: Db, run: { id: number; benchmark: string; config: unknown }): { needs: Need[]; inline: Served[] } {
  let needsCache = needsCaches.get(db);
  if (!needsCache) needsCaches.set(db, (needsCache = new Map()));
  let hit = needsCache.get(run.id);
  if (!hit) {
    const config = loadRunConfig({ benchmark: run.benchmark, config: run.config });
    let inline: Served[] = [];
    try {
      inline = config.endpoints ? parseToolOrchestraConfig(config.endpoints).endpoints : [];
    } catch {
      inline = [];
    }
    hit = { needs: needsOf(config), inline };
    if (needsCache.size > 1000) needsCache.clear();
    needsCache.set(run.id, hit);
  }
  return hit;
}

/**
 * Runs with open tasks (not canceled) that some model or retrieval pool they call has no
 * usable endpoint for, with what each waits for. A run whose config cannot be read is not
 * reported here: its tasks fail with the config error, which says more.
 */
export async function listWaitingRuns({ db, runId }: { db: Db; runId?: number | null }): Promise<WaitingRun[]> {
  // One statement (each one costs a round trip through the driver, on every claim): the open
  // runs, each with the usable endpoints (the uncorrelated subquery is evaluated once).
  const res = await db.run(sql`
    SELECT r.id, r.name, r.benchmark,
      (SELECT json_group_array(json_array(e.kind, e.name)) FROM endpoints e
        WHERE e.enabled = 1 AND e.state = 'healthy' AND (e.lease_expires_at IS NULL OR e.lease_expires_at >= ${dbNowMs})) AS served
    FROM runs r
    WHERE r.canceled_at IS NULL ${runId != null ? sql`AND r.id = ${runId}` : sql``}
      AND EXISTS (SELECT 1 FROM run_counts c WHERE c.run_id = r.id AND (c.queued > 0 OR c.running > 0))`);
  const openRuns = ((res as any).rows ?? []) as { id: number; name: string; benchmark: string; served: string }[];
  if (openRuns.length === 0) return [];
  // Configs can be large (prompts, tools): read only those not parsed before, not on every claim.
  const cache = needsCaches.get(db);
  const unread = openRuns.filter((r) => !cache?.has(Number(r.id))).map((r) => Number(r.id));
  const configs = new Map<number, unknown>();
  if (unread.length > 0)
    for (const r of await db.select({ id: runs.id, config: runs.config }).from(runs).where(inArray(runs.id, unread))) configs.set(r.id, r.config);
  const served: Served[] = (JSON.parse(openRuns[0]!.served) as [string, string][]).map(([kind, name]) => ({ kind, name }));
  const out: WaitingRun[] = [];
  for (const row of openRuns) {
    const run = { id: Number(row.id), name: String(row.name), benchmark: String(row.benchmark) };
    let needs: { needs: Need[]; inline: Served[] };
    try {
      needs = needsOfRun(db, { ...run, config: configs.get(run.id) });
    } catch {
      continue;
    }
    const unmet = unmetNeeds(needs.needs, served, needs.inline);
    if (unmet.length > 0) out.push({ runId: run.id, runName: run.name, needs: unmet });
  }
  return out;
}

/**
 * claimTasks that skips runs waiting for an endpoint (when asked): their tasks stay queued
 * with their attempts and backoff untouched until what they need is served.
 */
export async function claimReadyTasks(opts: Parameters<typeof claimTasks>[0] & { waitForEndpoints?: boolean }): Promise<ClaimedTask[]> {
  const { waitForEndpoints, ...claim } = opts;
  if (!waitForEndpoints) return claimTasks(claim);
  const waiting = await listWaitingRuns({ db: claim.db, runId: claim.runId });
  if (claim.runId != null && waiting.length > 0) return [];
  return claimTasks({ ...claim, excludeRunIds: [...(claim.excludeRunIds ?? []), ...waiting.map((w) => w.runId)] });
}
