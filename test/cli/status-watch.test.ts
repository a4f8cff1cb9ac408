// `baton status --watch` in an 80-column terminal (a real pty, from script(1)): every redraw
// fits the width, so the terminal never wraps a copy that the next redraw leaves behind; and
// when the server goes away and comes back, the watch says "reconnecting" and carries on.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatStatusLine, type Summary } from "../../cli/commands/status";
import { BATON } from "./_helpers";

let dir: string;
let port: number;
let serve: Bun.Subprocess | null = null;

async function startServe(): Promise<void> {
  const proc = Bun.spawn([process.execPath, BATON, "serve", "--port", String(port), "--db", join(dir, "w.db")], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, BATON_TOKEN: "" },
  });
  const reader = proc.stdout.getReader();
  let banner = "";
  while (!banner.includes("serving http")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`serve exited: ${banner}${await new Response(proc.stderr).text()}`);
    banner += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  serve = proc;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "baton-cli-watch-"));
  const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  port = probe.port!;
  probe.stop(true);
  await startServe();
}, 30_000);

afterAll(() => {
  serve?.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

const summary = (over: Partial<Summary> = {}): Summary =>
  ({
    id: 1,
    name: "r",
    benchmark: "frames",
    task_count: 12345,
    counts: { queued: 10000, running: 345, succeeded: 1500, failed: 400, canceled: 100 },
    rate_per_min: 123.4,
    eta_ms: 3_600_000,
    done: false,
    canceled_at: null,
    accuracy: 0.5,
    score: 0.25,
    ...over,
  }) as unknown as Summary;

test("the progress line keeps the most useful fields when it must shrink, and never passes the width", () => {
  const full = formatStatusLine(summary());
  expect(full.length).toBeGreaterThan(80);
  for (const width of [200, 79, 59, 39, 20]) {
    const line = formatStatusLine(summary(), width, "answer → Qwen/Qwen3-32B-FP8: 0 healthy");
    expect(line.length).toBeLessThanOrEqual(width);
  }
  const narrow = formatStatusLine(summary(), 79);
  expect(narrow).toContain("2000/12345");
  expect(narrow).toContain("eta 1h00m");
  expect(narrow).not.toContain("canceled 100");
});

// The visible text of each redraw: split at \r and \n, escape sequences removed.
function redraws(output: string): string[] {
  return output
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "")
    .split(/[\r\n]+/)
    .filter((l) => l.trim() !== "");
}

test("--watch fits an 80-column terminal and rides out a server restart", async () => {
  const base = `http://127.0.0.1:${port}`;
  const created = await fetch(`${base}/v1/runs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "watched", benchmark: "frames", tasks: [1, 2, 3].map((i) => ({ id: i, question: `q${i}`, answer: "a" })) }),
  });
  expect(created.status).toBeLessThan(300);
  const cmd = `stty cols 80 rows 24; exec "$0" "$1" status watched --watch --interval 0.1 --server "$2"`;
  const watcher = Bun.spawn(["script", "-qfec", `bash -c '${cmd}' ${process.execPath} ${BATON} ${base}`, "/dev/null"], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, BATON_TOKEN: "", BATON_SERVER: "" },
  });
  let output = "";
  const reader = watcher.stdout.getReader();
  const waitFor = async (text: string, from = 0) => {
    const deadline = Date.now() + 30_000;
    while (!output.slice(from).includes(text)) {
      if (Date.now() > deadline) throw new Error(`no "${text}" in: ${JSON.stringify(output.slice(-500))}`);
      const { value, done } = await reader.read();
      if (done) throw new Error(`watch ended without "${text}": ${JSON.stringify(output.slice(-500))}`);
      output += new TextDecoder().decode(value);
    }
  };
  try {
    await waitFor("0/3");
    serve!.kill("SIGKILL");
    await serve!.exited;
    await waitFor("reconnecting");
    await startServe();
    await waitFor("0/3", output.length); // a redraw from the restarted server
    expect((await fetch(`${base}/v1/runs/watched/cancel`, { method: "POST" })).status).toBe(200);
    await waitFor("CANCELED");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      output += new TextDecoder().decode(value);
    }
    expect(await watcher.exited).toBe(0);
  } finally {
    watcher.kill("SIGKILL");
  }
  const lines = redraws(output);
  expect(lines.some((l) => l.startsWith("reconnecting"))).toBe(true);
  // the redraws, before the final summary block ("run 1 watched ... CANCELED")
  const drawn = lines.slice(0, lines.findIndex((l) => l.startsWith("run ")));
  expect(drawn.length).toBeGreaterThan(2);
  const tooWide = drawn.filter((l) => [...l].length > 79);
  expect(tooWide).toEqual([]);
}, 90_000);
