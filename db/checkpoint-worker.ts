// The background checkpointer's thread (db/checkpointer.ts): its own connection to the file,
// copying the WAL back into the database on a timer so no writer's commit has to.
import { Database } from "bun:sqlite";

declare const self: Worker;

let db: Database | null = null;
let timer: ReturnType<typeof setInterval> | null = null;

// WAL frames past which a round also restarts the log (a few ms of waiting writers): under
// steady writes a PASSIVE round never finds the log fully copied at a quiet moment, so the
// log would otherwise only restart at the writers' backstop
let restartFrames = 8192;

function checkpoint(): void {
  if (!db) return;
  try {
    // PASSIVE: copies what it can without waiting for readers or blocking writers; frames a
    // reader still needs stay for the next round
    const r = db.query("PRAGMA wal_checkpoint(PASSIVE)").get() as { busy: number; log: number; checkpointed: number } | null;
    if (r && r.log > restartFrames) db.query("PRAGMA wal_checkpoint(RESTART)").get();
  } catch {
    // busy (another checkpointer, a writer's own checkpoint) or the file is gone: next round
  }
}

self.onmessage = (event: MessageEvent<{ path: string; intervalMs: number; restartFrames: number } | "stop">) => {
  if (event.data === "stop") {
    if (timer) clearInterval(timer);
    checkpoint();
    db?.close();
    db = null;
    postMessage("stopped");
    return;
  }
  const { path, intervalMs } = event.data;
  restartFrames = event.data.restartFrames;
  db = new Database(path, { readwrite: true, create: false });
  // a short wait: a busy round is retried by the next tick, not waited for
  db.exec("PRAGMA busy_timeout = 50");
  timer = setInterval(checkpoint, intervalMs);
  postMessage("started");
};
