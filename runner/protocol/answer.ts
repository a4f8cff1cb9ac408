// answer: the answer LLM replies from the context, its answer is graded, and the task ends
// (reference profiles: always, whatever the reply; baton: only when the reply has an
// <answer>, otherwise the reply joins the attempts and the orchestrator goes on). The judge
// is whatever config.judge names: under the reference profiles gpt-5 over the OpenAI API with
// temperature 1 and max_completion_tokens 16384, its key read from the environment variable
// config.judge.apiKeyEnv at call time and never recorded.
import type { ChatRequest } from "../llm-client";
import { LlmCallError } from "../llm-client";
import { gradeAnswer, gradeReference, type Grade } from "../grading";
import { extractTag, renderPrompt } from "../prompts";
import { batonContext, referenceExpertContext } from "./context";
import { between, fill, pyStrip } from "./py";
import { clip, type LlmCall, type Step, type StepDone, type TaskRun } from "./step";

export async function runAnswer(t: TaskRun, s: Step): Promise<StepDone> {
  const { config } = t;
  const ref = t.reference;
  const contextStr = ref
    ? await referenceExpertContext({ ref, config, tok: t.tok, tool: "answer", question: t.question, docs: t.docs, code: t.code })
    : await batonContext({ config, tok: t.tok, question: t.question, docs: t.docs, code: t.code, attempts: t.attempts });
  const prompt = ref
    ? fill(config.prompts.answer, { context: pyStrip(contextStr), question: t.question })
    : renderPrompt(config.prompts.answer, { question: t.question, context: contextStr });
  const a = await t.llm(s, "expert_llm", config.answerer, t.deps.pool(s.model), {
    model: s.model,
    messages: [{ role: "user", content: prompt }],
    max_tokens: config.answerer.maxTokens,
    temperature: config.answerer.temperature,
    ...(config.answerer.topP != null ? { top_p: config.answerer.topP } : {}),
    ...(ref ? { tools: ref.experts.toolsField as unknown as unknown[], extra_body: ref.experts.answerExtraBody } : {}),
  });
  t.llmComponent(s, "expert_llm", s.model, a);
  const args = { ...t.toolArguments(s, contextStr, true), messages: prompt };
  if (a.error) t.failStep(s, a.error, "answer LLM", { responses: [{ ...args, _expert_ms: a.ms }] });

  const replyText = a.result!.content;
  const prediction = ref ? pyStrip(between(replyText, "<answer>", "</answer>")) : extractTag(replyText, "answer");
  if (!ref && (prediction == null || prediction === "")) {
    // Recorded with the raw reply; the orchestrator sees it as an attempt and goes on.
    t.attempts.push({ model: s.model, answer: replyText.slice(-2000) });
    t.recorder.toolCall({
      step: s.step, tool: s.tool, modelAlias: s.alias, model: s.model, status: "no_answer", startedAt: s.startedAt,
      durationMs: t.ownMs(s.step), detail: { reply: clip(replyText, 2000) },
    });
    t.transcript(s, { responses: [{ ...args, _expert_ms: a.ms, response: replyText, pred: "", correctness: false }] });
    t.remember(s, "the answer model gave no <answer>; its reply is in the attempts");
    return { done: false };
  }

  let judgeCall: LlmCall | null = null;
  const judge = async (judgePrompt: string) => {
    judgeCall = await callJudge(t, s, judgePrompt);
    if (judgeCall.error) throw judgeCall.error;
    return judgeCall.result!.content;
  };
  const grade: Grade = ref
    ? await gradeReference({ question: t.question, prediction: prediction!, gold: t.gold, maxWords: ref.answer.maxWords, judgeTemplate: config.prompts.judge, judge })
    : await gradeAnswer({ question: t.question, prediction, gold: t.gold, judgeTemplate: config.prompts.judge, judge });
  const judged = judgeCall as LlmCall | null;
  // No judge row when the exact match decided: a 0 ms "judge" would drag its percentiles.
  if (judged && judged.startedAt > 0) t.llmComponent(s, "judge", config.judge.model, judged);
  t.recorder.toolCall({
    step: s.step,
    tool: s.tool,
    modelAlias: s.alias,
    model: s.model,
    status: grade.method === "judge_error" ? "judge_error" : "ok",
    errorMessage: grade.judgeError ?? null,
    startedAt: s.startedAt,
    durationMs: t.ownMs(s.step),
    detail: { prediction: clip(prediction, 1000), correct: grade.correct, grade: grade.method, judgeMs: judged?.ms ?? null },
  });
  t.transcript(s, {
    responses: [
      {
        ...args,
        _expert_ms: a.ms,
        ...(judged ? { _judge_ms: judged.ms } : {}),
        response: replyText,
        pred: prediction,
        correctness: grade.correct,
      },
    ],
    grade: { prediction, correct: grade.correct, method: grade.method, judge_reply: grade.judgeReply ?? null, judge_error: grade.judgeError ?? null },
  });
  return { done: true, outcome: t.finish(grade, prediction, { answer_model: s.model, stop_reason: "answered" }) };
}

/** One judge call. A key named by judge.apiKeyEnv that is not set fails the call before anything is sent. */
async function callJudge(t: TaskRun, s: Step, prompt: string): Promise<LlmCall> {
  const j = t.config.judge;
  let apiKey: string | null = null;
  if (j.apiKeyEnv) {
    apiKey = (t.deps.env ?? process.env)[j.apiKeyEnv] ?? null;
    if (!apiKey) {
      const error = new LlmCallError("auth", `the judge's API key variable ${j.apiKeyEnv} is not set`, null, []);
      return { result: null, error, ms: 0, startedAt: 0 };
    }
  }
  const ref = t.reference;
  const request: ChatRequest = {
    model: j.model,
    messages: [{ role: "user", content: prompt }],
    temperature: j.temperature,
    ...(j.maxCompletionTokens != null ? { extra_body: { max_completion_tokens: j.maxCompletionTokens } } : { max_tokens: j.maxTokens }),
    ...(j.topP != null ? { top_p: j.topP } : {}),
    // the reference's OpenAI client sends tools=None as null and does not stream
    ...(ref ? { tools: ref.experts.toolsField as unknown as unknown[], stream: false } : {}),
  };
  return t.llm(s, "judge", j, t.deps.judgePool(), request, { apiKey });
}
