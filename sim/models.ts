// Served model names the simulators use by default, after the ToolOrchestra evaluation's
// open-weight setup. Import these instead of repeating the strings.

export const ORCHESTRATOR_MODEL = "nvidia/Nemotron-Orchestrator-8B";

export const EXPERT_MODELS = [
  "openai/gpt-oss-20b",
  "Qwen/Qwen3-32B",
  "Qwen/Qwen2.5-Coder-32B-Instruct",
  "Qwen/Qwen2.5-Math-72B-Instruct",
  "Qwen/Qwen2.5-Math-7B-Instruct",
  "meta-llama/Llama-3.3-70B-Instruct",
  // the reference profile's experts (data/profiles/toolorchestra-*.json), so a run on the
  // default profile finds every model it maps to
  "Qwen/Qwen2.5-Coder-14B-Instruct",
  "Qwen/Qwen3-32B-FP8",
] as const;

/** Backend names in a ToolOrchestra model config: the primary retriever and its fallback. */
export const RETRIEVAL_BACKENDS = ["wiki_retrieval", "retrieval"] as const;
export type RetrievalBackend = (typeof RETRIEVAL_BACKENDS)[number];
