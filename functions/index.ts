// The whole HTTP API as one Elysia app. Each feature is a plugin factory over AppDeps;
// to add yours, import it and add one `.use(yourRoutes(deps))` line below the others.
// The guard and the error handler are registered first so they cover every plugin.
import { openapi } from "@elysiajs/openapi";
import { toJsonSchema } from "@valibot/to-json-schema";
import { Elysia } from "elysia";
import * as v from "valibot";
import { authGuard, JSONL_TYPES, mediaType, type GuardOptions } from "./auth";
import { parseJsonStrict, readBodyText, tooLarge } from "./body";
import type { AppDeps } from "./deps";
import { endpointsRoutes } from "./endpoints";
import { ApiError, errorBody, toApiError } from "./errors";
import { healthRoutes } from "./health";
import { inflightRoutes } from "./inflight";
import { queueRoutes } from "./queue";
import { DEFAULT_MAX_BODY_BYTES, parseJsonlSubmit, runsRoutes } from "./runs";
import { tasksRoutes } from "./tasks";
import { reportRoutes } from "./report";
import { experimentsRoutes } from "./experiments";
import { exportRoutes } from "./export";
import { describeRoutes, setStreamedMediaTypes, TAGS } from "./openapi-doc";
import { incompatibility, LICENSE, VERSION } from "../version";
import { timelineRoutes } from "./timeline";
import { SWAGGER_CSS, SWAGGER_JS, uiRoutes } from "./ui";

export type AppOptions = GuardOptions & {
  // Requests declaring a larger Content-Length get 413 before the body is read; a chunked
  // body gets it once the bytes read pass the limit.
  maxBodyBytes?: number;
};

export const OPENAPI_PATH = "/openapi";
// Every answer carries the server's version; a client that sends its own (the runner does) is
// refused with 409 version.incompatible when the pair may not speak the same protocol.
export const VERSION_HEADER = "x-baton-version";

function checkClientVersion(request: Request): ApiError | null {
  const sent = request.headers.get(VERSION_HEADER);
  const why = sent == null ? null : incompatibility({ runner: sent, server: VERSION });
  return why ? new ApiError(409, "version.incompatible", why) : null;
}

/** Maps any thrown error to { status, body } in the one error shape. Never echoes SQL. */
export function toErrorResponse({ code, error }: { code: unknown; error: unknown }): {
  status: number;
  body: ReturnType<typeof errorBody>;
  headers?: Record<string, string>;
} {
  const e = error as any;
  const api = toApiError(error);
  if (api) return { status: api.status, body: errorBody(api.code, api.message) };
  // Elysia wraps what a parse hook throws (a JSONL line error) in its ParseError.
  if (code === "PARSE" && toApiError(e?.cause)) return toErrorResponse({ code: "", error: e.cause });
  if (code === "VALIDATION") {
    const issue = e?.valueError as v.BaseIssue<unknown> | undefined;
    const where = e?.type && e.type !== "body" ? String(e.type) : "";
    // a problem with the body as a whole (null, a list, a number) is blamed on "body"
    const field = (issue ? [where, v.getDotPath(issue)].filter(Boolean).join(".") : where) || (e?.type === "body" ? "body" : "");
    const message =
      /object$/.test(issue?.type ?? "") && issue?.received === "undefined" ? "required but missing" : (issue?.message ?? "invalid request");
    return { status: 400, body: errorBody("request.invalid", field ? `${field}: ${message}` : message) };
  }
  if (v.isValiError(error)) {
    const issue = error.issues[0];
    const field = v.getDotPath(issue);
    return { status: 400, body: errorBody("request.invalid", field ? `${field}: ${issue.message}` : issue.message) };
  }
  if (code === "PARSE") return { status: 400, body: errorBody("request.invalid_json", "the request body is not valid JSON") };
  if (code === "NOT_FOUND") return { status: 404, body: errorBody("route.not_found", "no such route") };
  const db = toDbErrorResponse(e);
  if (db) return db;
  if (typeof e?.status === "number" && e.status >= 400 && e.status < 500) {
    // Elysia's own client errors (e.g. an unsupported content type)
    return { status: e.status, body: errorBody("request.invalid", String(e.message ?? "bad request")) };
  }
  console.error("baton: unhandled error:", e?.stack ?? e);
  return { status: 500, body: errorBody("internal.error", "internal error (logged on the server)") };
}

/** The SQLite code of a driver error (LibsqlError, LibsqlBatchError, or Drizzle's wrapper). */
function sqliteCodeOf(e: any): string | null {
  for (let c = e, i = 0; c && i < 4; c = c.cause, i++) {
    const code = c.extendedCode ?? c.code;
    if (typeof code === "string" && code.startsWith("SQLITE_")) return code;
    if (c.name === "LibsqlError" || c.name === "LibsqlBatchError") return String(code ?? "SQLITE_ERROR");
  }
  return e?.name === "DrizzleQueryError" || e?.query !== undefined ? "" : null;
}

function toDbErrorResponse(e: any): { status: number; body: ReturnType<typeof errorBody>; headers?: Record<string, string> } | null {
  const dbCode = sqliteCodeOf(e);
  if (dbCode === null) return null;
  if (/^SQLITE_(BUSY|LOCKED)/.test(dbCode))
    return { status: 503, body: errorBody("db.busy", "the database is busy; retry shortly"), headers: { "retry-after": "1" } };
  if (/^SQLITE_(FULL|IOERR|CANTOPEN)/.test(dbCode)) {
    console.error("baton: database storage error:", dbCode);
    return { status: 507, body: errorBody("db.full", `the database cannot be written (${dbCode}); free disk space and retry`), headers: { "retry-after": "30" } };
  }
  if (/^SQLITE_CONSTRAINT/.test(dbCode)) {
    console.error("baton: constraint violation:", dbCode);
    return { status: 409, body: errorBody("db.conflict", "the write conflicts with existing data or misses a required field") };
  }
  console.error("baton: database error:", e?.cause ?? e);
  return { status: 500, body: errorBody("db.error", `database error (${dbCode || "unknown"})`) };
}

// What a JSONL submit reads from the query string instead of a body (functions/runs.ts
// parseJsonlSubmit); every other route reads only what its query schema declares.
const UNSCHEMED_QUERY: Record<string, string[]> = {
  "POST /v1/runs": ["name", "benchmark", "config", "max_attempts", "repeats", "priority", "max_concurrency"],
};

/** "/v1/runs/:id/tasks" → a RegExp matching its concrete paths. */
function routePattern(path: string): RegExp {
  const escaped = path.replace(/[.+?^$()|[\]\\{}]/g, "\\$&").replace(/:[^/]+/g, "[^/]+");
  return new RegExp(`^${escaped}/?$`);
}

type RouteInfo = { method: string; path: string; hooks?: { query?: { entries?: Record<string, unknown> } } };

/**
 * One check for every API route: a query parameter the route does not declare is refused
 * with 400 naming it (a misspelt `?run_id` must not silently count every run). The table is
 * built from the routes' own query schemas on the first request that has a query string.
 */
export function makeQueryGuard(routesOf: () => RouteInfo[]) {
  let table: { method: string; pattern: RegExp; keys: Set<string> }[] | null = null;
  const build = () =>
    routesOf().map((r) => ({
      method: r.method,
      pattern: routePattern(r.path),
      keys: new Set([...Object.keys(r.hooks?.query?.entries ?? {}), ...(UNSCHEMED_QUERY[`${r.method} ${r.path}`] ?? [])]),
    }));
  return (request: Request): ApiError | null => {
    // most requests (every runner call) have no query string: no URL parse for them
    if (!request.url.includes("?")) return null;
    const url = new URL(request.url);
    if (!url.search || !(url.pathname.startsWith("/v1/") || url.pathname === "/healthz")) return null;
    table ??= build();
    const route = table.find((r) => r.method === request.method && r.pattern.test(url.pathname));
    if (!route) return null;
    for (const key of url.searchParams.keys())
      if (!route.keys.has(key)) return new ApiError(400, "request.invalid", `query.${key}: unknown query parameter`);
    return null;
  };
}

export function createApp(deps: AppDeps, options: AppOptions = {}) {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const checkQuery = makeQueryGuard(() => app.routes as RouteInfo[]);
  const app = new Elysia()
    .onError(({ code, error, set }) => {
      const { status, body, headers } = toErrorResponse({ code, error });
      set.status = status;
      if (headers) Object.assign(set.headers, headers);
      return body;
    })
    .onRequest(({ request, set }) => {
      set.headers[VERSION_HEADER] = VERSION;
      const length = Number(request.headers.get("content-length") ?? 0);
      if (length > maxBodyBytes) {
        set.status = 413;
        const e = tooLarge(String(length), maxBodyBytes);
        return errorBody(e.code, e.message);
      }
    })
    .use(authGuard(deps, options))
    .onRequest(({ request, set }) => {
      const e = checkClientVersion(request) ?? checkQuery(request);
      if (e) {
        set.status = e.status;
        return errorBody(e.code, e.message);
      }
    })
    // Every body goes through the strict reader (limit while streaming, valid UTF-8, depth
    // and non-finite checks). The guard has already refused every media type but JSON and
    // JSONL; JSONL is a submit format, so only POST /v1/runs takes it.
    .onParse(async ({ request }) => {
      // from the request, not Elysia's argument: that one is empty when the body is
      if (JSONL_TYPES.includes(mediaType(request.headers.get("content-type")))) {
        if (new URL(request.url).pathname !== "/v1/runs")
          throw new ApiError(415, "request.unsupported_media_type", "content-type: this route takes application/json");
        return parseJsonlSubmit(request, maxBodyBytes);
      }
      const text = await readBodyText(request, maxBodyBytes);
      // an empty body is "no body" (a bare POST), not a parse error
      return text.trim() === "" ? null : parseJsonStrict(text);
    })
    // Never reached (the hook above answers every body); it tells the OpenAPI page that
    // bodies are JSON.
    .on("parse", { fn: "json" } as any)
    // the document the plugin generates, with what it cannot express (streamed media types)
    .onAfterHandle(({ request, response }) => {
      if (request.url.endsWith(`${OPENAPI_PATH}/json`)) setStreamedMediaTypes(response);
    })
    .use(
      openapi({
        path: OPENAPI_PATH,
        // served by Baton itself (functions/ui.ts), not a CDN; no call to the online validator
        provider: "swagger-ui",
        swagger: { cdn: SWAGGER_JS, theme: SWAGGER_CSS, validatorUrl: null } as any,
        mapJsonSchema: { valibot: (s: any) => toJsonSchema(s, { errorMode: "ignore" }) },
        documentation: {
          info: { title: "Baton", version: VERSION, description: "Evaluation runs that are never lost and never hang.", license: LICENSE },
          // relative: the server that serves this document
          servers: [{ url: "/", description: "this Baton server" }],
          tags: TAGS.map((t) => ({ ...t })),
          // the web page logs in once (/ui?token= or POST /ui/login) and sends the cookie instead
          components: {
            securitySchemes: {
              bearer: { type: "http", scheme: "bearer" },
              cookie: { type: "apiKey", in: "cookie", name: "baton_token" },
            },
          },
          security: [{ bearer: [] }, { cookie: [] }],
        },
      }),
    )
    .use(healthRoutes(deps))
    .use(runsRoutes(deps))
    .use(tasksRoutes(deps))
    .use(queueRoutes(deps))
    .use(endpointsRoutes(deps))
    .use(inflightRoutes(deps))
    .use(reportRoutes(deps))
    .use(exportRoutes(deps))
    .use(timelineRoutes(deps))
    .use(experimentsRoutes(deps))
    .use(uiRoutes(deps));
  describeRoutes(app.routes as any);
  return app;
}

export type App = ReturnType<typeof createApp>;
