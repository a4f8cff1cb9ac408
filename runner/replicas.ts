// A set of interchangeable servers for one model (or one retrieval backend). Picks the least
// busy replica, and keeps a circuit breaker per replica so a dead node costs a few failed
// tries, not one per call, until it comes back.

export type BreakerState = "closed" | "open" | "half_open";

export type ReplicaPoolOptions = {
  // consecutive infrastructure failures that open the breaker
  failureThreshold?: number;
  // how long an open replica is skipped before one probe call is let through
  coolDownMs?: number;
  now?: () => number;
};

export type ReplicaStats = {
  url: string;
  inFlight: number;
  calls: number;
  failures: number;
  consecutiveFailures: number;
  state: BreakerState;
  openUntil: number | null;
};

type Replica = {
  url: string;
  inFlight: number;
  calls: number;
  failures: number;
  consecutiveFailures: number;
  openUntil: number | null;
  probing: boolean;
};

/** What a finished call tells the pool. `neutral`: says nothing about the replica's health. */
export type ReplicaOutcome = "success" | "failure" | "neutral";

export type ReplicaLease = {
  url: string;
  release(outcome: ReplicaOutcome): void;
};

export class NoReplicaError extends Error {
  constructor(readonly pool: string) {
    super(`no endpoint configured for '${pool}'`);
  }
}

/** Strips trailing slashes so "http://h:1/" and "http://h:1" are one replica. */
export function normalizeBaseUrl(url: string): string {
  return url.trim().replace(/\/+$/, "");
}

export class ReplicaPool {
  readonly name: string;
  private replicas: Replica[] = [];
  private rr = 0;
  private readonly threshold: number;
  private readonly coolDownMs: number;
  private readonly now: () => number;

  constructor(name: string, urls: string[] = [], options: ReplicaPoolOptions = {}) {
    this.name = name;
    this.threshold = Math.max(1, options.failureThreshold ?? 3);
    this.coolDownMs = Math.max(0, options.coolDownMs ?? 15_000);
    this.now = options.now ?? Date.now;
    this.update(urls);
  }

  get size(): number {
    return this.replicas.length;
  }

  urls(): string[] {
    return this.replicas.map((r) => r.url);
  }

  /**
   * Replaces the set of replicas. Survivors keep their counters and breaker; calls in flight
   * on a removed replica finish normally (their lease still points at the old object).
   */
  update(urls: string[]): void {
    const byUrl = new Map(this.replicas.map((r) => [r.url, r]));
    const next: Replica[] = [];
    for (const raw of urls) {
      const url = normalizeBaseUrl(raw);
      if (next.some((r) => r.url === url)) continue;
      next.push(
        byUrl.get(url) ?? {
          url,
          inFlight: 0,
          calls: 0,
          failures: 0,
          consecutiveFailures: 0,
          openUntil: null,
          probing: false,
        },
      );
    }
    this.replicas = next;
  }

  private stateOf(r: Replica, now: number): BreakerState {
    if (r.openUntil == null) return "closed";
    return now >= r.openUntil ? "half_open" : "open";
  }

  /**
   * Takes a replica for one call. `avoid` (the replica that just failed) is skipped when any
   * other usable replica exists. Throws NoReplicaError only when the pool is empty: if every
   * replica is open, the one whose cool-down ends first is tried rather than failing untried.
   */
  acquire(avoid?: string | null): ReplicaLease {
    if (this.replicas.length === 0) throw new NoReplicaError(this.name);
    const now = this.now();
    const usable = this.replicas.filter((r) => {
      const s = this.stateOf(r, now);
      return s === "closed" || (s === "half_open" && !r.probing);
    });
    const preferred = avoid ? usable.filter((r) => r.url !== normalizeBaseUrl(avoid)) : usable;
    const candidates = preferred.length > 0 ? preferred : usable;
    let chosen: Replica;
    if (candidates.length > 0) {
      // Fewest in flight; ties broken round-robin so equal replicas share the load.
      const min = Math.min(...candidates.map((r) => r.inFlight));
      const tied = candidates.filter((r) => r.inFlight === min);
      chosen = tied[this.rr++ % tied.length];
    } else {
      chosen = this.replicas.reduce((a, b) => ((a.openUntil ?? 0) <= (b.openUntil ?? 0) ? a : b));
    }
    const probe = this.stateOf(chosen, now) !== "closed";
    if (probe) chosen.probing = true;
    chosen.inFlight++;
    chosen.calls++;
    let released = false;
    return {
      url: chosen.url,
      release: (outcome) => {
        if (released) return;
        released = true;
        chosen.inFlight--;
        if (probe) chosen.probing = false;
        if (outcome === "success") {
          chosen.consecutiveFailures = 0;
          chosen.openUntil = null;
        } else if (outcome === "failure") {
          chosen.failures++;
          chosen.consecutiveFailures++;
          // A failed probe re-opens at once; otherwise open on reaching the threshold.
          if (probe || chosen.consecutiveFailures >= this.threshold) chosen.openUntil = this.now() + this.coolDownMs;
        }
      },
    };
  }

  stats(): ReplicaStats[] {
    const now = this.now();
    return this.replicas.map((r) => ({
      url: r.url,
      inFlight: r.inFlight,
      calls: r.calls,
      failures: r.failures,
      consecutiveFailures: r.consecutiveFailures,
      state: this.stateOf(r, now),
      openUntil: r.openUntil,
    }));
  }
}
