import { readFileSync, writeFileSync } from "node:fs";
import { startSimCluster, type SimClusterSpec } from "../../sim/cluster";
import { startRetrievalSim } from "../../sim/retrieval";
import { startVllmSim } from "../../sim/vllm";
import { FAULT_KINDS, type FaultKind, isFaultKind } from "../../sim/faults";
import { EXPERT_MODELS, ORCHESTRATOR_MODEL } from "../../sim/models";
import { formatHelp, parseOptions, type OptionSpecs } from "../define-command";
import { CliError, readJsonFile, runCli, usageError } from "./_api";

export const describe = "start simulated vLLM and retrieval replicas (a whole cluster, or one service: sim vllm | sim retrieval)";

const ONE_OPTIONS = {
  port: { type: "string", value: "P", help: "listen port (0 = a free one; printed on stderr); required" },
  host: { type: "string", value: "H", help: "listen address (default 127.0.0.1)" },
  seed: { type: "string", value: "S", help: "seed (default 0)" },
  model: { type: "string", value: "NAME", help: "vllm: the served model name (required)" },
  mode: { type: "string", value: "M", help: "vllm: orchestrator (emits tool calls) or expert (answers; default)" },
  answers: { type: "string", value: "FILE.jsonl", help: 'vllm: rows with "question" and "answer": the expert\'s gold answers' },
  accuracy: { type: "string", value: "P", help: "vllm: probability an expert answer is right (default 1)" },
  "latency-ms": { type: "string", value: "MS", help: "vllm: time to first token; retrieval: time per /retrieve (default 0)" },
  "max-model-len": { type: "string", value: "N", help: "vllm: context window in tokens (default 32768)" },
} as const satisfies OptionSpecs;

const ONE_USAGE = formatHelp({
  name: "sim",
  usage: ["vllm --model NAME --port P", "retrieval --port P"],
  intro: `One simulated service, in the foreground until SIGINT/SIGTERM: what a deployment file's
command runs in place of \`vllm serve\` or a retrieval server (see 'baton launch').`,
  options: ONE_OPTIONS,
});

const CLUSTER_OPTIONS = {
  orchestrator: { type: "string", value: "N", help: "orchestrator replicas (default 1)" },
  "orchestrator-model": { type: "string", value: "NAME", help: `served name (default ${ORCHESTRATOR_MODEL})` },
  expert: { type: "string", value: "N", help: "replicas per expert model (default 1)" },
  "expert-models": { type: "string", value: "A,B,...", help: `expert served names (default ${EXPERT_MODELS.join(",")})` },
  "wiki-retrieval": { type: "string", value: "N", help: 'primary retriever replicas, key "wiki_retrieval" (default 1)' },
  retrieval: { type: "string", value: "N", help: 'fallback retriever replicas, key "retrieval" (default 1)' },
  host: { type: "string", value: "H", help: "listen address (default 127.0.0.1)" },
  "base-port": { type: "string", value: "P", help: "first port; replicas take consecutive ports (default: free ports)" },
  seed: { type: "string", value: "S", help: "seed for every replica (default 0)" },
  answers: { type: "string", value: "FILE.jsonl", help: 'rows with "question" and "answer": the experts\' gold answers' },
  accuracy: { type: "string", value: "P", help: "probability an expert answer is right (default 1)" },
  "latency-ms": { type: "string", value: "MS", help: "time to first token (default 0)" },
  "per-token-ms": { type: "string", value: "MS", help: "time per output token (default 0)" },
  jitter: { type: "string", value: "J", help: "latency jitter 0..1 (default 0)" },
  "max-num-seqs": { type: "string", value: "N", help: "concurrent sequences per replica before queueing (default 256)" },
  "max-model-len": { type: "string", value: "N", help: "context window in tokens (default 32768)" },
  "invalid-tool-call-rate": { type: "string", value: "P", help: "orchestrator emits an invalid tool call at this rate" },
  fault: { type: "string", multiple: true, value: "KIND=P", help: `fault rate for every vLLM replica (kinds: ${FAULT_KINDS.join(", ")})` },
  "retrieval-latency-ms": { type: "string", value: "MS", help: "retrieval latency (default 0)" },
  shape: { type: "string", value: "list|wrapped", help: "/retrieve response shape (default list)" },
  spec: { type: "string", value: "FILE.json", help: "a JSON SimClusterSpec (sim/cluster.ts); flags override it" },
  "write-config": { type: "string", value: "FILE", help: "also write the model config to FILE" },
} as const satisfies OptionSpecs;

const USAGE = formatHelp({
  name: "sim",
  usage: ["", "vllm|retrieval --port P ..."],
  intro: `Starts simulated model servers and retrievers, prints a ToolOrchestra-style model config
pointing at them, and runs until SIGINT/SIGTERM. One service alone: 'baton sim vllm --help'.`,
  options: CLUSTER_OPTIONS,
});


function num(name: string, value: string | undefined, opts: { int?: boolean; min?: number; max?: number } = {}): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || (opts.int && !Number.isInteger(n)) || (opts.min !== undefined && n < opts.min) || (opts.max !== undefined && n > opts.max)) {
    const range = [opts.min !== undefined ? `>= ${opts.min}` : "", opts.max !== undefined ? `<= ${opts.max}` : ""].filter(Boolean).join(" and ");
    throw usageError(`--${name}: expected ${opts.int ? "an integer" : "a number"}${range ? ` ${range}` : ""}, got '${value}'`);
  }
  return n;
}

export function readAnswers(path: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw usageError(`--answers: cannot read ${path}: ${(err as Error).message}`);
  }
  const answers: Record<string, string> = {};
  for (const [i, line] of text.split("\n").entries()) {
    if (!line.trim()) continue;
    let row: { question?: unknown; answer?: unknown };
    try {
      row = JSON.parse(line);
    } catch (err) {
      throw usageError(`${path}:${i + 1}: not JSON (${(err as Error).message})`);
    }
    if (typeof row?.question !== "string" || row.answer === undefined || row.answer === null) {
      throw usageError(`${path}:${i + 1}: expected fields "question" (string) and "answer"`);
    }
    answers[row.question] = String(row.answer);
  }
  return answers;
}

export function specFromArgs(argv: string[]): { spec: SimClusterSpec; writeConfig?: string; help: boolean } {
  const { values } = parseOptions(argv, CLUSTER_OPTIONS, false);
  let spec: SimClusterSpec = {};
  if (values.spec) {
    spec = readJsonFile(values.spec, "--spec") as SimClusterSpec;
    if (!spec || typeof spec !== "object" || Array.isArray(spec)) throw usageError(`--spec: ${values.spec} must hold a JSON object`);
  }
  const set = <T>(v: T | undefined, apply: (v: T) => void) => v !== undefined && apply(v);

  set(num("orchestrator", values.orchestrator, { int: true, min: 0 }), (n) => (spec.orchestrator = { ...spec.orchestrator, replicas: n }));
  set(values["orchestrator-model"], (m) => (spec.orchestrator = { ...spec.orchestrator, model: m }));
  set(num("expert", values.expert, { int: true, min: 0 }), (n) => (spec.experts = { ...spec.experts, replicas: n }));
  set(values["expert-models"], (m) => {
    const models = m.split(",").map((s) => s.trim()).filter(Boolean);
    if (models.length === 0) throw usageError("--expert-models: expected a comma-separated list of model names");
    spec.experts = { ...spec.experts, models };
  });
  set(num("wiki-retrieval", values["wiki-retrieval"], { int: true, min: 0 }), (n) => (spec.retrieval = { ...spec.retrieval, wikiReplicas: n }));
  set(num("retrieval", values.retrieval, { int: true, min: 0 }), (n) => (spec.retrieval = { ...spec.retrieval, replicas: n }));
  set(num("retrieval-latency-ms", values["retrieval-latency-ms"], { min: 0 }), (ms) => (spec.retrieval = { ...spec.retrieval, latency: { ...spec.retrieval?.latency, ms } }));
  set(values.shape, (shape) => {
    if (shape !== "list" && shape !== "wrapped") throw usageError(`--shape: expected list or wrapped, got '${shape}'`);
    spec.retrieval = { ...spec.retrieval, shape };
  });
  set(values.host, (h) => (spec.host = h));
  set(num("base-port", values["base-port"], { int: true, min: 0, max: 65535 }), (p) => (spec.basePort = p));
  set(num("seed", values.seed, { int: true }), (s) => (spec.seed = s));
  set(values.answers, (path) => (spec.answers = readAnswers(path)));
  set(num("accuracy", values.accuracy, { min: 0, max: 1 }), (a) => (spec.accuracy = a));
  set(num("max-model-len", values["max-model-len"], { int: true, min: 16 }), (n) => (spec.maxModelLen = n));
  set(num("invalid-tool-call-rate", values["invalid-tool-call-rate"], { min: 0, max: 1 }), (p) => (spec.invalidToolCallRate = p));
  set(num("latency-ms", values["latency-ms"], { min: 0 }), (ms) => (spec.latency = { ...spec.latency, ttftMs: ms }));
  set(num("per-token-ms", values["per-token-ms"], { min: 0 }), (ms) => (spec.latency = { ...spec.latency, perTokenMs: ms }));
  set(num("jitter", values.jitter, { min: 0, max: 1 }), (j) => (spec.latency = { ...spec.latency, jitter: j }));
  set(num("max-num-seqs", values["max-num-seqs"], { int: true, min: 1 }), (n) => (spec.latency = { ...spec.latency, maxNumSeqs: n }));
  for (const f of values.fault ?? []) {
    const [kind, p] = f.split("=");
    if (!kind || !isFaultKind(FAULT_KINDS, kind)) throw usageError(`--fault ${f}: unknown kind '${kind}' (expected one of ${FAULT_KINDS.join(", ")})`);
    const rate = num("fault", p, { min: 0, max: 1 });
    if (rate === undefined) throw usageError(`--fault ${f}: expected KIND=PROBABILITY`);
    spec.faults = { ...spec.faults, rates: { ...spec.faults?.rates, [kind as FaultKind]: rate } };
  }
  return { spec, writeConfig: values["write-config"], help: (values as { help?: boolean }).help === true };
}

/** `baton sim vllm|retrieval`: one service, the way a Slurm job would run vLLM. */
async function runOne(kind: "vllm" | "retrieval", argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, ONE_OPTIONS, false);
  if ((values as { help?: boolean }).help) {
    console.log(ONE_USAGE);
    return 0;
  }
  const port = num("port", values.port, { int: true, min: 0, max: 65535 });
  if (port === undefined) throw usageError("--port is required (0 = a free port)");
  const host = values.host ?? "127.0.0.1";
  const seed = num("seed", values.seed, { int: true }) ?? 0;
  const latencyMs = num("latency-ms", values["latency-ms"], { min: 0 }) ?? 0;
  let sim: { url: string; stop(): Promise<void> };
  if (kind === "vllm") {
    if (!values.model) throw usageError("--model is required (the served model name)");
    const mode = values.mode ?? "expert";
    if (mode !== "orchestrator" && mode !== "expert") throw usageError(`--mode: expected orchestrator or expert, got '${mode}'`);
    try {
      sim = await startVllmSim({
        host,
        port,
        model: values.model,
        mode,
        seed,
        latency: { ttftMs: latencyMs },
        ...(values.answers ? { answers: readAnswers(values.answers) } : {}),
        ...(values.accuracy !== undefined ? { accuracy: num("accuracy", values.accuracy, { min: 0, max: 1 }) } : {}),
        ...(values["max-model-len"] !== undefined ? { maxModelLen: num("max-model-len", values["max-model-len"], { int: true, min: 16 }) } : {}),
      });
    } catch (err) {
      throw new CliError(`could not start the vLLM simulator on ${host}:${port}: ${(err as Error).message}`);
    }
  } else {
    try {
      sim = await startRetrievalSim({ host, port, seed, latency: { ms: latencyMs, jitter: 0 } });
    } catch (err) {
      throw new CliError(`could not start the retrieval simulator on ${host}:${port}: ${(err as Error).message}`);
    }
  }
  console.error(`sim ${kind}: ${values.model ?? "retrieval"} listening on ${sim.url}`);
  const signal = await new Promise<string>((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
  });
  await sim.stop();
  console.error(`sim ${kind}: ${signal}: stopped`);
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  if (argv[0] === "vllm" || argv[0] === "retrieval") {
    const kind = argv[0];
    return runCli(() => runOne(kind, argv.slice(1)), `sim ${kind}`);
  }
  return runCli(async () => {
    const parsed = specFromArgs(argv);
    if (parsed.help) {
      console.log(USAGE);
      return 0;
    }
    let cluster: Awaited<ReturnType<typeof startSimCluster>>;
    try {
      cluster = await startSimCluster(parsed.spec);
    } catch (err) {
      throw new CliError(`could not start the simulators: ${(err as Error).message}`);
    }
    const text = JSON.stringify(cluster.config, null, 2);
    if (parsed.writeConfig) writeFileSync(parsed.writeConfig, `${text}\n`);
    console.log(text);
    for (const r of cluster.replicas) console.error(`sim: ${r.kind.padEnd(14)} ${r.model.padEnd(36)} ${r.sim.url}`);
    console.error(`sim: ${cluster.replicas.length} replicas up; admin: GET/POST <url>/admin/settings, GET <url>/admin/stats; Ctrl-C to stop`);

    const signal = await new Promise<string>((resolve) => {
      process.once("SIGINT", () => resolve("SIGINT"));
      process.once("SIGTERM", () => resolve("SIGTERM"));
    });
    await cluster.stop();
    console.error(`sim: ${signal}: stopped ${cluster.replicas.length} replicas`);
    return 0;
  }, "sim");
}
