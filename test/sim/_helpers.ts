// Helpers for the simulator tests: plain fetch over loopback, SSE parsing, polling.

export type Tool = { type: "function"; function: { name: string; parameters: Record<string, unknown> } };

/** ToolOrchestra-style tool definitions: each takes a `model` from an enum. */
export function tools(names: string[] = ["search", "enhance_reasoning", "answer"]): Tool[] {
  return names.map((name) => ({
    type: "function",
    function: {
      name,
      parameters: {
        type: "object",
        properties: { model: { type: "string", enum: [`${name}-1`, `${name}-2`, `${name}-3`] } },
        required: ["model"],
      },
    },
  }));
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
  return fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body), signal });
}

/** The `data:` payloads of an SSE body, in order. */
export function sseData(text: string): string[] {
  return text
    .split("\n\n")
    .map((e) => e.trim())
    .filter((e) => e.startsWith("data: "))
    .map((e) => e.slice("data: ".length));
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resolves with the error a fetch failed with (or throws if it answered). */
export async function fetchError(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected the request to fail without a response");
}
