// The protocol profiles live in db/profiles.ts (run configs resolve against them there).
export * from "../../db/profiles";
