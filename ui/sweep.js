// One sweep (baton sweep): a row per configuration from GET /v1/sweeps/<id>/report — the varied
// values, accuracy with its 95% Wilson interval drawn as whiskers on one 0–100% scale, pass@K and
// pass^K over repeats, tokens, p50/p95 per tool, and whether it differs from the best. Polled
// while any of its runs is still working.
"use strict";

// a varied value as the sweep's run names spell it: strings bare, everything else as JSON
const sweepValue = (v) => (typeof v === "string" ? v : JSON.stringify(v));
const count = (n) => Number(n).toLocaleString("en-US");

// the accuracy as a point, its interval as whiskers; every row shares the 0–100% scale so rows compare by eye
function intervalBar(r) {
  if (r.accuracy == null || !r.interval) return `<span class="muted">–</span>`;
  const at = (x) => `${(100 * x).toFixed(2)}%`;
  const title = `accuracy ${pct(r.accuracy)}, 95% Wilson interval [${pct(r.interval.lo)}, ${pct(r.interval.hi)}] over ${r.finished} finished tasks`;
  return `<div class="ci-bar" title="${esc(title)}" data-lo="${r.interval.lo}" data-hi="${r.interval.hi}" data-acc="${r.accuracy}">
    <span class="ci-range" style="left:${at(r.interval.lo)};width:${at(r.interval.hi - r.interval.lo)}"></span>
    <span class="ci-cap" style="left:${at(r.interval.lo)}"></span><span class="ci-cap" style="left:${at(r.interval.hi)}"></span>
    <span class="ci-point" style="left:${at(r.accuracy)}"></span></div>`;
}

// the same words as `baton report --sweep`: best, n.s. (not significantly different from it), or p
function versusBest(r) {
  if (r.best) return `<b class="ok" data-k="vs">best</b>`;
  if (r.significant === false) return `<span class="ns" data-k="vs" title="not significantly different from the best configuration (two-proportion test, 5%)">n.s. (p=${r.p_value_vs_best.toFixed(2)})</span>`;
  if (r.significant) return `<span data-k="vs">p=${r.p_value_vs_best.toFixed(3)}</span>`;
  return `<span class="muted" data-k="vs">–</span>`;
}

function sweepTable(s) {
  const tools = [...new Set(s.rows.flatMap((r) => Object.keys(r.tools)))].sort();
  const k = s.repeats;
  // the significance mark sits beside the accuracy it qualifies, so it stays in view on a narrow screen
  const head = ["Run", ...s.vary.map((v) => v.path), "Finished", "Accuracy [95% interval]", "on 0–100%", "vs best", ...(k > 1 ? [`pass@${k}`, `pass^${k}`] : []), "Tokens in / out", ...tools.map((t) => `${t} p50 / p95`)];
  const rows = s.rows.map((r) => [
    `<a href="#/runs/${r.run_id}" data-k="run">${esc(r.run_id)}</a>`,
    ...s.vary.map((v) => `<code data-k="value">${esc(sweepValue(r.values[v.path]))}</code>`),
    `<span data-k="finished">${r.finished}/${r.tasks}</span>`,
    `<b data-k="accuracy">${pct(r.accuracy)}</b> <span class="muted ci" data-k="interval">${r.interval ? `[${pct(r.interval.lo)}, ${pct(r.interval.hi)}]` : "–"}</span>`,
    intervalBar(r),
    versusBest(r),
    ...(k > 1 ? [`<span data-k="pass">${pct(r.pass_at_k[k])}</span>`, `<span data-k="pass-hat">${pct(r.pass_hat_k[k])}</span>`] : []),
    `<span data-k="tokens">${count(r.prompt_tokens)} / ${count(r.completion_tokens)}</span>`,
    ...tools.map((t) => `<span data-k="tool" data-tool="${esc(t)}">${r.tools[t] ? `${ms(r.tools[t].p50)} / ${ms(r.tools[t].p95)}` : "–"}</span>`),
  ]);
  const left = [0, ...s.vary.map((_, i) => i + 1)];
  return table(head, rows, "sweep", left);
}

function sweepSummary(s) {
  const tasks = s.rows.reduce((n, r) => n + r.tasks, 0);
  const finished = s.rows.reduce((n, r) => n + r.finished, 0);
  return `<div class="cards">${card("configurations", s.rows.length, "configurations")}${card("repeats", s.repeats, "repeats", "tries of each question per configuration")}${card("finished", `${finished}/${tasks}`, "sweep-finished", "succeeded + failed, over all its runs")}</div>
    <p class="muted defs">varied: ${s.vary.map((v) => `<code>${esc(v.path)}</code> = ${v.values.map((x) => esc(sweepValue(x))).join(", ")}`).join(" · ")}</p>`;
}

async function showSweep(id) {
  const gen = view.gen;
  crumb.textContent = `sweep ${id}`;
  main.innerHTML = `<p class="muted">Loading sweep ${esc(id)}…</p>`;
  const render = async () => {
    const s = await getJson(`/v1/sweeps/${encodeURIComponent(id)}/report`);
    if (!current(gen)) return s;
    crumb.innerHTML = `sweep ${esc(s.sweep_id)} · ${esc(s.name)} (${esc(s.benchmark)})`;
    const ids = s.rows.map((r) => r.run_id);
    // a redraw keeps where the reader had scrolled the wide table to
    const scrolled = main.querySelector(".wide-table")?.scrollLeft ?? 0;
    main.innerHTML = `<h2>Sweep ${esc(s.sweep_id)} · ${esc(s.name)}</h2>${sweepSummary(s)}
      <div class="toolbar">${ids.length > 1 ? `<a href="#/compare/${ids.join(",")}" data-testid="compare-link">compare these runs →</a>` : ""}</div>
      <div class="wide-table">${sweepTable(s)}</div>
      <p class="muted defs">accuracy = correct / finished (failures count as wrong); the bar draws it (dot) and its 95% Wilson interval (whiskers) on a 0–100% scale ·
      n.s.: not significantly different from the best configuration (two-proportion test, 5%)${s.repeats > 1 ? ` · pass@${s.repeats}: a question right at least once in ${s.repeats} tries; pass^${s.repeats}: right every time` : ""}</p>`;
    main.querySelector(".wide-table").scrollLeft = scrolled;
    return s;
  };
  const first = await render();
  if (!current(gen)) return;
  document.body.dataset.ready = "1";
  // a sweep still working is polled; one whose runs all finished is drawn once
  const working = (s) => s.rows.some((r) => r.finished < r.tasks);
  if (!working(first)) return;
  let done = false;
  poll(async () => {
    if (done) return;
    const s = await render();
    done = !working(s);
  }, 5000);
}
