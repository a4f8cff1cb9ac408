// `baton endpoints list|add|disable|enable|import FILE`: edit the endpoint registry that
// runners re-read while running. Talks to the Baton server (--server / BATON_SERVER, token
// from BATON_TOKEN) so it works from a login node; --db URL edits a database directly
// (one machine, or a libSQL server) without a running server.
import { closeDb, openDb } from "../../db/client";
import {
  addEndpoint,
  EndpointInputError,
  importToolOrchestraConfig,
  listEndpoints,
  setEndpointEnabled,
  type EndpointKind,
} from "../../db/endpoints";
import { toEndpointOut, type EndpointOut, type ImportResult } from "../../functions/endpoints";
import { defineCommand, JSON_OUTPUT, SERVER, suggest } from "../define-command";
import { CliError, createApi, formatColumns, readJsonFile, usageError } from "./_api";

type Backend = {
  list(): Promise<EndpointOut[]>;
  add(e: { kind: EndpointKind; name: string; base_url: string }): Promise<EndpointOut>;
  setEnabled(id: number, enabled: boolean): Promise<EndpointOut>;
  importConfig(config: unknown): Promise<ImportResult>;
  close(): Promise<void>;
};

/** Every endpoint, following GET /v1/endpoints' pages. */
export async function listAllEndpoints(api: ReturnType<typeof createApi>): Promise<EndpointOut[]> {
  const all: EndpointOut[] = [];
  let cursor: number | null = null;
  do {
    const page: { endpoints: EndpointOut[]; next_cursor: number | null } = await api.call("GET", `/v1/endpoints${cursor != null ? `?cursor=${cursor}` : ""}`);
    all.push(...page.endpoints);
    cursor = page.next_cursor;
  } while (cursor != null);
  return all;
}

function serverBackend(server: string | undefined): Backend {
  const api = createApi({ server });
  return {
    list: () => listAllEndpoints(api),
    add: (e) => api.call<EndpointOut>("POST", "/v1/endpoints", { json: e }),
    setEnabled: (id, enabled) => api.call<EndpointOut>("POST", `/v1/endpoints/${id}/${enabled ? "enable" : "disable"}`),
    importConfig: (config) => api.call("POST", "/v1/endpoints/import", { json: config }),
    close: async () => {},
  };
}

async function dbBackend(url: string, readOnly: boolean): Promise<Backend> {
  let db: Awaited<ReturnType<typeof openDb>>;
  try {
    db = await openDb({ url, readOnly });
  } catch (err) {
    throw new CliError(`--db: ${(err as Error).message}`);
  }
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
      if (!e) throw new CliError(`endpoint ${id} not found`);
      return toEndpointOut(e);
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
  // base_url comes redacted (no credentials) from toEndpointOut; job: the Slurm task that registered it.
  const job = (r: EndpointOut) => (r.slurm_array_job_id ? `${r.slurm_array_job_id}_${r.slurm_array_task_id}` : (r.slurm_job_id ?? "-"));
  const cells = rows.map((r) => [String(r.id), r.kind, r.name, r.state, r.role ?? "-", job(r), r.base_url, r.enabled ? "yes" : "no"]);
  console.log(formatColumns(["id", "kind", "name", "state", "role", "job", "base_url", "enabled"], cells));
}

function parseId(value: string | undefined): number {
  if (!value || !/^\d+$/.test(value)) throw usageError(`expected a numeric endpoint id, got ${JSON.stringify(value ?? "")}`);
  return Number(value);
}

const SUBCOMMANDS = ["list", "add", "disable", "enable", "import"];

export const { describe, run } = defineCommand({
  name: "endpoints",
  describe: "list, add, disable/enable model and retrieval endpoints; import a ToolOrchestra model config",
  usage: ["list", "add --name MODEL --url http://HOST:PORT [--kind model|retrieval]", "disable ID", "enable ID", "import model_config.json"],
  options: {
    name: { type: "string", value: "MODEL", help: "add: the served model name, or retrieval / wiki_retrieval" },
    url: { type: "string", value: "URL", help: "add: the server root, e.g. http://10.0.0.5:8000" },
    kind: { type: "string", value: "K", default: "model", help: "add: model or retrieval" },
    server: SERVER,
    db: { type: "string", value: "PATH", help: "this database instead of the server (file path, file:, http://, libsql://);\nlist opens it read-only" },
    json: JSON_OUTPUT,
  },
  async run({ values, positionals }) {
    const [sub, arg] = positionals;
    if (!sub) throw usageError("expected a subcommand: list, add, disable, enable or import");
    if (!SUBCOMMANDS.includes(sub)) {
      const near = suggest(sub, SUBCOMMANDS);
      throw usageError(`unknown subcommand '${sub}'${near ? `; did you mean '${near}'?` : ""} (expected list, add, disable, enable or import)`);
    }
    if (values.server && values.db) throw usageError("--server and --db are exclusive");
    const backend = values.db ? await dbBackend(values.db, sub === "list") : serverBackend(values.server);
    try {
      if (sub === "list") {
        const rows = await backend.list();
        if (values.json) console.log(JSON.stringify(rows, null, 2));
        else printTable(rows);
      } else if (sub === "add") {
        if (!values.name) throw usageError("--name is required (the served model name, or retrieval / wiki_retrieval)");
        if (!values.url) throw usageError("--url is required (the server root, e.g. http://10.0.0.5:8000)");
        if (values.kind !== "model" && values.kind !== "retrieval") throw usageError(`--kind must be model or retrieval, got '${values.kind}'`);
        const e = await backend.add({ kind: values.kind, name: values.name, base_url: values.url });
        console.log(values.json ? JSON.stringify(e, null, 2) : `endpoint ${e.id}: ${e.kind} ${e.name} ${e.base_url} (enabled)`);
      } else if (sub === "disable" || sub === "enable") {
        const e = await backend.setEnabled(parseId(arg), sub === "enable");
        console.log(values.json ? JSON.stringify(e, null, 2) : `endpoint ${e.id}: ${e.name} ${e.base_url} ${e.enabled ? "enabled" : "disabled"}`);
      } else {
        if (!arg) throw usageError("import needs a file: baton endpoints import model_config.json");
        const r = await backend.importConfig(readJsonFile(arg, "import"));
        if (values.json) console.log(JSON.stringify(r, null, 2));
        else {
          console.log(`imported ${r.endpoints.length} endpoints from ${arg}`);
          if (r.ignored_keys.length) console.log(`ignored non-endpoint keys: ${r.ignored_keys.join(", ")}`);
          printTable(r.endpoints);
        }
      }
      return 0;
    } finally {
      await backend.close();
    }
  },
});
