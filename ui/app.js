// Baton web page: plain JS, no build step, every asset served by Baton itself.
// Routes: #/ runs (paged, polled) · #/runs/<id> a run, live · #/runs/<id>/tasks?<filters> its tasks ·
// #/tasks/<id> one task's trajectory · #/compare/<id>,<id>,… runs side by side · #/sweeps/<id> a sweep's
// configurations. This file: helpers, the router, the login form and the runs list; the views are in
// run.js, tasks.js, compare.js and sweep.js.
"use strict";
const main = document.getElementById("main");
const crumb = document.getElementById("crumb");
// the current view's timers and charts, dropped on every route change
const view = { timers: [], charts: [], gen: 0 };

const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const pct = (x) => (x == null ? "–" : (100 * x).toFixed(1) + "%");
function ms(x) {
  if (x == null) return "–";
  if (x < 1000) return x.toFixed(0) + " ms";
  if (x < 60000) return (x / 1000).toFixed(2) + " s";
  return (x / 60000).toFixed(1) + " min";
}
function duration(x) {
  if (x == null) return "–";
  const s = Math.round(x / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
const when = (t) => (t == null ? "–" : new Date(t).toLocaleString());

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
function card(k, v, id, title) {
  return `<div class="card"${title ? ` title="${esc(title)}"` : ""}><div class="k">${esc(k)}</div><div class="v"${id ? ` data-testid="${id}"` : ""}>${esc(v)}</div></div>`;
}
// left: indexes of text columns (left-aligned); the rest are numbers (right-aligned)
function table(head, rows, id, left = [0]) {
  const cls = (i) => (left.includes(i) ? ' class="l"' : "");
  return `<table${id ? ` data-testid="${id}"` : ""}><thead><tr>${head.map((h, i) => `<th${cls(i)}>${esc(h)}</th>`).join("")}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c, i) => `<td${cls(i)}>${c}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
}
// Polls fn every `everyMs` while this view is shown; a slow answer never overlaps the next poll.
function poll(fn, everyMs) {
  const gen = view.gen;
  const tick = async () => {
    if (gen !== view.gen) return;
    try {
      await fn();
    } finally {
      if (gen === view.gen) view.timers.push(setTimeout(tick, everyMs));
    }
  };
  view.timers.push(setTimeout(tick, everyMs));
}
const current = (gen) => gen === view.gen;

// The run's state in one word, from its summary.
function runState(r) {
  if (r.canceled_at) return "canceled";
  if (r.done) return "done";
  if (r.counts.running > 0) return "running";
  return r.started_at ? "waiting" : "queued";
}
// what an open run waits for (GET /v1/waiting): its tasks are not claimed until it is served;
// the same words as the runner's log and `baton status`
function describeNeed(n) {
  const what = n.kind === "retrieval" ? `retrieval ${n.names.join("|")}` : n.names.join("|");
  return `${n.label} → ${what}: ${n.healthy ?? 0} healthy`;
}
function waitsNote(runId, waiting) {
  const w = waiting.find((x) => x.run_id === runId);
  return w ? `<div class="warn waits" data-testid="waits-${runId}">waits for ${esc(w.needs.map(describeNeed).join("; "))}</div>` : "";
}
// succeeded / failed / running / queued as one bar
function progressBar(r) {
  const total = r.task_count || 1;
  const c = r.counts;
  const seg = (n, color, k) => `<span data-k="${k}" style="width:${(100 * n) / total}%;background:${color}"></span>`;
  return `<div class="bar">${seg(c.succeeded, "var(--ok)", "succeeded")}${seg(c.failed, "var(--bad)", "failed")}${seg(c.canceled, "#9ca3af", "canceled")}${seg(c.running, "var(--accent)", "running")}</div>`;
}

async function showRuns(params) {
  crumb.textContent = "runs";
  const gen = view.gen;
  const cursor = params.get("cursor");
  const selected = new Set();
  const render = async () => {
    const [page, { runs: waiting }] = await Promise.all([getJson(`/v1/runs?limit=25${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`), getJson("/v1/waiting")]);
    if (!current(gen)) return;
    const { runs } = page;
    const rows = runs.map((r) => [
      `<input type="checkbox" class="pick" value="${r.id}"${selected.has(String(r.id)) ? " checked" : ""} aria-label="compare run ${r.id}">`,
      `<a href="#/runs/${r.id}">${esc(r.id)} · ${esc(r.name)}</a>${r.done || r.canceled_at ? "" : waitsNote(r.id, waiting)}`,
      esc(r.benchmark),
      `<span class="state-${runState(r)}">${runState(r)}</span>`,
      r.task_count,
      `<div class="progress">${progressBar(r)}<span class="muted">${((100 * (r.finished + r.counts.canceled)) / (r.task_count || 1)).toFixed(0)}%</span></div>`,
      pct(r.accuracy),
      pct(r.score),
      r.rate_per_min == null ? "–" : `${r.rate_per_min.toFixed(1)}/min`,
      r.done ? "–" : duration(r.eta_ms),
      when(r.created_at),
    ]);
    const body = runs.length === 0
      ? `<p class="muted">${cursor ? "No older runs." : "No runs yet. Submit one with <code>baton submit</code>."}</p>`
      : table(["", "Run", "Benchmark", "State", "Tasks", "Progress", "Accuracy", "Score", "Rate", "ETA", "Created"], rows, "runs", [0, 1, 2, 3, 5]);
    main.innerHTML = `<h2>Runs</h2>
      <p class="muted defs">accuracy = correct / finished (succeeded + failed) · score = correct / all tasks</p>
      <div class="toolbar"><button id="compare" disabled>Compare selected</button>
      ${cursor ? `<a href="#/">newest</a>` : ""}${page.next_cursor != null ? ` <a data-testid="older" href="#/?cursor=${page.next_cursor}">older runs →</a>` : ""}</div>${body}`;
    const button = document.getElementById("compare");
    const sync = () => (button.disabled = selected.size < 2);
    main.querySelectorAll(".pick").forEach((box) =>
      box.addEventListener("change", () => {
        if (box.checked) selected.add(box.value);
        else selected.delete(box.value);
        sync();
      }),
    );
    button.addEventListener("click", () => (location.hash = `#/compare/${[...selected].sort((a, b) => a - b).join(",")}`));
    sync();
    document.body.dataset.ready = "1";
  };
  try {
    await render();
  } catch (e) {
    main.innerHTML = `<p class="err">${esc(e.message)}</p>`;
  }
  poll(render, 3000);
}

// The server has a token: ask for it once; /ui/login keeps it in an HttpOnly cookie.
function showLogin() {
  stopView();
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

function stopView() {
  view.gen++;
  view.timers.forEach((t) => clearTimeout(t));
  view.timers = [];
  view.charts.forEach((c) => c.destroy());
  view.charts = [];
}

function route() {
  stopView();
  delete document.body.dataset.ready;
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query);
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const show = (p) =>
    p.catch((e) => {
      main.innerHTML = `<p class="err">${esc(e.message)}</p>`;
    });
  if (parts[0] === "runs" && parts[1] && parts[2] === "tasks") show(showTasks(parts[1], params));
  else if (parts[0] === "runs" && parts[1]) show(showRun(parts[1]));
  else if (parts[0] === "tasks" && parts[1]) show(showTask(parts[1], params));
  else if (parts[0] === "compare" && parts[1]) show(showCompare(parts[1].split(",")));
  else if (parts[0] === "sweeps" && parts[1]) show(showSweep(parts[1]));
  else show(showRuns(params));
}
window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);
