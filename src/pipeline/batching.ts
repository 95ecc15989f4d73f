// Requests batched on the fly: run() calls that arrive while the GPU is busy are queued, and up to maxBatch of them
// run as one inference of a session made for that batch (their feeds side by side along the first axis, the rest
// zero); a request that finds nothing in flight runs alone on the batch-1 session. While an inference is in flight,
// queued requests wait for it unless they fill a batch: starting each as it comes (up to maxInFlight) would run them
// one by one, and a batch of one costs nearly what a batch of four does. At batch 1 the GPU pass is
// mostly per-dispatch cost, so a batch of N costs far less than N passes: this is how several requests in flight
// get more images per second than one at a time (as serving systems batch dynamically).

import { FcmError, invalid } from '../errors.js';
import type { Session } from '../runtime/executor.js';
import type { RunResult } from '../runtime/precision.js';
import { type SessionOptions, createSession } from './session.js';
import type { ModelInput } from './pipeline.js';
import { nextTurn } from '../runtime/next-turn.js';

export interface BatchingStats {
  /** Requests run, alone and in batches. */
  requests: number;
  /** Inferences of the batch session, and the requests they carried. */
  batches: number;
  batchedRequests: number;
}

interface Pending { feeds: Record<string, Float32Array>; resolve: (r: RunResult) => void; reject: (e: unknown) => void }

export class RequestBatcher {
  private readonly queue: Pending[] = [];
  private inFlight = 0;
  private lends = true;
  private readonly counts: BatchingStats = { requests: 0, batches: 0, batchedRequests: 0 };

  /**
   * `one` runs the model at batch 1, `many` at batch maxBatch (the same model and options): every input and output
   * has that first dimension. `maxInFlight`: inferences waiting for the GPU at once (the sessions' own default is 2).
   */
  constructor(readonly one: Session, readonly many: Session, readonly maxBatch: number, private readonly maxInFlight = 2) {
    const src = one.graph.source;
    if (!Number.isInteger(maxBatch) || maxBatch < 2) throw invalid(src, `maxBatch must be a whole number >= 2, got ${maxBatch}`);
    for (const [s, b] of [[one, 1], [many, maxBatch]] as const) {
      for (const x of [...s.inputNames, ...s.outputNames]) {
        const shape = s.graph.tensors.get(x)?.shape ?? [];
        if (shape[0] !== b) throw invalid(src, `batching requests needs a first (batch) dimension on every input and output: '${x}' has shape [${shape.join(',')}] at batch ${b}`);
      }
    }
  }

  /** One request: a Float32Array per input, at batch 1. Resolves with the request's own outputs (batch 1). */
  async run(feeds: Record<string, Float32Array>): Promise<RunResult> {
    for (const x of this.one.inputNames) {
      const n = this.one.inputShapes[x].reduce((a, b) => a * b, 1);
      if (!(feeds[x] instanceof Float32Array) || feeds[x].length !== n) throw invalid(this.one.graph.source, `input '${x}' needs a Float32Array of ${n} values`);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ feeds, resolve, reject });
      this.pump();
    });
  }

  stats(): BatchingStats { return { ...this.counts }; }

  dispose(): void {
    this.one.dispose();
    this.many.dispose();
  }

  private pump(): void {
    while (this.queue.length && this.inFlight < this.maxInFlight) {
      // Something in flight: wait for it, or for a full batch, so that the requests arriving meanwhile go together.
      if (this.inFlight > 0 && this.queue.length < this.maxBatch) return;
      const take = this.queue.splice(0, this.maxBatch);
      this.inFlight++;
      this.counts.requests += take.length;
      const done = take.length === 1 ? this.runOne(take[0]) : this.runMany(take);
      // Count the inference done one event-loop turn later: callers whose requests it answered send their next ones
      // from promise continuations, and those run first, so that they join the next batch. Deciding at once would
      // start the one or two already queued without them (requests alone and in part batches by turns: no faster
      // than one at a time on an H100).
      void done.finally(() => nextTurn(() => {
        this.inFlight--;
        this.pump();
      }));
    }
  }

  private async lentInputs(): Promise<Record<string, Float32Array>> {
    if (!this.lends) return {};
    try {
      return await this.many.stagingInputs();
    } catch (e) {
      // A session that lends no staging memory (split into sub-batches) says so once; the arrays serve.
      if (e instanceof FcmError && e.kind === 'unsupported') {
        this.lends = false;
        return {};
      }
      throw e;
    }
  }

  private async runOne(p: Pending): Promise<void> {
    try {
      p.resolve(await this.one.run(p.feeds));
    } catch (e) {
      p.reject(e);
    }
  }

  private async runMany(ps: Pending[]): Promise<void> {
    this.counts.batches++;
    this.counts.batchedRequests += ps.length;
    try {
      // The requests are packed where the batch session's upload copies from (its lent staging memory), so a batch
      // costs one host copy of its inputs, not an allocation and two copies; an input the session lends no memory
      // for (a split session lends none) is packed into a new array. Slots past the requests are zeros.
      const lent = await this.lentInputs();
      const feeds: Record<string, Float32Array> = {};
      for (const x of this.one.inputNames) {
        const n = ps[0].feeds[x].length;
        const packed = lent[x] ?? new Float32Array(n * this.maxBatch);
        ps.forEach((p, i) => packed.set(p.feeds[x], i * n));
        if (lent[x]) packed.fill(0, ps.length * n);
        feeds[x] = packed;
      }
      const r = await this.many.run(feeds);
      ps.forEach((p, i) => {
        const own: RunResult = {};
        for (const y of this.one.outputNames) {
          const o = r[y];
          const n = o.data.length / this.maxBatch;
          own[y] = { ...o, shape: [1, ...o.shape.slice(1)], data: o.data.slice(i * n, (i + 1) * n), ...(o.raw ? { raw: o.raw.slice(i * n, (i + 1) * n) } : {}) };
        }
        p.resolve(own);
      });
    } catch (e) {
      for (const p of ps) p.reject(e);
    }
  }
}

/** A batch-1 session and a batch-maxBatch session of `model` (load options' batch set for each), batching requests. */
export async function createBatchingSession(model: ModelInput, options: SessionOptions & { maxBatch: number }): Promise<RequestBatcher> {
  const { maxBatch, ...rest } = options;
  const one = await createSession(model, { ...rest, batch: 1 });
  try {
    const many = await createSession(model, { ...rest, batch: maxBatch });
    try {
      return new RequestBatcher(one, many, maxBatch);
    } catch (e) {
      many.dispose();
      throw e;
    }
  } catch (e) {
    one.dispose();
    throw e;
  }
}
