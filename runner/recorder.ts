// Collects latency rows (tool_calls, latency_components, llm_calls) from every task of a
// runner and sends them through TaskQueue.recordRows in batches: every flushMs, sooner when
// a batch is full, and on demand before a task's result is written. A crash therefore loses
// at most the rows of the last flush interval, i.e. the step in flight.
//
// A finishing task's "write my rows now" waits coalesceMs for the others finishing at about the
// same time (flushSoon): one statement per table for all of them instead of one each. On a file
// database a batch of one task's rows took ~3 ms of the event loop and ~1.1 ms CPU; a batch of
// many, ~1.4 ms and ~0.75 ms per task (mostly the commit and the statement building per batch).
import type { LlmAttempt } from "./llm-client";
import { toLlmCallRow } from "./llm-client";
import { encodeTranscript } from "../db/rows";
import type { LatencyComponentRow, LlmCallRow, RowBatch, StepTranscript, StepTranscriptRow, ToolCallRow } from "../db/rows";
import type { TaskQueue } from "./task-queue";

export type Component = "orchestrator" | "query_llm" | "retrieval" | "expert_llm" | "code_exec" | "judge";

export type { StepTranscript };

type Log = (line: string) => void;

// Per request: well under POST /v1/queue/rows' limits (100,000 rows of a kind, 1,000
// transcripts) and a body of tens of MB at most.
const MAX_ROWS = 5000;
const MAX_TRANSCRIPTS = 200;
const MAX_TRANSCRIPT_BYTES = 16 * 1024 * 1024;

export class Recorder {
  private toolCalls: ToolCallRow[] = [];
  private components: LatencyComponentRow[] = [];
  private llmCalls: LlmCallRow[] = [];
  private transcripts: StepTranscriptRow[] = [];
  private timer: ReturnType<typeof setInterval> | null = null;
  private inFlight: Promise<void> = Promise.resolve();
  // the last flush started (rejects when it failed), and the coalesced one waiting to start
  private current: Promise<void> = Promise.resolve();
  private scheduled: Promise<void> | null = null;
  private failures = 0;
  written = 0;

  constructor(
    private readonly queue: Pick<TaskQueue, "recordRows">,
    private readonly opts: { flushMs?: number; maxRows?: number; coalesceMs?: number; log?: Log } = {},
  ) {
    const ms = opts.flushMs ?? 250;
    this.timer = setInterval(() => void this.flush().catch(() => {}), ms);
    // Rows alone must not keep a finished runner alive.
    (this.timer as any).unref?.();
  }

  private get size(): number {
    return this.toolCalls.length + this.components.length + this.llmCalls.length + this.transcripts.length;
  }

  add(rows: RowBatch): void {
    if (rows.toolCalls) this.toolCalls.push(...rows.toolCalls);
    if (rows.components) this.components.push(...rows.components);
    if (rows.llmCalls) this.llmCalls.push(...rows.llmCalls);
    if (rows.transcripts) this.transcripts.push(...rows.transcripts);
    if (this.size >= (this.opts.maxRows ?? 500)) void this.flush().catch(() => {});
  }

  /**
   * Sends everything buffered. Flushes are serialised so rows keep their order; a failed
   * batch goes back to the front of the buffer and is re-sent with the next flush (tool
   * calls and components are unique per step, so a re-sent batch never counts twice).
   */
  flush(): Promise<void> {
    const next = this.inFlight.then(async () => {
      // in bounded batches: after an outage the buffer may hold more than one request (or the
      // server's per-batch limits) should carry
      while (this.size > 0) await this.sendOne();
    });
    this.inFlight = next.catch(() => {});
    this.current = next;
    return next;
  }

  /**
   * Resolves once every row buffered now is written (rejects if that write failed), like
   * flush(), but joins the flush of whoever asks within the next coalesceMs.
   */
  flushSoon(): Promise<void> {
    if (this.scheduled) return this.scheduled;
    // nothing buffered: this task's rows are written, or in the flush under way
    if (this.size === 0) return this.current;
    const ms = this.opts.coalesceMs ?? 10;
    const p = Bun.sleep(ms).then(() => {
      this.scheduled = null;
      return this.flush();
    });
    p.catch(() => {});
    this.scheduled = p;
    return p;
  }

  private async sendOne(): Promise<void> {
    let n = 0;
    let bytes = 0;
    while (n < this.transcripts.length && n < MAX_TRANSCRIPTS && (n === 0 || bytes + this.transcripts[n]!.body.length <= MAX_TRANSCRIPT_BYTES))
      bytes += this.transcripts[n++]!.body.length;
    const batch = {
      toolCalls: this.toolCalls.splice(0, MAX_ROWS),
      components: this.components.splice(0, MAX_ROWS),
      llmCalls: this.llmCalls.splice(0, MAX_ROWS),
      transcripts: this.transcripts.splice(0, n),
    } satisfies RowBatch;
    try {
      await this.queue.recordRows(batch);
      this.written += batch.toolCalls.length + batch.components.length + batch.llmCalls.length + batch.transcripts.length;
      this.failures = 0;
    } catch (err) {
      this.toolCalls.unshift(...batch.toolCalls);
      this.components.unshift(...batch.components);
      this.llmCalls.unshift(...batch.llmCalls);
      this.transcripts.unshift(...batch.transcripts);
      if (this.failures++ % 20 === 0)
        (this.opts.log ?? console.error)(`recorder: could not write ${this.size} rows (will retry): ${(err as Error).message}`);
      throw err;
    }
  }

  /** Stops the timer and writes what is left (retrying a few times: these are the last rows). */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (let i = 0; i < 5 && this.size > 0; i++) {
      try {
        await this.flush();
      } catch {
        await Bun.sleep(200 * (i + 1));
      }
    }
  }

  forTask(ctx: { runId: number; taskId: number; attempt: number }): TaskRecorder {
    return new TaskRecorder(this, ctx);
  }
}

/** The rows of one attempt at one task; (task_id, attempt, step) is the join key. */
export class TaskRecorder {
  toolCallCount = 0;
  componentCount = 0;
  llmCallCount = 0;
  transcriptCount = 0;

  constructor(
    private readonly sink: Recorder,
    readonly ctx: { runId: number; taskId: number; attempt: number },
  ) {}

  toolCall(row: Omit<ToolCallRow, "runId" | "taskId" | "attempt">): void {
    this.toolCallCount++;
    this.sink.add({ toolCalls: [{ ...row, ...this.ctx }] });
  }

  component(row: Omit<LatencyComponentRow, "runId" | "taskId" | "attempt">): void {
    this.componentCount++;
    this.sink.add({ components: [{ ...row, ...this.ctx }] });
  }

  llmAttempt(attempt: LlmAttempt, step: number, tool: string | null): void {
    this.llmCallCount++;
    this.sink.add({ llmCalls: [toLlmCallRow(attempt, { ...this.ctx, step, tool })] });
  }

  /**
   * Keeps one step whole. Compressed here, on the runner, so the batch (and the server's
   * work) stays small; call once per step, after the step's tool has finished.
   */
  transcript(t: StepTranscript): void {
    this.transcriptCount++;
    const { taskId, attempt } = this.ctx;
    this.sink.add({ transcripts: [{ taskId, attempt, step: t.step, body: encodeTranscript(t), createdAt: Date.now() }] });
  }

  /** This task's rows written (coalesced with other tasks finishing within a few ms). */
  flush(): Promise<void> {
    return this.sink.flushSoon();
  }
}
