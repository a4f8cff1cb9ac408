// POST /v1/runs of 100,000 tasks to a real `baton serve` on loopback, repeated.
//
//   bun bench/submit.ts                         # 100,000 tasks, 5 repetitions
//   bun bench/submit.ts --tasks 20000 --reps 3
//
// Starts `bun cli/baton.ts serve --port 0` on a temp database (with BATON_TOKEN set), then
// times each submit from the start of the request (body already serialized) to the 201,
// and separately the client's JSON.stringify. Every repetition is a new run in the same
// database, so later runs also pay for a bigger index. Each repetition also sends the same
// body to a bare Bun.serve that only parses it (the floor of any JSON submit on this machine,
// measured in the same run because the machine is shared), and to a bare store that also
// writes every row into Baton's schema (bench/bare-store.ts: the floor of any server that
// keeps these rows in SQLite). Reports median seconds, tasks/s and the ratios to both.
// Target (issue 12): 100k tasks accepted in <= 0.8 s.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startBareStore } from "./bare-store";

const { values } = parseArgs({ options: { tasks: { type: "string", default: "100000" }, reps: { type: "string", default: "5" } } });
const N = Number(values.tasks);
const reps = Number(values.reps);
const token = `bench-${crypto.randomUUID()}`;
const dir = mkdtempSync(join(tmpdir(), "baton-bench-submit-"));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// FRAMES-like rows: a question of ~150 characters, an answer, a couple of metadata fields.
const tasks = Array.from({ length: N }, (_, i) => ({
  id: i,
  question: `If my future wife has the same first name as the 15th first lady of the United States' mother, what is her name? (variant ${i})`,
  answer: `Jane Ballou ${i}`,
  reasoning_types: "Numerical reasoning | Multiple constraints",
  wiki_links: [`https://en.wikipedia.org/wiki/Item_${i}`],
}));

// BENCH_SERVER_PROF=DIR: a CPU profile of the server
const server = Bun.spawn([process.execPath, ...(process.env.BENCH_SERVER_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_SERVER_PROF}`] : []), join(import.meta.dir, "../cli/baton.ts"), "serve", "--port", "0", "--db", join(dir, "bench.db")], {
  stdout: "pipe",
  stderr: "inherit",
  env: { ...process.env, BATON_TOKEN: token },
});
try {
  const reader = server.stdout.getReader();
  let out = "";
  const deadline = Date.now() + 30_000;
  while (!/serving (http:\/\/\S+)/.test(out)) {
    if (Date.now() > deadline) throw new Error(`server did not start: ${out}`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`server exited: ${out}`);
    out += new TextDecoder().decode(value);
  }
  const base = /serving (http:\/\/\S+)/.exec(out)![1];
  const bare = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    maxRequestBodySize: 1 << 30,
    fetch: async (req) => Response.json({ tasks: ((await req.json()) as any).tasks.length }, { status: 201 }),
  });
  const store = await startBareStore({ dir });
  const seconds: number[] = [];
  const bareSeconds: number[] = [];
  const storeSeconds: number[] = [];
  const stringify: number[] = [];
  for (let r = 0; r < reps; r++) {
    let t = performance.now();
    const body = JSON.stringify({ name: `bench-${r}`, benchmark: "frames", tasks });
    stringify.push((performance.now() - t) / 1000);
    t = performance.now();
    const res = await fetch(`${base}/v1/runs`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body,
    });
    const json: any = await res.json();
    const s = (performance.now() - t) / 1000;
    if (res.status !== 201 || json.tasks !== N) throw new Error(`submit failed: ${res.status} ${JSON.stringify(json).slice(0, 300)}`);
    seconds.push(s);
    t = performance.now();
    const b = await fetch(`http://127.0.0.1:${bare.port}/v1/runs`, { method: "POST", headers: { "content-type": "application/json" }, body });
    if ((await b.json() as any).tasks !== N) throw new Error("the bare server did not parse the body");
    bareSeconds.push((performance.now() - t) / 1000);
    storeSeconds.push(await store.timeSubmit(body, N));
    console.log(`rep ${r + 1}: ${N} tasks (${(body.length / 1e6).toFixed(1)} MB) accepted in ${s.toFixed(2)} s = ${Math.round(N / s)} tasks/s; bare server ${bareSeconds[r].toFixed(2)} s; bare store ${storeSeconds[r].toFixed(2)} s`);
  }
  bare.stop(true);
  store.stop();
  const m = median(seconds);
  const mb = median(bareSeconds);
  console.log(`\nPOST /v1/runs, ${N} tasks, median of ${reps}: ${m.toFixed(2)} s = ${Math.round(N / m)} tasks/s (target <= 0.8 s: ${m <= 0.8 ? "met" : "MISSED"})`);
  console.log(`bare server parsing the same body, median: ${mb.toFixed(2)} s; ratio ${(m / mb).toFixed(2)}`);
  const ms = median(storeSeconds);
  console.log(`bare store (parse, then every row into Baton's schema with bun:sqlite, bench/bare-store.ts), median: ${ms.toFixed(2)} s; ratio ${(m / ms).toFixed(2)}`);
  console.log(`client JSON.stringify, median: ${median(stringify).toFixed(2)} s (not included above)`);
} finally {
  server.kill("SIGTERM");
  await server.exited;
  rmSync(dir, { recursive: true, force: true });
}
