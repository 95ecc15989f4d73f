// A session at batch B that runs each run() as k inferences of B/k images on an executor made for batch B/k, in flight
// together, so that the host's copy of one sub-batch's feeds into staging memory overlaps the GPU's work on the one
// before: copy 1, submit; copy 2 while the GPU runs 1; ...; wait for the last. From a caller's Float32Array the copy
// into mapped staging memory is a host memcpy (6-8 GB/s on an H100 machine: 2.5-3.4 ms of a 5.8 ms batch-32
// MobileNetV2 run, the GPU waiting for all of it); split, the GPU starts after the first 1/k and the run takes about
// max(copy, GPU) + min(copy, GPU) / k.
//
// Each sub-run is an ordinary executor run (src/runtime/executor.ts): its feeds are views (subarray) of the caller's
// arrays, no copy; its outputs are read straight into views of the batch-B result (run()'s outputArrays; float32
// sessions) or, for the other precisions, copied there. The executor overlaps them by itself: a run encodes and
// submits in a serial section that ends at its submit, and waits for its outputs outside it, so the next run's copy
// and submit follow at once, provided it finds a free read-back set and a mapped staging buffer. The executor is made
// with k read-back sets per run in flight (maxInFlight k * m) and so a staging ring of k * m + 1 buffers of B/k
// images: no sub-run waits for an earlier one's completion before copying.
//
// GPU-resident feeds and outputs are split too (one executor; a second at batch B would double the activation
// memory): a GPU buffer feed is copied on the GPU into one scratch buffer per sub-batch (at its byte offset) in one
// submit ahead of the sub-runs, and outputs left on the GPU are gathered from per-sub-batch scratch buffers into the
// batch-B buffer in one submit after them (GPU copies: about 20 us for a batch-32 224x224 input on an H100). The
// scratch buffers are the session's, made on the first such run; runs that use them go one at a time.
//
// Stats, host times and profiles are of the whole batch: k times the sub-run's dispatches and submits, the sub-runs'
// host work summed per run() (the wait: what is left of the run's wall time), per-node GPU times summed over the k
// sub-batches. Staging memory cannot be lent
// (stagingInputs): the k sub-runs' staging buffers are not one contiguous array.

import { type Graph, type Tensor, numel } from '../graph/ir.js';
import { invalid, unsupported } from '../errors.js';
import {
  type Executor, type GpuOutput, type GpuRunResult, type Profile, type RunFeeds, type RunOptions, type Session, type SessionStats,
  type StepProfile,
} from './executor.js';
import { scoped } from './gpu.js';
import type { PrecisionName, RunOutput, RunResult } from './precision.js';
import type { HostTimes } from './transfer.js';

const isGpuBuffer = (v: unknown): v is GPUBuffer => typeof GPUBuffer !== 'undefined' && v instanceof GPUBuffer;
type HostArray = Float32Array | Int8Array | Uint8Array;
const isHostArray = (v: unknown): v is HostArray => v instanceof Float32Array || v instanceof Int8Array || v instanceof Uint8Array;

/** `g` (the executor's graph at batch b) with the first dimension of every tensor computed from an input times k. */
function scaledGraph(g: Graph, k: number): Graph {
  const fromInput = new Set(g.inputs);
  for (const n of g.nodes) if (n.inputs.some((x) => x && fromInput.has(x))) for (const y of n.outputs) if (y) fromInput.add(y);
  const tensors = new Map<string, Tensor>();
  for (const [name, t] of g.tensors) tensors.set(name, fromInput.has(name) && t.shape.length ? { ...t, shape: [t.shape[0] * k, ...t.shape.slice(1)] } : t);
  return { ...g, tensors };
}

export class SubBatchSession implements Session {
  readonly graph: Graph;
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly inputShapes: Record<string, number[]>;
  readonly path: PrecisionName;
  private runs = 0;
  /** Host time waiting for the GPU, per run() the wall time less the sub-runs' host work (they wait at once). */
  private waitMs = 0;
  private disposed = false;
  /** Runs that use the scratch buffers, one at a time. */
  private scratchQueue: Promise<unknown> = Promise.resolve();
  /** Per sub-batch, by input (GPU buffer feeds) or output root (outputs left on the GPU). */
  private readonly scratch = new Map<string, GPUBuffer[]>();

  /**
   * `inner`: the executor at batch B/k (made with maxInFlight k * maxInFlight); `k` sub-batches per run; `imageInputs`:
   * the inputs it takes as image bytes.
   */
  constructor(readonly inner: Executor, readonly k: number, private readonly maxInFlight: number, private readonly imageInputs: ReadonlySet<string> = new Set()) {
    if (!Number.isInteger(k) || k < 2) throw new Error(`internal: ${k} sub-batches`);
    this.graph = scaledGraph(inner.graph, k);
    this.inputNames = [...inner.inputNames];
    this.outputNames = [...inner.outputNames];
    this.inputShapes = Object.fromEntries(this.inputNames.map((x) => [x, [...this.graph.tensors.get(x)!.shape]]));
    this.path = inner.path;
  }

  private shape(t: string): number[] { return this.graph.tensors.get(t)!.shape; }

  /** The k sub-runs' feeds: views of host arrays, scratch buffers for GPU buffers (gpu: the feeds to copy there). */
  private splitFeeds(feeds: RunFeeds): { subs: RunFeeds[]; gpu: [string, GPUBuffer][] } {
    const src = this.graph.source;
    if (typeof feeds !== 'object' || feeds === null) throw invalid(src, 'run() takes an object of named Float32Arrays');
    for (const x of Object.keys(feeds)) if (!this.inputNames.includes(x)) throw invalid(src, `'${x}' is not an input of the model (inputs: ${this.inputNames.join(', ')})`);
    const subs: RunFeeds[] = Array.from({ length: this.k }, () => ({}));
    const gpu: [string, GPUBuffer][] = [];
    for (const x of this.inputNames) {
      const v = feeds[x];
      const shape = this.shape(x), n = numel(shape), bytes = 4 * n;
      if (isGpuBuffer(v)) {
        // As the executor checks them, before anything is copied (the size: the batch's).
        // Float32 values: fp32 and fp16 sessions take them (fp16: rounded on the GPU), int8 ones where the input is
        // quantized on the GPU; never for an input with image options.
        if ((this.path === 'int8' && !this.inner.stats().inputQuantizers.includes(x)) || this.imageInputs.has(x)) {
          throw unsupported(`${src}: input '${x}'`, `GPU buffer feeds hold float32 values: this ${this.path} session has no float32 way onto the GPU for this input (an input with image options, or one the host reads)`);
        }
        if (!(v.usage & GPUBufferUsage.COPY_SRC)) throw invalid(src, `input '${x}': the GPU buffer fed needs usage COPY_SRC`);
        if (v.size < bytes) throw invalid(src, `input '${x}': the GPU buffer fed has ${v.size} bytes, the input takes [${shape.join(',')}] float32 = ${bytes}`);
        gpu.push([x, v]);
        continue;
      }
      if (!isHostArray(v)) throw invalid(src, `input '${x}' must be a Float32Array${this.path === 'int8' ? ' (or its 8-bit values)' : ''} of ${n} values [${shape.join(',')}]`);
      if (v.length !== n) throw invalid(src, `input '${x}' has ${v.length} values, the model takes [${shape.join(',')}] = ${n}`);
      const m = n / this.k;
      subs.forEach((s, i) => { s[x] = v.subarray(i * m, (i + 1) * m); });
    }
    return { subs, gpu };
  }

  /** The session's scratch buffers of `key`, one per sub-batch, of `bytes` each (made on first use). */
  private scratchOf(key: string, bytes: number, usage: number): GPUBuffer[] {
    let list = this.scratch.get(key);
    if (!list) {
      list = Array.from({ length: this.k }, (_, i) => this.inner.gpu.buffer(bytes, usage, `sub-batch ${i} ${key}`));
      this.scratch.set(key, list);
    }
    return list;
  }

  /** Calls that use the scratch buffers, in the order they were made. */
  private withScratch<T>(f: () => Promise<T>): Promise<T> {
    const r = this.scratchQueue.then(f, f);
    this.scratchQueue = r.catch(() => undefined);
    return r;
  }

  run(feeds: RunFeeds, opts: RunOptions & { outputLocation: 'gpu' }): Promise<GpuRunResult>;
  run(feeds: RunFeeds, opts?: RunOptions & { outputLocation?: 'host' }): Promise<RunResult>;
  async run(feeds: RunFeeds, opts?: RunOptions): Promise<RunResult | GpuRunResult> {
    if (this.disposed) throw invalid(this.graph.source, 'the session was disposed');
    const { subs, gpu } = this.splitFeeds(feeds);
    if (opts !== undefined && (typeof opts !== 'object' || opts === null)) throw invalid(this.graph.source, 'run() options must be an object');
    const onGpu = opts?.outputLocation === 'gpu';
    const t0 = performance.now(), h0 = this.inner.hostTimes();
    const r = gpu.length || onGpu ? await this.withScratch(() => this.runSplit(subs, gpu, opts)) : await this.runSplit(subs, gpu, opts);
    const h1 = this.inner.hostTimes();
    const work = h1.uploadMs - h0.uploadMs + h1.encodeMs - h0.encodeMs + h1.submitMs - h0.submitMs + h1.readMs - h0.readMs;
    this.waitMs += Math.max(0, performance.now() - t0 - work);
    this.runs++;
    return r;
  }

  private async runSplit(subs: RunFeeds[], gpuFeeds: [string, GPUBuffer][], opts: RunOptions | undefined): Promise<RunResult | GpuRunResult> {
    const ctx = this.inner.ctx, k = this.k;
    if (gpuFeeds.length) {
      const S = GPUBufferUsage.STORAGE, CS = GPUBufferUsage.COPY_SRC, CD = GPUBufferUsage.COPY_DST;
      await scoped(ctx, `${this.graph.source}: copying GPU feeds into sub-batches`, () => {
        const enc = this.inner.gpu.encoder();
        for (const [x, b] of gpuFeeds) {
          const bytes = 4 * numel(this.shape(x)) / k;
          const list = this.scratchOf(`input ${x}`, bytes, S | CS | CD);
          list.forEach((dst, i) => { enc.copyBufferToBuffer(b, i * bytes, dst, 0, bytes); subs[i][x] = dst; });
        }
        ctx.device.queue.submit([enc.finish()]);
      });
    }
    if (opts?.outputLocation === 'gpu') return this.runToGpu(subs, opts);
    return this.runToHost(subs, opts);
  }

  /** The k sub-runs, started together; waits for all of them (a failed one's error is thrown after the rest settle). */
  private async all<T>(runs: Promise<T>[]): Promise<T[]> {
    const settled = await Promise.allSettled(runs);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
  }

  private async runToHost(subs: RunFeeds[], opts: RunOptions | undefined): Promise<RunResult> {
    const src = this.graph.source, k = this.k;
    const names = opts?.outputs ?? this.outputNames;
    // Float32 sessions read each sub-run's outputs into views of the batch's arrays (the caller's, or new ones): one
    // array per aliased tensor, as the executor does.
    const into = new Map<string, Float32Array>();
    if (this.path === 'fp32' && Array.isArray(names)) {
      const given = opts?.outputArrays ?? {};
      for (const [y, a] of Object.entries(given)) {
        if (!names.includes(y)) throw invalid(src, `outputArrays names '${y}', which is not an output asked for`);
        const n = this.graph.tensors.get(y) ? numel(this.shape(y)) : NaN;
        if (names.includes(y) && (!(a instanceof Float32Array) || a.length !== n)) throw invalid(src, `outputArrays['${y}'] must be a Float32Array of ${n} values`);
      }
      for (const y of names) {
        if (!this.outputNames.includes(y)) continue;
        const root = this.inner.root(y);
        if (!into.has(root)) into.set(root, given[y] ?? new Float32Array(numel(this.shape(y))));
      }
    }
    const subOpts = (i: number): RunOptions => {
      if (!into.size) return { ...opts };
      const arrays: Record<string, Float32Array> = {};
      const seen = new Set<string>();
      for (const y of names) {
        const root = this.inner.root(y), a = into.get(root);
        if (!a || seen.has(root)) continue;
        seen.add(root);
        const m = a.length / k;
        arrays[y] = a.subarray(i * m, (i + 1) * m);
      }
      return { ...opts, outputArrays: arrays };
    };
    const parts = await this.all(subs.map((f, i) => this.inner.run(f, subOpts(i) as RunOptions & { outputLocation?: 'host' })));
    const out: RunResult = Object.create(null);
    for (const y of Object.keys(parts[0])) {
      const first = parts[0][y];
      const shape = [first.shape[0] * k, ...first.shape.slice(1)];
      const whole = into.get(this.inner.root(y));
      out[y] = whole ? { ...first, shape, data: whole } : concat(parts.map((p) => p[y]), shape);
    }
    return out;
  }

  private async runToGpu(subs: RunFeeds[], opts: RunOptions): Promise<GpuRunResult> {
    const ctx = this.inner.ctx, src = this.graph.source, k = this.k;
    const names = opts.outputs ?? this.outputNames;
    const given = opts.outputBuffers ?? {};
    if (!Array.isArray(names)) throw invalid(src, 'outputs must be a non-empty array of output names');
    for (const [y, b] of Object.entries(given)) {
      if (!names.includes(y)) throw invalid(src, `outputBuffers names '${y}', which is not an output asked for`);
      if (!this.outputNames.includes(y)) continue;
      const bytes = 4 * numel(this.shape(y));
      if (!isGpuBuffer(b)) throw invalid(src, `outputBuffers['${y}'] must be a GPUBuffer`);
      if (!(b.usage & GPUBufferUsage.COPY_DST)) throw invalid(src, `outputBuffers['${y}'] needs usage COPY_DST`);
      if (b.size < bytes) throw invalid(src, `outputBuffers['${y}'] has ${b.size} bytes, output '${y}' takes ${bytes}`);
    }
    const S = GPUBufferUsage.STORAGE, CS = GPUBufferUsage.COPY_SRC, CD = GPUBufferUsage.COPY_DST;
    const subOpts = (i: number): RunOptions => {
      const buffers: Record<string, GPUBuffer> = {};
      for (const y of names) {
        if (!this.outputNames.includes(y)) continue;
        buffers[y] = this.scratchOf(`output ${y}`, 4 * numel(this.shape(y)) / k, S | CS | CD)[i];
      }
      return { ...opts, outputBuffers: buffers };
    };
    const parts = await this.all(subs.map((f, i) => this.inner.run(f, { ...subOpts(i), outputLocation: 'gpu' })));
    // Every sub-run's copies are submitted: gather the sub-batches into the batch's buffers, after them in queue order.
    return scoped(ctx, `${src}: gathering sub-batch outputs`, () => {
      const out: GpuRunResult = Object.create(null);
      const enc = this.inner.gpu.encoder();
      for (const y of Object.keys(parts[0])) {
        const first: GpuOutput = parts[0][y];
        const bytes = first.byteLength;
        const buffer = given[y] ?? ctx.device.createBuffer({ size: k * bytes, usage: S | CS | CD, label: `output ${y}` });
        parts.forEach((p, i) => enc.copyBufferToBuffer(p[y].buffer, 0, buffer, i * bytes, bytes));
        out[y] = { shape: [first.shape[0] * k, ...first.shape.slice(1)], dtype: first.dtype, buffer, byteLength: k * bytes };
      }
      ctx.device.queue.submit([enc.finish()]);
      return out;
    });
  }

  async profile(feeds?: RunFeeds, opts?: { heatRuns?: number }): Promise<Profile> {
    if (this.disposed) throw invalid(this.graph.source, 'the session was disposed');
    let subs: (RunFeeds | undefined)[] = Array.from({ length: this.k }, () => undefined);
    if (feeds !== undefined) {
      const split = this.splitFeeds(feeds);
      if (split.gpu.length) throw unsupported(this.graph.source, 'profiling a session split into sub-batches takes host feeds, not GPU buffers');
      subs = split.subs;
    }
    const profiles: Profile[] = [];
    for (const f of subs) profiles.push(await this.inner.profile(f, opts));
    // Each sub-batch runs the same steps in the same order: GPU time per step and per node, summed over them.
    const sum = <T extends { ms: number }>(lists: T[][]): T[] => lists[0].map((e, i) => ({ ...e, ms: lists.reduce((a, l) => a + l[i].ms, 0) }));
    const p0 = profiles[0];
    const steps: StepProfile[] = sum(profiles.map((p) => p.steps));
    const nodes = sum(profiles.map((p) => p.nodes));
    const b = this.shape(this.inputNames[0])[0] / this.k;
    return { ...p0, note: `${p0.note ?? ''}${p0.note ? '; ' : ''}summed over ${this.k} sub-batches of ${b}`, totalMs: nodes.reduce((a, n) => a + n.ms, 0), nodes, steps };
  }

  stats(): SessionStats {
    const s = this.inner.stats(), k = this.k;
    return {
      ...s,
      dispatchesPerRun: k * s.dispatchesPerRun,
      passesPerRun: k * s.passesPerRun,
      commandBuffersPerRun: k * s.commandBuffersPerRun,
      submitsPerRun: k * s.submitsPerRun,
      readBacksPerRun: k * s.readBacksPerRun,
      runs: this.runs,
      maxInFlight: this.maxInFlight,
      subBatches: k,
    };
  }

  /** The sub-runs' host times summed, but the wait: the runs' wall time less the rest (the k sub-runs wait at once). */
  hostTimes(): HostTimes { return { ...this.inner.hostTimes(), waitMs: this.waitMs, runs: this.runs }; }

  stagingInputs(): Promise<Record<string, Float32Array>> {
    return Promise.reject(unsupported(this.graph.source, `staging memory is lent as one array per input, and this session runs its batch as ${this.k} sub-batches with a staging buffer each; create the session with subBatches: 1 to write inputs into staging memory`));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.scratch.clear();
    this.inner.dispose();
  }
}

/** The sub-runs' outputs of one tensor laid side by side (the integer and fp16 sessions, which take no outputArrays). */
function concat(parts: RunOutput[], shape: number[]): RunOutput {
  const data = new Float32Array(numel(shape));
  let off = 0;
  for (const p of parts) { data.set(p.data, off); off += p.data.length; }
  const out: RunOutput = { ...parts[0], shape, data };
  if (parts[0].raw) {
    const raw = parts[0].raw instanceof Int8Array ? new Int8Array(data.length) : new Uint8Array(data.length);
    off = 0;
    for (const p of parts) { raw.set(p.raw!, off); off += p.raw!.length; }
    out.raw = raw;
  }
  return out;
}
