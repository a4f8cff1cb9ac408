// Two or more runs side by side: accuracy and score with 95% Wilson intervals, per-tool latency
// CDFs overlaid, and the questions whose correctness differs between them.
"use strict";
const RUN_COLORS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2"];

// Wilson score interval for k successes out of n (z = 1.96: 95%)
function wilson(k, n, z = 1.96) {
  if (!n) return null;
  const p = k / n;
  const d = 1 + (z * z) / n;
  const center = (p + (z * z) / (2 * n)) / d;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / d;
  return [Math.max(0, center - half), Math.min(1, center + half)];
}
const withCi = (x, ci) => `${pct(x)} <span class="muted ci">[${ci ? `${pct(ci[0])}, ${pct(ci[1])}` : "–"}]</span>`;

async function allTasks(runId) {
  const out = [];
  let cursor = null;
  do {
    const page = await getJson(`/v1/runs/${runId}/tasks?limit=1000${cursor != null ? `&cursor=${cursor}` : ""}`);
    out.push(...page.tasks);
    cursor = page.next_cursor;
  } while (cursor != null);
  return out;
}

// a run's tasks by question: with repeats a question has several
function byQuestion(list) {
  const m = new Map();
  for (const t of list) m.set(t.external_id, [...(m.get(t.external_id) ?? []), t]);
  return m;
}
// share of a question's tasks answered right (absent: not right), as `baton report --compare` counts it
const rightShare = (ts) => (ts ? ts.filter((t) => t.correct === true).length / ts.length : 0);

// how a run did on one question, for the differences table
function verdict(ts) {
  if (!ts) return `<span class="muted">absent</span>`;
  if (ts.length > 1) return `<a href="#/tasks/${ts[0].id}">${ts.filter((t) => t.correct === true).length}/${ts.length} right</a>`;
  const t = ts[0];
  const text = t.correct ? `<span class="ok">right</span>` : t.status === "succeeded" ? `<span class="bad">wrong</span>` : `<span class="status-${t.status}">${esc(t.status)}${t.error_class ? ` (${esc(t.error_class)})` : ""}</span>`;
  return `<a href="#/tasks/${t.id}">${text}</a>`;
}

// CDFs drawn on one x axis: each run's step function read at every run's points
function cdfOverlay(parent, tool, dists, runs) {
  const box = document.createElement("div");
  box.className = "chart";
  box.dataset.testid = `cdf-${tool}`;
  box.innerHTML = `<h3>${esc(tool)}: share of calls done by</h3><div class="pcts">${dists.map((d, i) => `<span style="color:${RUN_COLORS[i % RUN_COLORS.length]}">run ${runs[i].id}</span> n=${d.count} p50 ${ms(d.p50)} p95 ${ms(d.p95)}`).join(" · ")}</div>`;
  parent.appendChild(box);
  const xs = [...new Set(dists.flatMap((d) => d.cdf.map((p) => p[0])))].sort((a, b) => a - b);
  const ys = dists.map((d) => {
    if (d.cdf.length === 0) return xs.map(() => null);
    let j = -1;
    return xs.map((x) => {
      while (j + 1 < d.cdf.length && d.cdf[j + 1][0] <= x) j++;
      return j < 0 ? 0 : 100 * d.cdf[j][1];
    });
  });
  const opts = {
    width: Math.max(320, box.clientWidth - 22), height: 220, legend: { show: false }, cursor: { show: false },
    scales: { x: { time: false, distr: xs.length && xs[0] > 0 ? 3 : 1 }, y: { range: [0, 100] } },
    axes: [{ label: "latency", values: (u, vals) => vals.map((v) => (v == null ? "" : ms(v))) }, { label: "cumulative %", size: 50 }],
    series: [{}, ...runs.map((r, i) => ({ label: `run ${r.id}`, stroke: RUN_COLORS[i % RUN_COLORS.length], width: 1.8, points: { show: false }, paths: uPlot.paths.stepped({ align: 1 }) }))],
  };
  view.charts.push(new uPlot(opts, [xs, ...ys], box));
}

async function showCompare(refs) {
  const gen = view.gen;
  crumb.textContent = `compare ${refs.join(", ")}`;
  if (refs.length < 2) throw new Error("pick at least two runs to compare");
  const runs = await Promise.all(refs.map((r) => getJson(`/v1/runs/${encodeURIComponent(r)}`)));
  const [reports, tasks] = await Promise.all([Promise.all(runs.map((r) => getJson(`/v1/runs/${r.id}/report`))), Promise.all(runs.map((r) => allTasks(r.id)))]);
  if (!current(gen)) return;
  const byId = tasks.map(byQuestion);
  const ids = [...new Set(tasks.flatMap((list) => list.map((t) => t.external_id)))];
  const differs = ids.filter((id) => new Set(byId.map((m) => rightShare(m.get(id)))).size > 1);
  const tools = [...new Set(reports.flatMap((r) => r.tools.map((t) => t.tool)))];
  main.innerHTML = `<h2>Compare runs ${runs.map((r) => `<a href="#/runs/${r.id}">${esc(r.id)} · ${esc(r.name)}</a>`).join(" vs ")}</h2>
    <p class="muted defs">accuracy = correct / finished · score = correct / all tasks · brackets: 95% Wilson interval</p>
    ${table(["Run", "Benchmark", "Tasks", "Finished", "Correct", "Accuracy [95% CI]", "Score [95% CI]", "Score w/o infra failures [95% CI]", "Mean steps"], runs.map((r, i) => [
      `<a href="#/runs/${r.id}" style="color:${RUN_COLORS[i % RUN_COLORS.length]}">${esc(r.id)} · ${esc(r.name)}</a>`, esc(r.benchmark), r.task_count, r.finished, r.correct,
      withCi(r.accuracy, wilson(r.correct, r.finished)), withCi(r.score, wilson(r.correct, r.task_count)),
      withCi(r.score_excluding_infra, wilson(r.correct, r.task_count - r.infra_failed)), reports[i].steps.mean == null ? "–" : reports[i].steps.mean.toFixed(2),
    ]), "compare-runs", [0, 1])}
    <h2>Latency per tool</h2><div class="charts" id="cdfs"></div>
    <h2>Questions whose correctness differs (<span data-testid="differs-count">${differs.length}</span> of ${ids.length})</h2>
    ${differs.length === 0 ? `<p class="muted">None: every question is right in all runs or in none.</p>` : table(["Question id", ...runs.map((r) => `run ${r.id}`), "Question"], differs.map((id) => [
      esc(id), ...byId.map((m) => verdict(m.get(id))), `<span class="clip wide">${esc(byId.map((m) => m.get(id)).find(Boolean)?.[0].question ?? "")}</span>`,
    ]), "differs", [0, ...runs.map((_, i) => i + 1), runs.length + 1])}`;
  const el = document.getElementById("cdfs");
  for (const tool of tools) {
    const dists = await Promise.all(runs.map((r) => getJson(`/v1/runs/${r.id}/latency?tool=${encodeURIComponent(tool)}`)));
    if (!current(gen)) return;
    cdfOverlay(el, tool, dists, runs);
  }
  document.body.dataset.ready = "1";
}
