// `bun run demo`: the whole system on one machine in well under a minute. Starts the API on
// a fresh embedded database, the simulated vLLM + retrieval cluster (primed with the FRAMES
// sample's answers so accuracy means something), imports the endpoints, submits the sample
// over HTTP, runs a runner against the server, shows progress, and prints the report.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { closeDb, openDb } from "../../db/client";
import { importToolOrchestraConfig } from "../../db/endpoints";
import { createApp } from "../../functions/index";
import { HttpQueue } from "../../runner/queue-http";
import { Runner } from "../../runner/runner";
import { startSimCluster } from "../../sim/cluster";
import { EXPERT_MODELS } from "../../sim/models";

export const describe = "server + simulators + a runner on the FRAMES sample; prints accuracy and latency";

const USAGE = `Usage: bun run demo [--tasks N] [--concurrency N] [--keep]

  --tasks N        questions from data/frames-sample.jsonl (default 40, at most 300)
  --concurrency N  tasks in flight (default 8)
  --keep           keep the database (path printed) instead of deleting it`;

const SAMPLE = join(import.meta.dir, "../../data/frames-sample.jsonl");

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export async function run(argv: string[]): Promise<number> {
  let values: Record<string, any>;
  try {
    values = parseArgs({
      args: argv,
      options: {
        tasks: { type: "string", default: "40" },
        concurrency: { type: "string", default: "8" },
        keep: { type: "boolean", default: false },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (err) {
    console.error(`baton demo: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const n = Number(values.tasks);
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(n) || n < 1 || n > 300) {
    console.error("baton demo: --tasks: expected an integer from 1 to 300");
    return 2;
  }
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    console.error("baton demo: --concurrency: expected a positive integer");
    return 2;
  }
  const rows = readFileSync(SAMPLE, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .slice(0, n)
    .map((l) => JSON.parse(l));

  const dir = mkdtempSync(join(tmpdir(), "baton-demo-"));
  const dbPath = join(dir, "baton.db");
  const db = await openDb({ url: `file:${dbPath}` });
  const token = crypto.randomUUID();
  const app = createApp({ db, token });
  app.listen({ port: 0, hostname: "127.0.0.1" });
  const server = `http://127.0.0.1:${app.server!.port}`;
  console.log(`server     ${server} (database ${dbPath})`);

  const answers = Object.fromEntries(rows.map((r: any) => [String(r.question).trim(), String(r.answer)]));
  // Small latencies so the demo is quick but the latency report still has shape.
  const cluster = await startSimCluster({
    seed: 1,
    answers,
    accuracy: 0.7,
    orchestrator: { replicas: 2 },
    latency: { ttftMs: 15, perTokenMs: 0.2, jitter: 0.5 },
    retrieval: { latency: { ms: 10, jitter: 0.5 } },
  });
  const imported = await importToolOrchestraConfig({ db, config: cluster.config });
  console.log(`simulators ${cluster.replicas.length} replicas; ${imported.endpoints.length} endpoints imported`);

  let status = 0;
  const started = Date.now();
  try {
    const [oss, qwen, coder] = [EXPERT_MODELS[0], EXPERT_MODELS[1], EXPERT_MODELS[2]];
    const res = await fetch(`${server}/v1/runs`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({
        name: "frames-demo",
        benchmark: "frames",
        tasks: rows,
        config: {
          maxRounds: 12,
          orchestrator: { history: "messages" },
          models: { "search-1": oss, "search-2": qwen, "reasoner-1": coder, "reasoner-2": oss, "answer-1": qwen, "answer-2": oss },
          judge: { model: oss },
          retrieval: { topk: 5 },
          sandbox: { timeoutMs: 10_000, memoryMb: 512 },
        },
      }),
    });
    const created = (await res.json()) as any;
    if (!res.ok) throw new Error(`submit failed: ${JSON.stringify(created)}`);
    console.log(`run        ${created.id} (${created.tasks} tasks)\n`);

    const runnerLog: string[] = [];
    const runner = new Runner({
      queue: new HttpQueue({ baseUrl: server, token }),
      concurrency,
      runId: created.id,
      pollMs: 50,
      exitWhenIdle: true,
      idleGraceMs: 500,
      progressMs: 60_000,
      log: (l) => runnerLog.push(l),
    });
    const done = runner.run();
    const show = async () => {
      const r = await db.$client.execute({
        sql: "SELECT status, count(*) AS n FROM tasks WHERE run_id = ? GROUP BY status",
        args: [created.id],
      });
      const c: Record<string, number> = {};
      for (const row of r.rows as any[]) c[row.status] = Number(row.n);
      const finished = (c.succeeded ?? 0) + (c.failed ?? 0) + (c.canceled ?? 0);
      const secs = (Date.now() - started) / 1000;
      const rate = finished / Math.max(secs, 0.001);
      const eta = rate > 0 ? ((n - finished) / rate).toFixed(0) : "?";
      process.stdout.write(
        `\rprogress   ${finished}/${n} done (succeeded ${c.succeeded ?? 0}, failed ${c.failed ?? 0}, running ${c.running ?? 0}, queued ${c.queued ?? 0})  ${rate.toFixed(1)}/s  ETA ${eta}s   `,
      );
    };
    const ticker = setInterval(() => void show(), 500);
    await done;
    clearInterval(ticker);
    await show();
    process.stdout.write("\n\n");
    for (const l of runnerLog.filter((l) => l.includes("failed after") || l.includes("warning"))) console.log(l);

    const acc = (await db.$client.execute({
      sql: `SELECT count(*) AS n, sum(status = 'succeeded') AS ok, sum(correct = 1) AS correct,
              sum(status = 'succeeded' AND correct IS NULL) AS ungraded FROM tasks WHERE run_id = ?`,
      args: [created.id],
    })).rows[0] as any;
    const ok = Number(acc.ok ?? 0);
    console.log(
      `accuracy   ${Number(acc.correct ?? 0)}/${ok} = ${ok ? ((100 * Number(acc.correct ?? 0)) / ok).toFixed(1) : "0"}% of succeeded tasks` +
        ` (${Number(acc.n) - ok} not succeeded, ${Number(acc.ungraded ?? 0)} judge errors)`,
    );
    const comps = await db.$client.execute({
      sql: "SELECT tool, component, ms, retries FROM latency_components WHERE run_id = ? ORDER BY tool, component",
      args: [created.id],
    });
    const groups = new Map<string, { ms: number[]; retries: number }>();
    for (const r of comps.rows as any[]) {
      const key = `${r.tool}\u0000${r.component}`;
      const g = groups.get(key) ?? { ms: [], retries: 0 };
      g.ms.push(Number(r.ms));
      g.retries += Number(r.retries);
      groups.set(key, g);
    }
    console.log(`\nlatency per tool and component (ms)`);
    console.log(`${"tool".padEnd(20)}${"component".padEnd(14)}${"n".padStart(6)}${"p50".padStart(10)}${"p95".padStart(10)}${"retries".padStart(9)}`);
    for (const [key, g] of groups) {
      const [tool, component] = key.split("\u0000");
      const sorted = g.ms.sort((a, b) => a - b);
      console.log(
        `${tool.padEnd(20)}${component.padEnd(14)}${String(sorted.length).padStart(6)}${pct(sorted, 50).toFixed(1).padStart(10)}${pct(sorted, 95).toFixed(1).padStart(10)}${String(g.retries).padStart(9)}`,
      );
    }
    console.log(`\ndone in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    if (ok === 0) status = 1;
  } catch (err) {
    console.error(`baton demo failed: ${(err as Error)?.stack ?? err}`);
    status = 1;
  } finally {
    await app.stop(true).catch(() => {});
    await cluster.stop().catch(() => {});
    closeDb(db);
    if (values.keep) console.log(`database kept at ${dbPath}`);
    else rmSync(dir, { recursive: true, force: true });
  }
  return status;
}
