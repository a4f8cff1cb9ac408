// Runs model-written Python (the enhance_reasoning tool). The code is untrusted input: it may
// loop forever, allocate without bound, fork-bomb, flood its output, read the runner's
// environment or reach the network. Preferred mode is bubblewrap (own network, pid, ipc, uts and
// user namespaces; read-only system dirs; a private temp dir as the only writable place). Where
// bwrap is missing or cannot create namespaces it falls back to a plain subprocess that still
// gets every resource limit and a cleared environment, but is NOT isolated from the network or
// the filesystem; that is logged once. The fallback still ends every process the code started,
// including ones that left its process group with setsid: it runs in its own PID namespace
// (`unshare --pid --fork --kill-child`, whose end kills all of it) where that works, and
// otherwise every process carrying the run's marker variable is found in /proc and killed. BATON_SANDBOX=bwrap makes a missing/broken bwrap an error
// (nothing runs unisolated); BATON_SANDBOX=subprocess forces the fallback.
import { spawn, which } from "bun";
import { chmod, chown, lstat, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { existsSync, lstatSync, readlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export type SandboxMode = "bwrap" | "subprocess";

export type RunPythonInput = {
  code: string;
  timeoutMs: number;
  memoryMb: number;
  signal?: AbortSignal;
  /** Per stream (stdout and stderr each); default DEFAULT_MAX_OUTPUT_BYTES. */
  maxOutputBytes?: number;
  /** Interpreter to use; default /usr/bin/python3, else python3 on PATH. */
  python?: string;
};

export type RunPythonResult = {
  stdout: string;
  stderr: string;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  /** The sandbox killed the code: timeout, the caller's abort, or an output flood. */
  killed: boolean;
  outputTruncated: boolean;
  ms: number;
  sandbox: SandboxMode;
  /** Why the code did not run to its own end (could not start, timed out, aborted, flooded). */
  error?: string;
};

export const DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024;
/** Processes (threads count too) the code may have at once; stops fork bombs. */
export const MAX_PROCESSES = 64;
/** Largest file the code may write. */
export const MAX_FILE_BYTES = 64 * 1024 * 1024;
export const MAX_OPEN_FILES = 256;
/** Output beyond the cap is dropped; past this many times the cap the writer is killed. */
const FLOOD_FACTOR = 4;
/** After the main process exits, how long stray holders of its pipes may keep them open. */
const PIPE_DRAIN_MS = 500;
const NOBODY = 65534;

// Inside bwrap the private temp dir is mounted here and is cwd, $HOME and $TMPDIR, so code that
// writes "/tmp/x" lands in its own dir rather than the host's /tmp.
const SANDBOX_DIR = "/tmp";

// The few /etc files an interpreter and common libraries read; the rest of /etc (credentials,
// service configs) stays out of sight.
const ETC_FILES = [
  "/etc/ld.so.cache",
  "/etc/ld.so.conf",
  "/etc/ld.so.conf.d",
  "/etc/localtime",
  "/etc/passwd",
  "/etc/group",
  "/etc/nsswitch.conf",
  "/etc/alternatives",
  "/etc/mime.types",
  "/etc/ssl/certs",
];

type Plan = {
  mode: SandboxMode;
  /** Resolved interpreter (a pyenv shim is a shell script and would not run inside bwrap). */
  interpreter: string;
  /** Interpreter prefixes outside /usr, bound read-only into the sandbox. */
  extraBinds: string[];
  bwrap: string | null;
  /** unshare, when it can give the fallback its own PID namespace. */
  pidns: string | null;
  prlimit: string | null;
  /** Root is exempt from RLIMIT_NPROC and should not run untrusted code anyway. */
  dropToNobody: string | null;
  /** Why bwrap was not used, for the one-time warning. */
  reason?: string;
};

const plans = new Map<string, Promise<Plan>>();
let warnedSubprocess = false;

/** Which mode runPython uses for this interpreter; probed once per interpreter and cached. */
export async function detectSandbox(opts: { python?: string } = {}): Promise<{ mode: SandboxMode; interpreter: string; reason?: string }> {
  const plan = await planFor(opts.python);
  return { mode: plan.mode, interpreter: plan.interpreter, reason: plan.reason };
}

/** Forget probe results (tests; or after installing bwrap in a long-lived process). */
export function resetSandboxProbe(): void {
  plans.clear();
  warnedSubprocess = false;
}

export async function runPython(input: RunPythonInput): Promise<RunPythonResult> {
  const started = performance.now();
  const maxOutputBytes = Math.max(1, Math.floor(input.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES));
  let plan: Plan;
  try {
    plan = await planFor(input.python);
  } catch (err) {
    const mode = process.env.BATON_SANDBOX?.trim().toLowerCase() === "bwrap" ? "bwrap" : "subprocess";
    return failedStart(mode, started, `sandbox unavailable: ${messageOf(err)}`);
  }
  if (plan.mode === "subprocess" && !warnedSubprocess) {
    warnedSubprocess = true;
    console.warn(
      `[sandbox] bubblewrap unavailable (${plan.reason}); model-written code runs as a plain subprocess ` +
        `with resource limits and a cleared environment but NOT isolated from the network or filesystem. ` +
        `Run scripts/setup-sandbox.sh to fix.`,
    );
  }
  const bad = invalidInput(input);
  if (bad) return failedStart(plan.mode, started, bad);
  if (input.signal?.aborted) return failedStart(plan.mode, started, "aborted before start");

  let dir: string | null = null;
  try {
    dir = await mkdtemp(join(tmpdir(), "baton-sandbox-"));
    await writeFile(join(dir, "main.py"), input.code);
    if (plan.dropToNobody) {
      await chown(dir, NOBODY, NOBODY);
      await chown(join(dir, "main.py"), NOBODY, NOBODY);
    }
    return await execute(plan, dir, input, maxOutputBytes, started);
  } catch (err) {
    return failedStart(plan.mode, started, `could not start: ${messageOf(err)}`);
  } finally {
    if (dir) await removeTree(dir);
  }
}

async function execute(
  plan: Plan,
  dir: string,
  input: RunPythonInput,
  maxOutputBytes: number,
  started: number,
): Promise<RunPythonResult> {
  const cmd = await buildCommand(plan, dir, input);
  const proc = spawn({
    cmd,
    cwd: dir,
    env: plan.mode === "bwrap" ? {} : sandboxEnv(dir),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    // Own process group, so a kill reaches the code's children too.
    detached: true,
  });

  let killReason: "timeout" | "abort" | "flood" | null = null;
  const killGroup = () => {
    try {
      process.kill(-proc.pid, "SIGKILL");
    } catch {
      // Group already gone.
    }
  };
  const kill = (reason: "timeout" | "abort" | "flood") => {
    if (killReason === null) killReason = reason;
    killGroup();
  };

  const timer = setTimeout(() => kill("timeout"), Math.max(1, input.timeoutMs));
  const onAbort = () => kill("abort");
  input.signal?.addEventListener("abort", onAbort, { once: true });

  const out = collect(proc.stdout, maxOutputBytes, () => kill("flood"));
  const err = collect(proc.stderr, maxOutputBytes, () => kill("flood"));
  await proc.exited;
  clearTimeout(timer);
  input.signal?.removeEventListener("abort", onAbort);
  // Leftover children (subprocess mode; in bwrap the pid namespace dies with its first process).
  killGroup();
  // setsid'ed descendants left the group; without a PID namespace, find them by marker.
  if (plan.mode === "subprocess" && !plan.pidns) await killMarked(markerOf(dir));
  const drainTimer = setTimeout(() => {
    out.cancel();
    err.cancel();
  }, PIPE_DRAIN_MS);
  const [stdout, stderr] = await Promise.all([out.text, err.text]);
  clearTimeout(drainTimer);

  const ms = Math.round(performance.now() - started);
  const result: RunPythonResult = {
    stdout: stdout.text,
    stderr: stderr.text,
    exitCode: proc.exitCode,
    signal: proc.signalCode == null ? null : String(proc.signalCode),
    timedOut: killReason === "timeout",
    killed: killReason !== null,
    outputTruncated: stdout.truncated || stderr.truncated,
    ms,
    sandbox: plan.mode,
  };
  if (killReason === "timeout") result.error = `timed out after ${input.timeoutMs} ms`;
  else if (killReason === "abort") result.error = "aborted by caller";
  else if (killReason === "flood") result.error = `output exceeded ${FLOOD_FACTOR * maxOutputBytes} bytes on one stream`;
  return result;
}

function collect(stream: ReadableStream<Uint8Array>, cap: number, onFlood: () => void) {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let kept = 0;
  let seen = 0;
  let flooded = false;
  const text = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        seen += value.byteLength;
        if (kept < cap) {
          const part = value.byteLength <= cap - kept ? value : value.subarray(0, cap - kept);
          chunks.push(part);
          kept += part.byteLength;
        }
        // Keep draining so the writer never blocks on a full pipe before the kill lands.
        if (!flooded && seen > FLOOD_FACTOR * cap) {
          flooded = true;
          onFlood();
        }
      }
    } catch {
      // Cancelled after the drain deadline: keep what arrived.
    }
    const bytes = new Uint8Array(kept);
    let at = 0;
    for (const c of chunks) {
      bytes.set(c, at);
      at += c.byteLength;
    }
    // A cut may split a multi-byte character; the decoder marks it instead of throwing.
    return { text: new TextDecoder().decode(bytes), truncated: seen > cap };
  })();
  return {
    text,
    cancel: () => {
      reader.cancel().catch(() => {});
    },
  };
}

// Each run's processes inherit this variable (value: the run's private dir), so the fallback can
// find descendants that left the process group.
const MARKER_VAR = "BATON_SANDBOX_RUN";

export function markerOf(dir: string): string {
  return `${MARKER_VAR}=${dir}`;
}

/**
 * SIGKILLs every process whose environment carries the marker, until a scan finds none (a
 * fork racing the first scan is caught by the next). Reads only /proc; no cgroups needed.
 */
export async function killMarked(marker: string): Promise<void> {
  const needle = Buffer.from(`\0${marker}\0`);
  for (let round = 0; round < 50; round++) {
    let found = 0;
    for (const e of await readdir("/proc").catch(() => [] as string[])) {
      if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
      try {
        // environ starts with the first variable, not a NUL: look for it with one prepended
        const env = Buffer.concat([Buffer.from([0]), await readFile(`/proc/${e}/environ`)]);
        if (env.includes(needle)) {
          found++;
          process.kill(Number(e), "SIGKILL");
        }
      } catch {
        // Exited while we looked, or not ours to read.
      }
    }
    if (found === 0) return;
  }
}

function sandboxEnv(home: string): Record<string, string> {
  // Built from nothing: tokens in the runner's environment (BATON_TOKEN, DATABASE_AUTH_TOKEN,
  // API keys) must never reach model-written code.
  return {
    [MARKER_VAR]: home,
    PATH: "/usr/local/bin:/usr/bin:/bin",
    HOME: home,
    TMPDIR: home,
    LANG: "C.UTF-8",
    // Numeric libraries start a thread per core and reserve address space for each.
    OMP_NUM_THREADS: "1",
    OPENBLAS_NUM_THREADS: "1",
    MKL_NUM_THREADS: "1",
  };
}

async function buildCommand(plan: Plan, dir: string, input: RunPythonInput): Promise<string[]> {
  const nproc = plan.mode === "bwrap" ? MAX_PROCESSES : MAX_PROCESSES + (await countTasksOf(plan.dropToNobody ? NOBODY : process.getuid!()));
  const limits = plan.prlimit
    ? [
        plan.prlimit,
        `--as=${Math.floor(input.memoryMb) * 1024 * 1024}`,
        `--cpu=${Math.max(1, Math.ceil(input.timeoutMs / 1000) + 1)}`,
        `--nproc=${nproc}`,
        `--fsize=${MAX_FILE_BYTES}`,
        `--nofile=${MAX_OPEN_FILES}`,
        "--core=0",
        "--",
      ]
    : [];
  const python = [plan.interpreter, "-I", "-B", "-X", "utf8", "main.py"];
  const drop = plan.dropToNobody ? [plan.dropToNobody, `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "--"] : [];
  // --kill-child: when unshare goes, its child (the namespace's init) goes, and with it every
  // process in the namespace, setsid or not.
  const pidns = plan.pidns ? [plan.pidns, "--pid", "--fork", "--kill-child"] : [];
  if (plan.mode === "subprocess") return [...pidns, ...drop, ...limits, ...python];

  const env = Object.entries(sandboxEnv(SANDBOX_DIR)).flatMap(([k, v]) => ["--setenv", k, v]);
  return [
    ...drop,
    plan.bwrap!,
    ...bwrapArgs(plan, dir),
    "--clearenv",
    ...env,
    "--",
    ...limits,
    ...python,
  ];
}

function bwrapArgs(plan: Plan, dir: string): string[] {
  const args = ["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--ro-bind", "/usr", "/usr"];
  // Merged-/usr systems have /bin, /lib... as symlinks into /usr; older ones have real dirs.
  for (const top of ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]) {
    let st;
    try {
      st = lstatSync(top);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) args.push("--symlink", readlinkSync(top), top);
    else args.push("--ro-bind", top, top);
  }
  for (const f of ETC_FILES) args.push("--ro-bind-try", f, f);
  for (const p of plan.extraBinds) args.push("--ro-bind", p, p);
  args.push("--proc", "/proc", "--dev", "/dev", "--bind", dir, SANDBOX_DIR, "--chdir", SANDBOX_DIR);
  // Everything but the private dir read-only, including the sandbox's own root.
  args.push("--remount-ro", "/");
  return args;
}

// Outside a user namespace RLIMIT_NPROC counts every process of the uid on the machine, so the
// fallback's limit is "what this uid already runs" plus the allowance.
async function countTasksOf(uid: number): Promise<number> {
  let total = 0;
  let entries: string[];
  try {
    entries = await readdir("/proc");
  } catch {
    return 0;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const status = await readFile(`/proc/${e}/status`, "utf8");
      const uidLine = /^Uid:\s+(\d+)/m.exec(status);
      const threads = /^Threads:\s+(\d+)/m.exec(status);
      if (uidLine && Number(uidLine[1]) === uid) total += threads ? Number(threads[1]) : 1;
    } catch {
      // Exited while we looked.
    }
  }
  return total;
}

/** BATON_SANDBOX: "auto" (default), "bwrap" (refuse to run unisolated) or "subprocess". */
function requestedMode(): "auto" | SandboxMode {
  const v = (process.env.BATON_SANDBOX ?? "auto").trim().toLowerCase();
  if (v === "" || v === "auto") return "auto";
  if (v === "bwrap" || v === "subprocess") return v;
  throw new Error(`BATON_SANDBOX must be auto, bwrap or subprocess, got "${process.env.BATON_SANDBOX}"`);
}

function planFor(python: string | undefined): Promise<Plan> {
  let want: "auto" | SandboxMode;
  try {
    want = requestedMode();
  } catch (err) {
    return Promise.reject(err);
  }
  const key = `${want}\0${python ?? ""}`;
  let p = plans.get(key);
  if (!p) {
    p = probe(python, want);
    plans.set(key, p);
    // A failed probe (no python at all) should be retried next time, not cached forever.
    p.catch(() => plans.delete(key));
  }
  return p;
}

async function probe(python: string | undefined, want: "auto" | SandboxMode): Promise<Plan> {
  const requested = python ?? (existsSync("/usr/bin/python3") ? "/usr/bin/python3" : which("python3"));
  if (!requested) throw new Error("python3 not found (run scripts/setup-sandbox.sh)");
  const info = await runQuiet([requested, "-I", "-c", "import os,sys;print(os.path.realpath(sys.executable));print(sys.prefix);print(sys.base_prefix)"], 10_000);
  if (info.code !== 0) throw new Error(`${requested} does not run: ${info.stderr.trim().slice(0, 300)}`);
  const [interpreter, prefix, basePrefix] = info.stdout.trim().split("\n");
  if (!interpreter) throw new Error(`${requested} did not report its executable`);
  const extraBinds = [...new Set([prefix, basePrefix].filter((p) => p && !isUnder(p, "/usr")))];
  // An interpreter outside its prefixes (unusual) needs its own directory.
  if (!isUnder(interpreter, "/usr") && !extraBinds.some((p) => isUnder(interpreter, p))) {
    extraBinds.push(interpreter.slice(0, interpreter.lastIndexOf("/")) || "/");
  }

  const prlimit = existsSync("/usr/bin/prlimit") ? "/usr/bin/prlimit" : which("prlimit");
  const setpriv = process.getuid?.() === 0 ? (existsSync("/usr/bin/setpriv") ? "/usr/bin/setpriv" : which("setpriv")) : null;
  const base: Plan = { mode: "subprocess", interpreter, extraBinds, bwrap: null, pidns: null, prlimit, dropToNobody: setpriv };
  if (!prlimit) console.warn("[sandbox] prlimit not found: model-written code runs WITHOUT memory/cpu/process limits");

  if (want === "subprocess") return usable({ ...base, reason: "BATON_SANDBOX=subprocess" });
  const bwrap = which("bwrap");
  if (!bwrap) {
    if (want === "bwrap") throw new Error("BATON_SANDBOX=bwrap but bwrap is not installed (run scripts/setup-sandbox.sh)");
    return usable({ ...base, reason: "bwrap not installed" });
  }
  const candidate: Plan = { ...base, mode: "bwrap", bwrap };
  const why = await tryPlan(candidate);
  if (why === null) return candidate;
  // Dropping to nobody can fail where nobody cannot reach the interpreter (e.g. under /root).
  if (candidate.dropToNobody && (await tryPlan({ ...candidate, dropToNobody: null })) === null) {
    console.warn(`[sandbox] code cannot run as nobody (${why}); running bwrap as root, so the process limit is not enforced`);
    return { ...candidate, dropToNobody: null };
  }
  if (want === "bwrap") throw new Error(`BATON_SANDBOX=bwrap but bwrap does not work here: ${why}`);
  return usable({ ...base, reason: `bwrap does not work here: ${why}` });
}

async function usable(plan: Plan): Promise<Plan> {
  plan = await withPidNamespace(plan);
  if (!plan.dropToNobody) return plan;
  const why = await tryPlan(plan);
  if (why === null) return plan;
  console.warn(`[sandbox] code cannot run as nobody (${why}); running it as root, so the process limit is not enforced`);
  return { ...plan, dropToNobody: null };
}

/** The fallback in its own PID namespace when `unshare --pid` works here (root, mostly). */
async function withPidNamespace(plan: Plan): Promise<Plan> {
  const unshare = existsSync("/usr/bin/unshare") ? "/usr/bin/unshare" : which("unshare");
  if (!unshare) return plan;
  const candidate = { ...plan, pidns: unshare };
  if ((await tryPlan(candidate)) === null) return candidate;
  // dropping to nobody may be what fails; usable() decides that with the namespace kept
  if (plan.dropToNobody && (await tryPlan({ ...candidate, dropToNobody: null })) === null) return candidate;
  return plan;
}

/** null when a trivial program runs and prints through this plan, else why not. */
async function tryPlan(plan: Plan): Promise<string | null> {
  let dir: string | null = null;
  try {
    dir = await mkdtemp(join(tmpdir(), "baton-sandbox-probe-"));
    await writeFile(join(dir, "main.py"), "print('sandbox-ok')\n");
    if (plan.dropToNobody) {
      await chown(dir, NOBODY, NOBODY);
      await chown(join(dir, "main.py"), NOBODY, NOBODY);
    }
    const cmd = await buildCommand(plan, dir, { code: "", timeoutMs: 10_000, memoryMb: 256 });
    const r = await runQuiet(cmd, 10_000, plan.mode === "bwrap" ? {} : sandboxEnv(dir), dir);
    if (r.code === 0 && r.stdout.trim() === "sandbox-ok") return null;
    return (r.stderr.trim() || `exit ${r.code}`).split("\n")[0].slice(0, 300);
  } catch (err) {
    return messageOf(err);
  } finally {
    if (dir) await removeTree(dir);
  }
}

async function runQuiet(cmd: string[], timeoutMs: number, env?: Record<string, string>, cwd?: string) {
  const proc = spawn({ cmd, env, cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: timeoutMs, killSignal: "SIGKILL" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { stdout, stderr, code };
}

// Code may chmod its own files to 000; a non-root owner then needs to restore permissions first.
async function removeTree(dir: string): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true });
    return;
  } catch {
    // Fall through to fixing permissions.
  }
  try {
    await makeWritable(dir);
    await rm(dir, { recursive: true, force: true });
  } catch (err) {
    console.warn(`[sandbox] could not remove ${dir}: ${messageOf(err)}`);
  }
}

async function makeWritable(path: string): Promise<void> {
  const st = await lstat(path);
  if (st.isSymbolicLink() || !st.isDirectory()) return;
  await chmod(path, 0o700);
  for (const e of await readdir(path)) await makeWritable(join(path, e));
}

function invalidInput(input: RunPythonInput): string | null {
  if (typeof input.code !== "string") return "code must be a string";
  if (!Number.isFinite(input.timeoutMs) || input.timeoutMs <= 0) return `timeoutMs must be a positive number of ms, got ${input.timeoutMs}`;
  if (!Number.isFinite(input.memoryMb) || input.memoryMb < 16) return `memoryMb must be at least 16, got ${input.memoryMb}`;
  if (input.maxOutputBytes !== undefined && (!Number.isFinite(input.maxOutputBytes) || input.maxOutputBytes < 1)) {
    return `maxOutputBytes must be a positive number of bytes, got ${input.maxOutputBytes}`;
  }
  return null;
}

function failedStart(mode: SandboxMode, started: number, error: string): RunPythonResult {
  return {
    stdout: "",
    stderr: "",
    exitCode: null,
    signal: null,
    timedOut: false,
    killed: false,
    outputTruncated: false,
    ms: Math.round(performance.now() - started),
    sandbox: mode,
    error,
  };
}

function isUnder(path: string, root: string): boolean {
  return path === root || path.startsWith(root.endsWith("/") ? root : `${root}/`);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
