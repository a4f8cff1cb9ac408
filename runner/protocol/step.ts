// What every tool step shares: the task's state (documents, code, tools used), the calls that
// leave latency rows (one llm_calls row per HTTP attempt, one latency_components row per
// component) and the step's transcript for H2's trajectory store. A tool module gets a
// TaskRun and a Step and returns whether the task goes on.
import type { ClaimedTask, TaskProgress, TaskResult } from "../task-queue";
import type { RunConfig, ResolvedRole } from "../config";
import { callChat, LlmCallError, type ChatRequest, type ChatResult } from "../llm-client";
import type { Component, TaskRecorder } from "../recorder";
import { SentJson, type StepTranscript } from "../../db/rows";
import type { ReplicaPool } from "../replicas";
import { retrieve, type RetrievalBackend } from "../retrieval-client";
import { runPython, type RunPythonInput, type RunPythonResult } from "../sandbox";
import type { Tokenizer } from "../tokenizer";

export type ProtocolDeps = {
  // replica pool serving a model (the endpoint registry, or inline endpoints)
  pool(model: string): ReplicaPool;
  retrievalBackends(names: string[]): RetrievalBackend[];
  judgePool(): ReplicaPool;
  tokenizer: Tokenizer;
  chat?: typeof callChat;
  retrieve?: typeof retrieve;
  runPython?: (input: RunPythonInput) => Promise<RunPythonResult>;
  // the environment the judge's API key is read from (default process.env)
  env?: Record<string, string | undefined>;
};

export type TaskOutcome =
  | { kind: "succeeded"; result: TaskResult }
  | { kind: "failed"; errorClass: string; message: string; retryable: boolean; result?: TaskResult }
  | { kind: "aborted"; reason: unknown };

/** Raised inside the protocol to end the attempt with a class; caught in runProtocol. */
export class TaskFailure extends Error {
  constructor(
    readonly errorClass: string,
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

/** tool_calls.tool of a step whose orchestrator call failed before it chose a tool. */
export const ORCHESTRATOR_STEP = "orchestrator";

export type Doc = { id: string | null; contents: string };
export type CodePiece = { code: string; output: string };

export type LlmCall = { result: ChatResult | null; error: LlmCallError | null; ms: number; startedAt: number };
type TranscriptLlm = StepTranscript["llm"][number];

/** One round: the orchestrator's choice and what its tool did. */
export type Step = {
  step: number;
  tool: string;
  alias: string;
  model: string;
  startedAt: number;
  llm: TranscriptLlm[];
  // the reference's all_tool_calls element for this step
  toolCallsEntry: unknown;
  messageResponse?: unknown;
};

export type StepDone = { done: false } | { done: true; outcome: TaskOutcome };

const TRUNC = 4000;
export const clip = (s: string | null | undefined, n = TRUNC) => (s == null ? null : s.length > n ? `${s.slice(0, n)}…` : s);

export class TaskRun {
  readonly chat: typeof callChat;
  readonly retrieve: typeof retrieve;
  readonly runPython: (input: RunPythonInput) => Promise<RunPythonResult>;
  readonly tok: Tokenizer;
  readonly question: string;
  readonly gold: string;
  // the id the reference passes as `id` (and as the retrieval `eid`), and its line index `eid`
  readonly taskId: unknown;
  readonly lineIndex: number | null;
  readonly docs: Doc[] = [];
  readonly seenDocs = new Set<string>();
  readonly code: CodePiece[] = [];
  readonly attempts: { model: string; answer: string }[] = [];
  readonly used: string[] = [];
  readonly history: ChatRequest["messages"] = [];
  // the invalid replies since the last valid step, each followed by what was wrong with it (baton)
  readonly corrections: ChatRequest["messages"] = [];
  readonly toolCounts: Record<string, number> = {};
  invalid = 0;
  invalidInARow = 0;
  // per step, the ms of its components other than the orchestrator call
  private readonly own = new Map<number, number>();

  constructor(
    readonly task: ClaimedTask,
    readonly config: RunConfig,
    readonly deps: ProtocolDeps,
    readonly recorder: TaskRecorder,
    readonly signal: AbortSignal,
    private readonly onProgress?: (p: TaskProgress) => void,
  ) {
    this.chat = deps.chat ?? callChat;
    this.retrieve = deps.retrieve ?? retrieve;
    this.runPython = deps.runPython ?? runPython;
    this.tok = deps.tokenizer;
    this.question = String(task.input.question ?? "");
    this.gold = task.input.answer == null ? "" : String(task.input.answer);
    this.taskId = task.input.id ?? task.externalId;
    this.lineIndex = typeof task.input.eid === "number" ? task.input.eid : null;
  }

  get reference() {
    return this.config.reference;
  }

  progress(step: number, tool: string | null, component: Component | null, endpoint: string | null = null) {
    this.onProgress?.({ step, tool, component, endpoint, since: Date.now() });
  }

  checkAbort() {
    if (this.signal.aborted) throw this.signal.reason ?? new Error("aborted");
  }

  /** One LLM call; its HTTP attempts become llm_calls rows as they happen, and it joins the transcript. */
  async llm(
    s: { step: number; tool: string; llm: TranscriptLlm[] },
    component: Component,
    role: ResolvedRole,
    pool: ReplicaPool,
    request: ChatRequest,
    opts: { apiKey?: string | null } = {},
  ): Promise<LlmCall> {
    const startedAt = Date.now();
    const t0 = performance.now();
    this.progress(s.step, s.tool, component, pool.urls()[0] ?? null);
    const body: ChatRequest = { stream: true, ...request };
    const entry: TranscriptLlm = { component, request: body, reply: null, error: null, endpoint: null, ms: 0 };
    s.llm.push(entry);
    try {
      const result = await this.chat({
        pool,
        role: component,
        request: body,
        signal: this.signal,
        policy: role.policy,
        apiKey: opts.apiKey ?? null,
        onAttempt: (a) => this.recorder.llmAttempt(a, s.step, s.tool),
        // what went out (the last attempt's, after any max_tokens shrink), already serialized
        onSend: (json) => (entry.request = new SentJson(json)),
      });
      entry.reply = { content: result.content, reasoning: result.reasoning, tool_calls: result.toolCalls, finish_reason: result.finishReason };
      entry.endpoint = result.endpoint;
      entry.ms = performance.now() - t0;
      return { result, error: null, ms: entry.ms, startedAt };
    } catch (err) {
      this.checkAbort();
      if (err instanceof LlmCallError) {
        if (err.errorClass === "aborted") this.checkAbort();
        entry.error = `${err.errorClass}: ${err.message}`;
        entry.ms = performance.now() - t0;
        return { result: null, error: err, ms: entry.ms, startedAt };
      }
      throw err;
    }
  }

  /**
   * A tool's latency as the reference defines it: its own components (query LLM + retrieval,
   * expert + judge, coder + execution), not the orchestrator call that chose it (its own row).
   */
  ownMs(step: number): number {
    return this.own.get(step) ?? 0;
  }

  component(
    s: { step: number; tool: string },
    name: Component,
    fields: { ms: number; startedAt: number; model?: string | null; retries?: number; backend?: string | null; endpoint?: string | null; status?: string },
  ) {
    if (name !== "orchestrator") this.own.set(s.step, this.ownMs(s.step) + fields.ms);
    this.recorder.component({
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

  llmComponent(s: { step: number; tool: string }, name: Component, model: string, r: LlmCall) {
    const attemptsMade = r.result?.attempts.length ?? r.error?.attempts.length ?? 1;
    const last = r.result?.attempts.at(-1) ?? r.error?.attempts.at(-1);
    this.component(s, name, {
      ms: r.ms,
      startedAt: r.startedAt,
      model,
      retries: Math.max(0, attemptsMade - 1),
      backend: "vllm",
      endpoint: r.result?.endpoint ?? last?.endpoint ?? null,
      status: r.error ? r.error.errorClass : r.result?.finishReason === "length" ? "length" : "ok",
    });
  }

  /** A failed expert call ends the step with an error row, then the attempt by the error's class. */
  failStep(s: Step, err: LlmCallError, what: string, transcript: Partial<StepTranscript> = {}): never {
    this.recorder.toolCall({
      step: s.step,
      tool: s.tool,
      modelAlias: s.alias,
      model: s.model,
      status: "error",
      errorClass: err.errorClass,
      errorMessage: clip(err.message),
      startedAt: s.startedAt,
      durationMs: this.ownMs(s.step),
    });
    this.transcript(s, { responses: null, ...transcript });
    throw new TaskFailure(err.errorClass, `${what}: ${err.message}`, err.retryable);
  }

  transcript(s: Pick<Step, "step" | "llm"> & { tool: string | null; toolCallsEntry: unknown; messageResponse?: unknown }, rest: Partial<StepTranscript>) {
    const t: StepTranscript = {
      step: s.step,
      tool: s.tool,
      tool_calls: s.toolCallsEntry,
      responses: null,
      ...(s.messageResponse !== undefined ? { message_response: s.messageResponse } : {}),
      llm: s.llm,
      ...rest,
    };
    (this.recorder as { transcript?: (t: StepTranscript) => void }).transcript?.(t);
  }

  /** orchestrator.history = "messages": the step joins the conversation as a tool call and a short result. */
  remember(s: Step, summary: string) {
    const callId = `call_${s.step}`;
    this.history.push(
      { role: "assistant", content: null, tool_calls: [{ id: callId, type: "function", function: { name: s.tool, arguments: JSON.stringify({ model: s.alias }) } }] },
      { role: "tool", tool_call_id: callId, content: summary },
    );
  }

  /** The reference's call_tool argument dict, minus vllm_model_configs and cur_output_dir. */
  toolArguments(s: Step, contextStr: string, withAnswer: boolean): Record<string, unknown> {
    return {
      tool: s.tool,
      model: s.model,
      context_str: contextStr,
      problem: this.question,
      ...(withAnswer ? { answer: this.gold } : {}),
      id: this.taskId,
      eid: this.lineIndex,
      ...(this.reference?.benchmark === "hle" ? { step: s.step } : {}),
    };
  }

  finish(grade: { correct: boolean | null; method: string; judgeReply?: string | null; judgeError?: string | null }, prediction: string | null, extra: Record<string, unknown>): TaskOutcome {
    return {
      kind: "succeeded",
      result: {
        prediction,
        correct: grade.correct,
        grade: grade.method,
        judge_reply: grade.judgeReply ?? null,
        judge_error: grade.judgeError ?? null,
        steps: this.used.length + this.invalid,
        invalid_steps: this.invalid,
        tools: this.toolCounts,
        documents: this.docs.length,
        status: "done",
        ...extra,
      },
    };
  }
}
