// One declaration per command: its options (type, value name, help line) produce both the
// parser's configuration and the --help text, so the help cannot drift from what the command
// accepts. An unknown option is a usage error (exit 2) that names the closest known one.
import { parseArgs } from "node:util";
import { runCli, usageError } from "./commands/_api";

export type OptionSpec = {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
  default?: string | boolean | string[];
  /** The value's name in the help (`--out FILE`); string options only. */
  value?: string;
  /** One or more lines; the first goes beside the flag. */
  help: string;
};
export type OptionSpecs = Record<string, OptionSpec>;

type ValueOf<S extends OptionSpec> = S["type"] extends "boolean" ? boolean : S["multiple"] extends true ? string[] : string;
export type OptionValues<O extends OptionSpecs> = {
  [K in keyof O]: O[K] extends { default: unknown } ? ValueOf<O[K]> : ValueOf<O[K]> | undefined;
};

export type CommandSpec<O extends OptionSpecs> = {
  name: string;
  describe: string;
  /** What follows `bun run baton NAME` in each usage line (e.g. "RUN", "RUN DIR"); "" for none. */
  usage?: string | string[];
  /** A paragraph between the usage lines and the options. */
  intro?: string;
  options: O;
  /** A paragraph after the options. */
  notes?: string;
  /** Whether the command takes positional arguments (default: when its usage names any). */
  positionals?: boolean;
  run(args: { values: OptionValues<O>; positionals: string[] }): Promise<number>;
};

export type DefinedCommand = { describe: string; help: string; options: OptionSpecs; run(argv: string[]): Promise<number> };

// Shared options, so every command spells and explains them the same way.
export const SERVER = {
  type: "string",
  value: "URL",
  help: "Baton server (default $BATON_SERVER or http://127.0.0.1:3000);\ntoken from $BATON_TOKEN or the token file",
} as const satisfies OptionSpec;
export const DB = {
  type: "string",
  value: "PATH",
  help: "read this database file directly, read-only (never created);\ndefault $DATABASE_URL, else the server",
} as const satisfies OptionSpec;
export const JSON_OUTPUT = { type: "boolean", default: false, help: "print the result as JSON (two-space indented)" } as const satisfies OptionSpec;

/** Edit distance (insert, delete, substitute one character). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** The known word closest to `word`, when it is close enough to be a likely typo. */
export function suggest(word: string, known: string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const k of known) {
    const d = k.startsWith(word) && word.length >= 3 ? 0.5 : editDistance(word, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best != null && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : null;
}

export function formatHelp(spec: Pick<CommandSpec<OptionSpecs>, "name" | "usage" | "intro" | "options" | "notes">): string {
  const forms = Array.isArray(spec.usage) ? spec.usage : [spec.usage ?? ""];
  const lines = forms.map((f, i) => `${i === 0 ? "Usage: " : "       "}bun run baton ${spec.name}${f ? ` ${f}` : ""} [options]`);
  const flags = Object.entries(spec.options).map(([name, o]) => [`${o.short ? `-${o.short}, ` : ""}--${name}${o.type === "string" ? ` ${o.value ?? "VALUE"}` : ""}${o.multiple ? " ..." : ""}`, o] as const);
  flags.push(["-h, --help", { type: "boolean", help: "show this help" }]);
  const width = Math.max(...flags.map(([f]) => f.length)) + 2;
  const opts = flags.flatMap(([f, o]) => {
    const [first, ...more] = o.help.split("\n");
    const dflt = typeof o.default === "string" ? ` (default ${o.default})` : "";
    return [`  ${f.padEnd(width)} ${first}${more.length ? "" : dflt}`, ...more.map((m, i) => `  ${" ".repeat(width)} ${m}${i === more.length - 1 ? dflt : ""}`)];
  });
  return [lines.join("\n"), spec.intro, `Options:\n${opts.join("\n")}`, spec.notes].filter(Boolean).join("\n\n");
}

/** Parses argv against `options`; an unknown option becomes a usage error naming the closest one. */
export function parseOptions<O extends OptionSpecs>(argv: string[], options: O, allowPositionals: boolean): { values: OptionValues<O>; positionals: string[] } {
  const config: Record<string, any> = { help: { type: "boolean", short: "h" } };
  for (const [name, o] of Object.entries(options)) {
    // parseArgs refuses keys present with the value undefined
    const c: Record<string, unknown> = { type: o.type };
    if (o.short) c.short = o.short;
    if (o.multiple) c.multiple = true;
    if (o.default !== undefined) c.default = o.default;
    config[name] = c;
  }
  try {
    const parsed = parseArgs({ args: argv, options: config, allowPositionals, strict: true });
    return parsed as any;
  } catch (err) {
    const e = err as any;
    if (e?.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      const flag = /Unknown option '([^']+)'/.exec(e.message)?.[1] ?? "";
      const near = flag.startsWith("--") ? suggest(flag.slice(2), Object.keys(config)) : null;
      throw usageError(`unknown option '${flag}'${near ? `; did you mean --${near}?` : ""}`);
    }
    if (e?.code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") throw usageError(`unexpected argument: ${/'([^']+)'/.exec(e.message)?.[1] ?? e.message}`);
    if (String(e?.code ?? "").startsWith("ERR_PARSE_ARGS")) throw usageError(String(e.message).replace(/\.$/, ""));
    throw err;
  }
}

export function defineCommand<O extends OptionSpecs>(spec: CommandSpec<O>): DefinedCommand {
  const help = formatHelp(spec);
  const allowPositionals = spec.positionals ?? (Array.isArray(spec.usage) ? spec.usage.some(Boolean) : !!spec.usage);
  return {
    describe: spec.describe,
    help,
    options: spec.options,
    run: (argv) =>
      runCli(async () => {
        const { values, positionals } = parseOptions(argv, spec.options, allowPositionals);
        if ((values as any).help) {
          console.log(help);
          return 0;
        }
        return spec.run({ values, positionals });
      }, spec.name),
  };
}
