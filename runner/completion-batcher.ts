// Completions that finish within a few milliseconds of each other go to the queue as one
// statement (completeMany: each row still fenced by its own lease token). A single-statement
// completion dirties ~7 pages of the database (task row, lease, owner and status indexes,
// attempt history, run counters), and the hot ones are the same for every task: written once
// per batch instead of once per task, a runner's finishing writes stop competing with claims.
//
// A completion the batch did not write (lease lost, or an earlier try landed although its
// answer did not) is asked again alone, so the queue's own check decides it, as before; a
// batch that fails as a whole is retried item by item.
import type { TaskQueue } from "./task-queue";

type Item = Parameters<TaskQueue["complete"]>[0];
type Many = { completeMany?: (items: Item[]) => Promise<boolean[]> };
type Waiter = { item: Item; resolve: (ok: boolean) => void; reject: (err: unknown) => void };

export class CompletionBatcher {
  private pending: Waiter[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly q: TaskQueue & Many,
    private readonly windowMs = 2,
    private readonly maxBatch = 128,
  ) {}

  complete(item: Item): Promise<boolean> {
    if (typeof this.q.completeMany !== "function") return this.q.complete(item);
    return new Promise<boolean>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.pending.length >= this.maxBatch) this.flushSoon(0);
      else this.flushSoon(this.windowMs);
    });
  }

  private flushSoon(ms: number): void {
    if (this.timer && ms > 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.flush(), ms);
  }

  private async flush(): Promise<void> {
    this.timer = null;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    if (batch.length === 1) return this.settle(batch[0], this.q.complete(batch[0].item));
    let oks: boolean[];
    try {
      oks = await this.q.completeMany!(batch.map((w) => w.item));
    } catch {
      // one bad completion must not take the others down with it: each is tried alone, and
      // gets its own answer or error (a lock or a full disk then fails each, and each
      // caller retries on its own, as with a single completion)
      for (const w of batch) this.settle(w, this.q.complete(w.item));
      return;
    }
    batch.forEach((w, i) => (oks[i] ? w.resolve(true) : this.settle(w, this.q.complete(w.item))));
  }

  private settle(w: Waiter, p: Promise<boolean>): void {
    p.then(w.resolve, w.reject);
  }
}
