// Small node:http helpers shared by the simulators. node:http (not Bun.serve/Elysia) because
// the faults need the raw socket: "reset" destroys it without a response, "stream_cut" ends
// an SSE stream mid-way, and down()/up() close and reopen the listener on the same port.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { FAULT_HEADER } from "./faults";
import { SettingsError } from "./settings";

export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  if (res.destroyed || res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string, contentType = "text/plain"): void {
  if (res.destroyed || res.headersSent) return;
  res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** Destroys the connection without a response (the client sees ECONNRESET / socket closed). */
export function resetConnection(req: IncomingMessage): void {
  req.socket.destroy();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * A listener that can go down (connections refused, open ones reset) and come back up on the
 * same port. Crash-on-handler-error is turned into a 500 so a simulator bug shows as a response.
 */
export class Listener {
  private server: Server;
  private listening = false;
  port = 0;

  constructor(
    readonly host: string,
    private readonly requestedPort: number,
    handler: Handler,
  ) {
    this.server = createServer((req, res) => {
      Promise.resolve(handler(req, res)).catch((err: unknown) => {
        if (res.destroyed) return; // the client went away mid-request: nothing to report
        console.error("[sim] handler error:", err);
        sendJson(res, 500, { error: { message: `simulator error: ${String(err)}`, type: "InternalServerError", param: null, code: 500 } });
      });
    });
    // A "hang" must outlive any server-side timer: the client's timeout is what ends it.
    this.server.requestTimeout = 0;
    this.server.headersTimeout = 0;
    this.server.keepAliveTimeout = 5_000;
  }

  async up(): Promise<void> {
    if (this.listening) return;
    const port = this.port || this.requestedPort;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once("error", onError);
      this.server.listen(port, this.host, () => {
        this.server.off("error", onError);
        resolve();
      });
    });
    this.listening = true;
    this.port = (this.server.address() as { port: number }).port;
  }

  async down(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  get isUp(): boolean {
    return this.listening;
  }
}

/** What both simulators return: a replica on its own loopback port, steerable at run time. */
export type SimServer<Settings, Patch, Stats> = {
  /** Server root, e.g. http://127.0.0.1:PORT (clients append /v1/... or /retrieve). */
  url: string;
  port: number;
  settings(): Settings;
  /** Merges a partial settings object; applies to requests that arrive afterwards. */
  update(patch: Patch): Settings;
  stats(): Stats;
  /** Closes the listener (connections refused) and resets open connections. */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  stop(): Promise<void>;
};

export async function serveSim<Settings, Patch, Stats>({
  host,
  port,
  handle,
  settings,
  update,
  stats,
}: {
  host: string;
  port: number;
  handle: Handler;
  settings: () => Settings;
  update: (patch: Patch) => Settings;
  stats: () => Stats;
}): Promise<SimServer<Settings, Patch, Stats>> {
  const listener = new Listener(host, port, handle);
  await listener.up();
  return {
    url: urlFor(host, listener.port),
    port: listener.port,
    settings,
    update,
    stats,
    down: () => listener.down(),
    up: () => listener.up(),
    stop: () => listener.down(),
  };
}

export function urlFor(host: string, port: number): string {
  return host.includes(":") ? `http://[${host}]:${port}` : `http://${host}:${port}`;
}

/**
 * The admin routes both simulators serve (GET/POST /admin/settings, GET /admin/stats).
 * Returns false when the request is not one of them.
 */
export async function handleAdmin<P>({
  req,
  res,
  path,
  method,
  snapshot,
  update,
  stats,
}: {
  req: IncomingMessage;
  res: ServerResponse;
  path: string;
  method: string;
  snapshot: () => unknown;
  update: (patch: P) => unknown;
  stats: () => unknown;
}): Promise<boolean> {
  if (path === "/admin/settings" && method === "GET") {
    sendJson(res, 200, snapshot());
    return true;
  }
  if (path === "/admin/settings" && method === "POST") {
    let patch: unknown;
    try {
      patch = JSON.parse(await readBody(req));
    } catch (err) {
      sendJson(res, 400, { error: { code: "sim.invalid_json", message: `body: ${(err as Error).message}` } });
      return true;
    }
    try {
      sendJson(res, 200, update(patch as P));
    } catch (err) {
      if (!(err instanceof SettingsError)) throw err;
      sendJson(res, 400, { error: { code: "sim.invalid_settings", message: err.message } });
    }
    return true;
  }
  if (path === "/admin/stats" && method === "GET") {
    sendJson(res, 200, stats());
    return true;
  }
  return false;
}

/**
 * Counts a request as in flight until its response closes. The returned probe tells a
 * handler that the client has gone, so it stops generating for nobody.
 */
export function trackRequest(res: ServerResponse, counters: { requests: number; inFlight: number }): () => boolean {
  counters.requests++;
  counters.inFlight++;
  let closed = false;
  res.on("close", () => {
    closed = true;
    counters.inFlight--;
  });
  return () => closed;
}

/** The x-sim-fault header of a request (the first one if repeated). */
export function faultHeader(req: IncomingMessage): string | undefined {
  const header = req.headers[FAULT_HEADER];
  return Array.isArray(header) ? header[0] : header;
}
