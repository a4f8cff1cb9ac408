// `bun run demo`: the whole system on one machine in well under a minute. Starts the API on
// a fresh embedded database, the simulated vLLM + retrieval cluster (primed with the FRAMES
// sample's answers so accuracy means something), imports the endpoints, submits the sample
// over HTTP, runs a runner against the server, shows progress, and prints the report.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildReport } from "../../db/analysis";
import { closeDb, openDb } from "../../db/client";
import { importToolOrchestraConfig } from "../../db/endpoints";
import { createApp } from "../../functions/index";
import { HttpQueue } from "../../runner/queue-http";
import { Runner } from "../../runner/runner";
import { startSimCluster } from "../../sim/cluster";
import { EXPERT_MODELS } from "../../sim/models";
import { formatHelp, parseOptions, type OptionSpecs } from "../define-command";
import { renderReport } from "./report";

export const describe = "server + simulators + a runner on the FRAMES sample; prints accuracy and latency";

const OPTIONS = {
  tasks: { type: "string", value: "N", default: "40", help: "questions from data/frames-sample.jsonl (at most 300)" },
  concurrency: { type: "string", value: "N", default: "8", help: "tasks in flight" },
  keep: { type: "boolean", default: false, help: "keep the database (path printed; its WAL checkpointed into it) instead of deleting it" },
} as const satisfies OptionSpecs;

const USAGE = formatHelp({ name: "demo", options: OPTIONS, intro: "Also: bun run demo [options]" });

const SAMPLE = join(import.meta.dir, "../../data/frames-sample.jsonl");

// A terminal gets one line redrawn in place; a log file or pipe gets plain lines, few of them.
const TTY_TICK_MS = 500;
const LOG_TICK_MS = 2_000;

export async function run(argv: string[]): Promise<number> {
  let values: Record<string, any>;
  try {
    values = parseOptions(argv, OPTIONS, false).values;
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
    const oss = EXPERT_MODELS[0];
    const res = await fetch(`${server}/v1/runs`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({
        name: "frames-demo",
        benchmark: "frames",
        tasks: rows,
        // The default profile (toolorchestra: the reference's prompts, tools, model map and
        // budgets); only the judge is a simulated model instead of gpt-5 over the OpenAI API.
        config: {
          judge: { model: oss },
          sandbox: { timeout_ms: 10_000, memory_mb: 512 },
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
      // exits when nothing of the run is queued or running (retries in backoff included)
      exitWhenIdle: true,
      progressMs: 60_000,
      log: (l) => runnerLog.push(l),
    });
    const done = runner.run();
    const tty = Boolean(process.stdout.isTTY);
    let last = "";
    const show = async (final = false) => {
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
      const line = `progress   ${finished}/${n} done (succeeded ${c.succeeded ?? 0}, failed ${c.failed ?? 0}, running ${c.running ?? 0}, queued ${c.queued ?? 0})  ${rate.toFixed(1)}/s  ETA ${eta}s`;
      if (tty) process.stdout.write(`\r${line}   ${final ? "\n" : ""}`);
      else if (line !== last) console.log(line);
      last = line;
    };
    const ticker = setInterval(() => void show(), tty ? TTY_TICK_MS : LOG_TICK_MS);
    await done;
    clearInterval(ticker);
    await show(true);
    console.log("");
    for (const l of runnerLog.filter((l) => l.includes("failed after") || l.includes("warning"))) console.log(l);

    // The same report as `baton report`, from the same queries.
    const report = await buildReport({ db, runId: created.id, slowest: 10 });
    if (!report) throw new Error(`run ${created.id} vanished`);
    console.log(renderReport(report));
    const ok = report.tasks.succeeded;
    console.log(`\ndone in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    if (ok === 0) status = 1;
  } catch (err) {
    console.error(`baton demo failed: ${(err as Error)?.stack ?? err}`);
    status = 1;
  } finally {
    await app.stop(true).catch(() => {});
    await cluster.stop().catch(() => {});
    // The printed file must be complete on its own: fold the WAL into it before closing.
    if (values.keep) await db.$client.execute("PRAGMA wal_checkpoint(TRUNCATE)").catch(() => {});
    closeDb(db);
    if (values.keep) console.log(`database kept at ${dbPath} (bun run baton report 1 --db ${dbPath})`);
    else rmSync(dir, { recursive: true, force: true });
  }
  return status;
}
