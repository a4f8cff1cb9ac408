import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { EXPERT_MODELS, ORCHESTRATOR_MODEL } from "../../sim/models";
import { startVllmSim, type VllmSim } from "../../sim/vllm";
import { postJson, tools } from "./_helpers";

type Msg = Record<string, unknown>;

async function turn(sim: VllmSim, messages: Msg[], toolNames?: string[]) {
  const res = await postJson(`${sim.url}/v1/chat/completions`, {
    model: sim.settings().model,
    messages,
    ...(toolNames ? { tools: tools(toolNames), tool_choice: "auto" } : {}),
  });
  expect(res.status).toBe(200);
  return (await res.json()).choices[0];
}

/** Plays an orchestrator conversation: each tool call gets a tool result, until `answer`. */
async function trajectory(sim: VllmSim, q: string, toolNames = ["search", "enhance_reasoning", "answer"]): Promise<string[]> {
  const messages: Msg[] = [{ role: "user", content: q }];
  const calls: string[] = [];
  for (let step = 0; step < 12; step++) {
    const choice = await turn(sim, messages, toolNames);
    const call = choice.message.tool_calls[0];
    calls.push(`${call.function.name}${call.function.arguments}`);
    if (call.function.name === "answer") break;
    messages.push({ role: "assistant", content: null, tool_calls: [call] });
    messages.push({ role: "tool", tool_call_id: call.id, content: `result ${step}` });
  }
  return calls;
}

const QUESTIONS = Array.from({ length: 12 }, (_, i) => `Question ${i}: who founded the Telric Basin observatory in ${1800 + i * 7}?`);

describe("orchestrator policy", () => {
  let a: VllmSim;
  let b: VllmSim;
  let other: VllmSim;
  beforeAll(async () => {
    [a, b, other] = await Promise.all([
      startVllmSim({ model: ORCHESTRATOR_MODEL, mode: "orchestrator", seed: 11 }),
      startVllmSim({ model: ORCHESTRATOR_MODEL, mode: "orchestrator", seed: 11 }),
      startVllmSim({ model: ORCHESTRATOR_MODEL, mode: "orchestrator", seed: 12 }),
    ]);
  });
  afterAll(() => Promise.all([a.stop(), b.stop(), other.stop()]));

  test("the same seed and conversation give the same tool calls on another replica", async () => {
    const differs: boolean[] = [];
    for (const q of QUESTIONS.slice(0, 6)) {
      const ta = await trajectory(a, q);
      expect(await trajectory(b, q)).toEqual(ta);
      differs.push(JSON.stringify(await trajectory(other, q)) !== JSON.stringify(ta));
    }
    // The seed matters: a different seed changes at least one trajectory.
    expect(differs).toContain(true);
  });

  test("trajectories search first, then end with answer, varying in length", async () => {
    const lengths = new Set<number>();
    for (const q of QUESTIONS) {
      const t = await trajectory(a, q);
      expect(t[0]).toStartWith("search");
      expect(t.at(-1)).toStartWith("answer");
      lengths.add(t.length);
    }
    expect(lengths.size).toBeGreaterThan(1);
  });

  test("only offered tools are called: a withheld tool never appears", async () => {
    for (const q of QUESTIONS) {
      const t = await trajectory(a, q, ["search", "answer"]);
      expect(t.every((c) => c.startsWith("search") || c.startsWith("answer"))).toBe(true);
    }
    const choice = await turn(a, [{ role: "user", content: QUESTIONS[0] }], ["enhance_reasoning"]);
    expect(choice.message.tool_calls[0].function.name).toBe("enhance_reasoning");
  });

  test("after six tool results the orchestrator answers", async () => {
    const messages: Msg[] = [{ role: "user", content: QUESTIONS[3] }];
    for (let i = 0; i < 6; i++) {
      messages.push({ role: "assistant", content: null, tool_calls: [{ id: `c${i}`, type: "function", function: { name: "search", arguments: "{}" } }] });
      messages.push({ role: "tool", tool_call_id: `c${i}`, content: "nothing" });
    }
    const choice = await turn(a, messages, ["search", "enhance_reasoning", "answer"]);
    expect(choice.message.tool_calls[0].function.name).toBe("answer");
  });

  test("with invalidToolCallRate 1 every call names an unknown tool or carries non-JSON arguments", async () => {
    const sim = await startVllmSim({ model: ORCHESTRATOR_MODEL, mode: "orchestrator", invalidToolCallRate: 1 });
    try {
      const kinds = new Set<string>();
      for (const q of QUESTIONS) {
        const call = (await turn(sim, [{ role: "user", content: q }], ["search", "answer"])).message.tool_calls[0];
        let json = true;
        try {
          JSON.parse(call.function.arguments);
        } catch {
          json = false;
        }
        const unknown = !["search", "answer"].includes(call.function.name);
        expect(unknown || !json).toBe(true);
        kinds.add(unknown ? "unknown" : "not_json");
      }
      expect(kinds.size).toBe(2);
    } finally {
      await sim.stop();
    }
  });

  test("without tools the orchestrator answers in plain text", async () => {
    const choice = await turn(a, [{ role: "user", content: QUESTIONS[0] }]);
    expect(choice.finish_reason).toBe("stop");
    expect(choice.message.tool_calls).toEqual([]);
    expect(choice.message.content.length).toBeGreaterThan(0);
  });

  test("with enableAutoToolChoice off, tool_choice auto gets vLLM's 400", async () => {
    const sim = await startVllmSim({ model: ORCHESTRATOR_MODEL, mode: "orchestrator", enableAutoToolChoice: false });
    try {
      const res = await postJson(`${sim.url}/v1/chat/completions`, { model: ORCHESTRATOR_MODEL, messages: [{ role: "user", content: "q" }], tools: tools(), tool_choice: "auto" });
      expect(res.status).toBe(400);
      expect((await res.json()).error.message).toContain('"auto" tool choice requires --enable-auto-tool-choice');
    } finally {
      await sim.stop();
    }
  });
});

describe("expert replies by marker", () => {
  const MODEL = EXPERT_MODELS[0];
  const answers = {
    "What is the capital of the Isle of Orrin?": "Port Halvard",
    "How many bridges cross the Quellan river?": "17",
    "Who painted the Kessar altarpiece?": "Mirenta Vosk",
  };
  let sim: VllmSim;
  const ask = async (content: string, s: VllmSim = sim) => (await turn(s, [{ role: "system", content: "You are an expert." }, { role: "user", content }])).message.content as string;
  beforeAll(async () => {
    sim = await startVllmSim({ model: MODEL, mode: "expert", seed: 3, answers, accuracy: 1 });
  });
  afterAll(() => sim.stop());

  test("a judge prompt compares the prediction with the gold answer", async () => {
    const judge = (p: string, g: string) => ask(`Judge the answer. Reply <correct>True</correct> or <correct>False</correct>.\nPrediction: ${p}\nGold answer: ${g}`);
    expect(await judge("Port Halvard.", "port halvard")).toContain("<correct>True</correct>");
    expect(await judge("Mirenta Vosk", "Port Halvard")).toContain("<correct>False</correct>");
  });

  test("the judge marker takes precedence over the answer marker", async () => {
    const reply = await ask(`The model answered <answer>17</answer>.\nPrediction: 17\nGold answer: 17\nSay <correct>True</correct> or <correct>False</correct>.`);
    expect(reply).toContain("<correct>True</correct>");
    expect(reply).not.toContain("<answer>");
  });

  test("a query prompt gets a <query> built from the question's words", async () => {
    const reply = await ask(`Write a search query inside <query></query> for: What is the capital of the Isle of Orrin?`);
    const m = reply.match(/^<query>(.+)<\/query>$/);
    expect(m).not.toBeNull();
    expect(m![1]).toContain("Orrin");
    expect(m![1]).toContain("capital");
  });

  test("a code prompt gets a fenced python block that depends on the prompt", async () => {
    const one = await ask("Write Python code in ```python fences to count 3 and 4 bridges.");
    const two = await ask("Write Python code in ```python fences to count 5 and 8 bridges.");
    expect(one).toStartWith("```python\n");
    expect(one).toEndWith("\n```");
    expect(one).toContain("print(");
    expect(one).toContain("[3, 4]");
    expect(two).toContain("[5, 8]");
  });

  test("an answer prompt with accuracy 1 answers the gold of the longest known question in it", async () => {
    for (const [q, gold] of Object.entries(answers)) {
      const reply = await ask(`Documents: ...\nQuestion: ${q}\nAnswer inside <answer></answer>.`);
      expect(reply).toContain(`<answer>${gold}</answer>`);
    }
  });

  test("with accuracy 0 answers are plausible but wrong, and stable per question", async () => {
    const wrong = await startVllmSim({ model: MODEL, mode: "expert", seed: 3, answers, accuracy: 0 });
    try {
      for (const [q, gold] of Object.entries(answers)) {
        const reply = await ask(`Question: ${q}\nAnswer inside <answer></answer>.`, wrong);
        const got = reply.match(/<answer>(.*)<\/answer>/)![1]!;
        expect(got).not.toBe(gold);
        expect(got.length).toBeGreaterThan(0);
        expect(await ask(`Question: ${q}\nAnswer inside <answer></answer>.`, wrong)).toBe(reply);
      }
      // A numeric gold gets a numeric wrong answer.
      const n = (await ask(`Question: How many bridges cross the Quellan river? <answer>`, wrong)).match(/<answer>(.*)<\/answer>/)![1]!;
      expect(Number.isFinite(Number(n))).toBe(true);
    } finally {
      await wrong.stop();
    }
  });

  test("accuracy 0.5 answers some questions right and some wrong", async () => {
    const many: Record<string, string> = {};
    for (let i = 0; i < 40; i++) many[`Which year did event number ${i} of the Kessar chronicle happen?`] = String(1700 + i);
    const half = await startVllmSim({ model: MODEL, mode: "expert", seed: 5, answers: many, accuracy: 0.5 });
    try {
      let right = 0;
      for (const [q, gold] of Object.entries(many)) {
        if ((await ask(`Question: ${q} <answer>`, half)).includes(`<answer>${gold}</answer>`)) right++;
      }
      expect(right).toBeGreaterThan(5);
      expect(right).toBeLessThan(35);
    } finally {
      await half.stop();
    }
  });
});

describe("expert marker in a prompt with context", () => {
  test("the instruction's marker wins over markers quoted in the context before it", async () => {
    const sim = await startVllmSim({ model: EXPERT_MODELS[0], mode: "expert", answers: { "Who built the Orrin lighthouse?": "Tam Veller" } });
    try {
      const context = "Code so far:\n```python\nprint(1)\n```\nOutput: 1\n\nAn earlier attempt said <query>orrin</query>.";
      const reply = (await turn(sim, [{ role: "user", content: `${context}\n\nWho built the Orrin lighthouse?\n\nThink step by step, then wrap only the exact answer within <answer> and </answer>.` }])).message.content;
      expect(reply).toContain("<answer>Tam Veller</answer>");
      const code = (await turn(sim, [{ role: "user", content: `${context}\n\nQuestion: Who built the Orrin lighthouse?\nWrite code. Wrap the code within \`\`\`python and \`\`\`.` }])).message.content;
      expect(code).toStartWith("```python");
    } finally {
      await sim.stop();
    }
  });
});

test("the question asked after the context is answered, not a longer one quoted in a document", async () => {
  const answers = {
    "Who built the Orrin lighthouse?": "Tam Veller",
    "Which river flows past the Orrin lighthouse and into the Kessar sea?": "Quell",
  };
  const sim = await startVllmSim({ model: EXPERT_MODELS[0], mode: "expert", answers });
  try {
    const doc = "Doc 1: Which river flows past the Orrin lighthouse and into the Kessar sea? It is the Quell.";
    const reply = (await turn(sim, [{ role: "user", content: `${doc}\n\nWho built the Orrin lighthouse?\n\nWrap the answer within <answer> and </answer>.` }])).message.content;
    expect(reply).toContain("<answer>Tam Veller</answer>");
  } finally {
    await sim.stop();
  }
});
