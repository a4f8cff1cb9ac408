// One error shape for every failure: { error: { code, message } }. Codes are
// "<feature>.<reason>" (runs.not_found, tasks.invalid, auth.missing_token, ...).
import * as v from "valibot";

export const ErrorBody = v.object({
  error: v.object({ code: v.string(), message: v.string() }),
});
export type ErrorBody = v.InferOutput<typeof ErrorBody>;

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

/** Thrown by plain functions; the global handler turns it into the error shape. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
