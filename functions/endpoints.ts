// The endpoint registry over HTTP: list, add, import a ToolOrchestra model config, and
// disable/enable a replica. Runners pick changes up at their next registry refresh.
import { Elysia } from "elysia";
import * as v from "valibot";
import {
  addEndpoint,
  ENDPOINT_KINDS,
  EndpointInputError,
  importToolOrchestraConfig,
  listEndpoints,
  setEndpointEnabled,
  type Endpoint,
} from "../db/endpoints";
import type { AppDeps } from "./deps";
import { ErrorBody, errorBody } from "./errors";

export const EndpointOut = v.object({
  id: v.number(),
  kind: v.string(),
  name: v.string(),
  base_url: v.string(),
  enabled: v.boolean(),
  created_at: v.number(),
  updated_at: v.number(),
});
export type EndpointOut = v.InferOutput<typeof EndpointOut>;

export const EndpointList = v.object({ endpoints: v.array(EndpointOut) });
export type EndpointList = v.InferOutput<typeof EndpointList>;

export const EndpointInput = v.object({
  kind: v.picklist(ENDPOINT_KINDS, `expected one of ${ENDPOINT_KINDS.join(", ")}`),
  name: v.pipe(v.string(), v.trim(), v.minLength(1, "expected a served model or retrieval backend name")),
  base_url: v.pipe(v.string(), v.trim(), v.minLength(1, "expected a server root such as http://10.0.0.5:8000")),
});
export type EndpointInput = v.InferOutput<typeof EndpointInput>;

// { "<model>": [{ip_addr, port}, ...], "retrieval": [...], ... }; entries are checked by
// parseToolOrchestraConfig so errors name the key and index.
export const ToolOrchestraConfig = v.record(v.string(), v.unknown());
export type ToolOrchestraConfig = v.InferOutput<typeof ToolOrchestraConfig>;

export const ImportResult = v.object({ endpoints: v.array(EndpointOut), ignored_keys: v.array(v.string()) });
export type ImportResult = v.InferOutput<typeof ImportResult>;

export const EndpointRef = v.object({
  id: v.pipe(v.string(), v.regex(/^\d+$/, "expected a numeric endpoint id"), v.transform(Number)),
});

export function toEndpointOut(e: Endpoint): EndpointOut {
  return { id: e.id, kind: e.kind, name: e.name, base_url: e.baseUrl, enabled: e.enabled, created_at: e.createdAt, updated_at: e.updatedAt };
}

function invalid(err: unknown) {
  if (err instanceof EndpointInputError) return errorBody("endpoints.invalid", err.message);
  throw err;
}

export const endpointsRoutes = (deps: AppDeps) =>
  new Elysia({ name: "endpoints" })
    .get("/v1/endpoints", async () => ({ endpoints: (await listEndpoints({ db: deps.db })).map(toEndpointOut) }), {
      response: { 200: EndpointList },
      detail: { summary: "List model and retrieval endpoints (enabled and disabled)" },
    })
    .post(
      "/v1/endpoints",
      async ({ body, status }) => {
        try {
          const e = await addEndpoint({ db: deps.db, endpoint: { kind: body.kind, name: body.name, baseUrl: body.base_url } });
          return status(201, toEndpointOut(e));
        } catch (err) {
          return status(400, invalid(err));
        }
      },
      {
        parse: "json",
        body: EndpointInput,
        response: { 201: EndpointOut, 400: ErrorBody, 401: ErrorBody, 413: ErrorBody },
        detail: { summary: "Add an endpoint (re-adding an existing name + URL re-enables it)" },
      },
    )
    .post(
      "/v1/endpoints/import",
      async ({ body, status }) => {
        try {
          const res = await importToolOrchestraConfig({ db: deps.db, config: body });
          return status(200, { endpoints: res.endpoints.map(toEndpointOut), ignored_keys: res.ignoredKeys });
        } catch (err) {
          return status(400, invalid(err));
        }
      },
      {
        parse: "json",
        body: ToolOrchestraConfig,
        response: { 200: ImportResult, 400: ErrorBody, 401: ErrorBody, 413: ErrorBody },
        detail: {
          summary: "Import a ToolOrchestra model config as-is",
          description:
            '{ "<served model>": [{"ip_addr": h, "port": p}, ...], "retrieval": [...], "wiki_retrieval": [...] }. ' +
            "All entries are upserted in one batch, or none when any entry is bad (the error names key[index]).",
        },
      },
    )
    .post(
      "/v1/endpoints/:id/disable",
      async ({ params, status }) => {
        const e = await setEndpointEnabled({ db: deps.db, id: params.id, enabled: false });
        return e ? toEndpointOut(e) : status(404, errorBody("endpoints.not_found", `endpoint ${params.id} not found`));
      },
      {
        params: EndpointRef,
        response: { 200: EndpointOut, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody },
        detail: { summary: "Stop routing calls to an endpoint (runners drop it at their next refresh)" },
      },
    )
    .post(
      "/v1/endpoints/:id/enable",
      async ({ params, status }) => {
        const e = await setEndpointEnabled({ db: deps.db, id: params.id, enabled: true });
        return e ? toEndpointOut(e) : status(404, errorBody("endpoints.not_found", `endpoint ${params.id} not found`));
      },
      {
        params: EndpointRef,
        response: { 200: EndpointOut, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody },
        detail: { summary: "Route calls to an endpoint again" },
      },
    );
