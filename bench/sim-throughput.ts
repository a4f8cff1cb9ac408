#!/usr/bin/env bun
// Throughput of the vLLM simulator at zero latency, beside a bare Bun.serve that returns a
// canned chat completion — so the client benchmark (256 concurrent calls) is not measuring
// the simulator. Both servers run in child processes; the load loop runs here.
//
//   bun bench/sim-throughput.ts [--concurrency 256] [--requests 4096] [--rounds 5]
//
// Prints requests/s per round and the medians, non-streaming and streaming, and the ratio
// simulator / bare server.
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    concurrency: { type: "string", default: "256" },
    requests: { type: "string", default: "4096" },
    rounds: { type: "string", default: "5" },
    "serve-bare": { type: "boolean", default: false },
  },
});

const MODEL = "nvidia/Nemotron-Orchestrator-8B";

if (values["serve-bare"]) {
  // Child mode: the baseline server, answering what the simulator answers, precomputed.
  const completion = JSON.stringify({
    id: "chatcmpl-0", object: "chat.completion", created: 0, model: MODEL,
    choices: [{ index: 0, message: { role: "assistant", reasoning_content: "I need more information; I will search.", content: null, tool_calls: [{ id: "chatcmpl-tool-0", type: "function", function: { name: "search", arguments: '{"model":"search-1"}' } }] }, logprobs: null, finish_reason: "tool_calls", stop_reason: null }],
    usage: { prompt_tokens: 300, total_tokens: 350, completion_tokens: 50 },
  });
  const head = `data: {"id":"chatcmpl-0","object":"chat.completion.chunk","created":0,"model":"${MODEL}","choices":[{"index":0,"delta":`;
  const stream = ["{\"role\":\"assistant\",\"content\":\"\"}", ...Array.from({ length: 40 }, (_, i) => JSON.stringify({ reasoning_content: ` w${i}` }))]
    .map((d) => `${head}${d},"logprobs":null,"finish_reason":null}]}\n\n`).join("") + "data: [DONE]\n\n";
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const body = (await req.json()) as { stream?: boolean };
      return body.stream
        ? new Response(stream, { headers: { "content-type": "text/event-stream" } })
        : new Response(completion, { headers: { "content-type": "application/json" } });
    },
  });
  console.log(JSON.stringify({ port: server.port }));
  await new Promise(() => {});
}

const concurrency = Number(values.concurrency);
const total = Number(values.requests);
const rounds = Number(values.rounds);

async function startChild(args: string[], portOf: (line: string) => number | null) {
  const proc = Bun.spawn([process.execPath, ...args], { stdout: "pipe", stderr: "ignore" });
  const reader = proc.stdout.getReader();
  let buf = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`child exited before printing its port: ${args.join(" ")}`);
    buf += new TextDecoder().decode(value);
    const port = portOf(buf);
    if (port) return { proc, port };
  }
}

const body = (stream: boolean) =>
  JSON.stringify({
    model: MODEL,
    messages: [{ role: "user", content: "Which country held the FIFA World Cup the last time a London club won the Champions League?" }],
    tools: ["search", "enhance_reasoning", "answer"].map((name) => ({ type: "function", function: { name, parameters: { type: "object", properties: { model: { type: "string", enum: [`${name}-1`, `${name}-2`] } } } } })),
    stream,
  });

async function round(port: number, stream: boolean): Promise<number> {
  const url = `http://127.0.0.1:${port}/v1/chat/completions`;
  const payload = body(stream);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < total) {
        const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: payload });
        if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
        await res.text();
      }
    }),
  );
  return total / ((performance.now() - t0) / 1000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const sim = await startChild(
  ["cli/baton.ts", "sim", "--orchestrator", "1", "--expert", "0", "--retrieval", "0", "--wiki-retrieval", "0"],
  (s) => {
    const m = s.match(/"port":\s*(\d+)/);
    return m && s.includes("]\n}") ? Number(m[1]) : null;
  },
);
const bare = await startChild([import.meta.path, "--serve-bare"], (s) => {
  const m = s.match(/"port":(\d+)/);
  return m ? Number(m[1]) : null;
});

try {
  for (const stream of [false, true]) {
    await round(sim.port, stream); // warm-up
    await round(bare.port, stream);
    const simRates: number[] = [];
    const bareRates: number[] = [];
    for (let r = 0; r < rounds; r++) {
      simRates.push(await round(sim.port, stream));
      bareRates.push(await round(bare.port, stream));
    }
    const label = stream ? "streaming" : "non-streaming";
    console.log(`${label}: simulator ${simRates.map((x) => x.toFixed(0)).join(" ")} req/s; bare ${bareRates.map((x) => x.toFixed(0)).join(" ")} req/s`);
    console.log(`${label}: median simulator ${median(simRates).toFixed(0)} req/s, bare ${median(bareRates).toFixed(0)} req/s, ratio ${(median(simRates) / median(bareRates)).toFixed(2)} (concurrency ${concurrency}, ${total} requests/round)`);
  }
} finally {
  sim.proc.kill("SIGTERM");
  bare.proc.kill("SIGTERM");
  await Promise.all([sim.proc.exited, bare.proc.exited]);
}
