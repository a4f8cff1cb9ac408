import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { defineCommand, editDistance, formatHelp, parseOptions, suggest } from "../../cli/define-command";
import { ROOT, runBaton } from "./_helpers";

const COMMANDS = readdirSync(join(ROOT, "cli/commands"))
  .filter((f) => f.endsWith(".ts") && !f.startsWith("_"))
  .map((f) => f.slice(0, -3));

describe("suggestions", () => {
  test("edit distance counts inserts, deletes and substitutions", () => {
    expect(editDistance("json", "json")).toBe(0);
    expect(editDistance("jsn", "json")).toBe(1);
    expect(editDistance("sevrer", "server")).toBe(2);
    expect(editDistance("", "abc")).toBe(3);
  });

  test("a typo gets the closest known word, and something unrelated gets none", () => {
    expect(suggest("concurency", ["concurrency", "run", "db"])).toBe("concurrency");
    expect(suggest("cancle", ["cancel", "runs", "status"])).toBe("cancel");
    expect(suggest("stat", ["status", "runs"])).toBe("status");
    expect(suggest("frobnicate", ["status", "runs", "report"])).toBeNull();
  });
});

describe("one declaration gives the parser and the help", () => {
  const options = {
    out: { type: "string", short: "o", value: "FILE", help: "write FILE" },
    what: { type: "string", value: "W", default: "results", help: "results or latency" },
    json: { type: "boolean", default: false, help: "print JSON" },
  } as const;

  test("every declared option appears in the help with its value name and default", () => {
    const help = formatHelp({ name: "x", usage: "RUN", options });
    expect(help).toStartWith("Usage: bun run baton x RUN [options]");
    expect(help).toMatch(/-o, --out FILE +write FILE/);
    expect(help).toMatch(/--what W +results or latency \(default results\)/);
    expect(help).toMatch(/--json +print JSON/);
    expect(help).toMatch(/-h, --help +show this help/);
  });

  test("declared options parse, with their defaults", () => {
    const { values, positionals } = parseOptions(["r1", "-o", "f.csv"], options, true);
    expect(values).toEqual({ out: "f.csv", what: "results", json: false } as any);
    expect(positionals).toEqual(["r1"]);
  });

  test("an unknown option is a usage error naming the closest one", () => {
    expect(() => parseOptions(["--jsn"], options, true)).toThrow("unknown option '--jsn'; did you mean --json?");
    let thrown: any = null;
    try {
      parseOptions(["--wat", "x"], options, true);
    } catch (err) {
      thrown = err;
    }
    expect(thrown?.exitCode).toBe(2);
    expect(thrown?.message).toContain("did you mean --what?");
  });

  test("a command that takes no arguments refuses one by name", () => {
    expect(() => parseOptions(["stray"], options, false)).toThrow("unexpected argument: stray");
  });

  test("--help prints the generated help and does not run the command", async () => {
    let ran = false;
    const cmd = defineCommand({
      name: "x",
      describe: "d",
      options,
      async run() {
        ran = true;
        return 0;
      },
    });
    expect(await cmd.run(["--help"])).toBe(0);
    expect(ran).toBe(false);
    expect(cmd.help).toContain("--what W");
  });
});

describe("every command", () => {
  test("prints its help with exit 0", async () => {
    for (const name of COMMANDS) {
      const r = await runBaton([name, "--help"]);
      expect({ name, code: r.code }).toEqual({ name, code: 0 });
      expect(r.stdout).toContain(`bun run baton ${name}`);
    }
  }, 120_000);

  test("refuses an unknown flag with exit 2 and a suggestion", async () => {
    for (const name of ["cancel", "requeue", "export", "inflight", "runner", "serve", "sim", "demo", "endpoints", "launch", "preflight", "endpoint-agent"]) {
      const r = await runBaton([name, "--jsonn"]);
      expect({ name, code: r.code }).toEqual({ name, code: 2 });
      expect(r.stderr).toContain("unknown option '--jsonn'");
    }
    const typo = await runBaton(["runner", "--concurency", "2"]);
    expect(typo.stderr).toContain("did you mean --concurrency?");
  }, 120_000);

  test("an unknown command exits 2 and names the closest one", async () => {
    const r = await runBaton(["cancle", "1"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'cancle'; did you mean 'cancel'?");
  }, 20_000);
});
