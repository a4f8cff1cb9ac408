// One error shape for every failure: { error: { code, message } }. Codes are
// "<feature>.<reason>" (runs.not_found, tasks.invalid, auth.missing_token, ...).
import * as v from "valibot";
import { DbError, type DbErrorKind } from "../db/errors";

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

// db/ raises DbError (it knows no HTTP); this is the one place its kinds become statuses.
const DB_ERROR_STATUS: Record<DbErrorKind, number> = { invalid: 400, not_found: 404, conflict: 409, ambiguous: 409, too_large: 413 };

/** The ApiError a thrown ApiError or DbError stands for; null for anything else. */
export function toApiError(error: unknown): ApiError | null {
  if (error instanceof ApiError) return error;
  if (error instanceof DbError) return new ApiError(DB_ERROR_STATUS[error.kind], error.code, error.message);
  return null;
}
