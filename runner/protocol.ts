// One task of the ToolOrchestra protocol. Each round the orchestrator (streamed, with the
// tool definitions) picks one tool and the model alias to run it:
//   search            query LLM writes <query>…</query> → retrieval → new documents join the context
//   enhance_reasoning coder LLM writes ```python``` → sandbox → stdout joins the context
//   answer            answer LLM replies <answer>…</answer> → grading → the task ends
// Every step leaves one tool_calls row and one latency_components row per component, and
// every LLM HTTP attempt one llm_calls row, all keyed by (task, attempt, step).
//
// Failure policy: infrastructure failures (retryable LlmCallError after its own retries)
// end the attempt as retryable so the queue requeues it with backoff; deterministic ones
// (context_length, tool_choice_unsupported, unparsable orchestrator output after
// more than maxInvalidSteps invalid replies in a row) fail the task with their class. An
// aborted signal (lease lost, run canceled, shutdown) ends the attempt as "aborted" and the
// runner decides what to write.
//
// An invalid orchestrator reply is fed back before the retry (ToolOrchestra-style): the reply
// as text and what was wrong with it join the conversation until the next valid step, so a
// seeded or greedy model is asked something new instead of repeating itself.
//
// A step whose orchestrator call itself failed has no tool; its tool_calls row is named
// ORCHESTRATOR_STEP ("orchestrator", never a real tool name) with status "error", so the
// failed call's latency and class stay visible in the per-tool tables as their own row.
import type { ClaimedTask, TaskProgress, TaskResult } from "./task-queue";
import type { RunConfig, ToolName } from "./config";
import { TOOL_NAMES } from "./config";
import { gradeAnswer, type Grade } from "./grading";
import { callChat, LlmCallError, type ChatRequest, type ChatResult } from "./llm-client";
import { extractPython, extractTag, renderPrompt } from "./prompts";
import type { Component, TaskRecorder } from "./recorder";
import type { ReplicaPool } from "./replicas";
import { retrieve, type RetrievalBackend, type RetrievalResult } from "./retrieval-client";
import { runPython, type RunPythonInput, type RunPythonResult } from "./sandbox";
import type { Tokenizer } from "./tokenizer";

export type ProtocolDeps = {
  // replica pool serving a model (the endpoint registry, or inline endpoints)
  pool(model: string): ReplicaPool;
  retrievalBackends(names: string[]): RetrievalBackend[];
  judgePool(): ReplicaPool;
  tokenizer: Tokenizer;
  chat?: typeof callChat;
  retrieve?: typeof retrieve;
  runPython?: (input: RunPythonInput) => Promise<RunPythonResult>;
};

export type TaskOutcome =
  | { kind: "succeeded"; result: TaskResult }
  | { kind: "failed"; errorClass: string; message: string; retryable: boolean; result?: TaskResult }
  | { kind: "aborted"; reason: unknown };

/** Raised inside the protocol to end the attempt with a class; caught in runProtocol. */
class TaskFailure extends Error {
  constructor(
    readonly errorClass: string,
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

type Doc = { id: string | null; contents: string };
type CodePiece = { code: string; output: string };
type AttemptNote = { model: string; answer: string };

type StepCtx = { step: number; tool: string };

/** tool_calls.tool of a step whose orchestrator call failed before it chose a tool. */
export const ORCHESTRATOR_STEP = "orchestrator";

const TRUNC = 4000;
const clip = (s: string | null | undefined, n = TRUNC) => (s == null ? null : s.length > n ? `${s.slice(0, n)}…` : s);

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
  deps: ProtocolDeps;
  recorder: TaskRecorder;
  signal: AbortSignal;
  onProgress?: (p: TaskProgress) => void;
}): Promise<TaskOutcome> {
  const chat = deps.chat ?? callChat;
  const doRetrieve = deps.retrieve ?? retrieve;
  const doRunPython = deps.runPython ?? runPython;
  const tok = deps.tokenizer;
  const question = String(task.input.question ?? "");
  const gold = task.input.answer == null ? "" : String(task.input.answer);

  const docs: Doc[] = [];
  const seenDocs = new Set<string>();
  const code: CodePiece[] = [];
  const attempts: AttemptNote[] = [];
  const used: string[] = [];
  const history: ChatRequest["messages"] = [];
  let invalid = 0;
  let invalidInARow = 0;
  // The invalid replies since the last valid step, each followed by what was wrong with it.
  const corrections: ChatRequest["messages"] = [];
  const toolCounts: Record<string, number> = {};

  const progress = (step: number, tool: string | null, component: Component | null, endpoint: string | null = null) =>
    onProgress?.({ step, tool, component, endpoint, since: Date.now() });

  const checkAbort = () => {
    if (signal.aborted) throw signal.reason ?? new Error("aborted");
  };

  // One LLM call; its HTTP attempts become llm_calls rows as they happen.
  async function llm(
    s: StepCtx,
    component: Component,
    role: { temperature: number; maxTokens: number; topP?: number; policy: object },
    pool: ReplicaPool,
    model: string,
    messages: ChatRequest["messages"],
    extra: Partial<ChatRequest> = {},
  ): Promise<{ result: ChatResult | null; error: LlmCallError | null; ms: number; startedAt: number }> {
    const startedAt = Date.now();
    const t0 = performance.now();
    progress(s.step, s.tool, component, pool.urls()[0] ?? null);
    try {
      const result = await chat({
        pool,
        role: component,
        request: {
          model,
          messages,
          max_tokens: role.maxTokens,
          temperature: role.temperature,
          ...(role.topP != null ? { top_p: role.topP } : {}),
          stream: true,
          ...extra,
        },
        signal,
        policy: role.policy,
        onAttempt: (a) => recorder.llmAttempt(a, s.step, s.tool),
      });
      return { result, error: null, ms: performance.now() - t0, startedAt };
    } catch (err) {
      checkAbort();
      if (err instanceof LlmCallError) {
        if (err.errorClass === "aborted") checkAbort();
        return { result: null, error: err, ms: performance.now() - t0, startedAt };
      }
      throw err;
    }
  }

  function component(
    s: StepCtx,
    name: Component,
    fields: { ms: number; startedAt: number; model?: string | null; retries?: number; backend?: string | null; endpoint?: string | null; status?: string },
  ) {
    recorder.component({
      step: s.step,
      tool: s.tool,
      component: name,
      model: fields.model ?? null,
      ms: fields.ms,
      retries: fields.retries ?? 0,
      backend: fields.backend ?? null,
      endpoint: fields.endpoint ?? null,
      status: fields.status ?? "ok",
      startedAt: fields.startedAt,
    });
  }

  function llmComponent(s: StepCtx, name: Component, model: string, r: Awaited<ReturnType<typeof llm>>) {
    const attemptsMade = r.result?.attempts.length ?? r.error?.attempts.length ?? 1;
    const last = r.result?.attempts.at(-1) ?? r.error?.attempts.at(-1);
    component(s, name, {
      ms: r.ms,
      startedAt: r.startedAt,
      model,
      retries: Math.max(0, attemptsMade - 1),
      backend: "vllm",
      endpoint: r.result?.endpoint ?? last?.endpoint ?? null,
      status: r.error ? r.error.errorClass : r.result?.finishReason === "length" ? "length" : "ok",
    });
  }

  // An LLM failure that is not the model's fault ends the attempt: requeue or fail by class.
  function raiseLlm(err: LlmCallError, what: string): never {
    throw new TaskFailure(err.errorClass, `${what}: ${err.message}`, err.retryable);
  }

  async function buildContext(limit: { codeTokens: number; contextTokens: number }): Promise<string> {
    const docStr = docs.map((d, i) => `Doc ${i + 1}: ${d.contents.slice(0, config.budgets.documentChars)}\n\n`).join("");
    // Earlier code is fenced as ```py: "```python" marks the prompt that asks for new code.
    const codeStr = code.map((c) => `\`\`\`py\n${c.code}\n\`\`\`\n\n\`\`\`output\n${c.output}\n\`\`\`\n\n`).join("");
    let attemptStr = attempts.map((a, i) => `Attempt${i + 1} answer by ${a.model}: ${a.answer}\n`).join("");
    if (attemptStr) attemptStr = (await tok.tail(attemptStr, config.budgets.attemptTokens)).text;
    let codeAttempt = codeStr + attemptStr;
    if (codeAttempt) codeAttempt = (await tok.tail(codeAttempt, limit.codeTokens)).text;
    const questionTokens = await tok.count(question);
    const room = Math.max(256, limit.contextTokens - questionTokens);
    const body = docStr + (codeAttempt ? `\npython code and execution outputs:\n${codeAttempt}` : "");
    if (!body) return "";
    const cut = (await tok.tail(body, Math.min(room, config.budgets.documentTokens + limit.codeTokens))).text;
    return docs.length > 0 ? `Documents:\n${cut}` : cut;
  }

  const expertContext = () =>
    buildContext({ codeTokens: config.budgets.codeTokens, contextTokens: config.budgets.contextTokens });

  function finish(grade: Grade, prediction: string | null, extra: Record<string, unknown>): TaskOutcome {
    return {
      kind: "succeeded",
      result: {
        prediction,
        correct: grade.correct,
        grade: grade.method,
        judgeReply: grade.judgeReply ?? null,
        judgeError: grade.judgeError ?? null,
        steps: used.length + invalid,
        invalidSteps: invalid,
        tools: toolCounts,
        documents: docs.length,
        ...extra,
      },
    };
  }

  try {
    for (let step = 0; step < config.maxRounds; step++) {
      checkAbort();
      // A tool used twice in a row is withheld for one step (ToolOrchestra's anti-loop rule).
      const withheld = used.length > 1 && used.at(-1) === used.at(-2) ? used.at(-1)! : null;
      const offered = config.tools.filter((t) => t.function.name !== withheld);
      const context = await buildContext({ codeTokens: config.budgets.codeTokens, contextTokens: config.budgets.contextTokens });
      const orchModel = config.orchestrator.model;
      const orch = await llm(
        { step, tool: "orchestrator" },
        "orchestrator",
        config.orchestrator,
        deps.pool(orchModel),
        orchModel,
        [
          { role: "system", content: config.prompts.orchestratorSystem },
          { role: "user", content: renderPrompt(config.prompts.orchestratorUser, { question, context }) },
          ...(config.orchestrator.history === "messages" ? history : []),
          ...corrections,
        ],
        { tools: offered, tool_choice: "auto" },
      );
      if (orch.error) {
        llmComponent({ step, tool: ORCHESTRATOR_STEP }, "orchestrator", orchModel, orch);
        recorder.toolCall({
          step,
          tool: ORCHESTRATOR_STEP,
          status: "error",
          errorClass: orch.error.errorClass,
          errorMessage: clip(orch.error.message),
          startedAt: orch.startedAt,
          durationMs: orch.ms,
          model: orchModel,
        });
        raiseLlm(orch.error, "orchestrator");
      }
      const reply = orch.result!;
      const pick = validateToolCall({ reply, config, withheld });
      if (!pick.ok) {
        invalid++;
        invalidInARow++;
        const name = pick.name ?? "(none)";
        llmComponent({ step, tool: name }, "orchestrator", orchModel, orch);
        recorder.toolCall({
          step,
          tool: name,
          modelAlias: pick.alias ?? null,
          status: "invalid",
          errorClass: pick.reason,
          errorMessage: pick.message,
          startedAt: orch.startedAt,
          durationMs: orch.ms,
          // the raw reply is kept: a malformed model reply is evidence, not noise
          detail: {
            content: clip(reply.content),
            reasoning: clip(reply.reasoning, 2000),
            toolCalls: reply.toolCalls.map((c) => ({ name: c.name, arguments: clip(c.arguments, 2000) })),
            finishReason: reply.finishReason,
          },
        });
        if (invalidInARow > config.maxInvalidSteps)
          throw new TaskFailure(
            reply.finishReason === "length" ? "orchestrator_length" : "orchestrator_unparsable",
            `${invalidInARow} invalid orchestrator replies in a row (last: ${pick.reason}: ${pick.message})`,
            false,
          );
        corrections.push(...correctionMessages({ reply, pick, offered: offered.map((t) => t.function.name), config }));
        continue;
      }
      invalidInARow = 0;
      corrections.length = 0;

      const { tool, alias } = pick;
      const model = config.models[alias];
      const s: StepCtx = { step, tool };
      used.push(tool);
      toolCounts[tool] = (toolCounts[tool] ?? 0) + 1;
      llmComponent(s, "orchestrator", orchModel, orch);
      const stepStart = orch.startedAt;
      const stepT0 = performance.now() - orch.ms;
      const callId = `call_${step}`;
      const remember = (summary: string) =>
        history.push(
          { role: "assistant", content: null, tool_calls: [{ id: callId, type: "function", function: { name: tool, arguments: JSON.stringify({ model: alias }) } }] },
          { role: "tool", tool_call_id: callId, content: summary },
        );

      if (tool === "search") {
        const ctx = await expertContext();
        const q = await llm(s, "query_llm", config.queryLlm, deps.pool(model), model, [
          { role: "user", content: renderPrompt(config.prompts.query, { question, context: ctx }) },
        ]);
        llmComponent(s, "query_llm", model, q);
        if (q.error?.retryable) raiseLlm(q.error, "query LLM");
        // ToolOrchestra's fallback: no usable query → search with the question itself.
        const written = q.result ? extractTag(q.result.content, "query") : null;
        const fellBack = !written || written.length < 3;
        const query = (fellBack ? question : written).slice(0, config.retrieval.queryMaxChars);
        progress(step, tool, "retrieval", null);
        const r: RetrievalResult = await doRetrieve({
          backends: deps.retrievalBackends(config.retrieval.backends),
          query,
          topk: config.retrieval.topk,
          signal,
          policy: config.retrieval.policy,
        });
        checkAbort();
        component(s, "retrieval", {
          ms: r.ms,
          startedAt: Date.now() - Math.round(r.ms),
          retries: r.retries,
          backend: r.backend,
          endpoint: r.endpoint,
          status: r.status,
        });
        let added = 0;
        for (const d of r.documents) {
          const key = d.id ?? d.contents;
          if (seenDocs.has(key)) continue;
          seenDocs.add(key);
          docs.push({ id: d.id, contents: d.contents });
          added++;
        }
        recorder.toolCall({
          step,
          tool,
          modelAlias: alias,
          model,
          status: r.status === "retrieval_unavailable" ? "retrieval_unavailable" : "ok",
          errorClass: q.error ? q.error.errorClass : null,
          startedAt: stepStart,
          durationMs: performance.now() - stepT0,
          detail: {
            query: clip(query, 1000),
            queryFallback: fellBack,
            retrieval: r.status,
            backend: r.backend,
            documents: r.documents.length,
            newDocuments: added,
          },
        });
        remember(`${added} new documents (${docs.length} in context)`);
      } else if (tool === "enhance_reasoning") {
        const ctx = await expertContext();
        const c = await llm(s, "expert_llm", config.coder, deps.pool(model), model, [
          { role: "user", content: renderPrompt(config.prompts.code, { question, context: ctx }) },
        ]);
        llmComponent(s, "expert_llm", model, c);
        if (c.error) {
          recorder.toolCall({
            step, tool, modelAlias: alias, model, status: "error", errorClass: c.error.errorClass,
            errorMessage: clip(c.error.message), startedAt: stepStart, durationMs: performance.now() - stepT0,
          });
          raiseLlm(c.error, "coder LLM");
        }
        const program = extractPython(c.result!.content);
        let run: RunPythonResult | null = null;
        let execError: string | null = null;
        if (program) {
          progress(step, tool, "code_exec", null);
          const execStart = Date.now();
          try {
            run = await doRunPython({ code: program, timeoutMs: config.sandbox.timeoutMs, memoryMb: config.sandbox.memoryMb, signal });
          } catch (err) {
            checkAbort();
            execError = (err as Error).message;
          }
          checkAbort();
          component(s, "code_exec", {
            ms: run?.ms ?? Date.now() - execStart,
            startedAt: execStart,
            backend: run?.sandbox ?? null,
            status: execError ? "error" : run!.timedOut ? "timeout" : run!.exitCode === 0 ? "ok" : "exit_nonzero",
          });
          code.push({ code: program, output: (run?.stdout ?? "").slice(0, config.sandbox.outputChars) });
        }
        recorder.toolCall({
          step,
          tool,
          modelAlias: alias,
          model,
          status: !program ? "no_code" : execError ? "error" : run!.timedOut ? "timeout" : "ok",
          errorMessage: execError ?? run?.error ?? null,
          startedAt: stepStart,
          durationMs: performance.now() - stepT0,
          detail: program
            ? { code: clip(program, 2000), exitCode: run?.exitCode ?? null, stdout: clip(run?.stdout, 1000), stderr: clip(run?.stderr, 1000) }
            : { reply: clip(c.result!.content, 2000) },
        });
        remember(program ? `code ran (exit ${run?.exitCode ?? "?"}); output in context` : "no code written");
      } else {
        const ctx = await expertContext();
        const a = await llm(s, "expert_llm", config.answerer, deps.pool(model), model, [
          { role: "user", content: renderPrompt(config.prompts.answer, { question, context: ctx }) },
        ]);
        llmComponent(s, "expert_llm", model, a);
        if (a.error) {
          recorder.toolCall({
            step, tool, modelAlias: alias, model, status: "error", errorClass: a.error.errorClass,
            errorMessage: clip(a.error.message), startedAt: stepStart, durationMs: performance.now() - stepT0,
          });
          raiseLlm(a.error, "answer LLM");
        }
        const replyText = a.result!.content;
        const prediction = extractTag(replyText, "answer");
        if (prediction == null || prediction === "") {
          // Recorded with the raw reply; the orchestrator sees it as an attempt and goes on.
          attempts.push({ model, answer: replyText.slice(-2000) });
          recorder.toolCall({
            step, tool, modelAlias: alias, model, status: "no_answer", startedAt: stepStart,
            durationMs: performance.now() - stepT0, detail: { reply: clip(replyText, 2000) },
          });
          remember("the answer model gave no <answer>; its reply is in the attempts");
          continue;
        }
        let judgeMs: number | null = null;
        let judgeResult: Awaited<ReturnType<typeof llm>> | null = null;
        const grade = await gradeAnswer({
          question,
          prediction,
          gold,
          judgeTemplate: config.prompts.judge,
          judge: async (prompt) => {
            judgeResult = await llm(s, "judge", config.judge, deps.judgePool(), config.judge.model, [
              { role: "user", content: prompt },
            ]);
            judgeMs = judgeResult.ms;
            if (judgeResult.error) throw judgeResult.error;
            return judgeResult.result!.content;
          },
        });
        // No judge row when the exact match decided: a 0 ms "judge" would drag its percentiles.
        if (judgeResult) llmComponent(s, "judge", config.judge.model, judgeResult);
        recorder.toolCall({
          step,
          tool,
          modelAlias: alias,
          model,
          status: grade.method === "judge_error" ? "judge_error" : "ok",
          errorMessage: grade.judgeError ?? null,
          startedAt: stepStart,
          durationMs: performance.now() - stepT0,
          detail: { prediction: clip(prediction, 1000), correct: grade.correct, grade: grade.method, judgeMs },
        });
        return finish(grade, prediction, { answerModel: model, stopReason: "answered" });
      }
    }
    // No answer within the round limit: an evaluated (wrong) result, as ToolOrchestra counts it.
    return finish({ correct: false, method: "empty" }, null, { stopReason: "max_rounds" });
  } catch (err) {
    if (signal.aborted) return { kind: "aborted", reason: signal.reason };
    if (err instanceof TaskFailure)
      return {
        kind: "failed",
        errorClass: err.errorClass,
        message: err.message,
        retryable: err.retryable,
        result: { steps: used.length + invalid, invalidSteps: invalid, tools: toolCounts },
      };
    throw err;
  } finally {
    await recorder.flush().catch(() => {});
  }
}

/** The raw reply as plain text, tool calls written out, clipped: what the model said. */
export function replyAsText(reply: Pick<ChatResult, "toolCalls" | "content">, max = 1000): string {
  const calls = reply.toolCalls.map((c) => `tool call: ${c.name} ${c.arguments}`);
  const text = [reply.content?.trim() ?? "", ...calls].filter(Boolean).join("\n") || "(empty reply)";
  return clip(text, max)!;
}

/**
 * What is appended to the orchestrator's conversation after an invalid reply: the reply, as an
 * assistant turn in plain text (a structured tool call would need a tool result and would
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

export type ToolPick =
  | { ok: true; tool: ToolName; alias: string }
  | { ok: false; reason: string; message: string; name: string | null; alias: string | null };

/**
 * The orchestrator's choice, validated: the first tool call that names an offered tool with
 * JSON arguments and an allowed model alias. Otherwise the reason the step is invalid.
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
