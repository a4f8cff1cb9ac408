// A run's tasks as a filterable, paged table (the filters are GET /v1/runs/:id/tasks's query),
// and one task's trajectory: every step of every attempt from GET /v1/tasks/:id/steps.
"use strict";
const FILTERS = ["status", "correct", "error_class", "tool", "q", "min_steps", "max_steps", "min_duration_ms", "max_duration_ms"];

function filterForm(runId, params) {
  const v = (k) => esc(params.get(k) ?? "");
  const sel = (k, opts) => `<select name="${k}">${opts.map(([val, label]) => `<option value="${val}"${(params.get(k) ?? "") === val ? " selected" : ""}>${label}</option>`).join("")}</select>`;
  return `<form id="filters" class="filters">
    <label>state ${sel("status", [["", "any"], ["queued", "queued"], ["running", "running"], ["succeeded", "succeeded"], ["failed", "failed"], ["canceled", "canceled"]])}</label>
    <label>correct ${sel("correct", [["", "any"], ["true", "yes"], ["false", "no (answered wrong)"]])}</label>
    <label>tool used <input name="tool" value="${v("tool")}" size="14" list="tool-names"></label>
    <datalist id="tool-names"><option value="search"><option value="enhance_reasoning"><option value="answer"></datalist>
    <label>error class <input name="error_class" value="${v("error_class")}" size="14"></label>
    <label>steps <input name="min_steps" value="${v("min_steps")}" size="3" inputmode="numeric"> – <input name="max_steps" value="${v("max_steps")}" size="3" inputmode="numeric"></label>
    <label>duration ms <input name="min_duration_ms" value="${v("min_duration_ms")}" size="7" inputmode="numeric"> – <input name="max_duration_ms" value="${v("max_duration_ms")}" size="7" inputmode="numeric"></label>
    <label>question or id contains <input name="q" value="${v("q")}" size="24"></label>
    <button type="submit">Filter</button> <a href="#/runs/${runId}/tasks">clear</a></form>`;
}

async function showTasks(runRef, params) {
  const gen = view.gen;
  const query = new URLSearchParams();
  for (const k of [...FILTERS, "cursor"]) if (params.get(k)) query.set(k, params.get(k));
  query.set("limit", "100");
  const [s, page] = await Promise.all([getJson(`/v1/runs/${encodeURIComponent(runRef)}`), getJson(`/v1/runs/${encodeURIComponent(runRef)}/tasks?${query}`)]);
  if (!current(gen)) return;
  crumb.innerHTML = `<a href="#/runs/${s.id}">run ${esc(s.id)} · ${esc(s.name)}</a> · tasks`;
  const next = new URLSearchParams(params);
  if (page.next_cursor != null) next.set("cursor", String(page.next_cursor));
  const first = new URLSearchParams(params);
  first.delete("cursor");
  main.innerHTML = `<h2>Tasks of run ${esc(s.id)} (${esc(s.name)})</h2>${filterForm(s.id, params)}
    <div class="toolbar"><span class="muted" data-testid="task-count">${page.tasks.length} task(s) on this page</span>
    ${params.get("cursor") ? `<a href="#/runs/${s.id}/tasks?${first}">first page</a>` : ""}
    ${page.next_cursor != null ? `<a data-testid="next-page" href="#/runs/${s.id}/tasks?${next}">next page →</a>` : ""}</div>
    ${page.tasks.length === 0 ? `<p class="muted" data-testid="no-tasks">No task matches.</p>` : table(
      ["Task", "State", "Correct", "Steps", "Tools", "Duration", "Attempt", "Error class", "Prediction", "Question"],
      page.tasks.map((t) => [
        `<a href="#/tasks/${t.id}" data-id="${t.id}">${esc(t.external_id)}</a>`,
        `<span class="status-${t.status}">${t.status}</span>`,
        t.correct == null ? "–" : t.correct ? `<span class="ok">yes</span>` : `<span class="bad">no</span>`,
        t.steps, esc(t.tools.join(", ")), ms(t.duration_ms), `${t.attempt}/${t.max_attempts}`,
        t.error_class ? `<span class="bad" title="${esc(t.error_message ?? "")}">${esc(t.error_class)}</span>` : "",
        `<span class="clip">${esc(t.prediction ?? "")}</span>`, `<span class="clip wide">${esc(t.question ?? "")}</span>`,
      ]),
      "tasks", [0, 1, 2, 4, 7, 8, 9],
    )}`;
  document.getElementById("filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const out = new URLSearchParams();
    for (const [k, val] of new FormData(ev.target)) if (String(val).trim() !== "") out.set(k, String(val).trim());
    location.hash = `#/runs/${s.id}/tasks${out.size ? `?${out}` : ""}`;
  });
  document.body.dataset.ready = "1";
}

// ---- the task page ----

const pre = (x, cls = "") => `<pre class="${cls}">${esc(typeof x === "string" ? x : JSON.stringify(x, null, 2))}</pre>`;
const fold = (summary, body, open = false) => `<details${open ? " open" : ""}><summary>${summary}</summary>${body}</details>`;

// An LLM call as the transcript keeps it: the raw reply (text, reasoning, tool calls) first,
// the request messages folded.
function llmCall(l) {
  const reply = l.reply;
  const msgs = l.request?.messages;
  let out = `<div class="llm" data-component="${esc(l.component)}"><div class="llm-head"><b>${esc(l.component)}</b> <span class="muted">${esc(l.request?.model ?? "")} · ${esc(l.endpoint ?? "")} · ${ms(l.ms)}</span></div>`;
  if (l.error) out += `<div class="bad" data-k="llm-error">${esc(l.error)}</div>`;
  if (reply && typeof reply === "object" && ("content" in reply || "tool_calls" in reply)) {
    if (reply.reasoning) out += `<div class="k">reasoning</div>${pre(reply.reasoning, "reasoning")}`;
    out += `<div class="k">reply${reply.finish_reason ? ` (finish: ${esc(reply.finish_reason)})` : ""}</div>${pre(reply.content ?? "", "reply")}`;
    if (reply.tool_calls?.length) out += `<div class="k">tool calls</div>${pre(reply.tool_calls.map((c) => ({ name: c.name ?? c.function?.name, arguments: c.arguments ?? c.function?.arguments })), "tool-call")}`;
  } else if (reply != null) out += `<div class="k">reply</div>${pre(reply, "reply")}`;
  if (Array.isArray(msgs)) out += fold(`request: ${msgs.length} message(s)`, msgs.map((m) => `<div class="k">${esc(m.role)}</div>${pre(typeof m.content === "string" ? m.content : m.content ?? "")}`).join(""));
  return out + `</div>`;
}

function documentsOf(r) {
  const docs = r.documents ?? [];
  const q = r.request?.queries ?? r.request?.query;
  return `<div class="tool-io" data-k="retrieval"><div class="k">retrieval ${esc(r.backend ?? "")} · ${esc(r.status)}</div>
    <div class="k">query</div>${pre(Array.isArray(q) ? q.join("\n") : q ?? r.request)}
    <div class="k">${docs.length} document(s)</div><ol class="docs">${docs.map((d) => {
      const text = String(d.contents ?? d.text ?? d.document?.contents ?? "");
      const title = d.title ?? text.split("\n")[0];
      return `<li>${fold(`<b class="doc-title">${esc(title)}</b>${d.score != null ? ` <span class="muted">score ${Number(d.score).toFixed(3)}</span>` : ""}`, pre(text))}</li>`;
    }).join("")}</ol></div>`;
}

function codeOf(c) {
  return `<div class="tool-io" data-k="code"><div class="k">code</div>${pre(c.code, "code")}<div class="k">stdout (exit ${esc(c.exit_code ?? "–")})</div>${pre(c.stdout, "stdout")}${c.stderr ? `<div class="k">stderr</div>${pre(c.stderr)}` : ""}</div>`;
}

function stepView(s) {
  const t = s.transcript;
  const call = s.tool_call;
  const failed = call && call.status !== "ok";
  const head = `<div class="step-head"><b>step ${s.step}</b> · <span data-k="tool">${esc(call?.tool ?? t?.tool ?? "–")}</span>
    ${call ? `· ${esc(call.model_alias ?? "")} <span class="muted">${esc(call.model ?? "")}</span> · <span class="${failed ? "bad" : "ok"}" data-k="status">${esc(call.status)}</span>${call.error_class ? ` <span class="bad">${esc(call.error_class)}</span>` : ""} · <span data-k="duration">${ms(call.duration_ms)}</span>` : ""}</div>`;
  let body = "";
  if (call?.error_message) body += `<div class="bad msg">${esc(call.error_message)}</div>`;
  if (t) {
    const orch = t.llm.filter((l) => l.component === "orchestrator");
    const others = t.llm.filter((l) => l.component !== "orchestrator");
    body += orch.map(llmCall).join("");
    if (t.tool_calls != null) body += `<div class="k">tool call (as the reference records it)</div>${pre(t.tool_calls, "tool-args")}`;
    body += others.map(llmCall).join("");
    if (t.retrieval) body += documentsOf(t.retrieval);
    if (t.code) body += codeOf(t.code);
    if (t.grade) body += `<div class="tool-io grade" data-k="grade"><div class="k">answer and verdict</div>${pre(t.grade, "grade")}</div>`;
    if (t.responses) body += fold("tool responses (raw)", pre(t.responses));
  } else if (s.transcript_error) body += `<p class="bad" data-k="transcript-error">${esc(s.transcript_error)}</p>`;
  else body += `<p class="muted">No transcript kept for this step (recorded before transcripts existed).</p>`;
  body += table(["Component", "Model", "Endpoint", "Backend", "Status", "Retries", "Latency"], s.components.map((c) => [
    esc(c.component), esc(c.model ?? ""), `<span class="muted">${esc(c.endpoint ?? "")}</span>`, esc(c.backend ?? ""), esc(c.status), c.retries, `<span data-k="ms">${ms(c.ms)}</span>`,
  ]), "components", [0, 1, 2, 3, 4]);
  return `<div class="step${failed ? " failed" : ""}" data-testid="step" data-attempt="${s.attempt}" data-step="${s.step}">${head}${body}</div>`;
}

async function showTask(id) {
  const gen = view.gen;
  const [task, steps] = await Promise.all([getJson(`/v1/tasks/${encodeURIComponent(id)}`), getJson(`/v1/tasks/${encodeURIComponent(id)}/steps`)]);
  if (!current(gen)) return;
  crumb.innerHTML = `<a href="#/runs/${task.run_id}">run ${esc(task.run_id)}</a> · <a href="#/runs/${task.run_id}/tasks">tasks</a> · ${esc(task.external_id)}`;
  const attempts = [...new Set(steps.steps.map((s) => s.attempt))];
  const outcome = (n) => task.attempts.find((a) => a.attempt === n);
  const input = task.input ?? {};
  main.innerHTML = `<h2>Task ${esc(task.external_id)} <span class="status-${task.status}" data-testid="task-status">${esc(task.status)}</span></h2>
    <div class="cards">${card("correct", task.correct == null ? "–" : task.correct ? "yes" : "no", "task-correct")}${card("prediction", task.prediction ?? "–", "task-prediction")}${card("reference answer", input.answer ?? "–")}${card("attempts", `${task.attempt}/${task.max_attempts}`)}${card("duration", ms(task.finished_at && task.started_at ? task.finished_at - task.started_at : null))}</div>
    ${task.error_class ? `<p class="bad msg" data-testid="task-error"><b>${esc(task.error_class)}</b>: ${esc(task.error_message ?? "")}</p>` : ""}
    <div class="k">question</div>${pre(input.question ?? "", "question")}
    ${typeof input.image === "string" && /^data:image\/(png|jpe?g|gif|webp);base64,/.test(input.image) ? `<img class="question-image" alt="the question's image" src="${esc(input.image)}">` : ""}
    <h2>Attempts</h2>${table(["Attempt", "Runner", "Outcome", "Error class", "Started", "Took", "Message"], task.attempts.map((a) => [
      a.attempt, esc(a.runner_id ?? ""), `<span class="${a.outcome === "succeeded" ? "ok" : a.outcome === "running" ? "" : "bad"}">${esc(a.outcome)}</span>`, esc(a.error_class ?? ""), when(a.started_at), ms(a.ended_at ? a.ended_at - a.started_at : null), `<span class="muted msg">${esc((a.error_message ?? "").slice(0, 200))}</span>`,
    ]), "attempts", [1, 2, 3, 4, 6])}
    ${attempts.length === 0 ? `<p class="muted">No steps recorded yet.</p>` : attempts.map((n) => {
      const a = outcome(n);
      const final = n === steps.final_attempt;
      const label = final ? "final attempt" : `failed attempt${a?.error_class ? ` (${esc(a.error_class)})` : ""}`;
      return `<section class="attempt${final ? "" : " abandoned"}" data-testid="attempt-${n}"><h2>Attempt ${n} · <span class="${final ? "" : "bad"}">${label}</span></h2>${steps.steps.filter((s) => s.attempt === n).map(stepView).join("")}</section>`;
    }).join("")}`;
  document.body.dataset.ready = "1";
}
