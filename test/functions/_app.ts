// Shared by the runs/tasks/queue/auth/health tests: an app over a fresh temp-file database.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeDb, openDb, type Db } from "../../db/client";
import { createApp, type AppOptions } from "../../functions/index";

export type TestApp = {
  db: Db;
  app: ReturnType<typeof createApp>;
  dir: string;
  req(path: string, init?: RequestInit & { json?: unknown }): Promise<[Response, any]>;
  close(): void;
};

export const TOKEN = "test-token-123";
export const AUTH = { authorization: `Bearer ${TOKEN}` };

export async function makeApp({ token = TOKEN, ...options }: AppOptions & { token?: string | null } = {}): Promise<TestApp> {
  const dir = mkdtempSync(join(tmpdir(), "baton-fn-"));
  const db = await openDb({ url: `file:${join(dir, "baton.db")}` });
  const app = createApp({ db, token }, options);
  return {
    db,
    app,
    dir,
    async req(path, init = {}) {
      const { json, ...rest } = init;
      const headers = new Headers(rest.headers);
      let body = rest.body;
      if (json !== undefined) {
        body = JSON.stringify(json);
        headers.set("content-type", "application/json");
      }
      if (typeof body === "string" && !headers.has("content-length"))
        headers.set("content-length", String(Buffer.byteLength(body)));
      const res = await app.handle(new Request(`http://localhost${path}`, { ...rest, headers, body }));
      const text = await res.text();
      let parsed: any = text;
      try {
        parsed = JSON.parse(text);
      } catch {}
      return [res, parsed];
    },
    close() {
      closeDb(db);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function tasksOf(n: number, extra: Record<string, unknown> = {}) {
  return Array.from({ length: n }, (_, i) => ({ id: `t${i}`, question: `question ${i}?`, answer: `a${i}`, ...extra }));
}
