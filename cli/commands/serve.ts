// `baton serve`: the API (and whatever feature plugins are composed into createApp).
import { parseArgs } from "node:util";
import { isFileUrl, normalizeDatabaseUrl, openDb, DEFAULT_DATABASE_URL } from "../../db/client";
import { createApp, OPENAPI_PATH } from "../../functions/index";
import { DEFAULT_MAX_BODY_BYTES } from "../../functions/runs";
import { runCli, usageError } from "./_api";

export const describe = "start the HTTP API (runs, queue for remote runners, reports, UI)";

const USAGE = `Usage: bun run baton serve [--port 3000] [--host 127.0.0.1] [--db URL] [--max-body-mb N] [--insecure]

Options:
  --port N          port (default 3000; 0 picks a free one)
  --host H          address to bind (default 127.0.0.1)
  --db URL          database (default $DATABASE_URL or ${DEFAULT_DATABASE_URL})
  --max-body-mb N   largest request body (default $BATON_MAX_BODY_MB or ${DEFAULT_MAX_BODY_BYTES / 1024 / 1024})
  --insecure        allow a non-loopback --host without BATON_TOKEN

Environment:
  BATON_TOKEN       bearer token required on every non-GET and every /v1/queue route`;

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

export async function run(argv: string[]): Promise<number> {
  return runCli(async () => {
    const { values } = parseArgs({
      args: argv,
      options: {
        port: { type: "string", default: "3000" },
        host: { type: "string", default: "127.0.0.1" },
        db: { type: "string" },
        "max-body-mb": { type: "string" },
        insecure: { type: "boolean", default: false },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw usageError(`--port: expected 0-65535, got ${values.port}`);
    const maxMb = Number(values["max-body-mb"] ?? process.env.BATON_MAX_BODY_MB ?? DEFAULT_MAX_BODY_BYTES / 1024 / 1024);
    if (!(maxMb > 0)) throw usageError(`--max-body-mb: expected a positive number`);
    const token = process.env.BATON_TOKEN || null;
    const host = values.host!;
    if (!LOOPBACK.has(host) && !token && !values.insecure)
      throw usageError(
        `refusing to listen on ${host} without a token: anyone who can reach it could submit or cancel runs. Set BATON_TOKEN (or pass --insecure).`,
      );
    const url = normalizeDatabaseUrl(values.db ?? process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL);
    const db = await openDb({ url });
    const maxBodyBytes = Math.floor(maxMb * 1024 * 1024);
    const app = createApp({ db, token }, { maxBodyBytes });
    // Bun enforces the limit on chunked bodies too; +1 MiB leaves room for the 413 check to answer
    // in the error shape for declared lengths.
    app.listen({ port, hostname: host, maxRequestBodySize: maxBodyBytes + 1024 * 1024 });
    const bound = app.server!;
    const shown = host.includes(":") ? `[${host}]` : host;
    const base = `http://${shown}:${bound.port}`;
    console.log(`baton: serving ${base}  (API docs: ${base}${OPENAPI_PATH})`);
    console.log(`baton: database ${isFileUrl(url) ? url : url.replace(/\/\/[^@/]*@/, "//***@")}; auth ${token ? "on (BATON_TOKEN)" : "off"}`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
    await app.stop();
    db.$client.close();
    return 0;
  }, "serve");
}
