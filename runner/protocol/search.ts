// search: the query LLM writes a query from the context, retrieval runs it, and the new
// documents join the task's list. What FRAMES / HLE send to the query LLM and the retriever
// under the reference profiles is all here (prompt: config.prompts.query; every number: the
// profile file).
import type { RetrievalResult } from "../retrieval-client";
import { extractTag, renderPrompt } from "../prompts";
import { batonContext, referenceExpertContext } from "./context";
import { between, fill, pyLen, pySlice, pyStrip } from "./py";
import type { ReferenceSettings } from "./profile";
import { clip, type Step, type StepDone, type TaskRun } from "./step";

export async function runSearch(t: TaskRun, s: Step): Promise<StepDone> {
  const { config } = t;
  const ref = t.reference;
  const contextStr = ref
    ? await referenceExpertContext({ ref, config, tok: t.tok, tool: "search", question: t.question, docs: t.docs, code: t.code })
    : await batonContext({ config, tok: t.tok, question: t.question, docs: t.docs, code: t.code, attempts: t.attempts });
  const prompt = ref
    ? fill(config.prompts.query, { context: pyStrip(contextStr), question: t.question })
    : renderPrompt(config.prompts.query, { question: t.question, context: contextStr });
  const q = await t.llm(s, "query_llm", config.queryLlm, t.deps.pool(s.model), {
    model: s.model,
    messages: [{ role: "user", content: prompt }],
    max_tokens: config.queryLlm.maxTokens,
    temperature: config.queryLlm.temperature,
    ...(config.queryLlm.topP != null ? { top_p: config.queryLlm.topP } : {}),
    ...(ref ? { tools: ref.experts.toolsField as unknown as unknown[] } : {}),
  });
  t.llmComponent(s, "query_llm", s.model, q);
  const args = t.toolArguments(s, contextStr, true);
  const queryLlmMs = q.ms;
  // An infrastructure failure ends the attempt (requeued), after the step's own row.
  if (q.error?.retryable) t.failStep(s, q.error, "query LLM", { responses: [{ ...args, _query_llm_ms: queryLlmMs }] });

  const { query, fellBack, skip } = chooseQuery({ reply: q.result?.content ?? null, question: t.question, ref });
  const sent = ref ? pySlice(query, config.retrieval.queryMaxChars) : query.slice(0, config.retrieval.queryMaxChars);

  let r: RetrievalResult | null = null;
  if (!skip) {
    t.progress(s.step, s.tool, "retrieval", null);
    r = await t.retrieve({
      backends: t.deps.retrievalBackends(config.retrieval.backends),
      query: sent,
      topk: config.retrieval.topk,
      eid: t.taskId as string | number | null,
      signal: t.signal,
      policy: config.retrieval.policy,
    });
    t.checkAbort();
    t.component(s, "retrieval", {
      ms: r.ms,
      startedAt: Date.now() - Math.round(r.ms),
      retries: r.retries,
      backend: r.backend,
      endpoint: r.endpoint,
      status: r.status,
    });
  }
  const found = r?.documents ?? [];
  const added = ref ? addReferenceDocuments(t, found.map((d) => d.contents)) : addBatonDocuments(t, found);

  t.recorder.toolCall({
    step: s.step,
    tool: s.tool,
    modelAlias: s.alias,
    model: s.model,
    status: r?.status === "retrieval_unavailable" ? "retrieval_unavailable" : "ok",
    errorClass: q.error ? q.error.errorClass : null,
    startedAt: s.startedAt,
    durationMs: t.ownMs(s.step),
    detail: {
      query: clip(sent, 1000),
      queryFallback: fellBack,
      retrieval: r?.status ?? "skipped",
      backend: r?.backend ?? null,
      documents: found.length,
      newDocuments: added,
    },
  });
  const response = {
    ...args,
    _query_llm_ms: queryLlmMs,
    _retrieval_ms: r?.ms ?? 0,
    _retrieval_retries: r?.retries ?? 0,
    ...(ref?.benchmark === "hle" ? hleSearchFields(r, query) : {}),
    search_results_data: found.map((d) => d.contents),
  };
  t.transcript(s, {
    responses: [response],
    retrieval: r
      ? {
          request: { queries: [sent], topk: config.retrieval.topk, return_scores: true, eid: t.taskId },
          documents: found,
          status: r.status,
          backend: r.backend,
        }
      : null,
  });
  t.remember(s, `${added} new documents (${t.docs.length} in context)`);
  return { done: false };
}

/** HLE's extra per-search fields (eval_hle_oss.py:336-414): which backend answered and how. */
function hleSearchFields(r: RetrievalResult | null, query: string): Record<string, unknown> {
  if (r == null) return { _search_backend: null, _search_local_hits: 0, _search_tavily_hits: 0, query };
  if (r.status === "retrieval_unavailable") {
    const last = r.attempts.at(-1);
    return { _search_backend: "retrieval_unavailable", _retrieval_error: last?.errorMessage ?? "unknown", _search_local_hits: 0, _search_tavily_hits: 0, query };
  }
  const tavily = r.documents.filter((d) => d.source === "tavily" || (d.score != null && d.score < 0)).length;
  const local = r.documents.filter((d) => d.source === "local" && !(d.score != null && d.score < 0)).length;
  return { _search_backend: tavily > 0 ? "tavily_fallback" : "local_only", _search_local_hits: local, _search_tavily_hits: tavily, query };
}

/**
 * The query to search with. Reference: no reply (FRAMES: or an empty one) → the question;
 * else `split('<query>')[-1].split('</query>')[0]`, the whole reply when there are no tags;
 * shorter than minQueryChars (FRAMES 10, HLE 5) → no retrieval at all. Baton: the last tagged
 * query, the question when there is none or it is under 3 characters.
 */
export function chooseQuery({
  reply,
  question,
  ref,
}: {
  reply: string | null;
  question: string;
  ref: Pick<ReferenceSettings, "search"> | null;
}): { query: string; fellBack: boolean; skip: boolean } {
  if (ref) {
    const fellBack = reply == null || (ref.search.questionWhenReplyEmpty && reply === "");
    const query = fellBack ? question : between(reply, "<query>", "</query>");
    return { query, fellBack, skip: pyLen(query) < ref.search.minQueryChars };
  }
  const written = reply == null ? null : extractTag(reply, "query");
  const fellBack = written == null || written.length < 3;
  return { query: fellBack ? question : written, fellBack, skip: false };
}

/** The reference: each search's results in reverse rank, skipping contents already listed. */
export function addReferenceDocuments(t: Pick<TaskRun, "docs" | "seenDocs">, contents: string[]): number {
  let added = 0;
  for (const c of [...contents].reverse()) {
    if (t.seenDocs.has(c)) continue;
    t.seenDocs.add(c);
    t.docs.push({ id: null, contents: c });
    added++;
  }
  return added;
}

/** Baton: rank order, a document known by its id (else its contents) only once. */
function addBatonDocuments(t: TaskRun, found: { id: string | null; contents: string }[]): number {
  let added = 0;
  for (const d of found) {
    const key = d.id ?? d.contents;
    if (t.seenDocs.has(key)) continue;
    t.seenDocs.add(key);
    t.docs.push({ id: d.id, contents: d.contents });
    added++;
  }
  return added;
}
