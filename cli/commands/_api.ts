// What every CLI command shares: the HTTP client (server from --server or BATON_SERVER,
// default http://127.0.0.1:3000; token from BATON_TOKEN or the token file `serve` creates,
// never printed), the error
// convention (one line `baton <cmd>: message` on stderr; exit 1 on failure, 2 on a usage
// error) and small formatting helpers. Server errors carry the server's code so the user
// sees what was wrong, not a bare status.
import { chmodSync, linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { readBody } from "../../runner/http-policy";

export const DEFAULT_SERVER = "http://127.0.0.1:3000";

/** Where `serve` keeps the token it created: $BATON_TOKEN_FILE, else ~/.config/baton/token. */
export function tokenFilePath(): string {
  if (process.env.BATON_TOKEN_FILE) return process.env.BATON_TOKEN_FILE;
  const config = process.env.XDG_CONFIG_HOME || join(homedir(), ".config");
  return join(config, "baton", "token");
}

/** The token file's content, or null when there is none; refuses one others can read. */
export function readTokenFile(path = tokenFilePath()): string | null {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (err) {
    if ((err as any)?.code === "ENOENT") return null;
    throw new CliError(`cannot read the token file ${path}: ${(err as Error).message}`);
  }
  if (mode & 0o077) throw new CliError(`the token file ${path} can be read by other users; run 'chmod 600 ${path}' (or make a new token)`);
  const token = readFileSync(path, "utf8").trim();
  if (!token) throw new CliError(`the token file ${path} is empty; delete it and restart 'baton serve' to make a new one`);
  return token;
}

/**
 * The token file, created with a fresh random token (0600, in a 0700 directory) if missing.
 * Written to a temporary name and hard-linked into place, so two servers starting at once
 * agree on one token and no reader ever sees a half-written file.
 */
export function ensureTokenFile(path = tokenFilePath()): { token: string; created: boolean } {
  const existing = readTokenFile(path);
  if (existing) return { token: existing, created: false };
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, randomBytes(24).toString("hex") + "\n", { mode: 0o600 });
  chmodSync(tmp, 0o600);
  let created = true;
  try {
    linkSync(tmp, path);
  } catch (err) {
    if ((err as any)?.code !== "EEXIST") throw err;
    created = false; // another server won the race: use its token
  } finally {
    unlinkSync(tmp);
  }
  return { token: readTokenFile(path)!, created };
}

/**
 * The token a client sends: BATON_TOKEN when set (set but empty = none), else the token
 * file when there is one.
 */
export function discoverToken(): string | null {
  const env = process.env.BATON_TOKEN;
  if (env !== undefined) return env || null;
  return readTokenFile();
}

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    /** For a failed request: the HTTP status, or 0 when the server could not be reached. */
    readonly status?: number,
  ) {
    super(message);
  }
}

/** Worth asking again later: the server was unreachable, busy or failing (not a refusal). */
export function isTransient(err: unknown): boolean {
  const status = err instanceof CliError ? err.status : undefined;
  return status === 0 || (status !== undefined && status >= 500);
}

/** A bad command line: exit code 2. */
export function usageError(message: string): CliError {
  return new CliError(message, 2);
}

export type Api = {
  server: string;
  call<T = any>(method: string, path: string, init?: { json?: unknown; body?: BodyInit; headers?: Record<string, string>; timeoutMs?: number }): Promise<T>;
  /** A GET whose answer is read as a stream (an export): no timeout once the answer has begun. */
  open(path: string): Promise<Response>;
};

export function serverUrl(flag?: string): string {
  return (flag || process.env.BATON_SERVER || DEFAULT_SERVER).replace(/\/+$/, "");
}

export function createApi({ server, token }: { server?: string; token?: string | null } = {}): Api {
  const base = serverUrl(server);
  if (token === undefined) token = discoverToken();
  const send = async (path: string, init: RequestInit) => {
    try {
      return await fetch(base + path, init);
    } catch (err) {
      throw new CliError(`cannot reach the Baton server at ${base}: ${(err as Error).message} (start it with 'baton serve', or set --server / BATON_SERVER)`, 1, 0);
    }
  };
  return { server: base, call: makeCall(send, token, "server"), open: makeOpen(send, token, "server") };
}

type Send = (path: string, init: RequestInit) => Promise<Response>;

// One request, one answer: JSON on success, the server's { error: { code, message } } as a
// CliError otherwise.
function makeCall(send: Send, token: string | null, from: "server" | "database"): Api["call"] {
  return async (method, path, init = {}) => {
    const headers: Record<string, string> = { accept: "application/json", ...init.headers };
    if (token) headers.authorization = `Bearer ${token}`;
    let body = init.body;
    if (init.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(init.json);
    }
    const res = await send(path, { method, headers, body, signal: AbortSignal.timeout(init.timeoutMs ?? 60_000) });
    const { text, json } = await readBody(res);
    if (!res.ok) throw refusal(res.status, text, json, from);
    return json;
  };
}

function refusal(status: number, text: string, json: any, from: "server" | "database"): CliError {
  const msg = json?.error?.message ?? (text.slice(0, 200) || `HTTP ${status}`);
  const code = json?.error?.code ? ` [${json.error.code}]` : "";
  return new CliError(from === "server" ? `server answered ${status}${code}: ${msg}` : `${msg}${code}`, 1, status);
}

// The answer must begin within a minute; reading it then takes as long as the export does.
function makeOpen(send: Send, token: string | null, from: "server" | "database"): Api["open"] {
  return async (path) => {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error("no answer within 60 s")), 60_000);
    let res: Response;
    try {
      res = await send(path, { method: "GET", headers, signal: abort.signal });
    } finally {
      clearTimeout(timer);
    }
    if (res.ok) return res;
    const { text, json } = await readBody(res);
    throw refusal(res.status, text, json, from);
  };
}

/**
 * A file opened read-only is not migrated: one that is not Baton's, or from an older Baton,
 * is named as such instead of failing later on a missing table or column.
 */
export async function checkSchema(db: { $client: { execute(sql: string): Promise<{ rows: any[] }> } }, migrationsDir: string): Promise<void> {
  let applied: number;
  try {
    applied = Number((await db.$client.execute("SELECT count(*) AS n FROM __drizzle_migrations")).rows[0].n);
  } catch {
    throw new CliError("--db: not a Baton database (it has no migrations table)");
  }
  const known = (JSON.parse(readFileSync(join(migrationsDir, "meta/_journal.json"), "utf8")).entries as unknown[]).length;
  if (applied < known) throw new CliError(`--db: the database is from an older Baton (${applied} of ${known} migrations); 'baton serve --db PATH' upgrades it`);
}

/** What a read command reads from: the server, or a database file opened read-only. */
export type Reader = Api & { close(): void };

/**
 * `--server URL` asks that server; `--db PATH` answers the same API routes in this process
 * over the file opened read-only (nothing is created or migrated); with neither, $DATABASE_URL
 * when set, else the server. Both answer with the same JSON, so a command reads them alike.
 */
export async function openReader({ server, db }: { server?: string; db?: string }): Promise<Reader> {
  if (server && db) throw usageError("--server and --db are exclusive");
  const dbUrl = db ?? (server ? undefined : process.env.DATABASE_URL);
  if (!dbUrl) return { ...createApi({ server }), close() {} };
  // loaded only here: a server-only command does not pay for the app's modules
  const [{ openDb, closeDb, MIGRATIONS_DIR }, { createApp }] = await Promise.all([import("../../db/client"), import("../../functions/index")]);
  let handle: Awaited<ReturnType<typeof openDb>>;
  try {
    handle = await openDb({ url: dbUrl, readOnly: true });
  } catch (err) {
    throw new CliError(`--db: ${(err as Error).message}`);
  }
  try {
    await checkSchema(handle, MIGRATIONS_DIR);
  } catch (err) {
    closeDb(handle);
    throw err;
  }
  const app = createApp({ db: handle, token: null }, { hosts: "loopback" });
  const send: Send = (path, init) => app.handle(new Request(`http://127.0.0.1${path}`, init));
  return { server: dbUrl, call: makeCall(send, null, "database"), open: makeOpen(send, null, "database"), close: () => closeDb(handle) };
}

/**
 * Runs a command body and turns what it throws into one line on stderr and an exit code:
 * CliError keeps its code, a parseArgs error (unknown flag, ...) is a usage error (2), and
 * anything else is a failure (1) shown by its message rather than a stack.
 */
export async function runCli(body: () => Promise<number>, name: string): Promise<number> {
  try {
    return await body();
  } catch (err) {
    const e = err as any;
    if (err instanceof CliError) {
      const hint = err.exitCode === 2 ? ` (see 'bun run baton ${name} --help')` : "";
      console.error(`baton ${name}: ${err.message}${hint}`);
      return err.exitCode;
    }
    if (String(e?.code ?? "").startsWith("ERR_PARSE_ARGS")) {
      console.error(`baton ${name}: ${e.message} (see 'bun run baton ${name} --help')`);
      return 2;
    }
    // Drizzle wraps driver errors; the driver's message says what went wrong without the SQL.
    const message = e?.name === "DrizzleQueryError" ? (e.cause?.message ?? e.message) : (e?.message ?? String(err));
    console.error(`baton ${name}: ${String(message).split("\n")[0]}`);
    return 1;
  }
}

/** A JSON file the user named; `what` says which argument it came from. */
export function readJsonFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new CliError(`${what}: cannot read ${path}: ${(err as any)?.code === "ENOENT" ? "no such file" : (err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CliError(`${what}: ${path} is not valid JSON (${(err as Error).message})`);
  }
}

/**
 * What --json prints, the same for every command: the API's JSON, two-space indented. (A
 * stream such as status --watch --json prints one compact object per line instead.)
 */
export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}

/** Plain left-aligned columns, two spaces apart (lists of runs, endpoints, tasks). */
export function formatColumns(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

export function formatDuration(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms)) return "?";
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  return `${h}h${String(m % 60).padStart(2, "0")}m`;
}

export function formatPct(x: number | null | undefined): string {
  return x == null ? "-" : `${(x * 100).toFixed(1)}%`;
}

export function encodeRef(ref: string): string {
  return encodeURIComponent(ref);
}

/** The one RUN (id or name) most commands take as their positional argument. */
export function oneRun(positionals: string[]): string {
  if (positionals.length !== 1) throw usageError(`expected one RUN (id or name), got ${positionals.length}`);
  return positionals[0];
}
