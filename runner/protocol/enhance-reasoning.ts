// enhance_reasoning: the coder LLM writes Python from the context, the sandbox runs it, and
// the code with its stdout joins the context. The sandbox is how the code runs, not what is
// sent; under the reference profiles only what reaches the model follows the reference:
// the prompt (config.prompts.code), `split('```python')[-1].split('```')[0]` as the code, and
// the piece kept only when stdout is not blank.
import { extractPython, renderPrompt } from "../prompts";
import type { RunPythonResult } from "../sandbox";
import { batonContext, referenceExpertContext } from "./context";
import { between, fill, pyStrip } from "./py";
import { clip, type Step, type StepDone, type TaskRun } from "./step";

export async function runEnhanceReasoning(t: TaskRun, s: Step): Promise<StepDone> {
  const { config } = t;
  const ref = t.reference;
  const contextStr = ref
    ? await referenceExpertContext({ ref, config, tok: t.tok, tool: "enhance_reasoning", question: t.question, docs: t.docs, code: t.code })
    : await batonContext({ config, tok: t.tok, question: t.question, docs: t.docs, code: t.code, attempts: t.attempts });
  const prompt = ref
    ? fill(config.prompts.code, { context: pyStrip(contextStr), question: t.question })
    : renderPrompt(config.prompts.code, { question: t.question, context: contextStr });
  const c = await t.llm(s, "expert_llm", config.coder, t.deps.pool(s.model), {
    model: s.model,
    messages: [{ role: "user", content: prompt }],
    max_tokens: config.coder.maxTokens,
    temperature: config.coder.temperature,
    ...(config.coder.topP != null ? { top_p: config.coder.topP } : {}),
    ...(ref ? { tools: ref.experts.toolsField as unknown as unknown[] } : {}),
  });
  t.llmComponent(s, "expert_llm", s.model, c);
  const args = t.toolArguments(s, contextStr, false);
  if (c.error) t.failStep(s, c.error, "coder LLM", { responses: [{ ...args, _llm_ms: c.ms }] });

  const content = c.result!.content;
  const program = ref ? between(content, "```python", "```") || null : extractPython(content);
  let run: RunPythonResult | null = null;
  let execError: string | null = null;
  let execMs = 0;
  if (program) {
    t.progress(s.step, s.tool, "code_exec", null);
    const execStart = Date.now();
    try {
      run = await t.runPython({ code: program, timeoutMs: config.sandbox.timeoutMs, memoryMb: config.sandbox.memoryMb, signal: t.signal });
    } catch (err) {
      t.checkAbort();
      execError = (err as Error).message;
    }
    t.checkAbort();
    execMs = run?.ms ?? Date.now() - execStart;
    t.component(s, "code_exec", {
      ms: execMs,
      startedAt: execStart,
      backend: run?.sandbox ?? null,
      status: execError ? "error" : run!.timedOut ? "timeout" : run!.exitCode === 0 ? "ok" : "exit_nonzero",
    });
    // The reference loses stdout when the run times out (subprocess.run raises).
    const stdout = ref && run?.timedOut ? "" : (run?.stdout ?? "");
    const output = stdout.slice(0, config.sandbox.outputChars);
    if (!ref || pyStrip(stdout).length > 0) t.code.push({ code: program, output });
  }
  t.recorder.toolCall({
    step: s.step,
    tool: s.tool,
    modelAlias: s.alias,
    model: s.model,
    status: !program ? "no_code" : execError ? "error" : run!.timedOut ? "timeout" : "ok",
    errorMessage: execError ?? run?.error ?? null,
    startedAt: s.startedAt,
    durationMs: t.ownMs(s.step),
    detail: program
      ? { code: clip(program, 2000), exitCode: run?.exitCode ?? null, stdout: clip(run?.stdout, 1000), stderr: clip(run?.stderr, 1000) }
      : { reply: clip(content, 2000) },
  });
  const execResult = ref && run?.timedOut ? "" : (run?.stdout ?? "");
  t.transcript(s, {
    responses: [{ ...args, _llm_ms: c.ms, generated_code: program ?? "", exec_result: program ? execResult : "", _exec_ms: execMs }],
    code: program ? { code: program, stdout: run?.stdout ?? "", stderr: run?.stderr ?? "", exit_code: run?.exitCode ?? null } : null,
  });
  t.remember(s, program ? `code ran (exit ${run?.exitCode ?? "?"}); output in context` : "no code written");
  return { done: false };
}
