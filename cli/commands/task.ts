// `baton task ID`: what failed, at a glance — a task's attempts and, per attempt, the last
// model call it made (role, model, endpoint, outcome or error class, finish_reason, tokens,
// time). The question the hard-case hunt always asks: did the orchestrator run out of
// tokens, did an expert endpoint fail, or did the runner crash?
import type { AttemptDiagnosis, LastCall, TaskDiagnosis } from "../../db/experiments";
import { DB, defineCommand, JSON_OUTPUT, SERVER } from "../define-command";
import { openReader, usageError } from "./_api";

function clock(ms: number | null): string {
  return ms == null ? "-" : new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function formatLastCall(c: LastCall): string[] {
  const tokens = `${c.prompt_tokens ?? "?"} in + ${c.completion_tokens ?? "?"} out`;
  const where = c.step != null ? `step ${c.step}${c.tool ? ` (${c.tool})` : ""} ` : "";
  const status = c.outcome === "ok" ? `ok${c.http_status ? ` ${c.http_status}` : ""}` : `${c.outcome}${c.http_status ? ` (HTTP ${c.http_status})` : ""}`;
  const lines = [
    `    last call: ${where}${c.role} ${c.model} at ${c.endpoint} (try ${c.http_attempt})`,
    `               ${status}  finish_reason ${c.finish_reason ?? "-"}  tokens ${tokens}  ${Math.round(c.total_ms)} ms  at ${clock(c.started_at)}`,
  ];
  if (c.error_message) lines.push(`               ${c.error_message.slice(0, 300)}`);
  return lines;
}

function formatAttempt(a: AttemptDiagnosis): string[] {
  const span = a.ended_at != null ? `${clock(a.started_at)} → ${clock(a.ended_at)}` : `${clock(a.started_at)} → (running)`;
  const head = `  attempt ${a.attempt}  ${a.outcome}${a.error_class ? ` ${a.error_class}` : ""}  runner ${a.runner_id ?? "-"}  ${span}  ${a.llm_calls} model calls`;
  const lines = [head];
  if (a.error_message) lines.push(`    error: ${a.error_message.slice(0, 300)}`);
  lines.push(...(a.last_call ? formatLastCall(a.last_call) : ["    last call: none recorded"]));
  return lines;
}

export function formatTask(t: TaskDiagnosis): string {
  const rep = t.repeat ? `, repeat ${t.repeat}` : "";
  const parent = t.parent_task_id != null ? `, re-runs task ${t.parent_task_id}` : "";
  const outcome = t.status === "succeeded" ? `succeeded (${t.correct ? "correct" : "wrong"})` : t.status;
  return [
    `task ${t.id} (run ${t.run_id}, id ${JSON.stringify(t.external_id)}${rep}${parent}): ${outcome}${t.error_class ? ` — ${t.error_class}` : ""}, attempt ${t.attempt} of ${t.max_attempts}`,
    ...(t.error_message ? [`  error: ${t.error_message.slice(0, 300)}`] : []),
    ...(t.attempts.length ? t.attempts.flatMap(formatAttempt) : ["  no attempt yet (queued)"]),
  ].join("\n");
}

export const { describe, run } = defineCommand({
  name: "task",
  describe: "show a task's attempts and the last model call of each (why it failed or hangs)",
  usage: "TASK_ID",
  intro: "TASK_ID is the numeric task id (baton report lists failed tasks with theirs).",
  options: { server: SERVER, db: DB, json: { ...JSON_OUTPUT, help: "print the task and its attempts as JSON" } },
  async run({ values, positionals }) {
    if (positionals.length !== 1 || !/^\d+$/.test(positionals[0])) throw usageError("expected one numeric TASK_ID");
    const api = await openReader({ server: values.server, db: values.db });
    try {
      const t = await api.call<TaskDiagnosis>("GET", `/v1/tasks/${positionals[0]}/attempts`);
      console.log(values.json ? JSON.stringify(t, null, 2) : formatTask(t));
      return 0;
    } finally {
      api.close();
    }
  },
});
