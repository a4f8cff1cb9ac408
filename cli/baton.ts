#!/usr/bin/env bun
// `bun run baton <command> [...]`: each command lives in cli/commands/<name>.ts and exports
// `describe` (one line) and `run(argv)` (returns the exit code), declared with
// cli/define-command.ts. Adding a command is adding a file, so features never edit a shared
// dispatcher.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { suggest } from "./define-command";

export type Command = { describe: string; run(argv: string[]): Promise<number> };

const dir = join(import.meta.dir, "commands");
const names = readdirSync(dir)
  .filter((f) => f.endsWith(".ts") && !f.startsWith("_"))
  .map((f) => f.slice(0, -3))
  .sort();

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    const lines = await Promise.all(
      names.map(async (n) => `  ${n.padEnd(Math.max(...names.map((x) => x.length)))}  ${((await import(join(dir, `${n}.ts`))) as Command).describe}`),
    );
    console.log(`baton — evaluation runs that are never lost and never hang\n\nUsage: bun run baton <command> [options]\n\nCommands:\n${lines.join("\n")}\n\nRun 'bun run baton <command> --help' for a command's options.`);
    return name ? 0 : 2;
  }
  if (!names.includes(name)) {
    const near = suggest(name, names);
    console.error(`baton: unknown command '${name}'${near ? `; did you mean '${near}'?` : ""} Commands: ${names.join(", ")}`);
    return 2;
  }
  const cmd = (await import(join(dir, `${name}.ts`))) as Command;
  return cmd.run(rest);
}

const code = await main(process.argv.slice(2));
// Commands that started servers or timers return when done; exit explicitly so a stray
// keep-alive socket cannot hold the process open.
process.exit(code);
