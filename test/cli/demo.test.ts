// `bun run demo` as a user runs it, with stdout going to a pipe (a CI log): progress comes
// as plain lines (no carriage returns), and the summary is the real report.
import { expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { runBaton } from "./_helpers";

const REPO = join(import.meta.dir, "../..");

test("the demo prints plain progress lines into a pipe and ends with the report of its run", async () => {
  const child = Bun.spawn([process.execPath, join(REPO, "cli/baton.ts"), "demo", "--tasks", "12"], {
    cwd: REPO,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  expect(err).toBe("");
  expect(code).toBe(0);
  expect(out).not.toContain("\r");
  const progress = out.split("\n").filter((l) => l.startsWith("progress "));
  expect(progress.length).toBeGreaterThan(0);
  expect(progress.at(-1)).toMatch(/^progress {3}12\/12 done \(succeeded \d+, failed \d+, running 0, queued 0\)/);
  // the sections of `baton report`, not a table of the demo's own
  expect(out).toMatch(/^Run 1 · frames-demo \(frames\)$/m);
  expect(out).toMatch(/^Tasks 12: \d+ succeeded/m);
  // a heading may carry what it covers after it ("Latency per tool: its own time; …")
  for (const section of ["Latency per tool", "Latency per component", "Endpoints", "Tokens", "Slowest calls"])
    expect(out).toMatch(new RegExp(`^${section}(\\b|$)`, "m"));
  expect(out).toMatch(/^done in \d+\.\d s$/m);
}, 60_000);

test("demo --keep leaves a database file that is complete on its own (its WAL folded in)", async () => {
  const child = Bun.spawn([process.execPath, join(REPO, "cli/baton.ts"), "demo", "--tasks", "3", "--keep"], { cwd: REPO, stdout: "pipe", stderr: "pipe" });
  const [out, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
  expect(code).toBe(0);
  const path = /database kept at (\S+) /.exec(out)![1];
  try {
    expect(existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size : 0).toBe(0);
    // the file alone, copied where no WAL can follow it, holds the whole run
    const copy = join(mkdtempSync(join(tmpdir(), "baton-demo-copy-")), "copy.db");
    copyFileSync(path, copy);
    const r = await runBaton(["runs", "--json", "--db", copy], { env: { DATABASE_URL: "", BATON_SERVER: "" } });
    expect(r.code).toBe(0);
    const [run] = JSON.parse(r.stdout);
    expect(run).toMatchObject({ name: "frames-demo", task_count: 3, done: true });
    rmSync(dirname(copy), { recursive: true, force: true });
  } finally {
    rmSync(dirname(path), { recursive: true, force: true });
  }
}, 60_000);
