// The web page: static HTML/JS/CSS from ui/, uPlot and the OpenAPI viewer from node_modules. No build step;
// only the files listed here are served, so no path from a URL ever reaches the disk.
import { resolve } from "node:path";
import { Elysia } from "elysia";
import * as v from "valibot";
import { TOKEN_COOKIE, tokensMatch } from "./auth";
import type { AppDeps } from "./deps";
import { ApiError, ErrorBody, errorBody } from "./errors";

const UI_DIR = resolve(import.meta.dir, "../ui");
const UPLOT_DIR = resolve(import.meta.dir, "../node_modules/uplot/dist");
// the OpenAPI page's viewer, pinned in the lockfile: /openapi works with no internet
const SWAGGER_DIR = resolve(import.meta.dir, "../node_modules/swagger-ui-dist");
export const SWAGGER_JS = "/ui/swagger-ui-bundle.js";
export const SWAGGER_CSS = "/ui/swagger-ui.css";

const FILES: Record<string, { path: string; type: string }> = {
  "app.js": { path: `${UI_DIR}/app.js`, type: "text/javascript; charset=utf-8" },
  "run.js": { path: `${UI_DIR}/run.js`, type: "text/javascript; charset=utf-8" },
  "tasks.js": { path: `${UI_DIR}/tasks.js`, type: "text/javascript; charset=utf-8" },
  "compare.js": { path: `${UI_DIR}/compare.js`, type: "text/javascript; charset=utf-8" },
  "sweep.js": { path: `${UI_DIR}/sweep.js`, type: "text/javascript; charset=utf-8" },
  "style.css": { path: `${UI_DIR}/style.css`, type: "text/css; charset=utf-8" },
  "uplot.js": { path: `${UPLOT_DIR}/uPlot.iife.min.js`, type: "text/javascript; charset=utf-8" },
  "uplot.css": { path: `${UPLOT_DIR}/uPlot.min.css`, type: "text/css; charset=utf-8" },
  "swagger-ui-bundle.js": { path: `${SWAGGER_DIR}/swagger-ui-bundle.js`, type: "text/javascript; charset=utf-8" },
  "swagger-ui.css": { path: `${SWAGGER_DIR}/swagger-ui.css`, type: "text/css; charset=utf-8" },
};

function serve(path: string, type: string): Response {
  return new Response(Bun.file(path), { headers: { "content-type": type, "cache-control": "no-cache" } });
}

// HttpOnly: page scripts never see it; SameSite=Strict: no other site's page makes the
// browser send it. The value is the token itself, compared in constant time like a bearer.
function loginCookie(token: string): string {
  return `${TOKEN_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${30 * 24 * 3600}`;
}

function checkLogin(deps: AppDeps, given: string): void {
  if (!deps.token || !tokensMatch(given, deps.token)) throw new ApiError(401, "auth.invalid_token", "the token is not valid");
}

export const LoginInput = v.object({ token: v.pipe(v.string(), v.minLength(1, "expected the server's token"), v.maxLength(1000)) });

export const uiRoutes = (deps: AppDeps) =>
  new Elysia({ name: "ui" })
    .get("/", ({ redirect }) => redirect("/ui", 302), { detail: { hide: true } })
    .get(
      "/ui",
      ({ query }) => {
        // `/ui?token=…` (the link `baton serve` prints) logs in once and drops the token from
        // the address bar and history.
        if (query.token === undefined) return serve(`${UI_DIR}/index.html`, "text/html; charset=utf-8");
        if (deps.token) checkLogin(deps, query.token);
        const headers: Record<string, string> = { location: "/ui", "cache-control": "no-store" };
        if (deps.token) headers["set-cookie"] = loginCookie(deps.token);
        return new Response(null, { status: 303, headers });
      },
      {
        query: v.object({ token: v.optional(v.string()) }),
        response: { 401: ErrorBody },
        detail: { summary: "Web page: runs, progress, latency charts (?token= logs in and sets an HttpOnly cookie)" },
      },
    )
    .post(
      "/ui/login",
      ({ body, set }) => {
        checkLogin(deps, body.token);
        set.headers["set-cookie"] = loginCookie(deps.token!);
        return { ok: true };
      },
      {
        body: LoginInput,
        response: { 200: v.object({ ok: v.boolean() }), 400: ErrorBody, 401: ErrorBody },
        detail: { summary: "Log the web page in: checks the token and sets it as an HttpOnly, SameSite=Strict cookie" },
      },
    )
    .get(
      "/ui/:file",
      ({ params, status }) => {
        const f = FILES[params.file];
        if (!f) return status(404, errorBody("ui.not_found", `no UI file ${JSON.stringify(params.file)}`));
        return serve(f.path, f.type);
      },
      { response: { 404: ErrorBody }, detail: { hide: true } },
    );
