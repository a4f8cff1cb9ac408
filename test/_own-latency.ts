// The per-tool latency as the ToolOrchestra reference defines it, computed here from the raw
// latency_components rows in plain code, independently of db/analysis.ts and the views it is
// checked against: a tool step's own time is the sum of its non-orchestrator components,
// counted when its LLM ran (search: and retrieval ran); every orchestrator call is a value of
// the "orchestrator" row; only each task's final attempt unless allAttempts.
import type { Db } from "../db/client";

export async function computeOwnLatencies(db: Db, runId: number, { allAttempts = false } = {}): Promise<Map<string, number[]>> {
  const rows = (
    await db.$client.execute({
      sql: `SELECT lc.task_id, lc.attempt, lc.step, lc.tool, lc.component, lc.ms, t.attempt AS final_attempt
            FROM latency_components lc JOIN tasks t ON t.id = lc.task_id WHERE lc.run_id = ?`,
      args: [runId],
    })
  ).rows as any[];
  const steps = new Map<string, { tool: string; final: boolean; own: number; orch: number | null; llm: number; ret: number }>();
  for (const r of rows) {
    const key = `${r.task_id}/${r.attempt}/${r.step}`;
    const s = steps.get(key) ?? { tool: r.tool, final: r.attempt === r.final_attempt, own: 0, orch: null, llm: 0, ret: 0 };
    steps.set(key, s);
    if (r.component === "orchestrator") s.orch = r.ms;
    else s.own += r.ms;
    if (r.component === "query_llm" || r.component === "expert_llm") s.llm += r.ms;
    if (r.component === "retrieval") s.ret += r.ms;
  }
  const out = new Map<string, number[]>();
  const add = (tool: string, ms: number) => (out.get(tool) ?? out.set(tool, []).get(tool)!).push(ms);
  for (const s of steps.values()) {
    if (!allAttempts && !s.final) continue;
    if (s.orch != null) add("orchestrator", s.orch);
    if (s.tool !== "orchestrator" && s.llm > 0 && (s.tool !== "search" || s.ret > 0)) add(s.tool, s.own);
  }
  return out;
}
