// What a run needs served lives in db/run-needs.ts (the endpoint status reads it there).
export * from "../../db/run-needs";
