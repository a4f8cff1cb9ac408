// Which tool the orchestrator's reply chose. The reference profiles take the first call that
// names a known tool with a JSON object whose `model` is one of the tool's aliases (offered or
// not: the reference checks against its ALL_TOOLS table, not against what it sent), and write
// what it saw into all_tool_calls (eval_frames_oss.py:535-573, eval_hle_oss.py:672-710).
// Baton validates against what it offered and feeds an invalid reply back (correctionMessages).
import type { RunConfig, ToolName } from "../config";
import { TOOL_NAMES } from "../config";
import type { ChatRequest, ChatResult, ToolCall } from "../llm-client";
import { clip } from "./step";

export type ToolPick =
  | { ok: true; tool: ToolName; alias: string }
  | { ok: false; reason: string; message: string; name: string | null; alias: string | null };

/** Python's repr of the reply's tool calls, as the reference's "invalid tool calls" strings embed it (approximately). */
function callsRepr(calls: ToolCall[]): string {
  return `[${calls.map((c) => `ChatCompletionMessageToolCall(id='${c.id}', function=Function(arguments='${c.arguments}', name='${c.name}'), type='function')`).join(", ")}]`;
}

/**
 * The reference's choice: the pick (or why there is none) and the step's all_tool_calls entry.
 * HLE wraps a valid call in a list of one; FRAMES does not.
 */
export function referenceToolChoice({
  reply,
  config,
  benchmark,
}: {
  reply: Pick<ChatResult, "toolCalls" | "finishReason">;
  config: Pick<RunConfig, "toolModels" | "models">;
  benchmark: "frames" | "hle";
}): { pick: ToolPick; entry: unknown } {
  const calls = reply.toolCalls;
  if (calls.length === 0)
    return {
      pick: {
        ok: false,
        reason: reply.finishReason === "length" ? "orchestrator_length" : "no_tool_call",
        message: reply.finishReason === "length" ? "output cut at max_tokens before a tool call" : "reply has no tool call",
        name: null,
        alias: null,
      },
      entry: `342 invalid tool calls ${callsRepr(calls)}`,
    };
  const entry: unknown[] = [];
  const seen = new Set<string>();
  let firstProblem: ToolPick | null = null;
  const problem = (call: ToolCall, reason: string, message: string, alias: string | null = null): ToolPick => ({ ok: false, reason, message, name: call.name || null, alias });
  for (const call of calls) {
    let args: unknown = null;
    try {
      args = JSON.parse(call.arguments);
    } catch {
      args = null;
    }
    if (!(TOOL_NAMES as readonly string[]).includes(call.name)) {
      entry.push(`350 invalid tool calls ${callsRepr(calls)}`);
      firstProblem ??= problem(call, "unknown_tool", `unknown tool '${call.name}'`);
      continue;
    }
    if (!args || typeof args !== "object" || Array.isArray(args)) {
      entry.push(`351 invalid tool call args${benchmark === "hle" ? " (not json object)" : ""} ${callsRepr(calls)}`);
      firstProblem ??= problem(call, "arguments_not_json", `arguments are not a JSON object: ${clip(call.arguments, 200)}`);
      continue;
    }
    const alias = (args as Record<string, unknown>).model;
    const allowed = config.toolModels[call.name as ToolName] ?? [];
    if (typeof alias !== "string" || !allowed.includes(alias) || !config.models[alias]) {
      entry.push(`360 invalid tool calls ${callsRepr(calls)}`);
      firstProblem ??= problem(call, "model_not_allowed", `model '${String(alias)}' is not allowed for ${call.name} (allowed: ${allowed.join(", ")})`, typeof alias === "string" ? alias : null);
      continue;
    }
    if (seen.has(call.name)) continue;
    seen.add(call.name);
    const chosen = { name: call.name, arguments: args };
    entry.push(benchmark === "hle" ? [chosen] : chosen);
    return { pick: { ok: true, tool: call.name as ToolName, alias }, entry };
  }
  return { pick: firstProblem!, entry };
}

/**
 * Baton's choice: the first tool call that names an offered tool with JSON arguments and an
 * allowed model alias. Otherwise the reason the step is invalid.
 */
export function validateToolCall({
  reply,
  config,
  withheld,
}: {
  reply: Pick<ChatResult, "toolCalls" | "finishReason" | "content">;
  config: Pick<RunConfig, "toolModels" | "models">;
  withheld: string | null;
}): ToolPick {
  if (reply.toolCalls.length === 0)
    return {
      ok: false,
      reason: reply.finishReason === "length" ? "orchestrator_length" : "no_tool_call",
      message: reply.finishReason === "length" ? "output cut at max_tokens before a tool call" : "reply has no tool call",
      name: null,
      alias: null,
    };
  let firstProblem: ToolPick | null = null;
  for (const call of reply.toolCalls) {
    const problem = (reason: string, message: string, alias: string | null = null): ToolPick => ({
      ok: false,
      reason,
      message,
      name: call.name || null,
      alias,
    });
    let p: ToolPick;
    if (!(TOOL_NAMES as readonly string[]).includes(call.name)) p = problem("unknown_tool", `unknown tool '${call.name}'`);
    else if (call.name === withheld) p = problem("tool_withheld", `'${call.name}' was used twice in a row and is withheld this step`);
    else {
      let args: any;
      try {
        args = JSON.parse(call.arguments || "{}");
      } catch {
        firstProblem ??= problem("arguments_not_json", `arguments are not JSON: ${clip(call.arguments, 200)}`);
        continue;
      }
      const alias = args && typeof args === "object" ? args.model : undefined;
      const allowed = config.toolModels[call.name as ToolName] ?? [];
      if (typeof alias !== "string" || !allowed.includes(alias) || !config.models[alias])
        p = problem("model_not_allowed", `model '${String(alias)}' is not allowed for ${call.name} (allowed: ${allowed.join(", ")})`, typeof alias === "string" ? alias : null);
      else return { ok: true, tool: call.name as ToolName, alias };
    }
    firstProblem ??= p;
  }
  return firstProblem!;
}

/** The raw reply as plain text, tool calls written out, clipped: what the model said. */
export function replyAsText(reply: Pick<ChatResult, "toolCalls" | "content">, max = 1000): string {
  const calls = reply.toolCalls.map((c) => `tool call: ${c.name} ${c.arguments}`);
  const text = [reply.content?.trim() ?? "", ...calls].filter(Boolean).join("\n") || "(empty reply)";
  return clip(text, max)!;
}

/**
 * What is appended to the orchestrator's conversation after an invalid reply (baton): the reply,
 * as an assistant turn in plain text (a structured tool call would need a tool result and would
 * count as a step), then a user turn naming the problem and the valid choices.
 */
export function correctionMessages({
  reply,
  pick,
  offered,
  config,
}: {
  reply: Pick<ChatResult, "toolCalls" | "content">;
  pick: Extract<ToolPick, { ok: false }>;
  offered: string[];
  config: Pick<RunConfig, "toolModels" | "models">;
}): ChatRequest["messages"] {
  const tools = `[${offered.join(", ")}]`;
  const aliasesOf = (tool: string | null) =>
    `[${(config.toolModels[tool as ToolName] ?? []).filter((a) => config.models[a]).join(", ")}]`;
  const fix: Record<string, string> = {
    no_tool_call: `call one tool — choose one of ${tools}`,
    orchestrator_length: `call one tool directly, without a long preamble — choose one of ${tools}`,
    unknown_tool: `choose one of ${tools}`,
    tool_withheld: `choose one of ${tools}`,
    arguments_not_json: `give the arguments as one JSON object, e.g. {"model": "${(config.toolModels[pick.name as ToolName] ?? [])[0] ?? "..."}"}`,
    model_not_allowed: `choose the model from ${aliasesOf(pick.name)}`,
  };
  const how = fix[pick.reason] ?? `choose one of ${tools}`;
  return [
    { role: "assistant", content: replyAsText(reply) },
    { role: "user", content: `Your last reply was not a valid tool call: ${pick.message} — ${how}.` },
  ];
}
