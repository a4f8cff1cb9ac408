// One run: live numbers and in-flight table (polled, updated in place), errors and latency
// over time, and the latency report (drawn once, again when the run finishes).
"use strict";
const COMPONENT_COLORS = { orchestrator: "#94a3b8", query_llm: "#2563eb", retrieval: "#f59e0b", expert_llm: "#7c3aed", code_exec: "#10b981", judge: "#ef4444" };
const TOOLS = ["search", "enhance_reasoning", "answer"];

function histogramChart(el, title, dist) {
  const n = dist.count || 1;
  const { lo_ms: loMs, hi_ms: hiMs, counts } = dist.histogram;
  const w = (hiMs - loMs) / 10 || 1;
  const share = counts.map((c) => (100 * c) / n);
  // the cumulative curve at the same x positions, from the exact CDF points
  const cdfX = dist.cdf.map((p) => p[0] / 1000);
  const cdfY = dist.cdf.map((p) => 100 * p[1]);
  const markers = [["p50", dist.p50, "#16a34a"], ["p90", dist.p90, "#d97706"], ["p99", dist.p99, "#dc2626"]];
  const box = document.createElement("div");
  box.className = "chart";
  box.innerHTML = `<h3>${esc(title)}</h3><div class="pcts" data-testid="pcts-${esc(dist.tool ?? "all")}">n=${dist.count} · p50 <b data-k="p50">${ms(dist.p50)}</b> · p90 ${ms(dist.p90)} · p95 <b data-k="p95">${ms(dist.p95)}</b> · p99 ${ms(dist.p99)} · under 5 s ${pct(dist.under5s)}</div>`;
  el.appendChild(box);
  // x: the CDF points; the bars are drawn straight onto the canvas from the bin edges so
  // their widths are the true bin widths whatever the spacing of the CDF points
  const data = [[loMs / 1000, ...cdfX], [null, ...cdfY.map(() => null)], [0, ...cdfY]];
  const yMax = Math.max(5, ...share) * 1.1;
  const opts = {
    width: Math.max(320, box.clientWidth - 22), height: 240,
    legend: { show: false },
    cursor: { show: false },
    scales: { x: { time: false, range: [loMs / 1000, hiMs / 1000 || 1] }, y: { range: [0, yMax] }, c: { range: [0, 100] } },
    axes: [{ label: "seconds" }, { label: "% of calls", size: 50 }, { scale: "c", side: 1, label: "cumulative %", grid: { show: false } }],
    series: [{}, { label: "share", scale: "y" }, { label: "cumulative", scale: "c", stroke: "#111827", width: 1.5, points: { show: false } }],
    hooks: { drawSeries: [(u, si) => {
      if (si !== 2) return;
      const ctx = u.ctx;
      ctx.save();
      counts.forEach((c, i) => {
        const x0 = u.valToPos((loMs + w * i) / 1000, "x", true);
        const x1 = u.valToPos((loMs + w * (i + 1)) / 1000, "x", true);
        const y = u.valToPos(share[i], "y", true);
        const y0 = u.valToPos(0, "y", true);
        ctx.fillStyle = "rgba(37,99,235,.35)"; ctx.strokeStyle = "#2563eb"; ctx.lineWidth = 1;
        ctx.fillRect(x0 + 1, y, x1 - x0 - 2, y0 - y); ctx.strokeRect(x0 + 1, y, x1 - x0 - 2, y0 - y);
      });
      ctx.restore();
    }], draw: [(u) => {
      const ctx = u.ctx;
      for (const [name, v, color] of markers) {
        if (v == null) continue;
        const x = u.valToPos(v / 1000, "x", true);
        ctx.save(); ctx.strokeStyle = color; ctx.setLineDash([4, 3]); ctx.lineWidth = 1.5;
        ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
        ctx.fillStyle = color; ctx.font = `${11 * devicePixelRatio}px system-ui`; ctx.fillText(name, x + 3, u.bbox.top + 12 * devicePixelRatio);
        ctx.restore();
      }
    }] },
  };
  view.charts.push(new uPlot(opts, data, box));
}

function liveNumbers(s, waiting) {
  const state = runState(s);
  return `${s.done || s.canceled_at ? "" : waitsNote(s.id, waiting)}<div class="progress big">${progressBar(s)}<span data-testid="progress">${s.finished + s.counts.canceled}/${s.task_count}</span>
      <span class="muted">state <b data-testid="state" class="state-${state}">${state}</b> · rate <b data-testid="rate">${s.rate_per_min == null ? "–" : s.rate_per_min.toFixed(1) + " tasks/min"}</b> · ETA <b data-testid="eta">${s.done ? "done" : duration(s.eta_ms)}</b></span></div>
    <div class="cards">
      ${card("tasks", s.task_count, "tasks-total")}${card("queued", s.counts.queued, "tasks-queued")}${card("running", s.counts.running, "tasks-running")}
      ${card("succeeded", s.counts.succeeded, "tasks-succeeded")}${card("failed", s.counts.failed, "tasks-failed")}${card("canceled", s.counts.canceled, "tasks-canceled")}
      ${card("finished", s.finished, "tasks-finished", "succeeded + failed")}${card("not finished", s.not_finished, "tasks-not-finished", "queued + running")}${card("missing", s.missing, "tasks-missing", "terminal and not succeeded: failed + canceled")}
    </div>
    <div class="cards">
      ${card("accuracy", pct(s.accuracy), "accuracy", "correct / finished")}${card("score", pct(s.score), "score", "correct / all tasks")}
      ${card("score w/o infra failures", pct(s.score_excluding_infra), "score-excl", `correct / (all tasks − ${s.infra_failed} infrastructure failures)`)}
      ${card("correct", s.correct, "correct")}
    </div>
    <p class="muted defs">accuracy = correct / finished (${s.correct}/${s.finished}) · score = correct / all tasks (${s.correct}/${s.task_count}) · score w/o infra = correct / (all − infrastructure failures) (${s.correct}/${s.task_count - s.infra_failed})</p>`;
}

function inflightTable(f) {
  if (f.tasks.length === 0) return `<p class="muted" data-testid="inflight-empty">Nothing running.</p>`;
  return table(
    ["Task", "Attempt", "Step", "Tool", "Waiting on", "Endpoint", "For", "Runner", "Slurm job"],
    f.tasks.map((t) => [
      `<a href="#/tasks/${t.task_id}">${esc(t.external_id)}</a>`, t.attempt, t.step ?? "–", esc(t.tool ?? "–"), esc(t.component ?? "–"),
      `<span class="muted">${esc(t.endpoint ?? "–")}</span>`, ms(t.waiting_ms), esc(`${t.runner.host ?? "?"}:${t.runner.pid ?? "?"}`),
      esc(t.runner.slurm_array_job_id ? `${t.runner.slurm_array_job_id}_${t.runner.slurm_array_task_id}` : t.runner.slurm_job_id ?? "–"),
    ]),
    "inflight",
    [0, 3, 4, 5, 7, 8],
  );
}

function sweepLink(links) {
  if (links?.sweep_id == null) return "";
  const values = Object.entries(links.sweep_values ?? {}).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
  return ` <a href="#/sweeps/${links.sweep_id}" data-testid="sweep-link">sweep ${esc(links.sweep_id)}${values ? ` (${esc(values)})` : ""} →</a>`;
}

// downloads of GET /v1/runs/:id/export (what `baton export` writes), streamed by the server
function exportLinks(runId) {
  const link = (query, label, testid) => `<a href="/v1/runs/${runId}/export?${query}" download data-testid="${testid}">${label}</a>`;
  return ` <span class="muted">export:</span> ${link("format=csv&what=results", "results CSV", "export-results")} ${link("format=csv&what=latency", "latency CSV", "export-latency")} ${link("format=toolorchestra", "ToolOrchestra JSONL", "export-toolorchestra")}`;
}

async function showRun(id) {
  const gen = view.gen;
  crumb.textContent = `run ${id}`;
  main.innerHTML = `<p class="muted">Loading run ${esc(id)}…</p>`;
  let s = await getJson(`/v1/runs/${encodeURIComponent(id)}`);
  // a run made by `baton sweep` links back to its sweep's page
  const links = await getJson(`/v1/runs/${s.id}/links`).catch(() => null);
  if (!current(gen)) return;
  crumb.innerHTML = `run ${esc(s.id)} · ${esc(s.name)} (${esc(s.benchmark)})`;
  main.innerHTML = `
    <div class="toolbar"><a href="#/runs/${s.id}/tasks" data-testid="tasks-link">all tasks →</a> <a href="#/runs/${s.id}/tasks?status=failed">failed tasks →</a> <a href="#/runs/${s.id}/tasks?correct=false">wrong answers →</a>${sweepLink(links)}${exportLinks(s.id)}</div>
    <section id="live" data-testid="live">${liveNumbers(s, (await getJson(`/v1/waiting?run_id=${s.id}`)).runs)}</section>
    <h2>In flight</h2><section id="inflight"></section>
    <h2>Over time</h2><section id="timeline"><p class="muted">Loading…</p></section>
    <section id="report"><p class="muted">Loading the report…</p></section>`;
  const live = document.getElementById("live");
  const inflight = document.getElementById("inflight");
  const refreshInflight = async () => {
    const f = await getJson(`/v1/runs/${s.id}/inflight`);
    if (current(gen)) inflight.innerHTML = inflightTable(f);
  };
  await refreshInflight();
  await Promise.all([drawReport(s.id, gen), drawTimeline(s.id, gen)]);
  if (!current(gen)) return;
  document.body.dataset.ready = "1";
  document.body.dataset.polls = "0";
  // Only the live numbers and the in-flight table are replaced while the run works: the charts
  // stay, and are redrawn when it finishes (and meanwhile at most every 10 s, when tasks finished).
  let wasDone = s.done;
  let lastDraw = Date.now();
  let drawnFinished = s.finished;
  poll(async () => {
    const [next, { runs: waiting }] = await Promise.all([getJson(`/v1/runs/${s.id}`), getJson(`/v1/waiting?run_id=${s.id}`)]);
    s = next;
    if (!current(gen)) return;
    live.innerHTML = liveNumbers(s, waiting);
    await refreshInflight();
    if ((s.done && !wasDone) || (!s.done && s.finished !== drawnFinished && Date.now() - lastDraw > 10_000)) {
      lastDraw = Date.now();
      drawnFinished = s.finished;
      view.charts.forEach((c) => c.destroy());
      view.charts = [];
      await Promise.all([drawReport(s.id, gen), drawTimeline(s.id, gen)]);
    }
    wasDone = s.done;
    document.body.dataset.polls = String(Number(document.body.dataset.polls) + 1);
  }, 2000);
}

async function drawReport(runId, gen) {
  const r = await getJson(`/v1/runs/${runId}/report`);
  if (!current(gen)) return;
  const el = document.getElementById("report");
  const maxMean = Math.max(1, ...r.tools.map((tool) => tool.components.reduce((a, c) => a + c.mean, 0)));
  const comps = [...new Set(r.tools.flatMap((tool) => tool.components.map((c) => c.component)))];
  el.innerHTML = `
    <div class="cards">${card("mean steps", r.steps.mean == null ? "–" : r.steps.mean.toFixed(1), "mean-steps")}</div>
    <h2>Latency per tool</h2><div class="charts" id="charts"></div>
    <h2>Where the time goes (mean per call, by component)</h2>
    <div class="legend">${comps.map((c) => `<span><i style="background:${COMPONENT_COLORS[c] || "#999"}"></i>${esc(c)}</span>`).join("")}</div>
    ${table(["Tool", "Calls", "p50", "p95", "p99", "Under 5 s", "Components (stacked mean)"], r.tools.map((tool) => [
      esc(tool.tool), tool.count, ms(tool.p50), ms(tool.p95), ms(tool.p99), pct(tool.under5s),
      `<div class="bar" style="width:${Math.max(8, (100 * tool.components.reduce((a, c) => a + c.mean, 0)) / maxMean)}%" title="${esc(tool.components.map((c) => `${c.component} ${ms(c.mean)}`).join(", "))}">${tool.components.map((c) => `<span style="flex:${c.mean};background:${COMPONENT_COLORS[c.component] || "#999"}"></span>`).join("")}</div>`,
    ]), "tools", [0, 6])}
    <h2>Components</h2>
    ${table(["Tool / component", "Calls", "Mean", "p50", "p95", "p99", "Max", "Retried", "Timeouts", "Fallbacks", "Unavailable"], r.tools.flatMap((tool) => tool.components.map((c) => [
      `${esc(tool.tool)} / ${esc(c.component)}`, c.count, ms(c.mean), ms(c.p50), ms(c.p95), ms(c.p99), ms(c.max), c.calls_with_retries, c.timeouts, c.fallbacks, c.unavailable])))}
    <h2>Endpoints</h2>
    ${table(["Endpoint", "Role", "Model / backend", "Calls", "Errors", "Error rate", "Mean", "p50", "p95", "Max"], r.endpoints.map((e) => [
      esc(e.endpoint), esc(e.role), esc(e.name), e.calls, e.errors, pct(e.error_rate), ms(e.mean), ms(e.p50), ms(e.p95), ms(e.max)]), "endpoints", [0, 1, 2])}
    <h2>Slowest calls</h2>
    ${table(["Task", "Step", "Tool", "Model", "Status", "Duration", "Components"], r.slowest.map((s) => [
      `<a href="#/tasks/${s.task_id}">${esc(s.external_id ?? s.task_id)}</a>`, s.step, esc(s.tool), esc(s.model), esc(s.status), ms(s.duration_ms),
      `<span class="muted">${esc(Object.entries(s.components).map(([k, v]) => `${k} ${ms(v)}`).join(" · "))}</span>`]), "slowest", [0, 2, 3, 4, 6])}
    <h2>Failed tasks (${r.tasks.failed})</h2>
    ${r.failed.length === 0 ? `<p class="muted">None.</p>` : table(["Task", "Attempts", "Error class", "Infrastructure", "Message"], r.failed.map((f) => [
      `<a href="#/tasks/${f.task_id}">${esc(f.external_id)}</a>`, f.attempt, `<span class="status-failed">${esc(f.error_class)}</span>`, f.infra ? "yes" : "no", `<span class="muted msg">${esc((f.error_message || "").slice(0, 120))}</span>`]), "failed", [0, 2, 3, 4])}
    <h2>Missing ids: failed or canceled (<span data-testid="missing-count">${r.missing_ids.length}${r.missing_truncated ? "+" : ""}</span>)</h2>
    <p class="muted">${r.tasks.not_finished} task(s) not finished yet (queued or running) are not missing.</p>
    <p class="muted" style="white-space:normal;word-break:break-all">${esc(r.missing_ids.slice(0, 300).join(", "))}${r.missing_ids.length > 300 ? " …" : ""}</p>`;
  const charts = document.getElementById("charts");
  const tools = [...TOOLS.filter((x) => r.tools.some((tool) => tool.tool === x)), ...r.tools.map((tool) => tool.tool).filter((x) => !TOOLS.includes(x))];
  const dists = await Promise.all([...tools.map((tool) => getJson(`/v1/runs/${runId}/latency?tool=${encodeURIComponent(tool)}`)), getJson(`/v1/runs/${runId}/latency`)]);
  if (!current(gen)) return;
  dists.forEach((d) => histogramChart(charts, d.tool ?? "all tools", d));
}

// Small multiples over the run's time: one chart per endpoint and per tool (calls, errors,
// p50/p95), and tasks finished per minute with runner joins (green) and exits (grey) marked.
function smallChart(parent, { title, note, testid, xs, series, marks = [], height = 150 }) {
  const box = document.createElement("div");
  box.className = "chart small";
  box.dataset.testid = testid;
  box.innerHTML = `<h3>${esc(title)}</h3><div class="pcts">${note}</div>`;
  parent.appendChild(box);
  const opts = {
    width: Math.max(300, box.clientWidth - 22), height,
    legend: { show: false },
    cursor: { show: false },
    scales: { x: { time: false }, n: { range: (u, lo, hi) => [0, Math.max(1, hi)] }, ms: { range: (u, lo, hi) => [0, Math.max(1, hi)] } },
    axes: [
      { values: (u, vals) => vals.map((v) => `${Math.round(v / 1000)}s`) },
      { scale: series[0].scale, size: 50, values: (u, vals) => vals.map((v) => (v == null ? "" : v >= 1000 ? `${(v / 1000).toFixed(1)}k` : String(+v.toFixed(1)))) },
      ...(series.some((s) => s.scale === "ms") ? [{ scale: "ms", side: 1, size: 50, grid: { show: false }, values: (u, vals) => vals.map((v) => (v == null ? "" : ms(v))) }] : []),
    ],
    series: [{}, ...series.map((s) => ({ label: s.label, scale: s.scale, stroke: s.stroke, width: 1.5, points: { show: false }, spanGaps: s.scale === "ms" }))],
    hooks: { draw: [(u) => {
      const ctx = u.ctx;
      for (const [x, color] of marks) {
        const px = u.valToPos(x, "x", true);
        ctx.save(); ctx.strokeStyle = color; ctx.setLineDash([3, 3]); ctx.lineWidth = 1.5;
        ctx.beginPath(); ctx.moveTo(px, u.bbox.top); ctx.lineTo(px, u.bbox.top + u.bbox.height); ctx.stroke(); ctx.restore();
      }
    }] },
  };
  view.charts.push(new uPlot(opts, [xs, ...series.map((s) => s.values)], box));
}

function errorNote(s) {
  const calls = s.calls.reduce((a, b) => a + b, 0);
  const classes = Object.entries(s.errors).map(([k, v]) => [k, v.reduce((a, b) => a + b, 0)]).sort((a, b) => b[1] - a[1]);
  const errs = classes.reduce((a, [, n]) => a + n, 0);
  return `<span data-k="calls">${calls}</span> calls · <span data-k="errors" class="${errs ? "bad" : ""}">${errs}</span> errors${classes.length ? ` (${classes.map(([k, n]) => `${esc(k)} ×${n}`).join(", ")})` : ""}`;
}

async function drawTimeline(runId, gen) {
  const t = await getJson(`/v1/runs/${runId}/timeline`);
  if (!current(gen)) return;
  const el = document.getElementById("timeline");
  if (t.buckets === 0) {
    el.innerHTML = `<p class="muted">No calls yet.</p>`;
    return;
  }
  el.innerHTML = `<div class="legend"><span><i style="background:#64748b"></i>calls</span><span><i style="background:#dc2626"></i>errors</span><span><i style="background:#2563eb"></i>p50</span><span><i style="background:#7c3aed"></i>p95</span><span class="muted">per ${ms(t.bucket_ms)} bucket</span></div>
    <div class="charts" id="tl-throughput"></div><h3 class="sub">Per endpoint</h3><div class="multiples" id="tl-endpoints"></div><h3 class="sub">Per tool</h3><div class="multiples" id="tl-tools"></div>`;
  const xs = Array.from({ length: t.buckets }, (_, i) => i * t.bucket_ms);
  const perMin = 60_000 / t.bucket_ms;
  const rel = (at) => at - t.start;
  const marks = t.runners.flatMap((r) => [[rel(r.started_at), "#16a34a"], ...(r.stopped_at != null ? [[rel(r.stopped_at), "#6b7280"]] : [])]);
  const done = t.finished.succeeded.map((n, i) => n + t.finished.failed[i]);
  smallChart(document.getElementById("tl-throughput"), {
    title: "Tasks finished per minute",
    note: `${done.reduce((a, b) => a + b, 0)} finished · ${t.runners.length} runner(s): joins <span class="ok">green</span>, exits grey`,
    testid: "throughput", xs, height: 180, marks,
    series: [{ label: "finished/min", scale: "n", stroke: "#16a34a", values: done.map((n) => n * perMin) }, { label: "failed/min", scale: "n", stroke: "#dc2626", values: t.finished.failed.map((n) => n * perMin) }],
  });
  const multiples = (id, list, prefix) => {
    const parent = document.getElementById(id);
    for (const s of list) {
      const errors = s.calls.map((_, i) => Object.values(s.errors).reduce((a, v) => a + v[i], 0));
      smallChart(parent, {
        title: s.key, note: errorNote(s), testid: `${prefix}-${s.key}`, xs,
        series: [
          { label: "calls", scale: "n", stroke: "#64748b", values: s.calls },
          { label: "errors", scale: "n", stroke: "#dc2626", values: errors },
          { label: "p50", scale: "ms", stroke: "#2563eb", values: s.p50 },
          { label: "p95", scale: "ms", stroke: "#7c3aed", values: s.p95 },
        ],
      });
    }
  };
  multiples("tl-endpoints", t.endpoints, "tl-endpoint");
  multiples("tl-tools", t.tools, "tl-tool");
}
