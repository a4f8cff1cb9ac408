// `baton endpoints list|add|disable|enable|import FILE`: edit the endpoint registry that
// runners re-read while running. Talks to the Baton server (--server / BATON_SERVER, token
// from BATON_TOKEN) so it works from a login node; --db URL edits a database directly
// (one machine, or a libSQL server) without a running server.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { closeDb, openDb } from "../../db/client";
import {
  addEndpoint,
  EndpointInputError,
  importToolOrchestraConfig,
  listEndpoints,
  setEndpointEnabled,
  type EndpointKind,
} from "../../db/endpoints";
import { toEndpointOut, type EndpointOut } from "../../functions/endpoints";

export const describe = "list, add, disable/enable model and retrieval endpoints; import a ToolOrchestra model config";

const USAGE = `Usage:
  bun run baton endpoints list [--json]
  bun run baton endpoints add --name MODEL --url http://HOST:PORT [--kind model|retrieval]
  bun run baton endpoints disable ID
  bun run baton endpoints enable ID
  bun run baton endpoints import model_config.json

Options:
  --server URL   Baton server (default $BATON_SERVER or http://127.0.0.1:3000); token from $BATON_TOKEN
  --db URL       edit this database directly instead (file path, file:, http://, libsql://)
  --json         print JSON instead of a table`;

type Backend = {
  list(): Promise<EndpointOut[]>;
  add(e: { kind: EndpointKind; name: string; base_url: string }): Promise<EndpointOut>;
  setEnabled(id: number, enabled: boolean): Promise<EndpointOut | null>;
  importConfig(config: unknown): Promise<{ endpoints: EndpointOut[]; ignored_keys: string[] }>;
  close(): Promise<void>;
};

class CliError extends Error {}

function serverBackend(server: string, token: string | null): Backend {
  const base = server.replace(/\/+$/, "");
  async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (token) headers.authorization = `Bearer ${token}`;
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new CliError(`cannot reach the Baton server at ${base}: ${(err as Error).message} (set --server or BATON_SERVER, or use --db)`);
    }
    const text = await res.text();
    let json: any = null;
    try {
      json = JSON.parse(text);
    } catch {
      // leave null: reported below with the status
    }
    if (res.status >= 400 && res.status !== 404) {
      throw new CliError(json?.error?.message ? `${json.error.code}: ${json.error.message}` : `HTTP ${res.status} from ${path}`);
    }
    return { status: res.status, json };
  }
  return {
    list: async () => (await call("GET", "/v1/endpoints")).json.endpoints,
    add: async (e) => (await call("POST", "/v1/endpoints", e)).json,
    setEnabled: async (id, enabled) => {
      const r = await call("POST", `/v1/endpoints/${id}/${enabled ? "enable" : "disable"}`);
      return r.status === 404 ? null : r.json;
    },
    importConfig: async (config) => (await call("POST", "/v1/endpoints/import", config)).json,
    close: async () => {},
  };
}

async function dbBackend(url: string): Promise<Backend> {
  const db = await openDb({ url });
  const wrap = async <T>(f: () => Promise<T>) => {
    try {
      return await f();
    } catch (err) {
      if (err instanceof EndpointInputError) throw new CliError(err.message);
      throw err;
    }
  };
  return {
    list: async () => (await listEndpoints({ db })).map(toEndpointOut),
    add: (e) => wrap(async () => toEndpointOut(await addEndpoint({ db, endpoint: { kind: e.kind, name: e.name, baseUrl: e.base_url } }))),
    setEnabled: async (id, enabled) => {
      const e = await setEndpointEnabled({ db, id, enabled });
      return e ? toEndpointOut(e) : null;
    },
    importConfig: (config) =>
      wrap(async () => {
        const r = await importToolOrchestraConfig({ db, config });
        return { endpoints: r.endpoints.map(toEndpointOut), ignored_keys: r.ignoredKeys };
      }),
    close: async () => closeDb(db),
  };
}

function printTable(rows: EndpointOut[]): void {
  if (rows.length === 0) {
    console.log("no endpoints (add one with 'baton endpoints add' or 'baton endpoints import model_config.json')");
    return;
  }
  const header = ["id", "kind", "name", "base_url", "enabled"];
  const cells = rows.map((r) => [String(r.id), r.kind, r.name, r.base_url, r.enabled ? "yes" : "no"]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  for (const line of [header, ...cells]) console.log(line.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
}

function parseId(value: string | undefined): number {
  if (!value || !/^\d+$/.test(value)) throw new CliError(`expected a numeric endpoint id, got ${JSON.stringify(value ?? "")}`);
  return Number(value);
}

export async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        server: { type: "string" },
        db: { type: "string" },
        name: { type: "string" },
        url: { type: "string" },
        kind: { type: "string", default: "model" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    console.error(`baton endpoints: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [sub, arg] = positionals;
  if (values.help || !sub) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  if (!["list", "add", "disable", "enable", "import"].includes(sub)) {
    console.error(`baton endpoints: unknown subcommand '${sub}'\n\n${USAGE}`);
    return 2;
  }
  let backend: Backend | null = null;
  try {
    backend = values.db
      ? await dbBackend(values.db)
      : serverBackend(values.server ?? process.env.BATON_SERVER ?? "http://127.0.0.1:3000", process.env.BATON_TOKEN || null);
    if (sub === "list") {
      const rows = await backend.list();
      if (values.json) console.log(JSON.stringify(rows, null, 2));
      else printTable(rows);
    } else if (sub === "add") {
      if (!values.name) throw new CliError("--name is required (the served model name, or retrieval / wiki_retrieval)");
      if (!values.url) throw new CliError("--url is required (the server root, e.g. http://10.0.0.5:8000)");
      if (values.kind !== "model" && values.kind !== "retrieval") throw new CliError(`--kind must be model or retrieval, got '${values.kind}'`);
      const e = await backend.add({ kind: values.kind, name: values.name, base_url: values.url });
      console.log(values.json ? JSON.stringify(e, null, 2) : `endpoint ${e.id}: ${e.kind} ${e.name} ${e.base_url} (enabled)`);
    } else if (sub === "disable" || sub === "enable") {
      const id = parseId(arg);
      const e = await backend.setEnabled(id, sub === "enable");
      if (!e) throw new CliError(`endpoint ${id} not found`);
      console.log(values.json ? JSON.stringify(e, null, 2) : `endpoint ${e.id}: ${e.name} ${e.base_url} ${e.enabled ? "enabled" : "disabled"}`);
    } else {
      if (!arg) throw new CliError("import needs a file: baton endpoints import model_config.json");
      let config: unknown;
      try {
        config = JSON.parse(readFileSync(arg, "utf8"));
      } catch (err) {
        throw new CliError(`${arg}: ${(err as any)?.code === "ENOENT" ? "no such file" : `not valid JSON (${(err as Error).message})`}`);
      }
      const r = await backend.importConfig(config);
      if (values.json) console.log(JSON.stringify(r, null, 2));
      else {
        console.log(`imported ${r.endpoints.length} endpoints from ${arg}`);
        if (r.ignored_keys.length) console.log(`ignored non-endpoint keys: ${r.ignored_keys.join(", ")}`);
        printTable(r.endpoints);
      }
    }
    return 0;
  } catch (err) {
    if (err instanceof CliError) {
      console.error(`baton endpoints: ${err.message}`);
      return 1;
    }
    throw err;
  } finally {
    await backend?.close();
  }
}
