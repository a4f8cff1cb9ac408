// The endpoint registry over HTTP: list, add, import a ToolOrchestra model config, and
// disable/enable a replica. Runners pick changes up at their next registry refresh.
import { Elysia } from "elysia";
import * as v from "valibot";
import {
  addEndpoint,
  deregisterEndpoint,
  drainEndpoint,
  ENDPOINT_KINDS,
  ENDPOINT_ROLES,
  EndpointInputError,
  heartbeatEndpoint,
  importToolOrchestraConfig,
  listEndpoints,
  listWaitingRuns,
  MAX_ENDPOINT_NAME,
  redactUrl,
  registerEndpoint,
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
  // healthy | draining | gone
  state: v.string(),
  role: v.nullable(v.string()),
  service: v.nullable(v.string()),
  node: v.nullable(v.string()),
  slurm_job_id: v.nullable(v.string()),
  slurm_array_job_id: v.nullable(v.string()),
  slurm_array_task_id: v.nullable(v.string()),
  lease_expires_at: v.nullable(v.number()),
  last_heartbeat_at: v.nullable(v.number()),
});
export type EndpointOut = v.InferOutput<typeof EndpointOut>;

export const EndpointList = v.object({ endpoints: v.array(EndpointOut), next_cursor: v.nullable(v.number()) });
export const ENDPOINT_PAGE_MAX = 1000;
const PageInt = (what: string) => v.pipe(v.string(), v.regex(/^\d{1,15}$/, `expected ${what}`), v.transform(Number));
export const EndpointPageQuery = v.object({
  limit: v.optional(v.pipe(PageInt("a positive integer"), v.minValue(1, "expected at least 1"), v.maxValue(ENDPOINT_PAGE_MAX, `expected at most ${ENDPOINT_PAGE_MAX}`)), String(ENDPOINT_PAGE_MAX)),
  cursor: v.optional(PageInt("the next_cursor of the previous page")),
});
export type EndpointList = v.InferOutput<typeof EndpointList>;

export const EndpointInput = v.object({
  kind: v.picklist(ENDPOINT_KINDS, `expected one of ${ENDPOINT_KINDS.join(", ")}`),
  name: v.pipe(
    v.string(),
    v.trim(),
    v.minLength(1, "expected a served model or retrieval backend name"),
    v.maxLength(MAX_ENDPOINT_NAME, `expected at most ${MAX_ENDPOINT_NAME} characters`),
  ),
  base_url: v.pipe(v.string(), v.trim(), v.minLength(1, "expected a server root such as http://10.0.0.5:8000"), v.maxLength(2048)),
});
export type EndpointInput = v.InferOutput<typeof EndpointInput>;

const SlurmId = v.nullish(v.pipe(v.string(), v.regex(/^\d+$/, "expected a Slurm job number")));
export const RegisterInput = v.object({
  ...EndpointInput.entries,
  role: v.picklist(ENDPOINT_ROLES, `expected one of ${ENDPOINT_ROLES.join(", ")}`),
  service: v.nullish(v.pipe(v.string(), v.maxLength(MAX_ENDPOINT_NAME))),
  node: v.nullish(v.pipe(v.string(), v.maxLength(255))),
  slurm_job_id: SlurmId,
  slurm_array_job_id: SlurmId,
  slurm_array_task_id: SlurmId,
  // how long the endpoint stays healthy without a heartbeat
  lease_ms: v.pipe(v.number(), v.integer(), v.minValue(1_000), v.maxValue(3_600_000)),
});
export type RegisterInput = v.InferOutput<typeof RegisterInput>;
export const HeartbeatInput = v.object({ lease_ms: RegisterInput.entries.lease_ms });

export const WaitingList = v.object({
  runs: v.array(
    v.object({
      run_id: v.number(),
      run_name: v.string(),
      needs: v.array(v.object({ label: v.string(), kind: v.string(), names: v.array(v.string()), healthy: v.number() })),
    }),
  ),
});
export type WaitingList = v.InferOutput<typeof WaitingList>;
export const WaitingQuery = v.object({
  run_id: v.optional(v.pipe(v.string(), v.regex(/^[1-9][0-9]{0,15}$/, "expected a run id (a positive integer)"), v.transform(Number))),
});

// { "<model>": [{ip_addr, port}, ...], "retrieval": [...], ... }; entries are checked by
// parseToolOrchestraConfig so errors name the key and index.
// v.unknown, not v.record: a list or a string gets the parser's message naming the problem.
export const ToolOrchestraConfig = v.unknown();
export type ToolOrchestraConfig = v.InferOutput<typeof ToolOrchestraConfig>;

export const ImportResult = v.object({ endpoints: v.array(EndpointOut), ignored_keys: v.array(v.string()) });
export type ImportResult = v.InferOutput<typeof ImportResult>;

export const EndpointRef = v.object({
  id: v.pipe(v.string(), v.regex(/^\d+$/, "expected a numeric endpoint id"), v.transform(Number)),
});

/** The public form: credentials inside a URL are never returned. */
export function toEndpointOut(e: Endpoint): EndpointOut {
  return {
    id: e.id,
    kind: e.kind,
    name: e.name,
    base_url: redactUrl(e.baseUrl),
    enabled: e.enabled,
    created_at: e.createdAt,
    updated_at: e.updatedAt,
    state: e.state,
    role: e.role,
    service: e.service,
    node: e.node,
    slurm_job_id: e.slurmJobId,
    slurm_array_job_id: e.slurmArrayJobId,
    slurm_array_task_id: e.slurmArrayTaskId,
    lease_expires_at: e.leaseExpiresAt,
    last_heartbeat_at: e.lastHeartbeatAt,
  };
}

const notFound = (id: number) => errorBody("endpoints.not_found", `endpoint ${id} not found (deregistered, or never registered)`);

function invalid(err: unknown) {
  if (err instanceof EndpointInputError) return errorBody("endpoints.invalid", err.message);
  throw err;
}

export const endpointsRoutes = (deps: AppDeps) =>
  new Elysia({ name: "endpoints" })
    .get(
      "/v1/endpoints",
      async ({ query }) => {
        // one more than the page, to know whether another follows
        const list = await listEndpoints({ db: deps.db, limit: query.limit + 1, after: query.cursor });
        const page = list.slice(0, query.limit);
        return { endpoints: page.map(toEndpointOut), next_cursor: list.length > query.limit ? page[page.length - 1].id : null };
      },
      {
        query: EndpointPageQuery,
        response: { 200: EndpointList, 400: ErrorBody },
        detail: { summary: "List model and retrieval endpoints (enabled and disabled) by kind and name; pass next_cursor as ?cursor= for the next page" },
      },
    )
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
    )
    .get(
      "/v1/waiting",
      async ({ query }) => ({
        runs: (await listWaitingRuns({ db: deps.db, runId: query.run_id ?? null })).map((w) => ({ run_id: w.runId, run_name: w.runName, needs: w.needs })),
      }),
      {
        query: WaitingQuery,
        response: { 200: WaitingList, 400: ErrorBody },
        detail: { summary: "Open runs that wait for a model or retrieval pool with no healthy endpoint (their tasks are not claimed)" },
      },
    )
    .post(
      "/v1/endpoints/register",
      async ({ body, status }) => {
        try {
          const e = await registerEndpoint({
            db: deps.db,
            leaseMs: body.lease_ms,
            endpoint: {
              kind: body.kind,
              name: body.name,
              baseUrl: body.base_url,
              role: body.role,
              service: body.service,
              node: body.node,
              slurmJobId: body.slurm_job_id,
              slurmArrayJobId: body.slurm_array_job_id,
              slurmArrayTaskId: body.slurm_array_task_id,
            },
          });
          return status(201, toEndpointOut(e));
        } catch (err) {
          return status(400, invalid(err));
        }
      },
      {
        parse: "json",
        body: RegisterInput,
        response: { 201: EndpointOut, 400: ErrorBody, 401: ErrorBody, 413: ErrorBody },
        detail: { summary: "An endpoint agent registers its ready service as healthy, with a lease it renews by heartbeats" },
      },
    )
    .post(
      "/v1/endpoints/:id/heartbeat",
      async ({ params, body, status }) => {
        const e = await heartbeatEndpoint({ db: deps.db, id: params.id, leaseMs: body.lease_ms });
        return e ? toEndpointOut(e) : status(404, notFound(params.id));
      },
      {
        params: EndpointRef,
        parse: "json",
        body: HeartbeatInput,
        response: { 200: EndpointOut, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody },
        detail: { summary: "Renew an endpoint's lease (a gone endpoint comes back healthy; a draining one stays draining)" },
      },
    )
    .post(
      "/v1/endpoints/:id/drain",
      async ({ params, status }) => {
        const e = await drainEndpoint({ db: deps.db, id: params.id });
        return e ? toEndpointOut(e) : status(404, notFound(params.id));
      },
      {
        params: EndpointRef,
        response: { 200: EndpointOut, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody },
        detail: { summary: "Mark an endpoint draining: runners send it nothing new; calls in flight finish" },
      },
    )
    .delete(
      "/v1/endpoints/:id",
      async ({ params, status }) => ((await deregisterEndpoint({ db: deps.db, id: params.id })) ? { ok: true } : status(404, notFound(params.id))),
      {
        params: EndpointRef,
        response: { 200: v.object({ ok: v.boolean() }), 400: ErrorBody, 401: ErrorBody, 404: ErrorBody },
        detail: { summary: "Deregister an endpoint (its service has stopped)" },
      },
    );
