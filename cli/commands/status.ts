// `baton status RUN`: counts, rate, ETA, accuracy; --watch redraws a progress bar until done.
import { parseArgs } from "node:util";
import type { RunSummary } from "../../functions/runs";
import { createApi, encodeRef, formatDuration, formatPct, oneRun, runCli, SERVER_OPTION, usageError } from "./_api";
import { readWaiting } from "./preflight";
import { readLinks } from "./sweep";

export const describe = "show a run's progress: counts, rate, ETA, accuracy (--watch to follow it)";

const USAGE = `Usage: bun run baton status RUN [--watch] [--interval SECONDS] [--json] [--server URL]

RUN is the run id or its name (when unique).

  --watch        redraw a progress line until the run is done or canceled
  --interval S   seconds between redraws with --watch (default 2)
  --json         print the summary as JSON (one object per redraw with --watch)
  ${SERVER_OPTION}`;

// The body of GET /v1/runs/:id.
export type Summary = RunSummary;

export function progressBar(done: number, total: number, width = 30): string {
  const frac = total > 0 ? Math.min(1, done / total) : 0;
  const full = Math.round(frac * width);
  return `[${"#".repeat(full)}${"-".repeat(width - full)}] ${(frac * 100).toFixed(1).padStart(5)}%`;
}

export function formatStatusLine(s: Summary): string {
  const c = s.counts;
  const finished = c.succeeded + c.failed + c.canceled;
  const rate = s.rate_per_min == null ? "-" : `${s.rate_per_min.toFixed(1)}/min`;
  return `${progressBar(finished, s.task_count)} ${finished}/${s.task_count}  running ${c.running}  queued ${c.queued}  ok ${c.succeeded}  failed ${c.failed}  canceled ${c.canceled}  rate ${rate}  eta ${s.done ? "done" : formatDuration(s.eta_ms)}  accuracy ${formatPct(s.accuracy)}  score ${formatPct(s.score)}`;
}

export function formatStatus(s: Summary): string {
  const c = s.counts;
  return [
    `run ${s.id} ${s.name} (${s.benchmark})${s.canceled_at ? "  CANCELED" : s.done ? "  DONE" : ""}`,
    `  tasks      ${s.task_count}: queued ${c.queued}, running ${c.running}, succeeded ${c.succeeded}, failed ${c.failed}, canceled ${c.canceled}`,
    `  progress   ${progressBar(c.succeeded + c.failed + c.canceled, s.task_count)}`,
    `  rate       ${s.rate_per_min == null ? "-" : `${s.rate_per_min.toFixed(1)} tasks/min`}   eta ${s.done ? "done" : formatDuration(s.eta_ms)}`,
    `  accuracy   ${formatPct(s.accuracy)} = correct / finished (${s.correct}/${s.finished})`,
    `  score      ${formatPct(s.score)} = correct / all tasks (${s.correct}/${s.task_count}); ${formatPct(s.score_excluding_infra)} excluding ${s.infra_failed} infrastructure failures`,
    `  open       not finished ${s.not_finished} (queued + running), missing ${s.missing} (failed + canceled)`,
  ].join("\n");
}

export async function run(argv: string[]): Promise<number> {
  return runCli(async () => {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        watch: { type: "boolean", default: false },
        interval: { type: "string", default: "2" },
        json: { type: "boolean", default: false },
        server: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const ref = oneRun(positionals);
    const interval = Number(values.interval);
    if (!(interval > 0)) throw usageError("--interval: expected a positive number of seconds");
    const api = createApi({ server: values.server });
    const read = () => api.call<Summary>("GET", `/v1/runs/${encodeRef(ref)}`);
    if (!values.watch) {
      const s = await read();
      console.log(values.json ? JSON.stringify(s) : formatStatus(s));
      // Its tasks are not claimed until what it calls is served (no attempt spent meanwhile).
      const waiting = values.json || s.done || s.canceled_at ? null : await readWaiting(api, s.id);
      if (waiting) console.log(`  waits for  ${waiting}`);
      // parent, re-runs, sweep, repeats, priority: db/experiments.ts
      if (!values.json) for (const line of await readLinks(api, s.id)) console.log(line);
      return 0;
    }
    const tty = process.stdout.isTTY;
    for (;;) {
      const s = await read();
      // Nothing running while tasks wait: say for what (endpoints not served yet).
      const waiting = !values.json && !s.done && !s.canceled_at && s.counts.running === 0 ? await readWaiting(api, s.id) : null;
      const line = formatStatusLine(s) + (waiting ? `  waits for ${waiting}` : "");
      if (values.json) console.log(JSON.stringify(s));
      else if (tty) process.stdout.write(`\r\x1b[2K${line}`);
      else console.log(line);
      if (s.done || s.canceled_at) {
        if (tty && !values.json) process.stdout.write("\n");
        if (!values.json) console.log(formatStatus(s));
        return 0;
      }
      await Bun.sleep(interval * 1000);
    }
  }, "status");
}
