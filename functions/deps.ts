// What every feature plugin receives. Plugins are factories over these dependencies so a
// test can build an app on its own temp database.
import type { Db } from "../db/client";

export type AppDeps = {
  db: Db;
  // Bearer token for mutating and queue routes; null = open (loopback only, see serve).
  token: string | null;
};
