// What a runner knows about the Slurm job it runs in: its ids (recorded with every attempt)
// and when Slurm will kill it, so it never claims a task it cannot finish before then.
//
// Slurm >= 23.02 exports SLURM_JOB_END_TIME; older ones (Debian 12 ships 22.05) do not, so
// the end time comes from `squeue` instead. squeue prints local time without a zone, so it
// is asked for epoch seconds (SLURM_TIME_FORMAT=%s) and the local-time form is parsed only
// as a fallback; the time left (%L) is the last resort.

export type SlurmContext = {
  jobId: string;
  arrayJobId: string | null;
  arrayTaskId: string | null;
  endTimeMs?: number;
};

export type ExecResult = { code: number | null; stdout: string; stderr: string; timedOut: boolean };
export type Exec = (
  argv: string[],
  opts: { timeoutMs: number; env: Record<string, string | undefined> },
) => Promise<ExecResult>;

export type JobEndTime = {
  endTimeMs: number | null;
  // Where the answer came from; "unlimited" means Slurm reports no time limit,
  // "unavailable" means the query failed (detail says why) and the runner runs without one.
  source: "env" | "squeue-end" | "squeue-left" | "unlimited" | "unavailable";
  detail?: string;
};

const DIGITS = /^\d+$/;

function readId(env: Record<string, string | undefined>, names: string[]): string | null {
  for (const name of names) {
    const raw = env[name];
    if (raw === undefined || raw.trim() === "") continue;
    const value = raw.trim();
    if (!DIGITS.test(value)) throw new Error(`${name} must be a Slurm job number, got ${JSON.stringify(raw)}`);
    return value;
  }
  return null;
}

/** The Slurm job this process runs in, or null outside Slurm. Throws on malformed ids. */
export function readSlurmContext(env: Record<string, string | undefined> = process.env): SlurmContext | null {
  // SLURM_JOBID is the older spelling, still exported by current versions.
  const jobId = readId(env, ["SLURM_JOB_ID", "SLURM_JOBID"]);
  if (jobId === null) return null;
  const ctx: SlurmContext = {
    jobId,
    arrayJobId: readId(env, ["SLURM_ARRAY_JOB_ID"]),
    arrayTaskId: readId(env, ["SLURM_ARRAY_TASK_ID"]),
  };
  const end = env.SLURM_JOB_END_TIME?.trim();
  if (end) {
    if (!DIGITS.test(end)) {
      throw new Error(`SLURM_JOB_END_TIME must be a UNIX timestamp in seconds, got ${JSON.stringify(env.SLURM_JOB_END_TIME)}`);
    }
    // 0 is what Slurm exports for a job without a time limit.
    if (Number(end) > 0) ctx.endTimeMs = Number(end) * 1000;
  }
  return ctx;
}

const NO_TIME = new Set(["", "NONE", "N/A", "UNKNOWN", "UNLIMITED", "NOT_SET", "INVALID", "INFINITE"]);

/**
 * squeue's %e: epoch seconds when SLURM_TIME_FORMAT=%s took effect, else Slurm's default
 * "YYYY-MM-DDTHH:MM:SS" in the machine's local time zone. null for "no end time" words.
 * Throws on anything else.
 */
export function parseSqueueEndTime(text: string): number | null {
  const s = text.trim();
  if (NO_TIME.has(s.toUpperCase())) return null;
  if (DIGITS.test(s)) {
    const secs = Number(s);
    return secs > 0 ? secs * 1000 : null;
  }
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/.exec(s);
  if (!m) throw new Error(`squeue end time ${JSON.stringify(text)} is neither epoch seconds nor YYYY-MM-DDTHH:MM:SS`);
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  // The Date constructor with parts interprets them in local time, as Slurm printed them.
  const ms = new Date(y, mo - 1, d, h, mi, se).getTime();
  if (Number.isNaN(ms) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) {
    throw new Error(`squeue end time ${JSON.stringify(text)} is not a valid date`);
  }
  return ms;
}

/**
 * squeue's %L (and Slurm's time-limit notation): "[days-]hours:minutes:seconds" or
 * "minutes:seconds", in ms; null for UNLIMITED / NOT_SET / INVALID. Throws on anything else.
 */
export function parseTimeLeft(text: string): number | null {
  const s = text.trim();
  if (NO_TIME.has(s.toUpperCase())) return null;
  const m = /^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)$/.exec(s);
  if (!m) throw new Error(`squeue time left ${JSON.stringify(text)} is not [days-]hours:minutes:seconds`);
  const days = Number(m[1] ?? 0);
  const hours = Number(m[2] ?? 0);
  const minutes = Number(m[3]);
  const seconds = Number(m[4]);
  if (m[1] !== undefined && m[2] === undefined) {
    throw new Error(`squeue time left ${JSON.stringify(text)} has days but no hours`);
  }
  return (((days * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000;
}

/** Runs a command with a hard timeout (SIGKILL), collecting its output. */
export const execCommand: Exec = async (argv, { timeoutMs, env }) => {
  let proc: ReturnType<typeof Bun.spawn>;
  try {
    proc = Bun.spawn(argv, { env: env as Record<string, string>, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  } catch (err) {
    // e.g. squeue not installed: ENOENT at spawn time.
    return { code: null, stdout: "", stderr: err instanceof Error ? err.message : String(err), timedOut: false };
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, timeoutMs);
  try {
    const [stdout, stderr, code] = await Promise.all([
      new Response(proc.stdout as ReadableStream).text(),
      new Response(proc.stderr as ReadableStream).text(),
      proc.exited,
    ]);
    return { code, stdout, stderr, timedOut };
  } finally {
    clearTimeout(timer);
  }
};

/**
 * Picks this job's line out of `squeue -h -j ID -o "%A|%e|%L"` output. For an array job,
 * the id of the last task equals the array's id, and `-j` on it lists every task, so the
 * line is chosen by %A (each task's own job id).
 */
export function parseSqueueJobLine(
  stdout: string,
  jobId: string,
  nowMs: number,
): { endTimeMs: number | null; source: "squeue-end" | "squeue-left" | "unlimited" } {
  const lines = stdout.split("\n").map((l) => l.trim()).filter(Boolean);
  const line = lines.find((l) => l.split("|")[0] === jobId);
  if (!line) throw new Error(`squeue did not list job ${jobId}`);
  const [, endText = "", leftText = ""] = line.split("|");
  let endError: unknown = null;
  try {
    const end = parseSqueueEndTime(endText);
    if (end !== null) return { endTimeMs: end, source: "squeue-end" };
  } catch (err) {
    endError = err;
  }
  const left = parseTimeLeft(leftText);
  if (left !== null) return { endTimeMs: nowMs + left, source: "squeue-left" };
  if (endError) throw endError;
  return { endTimeMs: null, source: "unlimited" };
}

/**
 * When Slurm will end this job, with where the answer came from. Never throws: a failing
 * squeue yields source "unavailable" and a detail for the log.
 */
export async function readJobEndTime(
  ctx: SlurmContext,
  opts: { exec?: Exec; timeoutMs?: number; now?: () => number; env?: Record<string, string | undefined> } = {},
): Promise<JobEndTime> {
  if (ctx.endTimeMs !== undefined) return { endTimeMs: ctx.endTimeMs, source: "env" };
  const exec = opts.exec ?? execCommand;
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const now = opts.now ?? Date.now;
  const env = { ...(opts.env ?? process.env), SLURM_TIME_FORMAT: "%s" };
  const argv = ["squeue", "-h", "-j", ctx.jobId, "-o", "%A|%e|%L"];
  let res: ExecResult;
  try {
    res = await exec(argv, { timeoutMs, env });
  } catch (err) {
    return { endTimeMs: null, source: "unavailable", detail: `squeue failed: ${err instanceof Error ? err.message : err}` };
  }
  if (res.timedOut) return { endTimeMs: null, source: "unavailable", detail: `squeue did not answer within ${timeoutMs} ms` };
  if (res.code !== 0) {
    const why = res.stderr.trim().split("\n").slice(-1)[0] || `exit code ${res.code}`;
    return { endTimeMs: null, source: "unavailable", detail: `squeue failed: ${why}` };
  }
  try {
    return parseSqueueJobLine(res.stdout, ctx.jobId, now());
  } catch (err) {
    return { endTimeMs: null, source: "unavailable", detail: err instanceof Error ? err.message : String(err) };
  }
}

/** The job's end time in ms since epoch, or null when it has none or it cannot be known. */
export async function jobEndTimeMs(
  ctx: SlurmContext,
  opts: { exec?: Exec; timeoutMs?: number; now?: () => number; env?: Record<string, string | undefined> } = {},
): Promise<number | null> {
  return (await readJobEndTime(ctx, opts)).endTimeMs;
}
