// `baton runner`: the worker process (run it under sbatch, or beside `baton serve`).
import { DEFAULT_DATABASE_URL, normalizeDatabaseUrl, openDb } from "../../db/client";
import { DbQueue } from "../../runner/queue-db";
import { HttpQueue } from "../../runner/queue-http";
import { Runner, type RunnerOptions } from "../../runner/runner";
import { readJobEndTime, readSlurmContext } from "../../runner/slurm";
import type { TaskQueue } from "../../runner/task-queue";
import { formatHelp, parseOptions, type OptionSpecs } from "../define-command";
import { discoverToken } from "./_api";

export const describe = "claim and evaluate tasks (the worker; one per node or per job-array task)";

const OPTIONS = {
  server: { type: "string", value: "URL", help: "queue: talk to 'baton serve' over HTTP (token from BATON_TOKEN or the token file);\nalso $BATON_SERVER" },
  db: { type: "string", value: "URL", help: `queue: open the database directly (default $DATABASE_URL or ${DEFAULT_DATABASE_URL})` },
  concurrency: { type: "string", value: "N", help: "tasks in flight at once (default 4)" },
  run: { type: "string", value: "ID", help: "only claim tasks of this run" },
  "lease-ms": { type: "string", value: "N", help: "lease length (default 60000)" },
  "heartbeat-ms": { type: "string", value: "N", help: "heartbeat interval (default lease/4, at most 5000)" },
  "grace-ms": { type: "string", value: "N", help: "on SIGTERM/SIGINT/SIGUSR1 or job end: time in-flight tasks get to finish (default 30000)" },
  "task-budget-ms": {
    type: "string",
    value: "N",
    help: "expected time of one task; never claim one that cannot finish before the Slurm job ends\n(default: the slowest observed so far)",
  },
  "poll-ms": { type: "string", value: "N", help: "wait between empty claims (default 1000)" },
  "exit-when-idle": {
    type: "boolean",
    default: false,
    help: `stop when nothing is left to do: the run (--run) or every run not canceled has no queued
and no running task. Tasks in backoff or held by another runner (which may die and lose
its lease) keep it polling, so it takes over what a dead runner left (job arrays, demo)`,
  },
  "idle-grace-ms": {
    type: "string",
    value: "N",
    help: "with --exit-when-idle: also stop after N ms of claiming nothing even though tasks are\nstill queued or running elsewhere (default: no limit)",
  },
  "progress-ms": { type: "string", value: "N", help: "progress line interval (default 10000)" },
  "runner-id": { type: "string", value: "ID", help: "default host:pid:random" },
} as const satisfies OptionSpecs;

const USAGE = formatHelp({
  name: "runner",
  options: OPTIONS,
  intro: "The queue is one of --server (HTTP) or --db (the database file).",
  notes: `Signals: SIGTERM, SIGINT, SIGUSR1 stop claiming, let in-flight tasks finish within --grace-ms, release the
rest without charging an attempt, and exit 0. A second signal shortens the grace period to zero.`,
});

function intFlag(name: string, raw: string | undefined, min = 0): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: expected an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

export async function run(argv: string[]): Promise<number> {
  let values: Record<string, any>;
  let runner: Runner | null = null;
  let queue: TaskQueue | null = null;
  let options: Omit<RunnerOptions, "queue">;
  let server: string | undefined;
  try {
    values = parseOptions(argv, OPTIONS, false).values;
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    server = values.server ?? (values.db ? undefined : process.env.BATON_SERVER);
    if (server && values.db) throw new Error("--server and --db are exclusive");
    const slurm = readSlurmContext(process.env);
    let endsAt: number | null = null;
    if (slurm) {
      const end = await readJobEndTime(slurm);
      endsAt = end.endTimeMs;
      if (end.source === "unavailable") console.log(`runner: Slurm job end time unknown (${end.detail}); running without an end-time guard`);
    }
    options = {
      concurrency: intFlag("concurrency", values.concurrency, 1),
      runId: intFlag("run", values.run, 1) ?? null,
      leaseMs: intFlag("lease-ms", values["lease-ms"], 100),
      heartbeatMs: intFlag("heartbeat-ms", values["heartbeat-ms"], 10),
      graceMs: intFlag("grace-ms", values["grace-ms"]),
      taskBudgetMs: intFlag("task-budget-ms", values["task-budget-ms"]) ?? null,
      pollMs: intFlag("poll-ms", values["poll-ms"], 1),
      exitWhenIdle: values["exit-when-idle"],
      idleGraceMs: intFlag("idle-grace-ms", values["idle-grace-ms"]),
      progressMs: intFlag("progress-ms", values["progress-ms"], 100),
      runnerId: values["runner-id"],
      slurm,
      endsAt,
    };
  } catch (err) {
    console.error(`baton runner: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  // A database that cannot be opened (not a database, unreadable, migrations failing) is not
  // a usage error: it is reported like any other crash, with its stack and exit 1.
  try {
    queue = server
      ? new HttpQueue({ baseUrl: server, token: discoverToken() })
      : new DbQueue(await openDb({ url: normalizeDatabaseUrl(values.db ?? process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL), backgroundCheckpoint: true }));
  } catch (err) {
    console.error(`baton runner crashed: cannot open the queue: ${(err as Error)?.stack ?? err}`);
    return 1;
  }
  runner = new Runner({ queue, ...options });

  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) runner!.stop(sig);
    else {
      console.log(`runner: second signal (${sig}): releasing in-flight tasks now`);
      (runner as any).o.graceMs = 0;
    }
  };
  for (const sig of ["SIGTERM", "SIGINT", "SIGUSR1"] as const) process.on(sig, onSignal);
  try {
    await runner.run();
    await queue.close();
    return 0;
  } catch (err) {
    console.error(`baton runner crashed: ${(err as Error)?.stack ?? err}`);
    await queue.setRunnerState(runner.id, "crashed").catch(() => {});
    return 1;
  }
}
