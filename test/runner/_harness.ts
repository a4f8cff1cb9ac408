// Shared pieces of the runner tests: a temp-file database, the simulated cluster with the
// dataset's answers, the Baton server on a loopback port, and run configs with short
// timeouts so faults cost milliseconds, not minutes.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, openDb, type Db } from "../../db/client";
import { writeConfigDocument } from "../../db/config-wire";
import { importToolOrchestraConfig } from "../../db/endpoints";
import { createApp } from "../../functions/index";
import { startSimCluster, type SimCluster, type SimClusterSpec } from "../../sim/cluster";
import { EXPERT_MODELS } from "../../sim/models";

export const REPO = join(import.meta.dir, "../..");

export type Row = { id: string; question: string; answer: string; [k: string]: unknown };

export function readJsonl(path: string): Row[] {
  return readFileSync(join(REPO, path), "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

/** HLE-shaped rows made from the shipped sample: new ids and questions, canary kept. */
export function synthHle(n: number): Row[] {
  const base = readJsonl("data/hle-sample.jsonl");
  return Array.from({ length: n }, (_, i) => {
    const src = base[i % base.length];
    return { ...src, id: `${src.id}-syn${i}`, question: `[variant ${i}] ${src.question}`, answer: src.answer };
  });
}

export function answersOf(rows: Row[]): Record<string, string> {
  return Object.fromEntries(rows.map((r) => [r.question.trim(), String(r.answer)]));
}

export const FAST_POLICY = { attempts: 3, perAttemptTimeoutMs: 2_000, deadlineMs: 8_000, baseDelayMs: 5, maxDelayMs: 50 };

/** A run config for the simulators: their model names, short timeouts, history as messages. */
export function simRunConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const [oss, qwen, coder] = [EXPERT_MODELS[0], EXPERT_MODELS[1], EXPERT_MODELS[2]];
  return {
    // the simulator's experts and aliases follow Baton's protocol; the reference profiles have replay.test.ts
    profile: "baton",
    maxRounds: 12,
    orchestrator: { history: "messages", policy: FAST_POLICY },
    queryLlm: { policy: FAST_POLICY },
    coder: { policy: FAST_POLICY },
    answerer: { policy: FAST_POLICY },
    judge: { model: oss, policy: FAST_POLICY },
    models: { "search-1": oss, "search-2": qwen, "reasoner-1": coder, "reasoner-2": oss, "answer-1": qwen, "answer-2": oss },
    retrieval: { topk: 5, policy: { attempts: 2, perAttemptTimeoutMs: 1_000, deadlineMs: 3_000, baseDelayMs: 5, maxDelayMs: 20 } },
    sandbox: { timeoutMs: 5_000, memoryMb: 256 },
    tokenizer: { mode: "chars" },
    ...extra,
  };
}

export type World = {
  dir: string;
  dbUrl: string;
  db: Db;
  cluster: SimCluster;
  server: { url: string; stop(): Promise<void> };
  close(): Promise<void>;
};

export async function startWorld({
  rows,
  sim = {},
  token = "test-token",
}: {
  rows: Row[];
  sim?: SimClusterSpec;
  token?: string | null;
}): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), "baton-runner-"));
  const dbUrl = `file:${join(dir, "baton.db")}`;
  const db = await openDb({ url: dbUrl });
  const cluster = await startSimCluster({ seed: 7, answers: answersOf(rows), accuracy: 0.7, ...sim });
  await importToolOrchestraConfig({ db, config: cluster.config });
  const app = createApp({ db, token });
  app.listen({ port: 0, hostname: "127.0.0.1" });
  const url = `http://127.0.0.1:${app.server!.port}`;
  const server = { url, stop: async () => void (await app.stop(true)) };
  return {
    dir,
    dbUrl,
    db,
    cluster,
    server,
    async close() {
      await server.stop().catch(() => {});
      await cluster.stop().catch(() => {});
      closeDb(db);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function submitRun(
  world: World,
  { name, benchmark, rows, config, maxAttempts = 3 }: { name: string; benchmark: string; rows: Row[]; config: Record<string, unknown>; maxAttempts?: number },
  token = "test-token",
): Promise<number> {
  const res = await fetch(`${world.server.url}/v1/runs`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    // the configs here are in the code's spelling; the API takes snake_case
    body: JSON.stringify({ name, benchmark, config: writeConfigDocument(config), tasks: rows, max_attempts: maxAttempts }),
  });
  const body = (await res.json()) as any;
  if (res.status >= 300) throw new Error(`submit failed: ${res.status} ${JSON.stringify(body)}`);
  return body.id;
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function q<T = any>(db: Db, sql: string, args: any[] = []): Promise<T[]> {
  const res = await db.$client.execute({ sql, args });
  return res.rows as unknown as T[];
}
