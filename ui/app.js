// Baton web page: plain JS, no build step. #/ lists runs (polled), #/runs/<id> shows one run.
"use strict";
const COMPONENT_COLORS = { orchestrator: "#94a3b8", query_llm: "#2563eb", retrieval: "#f59e0b", expert_llm: "#7c3aed", code_exec: "#10b981", judge: "#ef4444" };
const TOOLS = ["search", "enhance_reasoning", "answer"];
const main = document.getElementById("main");
const crumb = document.getElementById("crumb");
let timer = null;
let charts = [];

const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const pct = (x) => (x == null ? "–" : (100 * x).toFixed(1) + "%");
function ms(x) {
  if (x == null) return "–";
  if (x < 1000) return x.toFixed(0) + " ms";
  if (x < 60000) return (x / 1000).toFixed(2) + " s";
  return (x / 60000).toFixed(1) + " min";
}
async function getJson(path) {
  const res = await fetch(path, { headers: { accept: "application/json" } });
  if (res.status === 401) {
    showLogin();
    // never settles: the view that asked stops here instead of painting an error over the form
    return new Promise(() => {});
  }
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error(body?.error?.message ?? `${path}: HTTP ${res.status}`);
  return body;
}
function card(k, v, id) {
  return `<div class="card"><div class="k">${esc(k)}</div><div class="v"${id ? ` data-testid="${id}"` : ""}>${esc(v)}</div></div>`;
}
// left: indexes of text columns (left-aligned); the rest are numbers (right-aligned)
function table(head, rows, id, left = [0]) {
  const cls = (i) => (left.includes(i) ? ' class="l"' : "");
  return `<table${id ? ` data-testid="${id}"` : ""}><thead><tr>${head.map((h, i) => `<th${cls(i)}>${esc(h)}</th>`).join("")}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c, i) => `<td${cls(i)}>${c}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
}

async function showRuns() {
  crumb.textContent = "runs";
  const render = async () => {
    try {
      const { runs } = await getJson("/v1/runs");
      main.innerHTML = `<h2>Runs</h2>` + (runs.length === 0 ? `<p class="muted">No runs yet. Submit one with <code>baton submit</code>.</p>` : table(
        ["Run", "Benchmark", "Tasks", "Progress", "Succeeded", "Failed", "Running", "Queued", "Created"],
        runs.map((r) => {
          const c = r.counts || {};
          const total = r.task_count || Object.values(c).reduce((a, b) => a + b, 0) || 1;
          const done = (c.succeeded || 0) + (c.failed || 0) + (c.canceled || 0);
          const bar = `<div class="bar"><span style="width:${(100 * (c.succeeded || 0)) / total}%;background:var(--ok)"></span><span style="width:${(100 * (c.failed || 0)) / total}%;background:var(--bad)"></span><span style="width:${(100 * (c.running || 0)) / total}%;background:var(--accent)"></span></div>`;
          return [`<a href="#/runs/${r.id}">${esc(r.id)} · ${esc(r.name)}</a>`, esc(r.benchmark), total, `<div style="display:flex;gap:8px;align-items:center">${bar}<span class="muted">${((100 * done) / total).toFixed(0)}%</span></div>`, c.succeeded || 0, c.failed || 0, c.running || 0, c.queued || 0, new Date(r.created_at).toLocaleString()];
        }),
        "runs",
        [0, 1, 3],
      ));
    } catch (e) {
      main.innerHTML = `<p class="err">${esc(e.message)}</p>`;
    }
  };
  await render();
  timer = setInterval(render, 3000);
}

function histogramChart(el, title, dist) {
  const n = dist.count || 1;
  const { loMs, hiMs, counts } = dist.histogram;
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
  charts.push(new uPlot(opts, data, box));
}

async function showRun(id) {
  crumb.textContent = `run ${id}`;
  main.innerHTML = `<p class="muted">Loading run ${esc(id)}…</p>`;
  let r;
  try {
    r = await getJson(`/v1/runs/${encodeURIComponent(id)}/report`);
  } catch (e) {
    main.innerHTML = `<p class="err">${esc(e.message)}</p>`;
    return;
  }
  crumb.textContent = `run ${r.run.id} · ${r.run.name} (${r.run.benchmark})`;
  const t = r.tasks;
  const maxMean = Math.max(1, ...r.tools.map((tool) => tool.components.reduce((a, c) => a + c.mean, 0)));
  const comps = [...new Set(r.tools.flatMap((tool) => tool.components.map((c) => c.component)))];
  main.innerHTML = `
    <div class="cards">
      ${card("tasks", t.total, "tasks-total")}${card("succeeded", t.succeeded, "tasks-succeeded")}${card("failed", t.failed, "tasks-failed")}
      ${card("running", t.running)}${card("queued", t.queued)}${card("accuracy", pct(t.accuracy), "accuracy")}
      ${card("accuracy w/o infra failures", pct(t.accuracyExcludingInfra), "accuracy-excl")}${card("mean steps", r.steps.mean == null ? "–" : r.steps.mean.toFixed(1))}
    </div>
    <h2>Latency per tool</h2><div class="charts" id="charts"></div>
    <h2>Where the time goes (mean per call, by component)</h2>
    <div class="legend">${comps.map((c) => `<span><i style="background:${COMPONENT_COLORS[c] || "#999"}"></i>${esc(c)}</span>`).join("")}</div>
    ${table(["Tool", "Calls", "p50", "p95", "p99", "Under 5 s", "Components (stacked mean)"], r.tools.map((tool) => [
      esc(tool.tool), tool.count, ms(tool.p50), ms(tool.p95), ms(tool.p99), pct(tool.under5s),
      `<div class="bar" style="width:${Math.max(8, (100 * tool.components.reduce((a, c) => a + c.mean, 0)) / maxMean)}%" title="${esc(tool.components.map((c) => `${c.component} ${ms(c.mean)}`).join(", "))}">${tool.components.map((c) => `<span style="flex:${c.mean};background:${COMPONENT_COLORS[c.component] || "#999"}"></span>`).join("")}</div>`,
    ]), "tools", [0, 6])}
    <h2>Components</h2>
    ${table(["Tool / component", "Calls", "Mean", "p50", "p95", "p99", "Max", "Retried", "Timeouts", "Fallbacks", "Unavailable"], r.tools.flatMap((tool) => tool.components.map((c) => [
      `${esc(tool.tool)} / ${esc(c.component)}`, c.count, ms(c.mean), ms(c.p50), ms(c.p95), ms(c.p99), ms(c.max), c.callsWithRetries, c.timeouts, c.fallbacks, c.unavailable])))}
    <h2>Endpoints</h2>
    ${table(["Endpoint", "Role", "Model / backend", "Calls", "Errors", "Error rate", "Mean", "p50", "p95", "Max"], r.endpoints.map((e) => [
      esc(e.endpoint), esc(e.role), esc(e.name), e.calls, e.errors, pct(e.errorRate), ms(e.mean), ms(e.p50), ms(e.p95), ms(e.max)]), "endpoints", [0, 1, 2])}
    <h2>Slowest calls</h2>
    ${table(["Task", "Step", "Tool", "Model", "Status", "Duration", "Components"], r.slowest.map((s) => [
      esc(s.externalId ?? s.taskId), s.step, esc(s.tool), esc(s.model), esc(s.status), ms(s.durationMs),
      `<span class="muted">${esc(Object.entries(s.components).map(([k, v]) => `${k} ${ms(v)}`).join(" · "))}</span>`]), "slowest", [0, 2, 3, 4, 6])}
    <h2>Failed tasks (${t.failed})</h2>
    ${r.failed.length === 0 ? `<p class="muted">None.</p>` : table(["Task", "Attempts", "Error class", "Infrastructure", "Message"], r.failed.map((f) => [
      esc(f.externalId), f.attempt, `<span class="status-failed">${esc(f.errorClass)}</span>`, f.infra ? "yes" : "no", `<span class="muted msg">${esc((f.errorMessage || "").slice(0, 120))}</span>`]), "failed", [0, 2, 3, 4])}
    <h2>Missing ids (${r.missingIds.length}${r.missingTruncated ? "+" : ""})</h2>
    <p class="muted" style="white-space:normal;word-break:break-all">${esc(r.missingIds.slice(0, 300).join(", "))}${r.missingIds.length > 300 ? " …" : ""}</p>`;
  const el = document.getElementById("charts");
  const tools = [...TOOLS.filter((x) => r.tools.some((tool) => tool.tool === x)), ...r.tools.map((tool) => tool.tool).filter((x) => !TOOLS.includes(x))];
  const dists = await Promise.all([...tools.map((tool) => getJson(`/v1/runs/${r.run.id}/latency?tool=${encodeURIComponent(tool)}`)), getJson(`/v1/runs/${r.run.id}/latency`)]);
  dists.forEach((d) => histogramChart(el, d.tool ?? "all tools", d));
  document.body.dataset.ready = "1";
}

// The server has a token: ask for it once; /ui/login keeps it in an HttpOnly cookie.
function showLogin() {
  if (timer) clearInterval(timer);
  timer = null;
  if (document.getElementById("login")) return;
  crumb.textContent = "log in";
  main.innerHTML = `<h2>Log in</h2><form id="login" class="login"><p class="muted">This server needs its token (printed by <code>baton serve</code>, kept in its token file).</p>
    <input type="password" name="token" autocomplete="current-password" placeholder="token" required> <button type="submit">Log in</button> <span id="login-error" class="bad"></span></form>`;
  document.getElementById("login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const token = new FormData(ev.target).get("token");
    const res = await fetch("/ui/login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token }) });
    if (res.ok) route();
    else document.getElementById("login-error").textContent = "that token is not valid";
  });
}

function route() {
  if (timer) clearInterval(timer);
  timer = null;
  charts.forEach((c) => c.destroy());
  charts = [];
  delete document.body.dataset.ready;
  const m = location.hash.match(/^#\/runs\/([^/]+)/);
  if (m) showRun(decodeURIComponent(m[1]));
  else showRuns();
}
window.addEventListener("hashchange", route);
route();
