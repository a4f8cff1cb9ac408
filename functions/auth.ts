// Who may ask what, decided before any body is read (onRequest), in this order:
//   1. Host: when bound to loopback, only loopback Host names are served, so a DNS-rebinding
//      page (evil.example resolving to 127.0.0.1) gets 421 instead of the API.
//   2. Cross-site: a state-changing request from another origin (Origin header or
//      Sec-Fetch-Site) is refused unless `serve --allow-origin` names that origin.
//   3. Token: with a token configured, every /v1 route needs it (bearer header or the web
//      page's HttpOnly cookie), reads included: task inputs carry gold answers, endpoints
//      carry URLs, runners carry hosts and pids. Open: /healthz, /openapi, the UI's files,
//      and the login route that sets the cookie.
//   4. Media type: a state-changing request with a body must say JSON or JSONL; a form or
//      text/plain body (what a cross-site page can send without a preflight) is 415.
import { createHash, timingSafeEqual } from "node:crypto";
import { Elysia } from "elysia";
import type { AppDeps } from "./deps";
import { errorBody } from "./errors";

export const TOKEN_COOKIE = "baton_token";

export const JSON_TYPES = ["application/json"];
export const JSONL_TYPES = ["application/x-ndjson", "application/jsonl", "application/x-jsonlines"];

export type GuardOptions = {
  // "loopback": refuse Host names other than 127.0.0.0/8, localhost, [::1] (the default).
  hosts?: "loopback" | "any";
  // Origins (scheme://host[:port]) whose pages may send state-changing requests.
  allowOrigins?: string[];
};

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/** Constant-time: compares fixed-length digests so neither content nor length leaks. */
export function tokensMatch(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
const OPEN_PATHS = /^\/(healthz|openapi(\/.*)?|ui(\/.*)?)?$/;

export function needsToken({ method, path }: { method: string; path: string }): boolean {
  if (path === "/ui/login") return false;
  return !SAFE_METHODS.has(method) || !OPEN_PATHS.test(path);
}

/** The cookie's value, or null. */
export function readCookie(header: string | null, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/** null = allowed; otherwise the 401 body to send. */
export function checkBearer({
  token,
  method,
  path,
  authorization,
  cookie = null,
}: {
  token: string | null;
  method: string;
  path: string;
  authorization: string | null;
  cookie?: string | null;
}): { code: string; message: string } | null {
  if (!token || !needsToken({ method, path })) return null;
  const fromCookie = readCookie(cookie, TOKEN_COOKIE);
  if (!authorization && fromCookie) {
    return tokensMatch(fromCookie, token) ? null : { code: "auth.invalid_token", message: "the login cookie is not valid; log in again at /ui" };
  }
  if (!authorization)
    return { code: "auth.missing_token", message: "this route needs 'Authorization: Bearer <token>' (BATON_TOKEN or the token file; see baton serve --help)" };
  const m = /^Bearer\s+(.+)$/i.exec(authorization.trim());
  if (!m || !tokensMatch(m[1], token)) return { code: "auth.invalid_token", message: "the bearer token is not valid" };
  return null;
}

const LOOPBACK_NAMES = new Set(["localhost", "[::1]", "::1"]);

/** 127.0.0.0/8, localhost (and *.localhost), [::1]. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.$/, "");
  if (LOOPBACK_NAMES.has(h) || h.endsWith(".localhost")) return true;
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return !!m && m.slice(1).every((x) => Number(x) <= 255);
}

/** The media type without parameters, lower case; "" when absent. */
export function mediaType(contentType: string | null | undefined): string {
  return (contentType ?? "").split(";")[0].trim().toLowerCase();
}

function hasBody(request: Request): boolean {
  const length = request.headers.get("content-length");
  if (length !== null) return Number(length) > 0;
  return request.headers.has("transfer-encoding") || request.body !== null;
}

type Refusal = { status: number; code: string; message: string; headers?: Record<string, string> };

/** null = the request may go on; otherwise why not. Exported for unit tests. */
export function checkRequest(request: Request, url: URL, deps: AppDeps, options: GuardOptions): Refusal | null {
  if ((options.hosts ?? "loopback") === "loopback" && !isLoopbackHost(url.hostname))
    return {
      status: 421,
      code: "request.bad_host",
      message: `this server answers only to loopback names (127.0.0.1, localhost, [::1]), not ${JSON.stringify(url.host)}`,
    };
  const unsafe = !SAFE_METHODS.has(request.method);
  if (unsafe) {
    const crossSite = checkOrigin(request, url, options.allowOrigins ?? []);
    if (crossSite) return { status: 403, code: "request.cross_origin", message: crossSite };
  }
  const denied = checkBearer({
    token: deps.token,
    method: request.method,
    path: url.pathname,
    authorization: request.headers.get("authorization"),
    cookie: request.headers.get("cookie"),
  });
  if (denied) return { status: 401, ...denied, headers: { "www-authenticate": "Bearer" } };
  if (unsafe) {
    const type = mediaType(request.headers.get("content-type"));
    const allowed = JSON_TYPES.includes(type) || JSONL_TYPES.includes(type);
    if (type ? !allowed : hasBody(request))
      return {
        status: 415,
        code: "request.unsupported_media_type",
        message: `content-type: expected application/json (or application/x-ndjson for a JSONL submit), got ${type ? JSON.stringify(type) : "none"}`,
      };
  }
  return null;
}

/** A refusal message for a cross-site request, or null when it is same-origin or allowed. */
function checkOrigin(request: Request, url: URL, allowOrigins: string[]): string | null {
  const origin = request.headers.get("origin");
  if (origin !== null) {
    if (origin === url.origin || allowOrigins.includes(origin)) return null;
    return `origin ${JSON.stringify(origin)} may not change anything here (serve --allow-origin adds one)`;
  }
  // No Origin: a browser always sends one on a cross-origin POST, so this is a same-origin
  // page or a non-browser client. Sec-Fetch-Site is checked anyway for old engines.
  const site = request.headers.get("sec-fetch-site");
  if (site === "cross-site" || site === "same-site")
    return `a ${site} request may not change anything here (serve --allow-origin adds an origin)`;
  return null;
}

// A page from an allowed origin sends JSON with a bearer header, which makes the browser ask
// first (a CORS preflight) and read the answer only with these headers; no other origin gets
// them, so no other page can read anything either.
function corsHeaders(origin: string): Record<string, string> {
  return {
    "access-control-allow-origin": origin,
    "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE",
    "access-control-allow-headers": "authorization, content-type, idempotency-key",
    "access-control-max-age": "600",
    vary: "Origin",
  };
}

export const authGuard = (deps: AppDeps, options: GuardOptions = {}) =>
  new Elysia({ name: "auth" }).onRequest(({ request, set }) => {
    const origin = request.headers.get("origin");
    if (origin && origin !== "null" && (options.allowOrigins ?? []).includes(origin)) {
      Object.assign(set.headers, corsHeaders(origin));
      if (request.method === "OPTIONS") {
        set.status = 204;
        return "";
      }
    }
    const refusal = checkRequest(request, new URL(request.url), deps, options);
    if (!refusal) return;
    set.status = refusal.status;
    Object.assign(set.headers, refusal.headers ?? {});
    return errorBody(refusal.code, refusal.message);
  });
