// The errors db/ raises about what it was asked to do (as opposed to driver errors such as
// SQLITE_BUSY). db/ knows no HTTP: functions/errors.ts maps each kind to a status, and the CLI
// prints the message. `code` is the API's "<feature>.<reason>" (runs.not_found, tasks.invalid).
export const DB_ERROR_KINDS = ["invalid", "not_found", "conflict", "ambiguous", "too_large"] as const;
export type DbErrorKind = (typeof DB_ERROR_KINDS)[number];

export class DbError extends Error {
  constructor(
    readonly kind: DbErrorKind,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "DbError";
  }
}
