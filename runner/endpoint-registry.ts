// Replica pools per model name and per retrieval backend, kept in step with the endpoints
// table while a runner works: a node replaced mid-run is picked up at the next refresh (or
// at once with refresh()), with no restart. Pools are long-lived objects, updated in place,
// so their in-flight counts and breakers survive a refresh.
import { isUsable } from "../db/endpoints";
import type { EndpointRow } from "./task-queue";
import { ReplicaPool, type ReplicaPoolOptions } from "./replicas";

export type StaticEndpoints = {
  // served model name → base URLs
  models?: Record<string, string[]>;
  // retrieval backend name (retrieval, wiki_retrieval) → base URLs
  retrieval?: Record<string, string[]>;
};

export type EndpointRegistryOptions = {
  // TaskQueue.listEndpoints, or anything returning the same rows
  source?: (() => Promise<EndpointRow[]>) | null;
  refreshMs?: number;
  // From a run's config. Used for a name only when the source has no healthy row for it,
  // so the registry can always override a stale config.
  fallback?: StaticEndpoints;
  pool?: ReplicaPoolOptions;
  // refresh failures (the source is down); the last good set stays in use meanwhile
  onError?: (err: unknown) => void;
};

type Kind = "model" | "retrieval";

export class EndpointRegistry {
  private readonly pools = new Map<string, ReplicaPool>();
  private rows: EndpointRow[] = [];
  private timer: ReturnType<typeof setInterval> | null = null;
  private inflight: Promise<void> | null = null;
  private readonly source: (() => Promise<EndpointRow[]>) | null;
  private readonly refreshMs: number;
  private readonly fallback: StaticEndpoints;
  private readonly poolOptions: ReplicaPoolOptions;
  private readonly onError: (err: unknown) => void;
  lastRefreshAt: number | null = null;

  constructor(options: EndpointRegistryOptions = {}) {
    this.source = options.source ?? null;
    this.refreshMs = options.refreshMs ?? 30_000;
    this.fallback = options.fallback ?? {};
    this.poolOptions = options.pool ?? {};
    this.onError = options.onError ?? ((err) => console.warn(`endpoint registry: refresh failed: ${(err as Error)?.message ?? err}`));
  }

  /** First load, then a refresh every refreshMs until stop(). */
  async start(): Promise<void> {
    await this.refresh();
    if (this.source && !this.timer && this.refreshMs > 0) {
      this.timer = setInterval(() => void this.refresh(), this.refreshMs);
      // The refresh loop alone must not keep a finished runner alive.
      (this.timer as any).unref?.();
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Re-reads the source now; concurrent callers share one read. Never throws. */
  refresh(): Promise<void> {
    if (!this.source) {
      this.apply();
      return Promise.resolve();
    }
    this.inflight ??= (async () => {
      try {
        this.rows = await this.source!();
        this.lastRefreshAt = Date.now();
      } catch (err) {
        this.onError(err);
      } finally {
        this.apply();
        this.inflight = null;
      }
    })();
    return this.inflight;
  }

  /** Re-reads the source unless the last read is younger than ageMs. Never throws. */
  refreshIfOlderThan(ageMs: number): Promise<void> {
    if (this.source && this.lastRefreshAt != null && Date.now() - this.lastRefreshAt < ageMs) return Promise.resolve();
    return this.refresh();
  }

  modelPool(name: string): ReplicaPool {
    return this.pool("model", name);
  }

  retrievalPool(name: string): ReplicaPool {
    return this.pool("retrieval", name);
  }

  /** Every known pool and its replicas, for status output. */
  snapshot(): { kind: Kind; name: string; urls: string[] }[] {
    return [...this.pools.entries()].map(([key, pool]) => {
      const [kind] = key.split("\u0000") as [Kind];
      return { kind, name: pool.name, urls: pool.urls() };
    });
  }

  private pool(kind: Kind, name: string): ReplicaPool {
    const key = `${kind}\u0000${name}`;
    let pool = this.pools.get(key);
    if (!pool) {
      pool = new ReplicaPool(name, this.urlsFor(kind, name), this.poolOptions);
      this.pools.set(key, pool);
    }
    return pool;
  }

  private urlsFor(kind: Kind, name: string): string[] {
    // Only healthy endpoints get calls: a draining one finishes what it has (the pool keeps
    // counting those) but gets nothing new; a gone one is not called at all.
    const fromSource = this.rows.filter((r) => isUsable(r) && r.kind === kind && r.name === name).map((r) => r.baseUrl);
    if (fromSource.length > 0) return fromSource;
    // Registered but none healthy (all draining or gone): the config's list is no better.
    if (this.rows.some((r) => r.enabled && r.kind === kind && r.name === name && r.state != null)) return [];
    const table = kind === "model" ? this.fallback.models : this.fallback.retrieval;
    return table?.[name] ?? [];
  }

  private apply(): void {
    for (const [key, pool] of this.pools) {
      const [kind] = key.split("\u0000") as [Kind];
      pool.update(this.urlsFor(kind, pool.name));
    }
  }
}
