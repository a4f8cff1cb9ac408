// Run configuration lives in db/run-config.ts: the database resolves and stores it, and db/
// may not import runner/. Kept so runner code can go on importing "./config".
export * from "../db/run-config";
