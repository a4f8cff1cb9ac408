// `baton serve`: the API (and whatever feature plugins are composed into createApp).
import { isFileUrl, normalizeDatabaseUrl, openDb, DEFAULT_DATABASE_URL } from "../../db/client";
import { isLoopbackHost } from "../../functions/auth";
import { createApp, OPENAPI_PATH } from "../../functions/index";
import { DEFAULT_MAX_BODY_BYTES } from "../../functions/runs";
import { defineCommand } from "../define-command";
import { ensureTokenFile, tokenFilePath, usageError } from "./_api";

export const { describe, run } = defineCommand({
  name: "serve",
  describe: "start the HTTP API (runs, queue for remote runners, reports, UI)",
  options: {
    port: { type: "string", value: "N", default: "3000", help: "port (0 picks a free one)" },
    host: { type: "string", value: "H", default: "127.0.0.1", help: "address to bind" },
    db: { type: "string", value: "URL", help: `database (default $DATABASE_URL or ${DEFAULT_DATABASE_URL})` },
    "max-body-mb": { type: "string", value: "N", help: `largest request body (default $BATON_MAX_BODY_MB or ${DEFAULT_MAX_BODY_BYTES / 1024 / 1024})` },
    "allow-origin": {
      type: "string",
      value: "URL",
      multiple: true,
      default: [],
      help: "a web origin (scheme://host:port) whose pages may send changes; repeatable.\nOther sites' pages are refused (403) even when they reach the server.",
    },
    insecure: { type: "boolean", default: false, help: "allow a non-loopback --host without a token" },
  },
  notes: `Token (required on every /v1 route, reads included; the web page logs in once with it):
  BATON_TOKEN         the token; set but empty turns auth off (loopback only)
  otherwise           the token file $BATON_TOKEN_FILE or ~/.config/baton/token, created on first
                      start (0600) with a random token. The CLI and runners read the same file.
Bound to loopback, the server answers only to loopback Host names (DNS rebinding).`,
  async run({ values }) {
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw usageError(`--port: expected 0-65535, got ${values.port}`);
    const maxMb = Number(values["max-body-mb"] ?? process.env.BATON_MAX_BODY_MB ?? DEFAULT_MAX_BODY_BYTES / 1024 / 1024);
    if (!(maxMb > 0)) throw usageError(`--max-body-mb: expected a positive number`);
    const allowOrigins = values["allow-origin"].map(checkOrigin);
    const host = values.host;
    const loopback = isLoopbackHost(host.replace(/^\[|\]$/g, ""));
    const { token, source } = chooseToken();
    if (!loopback && !token && !values.insecure)
      throw usageError(
        `refusing to listen on ${host} without a token: anyone who can reach it could submit or cancel runs. Unset BATON_TOKEN= (to use the token file) or set it (or pass --insecure).`,
      );
    const url = normalizeDatabaseUrl(values.db ?? process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL);
    const db = await openDb({ url, backgroundCheckpoint: true });
    const maxBodyBytes = Math.floor(maxMb * 1024 * 1024);
    const app = createApp({ db, token }, { maxBodyBytes, allowOrigins, hosts: loopback ? "loopback" : "any" });
    // The app enforces the limit itself: a declared length before reading, a chunked body while
    // reading (413 in the error shape either way). Bun's own cap would answer first with an
    // empty 413, so it is lifted; no route reads a body except through the app's reader.
    app.listen({ port, hostname: host, maxRequestBodySize: Number.MAX_SAFE_INTEGER });
    const bound = app.server!;
    const shown = host.includes(":") ? `[${host}]` : host;
    const base = `http://${shown}:${bound.port}`;
    console.log(`baton: serving ${base}  (API docs: ${base}${OPENAPI_PATH}; web page: ${base}/ui)`);
    console.log(`baton: database ${isFileUrl(url) ? url : url.replace(/\/\/[^@/]*@/, "//***@")}; auth ${token ? `on (${source})` : "off"}`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
    await app.stop();
    db.$client.close();
    return 0;
  },
});

/** BATON_TOKEN if set (empty = none), else the token file, created on first start. */
function chooseToken(): { token: string | null; source: string } {
  const env = process.env.BATON_TOKEN;
  if (env !== undefined) return { token: env || null, source: "BATON_TOKEN" };
  const path = tokenFilePath();
  const { token, created } = ensureTokenFile(path);
  return { token, source: `token file ${path}${created ? ", just created" : ""}` };
}

function checkOrigin(origin: string): string {
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    throw usageError(`--allow-origin: ${JSON.stringify(origin)} is not a URL (expected scheme://host[:port])`);
  }
  if (u.origin !== origin.replace(/\/$/, "")) throw usageError(`--allow-origin: expected scheme://host[:port] without a path, got ${JSON.stringify(origin)}`);
  return u.origin;
}
