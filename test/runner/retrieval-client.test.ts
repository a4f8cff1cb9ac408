// retrieve() over real loopback HTTP against the retrieval simulator.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import type { RetryPolicy } from "../../runner/http-policy";
import { ReplicaPool } from "../../runner/replicas";
import { retrieve } from "../../runner/retrieval-client";
import { startRetrievalSim, type RetrievalSim } from "../../sim/retrieval";

const FAST: Partial<RetryPolicy> = { attempts: 3, perAttemptTimeoutMs: 2_000, deadlineMs: 10_000, baseDelayMs: 5, maxDelayMs: 50, random: () => 1 };

let wiki: RetrievalSim;
let general: RetrievalSim;

beforeAll(async () => {
  wiki = await startRetrievalSim({ seed: 1 });
  general = await startRetrievalSim({ seed: 2, shape: "wrapped" });
});

afterEach(() => {
  for (const s of [wiki, general]) s.update({ faults: { queue: [], rates: {}, retryAfterS: 1 } });
});

afterAll(async () => {
  await wiki.stop();
  await general.stop();
});

function backends() {
  return [
    { name: "wiki_retrieval", pool: new ReplicaPool("wiki_retrieval", [wiki.url]) },
    { name: "retrieval", pool: new ReplicaPool("retrieval", [general.url]) },
  ];
}

describe("retrieve", () => {
  test("the primary answers with scored documents in the plain list shape", async () => {
    const r = await retrieve({ backends: backends(), query: "capital of France", topk: 3, policy: FAST });
    expect(r.status).toBe("ok");
    expect(r.backend).toBe("wiki_retrieval");
    expect(r.endpoint).toBe(wiki.url);
    expect(r.documents.length).toBe(3);
    expect(r.documents[0].contents.length).toBeGreaterThan(0);
    expect(typeof r.documents[0].score).toBe("number");
    expect(r.retries).toBe(0);
  });

  test("the wrapped {result: [[...]]} shape is read the same way", async () => {
    const r = await retrieve({ backends: backends().slice(1), query: "river", topk: 2, policy: FAST });
    expect(r.status).toBe("ok");
    expect(r.documents.length).toBe(2);
  });

  test.each([
    ["500", "server_error"],
    ["503", "server_error"],
    ["429", "rate_limited"],
    ["reset", "connection"],
    ["malformed_json", "malformed_response"],
  ] as const)("fault %s is retried on the same backend as %s", async (fault, outcome) => {
    wiki.update({ faults: { queue: [fault], retryAfterS: null } });
    const r = await retrieve({ backends: backends(), query: "q", topk: 2, policy: FAST });
    expect(r.status).toBe("ok");
    expect(r.attempts.map((a) => a.outcome)).toEqual([outcome, "ok"]);
    expect(r.retries).toBe(1);
  });

  test("a hung retriever ends at the per-attempt timeout and the fallback answers", async () => {
    wiki.update({ faults: { queue: ["hang"] } });
    const t0 = performance.now();
    const r = await retrieve({ backends: backends(), query: "q", topk: 2, policy: { ...FAST, attempts: 1, perAttemptTimeoutMs: 300 } });
    expect(r.status).toBe("fallback");
    expect(r.backend).toBe("retrieval");
    expect(r.attempts.map((a) => [a.backend, a.outcome])).toEqual([
      ["wiki_retrieval", "timeout"],
      ["retrieval", "ok"],
    ]);
    expect(performance.now() - t0).toBeLessThan(3_000);
  });

  test("the fallback is used when the primary is down", async () => {
    await wiki.down();
    try {
      const r = await retrieve({ backends: backends(), query: "q", topk: 2, policy: FAST });
      expect(r.status).toBe("fallback");
      expect(r.documents.length).toBe(2);
      expect(r.attempts.filter((a) => a.backend === "wiki_retrieval").map((a) => a.outcome)).toEqual(["connection", "connection", "connection"]);
      expect(r.retries).toBe(3);
    } finally {
      await wiki.up();
    }
  });

  test("with both down the result is retrieval_unavailable, empty, within the deadline", async () => {
    await wiki.down();
    await general.down();
    try {
      const t0 = performance.now();
      const r = await retrieve({ backends: backends(), query: "q", topk: 2, policy: FAST });
      expect(r.status).toBe("retrieval_unavailable");
      expect(r.documents).toEqual([]);
      expect(r.attempts.length).toBe(6);
      expect(r.retries).toBe(5);
      expect(r.ms).toBeGreaterThan(0);
      expect(performance.now() - t0).toBeLessThan(FAST.deadlineMs!);
    } finally {
      await wiki.up();
      await general.up();
    }
  });

  test("with both hanging the deadline bounds the whole retrieval", async () => {
    wiki.update({ faults: { queue: ["hang", "hang", "hang"] } });
    general.update({ faults: { queue: ["hang", "hang", "hang"] } });
    const t0 = performance.now();
    const r = await retrieve({ backends: backends(), query: "q", topk: 2, policy: { ...FAST, perAttemptTimeoutMs: 60_000, deadlineMs: 600 } });
    expect(r.status).toBe("retrieval_unavailable");
    // each backend got its share of the deadline
    expect(r.attempts.map((a) => [a.backend, a.outcome])).toEqual([
      ["wiki_retrieval", "deadline"],
      ["retrieval", "deadline"],
    ]);
    expect(performance.now() - t0).toBeLessThan(3_000);
  });

  test("a malformed shape is a failed attempt, named by path", async () => {
    const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => Response.json([[{ document: { id: 1 }, score: 0.5 }]]) });
    try {
      const r = await retrieve({
        backends: [{ name: "odd", pool: new ReplicaPool("odd", [`http://127.0.0.1:${server.port}`]) }],
        query: "q",
        topk: 1,
        policy: { ...FAST, attempts: 2 },
      });
      expect(r.status).toBe("retrieval_unavailable");
      expect(r.attempts.map((a) => a.outcome)).toEqual(["malformed_response", "malformed_response"]);
      expect(r.attempts[0].errorMessage).toContain("contents");
    } finally {
      server.stop(true);
    }
  });

  test("a 4xx is not retried on that backend; the fallback is asked instead", async () => {
    const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => Response.json({ detail: "bad" }, { status: 422 }) });
    try {
      const r = await retrieve({
        backends: [{ name: "v2", pool: new ReplicaPool("v2", [`http://127.0.0.1:${server.port}`]) }, backends()[1]],
        query: "q",
        topk: 1,
        policy: FAST,
      });
      expect(r.status).toBe("fallback");
      expect(r.attempts.map((a) => a.outcome)).toEqual(["bad_request", "ok"]);
    } finally {
      server.stop(true);
    }
  });

  test("a caller abort rejects at once, even while the retriever hangs", async () => {
    wiki.update({ faults: { queue: ["hang"] } });
    const ctl = new AbortController();
    const before = wiki.stats().requests;
    const fallbackBefore = general.stats().requests;
    const p = retrieve({ backends: backends(), query: "q", topk: 2, signal: ctl.signal, policy: { ...FAST, perAttemptTimeoutMs: 60_000, deadlineMs: 120_000 } });
    const deadline = Date.now() + 5_000;
    while (wiki.stats().requests === before && Date.now() < deadline) await Bun.sleep(5);
    const t0 = performance.now();
    ctl.abort();
    await expect(p).rejects.toThrow();
    expect(performance.now() - t0).toBeLessThan(500);
    // the fallback was not asked after the abort
    expect(general.stats().requests).toBe(fallbackBefore);
  });
});
