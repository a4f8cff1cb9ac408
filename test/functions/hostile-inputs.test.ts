// bench/hostile-inputs.ts as a test: every mutating route of a real server on 127.0.0.1 meets
// malformed, oversize, deep, non-finite, wrong-type, wrong-media-type and cross-origin input.
// None may be a 5xx or be accepted, each refusal names what is wrong, and nothing is stored.
import { expect, test } from "bun:test";
import { buildCases, runCases, startTarget, summarize } from "../../bench/hostile-inputs";

test("hostile input to every mutating route: no 5xx, nothing accepted, the field named, nothing stored", async () => {
  const target = await startTarget();
  try {
    const before = await target.counts();
    const cases = buildCases(target.app.routes);
    // every mutating route is in the table
    const mutating = target.app.routes.filter((r) => !["GET", "HEAD", "OPTIONS"].includes(r.method)).map((r) => `${r.method} ${r.path}`);
    expect(mutating.filter((r) => !cases.some((c) => c.route === r))).toEqual([]);
    const outcomes = await runCases({ base: target.base, token: target.token, cases });
    const s = summarize(outcomes);
    const bad = outcomes.filter((o) => o.kind !== "named").map((o) => `${o.kind} ${o.status} ${o.c.route} · ${o.c.what}: ${o.message}`);
    expect(bad).toEqual([]);
    expect(s["5xx"]).toBe(0);
    expect(s.accepted).toBe(0);
    expect(s.tried).toBeGreaterThan(300);
    expect(await target.counts()).toEqual(before);
  } finally {
    await target.stop();
  }
}, 120_000);
