// The experiment routes over HTTP and the statistics behind them: every bad input is a 400
// naming its field and writes nothing; the estimators match values worked by hand.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { passAtK, passHatK, twoProportionP, wilsonInterval, computeRunStats, expandSweep } from "../../db/experiments";
import { countRows } from "../../db/runs";
import { AUTH, makeApp, tasksOf, type TestApp } from "./_app";

let t: TestApp;

beforeEach(async () => {
  t = await makeApp();
});

afterEach(() => t.close());

async function submit(body: Record<string, unknown> = {}): Promise<number> {
  const [res, out] = await t.req("/v1/runs", { method: "POST", headers: AUTH, json: { name: "base", benchmark: "frames", tasks: tasksOf(3), ...body } });
  expect(res.status).toBe(201);
  return out.id;
}

describe("statistics", () => {
  test("the Wilson interval matches the textbook values and stays inside [0, 1]", () => {
    const i = wilsonInterval(8, 10)!;
    expect(i.lo).toBeCloseTo(0.4902, 4);
    expect(i.hi).toBeCloseTo(0.9433, 4);
    expect(wilsonInterval(0, 5)!.lo).toBe(0);
    expect(wilsonInterval(5, 5)!.hi).toBe(1);
    expect(wilsonInterval(0, 0)).toBeNull();
  });

  test("pass@k and pass^k are the unbiased estimators", () => {
    // n = 5 tries, c = 2 correct: pass@2 = 1 - C(3,2)/C(5,2) = 1 - 3/10; pass^2 = C(2,2)/C(5,2) = 1/10
    expect(passAtK(5, 2, 2)).toBeCloseTo(0.7, 12);
    expect(passHatK(5, 2, 2)).toBeCloseTo(0.1, 12);
    expect(passAtK(5, 2, 1)).toBeCloseTo(0.4, 12);
    expect(passHatK(5, 2, 1)).toBeCloseTo(0.4, 12);
    expect(passAtK(3, 0, 3)).toBe(0);
    expect(passHatK(3, 3, 3)).toBeCloseTo(1, 12);
    expect(() => passAtK(2, 1, 3)).toThrow(RangeError);
  });

  test("a two-proportion test separates 90/100 from 50/100 but not 6/10 from 5/10", () => {
    expect(twoProportionP(90, 100, 50, 100)!).toBeLessThan(0.001);
    expect(twoProportionP(6, 10, 5, 10)!).toBeGreaterThan(0.5);
    expect(twoProportionP(1, 0, 1, 1)).toBeNull();
  });

  test("run statistics: questions always right, always wrong and mixed", () => {
    const s = computeRunStats({
      runId: 1,
      repeats: 2,
      tasks: 6,
      questions: [
        { external_id: "a", tries: 2, correct: 2 },
        { external_id: "b", tries: 2, correct: 0 },
        { external_id: "c", tries: 2, correct: 1 },
      ],
    });
    expect(s).toMatchObject({ finished: 6, correct: 3, accuracy: 0.5, consistency: { all_correct: 1, all_wrong: 1, mixed: 1 } });
    expect(s.pass_at_k[2]).toBeCloseTo((1 + 0 + 1) / 3, 12);
    expect(s.pass_hat_k[2]).toBeCloseTo((1 + 0 + 0) / 3, 12);
  });

  test("a sweep is every combination, the first --vary changing slowest", () => {
    expect(expandSweep([{ path: "a", values: [1, 2] }, { path: "b.c", values: ["x", "y"] }])).toEqual([
      { a: 1, "b.c": "x" },
      { a: 1, "b.c": "y" },
      { a: 2, "b.c": "x" },
      { a: 2, "b.c": "y" },
    ]);
  });
});

describe("bad input names its field and writes nothing", () => {
  test("rerun", async () => {
    const id = await submit();
    const before = await countRows({ db: t.db });
    const cases: [unknown, number, RegExp][] = [
      [{ select: "everything" }, 400, /^select: expected "failed"/],
      [{ select: { ids: [] } }, 400, /select/],
      [{ select: "failed" }, 409, /no task of run \d+ matches failed/],
      [{ select: { ids: ["t0", "nope"] } }, 400, /^ids: 1 not in run \d+ \(first: "nope"\)/],
      [{ select: "not_succeeded", config: { max_rounds: 0 } }, 400, /config\.max_rounds: /],
      [{ select: "not_succeeded", config: { orchestrator: { maxTokens: 9 } } }, 400, /^config\.orchestrator\.maxTokens: unknown field, did you mean max_tokens\?$/],
      [{ select: "not_succeeded", priority: 1.5 }, 400, /^priority/],
      [{ select: "not_succeeded", max_concurrency: 0 }, 400, /^max_concurrency/],
    ];
    for (const [body, status, message] of cases) {
      const [res, out] = await t.req(`/v1/runs/${id}/rerun`, { method: "POST", headers: AUTH, json: body });
      expect(`${JSON.stringify(body)} → ${res.status}`).toBe(`${JSON.stringify(body)} → ${status}`);
      expect(out.error.message).toMatch(message);
    }
    expect(await countRows({ db: t.db })).toEqual(before);
    const [missing] = await t.req("/v1/runs/nope/rerun", { method: "POST", headers: AUTH, json: { select: "failed" } });
    expect(missing.status).toBe(404);
  });

  test("controls", async () => {
    const id = await submit();
    const [none, out] = await t.req(`/v1/runs/${id}/controls`, { method: "POST", headers: AUTH, json: {} });
    expect(none.status).toBe(400);
    expect(out.error.message).toContain("priority and/or max_concurrency");
    const [bad, out2] = await t.req(`/v1/runs/${id}/controls`, { method: "POST", headers: AUTH, json: { max_concurrency: -1 } });
    expect(bad.status).toBe(400);
    expect(out2.error.message).toMatch(/^max_concurrency/);
    const [ok, set] = await t.req(`/v1/runs/${id}/controls`, { method: "POST", headers: AUTH, json: { priority: 3, max_concurrency: 2 } });
    expect(ok.status).toBe(200);
    expect(set).toEqual({ id, priority: 3, max_concurrency: 2 });
    const [, cleared] = await t.req(`/v1/runs/${id}/controls`, { method: "POST", headers: AUTH, json: { max_concurrency: null } });
    expect(cleared).toEqual({ id, priority: 3, max_concurrency: null });
    const [anon] = await t.req(`/v1/runs/${id}/controls`, { method: "POST", json: { priority: 1 } });
    expect(anon.status).toBe(401);
  });

  test("sweeps", async () => {
    const body = { name: "sw", benchmark: "frames", tasks: tasksOf(2), vary: [{ path: "max_rounds", values: [5, 6] }] };
    const cases: [unknown, RegExp][] = [
      [{ ...body, vary: [] }, /^vary: expected at least one/],
      [{ ...body, vary: [{ path: "a..b", values: [1] }] }, /^vary\[0\]\.path: expected a dotted configuration path/],
      [{ ...body, vary: [{ path: "max_rounds", values: [5, -1] }] }, /config \(at max_rounds=-1\)\.max_rounds/],
      [{ ...body, vary: [{ path: "max_rounds", values: [1] }, { path: "max_rounds", values: [2] }] }, /max_rounds is varied twice/],
      [{ ...body, vary: [{ path: "maxRounds", values: [1] }] }, /^vary\[0\]\.path: maxRounds: unknown field, did you mean max_rounds\?$/],
      [{ ...body, config: { queryLlm: {} } }, /^config\.queryLlm: unknown field, did you mean query_llm\?$/],
      [{ ...body, vary: [{ path: "a", values: Array.from({ length: 9 }, (_, i) => i) }, { path: "b", values: Array.from({ length: 9 }, (_, i) => i) }] }, /81 combinations; at most 64/],
      [{ ...body, repeats: 0 }, /^repeats/],
      [{ ...body, tasks: [{ id: "x" }] }, /^tasks\[0\]\.question/],
    ];
    for (const [b, message] of cases) {
      const [res, out] = await t.req("/v1/sweeps", { method: "POST", headers: AUTH, json: b });
      expect(`${message} → ${res.status}`).toBe(`${message} → 400`);
      expect(out.error.message).toMatch(message);
    }
    expect(await countRows({ db: t.db })).toEqual({ runs: 0, tasks: 0 });
    const [dry, planned] = await t.req("/v1/sweeps", { method: "POST", headers: AUTH, json: { ...body, dry_run: true } });
    expect(dry.status).toBe(200);
    expect(planned.sweep_id).toBeNull();
    expect(planned.runs.map((r: any) => r.name)).toEqual(["sw max_rounds=5", "sw max_rounds=6"]);
    expect(await countRows({ db: t.db })).toEqual({ runs: 0, tasks: 0 });
    const [made, created] = await t.req("/v1/sweeps", { method: "POST", headers: AUTH, json: { ...body, repeats: 3 } });
    expect(made.status).toBe(201);
    expect(await countRows({ db: t.db })).toEqual({ runs: 2, tasks: 12 });
    const [rep, report] = await t.req(`/v1/sweeps/${created.sweep_id}/report`, { headers: AUTH });
    expect(rep.status).toBe(200);
    expect(report.rows.map((r: any) => [r.values, r.tasks, r.finished, r.accuracy])).toEqual([
      [{ max_rounds: 5 }, 6, 0, null],
      [{ max_rounds: 6 }, 6, 0, null],
    ]);
    const [nf] = await t.req("/v1/sweeps/999/report", { headers: AUTH });
    expect(nf.status).toBe(404);
  });

  test("repeats on submit: K tasks per id, and out-of-range K is refused", async () => {
    const id = await submit({ repeats: 4 });
    const rows = (await t.db.$client.execute({ sql: "SELECT external_id, repeat FROM tasks WHERE run_id = ? ORDER BY id", args: [id] })).rows as any[];
    expect(rows).toHaveLength(12);
    expect(rows.slice(0, 4).map((r) => [r.external_id, Number(r.repeat)])).toEqual([["t0", 0], ["t0", 1], ["t0", 2], ["t0", 3]]);
    const jsonl = tasksOf(2).map((r) => JSON.stringify(r)).join("\n");
    const [viaJsonl, made] = await t.req("/v1/runs?name=j&benchmark=frames&repeats=2&priority=-3&max_concurrency=1", {
      method: "POST",
      headers: { ...AUTH, "content-type": "application/x-ndjson" },
      body: jsonl,
    });
    expect(viaJsonl.status).toBe(201);
    expect(made.tasks).toBe(4);
    const [run] = (await t.db.$client.execute({ sql: "SELECT repeats, priority, max_concurrency FROM runs WHERE id = ?", args: [made.id] })).rows as any[];
    expect({ ...run }).toMatchObject({ repeats: 2, priority: -3, max_concurrency: 1 });
    const [badJsonl, why] = await t.req("/v1/runs?name=j2&benchmark=frames&repeats=two", { method: "POST", headers: { ...AUTH, "content-type": "application/x-ndjson" }, body: jsonl });
    expect(badJsonl.status).toBe(400);
    expect(why.error.message).toMatch(/^repeats/);
    const [bad, out] = await t.req("/v1/runs", { method: "POST", headers: AUTH, json: { name: "x", benchmark: "frames", tasks: tasksOf(1), repeats: 101 } });
    expect(bad.status).toBe(400);
    expect(out.error.message).toMatch(/^repeats/);
  });
});
