// Starts a whole simulated deployment in-process: orchestrator replicas, expert replicas per
// model and retrieval replicas, each on its own loopback port, plus the ToolOrchestra-style
// model config that points at them.
import { type CorpusInput, indexFor } from "./corpus";
import type { FaultSettings, RetrievalFaultKind } from "./faults";
import { EXPERT_MODELS, ORCHESTRATOR_MODEL, type RetrievalBackend } from "./models";
import { type RetrievalSim, startRetrievalSim } from "./retrieval";
import type { VllmLatency } from "./settings";
import { startVllmSim, type VllmSim } from "./vllm";
import type { FaultKind } from "./faults";

export type SimClusterSpec = {
  host?: string;
  /** First port; replicas take consecutive ports. 0 (default) = a free port for each. */
  basePort?: number;
  seed?: number;
  orchestrator?: { model?: string; replicas?: number };
  /** Expert models and replicas per model; default every EXPERT_MODELS entry, 1 replica each. */
  experts?: { models?: string[]; replicas?: number };
  /** Replicas of `retrieval` (fallback) and `wiki_retrieval` (primary); default 1 each. */
  retrieval?: { replicas?: number; wikiReplicas?: number; latency?: { ms?: number; jitter?: number }; shape?: "list" | "wrapped"; corpus?: CorpusInput; faults?: FaultSettings<RetrievalFaultKind> };
  latency?: VllmLatency;
  /** Applied to every vLLM replica (each gets its own copy of the queue). */
  faults?: FaultSettings<FaultKind>;
  maxModelLen?: number;
  answers?: Record<string, string>;
  accuracy?: number;
  invalidToolCallRate?: number;
};

export type ToolOrchestraEndpoint = { ip_addr: string; port: number };
export type ToolOrchestraConfig = Record<string, ToolOrchestraEndpoint[]>;

export type SimReplica =
  | { name: string; kind: "orchestrator" | "expert"; model: string; sim: VllmSim }
  | { name: string; kind: RetrievalBackend; model: RetrievalBackend; sim: RetrievalSim };

export type SimCluster = {
  config: ToolOrchestraConfig;
  replicas: SimReplica[];
  /** Replicas serving one model or retrieval backend. */
  byModel(model: string): SimReplica[];
  stop(): Promise<void>;
};

export async function startSimCluster(spec: SimClusterSpec = {}): Promise<SimCluster> {
  const host = spec.host ?? "127.0.0.1";
  const seed = spec.seed ?? 0;
  let nextPort = spec.basePort ?? 0;
  const takePort = () => (nextPort > 0 ? nextPort++ : 0);
  const replicas: SimReplica[] = [];
  const config: ToolOrchestraConfig = {};
  const add = (r: SimReplica) => {
    replicas.push(r);
    (config[r.model] ??= []).push({ ip_addr: host, port: r.sim.port });
  };
  const common = {
    host,
    maxModelLen: spec.maxModelLen,
    latency: spec.latency,
    answers: spec.answers,
    accuracy: spec.accuracy,
    invalidToolCallRate: spec.invalidToolCallRate,
  };
  const faults = () => (spec.faults ? { ...spec.faults, queue: spec.faults.queue ? [...spec.faults.queue] : undefined } : undefined);

  try {
    const orchModel = spec.orchestrator?.model ?? ORCHESTRATOR_MODEL;
    for (let i = 0; i < (spec.orchestrator?.replicas ?? 1); i++) {
      const sim = await startVllmSim({ ...common, port: takePort(), model: orchModel, mode: "orchestrator", seed, faults: faults() });
      add({ name: `${orchModel}#${i}`, kind: "orchestrator", model: orchModel, sim });
    }
    for (const model of spec.experts?.models ?? EXPERT_MODELS) {
      for (let i = 0; i < (spec.experts?.replicas ?? 1); i++) {
        const sim = await startVllmSim({ ...common, port: takePort(), model, mode: "expert", seed, faults: faults() });
        add({ name: `${model}#${i}`, kind: "expert", model, sim });
      }
    }
    const r = spec.retrieval ?? {};
    indexFor(r.corpus); // build the shared index once, before the replicas start
    const backends: [RetrievalBackend, number][] = [
      ["wiki_retrieval", r.wikiReplicas ?? 1],
      ["retrieval", r.replicas ?? 1],
    ];
    for (const [backend, n] of backends) {
      for (let i = 0; i < n; i++) {
        const sim = await startRetrievalSim({
          host,
          port: takePort(),
          seed,
          corpus: r.corpus,
          latency: r.latency,
          shape: r.shape,
          faults: r.faults ? { ...r.faults, queue: r.faults.queue ? [...r.faults.queue] : undefined } : undefined,
        });
        add({ name: `${backend}#${i}`, kind: backend, model: backend, sim });
      }
    }
  } catch (err) {
    await Promise.all(replicas.map((x) => x.sim.stop()));
    throw err;
  }

  return {
    config,
    replicas,
    byModel: (model) => replicas.filter((x) => x.model === model),
    stop: async () => {
      await Promise.all(replicas.map((x) => x.sim.stop()));
    },
  };
}
