import { describe, expect, test } from "bun:test";
import { loadRunConfig } from "../../runner/config";
import { exactMatch, gradeAnswer, gradeReference, normalizeAnswer, parseReferenceVerdict } from "../../runner/grading";

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

describe("reference grading (toolorchestra profiles)", () => {
  const judgeTemplate = loadRunConfig({ benchmark: "frames", config: {} }).prompts.judge;
  const noJudge = async (_prompt: string): Promise<string> => {
    throw new Error("the judge must not be asked");
  };
  const grade = (prediction: string, gold: string, judge = noJudge) =>
    gradeReference({ question: "Q?", prediction, gold, maxWords: 500, judgeTemplate, judge });

  test("exact match is strip().lower() equality, nothing more", async () => {
    expect(await grade("  Jane BALLOU ", "jane ballou")).toMatchObject({ correct: true, method: "exact" });
    // no normalisation of punctuation or articles: that is the judge's call
    let asked = "";
    const g = await grade("The Jane Ballou.", "Jane Ballou", async (p) => ((asked = p), "<correct>False</correct>"));
    expect(g).toMatchObject({ correct: false, method: "judge" });
    expect(asked).toBe(
      "Question: Q?\n\nStudent answer: The Jane Ballou.\n\nReference answer: Jane Ballou\n\nAssume that the reference answer is correct. Output <correct>True</correct> if the student answer matches the reference answer. Output <correct>False</correct> if the student answer does not match the reference answer.",
    );
  });

  test("a blank prediction, or one of more than 500 space-separated words, is wrong without the judge", async () => {
    expect(await grade("   ", "x")).toMatchObject({ correct: false, method: "empty" });
    expect(await grade(Array(501).fill("w").join(" "), "x")).toMatchObject({ correct: false, method: "too_long" });
    const at500 = await grade(Array(500).fill("w").join(" "), "x", async () => "<correct>True</correct>");
    expect(at500).toMatchObject({ correct: true, method: "judge" });
  });

  test("the verdict is the text between the last <correct> and </correct>, compared to 'true' without stripping", () => {
    expect(parseReferenceVerdict("thinking... <correct>True</correct>")).toBe(true);
    expect(parseReferenceVerdict("<correct>TRUE</correct> then <correct>false</correct>")).toBe(false);
    expect(parseReferenceVerdict("<correct> True </correct>")).toBe(false);
    // no tags: the whole reply is the verdict
    expect(parseReferenceVerdict("True")).toBe(true);
    expect(parseReferenceVerdict("The answer is correct")).toBe(false);
  });

  test("a judge that fails is judge_error with correct null, re-judgeable later", async () => {
    const g = await grade("a", "b", async () => {
      throw new Error("HTTP 401");
    });
    expect(g).toMatchObject({ correct: null, method: "judge_error", judgeError: "HTTP 401" });
  });
});
