// Bearer-token guard. Mutating routes and every queue route need the token when one is
// configured; GET pages and reads stay open so a browser can show the UI and reports.
import { createHash, timingSafeEqual } from "node:crypto";
import { Elysia } from "elysia";
import type { AppDeps } from "./deps";
import { errorBody } from "./errors";

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/** Constant-time: compares fixed-length digests so neither content nor length leaks. */
export function tokensMatch(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

export function needsToken({ method, path }: { method: string; path: string }): boolean {
  return !(method === "GET" || method === "HEAD" || method === "OPTIONS") || path.startsWith("/v1/queue/");
}

/** null = allowed; otherwise the 401 body to send. */
export function checkBearer({
  token,
  method,
  path,
  authorization,
}: {
  token: string | null;
  method: string;
  path: string;
  authorization: string | null;
}): { code: string; message: string } | null {
  if (!token || !needsToken({ method, path })) return null;
  if (!authorization) return { code: "auth.missing_token", message: "this route needs 'Authorization: Bearer <token>' (BATON_TOKEN)" };
  const m = /^Bearer\s+(.+)$/i.exec(authorization.trim());
  if (!m || !tokensMatch(m[1], token)) return { code: "auth.invalid_token", message: "the bearer token is not valid" };
  return null;
}

// onRequest runs before the body is read, so an unauthenticated upload is refused
// without parsing hundreds of megabytes.
export const authGuard = (deps: AppDeps) =>
  new Elysia({ name: "auth" }).onRequest(({ request, set }) => {
    const url = new URL(request.url);
    const denied = checkBearer({
      token: deps.token,
      method: request.method,
      path: url.pathname,
      authorization: request.headers.get("authorization"),
    });
    if (denied) {
      set.status = 401;
      set.headers["www-authenticate"] = "Bearer";
      return errorBody(denied.code, denied.message);
    }
  });
