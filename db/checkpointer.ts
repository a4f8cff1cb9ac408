// A background checkpointer for long-lived processes on a file database (the server and the
// runner). In WAL mode every commit appends pages to the WAL, and by default the commit that
// takes the WAL past 1,000 pages also copies it back into the database and fsyncs both files,
// inside that writer's call: a 100k-task submit waited about 250 ms for it, and a runner's
// event loop stalls for each one. Here a thread with its own connection does that work every
// `intervalMs` instead, so commits only append. Durability is unchanged for a crashed process
// (a commit in the WAL is committed) and better bounded for a power cut: under
// synchronous=NORMAL the WAL is fsynced at checkpoints, which now come every interval instead of
// every 1,000 pages however long those take to fill. The writers keep a far larger automatic
// checkpoint as a backstop, should this thread fall behind or die.
export const BACKSTOP_AUTOCHECKPOINT_PAGES = 65_536;
// a round that finds more than this in the WAL also restarts it (RESTART waits a few ms for the
// writers), so the log stays near one interval of writes; writers truncate it back to
// WAL_SIZE_LIMIT_BYTES when it restarts
export const RESTART_FRAMES = 8192;
export const WAL_SIZE_LIMIT_BYTES = 32 * 1024 * 1024;

export type Checkpointer = { stop(): Promise<void> };

const START_TIMEOUT_MS = 5000;

export async function startCheckpointer({ path, intervalMs = 1000 }: { path: string; intervalMs?: number }): Promise<Checkpointer> {
  const worker = new Worker(new URL("./checkpoint-worker.ts", import.meta.url).href);
  const reply = (want: string) =>
    new Promise<void>((resolve, reject) => {
      worker.addEventListener("message", function on(e: MessageEvent) {
        if (e.data !== want) return;
        worker.removeEventListener("message", on);
        resolve();
      });
      worker.addEventListener("error", (e) => reject(new Error(`checkpointer: ${(e as ErrorEvent).message}`)), { once: true });
    });
  const started = reply("started");
  worker.postMessage({ path, intervalMs, restartFrames: RESTART_FRAMES });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      started,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`checkpointer: the thread did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      }),
    ]);
  } catch (err) {
    worker.terminate();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  // never what keeps a process alive
  (worker as unknown as { unref(): void }).unref();
  let stopping: Promise<void> | null = null;
  return {
    stop() {
      stopping ??= (async () => {
        const stopped = reply("stopped");
        worker.postMessage("stop");
        // a thread that cannot answer is terminated all the same; the wait itself never
        // keeps the process alive
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 2000);
          timer.unref();
          const done = () => {
            clearTimeout(timer);
            resolve();
          };
          // a thread that failed while stopping is done too
          void stopped.then(done, done);
        });
        worker.terminate();
      })();
      return stopping;
    },
  };
}
