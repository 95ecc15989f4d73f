// GPU timing of a session's dispatches, from timestamp queries (wall time per dispatch where the adapter has none).
// Three ways, for three questions:
//   perDispatch: each dispatch in its own timestamped pass (profile(): which node costs what; adds a pass's
//                overhead to every dispatch);
//   onePass:     all dispatches in one timestamped pass (what run() costs the GPU without submission and read-back);
//   groups:      each group of dispatches repeated in one timestamped pass, every group in one submission after a
//                heat (the per-module figures: the steady state of a busy GPU, as inside run()'s pass).
// The query sets and their buffers are the session's (created on first use, counted in its stats), so timing again
// allocates nothing.

import { unsupported } from '../errors.js';
import { type Dispatch, type GpuObjects, encodeDispatches, wallTimeDispatch } from './gpu.js';

interface Queries { querySet: GPUQuerySet; resolve: GPUBuffer; read: GPUBuffer; n: number }

const ms = (ts: BigUint64Array, k: number) => (ts[2 * k + 1] > ts[2 * k] ? Number(ts[2 * k + 1] - ts[2 * k]) / 1e6 : 0);

export class DispatchTimer {
  private perDispatchQ?: Queries;
  private passQ?: Queries;
  private groupQ?: Queries;

  constructor(private readonly gpu: GpuObjects, private readonly source: string) {}

  get timestamps(): boolean { return this.gpu.ctx.timestamps; }

  /** Queries for `n` timed passes. */
  private queries(n: number, label: string): Queries {
    const G = GPUBufferUsage;
    return {
      querySet: this.gpu.querySet(2 * n),
      resolve: this.gpu.buffer(16 * n, G.QUERY_RESOLVE | G.COPY_SRC, label),
      read: this.gpu.buffer(16 * n, G.MAP_READ | G.COPY_DST, `${label} read`),
      n,
    };
  }

  /** Resolves `m` passes' timestamps, submits `enc` and returns each pass's GPU time (ms). */
  private async submit(enc: GPUCommandEncoder, q: Queries, m: number): Promise<number[]> {
    const bytes = 16 * m;
    enc.resolveQuerySet(q.querySet, 0, 2 * m, q.resolve, 0);
    enc.copyBufferToBuffer(q.resolve, 0, q.read, 0, bytes);
    this.gpu.ctx.device.queue.submit([enc.finish()]);
    await q.read.mapAsync(GPUMapMode.READ, 0, bytes);
    const ts = new BigUint64Array(q.read.getMappedRange(0, bytes).slice(0));
    q.read.unmap();
    return Array.from({ length: m }, (_, k) => ms(ts, k));
  }

  /**
   * Each dispatch of `list` in its own timestamped pass, up to 2048 passes per command buffer (a query set holds
   * 4096 timestamps); `heat`: that many untimed repetitions of `heatList` in one pass ahead of the first timed one,
   * in the same submission. `maxList`: the longest list this session times (sizes the query set once).
   */
  async perDispatch(list: readonly Dispatch[], maxList: number, heat = 0, heatList: readonly Dispatch[] = list): Promise<number[]> {
    if (!this.timestamps) {
      const r: number[] = [];
      for (const x of list) r.push(await wallTimeDispatch(this.gpu, x));
      return r;
    }
    const chunk = 2048;
    this.perDispatchQ ??= this.queries(Math.max(1, Math.min(chunk, maxList)), 'timestamps');
    const q = this.perDispatchQ;
    const times: number[] = [];
    for (let c0 = 0; c0 < list.length; c0 += q.n) {
      const m = Math.min(q.n, list.length - c0);
      const enc = this.gpu.encoder();
      if (c0 === 0 && heat > 0) {
        const pass = enc.beginComputePass();
        encodeDispatches(pass, heatList, heat);
        pass.end();
      }
      for (let k = 0; k < m; k++) {
        const pass = enc.beginComputePass({ timestampWrites: { querySet: q.querySet, beginningOfPassWriteIndex: 2 * k, endOfPassWriteIndex: 2 * k + 1 } });
        encodeDispatches(pass, [list[c0 + k]]);
        pass.end();
      }
      times.push(...await this.submit(enc, q, m));
    }
    return times;
  }

  /**
   * GPU time (ms) of one pass holding every dispatch of `list`; `heat`: that many untimed repetitions of `list` in a
   * pass before it, in the same submission. Exit 3 without timestamp queries.
   */
  async onePass(list: readonly Dispatch[], heat = 0): Promise<number> {
    if (!this.timestamps) throw unsupported(this.source, 'the adapter has no timestamp queries');
    this.passQ ??= this.queries(1, 'pass timestamps');
    const enc = this.gpu.encoder();
    if (heat > 0) {
      const warm = enc.beginComputePass();
      encodeDispatches(warm, list, heat);
      warm.end();
    }
    const pass = enc.beginComputePass({ timestampWrites: { querySet: this.passQ.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
    encodeDispatches(pass, list);
    pass.end();
    return (await this.submit(enc, this.passQ, 1))[0];
  }

  /**
   * GPU time (ms per repetition) of each list, timed as one pass holding it `iters` times: after about `heatMs` of
   * the first non-empty list's untimed passes (each submission awaited: an idle GPU's clock ramps up), every list in
   * one submission, each timed pass behind an untimed one of the same dispatches. 0 for an empty list.
   */
  async groups(lists: readonly (readonly Dispatch[])[], iters: number, heatMs: number): Promise<number[]> {
    if (!this.timestamps) throw unsupported(this.source, 'the adapter has no timestamp queries');
    const d = this.gpu.ctx.device;
    const repeat = (enc: GPUCommandEncoder, list: readonly Dispatch[], desc: GPUComputePassDescriptor = {}) => {
      const pass = enc.beginComputePass(desc);
      encodeDispatches(pass, list, iters);
      pass.end();
    };
    const timed = lists.map((l, i) => [l, i] as const).filter(([l]) => l.length > 0);
    const out: number[] = lists.map(() => 0);
    if (!timed.length) return out;
    for (const t0 = performance.now(); performance.now() - t0 < heatMs;) {
      const enc = this.gpu.encoder();
      repeat(enc, timed[0][0]);
      d.queue.submit([enc.finish()]);
      await d.queue.onSubmittedWorkDone();
    }
    // The GPU never waits on the host between two groups (reading each group's timestamps back let the clock drop
    // between nodes of a few us at batch 1), and each timed pass starts from its own kernels' state.
    const q = this.groupQueries(timed.length);
    const enc = this.gpu.encoder();
    timed.forEach(([list], k) => {
      repeat(enc, list);
      repeat(enc, list, { timestampWrites: { querySet: q.querySet, beginningOfPassWriteIndex: 2 * k, endOfPassWriteIndex: 2 * k + 1 } });
    });
    const t = await this.submit(enc, q, timed.length);
    timed.forEach(([, i], k) => { out[i] = t[k] / iters; });
    return out;
  }

  /** Queries for `n` groups, kept and grown when more are asked for. */
  private groupQueries(n: number): Queries {
    if (n > 2048) throw unsupported(this.source, `timeNodes: ${n} groups in one call; a query set holds 4096 timestamps (2048 groups)`);
    if (!this.groupQ || this.groupQ.n < n) {
      if (this.groupQ) this.gpu.release(this.groupQ.querySet);
      this.groupQ = this.queries(n, 'node timestamps');
    }
    return this.groupQ;
  }
}
