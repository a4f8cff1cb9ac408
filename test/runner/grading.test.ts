import { describe, expect, test } from "bun:test";
import { exactMatch, gradeAnswer, normalizeAnswer } from "../../runner/grading";

const TEMPLATE = "Question: {question}\nPrediction: {prediction}\nGold answer: {gold}\n<correct>";

describe("grading", () => {
  test("normalisation ignores case, punctuation, articles, spacing and number formatting", () => {
    expect(normalizeAnswer("  The Eiffel   Tower. ")).toBe("eiffel tower");
    expect(exactMatch("1,000", "1000")).toBe(true);
    expect(exactMatch("3.50", "3.5")).toBe(true);
    expect(exactMatch("Jane Ballou", "jane ballou!")).toBe(true);
    expect(exactMatch("37th", "38th")).toBe(false);
  });

  test("an exact match never calls the judge", async () => {
    let calls = 0;
    const g = await gradeAnswer({ question: "q", prediction: "Paris", gold: "paris", judgeTemplate: TEMPLATE, judge: async () => (calls++, "") });
    expect(g).toMatchObject({ correct: true, method: "exact" });
    expect(calls).toBe(0);
  });

  test("otherwise the judge decides, with the prediction and gold on their own lines", async () => {
    let seen = "";
    const g = await gradeAnswer({
      question: "q", prediction: "about 42", gold: "42", judgeTemplate: TEMPLATE,
      judge: async (p) => ((seen = p), "<correct>True</correct>"),
    });
    expect(g).toMatchObject({ correct: true, method: "judge" });
    expect(seen).toContain("Prediction: about 42\nGold answer: 42");
  });

  test("a failing judge is judge_error with correct null, not a wrong answer", async () => {
    const thrown = await gradeAnswer({ question: "q", prediction: "x", gold: "y", judgeTemplate: TEMPLATE, judge: async () => { throw new Error("503"); } });
    expect(thrown).toMatchObject({ correct: null, method: "judge_error" });
    const mute = await gradeAnswer({ question: "q", prediction: "x", gold: "y", judgeTemplate: TEMPLATE, judge: async () => "no verdict here" });
    expect(mute).toMatchObject({ correct: null, method: "judge_error" });
  });

  test("an empty prediction is wrong without asking the judge", async () => {
    expect(await gradeAnswer({ question: "q", prediction: " ", gold: "y", judgeTemplate: TEMPLATE, judge: async () => "<correct>True</correct>" })).toMatchObject({ correct: false, method: "empty" });
  });
});
