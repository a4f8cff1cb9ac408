// Throughput of callChat against a bare fetch loop, both hitting the same zero-latency vLLM
// simulator (run in its own process so the client side is measured alone).
//   bun bench/client-overhead.ts [rounds=5] [seconds=2] [concurrency=256]
// Each round measures five loops in rotating order, each for `seconds` with `concurrency` workers
// calling back to back:
//   bare fetch, non-streaming   fetch + res.json(): the body parsed once, nothing else
//   callChat, non-streaming     callChat with stream: false
//   bare fetch, streaming       fetch + res.text(): the whole SSE body read, NOT parsed
//   parse floor, streaming      fetch + body reader + eventsource-parser + JSON.parse of every
//                               event: the least work any client that reads the events must do
//   callChat, streaming         callChat (stream: true): every event parsed and accumulated,
//                               TTFT, per-attempt timeout, deadline, caller signal, replica lease
// Reports the median calls/s of each and callChat's ratio to bare fetch (target >= 0.8). The
// streaming floor shows how much of the streaming gap is the JSON every event costs, which no
// client can skip; the rest is callChat's own. Load averages are printed: on a shared machine a
// round's numbers move by 2x, so compare ratios from the same run, not numbers across runs.
// For the same reason a change is measured against the old client in the same run:
//   git show REV:runner/llm-client.ts > runner/llm-client.before.ts
//   BATON_BENCH_BEFORE=runner/llm-client.before.ts bun bench/client-overhead.ts
// adds a sixth loop, the old callChat streaming, and prints new / old.
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { callChat } from "../runner/llm-client";
import { ReplicaPool } from "../runner/replicas";
import { readSseBare } from "./bare-replay";

const MODEL = "bench/expert";

if (process.argv[2] === "--serve") {
  // Child: the simulator. Prints its URL, exits when the parent closes stdin or signals.
  const { startVllmSim } = await import("../sim/vllm");
  const sim = await startVllmSim({ model: MODEL, mode: "expert", seed: 1, latency: { ttftMs: 0, perTokenMs: 0, maxNumSeqs: 4096 } });
  console.log(JSON.stringify({ url: sim.url }));
  const stop = async () => {
    await sim.stop();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.stdin.on("end", stop);
  process.stdin.resume();
} else {
  await main();
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 5);
  const seconds = Number(process.argv[3] ?? 2);
  const concurrency = Number(process.argv[4] ?? 256);

  const child = Bun.spawn({ cmd: [process.execPath, import.meta.path, "--serve"], stdin: "pipe", stdout: "pipe", stderr: "inherit" });
  const reader = child.stdout.getReader();
  let line = "";
  while (!line.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("simulator process exited before printing its URL");
    line += new TextDecoder().decode(value);
  }
  const { url } = JSON.parse(line.split("\n")[0]) as { url: string };
  const pool = new ReplicaPool(MODEL, [url]);
  const messages = [{ role: "user", content: "Name the capital of France." }];
  const policy = { attempts: 3, perAttemptTimeoutMs: 30_000, deadlineMs: 60_000, baseDelayMs: 10, maxDelayMs: 100 };

  const bare = (stream: boolean) => async () => {
    const body: Record<string, unknown> = { model: MODEL, messages, stream };
    if (stream) body.stream_options = { include_usage: true };
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    if (stream) await res.text();
    else await res.json();
  };
  const floor = async () => {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, messages, stream: true, stream_options: { include_usage: true } }),
    });
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    await readSseBare(res, (data) => void (data === "[DONE]" || JSON.parse(data)));
  };
  const client = (stream: boolean) => async () => {
    await callChat({ pool, role: "bench", request: { model: MODEL, messages, stream }, policy });
  };

  const beforePath = process.env.BATON_BENCH_BEFORE;
  const before = beforePath ? ((await import(resolve(beforePath))) as typeof import("../runner/llm-client")) : null;
  const loops: [string, () => Promise<void>][] = [
    ["bare fetch, non-streaming", bare(false)],
    ["callChat, non-streaming", client(false)],
    ["bare fetch, streaming", bare(true)],
    ["parse floor, streaming", floor],
    ["callChat, streaming", client(true)],
  ];
  if (before) {
    const old = async () => {
      await before.callChat({ pool, role: "bench", request: { model: MODEL, messages, stream: true }, policy });
    };
    loops.push(["before: callChat, streaming", old]);
  }

  async function measure(fn: () => Promise<void>): Promise<number> {
    const end = performance.now() + seconds * 1000;
    let done = 0;
    let errors = 0;
    const worker = async () => {
      while (performance.now() < end) {
        try {
          await fn();
          done++;
        } catch {
          errors++;
        }
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: concurrency }, worker));
    if (errors) console.error(`  (${errors} errors)`);
    return done / ((performance.now() - t0) / 1000);
  }

  const load0 = loadavg()[0];
  // Warm-up: connections, JIT.
  for (const [, fn] of loops) await Promise.all(Array.from({ length: 64 }, fn));

  const results = new Map<string, number[]>(loops.map(([name]) => [name, []]));
  for (let r = 0; r < rounds; r++) {
    // Rotate the order so drift (thermal, other load) does not favour one loop.
    for (let i = 0; i < loops.length; i++) {
      const [name, fn] = loops[(i + r) % loops.length];
      const rate = await measure(fn);
      results.get(name)!.push(rate);
    }
    console.error(`round ${r + 1}/${rounds}: ${loops.map(([n]) => `${n} ${results.get(n)!.at(-1)!.toFixed(0)}/s`).join(", ")}`);
  }

  const med = (n: string) => median(results.get(n)!);
  console.log(`\ncalls/s, median of ${rounds} rounds x ${seconds}s, concurrency ${concurrency}, simulator in a separate process`);
  console.log(`  (1-min load average ${load0.toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at end; ${navigator.hardwareConcurrency} CPUs)`);
  for (const [name] of loops) console.log(`  ${name.padEnd(28)} ${med(name).toFixed(0).padStart(7)}`);
  const ratioPlain = med("callChat, non-streaming") / med("bare fetch, non-streaming");
  const ratioStream = med("callChat, streaming") / med("bare fetch, streaming");
  // Per-round ratios pair loops measured seconds apart, so load from other processes cancels
  // out better than in the ratio of medians; both are printed.
  const perRound = (a: string, b: string) => median(results.get(a)!.map((x, i) => x / results.get(b)![i]));
  console.log(`  ratio callChat / bare, non-streaming: ${ratioPlain.toFixed(2)} of medians, ${perRound("callChat, non-streaming", "bare fetch, non-streaming").toFixed(2)} median per round (target >= 0.80)`);
  console.log(`  ratio callChat / bare, streaming:     ${ratioStream.toFixed(2)} of medians, ${perRound("callChat, streaming", "bare fetch, streaming").toFixed(2)} median per round (target >= 0.80)`);
  console.log(`  ratio parse floor / bare, streaming:  ${(med("parse floor, streaming") / med("bare fetch, streaming")).toFixed(2)} of medians, ${perRound("parse floor, streaming", "bare fetch, streaming").toFixed(2)} median per round (the JSON every event costs)`);
  if (before)
    console.log(`  ratio callChat / before, streaming:   ${(med("callChat, streaming") / med("before: callChat, streaming")).toFixed(2)} of medians, ${perRound("callChat, streaming", "before: callChat, streaming").toFixed(2)} median per round (${beforePath})`);
  console.log(`  ratio callChat / parse floor:         ${(med("callChat, streaming") / med("parse floor, streaming")).toFixed(2)} of medians, ${perRound("callChat, streaming", "parse floor, streaming").toFixed(2)} median per round (callChat's own cost)`);

  child.stdin.end();
  child.kill("SIGTERM");
  await child.exited;
}
