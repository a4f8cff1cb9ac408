// `baton status RUN`: counts, rate, ETA, accuracy; --watch redraws a progress bar until done.
import type { RunSummary } from "../../functions/runs";
import { DB, defineCommand, SERVER } from "../define-command";
import { type Api, encodeRef, formatDuration, formatPct, isTransient, oneRun, openReader, usageError, printJson } from "./_api";
import { readWaiting } from "./preflight";
import { readLinks } from "./sweep";

// The body of GET /v1/runs/:id.
export type Summary = RunSummary;

export function progressBar(done: number, total: number, width = 30): string {
  const frac = total > 0 ? Math.min(1, done / total) : 0;
  const full = Math.round(frac * width);
  return `[${"#".repeat(full)}${"-".repeat(width - full)}] ${(frac * 100).toFixed(1).padStart(5)}%`;
}

/**
 * The one-line progress of --watch, at most `width` characters: a terminal wraps a longer line,
 * and the next redraw (\r) then leaves the wrapped copy behind. Fields go, least useful first,
 * then the bar narrows; what is left is cut with an ellipsis.
 */
export function formatStatusLine(s: Summary, width = Infinity, waiting: string | null = null): string {
  const c = s.counts;
  const finished = c.succeeded + c.failed + c.canceled;
  const rate = s.rate_per_min == null ? "-" : `${s.rate_per_min.toFixed(1)}/min`;
  // [text, priority]: the lowest priority is dropped first
  const parts: [string, number][] = [
    [`${finished}/${s.task_count}`, 9],
    [`running ${c.running}`, 7],
    [`queued ${c.queued}`, 6],
    [`ok ${c.succeeded}`, 5],
    [`failed ${c.failed}`, 5],
    [`canceled ${c.canceled}`, 1],
    [`rate ${rate}`, 2],
    [`eta ${s.done ? "done" : formatDuration(s.eta_ms)}`, 8],
    [`accuracy ${formatPct(s.accuracy)}`, 4],
    [`score ${formatPct(s.score)}`, 3],
  ];
  if (waiting) parts.push([`waits for ${waiting}`, 0]);
  // a narrower bar before losing a count or the accuracy
  const fit = (barWidth: number) => {
    const line = (kept: [string, number][]) => `${progressBar(finished, s.task_count, barWidth)} ${kept.map(([t]) => t).join("  ")}`;
    const kept = [...parts];
    while (line(kept).length > width && kept.length > 1) kept.splice(kept.indexOf(kept.reduce((lo, p) => (p[1] < lo[1] ? p : lo))), 1);
    return { text: fitWidth(line(kept), width), lost: parts.some((p) => p[1] >= 4 && !kept.includes(p)) };
  };
  const tries = [30, 20, 10].map(fit);
  return (tries.find((t) => !t.lost) ?? tries[2]).text;
}

/** `text` cut to `width` characters, ending in … when cut. */
export function fitWidth(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
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

export const { describe, run } = defineCommand({
  name: "status",
  describe: "show a run's progress: counts, rate, ETA, accuracy (--watch to follow it)",
  usage: "RUN",
  intro: "RUN is the run id or its name (when unique).",
  options: {
    watch: { type: "boolean", default: false, help: "redraw a progress line (fitted to the terminal) until the run is done or canceled;\na failed poll is retried, showing 'reconnecting'" },
    interval: { type: "string", value: "S", default: "2", help: "seconds between redraws with --watch" },
    json: { type: "boolean", default: false, help: "print the summary as JSON (one object per redraw with --watch)" },
    server: SERVER,
    db: DB,
  },
  async run({ values, positionals }) {
    const ref = oneRun(positionals);
    const interval = Number(values.interval);
    if (!(interval > 0)) throw usageError("--interval: expected a positive number of seconds");
    const api = await openReader({ server: values.server, db: values.db });
    try {
      return values.watch ? await watch(api, ref, interval * 1000, values.json) : await showOnce(api, ref, values.json);
    } finally {
      api.close();
    }
  },
});

async function showOnce(api: Api, ref: string, json: boolean): Promise<number> {
  const s = await api.call<Summary>("GET", `/v1/runs/${encodeRef(ref)}`);
  if (json) printJson(s);
  else console.log(formatStatus(s));
  // Its tasks are not claimed until what it calls is served (no attempt spent meanwhile).
  const waiting = json || s.done || s.canceled_at ? null : await readWaiting(api, s.id);
  if (waiting) console.log(`  waits for  ${waiting}`);
  // parent, re-runs, sweep, repeats, priority: db/experiments.ts
  if (!json) for (const line of await readLinks(api, s.id)) console.log(line);
  return 0;
}

// A poll that fails for a reason that may pass (server restarting, busy, network) is retried,
// backing off up to this; a refusal (404, 401) ends the watch with its message.
const MAX_RETRY_WAIT_MS = 30_000;

async function watch(api: Api, ref: string, intervalMs: number, json: boolean): Promise<number> {
  const tty = Boolean(process.stdout.isTTY);
  const width = () => (tty ? Math.max(20, (process.stdout.columns || 80) - 1) : Infinity);
  const draw = (line: string) => (tty ? process.stdout.write(`\r\x1b[2K${fitWidth(line, width())}`) : console.log(line));
  let failures = 0;
  for (;;) {
    let s: Summary;
    try {
      s = await api.call<Summary>("GET", `/v1/runs/${encodeRef(ref)}`);
    } catch (err) {
      if (!isTransient(err)) {
        if (tty && !json) process.stdout.write("\n");
        throw err;
      }
      failures++;
      const note = `reconnecting (${failures} failed): ${(err as Error).message}`;
      if (tty && !json) draw(note);
      else console.error(`baton status: ${note}`);
      await Bun.sleep(Math.min(intervalMs * 2 ** Math.min(failures - 1, 4), MAX_RETRY_WAIT_MS));
      continue;
    }
    failures = 0;
    // Nothing running while tasks wait: say for what (endpoints not served yet).
    const waiting = !json && !s.done && !s.canceled_at && s.counts.running === 0 ? await readWaiting(api, s.id).catch(() => null) : null;
    if (json) console.log(JSON.stringify(s));
    else draw(formatStatusLine(s, width(), waiting));
    if (s.done || s.canceled_at) {
      if (tty && !json) process.stdout.write("\n");
      if (!json) console.log(formatStatus(s));
      return 0;
    }
    await Bun.sleep(intervalMs);
  }
}
