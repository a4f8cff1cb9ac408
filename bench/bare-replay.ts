// The floor under the runner's CPU per task: a finished run's HTTP traffic sent again by the
// least client that still reads all of it, against the same simulators, at the same
// concurrency. Whatever the runner spends beyond this is Baton's own (claims, rows,
// transcripts, prompts, timeouts, retries); this much any harness that makes these calls pays.
//
// The requests come from the run's step transcripts (each LLM request as the exact body
// sent, each retrieval request), final attempts only, in step order per task; the endpoints
// from where the runner sent them. The client is plain fetch, a body reader,
// eventsource-parser and JSON.parse of every event with the deltas joined (or res.json() for
// an unstreamed reply): no timeouts, retries, leases or records. It runs in its own process and
// counts only its replay loop's CPU, not its start-up, so the floor is if anything low.
//
//   import { measureBareReplay } from "./bare-replay";   // from bench/makespan.ts --bare
//   bun bench/bare-replay.ts SCRIPT.json CONCURRENCY     // the child: prints {"cpuMs","wallMs","requests"}
import { createParser } from "eventsource-parser";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Db } from "../db/client";
import { decodeTranscript } from "../db/rows";
import { blobBytes } from "../db/transcripts";

export type ReplayRequest = { url: string; body: string; stream: boolean };
export type BareReplay = { cpuMsPerTask: number; wallMs: number; requests: number; llmRequests: number; retrievals: number };

/** Per task (final attempt, step order): the LLM and retrieval requests its transcripts hold. */
export async function readReplayScript({ db, runId }: { db: Db; runId: number }): Promise<ReplayRequest[][]> {
  const rows = (
    await db.$client.execute({
      sql: `SELECT s.task_id, s.body,
              (SELECT c.endpoint FROM latency_components c
               WHERE c.task_id = s.task_id AND c.attempt = s.attempt AND c.step = s.step AND c.component = 'retrieval'
               ORDER BY c.started_at DESC LIMIT 1) AS retrieval_endpoint
            FROM step_transcripts s JOIN tasks t ON t.id = s.task_id AND t.attempt = s.attempt
            WHERE t.run_id = ? ORDER BY s.task_id, s.step`,
      args: [runId],
    })
  ).rows as unknown as { task_id: number; body: unknown; retrieval_endpoint: string | null }[];
  const byTask = new Map<number, ReplayRequest[]>();
  for (const r of rows) {
    const t = decodeTranscript(blobBytes(r.body));
    let list = byTask.get(Number(r.task_id));
    if (!list) byTask.set(Number(r.task_id), (list = []));
    // the search step's order: query LLM, then retrieval; the orchestrator's call comes first
    const llm = t.llm.filter((l) => l.endpoint && l.request);
    const push = (l: (typeof llm)[number]) =>
      list.push({ url: `${l.endpoint}/v1/chat/completions`, body: JSON.stringify(l.request), stream: (l.request as { stream?: unknown }).stream === true });
    for (const l of llm) if (l.component !== "judge") push(l);
    if (t.retrieval?.request && r.retrieval_endpoint) list.push({ url: `${r.retrieval_endpoint}/retrieve`, body: JSON.stringify(t.retrieval.request), stream: false });
    for (const l of llm) if (l.component === "judge") push(l);
  }
  return [...byTask.values()];
}

/** Replays the run's traffic in a child process; its replay loop's CPU per task. */
export async function measureBareReplay({ db, runId, concurrency }: { db: Db; runId: number; concurrency: number }): Promise<BareReplay> {
  const script = await readReplayScript({ db, runId });
  const dir = mkdtempSync(join(tmpdir(), "baton-bench-replay-"));
  try {
    const file = join(dir, "script.json");
    writeFileSync(file, JSON.stringify(script));
    const child = Bun.spawn([process.execPath, import.meta.path, file, String(concurrency)], { stdout: "pipe", stderr: "inherit" });
    const out = await new Response(child.stdout).text();
    if ((await child.exited) !== 0) throw new Error(`bare replay exited ${child.exitCode}`);
    const r = JSON.parse(out.trim().split("\n").at(-1)!) as { cpuMs: number; wallMs: number; requests: number };
    const all = script.flat();
    const retrievals = all.filter((q) => q.url.endsWith("/retrieve")).length;
    return { cpuMsPerTask: r.cpuMs / script.length, wallMs: r.wallMs, requests: r.requests, llmRequests: all.length - retrievals, retrievals };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function send(r: ReplayRequest): Promise<void> {
  const res = await fetch(r.url, { method: "POST", headers: { "content-type": "application/json" }, body: r.body });
  if (!res.ok) throw new Error(`${r.url}: HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
  if (!r.stream) {
    await res.json();
    return;
  }
  const content: string[] = [];
  const args: string[] = [];
  await readSseBare(res, (data) => {
    if (data === "[DONE]") return;
    const delta = JSON.parse(data).choices?.[0]?.delta;
    if (typeof delta?.content === "string") content.push(delta.content);
    for (const tc of delta?.tool_calls ?? []) if (tc?.function?.arguments) args.push(tc.function.arguments);
  });
  content.join("");
  args.join("");
}

/** The least a client does to read an event stream: each event's data, in order (the benches' floor). */
export async function readSseBare(res: Response, onData: (data: string) => void): Promise<void> {
  const parser = createParser({ onEvent: (e) => onData(e.data) });
  const decoder = new TextDecoder();
  const reader = res.body!.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parser.feed(decoder.decode(value, { stream: true }));
  }
}

if (import.meta.main) {
  const [file, c] = process.argv.slice(2);
  const script = (await Bun.file(file).json()) as ReplayRequest[][];
  let next = 0;
  let requests = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Number(c) }, async () => {
      while (next < script.length) {
        for (const r of script[next++]) {
          await send(r);
          requests++;
        }
      }
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  console.log(JSON.stringify({ cpuMs: (cpu.user + cpu.system) / 1000, wallMs: performance.now() - t0, requests }));
}
