// A session: a model compiled for the device once (pipelines, weight buffers, activation buffers, bind groups,
// read-back buffers), then run any number of times. One inference = a few command buffers of one compute pass
// each, submitted as soon as encoded (SessionOptions.submitEvery), so that the GPU works while the host encodes
// the rest; nothing is created on the GPU by run(). Error scopes wrap creation and every run: validation, out-of-memory
// and internal errors, and device loss, become FcmError gpu (exit 5), since a skipped dispatch would
// otherwise read back as silent zeros.

import type { Graph, TensorData } from '../graph/ir.js';
import { FcmError, gpuFailure, invalid, unsupported } from '../errors.js';
import type { Plan } from '../planner/plan.js';
import type { HwConfig } from '../planner/hw-config.js';
import { loadModel } from '../graph/load.js';
import { toDag } from '../../converters/dag.js';
import { planFusion } from '../planner/index.js';
import { loadHw } from '../planner/hw.js';
import { fuseEpilogues } from '../rewrite/epilogues.js';
import { foldPads } from '../rewrite/fold-pads.js';
import { dequantizeGraph, isQuantizedGraph } from '../graph/passes/dequantize.js';
import { prepareGraph } from '../graph/prepare.js';
import { applyPlan } from '../rewrite/apply-plan.js';
import { batchOf } from '../graph/util.js';
import { foldChannelScales } from '../rewrite/channel-scale.js';
import { type Compiled, compileGraph } from './compile.js';
import { type GpuContext, acquireGpu, defaultSubmitEvery, wallTimeDispatch } from './device.js';
import { routeInt8 } from './int8-session.js';

export interface SessionOptions {
  /** GPU description for planning: a HwConfig, a .cfg/.json path, a shipped name, or 'auto' (the adapter; default). */
  hw?: HwConfig | string;
  /** 'auto' (default): plan with fcm-opt's planner and fuse; 'unfused': epilogues only; or a Plan to apply. */
  plan?: 'auto' | 'unfused' | Plan;
  /** Value for a symbolic batch dimension (model files). */
  batch?: number;
  /** Static shapes for inputs with symbolic dims (model files). */
  inputShapes?: Record<string, number[]>;
  /** Extra tensors to return from run() besides the graph outputs (e.g. intermediates for per-layer checks). */
  extraOutputs?: string[];
  /** Quantized graphs: 'auto' (default) runs them with integer kernels when every node has one, else dequantized. */
  int8?: 'auto' | 'dequantize';
  /** Dispatches per submitted command buffer (default device.ts defaultSubmitEvery; 0: the whole inference in one). */
  submitEvery?: number;
}

export { defaultSubmitEvery };

export interface RunResult {
  [name: string]: { data: Float32Array; shape: number[] };
}

export interface SessionStats {
  /** Compute dispatches in one run(), and its compute passes (one per submitted command buffer). */
  dispatchesPerRun: number;
  passesPerRun: number;
  /** GPU objects this session created; run() creates none. Pipelines found in the device's cache are not counted. */
  pipelinesCreated: number;
  buffersCreated: number;
  bindGroupsCreated: number;
  /** Activation memory: allocated by lifetime planning, and what one buffer per tensor would take. */
  activationBytes: number;
  activationBytesUnshared: number;
  weightBytes: number;
  runs: number;
}

export interface NodeProfile {
  node: string;
  op: string;
  programs: string[];
  ms: number;
}

export interface Profile {
  method: 'timestamp' | 'wall';
  note?: string;
  totalMs: number;
  nodes: NodeProfile[];
}

export interface Session {
  readonly graph: Graph;
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly inputShapes: Record<string, number[]>;
  run(feeds: Record<string, Float32Array>): Promise<RunResult>;
  /**
   * Per-node GPU time (timestamp queries where the adapter has them, else per-node wall time). `heatRuns`: that
   * many untimed inferences in one pass ahead of the timed passes, in the same submission, so that the timed
   * dispatches run at the clock of a busy GPU (an idle H200 runs at 345 of 1980 MHz).
   */
  profile(feeds?: Record<string, Float32Array>, opts?: { heatRuns?: number }): Promise<Profile>;
  /**
   * GPU time (ms) of one inference's single compute pass, from timestamp queries at its start and end: what
   * run() costs on the GPU without submission and read-back. Exit 3 when the adapter has no timestamp queries.
   */
  passGpuMs(feeds?: Record<string, Float32Array>): Promise<number>;
  /**
   * GPU time (ms per repetition) of each group's dispatches (the nodes of a module, in execution order), timed as
   * one compute pass holding them `iters` times: after about `heatMs` of the first group's untimed, every group in
   * one submission, each timed pass behind an untimed one of the same dispatches: the steady state of a busy GPU,
   * as inside run()'s single pass (the per-module figures; one pass per dispatch, as profile() times,
   * adds a pass's overhead to every dispatch). 0 for a group without dispatches. Exit 3 without timestamp queries.
   */
  timeNodes(groups: readonly (readonly string[])[], opts?: { iters?: number; heatMs?: number }): Promise<number[]>;
  stats(): SessionStats;
  dispose(): void;
}

export type ModelInput = string | Uint8Array | Graph;

const isGraph = (m: ModelInput): m is Graph => typeof m === 'object' && !(m instanceof Uint8Array) && 'nodes' in m;

/** The graph the executor runs for these options: epilogues folded, and fused modules for 'auto' or a Plan. */
export async function prepareForRun(model: ModelInput, options: SessionOptions, gpu?: () => Promise<GpuContext>): Promise<Graph> {
  const g0 = isGraph(model) ? model : await loadModel(model, { batch: options.batch, inputShapes: options.inputShapes });
  // The kernels are float: quantized (TFLite int8) graphs run with dequantized weights and activations.
  const g = isQuantizedGraph(g0) ? prepareGraph(dequantizeGraph(g0)) : g0;
  const plan = options.plan ?? 'auto';
  if (plan === 'unfused') return foldPads(fuseEpilogues(g));
  if (plan !== 'auto') return foldPads(applyPlan(g, plan));
  let hw: HwConfig;
  if (typeof options.hw === 'object') hw = options.hw;
  else if (options.hw && options.hw !== 'auto') hw = loadHw(options.hw);
  else {
    if (!gpu) throw unsupported('--hw auto', 'no WebGPU adapter to describe');
    const ctx = await gpu();
    hw = loadHw('auto', { adapter: { info: ctx.adapterInfo, limits: ctx.limits as unknown as { maxComputeWorkgroupStorageSize: number } } });
  }
  const p = planFusion(toDag(g), hw, { mode: 'optimal', model: g.source, batch: batchOf(g) });
  return foldPads(applyPlan(g, p));
}

function toF32(d: TensorData, where: string): Float32Array {
  if (d instanceof Float32Array) return d;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) {
    const r = new Float32Array(d.length);
    for (let i = 0; i < d.length; i++) r[i] = Number(d[i]);
    return r;
  }
  if (d instanceof Uint16Array) throw unsupported(where, 'float16 data is not supported by the executor');
  return Float32Array.from(d as ArrayLike<number>);
}

export async function createSession(model: ModelInput, options: SessionOptions = {}): Promise<Session> {
  const routed = await routeInt8(model, options);
  if ('session' in routed) return routed.session;
  const graph0 = await prepareForRun(routed.model, options, acquireGpu);
  // Extra outputs (per-layer checks) are read back like graph outputs: they must live to the end.
  const extra = (options.extraOutputs ?? []).filter((t) => !graph0.outputs.includes(t));
  for (const t of extra) if (!graph0.tensors.has(t)) throw invalid(graph0.source, `tensor '${t}' asked for as an output does not exist`);
  // Squeeze-excite Muls fold into the pointwise Conv that reads them (src/rewrite/channel-scale.ts); after the
  // extra outputs are known, so that a tensor asked for is kept.
  const graph: Graph = foldChannelScales(extra.length ? { ...graph0, outputs: [...graph0.outputs, ...extra] } : graph0);
  const ctx = await acquireGpu();
  if (ctx.lost) throw gpuFailure('WebGPU', `the device was lost (${ctx.lost})`);
  const l = ctx.limits;
  const compiled = compileGraph(graph, { ...ctx.kernelLimits, maxStorageBufferBindingSize: l.maxStorageBufferBindingSize, maxBufferSize: l.maxBufferSize });
  const submitEvery = options.submitEvery ?? defaultSubmitEvery;
  if (!Number.isInteger(submitEvery) || submitEvery < 0) throw invalid(graph.source, `submitEvery must be a whole number >= 0, got ${submitEvery}`);
  return GpuSession.create(ctx, compiled, submitEvery);
}

interface Dispatch {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  size: [number, number, number];
  step: number;
}

async function scoped<T>(ctx: GpuContext, what: string, f: () => T | Promise<T>): Promise<T> {
  const d = ctx.device;
  if (ctx.lost) throw gpuFailure('WebGPU', `${what}: the device was lost (${ctx.lost})`);
  d.pushErrorScope('internal');
  d.pushErrorScope('out-of-memory');
  d.pushErrorScope('validation');
  let r: T | undefined;
  let thrown: unknown;
  try {
    r = await f();
  } catch (e) {
    thrown = e;
  }
  // Popped together (one round trip to Dawn instead of three), innermost first.
  const errs = await Promise.all([d.popErrorScope(), d.popErrorScope(), d.popErrorScope()]);
  return settle(ctx, what, errs, r, thrown);
}

/** The result of a scoped GPU operation, or the FcmError its error scopes or exception call for. */
function settle<T>(ctx: GpuContext, what: string, scopes: (GPUError | null)[], r: T | undefined, thrown: unknown): T {
  const errs = scopes.filter((e) => e);
  if (ctx.lost) throw gpuFailure('WebGPU', `${what}: the device was lost (${ctx.lost})`);
  if (errs.length) {
    const kind = errs[0] instanceof GPUOutOfMemoryError ? 'out of memory' : errs[0] instanceof GPUValidationError ? 'validation error' : 'internal error';
    throw gpuFailure('WebGPU', `${what}: ${kind}: ${errs[0]!.message.trim().split('\n')[0]}`);
  }
  if (thrown !== undefined) {
    if (thrown instanceof FcmError) throw thrown;
    throw gpuFailure('WebGPU', `${what}: ${(thrown as Error).message ?? String(thrown)}`);
  }
  return r as T;
}

class GpuSession implements Session {
  readonly graph: Graph;
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly inputShapes: Record<string, number[]>;
  private readonly counters = { pipelinesCreated: 0, buffersCreated: 0, bindGroupsCreated: 0, runs: 0, weightBytes: 0 };
  private readonly owned: GPUBuffer[] = [];
  private readonly tensorBuffer = new Map<string, GPUBuffer>();
  private readonly dispatches: Dispatch[] = [];
  private readonly readBack: { name: string; src: GPUBuffer; staging: GPUBuffer; bytes: number; shape: number[] }[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;
  private profiling?: { querySet: GPUQuerySet; resolve: GPUBuffer; read: GPUBuffer };
  private passQuery?: { querySet: GPUQuerySet; resolve: GPUBuffer; read: GPUBuffer };
  private nodeQuery?: { querySet: GPUQuerySet; resolve: GPUBuffer; read: GPUBuffer; n: number };

  private constructor(private readonly ctx: GpuContext, private readonly compiled: Compiled, private readonly submitEvery: number) {
    const g = compiled.graph;
    this.graph = g;
    this.inputNames = [...g.inputs];
    this.outputNames = [...g.outputs];
    this.inputShapes = Object.fromEntries(g.inputs.map((x) => [x, [...g.tensors.get(x)!.shape]]));
  }

  static async create(ctx: GpuContext, compiled: Compiled, submitEvery = defaultSubmitEvery): Promise<GpuSession> {
    const s = new GpuSession(ctx, compiled, submitEvery);
    try {
      await scoped(ctx, `${compiled.graph.source}: creating the session`, () => s.build());
    } catch (e) {
      s.dispose();
      throw e;
    }
    return s;
  }

  private buffer(size: number, usage: number, label: string, mapped = false): GPUBuffer {
    const b = this.ctx.device.createBuffer({ size: Math.max(4, Math.ceil(size / 4) * 4), usage, label, mappedAtCreation: mapped });
    this.counters.buffersCreated++;
    this.owned.push(b);
    return b;
  }

  private build(): void {
    const { graph: g, memory, steps, aliases, constants } = this.compiled;
    const d = this.ctx.device;
    const S = GPUBufferUsage.STORAGE, CS = GPUBufferUsage.COPY_SRC, CD = GPUBufferUsage.COPY_DST;
    // Weights, once per session.
    for (const name of constants) {
      const t = g.tensors.get(name)!;
      const data = toF32(t.data!, `${g.source}: tensor '${name}'`);
      const b = this.buffer(data.byteLength, S | CS, name, true);
      new Float32Array(b.getMappedRange()).set(data);
      b.unmap();
      this.counters.weightBytes += b.size;
      this.tensorBuffer.set(name, b);
    }
    // Activation slots, shared by tensors whose lifetimes do not overlap.
    const slots = memory.slotBytes.map((bytes, i) => this.buffer(bytes, S | CS | CD, `slot ${i}`));
    for (const [t, s] of memory.slotOf) this.tensorBuffer.set(t, slots[s]);
    const root = (t: string) => aliases.get(t) ?? t;
    for (const x of g.inputs) if (!this.tensorBuffer.has(root(x))) throw new Error(`internal: input '${x}' has no buffer`);
    // Pipelines (device-wide cache by cacheKey) and bind groups, once per session.
    steps.forEach((st, i) => {
      let pipeline = this.ctx.pipelines.get(st.program.cacheKey);
      if (!pipeline) {
        const module = d.createShaderModule({ code: st.program.wgsl, label: st.program.name });
        // Synchronous: createComputePipelineAsync crashes Dawn on lavapipe for some shaders.
        pipeline = d.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: st.program.name });
        this.ctx.pipelines.set(st.program.cacheKey, pipeline);
        this.counters.pipelinesCreated++;
      }
      const entries = st.bindings.map((t, binding) => {
        const buffer = this.tensorBuffer.get(t);
        if (!buffer) throw new Error(`internal: tensor '${t}' has no buffer`);
        return { binding, resource: { buffer, offset: 0, size: this.compiled.bytes.get(t)! } };
      });
      const bindGroup = d.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries, label: `${st.node.name}: ${st.program.name}` });
      this.counters.bindGroupsCreated++;
      this.dispatches.push({ pipeline, bindGroup, size: st.program.dispatch, step: i });
    });
    // Read-back buffers, once per session.
    for (const y of g.outputs) {
      const bytes = this.compiled.bytes.get(y)!;
      const src = this.tensorBuffer.get(root(y))!;
      this.readBack.push({ name: y, src, staging: this.buffer(bytes, GPUBufferUsage.MAP_READ | CD, `read ${y}`), bytes, shape: [...g.tensors.get(y)!.shape] });
    }
  }

  private checkFeeds(feeds: Record<string, Float32Array>): void {
    const g = this.graph;
    if (this.disposed) throw invalid(g.source, 'the session was disposed');
    if (typeof feeds !== 'object' || feeds === null) throw invalid(g.source, 'run() takes an object of named Float32Arrays');
    for (const k of Object.keys(feeds)) if (!g.inputs.includes(k)) throw invalid(g.source, `'${k}' is not an input of the model (inputs: ${g.inputs.join(', ')})`);
    for (const x of g.inputs) {
      const v = feeds[x];
      const shape = this.inputShapes[x];
      const n = shape.reduce((a, b) => a * b, 1);
      if (!(v instanceof Float32Array)) throw invalid(g.source, `input '${x}' must be a Float32Array of ${n} values [${shape.join(',')}]`);
      if (v.length !== n) throw invalid(g.source, `input '${x}' has ${v.length} values, the model takes [${shape.join(',')}] = ${n}`);
    }
  }

  private writeFeeds(feeds: Record<string, Float32Array>): void {
    const root = (t: string) => this.compiled.aliases.get(t) ?? t;
    for (const x of this.graph.inputs) {
      const v = feeds[x];
      this.ctx.device.queue.writeBuffer(this.tensorBuffer.get(root(x))!, 0, v.buffer, v.byteOffset, v.byteLength);
    }
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const r = this.queue.then(f, f);
    this.queue = r.catch(() => undefined);
    return r;
  }

  async run(feeds: Record<string, Float32Array>): Promise<RunResult> {
    this.checkFeeds(feeds);
    return this.serial(async () => {
      const ctx = this.ctx, d = ctx.device, what = `${this.graph.source}: run`;
      if (ctx.lost) throw gpuFailure('WebGPU', `${what}: the device was lost (${ctx.lost})`);
      // Error scopes as in scoped(), but popped right after submit so that their answer and the read-back's
      // mapping arrive in the same round trip (host overhead per inference).
      d.pushErrorScope('internal');
      d.pushErrorScope('out-of-memory');
      d.pushErrorScope('validation');
      let thrown: unknown;
      try {
        this.writeFeeds(feeds);
        const parts = this.parts();
        for (let k = 0; k < parts.length; k++) {
          const enc = d.createCommandEncoder();
          const pass = enc.beginComputePass();
          let last: GPUComputePipeline | undefined;
          for (let i = parts[k][0]; i < parts[k][1]; i++) {
            const x = this.dispatches[i];
            if (x.pipeline !== last) pass.setPipeline(x.pipeline);
            last = x.pipeline;
            pass.setBindGroup(0, x.bindGroup);
            pass.dispatchWorkgroups(x.size[0], x.size[1], x.size[2]);
          }
          pass.end();
          if (k < parts.length - 1) d.queue.submit([enc.finish()]);
          else {
            for (const r of this.readBack) enc.copyBufferToBuffer(r.src, 0, r.staging, 0, r.staging.size);
            d.queue.submit([enc.finish()]);
          }
        }
        if (!parts.length) {
          const enc = d.createCommandEncoder();
          for (const r of this.readBack) enc.copyBufferToBuffer(r.src, 0, r.staging, 0, r.staging.size);
          d.queue.submit([enc.finish()]);
        }
      } catch (e) {
        thrown = e;
      }
      const pops = Promise.all([d.popErrorScope(), d.popErrorScope(), d.popErrorScope()]);
      let out: RunResult | undefined;
      if (thrown === undefined) {
        try {
          out = await this.collect();
        } catch (e) {
          thrown = e;
        }
      }
      const r = settle(ctx, what, await pops, out, thrown);
      this.counters.runs++;
      return r;
    });
  }

  private async collect(): Promise<RunResult> {
    await Promise.all(this.readBack.map((r) => r.staging.mapAsync(GPUMapMode.READ)));
    const out: RunResult = Object.create(null);
    for (const r of this.readBack) {
      // bytes is at least 4 (WebGPU has no empty buffers); the tensor may have no elements.
      const n = r.shape.reduce((a, b) => a * b, 1);
      out[r.name] = { data: new Float32Array(r.staging.getMappedRange(0, r.staging.size).slice(0, 4 * n)), shape: r.shape };
      r.staging.unmap();
    }
    return out;
  }

  async profile(feeds?: Record<string, Float32Array>, opts: { heatRuns?: number } = {}): Promise<Profile> {
    if (feeds) this.checkFeeds(feeds);
    const heatRuns = Math.max(0, Math.floor(opts.heatRuns ?? 0));
    return this.serial(() => scoped(this.ctx, `${this.graph.source}: profile`, async () => {
      if (feeds) this.writeFeeds(feeds);
      const times = this.ctx.timestamps ? await this.timestampTimes(heatRuns) : await this.wallTimes();
      const nodes: NodeProfile[] = [];
      this.dispatches.forEach((x, i) => {
        const st = this.compiled.steps[x.step];
        const last = nodes[nodes.length - 1];
        if (last && last.node === st.node.name) { last.ms += times[i]; last.programs.push(st.program.name); }
        else nodes.push({ node: st.node.name, op: st.node.op, programs: [st.program.name], ms: times[i] });
      });
      return {
        method: this.ctx.timestamps ? 'timestamp' : 'wall',
        note: this.ctx.timestamps
          ? 'GPU time per node from timestamp queries, one compute pass per dispatch (run() uses one pass per submitted part)'
          : 'the adapter has no timestamp queries: wall time per node, one submission each, including submission overhead',
        totalMs: nodes.reduce((a, n) => a + n.ms, 0),
        nodes,
      };
    }));
  }

  async passGpuMs(feeds?: Record<string, Float32Array>): Promise<number> {
    if (feeds) this.checkFeeds(feeds);
    if (!this.ctx.timestamps) throw unsupported(this.graph.source, 'the adapter has no timestamp queries');
    return this.serial(() => scoped(this.ctx, `${this.graph.source}: timing a pass`, async () => {
      if (feeds) this.writeFeeds(feeds);
      const enc = this.ctx.device.createCommandEncoder();
      const pass = enc.beginComputePass(this.timedPass());
      for (const x of this.dispatches) {
        pass.setPipeline(x.pipeline);
        pass.setBindGroup(0, x.bindGroup);
        pass.dispatchWorkgroups(...x.size);
      }
      pass.end();
      return this.submitTimed(enc);
    }));
  }

  /** A compute pass descriptor writing the start and end timestamps that submitTimed reads. */
  private timedPass(): GPUComputePassDescriptor {
    const d = this.ctx.device;
    this.passQuery ??= {
      querySet: d.createQuerySet({ type: 'timestamp', count: 2 }),
      resolve: this.buffer(16, GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC, 'pass timestamps'),
      read: this.buffer(16, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'pass timestamps read'),
    };
    return { timestampWrites: { querySet: this.passQuery.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } };
  }

  /** Submits `enc` (holding one timedPass()) and returns the pass's GPU time in ms. */
  private async submitTimed(enc: GPUCommandEncoder): Promise<number> {
    const q = this.passQuery!;
    enc.resolveQuerySet(q.querySet, 0, 2, q.resolve, 0);
    enc.copyBufferToBuffer(q.resolve, 0, q.read, 0, 16);
    this.ctx.device.queue.submit([enc.finish()]);
    await q.read.mapAsync(GPUMapMode.READ);
    const ts = new BigUint64Array(q.read.getMappedRange(0, 16).slice(0));
    q.read.unmap();
    return ts[1] > ts[0] ? Number(ts[1] - ts[0]) / 1e6 : 0;
  }

  async timeNodes(groups: readonly (readonly string[])[], opts: { iters?: number; heatMs?: number } = {}): Promise<number[]> {
    if (!this.ctx.timestamps) throw unsupported(this.graph.source, 'the adapter has no timestamp queries');
    const iters = Math.max(1, Math.floor(opts.iters ?? 20)), heatMs = opts.heatMs ?? 10;
    const known = new Set(this.compiled.steps.map((st) => st.node.name));
    for (const g of groups) for (const n of g) if (!known.has(n)) throw invalid(this.graph.source, `timeNodes: node '${n}' runs no kernel in this session`);
    return this.serial(() => scoped(this.ctx, `${this.graph.source}: timing nodes`, async () => {
      const d = this.ctx.device;
      // One pass of `iters` repetitions of a group's dispatches.
      const repeat = (enc: GPUCommandEncoder, list: Dispatch[], desc: GPUComputePassDescriptor = {}) => {
        const pass = enc.beginComputePass(desc);
        for (let r = 0; r < iters; r++) {
          for (const x of list) {
            pass.setPipeline(x.pipeline);
            pass.setBindGroup(0, x.bindGroup);
            pass.dispatchWorkgroups(...x.size);
          }
        }
        pass.end();
      };
      const lists = groups.map((g) => {
        const names = new Set(g);
        return this.dispatches.filter((x) => names.has(this.compiled.steps[x.step].node.name));
      });
      const timed = lists.map((l, i) => [l, i] as const).filter(([l]) => l.length > 0);
      const out: number[] = groups.map(() => 0);
      if (!timed.length) return out;
      // The heat: the first group's kernels for heatMs, each submission awaited (an idle GPU's clock ramps up).
      for (const t0 = performance.now(); performance.now() - t0 < heatMs;) {
        const enc = d.createCommandEncoder();
        repeat(enc, timed[0][0]);
        d.queue.submit([enc.finish()]);
        await d.queue.onSubmittedWorkDone();
      }
      // Then every group in one submission, an untimed pass of its kernels before its timed one: the GPU never waits
      // on the host between two groups (reading each group's timestamps back let the clock drop between nodes of a
      // few us at batch 1), and each timed pass starts from its own kernels' state, not the previous group's.
      const q = this.nodeQueries(timed.length);
      const enc = d.createCommandEncoder();
      timed.forEach(([list], k) => {
        repeat(enc, list);
        repeat(enc, list, { timestampWrites: { querySet: q.querySet, beginningOfPassWriteIndex: 2 * k, endOfPassWriteIndex: 2 * k + 1 } });
      });
      const bytes = 16 * timed.length;
      enc.resolveQuerySet(q.querySet, 0, 2 * timed.length, q.resolve, 0);
      enc.copyBufferToBuffer(q.resolve, 0, q.read, 0, bytes);
      d.queue.submit([enc.finish()]);
      await q.read.mapAsync(GPUMapMode.READ, 0, bytes);
      const ts = new BigUint64Array(q.read.getMappedRange(0, bytes).slice(0));
      q.read.unmap();
      timed.forEach(([, i], k) => { out[i] = ts[2 * k + 1] > ts[2 * k] ? Number(ts[2 * k + 1] - ts[2 * k]) / 1e6 / iters : 0; });
      return out;
    }));
  }

  /** Timestamp queries for `n` timed passes (timeNodes), kept for the session and grown when more are asked for. */
  private nodeQueries(n: number): { querySet: GPUQuerySet; resolve: GPUBuffer; read: GPUBuffer; n: number } {
    if (n > 2048) throw unsupported(this.graph.source, `timeNodes: ${n} groups in one call; a query set holds 4096 timestamps (2048 groups)`);
    if (!this.nodeQuery || this.nodeQuery.n < n) {
      this.nodeQuery?.querySet.destroy();
      const d = this.ctx.device;
      this.nodeQuery = {
        querySet: d.createQuerySet({ type: 'timestamp', count: 2 * n }),
        resolve: this.buffer(16 * n, GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC, 'node timestamps'),
        read: this.buffer(16 * n, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'node timestamps read'),
        n,
      };
    }
    return this.nodeQuery;
  }

  private async timestampTimes(heatRuns: number): Promise<number[]> {
    const d = this.ctx.device;
    const n = this.dispatches.length;
    // One query set of 2 per dispatch, chunked to the 4096 queries a set may hold.
    const chunk = 2048;
    const times: number[] = [];
    for (let c0 = 0; c0 < n; c0 += chunk) {
      const m = Math.min(chunk, n - c0);
      if (!this.profiling) {
        const count = 2 * Math.min(chunk, n);
        this.profiling = {
          querySet: d.createQuerySet({ type: 'timestamp', count }),
          resolve: this.buffer(8 * count, GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC, 'timestamps'),
          read: this.buffer(8 * count, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'timestamps read'),
        };
      }
      const p = this.profiling;
      const enc = d.createCommandEncoder();
      if (c0 === 0 && heatRuns > 0) {
        const pass = enc.beginComputePass();
        for (let r = 0; r < heatRuns; r++) {
          for (const x of this.dispatches) {
            pass.setPipeline(x.pipeline);
            pass.setBindGroup(0, x.bindGroup);
            pass.dispatchWorkgroups(...x.size);
          }
        }
        pass.end();
      }
      for (let k = 0; k < m; k++) {
        const x = this.dispatches[c0 + k];
        const pass = enc.beginComputePass({ timestampWrites: { querySet: p.querySet, beginningOfPassWriteIndex: 2 * k, endOfPassWriteIndex: 2 * k + 1 } });
        pass.setPipeline(x.pipeline);
        pass.setBindGroup(0, x.bindGroup);
        pass.dispatchWorkgroups(...x.size);
        pass.end();
      }
      enc.resolveQuerySet(p.querySet, 0, 2 * m, p.resolve, 0);
      enc.copyBufferToBuffer(p.resolve, 0, p.read, 0, 16 * m);
      d.queue.submit([enc.finish()]);
      await p.read.mapAsync(GPUMapMode.READ, 0, 16 * m);
      const ts = new BigUint64Array(p.read.getMappedRange(0, 16 * m).slice(0));
      p.read.unmap();
      for (let k = 0; k < m; k++) times.push(ts[2 * k + 1] > ts[2 * k] ? Number(ts[2 * k + 1] - ts[2 * k]) / 1e6 : 0);
    }
    return times;
  }

  private async wallTimes(): Promise<number[]> {
    const d = this.ctx.device;
    const times: number[] = [];
    for (const x of this.dispatches) times.push(await wallTimeDispatch(d, x));
    return times;
  }

  /** [begin, end) dispatch ranges, one per submitted command buffer of run(). */
  private parts(): [number, number][] {
    const n = this.dispatches.length, every = this.submitEvery > 0 ? this.submitEvery : n;
    const r: [number, number][] = [];
    for (let i = 0; i < n; i += every) r.push([i, Math.min(n, i + every)]);
    return r;
  }

  stats(): SessionStats {
    return {
      dispatchesPerRun: this.dispatches.length,
      passesPerRun: this.parts().length,
      pipelinesCreated: this.counters.pipelinesCreated,
      buffersCreated: this.counters.buffersCreated,
      bindGroupsCreated: this.counters.bindGroupsCreated,
      activationBytes: this.compiled.memory.peakBytes,
      activationBytesUnshared: this.compiled.memory.unsharedBytes,
      weightBytes: this.counters.weightBytes,
      runs: this.counters.runs,
    };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const b of this.owned) b.destroy();
    this.profiling?.querySet.destroy();
    this.passQuery?.querySet.destroy();
    this.nodeQuery?.querySet.destroy();
    this.owned.length = 0;
    this.tensorBuffer.clear();
  }
}
