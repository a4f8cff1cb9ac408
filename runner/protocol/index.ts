// One task of the ToolOrchestra protocol. Each round the orchestrator (streamed, with the
// tool definitions) picks one tool and the model alias to run it:
//   search            query LLM writes a query → retrieval → new documents join the context   (search.ts)
//   enhance_reasoning coder LLM writes ```python``` → sandbox → stdout joins the context        (enhance-reasoning.ts)
//   answer            answer LLM replies <answer>…</answer> → grading → the task ends           (answer.ts)
// What each role sees is built in context.ts; the strings and numbers are the profile's
// (data/profiles/, runner/protocol/profile.ts). Every step leaves one tool_calls row, one
// latency_components row per component (the orchestrator call that chose the tool is its
// own component row; the tool's duration is its own work), one llm_calls row per LLM HTTP
// attempt, all keyed by (task, attempt, step), and one transcript.
//
// Failure policy: infrastructure failures (retryable LlmCallError after its own retries)
// end the attempt as retryable so the queue requeues it with backoff; deterministic ones
// (context_length, tool_choice_unsupported, and under baton more than maxInvalidSteps invalid
// orchestrator replies in a row) fail the task with their class. An aborted signal (lease
// lost, run canceled, shutdown) ends the attempt as "aborted" and the runner decides.
//
// Profiles differ in a few behaviours that are code. Reference: an invalid reply just uses up
// a round (as in the reference; only maxRounds stops it), every tool is sent even after the
// same tool twice in a row (the reference computes that set and sends `tools`), FRAMES stops
// sending `search` once a document exists. Baton: an invalid reply is fed back until the next
// valid step, and a tool used twice in a row is withheld for one step.
//
// A step whose orchestrator call itself failed has no tool; its tool_calls row is named
// ORCHESTRATOR_STEP ("orchestrator", never a real tool name) with status "error".
import type { TaskProgress } from "../task-queue";
import type { RunConfig } from "../config";
import type { TaskRecorder } from "../recorder";
import type { ClaimedTask } from "../task-queue";
import { renderPrompt } from "../prompts";
import { runAnswer } from "./answer";
import { batonContext, referenceOrchestratorContext } from "./context";
import { runEnhanceReasoning } from "./enhance-reasoning";
import { fill } from "./py";
import { runSearch } from "./search";
import { clip, ORCHESTRATOR_STEP, TaskFailure, TaskRun, type LlmCall, type Step, type StepDone, type TaskOutcome } from "./step";
import { correctionMessages, referenceToolChoice, validateToolCall, type ToolPick } from "./tool-choice";

export { ORCHESTRATOR_STEP, type ProtocolDeps, type TaskOutcome } from "./step";
export { correctionMessages, referenceToolChoice, replyAsText, validateToolCall, type ToolPick } from "./tool-choice";

export async function runProtocol({
  task,
  config,
  deps,
  recorder,
  signal,
  onProgress,
}: {
  task: ClaimedTask;
  config: RunConfig;
  deps: import("./step").ProtocolDeps;
  recorder: TaskRecorder;
  signal: AbortSignal;
  onProgress?: (p: TaskProgress) => void;
}): Promise<TaskOutcome> {
  const t = new TaskRun(task, config, deps, recorder, signal, onProgress);
  try {
    for (let step = 0; step < config.maxRounds; step++) {
      t.checkAbort();
      const r = await runStep(t, step);
      if (r.done) return r.outcome;
    }
    // No answer within the round limit: an evaluated (wrong) result, as ToolOrchestra counts it.
    return t.finish({ correct: false, method: "empty" }, null, { stop_reason: "max_rounds" });
  } catch (err) {
    if (signal.aborted) return { kind: "aborted", reason: signal.reason };
    if (err instanceof TaskFailure)
      return {
        kind: "failed",
        errorClass: err.errorClass,
        message: err.message,
        retryable: err.retryable,
        result: {
          steps: t.used.length + t.invalid,
          invalid_steps: t.invalid,
          tools: t.toolCounts,
          // the reference writes status "error" for a tool that failed for good; an
          // infrastructure failure it would retry forever, so no status (a missing id)
          ...(err.retryable ? {} : { status: "error", error_type: err.errorClass }),
        },
      };
    throw err;
  } finally {
    await recorder.flush().catch(() => {});
  }
}

/** The tools sent this round, and (baton) the one withheld. */
export function offeredTools(t: Pick<TaskRun, "config" | "reference" | "docs" | "used">): { offered: RunConfig["tools"]; withheld: string | null } {
  const { config, reference: ref } = t;
  if (ref) {
    const hide = ref.context.hideSearchWhenDocuments && t.docs.length > 0;
    return { offered: hide ? config.tools.filter((x) => x.function.name !== "search") : config.tools, withheld: null };
  }
  // A tool used twice in a row is withheld for one step (Baton's anti-loop rule).
  const withheld = t.used.length > 1 && t.used.at(-1) === t.used.at(-2) ? t.used.at(-1)! : null;
  return { offered: config.tools.filter((x) => x.function.name !== withheld), withheld };
}

async function runStep(t: TaskRun, step: number): Promise<StepDone> {
  const { config, reference: ref } = t;
  const { offered, withheld } = offeredTools(t);
  const common = { config, tok: t.tok, question: t.question, docs: t.docs, code: t.code };
  const context = ref ? await referenceOrchestratorContext({ ref, ...common }) : await batonContext({ ...common, attempts: t.attempts });
  const user = ref
    ? fill(config.prompts.orchestratorUser, { question: t.question, context })
    : renderPrompt(config.prompts.orchestratorUser, { question: t.question, context });
  const orchModel = config.orchestrator.model;
  const llmLog: Step["llm"] = [];
  const o = await t.llm({ step, tool: ORCHESTRATOR_STEP, llm: llmLog }, "orchestrator", config.orchestrator, t.deps.pool(orchModel), {
    model: orchModel,
    messages: [
      { role: "system", content: config.prompts.orchestratorSystem },
      { role: "user", content: user },
      ...(config.orchestrator.history === "messages" ? t.history : []),
      ...t.corrections,
    ],
    max_tokens: config.orchestrator.maxTokens,
    temperature: config.orchestrator.temperature,
    ...(config.orchestrator.topP != null ? { top_p: config.orchestrator.topP } : {}),
    tools: offered,
    ...(ref ? {} : { tool_choice: "auto" }),
  });
  if (o.error) failOrchestratorStep(t, step, o, llmLog);
  const reply = o.result!;
  const benchmark = ref?.benchmark ?? (config.benchmark.toLowerCase().includes("hle") ? "hle" : "frames");
  const choice = referenceToolChoice({ reply, config, benchmark });
  const pick = ref ? choice.pick : validateToolCall({ reply, config, withheld });
  if (!pick.ok) {
    recordInvalidStep(t, { step, call: o, pick, entry: choice.entry, llm: llmLog });
    if (!ref) t.corrections.push(...correctionMessages({ reply, pick, offered: offered.map((x) => x.function.name), config }));
    return { done: false };
  }
  t.invalidInARow = 0;
  t.corrections.length = 0;
  const { tool, alias } = pick;
  t.used.push(tool);
  t.toolCounts[tool] = (t.toolCounts[tool] ?? 0) + 1;
  t.llmComponent({ step, tool }, "orchestrator", orchModel, o);
  const s: Step = {
    step,
    tool,
    alias,
    model: config.models[alias]!,
    startedAt: Date.now(),
    llm: llmLog,
    toolCallsEntry: choice.entry,
    // HLE keeps the orchestrator's message per turn (eval_hle_oss.py:668-671)
    ...(benchmark === "hle"
      ? { messageResponse: { content: reply.content, tool_calls: reply.toolCalls.map((c) => ({ tool_name: c.name, tool_arguments: parseOrNull(c.arguments) })) } }
      : {}),
  };
  if (tool === "search") return runSearch(t, s);
  if (tool === "enhance_reasoning") return runEnhanceReasoning(t, s);
  return runAnswer(t, s);
}

/** The orchestrator call itself failed: its row is ORCHESTRATOR_STEP, and the attempt ends by the error's class. */
function failOrchestratorStep(t: TaskRun, step: number, o: LlmCall, llm: Step["llm"]): never {
  const err = o.error!;
  const model = t.config.orchestrator.model;
  t.llmComponent({ step, tool: ORCHESTRATOR_STEP }, "orchestrator", model, o);
  t.recorder.toolCall({
    step,
    tool: ORCHESTRATOR_STEP,
    status: "error",
    errorClass: err.errorClass,
    errorMessage: clip(err.message),
    startedAt: o.startedAt,
    durationMs: o.ms,
    model,
  });
  t.transcript({ step, tool: null, toolCallsEntry: null, llm }, {});
  throw new TaskFailure(err.errorClass, `orchestrator: ${err.message}`, err.retryable);
}

/**
 * An orchestrator reply that chose no valid tool: its own row (with the raw reply: a malformed
 * reply is evidence, not noise) and transcript; past maxInvalidSteps in a row the task fails.
 */
function recordInvalidStep(
  t: TaskRun,
  { step, call, pick, entry, llm }: { step: number; call: LlmCall; pick: Extract<ToolPick, { ok: false }>; entry: unknown; llm: Step["llm"] },
) {
  const reply = call.result!;
  t.invalid++;
  t.invalidInARow++;
  const name = pick.name ?? "(none)";
  t.llmComponent({ step, tool: name }, "orchestrator", t.config.orchestrator.model, call);
  t.recorder.toolCall({
    step,
    tool: name,
    modelAlias: pick.alias ?? null,
    status: "invalid",
    errorClass: pick.reason,
    errorMessage: pick.message,
    startedAt: call.startedAt,
    durationMs: call.ms,
    detail: {
      content: clip(reply.content),
      reasoning: clip(reply.reasoning, 2000),
      toolCalls: reply.toolCalls.map((c) => ({ name: c.name, arguments: clip(c.arguments, 2000) })),
      finishReason: reply.finishReason,
    },
  });
  t.transcript({ step, tool: null, toolCallsEntry: entry, llm }, {});
  const max = t.config.maxInvalidSteps;
  if (max != null && t.invalidInARow > max)
    throw new TaskFailure(
      reply.finishReason === "length" ? "orchestrator_length" : "orchestrator_unparsable",
      `${t.invalidInARow} invalid orchestrator replies in a row (last: ${pick.reason}: ${pick.message})`,
      false,
    );
}

function parseOrNull(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
