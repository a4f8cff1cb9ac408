// Imports point one way: cli → functions / runner → db. db/ raises its own errors and holds
// what every layer needs (run configs, profiles); nothing below may reach up.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");
const FORBIDDEN: Record<string, string[]> = {
  db: ["functions", "runner", "cli"],
  functions: ["cli"],
  runner: ["cli"],
  cli: [],
};

function tsFilesUnder(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => join(dir, f));
}

// static imports and re-exports (type-only ones too), dynamic import() and require()
const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'"`;]*?from\s*["']([^"']+)["']|(?:^|[\s;(=])import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)|\brequire\(\s*["']([^"']+)["']\s*\)/g;

/** Every module specifier a file imports. Comments are blanked first so prose cannot count. */
export function importsOf(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
  return [...code.matchAll(IMPORT)].map((m) => m[1] ?? m[2] ?? m[3] ?? m[4]);
}

/** The top-level folder a relative import lands in (null for packages and node: modules). */
function layerOf(file: string, spec: string): string | null {
  if (!spec.startsWith(".")) return null;
  return relative(ROOT, resolve(ROOT, dirname(file), spec)).split("/")[0];
}

function upwardImports(): string[] {
  const found: string[] = [];
  for (const [layer, forbidden] of Object.entries(FORBIDDEN)) {
    for (const file of tsFilesUnder(layer)) {
      for (const spec of importsOf(readFileSync(join(ROOT, file), "utf8"))) {
        const target = layerOf(file, spec);
        if (target && forbidden.includes(target)) found.push(`${file} imports ${spec} (${layer}/ may not import ${target}/)`);
      }
    }
  }
  return found;
}

describe("layers", () => {
  test("no file imports from a layer above its own", () => {
    expect(upwardImports()).toEqual([]);
  });

  test("the import reader sees every form of import and ignores comments", () => {
    const source = [
      'import { a } from "../functions/errors";',
      'import type { B } from "../runner/config";',
      'export * from "../cli/x";',
      'import "../cli/side-effect";',
      'const m = await import("../functions/dyn");',
      "import {\n  c,\n  d,\n} from \"./multi\";",
      '// import { no } from "../cli/comment";',
      '/* import { no } from "../cli/block"; */',
    ].join("\n");
    expect(importsOf(source).sort()).toEqual(["../cli/side-effect", "../cli/x", "../functions/dyn", "../functions/errors", "../runner/config", "./multi"]);
  });

  test("an upward import is reported with its file and specifier", () => {
    expect(layerOf("db/runs.ts", "../functions/errors")).toBe("functions");
    expect(layerOf("db/runs.ts", "./errors")).toBe("db");
    expect(layerOf("runner/launch/needs.ts", "../../db/run-needs")).toBe("db");
    expect(layerOf("db/runs.ts", "valibot")).toBeNull();
  });
});
