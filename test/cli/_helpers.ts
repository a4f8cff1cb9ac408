// Shared by the CLI tests: run `baton` as a real process, and start `baton serve` on a
// loopback port for the commands that talk to a server.
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "../..");
export const BATON = join(ROOT, "cli/baton.ts");

export type CliResult = { code: number; stdout: string; stderr: string };

/** One `baton` invocation; env is added to (not replacing) the test's environment. */
export async function runBaton(args: string[], { env = {}, cwd }: { env?: Record<string, string>; cwd?: string } = {}): Promise<CliResult> {
  const p = Bun.spawn([process.execPath, BATON, ...args], { cwd, stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

export type ServeProcess = { base: string; proc: Bun.Subprocess<"ignore", "pipe", "pipe">; banner: string; stop(): Promise<number> };

/** `baton serve --port 0` on a database file; resolves once it prints the URL it serves. */
export async function startServe({ db, env = {} }: { db: string; env?: Record<string, string> }): Promise<ServeProcess> {
  const proc = Bun.spawn([process.execPath, BATON, "serve", "--port", "0", "--db", db], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...env },
  });
  const reader = proc.stdout.getReader();
  let banner = "";
  const deadline = Date.now() + 20_000;
  while (!/serving (http:\/\/\S+)/.test(banner)) {
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`serve did not start: ${banner}`);
    }
    const { value, done } = await reader.read();
    if (done) throw new Error(`serve exited: ${banner}${await new Response(proc.stderr).text()}`);
    banner += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return {
    base: /serving (http:\/\/\S+)/.exec(banner)![1],
    proc,
    banner,
    async stop() {
      proc.kill("SIGTERM");
      return proc.exited;
    },
  };
}
