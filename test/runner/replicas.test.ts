import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { callChat } from "../../runner/llm-client";
import { ReplicaPool } from "../../runner/replicas";
import { startVllmSim, type VllmSim } from "../../sim/vllm";

describe("ReplicaPool selection and breaker", () => {
  test("picks the replica with the fewest calls in flight, round-robin among ties", () => {
    const pool = new ReplicaPool("m", ["http://a", "http://b", "http://c"]);
    const first = [pool.acquire(), pool.acquire(), pool.acquire()];
    expect(new Set(first.map((l) => l.url)).size).toBe(3);
    first[1].release("success");
    // b is now the only idle replica
    expect(pool.acquire().url).toBe(first[1].url);
  });

  test("ties rotate so equal replicas share the load", () => {
    const pool = new ReplicaPool("m", ["http://a", "http://b"]);
    const urls: string[] = [];
    for (let i = 0; i < 4; i++) {
      const l = pool.acquire();
      urls.push(l.url);
      l.release("success");
    }
    expect(urls.filter((u) => u === "http://a").length).toBe(2);
  });

  test("opens after N consecutive failures, lets one probe through after the cool-down, and closes on success", () => {
    let now = 1_000;
    const pool = new ReplicaPool("m", ["http://a", "http://b"], { failureThreshold: 2, coolDownMs: 500, now: () => now });
    const fail = (url: string) => {
      const l = pool.acquire(url === "http://a" ? "http://b" : "http://a");
      expect(l.url).toBe(url);
      l.release("failure");
    };
    fail("http://a");
    fail("http://a");
    expect(pool.stats().find((s) => s.url === "http://a")!.state).toBe("open");
    for (let i = 0; i < 3; i++) {
      const l = pool.acquire();
      expect(l.url).toBe("http://b");
      l.release("success");
    }
    now += 500;
    expect(pool.stats().find((s) => s.url === "http://a")!.state).toBe("half_open");
    const probe = pool.acquire("http://b");
    expect(probe.url).toBe("http://a");
    // while the probe is out, a is not handed out again
    const other = pool.acquire("http://b");
    expect(other.url).toBe("http://b");
    other.release("success");
    probe.release("success");
    expect(pool.stats().find((s) => s.url === "http://a")!).toMatchObject({ state: "closed", consecutiveFailures: 0 });
  });

  test("a failed probe re-opens the breaker for another cool-down", () => {
    let now = 0;
    const pool = new ReplicaPool("m", ["http://a", "http://b"], { failureThreshold: 1, coolDownMs: 100, now: () => now });
    pool.acquire("http://b").release("failure");
    now = 100;
    const probe = pool.acquire("http://b");
    expect(probe.url).toBe("http://a");
    probe.release("failure");
    expect(pool.stats()[0]).toMatchObject({ state: "open", openUntil: 200 });
  });

  test("neutral outcomes (rate limits, bad requests) never open the breaker", () => {
    const pool = new ReplicaPool("m", ["http://a"], { failureThreshold: 1 });
    for (let i = 0; i < 5; i++) pool.acquire().release("neutral");
    expect(pool.stats()[0].state).toBe("closed");
  });

  test("when every replica is open, the one whose cool-down ends first is tried", () => {
    let now = 0;
    const pool = new ReplicaPool("m", ["http://a", "http://b"], { failureThreshold: 1, coolDownMs: 1_000, now: () => now });
    pool.acquire("http://b").release("failure"); // a opens until 1000
    now = 300;
    pool.acquire("http://a").release("failure"); // b opens until 1300
    now = 400;
    expect(pool.acquire().url).toBe("http://a");
  });

  test("update keeps survivors' counters and breaker, drops removed ones, and in-flight leases still release", () => {
    let now = 0;
    const pool = new ReplicaPool("m", ["http://a", "http://b/"], { failureThreshold: 1, coolDownMs: 1_000, now: () => now });
    const onB = pool.acquire("http://a");
    expect(onB.url).toBe("http://b");
    pool.acquire("http://b").release("failure"); // a opens
    pool.update(["http://a", "http://c"]);
    expect(pool.urls()).toEqual(["http://a", "http://c"]);
    expect(pool.stats()[0]).toMatchObject({ url: "http://a", state: "open", calls: 1 });
    onB.release("success"); // b is gone: harmless
    expect(pool.acquire().url).toBe("http://c");
  });

  test("an empty pool throws a NoReplicaError naming it", () => {
    expect(() => new ReplicaPool("nobody").acquire()).toThrow(/nobody/);
  });
});

describe("dead replica over HTTP", () => {
  const MODEL = "sim/expert";
  let a: VllmSim;
  let b: VllmSim;

  beforeAll(async () => {
    a = await startVllmSim({ model: MODEL, mode: "expert" });
    b = await startVllmSim({ model: MODEL, mode: "expert" });
  });

  afterAll(async () => {
    await a.stop();
    await b.stop();
  });

  test(
    "a refused replica is skipped once its breaker opens and used again after it comes back",
    async () => {
      const pool = new ReplicaPool(MODEL, [a.url, b.url], { failureThreshold: 2, coolDownMs: 300 });
      const policy = { attempts: 3, perAttemptTimeoutMs: 2_000, deadlineMs: 10_000, baseDelayMs: 1, maxDelayMs: 5 };
      const call = () => callChat({ pool, role: "expert_llm", request: { model: MODEL, messages: [{ role: "user", content: "hi" }] }, policy });
      await a.down();
      // Every call still succeeds: a refused try moves to the other replica.
      for (let i = 0; i < 6; i++) {
        const r = await call();
        expect(r.endpoint).toBe(b.url);
      }
      const stateA = pool.stats().find((s) => s.url === a.url)!;
      expect(stateA.state).toBe("open");
      // Once open, a is no longer tried: its failure count stops at the threshold.
      expect(stateA.failures).toBe(2);

      await a.up();
      const before = a.stats().completed;
      const deadline = Date.now() + 10_000;
      // After the cool-down a probe goes to a, succeeds, and a is back in rotation.
      while (a.stats().completed === before && Date.now() < deadline) await call();
      expect(a.stats().completed).toBeGreaterThan(before);
      expect(pool.stats().find((s) => s.url === a.url)!.state).toBe("closed");
    },
    20_000,
  );
});
