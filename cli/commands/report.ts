// `baton report RUN [--json] [--compare RUN2] [--db PATH | --server URL]`: the latency and
// outcome report of a run in the terminal. Asks the server (GET /v1/runs/:id/report) or
// answers the same route over the database file opened read-only: the same JSON either way.
import { compareReports, type LatencyStats, type Report } from "../../db/analysis";
import type { compareWithParent, RunStats, SweepReport } from "../../db/experiments";
import { camelKeysDeep, snakeKeysDeep } from "../../db/keys";
import type { TaskPage } from "../../functions/runs";
import { DB, defineCommand, JSON_OUTPUT, SERVER } from "../define-command";
import { type Api, encodeRef, formatPct, oneRun, openReader, usageError } from "./_api";
import { renderParentCompare, renderRunStats, renderSweepReport } from "./sweep";

async function loadReport(api: Api, run: string, opts: { slowest: number; allAttempts: boolean }): Promise<Report> {
  // the API answers snake_case; the renderers read db/analysis's Report
  return camelKeysDeep(await api.call("GET", `/v1/runs/${encodeRef(run)}/report?slowest=${opts.slowest}${opts.allAttempts ? "&all_attempts=true" : ""}`)) as Report;
}

/**
 * Each question's correctness in a run (external id -> share of its tasks answered right: 0 or
 * 1, or between with repeats), read page by page as the web page's compare view reads it, so
 * both list the same differing questions.
 */
async function loadCorrectness(api: Api, run: string): Promise<Map<string, number>> {
  const counts = new Map<string, { right: number; n: number }>();
  const add = (tasks: { external_id: string; correct: boolean | null }[]) =>
    tasks.forEach((t) => {
      const c = counts.get(t.external_id) ?? { right: 0, n: 0 };
      c.n++;
      if (t.correct === true) c.right++;
      counts.set(t.external_id, c);
    });
  const shares = () => new Map([...counts].map(([id, c]) => [id, c.right / c.n]));
  let cursor: number | null = null;
  do {
    const page: TaskPage = await api.call<TaskPage>("GET", `/v1/runs/${encodeRef(run)}/tasks?limit=1000${cursor != null ? `&cursor=${cursor}` : ""}`);
    add(page.tasks);
    cursor = page.next_cursor;
  } while (cursor != null);
  return shares();
}

/** Question ids answered right more often in one run than in the other (a question absent from a run is not right there). */
export function listDiffering(a: Map<string, number>, b: Map<string, number>): string[] {
  return [...new Set([...a.keys(), ...b.keys()])].filter((id) => (a.get(id) ?? 0) !== (b.get(id) ?? 0)).sort();
}

const fmtMs = (x: number | null | undefined) =>
  x == null ? "-" : x < 1000 ? `${x.toFixed(0)}ms` : x < 60_000 ? `${(x / 1000).toFixed(2)}s` : `${(x / 60_000).toFixed(1)}m`;
const BLOCKS = " ▏▎▍▌▋▊▉█";

export function bar(value: number, max: number, width: number): string {
  if (max <= 0 || value <= 0) return "";
  const cells = (value / max) * width;
  const full = Math.floor(cells);
  const rest = Math.round((cells - full) * 8);
  return "█".repeat(full) + (rest > 0 ? BLOCKS[rest] : "");
}

/** Text columns (`left`, by index) align left, numbers right. */
export function formatTable(head: string[], rows: (string | number)[][], left: number[] = [0]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => [...(r[i] ?? "")].length)));
  const line = (r: string[]) => r.map((c, i) => (left.includes(i) ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(cells[0]), widths.map((w) => "─".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n");
}

const COMPONENT_MARKS: Record<string, string> = { orchestrator: "░", query_llm: "█", retrieval: "▓", expert_llm: "▒", code_exec: "▚", judge: "▞" };

export function renderReport(r: Report): string {
  const out: string[] = [];
  const t = r.tasks;
  out.push(`Run ${r.run.id} · ${r.run.name} (${r.run.benchmark})`);
  out.push(`Tasks ${t.total}: ${t.succeeded} succeeded, ${t.failed} failed (${t.infraFailed} infrastructure), ${t.running} running, ${t.queued} queued, ${t.canceled} canceled`);
  out.push(`Accuracy ${formatPct(t.accuracy)} = correct / finished (${t.correct}/${t.finished})`);
  out.push(`Score ${formatPct(t.score)} = correct / all tasks (${t.correct}/${t.total}); ${formatPct(t.scoreExcludingInfra)} excluding infrastructure failures (${t.correct}/${t.total - t.infraFailed})`);
  out.push(`Steps per finished task: mean ${r.steps.mean?.toFixed(1) ?? "-"}, max ${r.steps.max ?? "-"}; invalid steps ${r.steps.invalid}`);
  out.push("");
  const statRow = (name: string, s: LatencyStats) => [name, s.count, fmtMs(s.mean), fmtMs(s.p50), fmtMs(s.p80), fmtMs(s.p90), fmtMs(s.p95), fmtMs(s.p99), fmtMs(s.max), formatPct(s.under5s)];
  const statHead = ["tool", "calls", "mean", "p50", "p80", "p90", "p95", "p99", "max", "<5s"];
  out.push(`Latency per tool: its own time; the orchestrator's calls are their own row (${r.attempts === "all" ? "every attempt, abandoned ones included" : "each task's final attempt"})`);
  out.push(formatTable(statHead, [...r.tools.map((x) => statRow(x.tool, x)), statRow("all", r.all)]));
  out.push("");
  out.push(`Latency per component (${r.attempts === "all" ? "every attempt" : "final attempts"})`);
  out.push(formatTable(["tool / component", ...statHead.slice(1), "retried", "timeouts", "fallbacks", "unavail."], r.tools.flatMap((x) => x.components.map((c) => [...statRow(`${x.tool} / ${c.component}`, c), c.callsWithRetries, c.timeouts, c.fallbacks, c.unavailable]))));
  out.push("");
  out.push(`Where the time goes: mean per call, stacked by component (${Object.entries(COMPONENT_MARKS).map(([k, m]) => `${m} ${k}`).join("  ")})`);
  const maxMean = Math.max(1, ...r.tools.map((x) => (x.components.length ? x.components.reduce((a, c) => a + c.mean!, 0) : (x.mean ?? 0))));
  for (const x of r.tools) {
    // the orchestrator row has no components: its calls are the one part
    const parts = x.components.length ? x.components : [{ component: x.tool, mean: x.mean }];
    const total = parts.reduce((a, c) => a + (c.mean ?? 0), 0);
    const stacked = parts.map((c) => (COMPONENT_MARKS[c.component] ?? "#").repeat(Math.round(((c.mean ?? 0) / maxMean) * 50))).join("");
    out.push(`  ${x.tool.padEnd(18)} ${stacked} ${fmtMs(total)}`);
  }
  out.push("");
  for (const x of [...r.tools, { tool: "all", ...r.all }]) {
    const h = x.histogram;
    const max = Math.max(...h.counts);
    const w = (h.hiMs - h.loMs) / 10;
    out.push(`Histogram ${x.tool} (${x.count} calls, 10 equal bins)`);
    h.counts.forEach((c, i) => out.push(`  ${fmtMs(h.loMs + w * i).padStart(7)} – ${fmtMs(h.loMs + w * (i + 1)).padEnd(7)} ${String(c).padStart(7)} ${bar(c, max, 40)}`));
  }
  out.push("");
  out.push("Endpoints");
  out.push(formatTable(["endpoint", "role", "model/backend", "calls", "errors", "err%", "retries", "timeouts", "mean", "p50", "p95", "max"], r.endpoints.map((e) => [e.endpoint, e.role, e.name ?? "-", e.calls, e.errors, formatPct(e.errorRate), e.retries, e.timeouts, fmtMs(e.mean), fmtMs(e.p50), fmtMs(e.p95), fmtMs(e.max)]), [0, 1, 2]));
  out.push("");
  if (r.errors.byTaskClass.length) {
    out.push("Failed tasks by class");
    out.push(formatTable(["error class", "tasks", "infrastructure"], r.errors.byTaskClass.map((e) => [e.errorClass, e.tasks, e.infra ? "yes" : "no"]), [0, 2]));
    out.push("");
  }
  if (r.errors.byTool.length) {
    out.push("Tool calls that did not end ok");
    out.push(formatTable(["tool", "status", "error class", "calls"], r.errors.byTool.map((e) => [e.tool, e.status, e.errorClass, e.calls]), [0, 1, 2]));
    out.push("");
  }
  out.push("Tokens");
  out.push(formatTable(["role", "model", "calls", "prompt", "completion", "finish=length"], r.tokens.map((x) => [x.role, x.model, x.calls, x.promptTokens, x.completionTokens, x.truncated]), [0, 1]));
  out.push("");
  out.push("Slowest calls");
  out.push(formatTable(["task", "step", "tool", "status", "duration", "components"], r.slowest.slice(0, 10).map((s) => [s.externalId ?? String(s.taskId), s.step, s.tool, s.status, fmtMs(s.durationMs), Object.entries(s.components).map(([k, v]) => `${k} ${fmtMs(v)}`).join(", ")]), [0, 2, 3, 5]));
  out.push("");
  out.push(`Missing ids (failed or canceled; ${t.notFinished} not finished): ${r.missingIds.length}${r.missingTruncated ? "+" : ""}${r.missingIds.length ? ": " + r.missingIds.slice(0, 50).join(" ") + (r.missingIds.length > 50 ? " …" : "") : ""}`);
  return out.join("\n");
}

export const { describe, run } = defineCommand({
  name: "report",
  describe: "Latency and accuracy report of a run (tables, histograms; --json; --compare RUN2)",
  usage: ["RUN", "--sweep ID"],
  intro: `RUN is the run id or its name (when unique). A tool's latency is its own time, as ToolOrchestra's
analyze_tool_latency.py counts it (search = query LLM + retrieval, answer = expert + judge,
enhance_reasoning = coder LLM + code run); the orchestrator's calls are their own row.`,
  options: {
    compare: {
      type: "string",
      value: "RUN2",
      help: `a second run shown side by side, with ratios second/first, and the questions
whose correctness differs (as the web page's compare view lists them); '--compare parent'
shows a re-run (submit --from) beside the tasks of its parent it replaced`,
    },
    sweep: { type: "string", value: "ID", help: "one row per configuration of a sweep (baton sweep): accuracy, 95% interval,\npass@k, tokens, p50/p95 per tool; marks differences that are not significant" },
    slowest: { type: "string", value: "N", default: "20", help: "slowest calls to include" },
    "all-attempts": {
      type: "boolean",
      help: `per-tool and per-component tables include attempts that were abandoned
(lease lost, retried); by default they cover each task's final attempt.
Endpoint, error and retry tables always count every HTTP attempt.`,
    },
    server: SERVER,
    db: DB,
    json: { ...JSON_OUTPUT, help: "print the report (or comparison) as JSON: the API's answer" },
  },
  async run({ values, positionals }) {
    const slowest = Number(values.slowest);
    if (!Number.isInteger(slowest) || slowest < 1) throw usageError(`--slowest: expected a positive integer, got ${JSON.stringify(values.slowest)}`);
    if (values.sweep != null && positionals.length) throw usageError("--sweep ID takes no RUN");
    if (values.sweep != null && !/^\d+$/.test(values.sweep)) throw usageError("--sweep: expected a numeric sweep id");
    const ref = values.sweep != null ? "" : oneRun(positionals);
    const opts = { slowest, allAttempts: values["all-attempts"] === true, json: values.json };
    const api = await openReader({ server: values.server, db: values.db });
    try {
      const print = (x: unknown, text: () => string) => console.log(values.json ? JSON.stringify(x, null, 2) : text());
      if (values.sweep != null) {
        const s = await api.call<SweepReport>("GET", `/v1/sweeps/${values.sweep}/report`);
        print(s, () => renderSweepReport(s));
      } else if (values.compare === "parent") {
        const c = await api.call<Awaited<ReturnType<typeof compareWithParent>>>("GET", `/v1/runs/${encodeRef(ref)}/parent-compare`);
        print(c, () => renderParentCompare(c));
      } else if (values.compare) await printCompare(api, ref, values.compare, opts);
      else {
        const a = await loadReport(api, ref, opts);
        // accuracy with its interval (and pass@k over repeats): db/experiments.ts; the JSON of
        // these is GET /v1/runs/:id/stats (a server without the route: the report stands without it)
        const stats = values.json ? null : await api.call<RunStats>("GET", `/v1/runs/${encodeRef(ref)}/stats`).catch(() => null);
        // --json: the same JSON as GET /v1/runs/:id/report
        print(snakeKeysDeep(a), () => `${renderReport(a)}${stats ? `\n\n${renderRunStats(stats)}` : ""}`);
      }
      return 0;
    } finally {
      api.close();
    }
  },
});

async function printCompare(api: Api, ref: string, other: string, o: { slowest: number; allAttempts: boolean; json: boolean }): Promise<void> {
  const [a, b] = [await loadReport(api, ref, o), await loadReport(api, other, o)];
  const cmp = compareReports({ a, b });
  const differs = listDiffering(await loadCorrectness(api, ref), await loadCorrectness(api, other));
  if (o.json) {
    console.log(JSON.stringify({ ...cmp, differs }, null, 2));
    return;
  }
  const f = (m: string, x: number | null) =>
    x == null ? "-" : m.endsWith("_ms") ? fmtMs(x) : m === "accuracy" || m.startsWith("score") || m === "under_5s" ? formatPct(x) : Number.isInteger(x) ? String(x) : x.toFixed(2);
  console.log(`Run ${a.run.id} (${a.run.name}) vs run ${b.run.id} (${b.run.name}); ratio = second / first`);
  console.log(formatTable(["section", "metric", `#${a.run.id}`, `#${b.run.id}`, "ratio"], cmp.rows.map((r) => [r.section, r.metric, f(r.metric, r.a), f(r.metric, r.b), r.ratio == null ? "-" : `${r.ratio.toFixed(2)}x`]), [0, 1]));
  console.log(`\nQuestions whose correctness differs: ${differs.length}${differs.length ? `: ${differs.join(" ")}` : ""}`);
}
