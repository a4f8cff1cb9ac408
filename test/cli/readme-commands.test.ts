// Every `bun run baton ...` line of the README, executed as written: each is a real `baton`
// process against a Baton server on loopback, with the simulators as the models and a real
// runner working the queue where the README runs one. A README block that submits a run starts
// from an empty database (as a reader following that section would); the other blocks carry on
// from the previous one. Lines that need Slurm, a fixed port or a foreground process are listed
// in EXCLUDED with the reason, and the test fails when the README gains a line it does not cover.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeConfigDocument } from "../../db/config-wire";
import { q, readJsonl, REPO, simRunConfig, startWorld, type World } from "../runner/_harness";
import { runBaton } from "./_helpers";

/** A line not run here, and why. Matched against the line's arguments (after `bun run baton`). */
const EXCLUDED: [RegExp, string][] = [
  [/^serve\b/, "starts the server in the foreground on fixed port 3000 (a shared machine may use it); the test's server is the same app on a free port"],
  [/^launch\b/, "submits Slurm jobs (sbatch/squeue/scancel): test/slurm/launch.test.ts runs it on the local Slurm"],
  [/^sim --write-config/, "runs the simulators in the foreground until Ctrl-C; the test's simulators are the same cluster (sim/cluster.ts)"],
  [/^status sim --watch$/, "the sim deployment's run is worked by Slurm runner jobs (sbatch), not started here"],
  [/^submit data\/frames-sample\.jsonl --name sim\b/, "part of the Slurm deployment walkthrough (its endpoints come from 'launch')"],
  [/^(submit --from|report frames-hard|sweep |report --sweep)/, "the experiments walkthrough: test/runner/experiments-readme.test.ts executes those lines as written"],
  [/<command>/, "a pattern, not a command"],
];

type Block = { line: number; commands: string[] };

/**
 * The README's fenced blocks' `bun run baton` lines (comments dropped, `a && b` split), then the
 * inline ones (run last, on a database that has runs: they refer to "run 1" and "<path>").
 */
function readCommands(): Block[] {
  const lines = readFileSync(join(REPO, "README.md"), "utf8").split("\n");
  const blocks: Block[] = [];
  const inline: Block[] = [];
  let fence: Block | null = null;
  lines.forEach((l, i) => {
    if (l.startsWith("```")) {
      if (fence?.commands.length) blocks.push(fence);
      fence = fence ? null : { line: i + 1, commands: [] };
      return;
    }
    if (fence) {
      const code = l.replace(/\s+#.*$/, "").trim();
      for (const part of code.split(/\s*&&\s*/)) if (part.startsWith("bun run baton ")) fence.commands.push(part.replace(/\s*&$/, ""));
    } else for (const m of l.matchAll(/`(bun run baton [^`]*)`/g)) inline.push({ line: i + 1, commands: [m[1]] });
  });
  return [...blocks, ...inline];
}

const excludedWhy = (args: string) => EXCLUDED.find(([re]) => re.test(args))?.[1] ?? null;

const rows = readJsonl("data/frames-sample.jsonl").slice(0, 6);
let world: World | null = null;
const worlds: World[] = [];

async function freshWorld(): Promise<World> {
  const w = await startWorld({ rows, sim: { latency: { ttftMs: 2, jitter: 0 } } });
  writeFileSync(join(w.dir, "frames.jsonl"), rows.map((r) => JSON.stringify(r)).join("\n"));
  // run.json as a user writes it: the API's snake_case
  writeFileSync(join(w.dir, "run.json"), JSON.stringify(writeConfigDocument(simRunConfig())));
  writeFileSync(join(w.dir, "model_config.json"), JSON.stringify(w.cluster.config));
  worlds.push(w);
  return w;
}

afterAll(async () => {
  for (const w of worlds) await w.close();
});

const blocks = readCommands();

test("the README's command lines are found", () => {
  const all = blocks.flatMap((b) => b.commands);
  expect(all.length).toBeGreaterThan(15);
  expect(all).toContain("bun run baton runs");
});

describe("README commands", () => {
  for (const block of blocks) {
    for (const command of block.commands) {
      const args = command.slice("bun run baton ".length);
      const why = excludedWhy(args);
      if (why) {
        test.skip(`line ${block.line}: ${command}  (excluded: ${why})`, () => {});
        continue;
      }
      test(`line ${block.line}: ${command}`, async () => {
        if (!world || (block.commands[0] === command && block.commands.some((c) => c.startsWith("bun run baton submit ")))) world = await freshWorld();
        const w = world;
        const dbPath = w.dbUrl.slice("file:".length);
        const argv = args.replaceAll("<path>", dbPath).split(/\s+/);
        const env = { BATON_SERVER: w.server.url, BATON_TOKEN: "test-token", DATABASE_URL: "" };
        // --watch follows a run that runners work (sbatch jobs in the README): one runs beside it
        const runner = argv.includes("--watch") ? runBaton(["runner", "--concurrency", "4", "--exit-when-idle"], { cwd: w.dir, env }) : null;
        const r = await runBaton(argv, { cwd: w.dir, env });
        if (runner) expect((await runner).code).toBe(0);
        if (r.code !== 0) throw new Error(`exit ${r.code}\nstdout: ${r.stdout.slice(-1500)}\nstderr: ${r.stderr.slice(-1500)}`);
        await checkEffect(w, argv, r.stdout);
      }, 120_000);
    }
  }
});

/** What a command should have done, beyond exiting 0. */
async function checkEffect(w: World, argv: string[], stdout: string): Promise<void> {
  const [cmd] = argv;
  if (cmd === "submit") expect(stdout).toMatch(/run \d+ \(frames-full\): 6 tasks queued/);
  if (cmd === "runner") {
    const [open] = await q(w.db, "SELECT count(*) AS n FROM tasks WHERE status IN ('queued', 'running')");
    expect(Number(open.n)).toBe(0);
  }
  if (cmd === "report") expect(stdout).toContain("Latency per tool");
  if (cmd === "export" && argv.includes("toolorchestra")) {
    const dir = join(w.dir, argv[argv.length - 1]);
    expect(existsSync(dir)).toBe(true);
  }
}
