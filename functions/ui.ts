// The web page: static HTML/JS/CSS from ui/ and uPlot from node_modules. No build step;
// only the files listed here are served, so no path from a URL ever reaches the disk.
import { resolve } from "node:path";
import { Elysia } from "elysia";
import type { AppDeps } from "./deps";
import { ErrorBody, errorBody } from "./errors";

const UI_DIR = resolve(import.meta.dir, "../ui");
const UPLOT_DIR = resolve(import.meta.dir, "../node_modules/uplot/dist");

const FILES: Record<string, { path: string; type: string }> = {
  "app.js": { path: `${UI_DIR}/app.js`, type: "text/javascript; charset=utf-8" },
  "style.css": { path: `${UI_DIR}/style.css`, type: "text/css; charset=utf-8" },
  "uplot.js": { path: `${UPLOT_DIR}/uPlot.iife.min.js`, type: "text/javascript; charset=utf-8" },
  "uplot.css": { path: `${UPLOT_DIR}/uPlot.min.css`, type: "text/css; charset=utf-8" },
};

function serve(path: string, type: string): Response {
  return new Response(Bun.file(path), { headers: { "content-type": type, "cache-control": "no-cache" } });
}

export const uiRoutes = (_deps: AppDeps) =>
  new Elysia({ name: "ui" })
    .get("/", ({ redirect }) => redirect("/ui", 302), { detail: { hide: true } })
    .get("/ui", () => serve(`${UI_DIR}/index.html`, "text/html; charset=utf-8"), { detail: { summary: "Web page: runs, progress, latency charts" } })
    .get(
      "/ui/:file",
      ({ params, status }) => {
        const f = FILES[params.file];
        if (!f) return status(404, errorBody("ui.not_found", `no UI file ${JSON.stringify(params.file)}`));
        return serve(f.path, f.type);
      },
      { response: { 404: ErrorBody }, detail: { hide: true } },
    );
