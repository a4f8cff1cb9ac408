import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { DEFAULT_CORPUS, loadCorpus } from "../../sim/corpus";
import { makeCorpus, readCorpusSeed } from "../../sim/make-corpus";
import { type RetrievalSim, startRetrievalSim } from "../../sim/retrieval";
import { fetchError, postJson, waitFor } from "./_helpers";

describe("retrieval simulator", () => {
  let sim: RetrievalSim;
  const retrieve = (body: unknown, headers?: Record<string, string>, signal?: AbortSignal) => postJson(`${sim.url}/retrieve`, body, headers, signal);
  beforeAll(async () => {
    sim = await startRetrievalSim({ seed: 1 });
  });
  afterAll(() => sim.stop());

  test("the list shape has one ranked list of {document: {id, contents}, score} per query", async () => {
    const res = await retrieve({ queries: ["Charlotte Bronte", "Jackie Robinson Brooklyn Dodgers"], topk: 4, return_scores: true });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toHaveLength(2);
    for (const list of body) {
      expect(list).toHaveLength(4);
      for (const hit of list) {
        expect(typeof hit.document.id).toBe("string");
        expect(hit.document.contents).toContain("\n");
        expect(typeof hit.score).toBe("number");
      }
      const scores = list.map((h: { score: number }) => h.score);
      expect(scores).toEqual([...scores].sort((x, y) => y - x));
    }
    expect(body[1][0].document.contents).toStartWith("Jackie Robinson\n");
  });

  test("the wrapped shape puts the same lists under result", async () => {
    const body = { queries: ["Punxsutawney Phil"], topk: 3, return_scores: true };
    const plain = await (await retrieve(body)).json();
    sim.update({ shape: "wrapped" });
    try {
      expect(await (await retrieve(body)).json()).toEqual({ result: plain });
    } finally {
      sim.update({ shape: "list" });
    }
  });

  test("return_scores false returns bare documents", async () => {
    const body = await (await retrieve({ queries: ["Brooklyn Dodgers"], topk: 2, return_scores: false })).json();
    expect(Object.keys(body[0][0]).sort()).toEqual(["contents", "id"]);
  });

  test("a query made of a passage's title finds that passage first", async () => {
    const passages = loadCorpus(DEFAULT_CORPUS);
    const picked = passages.filter((_, i) => i % 97 === 0);
    expect(picked.length).toBeGreaterThan(20);
    const body = await (await retrieve({ queries: picked.map((p) => p.title), topk: 1, return_scores: true })).json();
    let first = 0;
    picked.forEach((p, i) => {
      if (body[i][0].document.id === p.id) first++;
    });
    // Titles are unique in the corpus; allow a couple of generic ones ("August") to lose.
    expect(first / picked.length).toBeGreaterThanOrEqual(0.9);
  });

  test("a bad body is a 422 naming each bad field", async () => {
    const res = await retrieve({ queries: "not a list", topk: 0, return_scores: "yes" });
    expect(res.status).toBe(422);
    const { detail } = await res.json();
    expect(detail.map((d: { loc: string[] }) => d.loc.join("."))).toEqual(["body.queries", "body.topk", "body.return_scores"]);
    const missing = await (await retrieve({ topk: 3 })).json();
    expect(missing.detail[0]).toMatchObject({ type: "missing", loc: ["body", "queries"] });
    const notJson = await fetch(`${sim.url}/retrieve`, { method: "POST", body: "{nope" });
    expect(notJson.status).toBe(422);
  });

  test("faults: 429 with Retry-After, 500, 503, malformed JSON, reset and hang", async () => {
    const q = { queries: ["x"], topk: 1, return_scores: true };
    const r429 = await retrieve(q, { "x-sim-fault": "429" });
    expect(r429.status).toBe(429);
    expect(r429.headers.get("retry-after")).toBe("1");
    expect((await retrieve(q, { "x-sim-fault": "500" })).status).toBe(500);
    expect((await retrieve(q, { "x-sim-fault": "503" })).status).toBe(503);
    const bad = await retrieve(q, { "x-sim-fault": "malformed_json" });
    expect(bad.status).toBe(200);
    const text = await bad.text();
    expect(() => JSON.parse(text)).toThrow();
    await fetchError(retrieve(q, { "x-sim-fault": "reset" }));
    const err = await fetchError(retrieve(q, { "x-sim-fault": "hang" }, AbortSignal.timeout(250)));
    expect(["TimeoutError", "AbortError"]).toContain(err.name);
    expect((await retrieve(q, { "x-sim-fault": "stream_cut" })).status).toBe(400);
  });

  test("the fault queue and latency come from settings", async () => {
    const before = sim.stats().byFault;
    sim.update({ faults: { queue: ["503", "500"] }, latency: { ms: 120 } });
    try {
      const q = { queries: ["x"], topk: 1 };
      expect((await retrieve(q)).status).toBe(503);
      expect((await retrieve(q)).status).toBe(500);
      const t0 = performance.now();
      expect((await retrieve(q)).status).toBe(200);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(110);
      const after = sim.stats().byFault;
      expect((after["503"] ?? 0) - (before["503"] ?? 0)).toBe(1);
      expect((after["500"] ?? 0) - (before["500"] ?? 0)).toBe(1);
    } finally {
      sim.update({ latency: { ms: 0 } });
    }
  });

  test("down refuses connections and up serves again on the same port", async () => {
    const port = sim.port;
    await sim.down();
    await fetchError(retrieve({ queries: ["x"] }));
    await sim.up();
    expect(sim.port).toBe(port);
    expect((await retrieve({ queries: ["x"] })).status).toBe(200);
  });

  test("a corpus given as passages is served instead of the shipped one", async () => {
    const own = await startRetrievalSim({ corpus: [{ id: "a", title: "Alpha", text: "first letter" }, { id: "b", contents: "Beta\nsecond letter" }] });
    try {
      const body = await (await postJson(`${own.url}/retrieve`, { queries: ["second"], topk: 2, return_scores: true })).json();
      expect(body[0][0].document).toEqual({ id: "b", contents: "Beta\nsecond letter" });
      expect(body[0]).toHaveLength(2);
    } finally {
      await own.stop();
    }
  });

  test("admin settings change the shape out of process and reject unknown fields", async () => {
    const ok = await postJson(`${sim.url}/admin/settings`, { shape: "wrapped" });
    expect((await ok.json()).shape).toBe("wrapped");
    await waitFor(async () => "result" in (await (await retrieve({ queries: ["x"] })).json()), 2_000, "wrapped shape");
    await postJson(`${sim.url}/admin/settings`, { shape: "list" });
    const bad = await postJson(`${sim.url}/admin/settings`, { colour: "red" });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.message).toContain("colour");
  });
});

test("the shipped corpus is exactly what sim/make-corpus.ts generates", () => {
  const generated = makeCorpus(readCorpusSeed());
  const shipped = loadCorpus(DEFAULT_CORPUS);
  expect(shipped).toEqual(generated);
  expect(shipped.length).toBeGreaterThan(2000);
  expect(new Set(shipped.map((p) => p.title)).size).toBe(shipped.length);
});
