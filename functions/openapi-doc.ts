// What the OpenAPI document says beyond the route schemas, in one place: the area (tag) of
// every operation, a description of each, operationIds without hyphens, and the responses
// every route can give because of the app-wide guards (400 for an unknown query parameter,
// 401 without the token). Applied to the routes' own `detail` once they are all registered;
// the document is generated from them on its first request.
import { ErrorBody } from "./errors";

export const TAGS = [
  { name: "health", description: "Liveness of the server and its database." },
  { name: "runs", description: "Submitting runs, their progress and their tasks; cancel and requeue." },
  { name: "tasks", description: "One task: its input, result, attempts and every step kept whole." },
  { name: "queue", description: "What runner processes call: claim tasks under a lease, heartbeat, complete or fail them, record latency rows." },
  { name: "endpoints", description: "The registry of model and retrieval endpoints runners route calls to, and the runs waiting for one." },
  { name: "report", description: "Accuracy, latency per tool and component, errors and timelines of a run." },
  { name: "experiments", description: "Runs derived from runs: re-runs of selected tasks, repeats, sweeps over configuration values, claim priority." },
  { name: "web", description: "Logging the web page (GET /ui) in." },
] as const;
type Tag = (typeof TAGS)[number]["name"];

// First match wins: "METHOD path" with Elysia's :params.
const TAG_RULES: [RegExp, Tag][] = [
  [/^GET \/healthz$/, "health"],
  [/^\w+ \/v1\/queue\//, "queue"],
  [/^\w+ \/v1\/(endpoints|waiting)/, "endpoints"],
  [/^\w+ \/v1\/runs\/:id\/(report|latency|slowest|failed|timeline|inflight|export)$/, "report"],
  [/^\w+ \/v1\/(runs\/:id\/(rerun|controls|stats|links|parent-compare)|sweeps)/, "experiments"],
  [/^\w+ \/v1\/tasks\//, "tasks"],
  [/^\w+ \/v1\/runs/, "runs"],
  [/^\w+ \/ui/, "web"],
];

// Summaries (on the routes) say what an operation is; these say when to use it and what it answers.
export const DESCRIPTIONS: Record<string, string> = {
  "GET /healthz": "Answers 200 when the database can be read (and, for a file database, written); 503 with the reason otherwise. No token needed.",
  "GET /v1/runs": "Each run with its task counts and the numbers of its summary. Pages newest first: pass next_cursor back as ?cursor= until it is null.",
  "GET /v1/runs/:id": "The run by numeric id or by a name only one run has (409 runs.ambiguous when several share it).",
  "GET /v1/runs/:id/tasks": "Filters combine with AND; an unknown parameter is refused. Pages by task id: pass next_cursor back as ?cursor= until it is null.",
  "POST /v1/runs/:id/cancel": "Queued and running tasks become canceled; runners holding a lease learn it at their next heartbeat and stop. Finished tasks keep their results.",
  "POST /v1/runs/:id/requeue": "Failed tasks (and canceled ones, when asked) get a fresh attempt budget and are queued again; error_class narrows the selection.",
  "GET /v1/tasks/:id": "The task's input as submitted, its current status, result, prediction and correctness, and each attempt with the runner that made it.",
  "GET /v1/tasks/:id/steps": "Transcripts are stored zstd-compressed (older ones gzip) per step; an unreadable one is reported on its step (transcript_error) rather than failing the request.",
  "GET /v1/tasks/:id/attempts": "Per attempt: how many model calls it made and the last one, which usually says why an attempt stopped.",
  "POST /v1/queue/runners": "Called once by each runner process at start, with its host, pid and Slurm ids, so in-flight views can name where a task runs.",
  "POST /v1/queue/runners/:id/state": "A runner reports draining, stopped or crashed; the runner list and timeline show it.",
  "POST /v1/queue/claim": "Hands out up to `limit` queued tasks, each with a lease token that fences every later write. Honours run priority and max_concurrency; with wait_for_endpoints, skips runs with no healthy endpoint.",
  "POST /v1/queue/heartbeat": "Extends the leases the runner still holds and records each task's progress; tokens answered as lost belong to tasks the runner must abandon.",
  "POST /v1/queue/complete": "Writes the result only while the lease is held. A re-send whose first copy landed answers ok with already=true.",
  "POST /v1/queue/complete-many": "The same fenced completion for up to 1000 tasks in one request; one answer per item, in input order.",
  "POST /v1/queue/fail": "A retryable failure queues the task again after a backoff while attempts remain; otherwise it fails for good. A re-send repeats the first outcome with already=true.",
  "POST /v1/queue/release": "For a runner shutting down cleanly: the tasks are queued again and the attempt is not counted against their budget.",
  "GET /v1/queue/endpoints": "The runners' view of the registry, with full base URLs including credentials; the public GET /v1/endpoints hides those.",
  "GET /v1/queue/waiting": "Runs whose tasks cannot progress because a model or retrieval pool they call has no healthy endpoint, each with what it waits for.",
  "GET /v1/queue/open": "Queued plus running tasks, of one run (?run_id=) or of every run not canceled; a runner stops when both are zero.",
  "POST /v1/queue/rows": "Tool-call, latency-component and LLM-call rows and zstd (or gzip) step transcripts, base64, in bounded batches; rows already stored are ignored, so a re-send is safe.",
  "GET /v1/endpoints": "Every registered endpoint with its kind, state and lease; credentials in base URLs are hidden.",
  "POST /v1/endpoints": "Adds one model or retrieval endpoint by name and base URL; re-adding an existing pair re-enables it.",
  "POST /v1/endpoints/import": "Takes the model config file the ToolOrchestra scripts read, unchanged; keys Baton does not use are listed in ignored_keys.",
  "POST /v1/endpoints/:id/disable": "The endpoint stays registered but gets no new calls once runners refresh the registry.",
  "POST /v1/endpoints/:id/enable": "Undoes disable: runners route calls to the endpoint again at their next refresh.",
  "GET /v1/waiting": "The same list runners read from /v1/queue/waiting, for people: which runs wait and for which model or retrieval pool.",
  "POST /v1/endpoints/register": "Called by an endpoint agent once its service answers; the endpoint is healthy while its lease is renewed by heartbeats.",
  "POST /v1/endpoints/:id/heartbeat": "Renews the lease of an agent-registered endpoint; one whose lease lapsed is marked gone and comes back healthy here.",
  "POST /v1/endpoints/:id/drain": "For an agent about to stop its service: runners send it no new calls while calls in flight finish.",
  "DELETE /v1/endpoints/:id": "Removes the endpoint once its service has stopped; 404 when it was already gone.",
  "GET /v1/runs/:id/inflight": "Where each running task is: its runner (host, pid, Slurm ids), its step, the call it waits on and for how long.",
  "GET /v1/runs/:id/report": "The numbers `baton report` prints, computed over each task's final attempt unless all_attempts=true; slowest and failed size the two lists.",
  "GET /v1/runs/:id/latency": "One distribution, shaped for charts; tool and component pick which one, points sizes the CDF.",
  "GET /v1/runs/:id/slowest": "The slowest tool calls, each with the latency components it was made of, to see where the time went.",
  "GET /v1/runs/:id/failed": "Each failed task with its error class and message, and whether the class counts as infrastructure (excluded from score_excluding_infra).",
  "GET /v1/runs/:id/export":
    "Streamed page by page as it is read (never held whole): format=jsonl|csv with what=results (one row per task) or latency (one row per tool-call component); format=toolorchestra gives one line per finished task, each the file the reference's eval_frames_oss.py / eval_hle_oss.py would have written for it.",
  "GET /v1/runs/:id/timeline": "Calls, errors and latency per endpoint and tool in equal time buckets, with finished tasks and runner joins and exits, for the run page's charts.",
  "POST /v1/runs/:id/rerun": "Creates a derived run from the selected tasks of this one; its config is merged onto this run's resolved configuration. An Idempotency-Key header makes a repeat return the first run.",
  "POST /v1/runs/:id/controls": "Takes effect at the next claim, also while the run is running.",
  "GET /v1/runs/:id/stats": "Statistics that need repeats or relatives: the Wilson interval of accuracy, pass@k and pass^k, per-question consistency.",
  "GET /v1/runs/:id/links": "How this run relates to others, as `baton status` shows it.",
  "GET /v1/runs/:id/parent-compare": "For a run made by rerun: each of its tasks beside the parent's task it replaced, to see what changed. 409 when the run has no parent.",
  "POST /v1/sweeps": "Creates the runs of a sweep in one request; dry_run answers the combinations without creating anything.",
  "GET /v1/sweeps/:id/report": "Compares the sweep's configurations side by side.",
  "POST /ui/login": "The web page's login form posts the token here; later requests from the page carry the cookie instead of a bearer header.",
};

// Answers that are not JSON. The generator can only say text/plain for a string body, so the
// document is corrected after generation (setStreamedMediaTypes).
const STREAMED_ANSWERS: Record<string, { description: string; types: string[] }> = {
  "GET /v1/runs/{id}/export": {
    description: "The export, streamed: JSONL for format=jsonl and format=toolorchestra, CSV with a header row for format=csv",
    types: ["application/x-ndjson", "text/csv"],
  },
};

/** The generated document with the media types of streamed answers set. Idempotent. */
export function setStreamedMediaTypes(doc: any): void {
  for (const [key, { description, types }] of Object.entries(STREAMED_ANSWERS)) {
    const [method, path] = key.split(" ");
    const op = doc?.paths?.[path]?.[method.toLowerCase()];
    if (!op?.responses) continue;
    op.responses["200"] = { description, content: Object.fromEntries(types.map((t) => [t, { schema: { type: "string" } }])) };
  }
}

type RouteLike = { method: string; path: string; hooks: { detail?: Record<string, any>; response?: Record<string | number, unknown> } };

/** getV1QueueCompleteMany for POST /v1/queue/complete-many: the generator's ids, without hyphens. */
export function operationIdOf(method: string, path: string): string {
  const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
  const parts = path.split("/").filter(Boolean).map((p) => (p.startsWith(":") ? `By${cap(p.slice(1))}` : p.split(/[-_]/).map(cap).join("")));
  return method.toLowerCase() + (parts.length ? parts.join("") : "Index");
}

export function tagOf(method: string, path: string): Tag | null {
  const key = `${method} ${path}`;
  return TAG_RULES.find(([re]) => re.test(key))?.[1] ?? null;
}

/** Fills in tags, descriptions, operationIds and the guards' responses on every documented route. */
export function describeRoutes(routes: RouteLike[]): void {
  for (const r of routes) {
    const tag = tagOf(r.method, r.path);
    if (!tag) continue; // the OpenAPI page itself, static files
    const key = `${r.method} ${r.path}`;
    const detail = (r.hooks.detail ??= {});
    detail.tags ??= [tag];
    detail.operationId ??= operationIdOf(r.method, r.path);
    if (!detail.description && DESCRIPTIONS[key]) detail.description = DESCRIPTIONS[key];
    // the HTML page is not part of the API (like its static files); its login route is
    if (key === "GET /ui") detail.hide = true;
    if (r.path.startsWith("/v1/") || r.path === "/healthz") {
      const response = (r.hooks.response ??= {}) as Record<string | number, unknown>;
      response[400] ??= ErrorBody; // functions/index.ts refuses an undeclared query parameter
      if (r.path.startsWith("/v1/")) response[401] ??= ErrorBody; // the token guard
    }
  }
}
