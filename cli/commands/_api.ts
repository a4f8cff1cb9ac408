// Shared HTTP client for CLI commands: server from --server or BATON_SERVER (default
// http://127.0.0.1:3000), token from BATON_TOKEN (never printed). Errors carry the
// server's error-shape message so the user sees what was wrong, not a status code.
export const DEFAULT_SERVER = "http://127.0.0.1:3000";

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export type Api = {
  server: string;
  call<T = any>(method: string, path: string, init?: { json?: unknown; body?: BodyInit; headers?: Record<string, string>; timeoutMs?: number }): Promise<T>;
};

export function serverUrl(flag?: string): string {
  return (flag || process.env.BATON_SERVER || DEFAULT_SERVER).replace(/\/+$/, "");
}

export function createApi({ server, token = process.env.BATON_TOKEN ?? null }: { server?: string; token?: string | null } = {}): Api {
  const base = serverUrl(server);
  return {
    server: base,
    async call(method, path, init = {}) {
      const headers: Record<string, string> = { accept: "application/json", ...init.headers };
      if (token) headers.authorization = `Bearer ${token}`;
      let body = init.body;
      if (init.json !== undefined) {
        headers["content-type"] = "application/json";
        body = JSON.stringify(init.json);
      }
      let res: Response;
      try {
        res = await fetch(base + path, { method, headers, body, signal: AbortSignal.timeout(init.timeoutMs ?? 60_000) });
      } catch (err) {
        throw new CliError(`cannot reach the Baton server at ${base}: ${(err as Error).message} (start it with 'baton serve', or set --server / BATON_SERVER)`);
      }
      const text = await res.text();
      let json: any = null;
      try {
        json = text ? JSON.parse(text) : null;
      } catch {
        json = null;
      }
      if (!res.ok) {
        const msg = json?.error?.message ?? (text.slice(0, 200) || `HTTP ${res.status}`);
        const code = json?.error?.code ? ` [${json.error.code}]` : "";
        throw new CliError(`server answered ${res.status}${code}: ${msg}`);
      }
      return json;
    },
  };
}

/** Runs a command body, printing a CliError's message instead of a stack. */
export async function runCli(body: () => Promise<number>, name: string): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof CliError) {
      console.error(`baton ${name}: ${err.message}`);
      return err.exitCode;
    }
    if ((err as any)?.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" || (err as any)?.code?.startsWith?.("ERR_PARSE_ARGS")) {
      console.error(`baton ${name}: ${(err as Error).message} (see --help)`);
      return 2;
    }
    throw err;
  }
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
