import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startSimCluster } from "../../sim/cluster";
import { EXPERT_MODELS, ORCHESTRATOR_MODEL } from "../../sim/models";
import { fetchError, postJson, tools, waitFor } from "./_helpers";

const CLI = join(import.meta.dir, "../../cli/baton.ts");

test("startSimCluster starts every replica and returns a ToolOrchestra config pointing at them", async () => {
  const cluster = await startSimCluster({
    seed: 4,
    orchestrator: { replicas: 2 },
    experts: { models: [EXPERT_MODELS[0], EXPERT_MODELS[2]], replicas: 2 },
    retrieval: { replicas: 1, wikiReplicas: 2 },
    answers: { "What is the capital of the Isle of Orrin?": "Port Halvard" },
  });
  try {
    expect(Object.keys(cluster.config).sort()).toEqual([EXPERT_MODELS[0], EXPERT_MODELS[2], ORCHESTRATOR_MODEL, "retrieval", "wiki_retrieval"].sort());
    expect(cluster.config[ORCHESTRATOR_MODEL]).toHaveLength(2);
    expect(cluster.config.wiki_retrieval).toHaveLength(2);
    expect(cluster.replicas).toHaveLength(2 + 4 + 3);
    const ports = Object.values(cluster.config).flat().map((e) => e.port);
    expect(new Set(ports).size).toBe(ports.length);

    const [orch] = cluster.config[ORCHESTRATOR_MODEL]!;
    const res = await postJson(`http://${orch!.ip_addr}:${orch!.port}/v1/chat/completions`, {
      model: ORCHESTRATOR_MODEL,
      messages: [{ role: "user", content: "What is the capital of the Isle of Orrin?" }],
      tools: tools(),
    });
    expect((await res.json()).choices[0].message.tool_calls[0].function.name).toBe("search");

    const [expert] = cluster.config[EXPERT_MODELS[0]]!;
    const answer = await postJson(`http://127.0.0.1:${expert!.port}/v1/chat/completions`, {
      model: EXPERT_MODELS[0],
      messages: [{ role: "user", content: "Question: What is the capital of the Isle of Orrin? <answer>" }],
    });
    expect((await answer.json()).choices[0].message.content).toContain("<answer>Port Halvard</answer>");

    const [wiki] = cluster.config.wiki_retrieval!;
    const docs = await (await postJson(`http://127.0.0.1:${wiki!.port}/retrieve`, { queries: ["Isle of Orrin"], topk: 2, return_scores: true })).json();
    expect(docs[0]).toHaveLength(2);

    // Replica objects are live handles: a change on one replica affects only that one.
    const [first, second] = cluster.byModel(ORCHESTRATOR_MODEL);
    if (first!.kind !== "orchestrator") throw new Error("expected an orchestrator replica");
    first!.sim.update({ faults: { queue: ["503"] } });
    const body = { model: ORCHESTRATOR_MODEL, messages: [{ role: "user", content: "q" }] };
    expect((await postJson(`${first!.sim.url}/v1/chat/completions`, body)).status).toBe(503);
    expect((await postJson(`${second!.sim.url}/v1/chat/completions`, body)).status).toBe(200);
  } finally {
    await cluster.stop();
  }
  const port = cluster.config[ORCHESTRATOR_MODEL]![0]!.port;
  await fetchError(fetch(`http://127.0.0.1:${port}/health`));
});

test("a fault queue in the spec is copied per replica, not shared", async () => {
  const cluster = await startSimCluster({ orchestrator: { replicas: 2 }, experts: { models: [] }, retrieval: { replicas: 0, wikiReplicas: 0 }, faults: { queue: ["500"] } });
  try {
    const body = { model: ORCHESTRATOR_MODEL, messages: [{ role: "user", content: "q" }] };
    for (const r of cluster.replicas) expect((await postJson(`${r.sim.url}/v1/chat/completions`, body)).status).toBe(500);
  } finally {
    await cluster.stop();
  }
});

test("baton sim serves replicas until SIGTERM, writes the config, then stops cleanly", async () => {
  const dir = mkdtempSync(join(tmpdir(), "baton-sim-"));
  const configPath = join(dir, "model_config.json");
  const answersPath = join(dir, "answers.jsonl");
  writeFileSync(answersPath, `${JSON.stringify({ question: "Who painted the Kessar altarpiece?", answer: "Mirenta Vosk" })}\n`);
  const proc = Bun.spawn(
    [process.execPath, CLI, "sim", "--orchestrator", "2", "--expert", "1", "--expert-models", EXPERT_MODELS[1], "--retrieval", "1", "--wiki-retrieval", "1", "--seed", "3", "--answers", answersPath, "--write-config", configPath],
    { stdout: "pipe", stderr: "pipe" },
  );
  try {
    await waitFor(() => existsSync(configPath) && readFileSync(configPath, "utf8").endsWith("\n"), 15_000, "the config file");
    const config = JSON.parse(readFileSync(configPath, "utf8")) as Record<string, { ip_addr: string; port: number }[]>;
    expect(config[ORCHESTRATOR_MODEL]).toHaveLength(2);
    expect(Object.keys(config).sort()).toEqual([EXPERT_MODELS[1], ORCHESTRATOR_MODEL, "retrieval", "wiki_retrieval"].sort());
    for (const e of Object.values(config).flat()) {
      expect(e.ip_addr).toBe("127.0.0.1");
      expect((await fetch(`http://127.0.0.1:${e.port}/health`)).status).toBe(200);
    }
    const expert = config[EXPERT_MODELS[1]]![0]!;
    const reply = await postJson(`http://127.0.0.1:${expert.port}/v1/chat/completions`, {
      model: EXPERT_MODELS[1],
      messages: [{ role: "user", content: "Question: Who painted the Kessar altarpiece? <answer>" }],
    });
    expect((await reply.json()).choices[0].message.content).toContain("<answer>Mirenta Vosk</answer>");

    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    expect(JSON.parse(await new Response(proc.stdout).text())).toEqual(config);
    for (const e of Object.values(config).flat()) await fetchError(fetch(`http://127.0.0.1:${e.port}/health`));
  } finally {
    proc.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);

test("baton sim rejects a bad flag value with a message naming the flag", async () => {
  const proc = Bun.spawn([process.execPath, CLI, "sim", "--accuracy", "1.5"], { stdout: "pipe", stderr: "pipe" });
  expect(await proc.exited).toBe(2);
  expect(await new Response(proc.stderr).text()).toContain("--accuracy: expected a number >= 0 and <= 1, got '1.5'");
}, 15_000);
