// The executor: a compiled schedule (src/runtime/compile.ts) made real on the device once (constant buffers,
// activation buffers shared by lifetime, pipelines, bind groups, upload staging and read-back buffers), then run any
// number of times; run() creates nothing on the GPU but what it hands over (outputs left on the GPU in new buffers)
// and the 'mapped-at-creation' upload path's staging buffer. One class for every precision (src/runtime/precision.ts says what differs).
//
// One inference: the feeds are written to their buffers (float feeds of a quantized input are quantized on the GPU
// by a feed program, in the first pass; an image input's bytes are converted by an image program), through the upload
// path of transfer.ts; GPU buffer feeds are copied on the GPU. Then the dispatches are encoded into command buffers
// of one compute pass each, submitted in parts (a small first one, then growing: device.ts) so that the GPU works
// while the host records the rest; the outputs asked for are copied to a read-back set (or to GPU buffers) in the last one. A WebGPU command
// buffer is spent by its submit and compute passes have no bundles, so every run records setPipeline (when it
// changes), setBindGroup and dispatchWorkgroups per dispatch again, on objects made once (hostTimes() gives the encode
// time). Where no host step sits in the schedule, runs submit dispatches encoded before them (encodeAhead: up to
// maxInFlight sets, refilled one event-loop turn after a submit, while the GPU works): what stands between a run's
// feeds and the GPU's start is then only the submit, and runs started together copy and submit before any encoding.
//
// Runs in flight: encoding and submitting is one run at a time (serial()), but a run waits for its outputs outside
// that section, so the next run encodes and submits meanwhile. The GPU executes submissions in order, so the runs
// share the activation buffers safely; what each run needs for itself is a read-back set and its staging memory,
// of which the session holds `maxInFlight` and the upload ring. A host step
// (int8: nodes without an integer kernel, run by the integer reference) submits what is pending, reads back what it
// needs, runs, and uploads what later dispatches read. Error scopes wrap creation and every run: validation,
// out-of-memory and internal errors, and device loss, become FcmError gpu (exit 5).

import { type DType, type Graph, type Tensor, fcmDomain, numel } from '../graph/ir.js';
import { invalid, unsupported } from '../errors.js';
import type { Value } from '../quant/run-reference.js';
import type { Compiled, HostStep, Step } from './compile.js';
import { ordered } from './compile.js';
import { type GpuContext, defaultFirstSubmit, defaultSubmitEvery, defaultSubmitGrowth } from './device.js';
import { type Dispatch, GpuObjects, checkLost, pushScopes, scoped, settle } from './gpu.js';
import type { Feeds, HostFeeds, Precision, PrecisionName, RunResult } from './precision.js';
import { DispatchTimer } from './timing.js';
import type { Int8Program } from '../../kernels/int8/common.js';
import { type ImageNormalization, imageInputProgram } from '../../kernels/image-input.js';
import { floatOutputProgram, withStorage } from '../../kernels/f16.js';
import {
  type HostTimes, type ReadSet, type UploadBatch, type UploadPath, type UploadTarget, ReadbackPool, Uploader,
  defaultRingSize, defaultUploadPath, noHostTimes, uploadPaths,
} from './transfer.js';
import { nextTurn } from './next-turn.js';
import { toHalf } from './half.js';

export interface SessionStats {
  /** Which kernels run the model: 'fp32' (float) or 'int8' (integer). */
  path: PrecisionName;
  /** Compute dispatches in one run() (feed programs not counted). */
  dispatchesPerRun: number;
  /**
   * Compute passes in one run(), per run of dispatches between host steps: the parts it is submitted in (a first
   * part of firstSubmit, later ones of submitEvery or growing by submitGrowth; ExecutorOptions).
   */
  passesPerRun: number;
  /**
   * Command buffers submitted per run(): the passes, and one more to copy outputs after a last host step; with the
   * dispatches encoded ahead, two more (the feeds' copies, the outputs' copies) that share the passes' submits.
   */
  commandBuffersPerRun: number;
  /** queue.submit calls per run(). */
  submitsPerRun: number;
  /** Whether the dispatches' command buffers are encoded before the run that submits them (no host steps). */
  encodedAhead: boolean;
  /** Waits for the GPU per run() (read-backs): 1 when no host step sits between dispatches. */
  readBacksPerRun: number;
  /** Fused modules (FCM nodes) among the dispatches. */
  fusedModules: number;
  /** Nodes run on the host (int8: by the integer reference), by name. */
  hostNodes: string[];
  /**
   * Quantized inputs whose Float32Array feeds the GPU quantizes (kernels/int8/quantize-input.ts): one dispatch more
   * per run, not counted in dispatchesPerRun, for each one fed floats.
   */
  inputQuantizers: string[];
  /** Whether the integer kernels use dot4I8Packed / dot4U8Packed. */
  dot4: boolean;
  /** fp16: the tensors kept f32 (src/runtime/f16-islands.ts), aliases included; empty where every tensor is f16. */
  f32Tensors: string[];
  /** GPU objects this session created; run() creates none. Pipelines found in the device's cache are not counted. */
  pipelinesCreated: number;
  buffersCreated: number;
  bindGroupsCreated: number;
  /** Activation memory: allocated by lifetime planning, and what one buffer per tensor would take. */
  activationBytes: number;
  activationBytesUnshared: number;
  /** Bytes of the weight buffers (float constants; int8: the kernels' prepared weights, biases, multipliers). */
  weightBytes: number;
  runs: number;
  /** How feeds reach the GPU (src/runtime/transfer.ts), and how many runs may wait for their outputs at once. */
  upload: UploadPath;
  maxInFlight: number;
  /** Inferences each run() is split into (src/runtime/sub-batch.ts); 1 for an executor. */
  subBatches: number;
  /** The plan's kernel choices this session could not take (kernels/registry.ts kernelFor's fallback notes). */
  kernelFallbacks: string[];
}

/** GPU or host time of one dispatch or host node in a profiled run. */
export interface StepProfile { node: string; op: string; program: string; where: 'gpu' | 'host'; ms: number }

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
  /** Per node (its dispatches summed), in execution order. */
  nodes: NodeProfile[];
  /** Per dispatch or host node, in execution order. */
  steps: StepProfile[];
}

/**
 * Feeds of run(): per input, host values (Feeds: a Float32Array; int8 sessions also raw 8-bit values), the bytes of
 * an image (a Uint8Array in NHWC order, for an input the session was given image options for), or a GPUBuffer of
 * this session's device holding the input's float32 values (usage COPY_SRC, at least 4 bytes per element), which is
 * copied on the GPU (and rounded to f16 or quantized there, as host floats are) and never read back to the host. A GPU
 * buffer feed stays the caller's.
 */
export type RunFeeds = Record<string, Feeds[string] | GPUBuffer>;

export interface RunOptions {
  /** The outputs to return, by name (default: every graph output). Only these are copied and read back. */
  outputs?: string[];
  /**
   * 'host' (default): outputs read back into Float32Arrays. 'gpu': outputs stay on the GPU as buffers of float32
   * values the caller owns (run() resolves once the copies are submitted; later GPU work on the same device sees them,
   * by queue order); float32 and fp16 sessions (fp16: each f16 output widened into its buffer by a dispatch).
   */
  outputLocation?: 'host' | 'gpu';
  /**
   * With 'gpu': the caller's buffers to copy outputs into (usage COPY_DST, or STORAGE for an fp16 session's f16
   * output; at least 4 bytes per element). An output without one gets a new buffer (usage STORAGE | COPY_SRC |
   * COPY_DST) that the caller owns and should destroy().
   */
  outputBuffers?: Record<string, GPUBuffer>;
  /**
   * With 'host' (float32 sessions): the caller's Float32Arrays to read outputs into (exactly the output's length),
   * reused run after run with no allocation; the result's `data` is that array. Without one an output gets a new
   * array. Two outputs aliasing one tensor (a Reshape of another output) share the first one's array.
   */
  outputArrays?: Record<string, Float32Array>;
}

/** An output left on the GPU: its float32 values in the first byteLength bytes of `buffer`. */
export interface GpuOutput { shape: number[]; dtype: DType; buffer: GPUBuffer; byteLength: number }
export type GpuRunResult = Record<string, GpuOutput>;

export interface Session {
  readonly graph: Graph;
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly inputShapes: Record<string, number[]>;
  /** Which kernels run the model: 'fp32' (float) or 'int8' (integer). */
  readonly path: PrecisionName;
  /**
   * One inference. Feeds: a Float32Array per input (int8: also the raw 8-bit values of a quantized input); outputs
   * with their real values (int8: also the raw 8-bit values and their quantization).
   */
  run(feeds: RunFeeds, opts: RunOptions & { outputLocation: 'gpu' }): Promise<GpuRunResult>;
  run(feeds: RunFeeds, opts?: RunOptions & { outputLocation?: 'host' }): Promise<RunResult>;
  /**
   * Per-node time: GPU dispatches from timestamp queries (one pass each) where the adapter has them, else per-dispatch
   * wall time; host steps as wall time. `heatRuns`: that many untimed repetitions of the first dispatches (those
   * before any host step) in one pass ahead of the timed passes, in the same submission, so that the timed dispatches
   * run at the clock of a busy GPU (an idle H200 runs at 345 of 1980 MHz). More timing: src/runtime/profile.ts.
   */
  profile(feeds?: RunFeeds, opts?: { heatRuns?: number }): Promise<Profile>;
  stats(): SessionStats;
  /**
   * Host time of every run() so far, summed (ms; divide by `runs` for one run): writing feeds (upload), encoding
   * (encode), queue.submit (submit), waiting for the GPU and host steps (wait), copying outputs out (read).
   */
  hostTimes(): HostTimes;
  /**
   * Memory for the next run's float inputs, lent from the staging memory the upload copies from (float sessions on
   * the staging-ring upload path; {} otherwise): a Float32Array per input, of the input's size. Written by the caller
   * and passed to run() as the feeds, it is copied to the GPU without a host copy. Valid until that run() takes it
   * (the run unmaps it: the arrays are then empty); memory lent and never run stays lent.
   */
  stagingInputs(): Promise<Record<string, Float32Array>>;
  dispose(): void;
}

/** A dispatch of the schedule, with the step it runs. */
export interface ScheduledDispatch extends Dispatch { step: Step }

interface Staged { name: string; src: GPUBuffer; staging: GPUBuffer }
/** A feed program: float feeds (or image bytes) are written to `floats` and converted into the input's buffer. */
interface FeedDispatch extends Dispatch { floats: GPUBuffer; name: string; label: string }
/** Feeds as checked: host values, GPU buffers to copy from, image bytes to convert. */
interface CheckedFeeds { host: HostFeeds; gpu: Map<string, GPUBuffer>; images: Map<string, Uint8Array> }
/** What a run returns: graph outputs by name, the roots read back from the GPU, and outputs left on the GPU. */
interface Wanted { names: string[]; read: string[]; gpu?: Map<string, GPUBuffer | undefined>; into?: Map<string, Float32Array> }
/** Host time of one run's parts inside encodeRun. */
interface RunClock { submitMs: number; waitMs: number }
/** What run() does, in order: a run of dispatches (then read-backs), or a host step (then uploads). */
type Phase =
  | { kind: 'gpu'; dispatches: ScheduledDispatch[]; readBack: Staged[] }
  | { kind: 'host'; step: HostStep; upload: string[] };

export interface ExecutorOptions {
  /**
   * Dispatches per submitted command buffer (0: all of a run of dispatches in one). With none of submitEvery,
   * firstSubmit and submitGrowth given, the defaults of device.ts (3, then parts growing threefold).
   */
  submitEvery?: number;
  /**
   * Dispatches in the first submitted part of a run of dispatches (default submitEvery); the later parts hold
   * submitEvery each (0: the rest in one). Dawn's Vulkan backend records a command buffer into Vulkan commands inside
   * queue.submit, so the GPU starts once the first part is recorded: a small first part starts it early, and fewer
   * parts after it cost fewer submits (each a fixed host cost and a gap on the GPU). bench/roundtrip.ts measures both.
   */
  firstSubmit?: number;
  /**
   * Each part after the first holds this many times the dispatches of the part before (default 1: every part after
   * the first holds submitEvery), capped at submitEvery where that is not 0. Parts that grow keep the GPU fed from a
   * small first part while the host records the next, larger one (recording a dispatch costs the host less than the
   * GPU spends on one at batch 1), with few submits in all.
   */
  submitGrowth?: number;
  /**
   * Encode the next run's dispatches right after a run's submit, while the GPU works (default true; only schedules
   * without host steps). false: each run encodes its own, as schedules with host steps do.
   */
  encodeAhead?: boolean;
  /** int8: whether the kernels use packed 4x8 dot products (reported in stats). */
  dot4?: boolean;
  /** How feeds reach the GPU (default transfer.ts defaultUploadPath). */
  upload?: UploadPath;
  /** Runs that may wait for their outputs at once, each with its own read-back set (default 2). */
  maxInFlight?: number;
  /** Inputs fed as 8-bit NHWC images, converted and normalised on the GPU (float32 and fp16 sessions). */
  images?: Record<string, ImageNormalization>;
}

/** Runs in flight by default: one waiting for its outputs while the next is encoded and submitted. */
export const defaultMaxInFlight = 2;

const isGpuBuffer = (v: unknown): v is GPUBuffer => typeof GPUBuffer !== 'undefined' && v instanceof GPUBuffer;

/** One run's command buffers encoded ahead (encodeAhead): its parts, and the copies of GPU feeds it may take. */
interface AheadSet { parts: GPUCommandBuffer[]; feedCopies?: { feeds: ReadonlyMap<string, GPUBuffer>; buffer: GPUCommandBuffer } }

const sameBuffers = (a: ReadonlyMap<string, GPUBuffer>, b: ReadonlyMap<string, GPUBuffer>) => a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);

/** The host arrays of a run's feeds (lent staging memory among them makes the run take it: Uploader.begin). */
function feedViews(f: CheckedFeeds): ArrayBufferView[] {
  const out: ArrayBufferView[] = [];
  for (const v of f.host.values.values()) if (ArrayBuffer.isView(v.data)) out.push(v.data);
  for (const v of f.host.floats.values()) out.push(v);
  return out;
}

export class Executor implements Session {
  readonly graph: Graph;
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly inputShapes: Record<string, number[]>;
  readonly path: PrecisionName;
  readonly gpu: GpuObjects;
  readonly timer: DispatchTimer;
  /** Every dispatch of one inference, in order (feed programs not included). */
  readonly dispatches: ScheduledDispatch[] = [];
  private readonly buffers = new Map<string, GPUBuffer>();
  private readonly phases: Phase[] = [];
  private readonly feedPrograms = new Map<string, FeedDispatch>();
  /** fp16 outputs left on the GPU: the widening program of each, and its bind group per destination buffer. */
  private readonly widen = new Map<string, { pipeline: GPUComputePipeline; size: [number, number, number]; groups: WeakMap<GPUBuffer, GPUBindGroup> }>();
  private readonly imagePrograms = new Map<string, FeedDispatch>();
  private readonly submitEvery: number;
  private readonly firstSubmit: number | undefined;
  private readonly submitGrowth: number;
  private readonly dot4: boolean;
  private readonly uploadPath: UploadPath;
  private readonly maxInFlight: number;
  private readonly images: Record<string, ImageNormalization>;
  private uploader!: Uploader;
  private readPool!: ReadbackPool;
  private readonly times: HostTimes = noHostTimes();
  private defaultWanted!: Wanted;
  private weightBytes = 0;
  private runs = 0;
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * Runs' dispatches encoded ahead (schedules without host steps; see encodeAhead): up to maxInFlight sets, refilled
   * one event-loop turn after a run submits (refillAhead), so that runs started together (requests in flight, the
   * sub-batches of a split session) each submit a set encoded before, and their host copies and submits go first.
   */
  private ahead: AheadSet[] = [];
  /**
   * The GPU buffers the last run was fed (its only feeds): the sets encoded ahead after it carry their copies into the
   * inputs too, so that the next run fed the same buffers submits without encoding anything before its first part.
   */
  private lastGpuFeeds?: ReadonlyMap<string, GPUBuffer>;
  private refillScheduled = false;
  private encodesAhead = false;
  private disposed = false;

  private constructor(readonly ctx: GpuContext, readonly compiled: Compiled, readonly precision: Precision, private readonly options: ExecutorOptions) {
    const g = compiled.graph;
    this.graph = g;
    this.inputNames = [...g.inputs];
    this.outputNames = [...g.outputs];
    this.inputShapes = Object.fromEntries(g.inputs.map((x) => [x, [...g.tensors.get(x)!.shape]]));
    this.path = precision.name;
    // Nothing given: the default growing parts (device.ts). submitEvery alone: parts of that size. firstSubmit:
    // that first part, then parts of submitEvery (0 or not given: the rest in one), growing by submitGrowth if given.
    const { submitEvery, firstSubmit, submitGrowth } = options;
    const given = submitEvery !== undefined || firstSubmit !== undefined;
    this.submitEvery = submitEvery ?? defaultSubmitEvery;
    this.firstSubmit = firstSubmit ?? (given ? undefined : defaultFirstSubmit);
    if (this.firstSubmit !== undefined && (!Number.isInteger(this.firstSubmit) || this.firstSubmit < 1)) {
      throw invalid(g.source, `firstSubmit must be a whole number >= 1, got ${this.firstSubmit}`);
    }
    this.submitGrowth = submitGrowth ?? (given ? 1 : defaultSubmitGrowth);
    if (!(Number.isFinite(this.submitGrowth) && this.submitGrowth >= 1)) throw invalid(g.source, `submitGrowth must be a number >= 1, got ${this.submitGrowth}`);
    this.dot4 = options.dot4 ?? false;
    this.uploadPath = options.upload ?? defaultUploadPath;
    if (!uploadPaths.includes(this.uploadPath)) throw invalid(g.source, `upload path must be one of ${uploadPaths.join(', ')}, got '${String(this.uploadPath)}'`);
    this.maxInFlight = options.maxInFlight ?? defaultMaxInFlight;
    if (!Number.isInteger(this.maxInFlight) || this.maxInFlight < 1) throw invalid(g.source, `maxInFlight must be a whole number >= 1, got ${this.maxInFlight}`);
    this.images = options.images ?? {};
    for (const x of Object.keys(this.images)) {
      if (!g.inputs.includes(x)) throw invalid(g.source, `image options name '${x}', which is not an input of the model (inputs: ${g.inputs.join(', ')})`);
      // int8 sessions take the 8-bit values of a quantized input as they are (Uint8Array feeds), not normalised ones.
      if (precision.name === 'int8') throw unsupported(`${g.source}: input '${x}'`, 'image inputs are converted to float values; this session runs int8 kernels (feed the quantized input\'s bytes as a Uint8Array)');
    }
    this.gpu = new GpuObjects(ctx);
    this.timer = new DispatchTimer(this.gpu, g.source);
  }

  /** Builds the schedule on the device; a GPU error while doing so is FcmError gpu (exit 5). */
  static async create(ctx: GpuContext, compiled: Compiled, precision: Precision, options: ExecutorOptions = {}): Promise<Executor> {
    const s = new Executor(ctx, compiled, precision, options);
    try {
      await scoped(ctx, `${compiled.graph.source}: ${precision.creating}`, async () => {
        await s.gpu.precompile(compiled.steps.map((st) => st.program), precision.keyPrefix);
        s.build();
      });
    } catch (e) {
      s.dispose();
      throw e;
    }
    return s;
  }

  /** The session's buffers, in creation order (tests destroy one to stand for a fault in buffer handling). */
  private get owned(): GPUBuffer[] { return this.gpu.owned; }

  root(t: string): string { return this.compiled.aliases.get(t) ?? t; }

  /** Dispatches in submitted part `k` of a run of dispatches (Infinity: no limit). */
  private partLimit(k: number): number {
    const every = this.submitEvery > 0 ? this.submitEvery : Infinity;
    const first = this.firstSubmit ?? every;
    if (k === 0) return first;
    if (this.submitGrowth === 1 || first === Infinity) return every;
    return Math.min(every, Math.max(1, Math.round(first * this.submitGrowth ** k)));
  }

  /** How many parts a run of `n` dispatches is submitted in. */
  private partsOf(n: number): number {
    let parts = 0;
    for (let left = n; left > 0; parts++) left -= this.partLimit(parts);
    return parts;
  }

  private tensor(name: string): Tensor { return this.graph.tensors.get(name)!; }

  /** The binding of tensor `t`: its buffer's first bytes(t) bytes, or a view's block of its base's buffer. */
  private binding(t: string): { buffer: GPUBuffer; size: number; offset?: number } {
    const view = this.compiled.views?.get(t);
    const buffer = this.buffers.get(view ? view.base : t);
    if (!buffer) throw new Error(`internal: tensor '${t}' has no buffer`);
    return view ? { buffer, size: this.compiled.bytes.get(t)!, offset: view.byteOffset } : { buffer, size: this.compiled.bytes.get(t)! };
  }

  /**
   * The constant blocks of views' bases (src/runtime/views.ts: a Concat's constant input, a Pad's fill), once per
   * session: one write per base over the range they span. What lies between them there is a view's block, which its
   * layer writes in every run before anything reads it.
   */
  private writeConstantBlocks(): void {
    const byBase = new Map<string, NonNullable<Compiled['constantBlocks']>>();
    for (const b of this.compiled.constantBlocks ?? []) byBase.set(b.base, [...(byBase.get(b.base) ?? []), b]);
    for (const [base, blocks] of byBase) {
      const buffer = this.buffers.get(base);
      if (!buffer) throw new Error(`internal: the base '${base}' of constant blocks has no buffer`);
      const half = this.precision.name === 'fp16' && !this.compiled.f32Tensors?.has(base);
      const eb = half ? 2 : 4;
      const lo = Math.floor(Math.min(...blocks.map((b) => b.byteOffset)) / 4) * 4;
      const hi = Math.ceil(Math.max(...blocks.map((b) => b.byteOffset + b.values.length * eb)) / 4) * 4;
      const image = new Uint8Array(hi - lo);
      for (const b of blocks) {
        const v = half ? toHalf(b.values) : b.values;
        image.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), b.byteOffset - lo);
      }
      this.ctx.device.queue.writeBuffer(buffer, lo, image);
    }
  }

  private build(): void {
    const { graph: g, memory, constants, host } = this.compiled;
    const S = GPUBufferUsage.STORAGE, CS = GPUBufferUsage.COPY_SRC, CD = GPUBufferUsage.COPY_DST, MR = GPUBufferUsage.MAP_READ;
    // Constants, once per session.
    for (const name of constants) {
      const c = this.precision.constant(this.tensor(name), `${g.source}: tensor '${name}'`);
      const b = this.gpu.buffer(c.data.byteLength, S | CS, name, c.data);
      if (c.weight) this.weightBytes += b.size;
      this.buffers.set(name, b);
    }
    // Activation slots, shared by tensors whose lifetimes do not overlap.
    const slots = memory.slotBytes.map((bytes, i) => this.gpu.buffer(bytes, S | CS | CD, `slot ${i}`));
    for (const [t, s] of memory.slotOf) this.buffers.set(t, slots[s]);
    this.writeConstantBlocks();
    // Feed programs (int8: float feeds of quantized inputs that only dispatches read are quantized on the GPU).
    for (const x of g.inputs) {
      const dst = this.root(x);
      if (!this.buffers.has(dst) || host.some((s) => s.reads.some((r) => this.root(r) === dst))) continue;
      const p = this.precision.feedProgram(this.tensor(x), x, this.ctx.kernelLimits);
      if (!p) continue;
      const pipeline = this.gpu.pipeline(p, this.precision.keyPrefix);
      const floats = this.gpu.buffer(4 * this.tensor(x).shape.reduce((a, b) => a * b, 1), S | CD, `float feed ${x}`);
      const consts = p.constants.map((c) => this.gpu.buffer(c.data.byteLength, S, `${x}: ${c.name}`, c.data));
      const bindGroup = this.gpu.bindGroup(pipeline, [floats, ...consts, this.binding(dst)], p.name);
      this.feedPrograms.set(x, { floats, pipeline, bindGroup, size: p.dispatch, name: x, label: `quantize input ${x}` });
    }
    // Image programs: 8-bit pixels to the input's float values (f16 where an fp16 session stores the input so).
    for (const [x, o] of Object.entries(this.images)) {
      const dst = this.root(x);
      if (!this.buffers.has(dst)) continue;
      const asFloat = imageInputProgram(this.tensor(x).shape, o, this.ctx.kernelLimits, x);
      const half = this.precision.name === 'fp16' && !this.compiled.f32Tensors?.has(dst);
      const p = half ? withStorage(asFloat, ['f32', 'f16']) : asFloat;
      const pipeline = this.gpu.pipeline(p, this.precision.keyPrefix);
      const px = this.gpu.buffer(numel(this.tensor(x).shape), S | CD, `image ${x}`);
      const bindGroup = this.gpu.bindGroup(pipeline, [px, this.binding(dst)], p.name);
      this.imagePrograms.set(x, { floats: px, pipeline, bindGroup, size: p.dispatch, name: x, label: `image input ${x}` });
    }
    // Pipelines (device-wide cache) and bind groups, once per session; the phases of a run.
    const gpuWritten = new Set(this.compiled.steps.flatMap((s) => s.bindings.slice(s.nIn)));
    let phase: Phase | undefined;
    for (const item of ordered(this.compiled)) {
      if (item.kind === 'host') {
        // Read back what the host step needs from the GPU (host steps always follow a run of dispatches, consecutive
        // host nodes being one step); upload what later dispatches read.
        const st = item.step;
        const need = [...new Set(st.reads.map((x) => this.root(x)))].filter((r) => gpuWritten.has(r));
        if (need.length && phase?.kind !== 'gpu') throw new Error(`internal: host step reads '${need[0]}' with no GPU work before it`);
        for (const r of need) {
          (phase as Extract<Phase, { kind: 'gpu' }>).readBack.push({ name: r, src: this.buffers.get(r)!, staging: this.gpu.buffer(this.compiled.bytes.get(r)!, MR | CD, `read ${r}`) });
        }
        phase = { kind: 'host', step: st, upload: st.writes.map((y) => this.root(y)).filter((y) => this.buffers.has(y)) };
        this.phases.push(phase);
        continue;
      }
      if (phase?.kind !== 'gpu') { phase = { kind: 'gpu', dispatches: [], readBack: [] }; this.phases.push(phase); }
      const st = item.step;
      const p = st.program;
      // A dispatch of no workgroups (an empty tensor's) does nothing: not encoded.
      if (p.dispatch.some((d) => d === 0)) continue;
      const pipeline = this.gpu.pipeline(p, this.precision.keyPrefix);
      // Bindings: inputs, the program's own constants (int8: prepared weights), outputs.
      const consts = ((p as Partial<Int8Program>).constants ?? []).map((c) => {
        const b = this.gpu.buffer(c.data.byteLength, S, `${st.node.name}: ${c.name}`, c.data);
        this.weightBytes += b.size;
        return b;
      });
      const ins = st.bindings.slice(0, st.nIn).map((t) => this.binding(t));
      const outs = st.bindings.slice(st.nIn).map((t) => this.binding(t));
      const bindGroup = this.gpu.bindGroup(pipeline, [...ins, ...consts, ...outs], `${st.node.name}: ${p.name}`);
      const d: ScheduledDispatch = { pipeline, bindGroup, size: p.dispatch, step: st };
      phase.dispatches.push(d);
      this.dispatches.push(d);
    }
    // Upload staging and read-back sets for the outputs, once per session.
    const targets: UploadTarget[] = [];
    for (const x of g.inputs) {
      const b = this.buffers.get(this.root(x));
      if (b) targets.push({ key: x, dst: b, bytes: this.compiled.bytes.get(this.root(x))! });
    }
    for (const [x, fp] of this.feedPrograms) targets.push({ key: `floats:${x}`, dst: fp.floats, bytes: fp.floats.size });
    for (const [x, ip] of this.imagePrograms) targets.push({ key: `image:${x}`, dst: ip.floats, bytes: ip.floats.size });
    this.uploader = new Uploader(this.gpu, this.uploadPath, targets, Math.max(defaultRingSize, this.maxInFlight + 1));
    // Outputs aliasing one tensor are read back once.
    const roots = [...new Set(this.compiled.gpuOutputs)];
    this.readPool = new ReadbackPool(this.gpu, roots.map((y) => ({ key: y, src: this.binding(y).buffer, bytes: this.compiled.bytes.get(y)! })), this.maxInFlight);
    this.defaultWanted = { names: [...g.outputs], read: roots };
    const only = this.phases[0];
    this.encodesAhead = this.options.encodeAhead !== false && this.phases.length === 1 && only.kind === 'gpu' && !only.readBack.length;
    if (this.encodesAhead) while (this.ahead.length < this.maxInFlight) this.ahead.push(this.encodeAhead());
  }

  /**
   * Encodes sets of dispatches until maxInFlight are ready, one turn after the submit that spent one: the runs
   * submitted in the same turn go first. Inside error scopes of its own; an error leaves the pool empty, and the next
   * run encodes its own dispatches (and reports what fails there).
   */
  private refillAhead(): void {
    if (this.refillScheduled) return;
    this.refillScheduled = true;
    nextTurn(() => {
      this.refillScheduled = false;
      if (this.disposed || this.ctx.lost) return;
      const t0 = performance.now();
      const pop = pushScopes(this.ctx);
      try {
        while (this.ahead.length < this.maxInFlight) this.ahead.push(this.encodeAhead());
      } catch {
        this.ahead = [];
      } finally {
        void pop().then((errors) => { if (errors.some((e) => e)) this.ahead = []; }, () => { this.ahead = []; });
        this.times.encodeMs += performance.now() - t0;
      }
    });
  }

  // ---- running ----

  async stagingInputs(): Promise<Record<string, Float32Array>> {
    if (this.disposed) throw invalid(this.graph.source, 'the session was disposed');
    // Float feeds land in a feed program's buffer (fp16: converted on the GPU) or, where the input holds float32 values
    // (fp32; an input an fp16 session keeps f32), in the input's own buffer.
    const keyOf = (x: string) => (this.feedPrograms.has(x) ? `floats:${x}` : this.holdsFloat32(x) ? x : undefined);
    const wanted = this.graph.inputs.filter((x) => keyOf(x) !== undefined);
    if (!wanted.length) return {};
    const lent = await this.uploader.lend();
    if (!lent) return {};
    const out: Record<string, Float32Array> = {};
    for (const x of wanted) {
      const v = lent.views.get(keyOf(x)!);
      if (v) out[x] = new Float32Array(v.buffer, v.byteOffset, numel(this.tensor(x).shape));
    }
    return out;
  }

  /** Whether input x's own buffer holds float32 values (fp32; an input an fp16 session keeps f32). */
  private holdsFloat32(x: string): boolean {
    const root = this.root(x);
    return this.buffers.has(root) && (this.precision.name === 'fp32' || (this.precision.name === 'fp16' && !!this.compiled.f32Tensors?.has(root)));
  }

  private checkFeeds(feeds: RunFeeds): CheckedFeeds {
    if (this.disposed) throw invalid(this.graph.source, 'the session was disposed');
    const gpu = new Map<string, GPUBuffer>(), images = new Map<string, Uint8Array>();
    if (typeof feeds !== 'object' || feeds === null) return { host: this.precision.feeds(this.graph, feeds as Feeds, new Set()), gpu, images };
    const host: Feeds = {};
    for (const [x, v] of Object.entries(feeds)) {
      if (!this.graph.inputs.includes(x)) { host[x] = v as Feeds[string]; continue; }
      const t = this.tensor(x);
      if (isGpuBuffer(v)) {
        const bytes = 4 * numel(t.shape);
        // Float32 values reach the input's buffer as they are (fp32, an input an fp16 session keeps f32) or through its
        // feed program (rounded to f16, quantized); an input read by host steps, or with image options, takes none.
        const takes = this.feedPrograms.has(x) || this.holdsFloat32(x);
        if (!takes || this.imagePrograms.has(x)) throw unsupported(`${this.graph.source}: input '${x}'`, `GPU buffer feeds hold float32 values: this ${this.precision.name} session has no float32 way onto the GPU for this input (an input with image options, or one the host reads)`);
        if (!(v.usage & GPUBufferUsage.COPY_SRC)) throw invalid(this.graph.source, `input '${x}': the GPU buffer fed needs usage COPY_SRC`);
        if (v.size < bytes) throw invalid(this.graph.source, `input '${x}': the GPU buffer fed has ${v.size} bytes, the input takes [${t.shape.join(',')}] float32 = ${bytes}`);
        gpu.set(x, v);
        continue;
      }
      if (this.imagePrograms.has(x) && v instanceof Uint8Array) {
        const n = numel(t.shape);
        if (v.length !== n) throw invalid(this.graph.source, `image input '${x}' has ${v.length} bytes, the model takes [${t.shape.join(',')}] = ${n}`);
        images.set(x, v);
        continue;
      }
      host[x] = v as Feeds[string];
    }
    const rest = this.graph.inputs.filter((x) => !gpu.has(x) && !images.has(x));
    const g = rest.length === this.graph.inputs.length ? this.graph : { ...this.graph, inputs: rest };
    return { host: this.precision.feeds(g, host, new Set(this.feedPrograms.keys())), gpu, images };
  }

  /** The outputs a run returns, and where. */
  private checkRunOptions(opts: RunOptions | undefined): Wanted {
    if (opts === undefined) return this.defaultWanted;
    const src = this.graph.source;
    if (typeof opts !== 'object' || opts === null) throw invalid(src, 'run() options must be an object');
    const loc = opts.outputLocation ?? 'host';
    if (loc !== 'host' && loc !== 'gpu') throw invalid(src, `outputLocation must be 'host' or 'gpu', got '${String(loc)}'`);
    let names = this.graph.outputs;
    if (opts.outputs !== undefined) {
      if (!Array.isArray(opts.outputs) || !opts.outputs.length) throw invalid(src, 'outputs must be a non-empty array of output names');
      for (const y of opts.outputs) if (!this.graph.outputs.includes(y)) throw invalid(src, `'${String(y)}' is not an output of the model (outputs: ${this.graph.outputs.join(', ')})`);
      if (new Set(opts.outputs).size !== opts.outputs.length) throw invalid(src, 'outputs names an output twice');
      names = opts.outputs;
    }
    if (opts.outputBuffers !== undefined && loc !== 'gpu') throw invalid(src, "outputBuffers needs outputLocation: 'gpu'");
    if (opts.outputArrays !== undefined && loc !== 'host') throw invalid(src, "outputArrays needs outputLocation: 'host'");
    if (loc === 'host') {
      const roots = new Set(names.map((y) => this.root(y)));
      const read = this.defaultWanted.read.filter((r) => roots.has(r));
      if (opts.outputArrays === undefined) return { names: [...names], read };
      if (this.precision.name !== 'fp32') throw unsupported(src, `outputArrays take float32 values: this session runs ${this.precision.name} kernels`);
      const into = new Map<string, Float32Array>();
      for (const [y, a] of Object.entries(opts.outputArrays)) {
        if (!names.includes(y)) throw invalid(src, `outputArrays names '${y}', which is not an output asked for`);
        const n = numel(this.tensor(y).shape);
        if (!(a instanceof Float32Array) || a.length !== n) throw invalid(src, `outputArrays['${y}'] must be a Float32Array of ${n} values`);
        if (!into.has(this.root(y))) into.set(this.root(y), a);
      }
      return { names: [...names], read, into };
    }
    if (this.precision.name === 'int8') throw unsupported(src, `outputs on the GPU hold float32 values: this session runs ${this.precision.name} kernels`);
    const gpu = new Map<string, GPUBuffer | undefined>();
    const given = opts.outputBuffers ?? {};
    for (const y of Object.keys(given)) if (!names.includes(y)) throw invalid(src, `outputBuffers names '${y}', which is not an output asked for`);
    for (const y of names) {
      // A host step's output (TFLite_Detection_PostProcess) never is on the GPU.
      if (!this.compiled.gpuOutputs.includes(this.root(y))) throw unsupported(src, `output '${y}' is computed on the host; ask for it with outputLocation 'host'`);
      const b = given[y];
      const bytes = 4 * numel(this.tensor(y).shape);
      if (b !== undefined) {
        if (!isGpuBuffer(b)) throw invalid(src, `outputBuffers['${y}'] must be a GPUBuffer`);
        // An f16 output is widened into the buffer by a dispatch (STORAGE), a float32 one copied (COPY_DST).
        const [usage, name] = this.widensOutput(y) ? [GPUBufferUsage.STORAGE, 'STORAGE'] : [GPUBufferUsage.COPY_DST, 'COPY_DST'];
        if (!(b.usage & usage)) throw invalid(src, `outputBuffers['${y}'] needs usage ${name}`);
        if (b.size < bytes) throw invalid(src, `outputBuffers['${y}'] has ${b.size} bytes, output '${y}' takes ${bytes}`);
      }
      gpu.set(y, b);
    }
    return { names: [...names], read: [], gpu };
  }

  /** Writes host values of `names` (that have a buffer) to their buffers. */
  private upload(values: Map<string, Value>, names: Iterable<string>): void {
    for (const name of names) {
      const v = values.get(name);
      const b = this.buffers.get(this.root(name));
      if (!v || !b) continue;
      const data = this.precision.upload(v, this.root(name));
      this.ctx.device.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
    }
  }

  /** Writes the feeds through `batch`: host values to their buffers, float feeds and images to their programs' buffers. */
  private writeFeeds(batch: UploadBatch, f: CheckedFeeds): FeedDispatch[] {
    for (const x of this.graph.inputs) {
      const v = f.host.values.get(x);
      if (v && this.buffers.has(this.root(x))) batch.write(x, this.precision.upload(v, this.root(x)));
    }
    const programs: FeedDispatch[] = [];
    for (const [x, v] of f.host.floats) {
      batch.write(`floats:${x}`, v);
      programs.push(this.feedPrograms.get(x)!);
    }
    for (const [x, v] of f.images) {
      const ip = this.imagePrograms.get(x);
      if (!ip) continue;
      batch.write(`image:${x}`, v);
      programs.push(ip);
    }
    return programs;
  }

  /**
   * Encodes the copies of GPU buffer feeds: into the input's buffer where it holds float32 values, else into the
   * float32 buffer of the input's feed program (an fp16 session's f16 input, an int8 session's quantized one), whose
   * dispatches it returns, to run after the copies.
   */
  private copyGpuFeeds(enc: GPUCommandEncoder, gpu: ReadonlyMap<string, GPUBuffer>): FeedDispatch[] {
    const programs: FeedDispatch[] = [];
    for (const [x, b] of gpu) {
      const fp = this.feedPrograms.get(x);
      if (fp) {
        enc.copyBufferToBuffer(b, 0, fp.floats, 0, fp.floats.size);
        programs.push(fp);
        continue;
      }
      const dst = this.buffers.get(this.root(x));
      if (dst) enc.copyBufferToBuffer(b, 0, dst, 0, this.compiled.bytes.get(this.root(x))!);
    }
    return programs;
  }

  /** copyGpuFeeds, then the feed programs it names, in a pass of their own. */
  private encodeGpuFeeds(enc: GPUCommandEncoder, gpu: ReadonlyMap<string, GPUBuffer>): void {
    const programs = this.copyGpuFeeds(enc, gpu);
    if (!programs.length) return;
    const pass = enc.beginComputePass();
    for (const x of programs) {
      pass.setPipeline(x.pipeline);
      pass.setBindGroup(0, x.bindGroup);
      pass.dispatchWorkgroups(x.size[0], x.size[1], x.size[2]);
    }
    pass.end();
  }

  /** Writes the feeds with writeBuffer and submits GPU feeds' copies (profile() and the timing functions). */
  private writeFeedsNow(f: CheckedFeeds): FeedDispatch[] {
    const programs = this.writeFeeds(this.uploader.writeBufferBatch(), f);
    if (f.gpu.size) {
      const enc = this.gpu.encoder();
      programs.push(...this.copyGpuFeeds(enc, f.gpu));
      this.ctx.device.queue.submit([enc.finish()]);
    }
    return programs;
  }

  private async readBack(values: Map<string, Value>, staged: readonly Staged[]): Promise<void> {
    await Promise.all(staged.map((r) => r.staging.mapAsync(GPUMapMode.READ)));
    for (const r of staged) {
      values.set(r.name, this.precision.readBack(this.tensor(r.name), r.staging.getMappedRange(0, r.staging.size)));
      r.staging.unmap();
    }
  }

  private runHost(values: Map<string, Value>, ph: Extract<Phase, { kind: 'host' }>): void {
    this.precision.runHost(this.graph, values, ph.step.nodes, (t) => this.root(t));
    this.upload(values, ph.upload);
  }

  /** Calls run in the order they were made (run(), profile() and the timing functions share the device's buffers). */
  serial<T>(f: () => Promise<T>): Promise<T> {
    const r = this.queue.then(f, f);
    this.queue = r.catch(() => undefined);
    return r;
  }

  run(feeds: RunFeeds, opts: RunOptions & { outputLocation: 'gpu' }): Promise<GpuRunResult>;
  run(feeds: RunFeeds, opts?: RunOptions & { outputLocation?: 'host' }): Promise<RunResult>;
  async run(feeds: RunFeeds, opts?: RunOptions): Promise<RunResult | GpuRunResult> {
    const f = this.checkFeeds(feeds);
    const want = this.checkRunOptions(opts);
    const ctx = this.ctx, what = `${this.graph.source}: run`, T = this.times;
    // A read-back set for this run: waits while maxInFlight runs wait for their outputs.
    const rb = want.read.length ? await this.readPool.acquire() : undefined;
    try {
      // Encoding and submitting, one run at a time; waiting for the outputs happens after, so the next run's
      // encoding overlaps this one's GPU work and read-back.
      const sub = await this.serial(async () => {
        checkLost(ctx, what);
        const t0 = performance.now();
        // Staging memory first (the ring may wait for a buffer to map), outside the error scopes: nothing between
        // pushing and popping them awaits, so no other session's scopes interleave with this run's.
        const batch = await this.uploader.begin(feedViews(f), f.host.values.size > 0 || f.host.floats.size > 0 || f.images.size > 0);
        const pop = pushScopes(ctx);
        let thrown: unknown;
        let gpuOut: GpuRunResult | undefined;
        const values = new Map(f.host.values);
        const clock: RunClock = { submitMs: 0, waitMs: 0 };
        try {
          const head = this.writeFeeds(batch, f);
          const t1 = performance.now();
          T.uploadMs += t1 - t0;
          const r = this.encodeRun(head, batch, f, values, want, rb, clock);
          gpuOut = r instanceof Promise ? await r : r;
          T.encodeMs += performance.now() - t1 - clock.submitMs - clock.waitMs;
        } catch (e) {
          thrown = e;
        } finally {
          batch.done();
        }
        T.submitMs += clock.submitMs;
        T.waitMs += clock.waitMs;
        return { pops: pop(), thrown, gpuOut, values };
      });
      let out: RunResult | GpuRunResult | undefined;
      let thrown = sub.thrown;
      if (thrown === undefined) {
        try {
          if (want.gpu) out = sub.gpuOut;
          else {
            const t0 = performance.now();
            let mapped: number | undefined;
            await rb?.read((k, bytes) => {
              mapped ??= performance.now();
              const into = want.into?.get(k);
              if (into) {
                into.set(new Float32Array(bytes, 0, into.length));
                sub.values.set(k, { data: into, shape: [...this.tensor(k).shape] });
              } else {
                sub.values.set(k, this.precision.readBack(this.tensor(k), bytes));
              }
            });
            const t1 = performance.now();
            T.waitMs += (mapped ?? t1) - t0;
            T.readMs += t1 - (mapped ?? t1);
            // Outputs a host step made go into the caller's arrays too.
            for (const [k, a] of want.into ?? []) {
              const v = sub.values.get(k);
              if (v && v.data !== a) { a.set(v.data as Float32Array); sub.values.set(k, { data: a, shape: v.shape }); }
            }
            out = this.outputs(sub.values, want.names);
          }
        } catch (e) {
          thrown = e;
        }
      }
      const r = settle(ctx, what, await sub.pops, out, thrown);
      this.runs++;
      T.runs++;
      return r;
    } finally {
      if (rb) this.readPool.release(rb);
    }
  }

  /**
   * Encodes and submits one inference; the outputs' copies are submitted last, not awaited. Synchronous (no Promise)
   * unless a host step must wait for the GPU: the caller pops its error scopes right after.
   */
  private encodeRun(head: FeedDispatch[], batch: UploadBatch, f: CheckedFeeds, values: Map<string, Value>, want: Wanted,
    rb: ReadSet | undefined, clock: RunClock): GpuRunResult | undefined | Promise<GpuRunResult | undefined> {
    if (this.encodesAhead && this.ahead.length) return this.submitAhead(head, batch, f, want, rb, clock);
    // More runs at once than sets encoded ahead: this one encodes its own, and the pool fills again after it.
    if (this.encodesAhead) this.refillAhead();
    const d = this.ctx.device;
    let enc: GPUCommandEncoder | undefined = this.gpu.encoder();
    // Staged feeds and GPU feeds are copied ahead of the first pass, in the first command buffer.
    batch.encode(enc);
    this.encodeGpuFeeds(enc, f.gpu);
    let pass: GPUComputePassEncoder | undefined;
    let last: GPUComputePipeline | undefined;
    let inPart = 0;
    let part = 0;
    const encode = (x: Dispatch) => {
      enc ??= this.gpu.encoder();
      if (!pass) { pass = enc.beginComputePass(); last = undefined; }
      if (x.pipeline !== last) pass.setPipeline(x.pipeline);
      last = x.pipeline;
      pass.setBindGroup(0, x.bindGroup);
      pass.dispatchWorkgroups(x.size[0], x.size[1], x.size[2]);
      inPart++;
    };
    const submit = (copies?: (e: GPUCommandEncoder) => void) => {
      inPart = 0;
      if (!enc && !copies) return;
      enc ??= this.gpu.encoder();
      pass?.end();
      pass = undefined;
      copies?.(enc);
      const buf = enc.finish();
      const t0 = performance.now();
      d.queue.submit([buf]);
      clock.submitMs += performance.now() - t0;
      enc = undefined;
    };
    for (const x of head) encode(x);
    const finish = (): GpuRunResult | undefined => {
      let out: GpuRunResult | undefined;
      submit((e) => {
        if (want.gpu) out = this.copyOutputs(e, want);
        rb?.encode(e, want.read);
      });
      return out;
    };
    const from = (i: number): GpuRunResult | undefined | Promise<GpuRunResult | undefined> => {
      for (; i < this.phases.length; i++) {
        const ph = this.phases[i];
        if (ph.kind === 'gpu') {
          part = 0;
          for (const x of ph.dispatches) {
            // Submit in parts so the GPU starts while the host encodes the rest.
            if (inPart === this.partLimit(part)) { submit(); part++; }
            encode(x);
          }
          if (ph.readBack.length) {
            submit((e) => { for (const r of ph.readBack) e.copyBufferToBuffer(r.src, 0, r.staging, 0, r.staging.size); });
            const t0 = performance.now();
            const next = i + 1;
            return this.readBack(values, ph.readBack).then(() => {
              clock.waitMs += performance.now() - t0;
              return from(next);
            });
          }
        } else {
          // Pending dispatches go first: the uploads may reuse their buffers (memory.ts shares slots by lifetime).
          submit();
          const t0 = performance.now();
          this.runHost(values, ph);
          clock.waitMs += performance.now() - t0;
        }
      }
      return finish();
    };
    return from(0);
  }

  /**
   * A schedule with no host step: the dispatches' command buffers, encoded before the run that submits them. A run
   * encodes only its feed copies and feed programs (first) and its output copies (last), submits them with these
   * parts, then encodes the next run's parts while the GPU works on its own: the encoding leaves the time from the
   * feeds to the GPU's start. The parts reference only objects made once, so they are the same for every run; the
   * GPU feeds' copies (lastGpuFeeds) go in a command buffer of their own, taken only by a run fed those very buffers.
   */
  private encodeAhead(): AheadSet {
    const feeds = this.lastGpuFeeds;
    let feedCopies: AheadSet['feedCopies'];
    if (feeds) {
      const enc = this.gpu.encoder();
      this.encodeGpuFeeds(enc, feeds);
      feedCopies = { feeds, buffer: enc.finish() };
    }
    return { parts: this.encodeParts(), feedCopies };
  }

  private encodeParts(): GPUCommandBuffer[] {
    const ds = (this.phases[0] as Extract<Phase, { kind: 'gpu' }>).dispatches;
    const parts: GPUCommandBuffer[] = [];
    for (let i = 0, k = 0; i < ds.length; k++) {
      const end = Math.min(ds.length, i + this.partLimit(k));
      const enc = this.gpu.encoder();
      const pass = enc.beginComputePass();
      let last: GPUComputePipeline | undefined;
      for (const x of ds.slice(i, end)) {
        if (x.pipeline !== last) pass.setPipeline(x.pipeline);
        last = x.pipeline;
        pass.setBindGroup(0, x.bindGroup);
        pass.dispatchWorkgroups(x.size[0], x.size[1], x.size[2]);
      }
      pass.end();
      parts.push(enc.finish());
      i = end;
    }
    return parts;
  }

  private submitAhead(head: FeedDispatch[], batch: UploadBatch, f: CheckedFeeds, want: Wanted, rb: ReadSet | undefined,
    clock: RunClock): GpuRunResult | undefined {
    const d = this.ctx.device;
    const set = this.ahead.shift()!;
    const parts = set.parts;
    // A run fed GPU buffers only: their copies may have been encoded ahead (the same buffers as the run before).
    const gpuOnly = f.gpu.size > 0 && !head.length && !f.host.values.size && !f.host.floats.size && !f.images.size;
    const baked = gpuOnly && set.feedCopies && sameBuffers(set.feedCopies.feeds, f.gpu) ? set.feedCopies.buffer : undefined;
    this.lastGpuFeeds = gpuOnly ? new Map(f.gpu) : undefined;
    // The feeds' copies and programs go with the first part, the outputs' copies with the last: one submit each.
    const encodeFirst = (): GPUCommandBuffer => {
      const first = this.gpu.encoder();
      batch.encode(first);
      this.encodeGpuFeeds(first, f.gpu);
      if (head.length) {
        const pass = first.beginComputePass();
        for (const x of head) {
          pass.setPipeline(x.pipeline);
          pass.setBindGroup(0, x.bindGroup);
          pass.dispatchWorkgroups(x.size[0], x.size[1], x.size[2]);
        }
        pass.end();
      }
      return first.finish();
    };
    const submit = (g: GPUCommandBuffer[]) => {
      const t0 = performance.now();
      d.queue.submit(g);
      clock.submitMs += performance.now() - t0;
    };
    // The first part goes before the outputs' copies are encoded: the GPU starts that much earlier.
    const rest = parts.slice(1);
    if (parts.length > 1) submit([baked ?? encodeFirst(), parts[0]]);
    const last = this.gpu.encoder();
    const out = want.gpu ? this.copyOutputs(last, want) : undefined;
    rb?.encode(last, want.read);
    if (parts.length <= 1) submit([baked ?? encodeFirst(), ...parts, last.finish()]);
    else rest.forEach((b, i) => submit(i === rest.length - 1 ? [b, last.finish()] : [b]));
    this.refillAhead();
    return out;
  }

  /** Whether output `y` is stored as f16, so that leaving it on the GPU widens it into float32 values. */
  private widensOutput(y: string): boolean {
    return this.precision.name === 'fp16' && !this.compiled.f32Tensors?.has(this.root(y));
  }

  /**
   * Encodes the copies of the outputs asked for to their GPU buffers (the caller's, or new ones it will own); an f16
   * output is widened into float32 values there by a dispatch of its own (kernels/f16.ts floatOutputProgram), its
   * pipeline made at its first use and a bind group kept per destination buffer.
   */
  private copyOutputs(e: GPUCommandEncoder, want: Wanted): GpuRunResult {
    const out: GpuRunResult = Object.create(null);
    let pass: GPUComputePassEncoder | undefined;
    for (const [y, given] of want.gpu!) {
      const src = this.buffers.get(this.root(y));
      if (!src) throw new Error(`internal: output '${y}' has no buffer`);
      const t = this.tensor(y);
      const bytes = 4 * numel(t.shape);
      const G = GPUBufferUsage;
      const buffer = given ?? this.ctx.device.createBuffer({ size: bytes, usage: G.STORAGE | G.COPY_SRC | G.COPY_DST, label: `output ${y}` });
      if (this.widensOutput(y)) {
        let w = this.widen.get(y);
        if (!w) {
          const p = floatOutputProgram(numel(t.shape), this.ctx.kernelLimits, y);
          w = { pipeline: this.gpu.pipeline(p, this.precision.keyPrefix), size: p.dispatch, groups: new WeakMap() };
          this.widen.set(y, w);
        }
        let group = w.groups.get(buffer);
        if (!group) {
          group = this.gpu.bindGroup(w.pipeline, [src, buffer], `output ${y} as float32`);
          w.groups.set(buffer, group);
        }
        pass ??= e.beginComputePass();
        pass.setPipeline(w.pipeline);
        pass.setBindGroup(0, group);
        pass.dispatchWorkgroups(w.size[0], w.size[1], w.size[2]);
      } else {
        pass?.end();
        pass = undefined;
        e.copyBufferToBuffer(src, 0, buffer, 0, this.compiled.bytes.get(this.root(y))!);
      }
      out[y] = { shape: [...t.shape], dtype: t.dtype, buffer, byteLength: bytes };
    }
    pass?.end();
    return out;
  }

  private outputs(values: Map<string, Value>, names: readonly string[]): RunResult {
    const out: RunResult = Object.create(null);
    for (const y of names) {
      const v = values.get(y) ?? values.get(this.root(y));
      if (!v) throw new Error(`internal: output '${y}' was not computed`);
      out[y] = this.precision.output(this.tensor(y), v);
    }
    return out;
  }

  async profile(feeds?: RunFeeds, opts: { heatRuns?: number } = {}): Promise<Profile> {
    if (!feeds && this.precision.profileNeedsFeeds) throw invalid(this.graph.source, this.precision.profileNeedsFeeds);
    const f = feeds ? this.checkFeeds(feeds) : undefined;
    const heatRuns = Math.max(0, Math.floor(opts.heatRuns ?? 0));
    const steps = await this.serial(() => scoped(this.ctx, `${this.graph.source}: profile`, () => this.timedRun(f, heatRuns)));
    const nodes: NodeProfile[] = [];
    for (const s of steps) {
      const last = nodes[nodes.length - 1];
      if (last && last.node === s.node) { last.ms += s.ms; last.programs.push(s.program); }
      else nodes.push({ node: s.node, op: s.op, programs: [s.program], ms: s.ms });
    }
    const host = steps.some((s) => s.where === 'host');
    const note = this.ctx.timestamps
      ? `GPU time per node from timestamp queries, one compute pass per dispatch (run() uses one pass per submitted part)${host ? '; host steps as wall time' : ''}`
      : 'the adapter has no timestamp queries: wall time per node, one submission each, including submission overhead';
    return { method: this.ctx.timestamps ? 'timestamp' : 'wall', note, totalMs: nodes.reduce((a, n) => a + n.ms, 0), nodes, steps };
  }

  /** One inference with each dispatch timed in its own pass (all of a phase in one command buffer: per-dispatch
   *  submissions would leave the GPU idle between them, and it clocks down) and each host step timed on the host. */
  private async timedRun(f: CheckedFeeds | undefined, heatRuns: number): Promise<StepProfile[]> {
    const d = this.ctx.device;
    const values = new Map(f?.host.values ?? []);
    const feedPrograms = f ? this.writeFeedsNow(f) : [];
    const maxList = Math.max(feedPrograms.length, ...this.phases.map((p) => (p.kind === 'gpu' ? p.dispatches.length + this.feedPrograms.size + this.imagePrograms.size : 0)));
    const times: StepProfile[] = [];
    let first = true;
    for (const ph of this.phases) {
      if (ph.kind === 'gpu') {
        const head = first ? feedPrograms : [];
        const list: Dispatch[] = [...head, ...ph.dispatches];
        const ms = await this.timer.perDispatch(list, maxList, first ? heatRuns : 0);
        head.forEach((x, i) => times.push({ node: x.label, op: x.label.startsWith('image') ? 'ImageInput' : 'QuantizeLinear', program: x.label.startsWith('image') ? 'ImageInput' : 'QuantizeLinear', where: 'gpu', ms: ms[i] }));
        ph.dispatches.forEach((x, i) => times.push({ node: x.step.node.name, op: x.step.node.op, program: x.step.program.name, where: 'gpu', ms: ms[head.length + i] }));
        first = false;
        if (ph.readBack.length) {
          const enc = this.gpu.encoder();
          for (const r of ph.readBack) enc.copyBufferToBuffer(r.src, 0, r.staging, 0, r.staging.size);
          d.queue.submit([enc.finish()]);
          await this.readBack(values, ph.readBack);
        }
      } else {
        const t0 = performance.now();
        this.runHost(values, ph);
        const ms = performance.now() - t0;
        ph.step.nodes.forEach((n, i) => times.push({ node: n.name, op: n.op, program: `${n.op} (host)`, where: 'host', ms: i === 0 ? ms : 0 }));
      }
    }
    return times;
  }

  stats(): SessionStats {
    // One round trip per run of dispatches, and a last one to copy outputs when a host step came after the last.
    const runsOfDispatches = this.phases.flatMap((p) => (p.kind === 'gpu' && p.dispatches.length ? [p.dispatches.length] : []));
    const last = this.phases[this.phases.length - 1];
    const tail = this.compiled.gpuOutputs.length && last?.kind === 'host' ? 1 : 0;
    const passes = runsOfDispatches.reduce((a, n) => a + this.partsOf(n), 0);
    return {
      path: this.path,
      dispatchesPerRun: this.dispatches.length,
      passesPerRun: passes,
      // Encoded ahead, the parts travel with a first command buffer (feeds) and a last one (outputs) in their submits.
      commandBuffersPerRun: this.encodesAhead ? passes + 2 : passes + tail,
      submitsPerRun: this.encodesAhead ? Math.max(1, passes) : passes + tail,
      encodedAhead: this.encodesAhead,
      readBacksPerRun: runsOfDispatches.length + tail,
      fusedModules: this.dispatches.filter((x) => x.step.node.domain === fcmDomain).length,
      hostNodes: this.compiled.host.flatMap((s) => s.nodes.map((n) => n.name)),
      inputQuantizers: [...this.feedPrograms.keys()],
      dot4: this.dot4,
      f32Tensors: [...this.compiled.f32Tensors ?? []],
      pipelinesCreated: this.gpu.counters.pipelinesCreated,
      buffersCreated: this.gpu.counters.buffersCreated,
      bindGroupsCreated: this.gpu.counters.bindGroupsCreated,
      activationBytes: this.compiled.memory.peakBytes,
      activationBytesUnshared: this.compiled.memory.unsharedBytes,
      weightBytes: this.weightBytes,
      runs: this.runs,
      upload: this.uploadPath,
      maxInFlight: this.maxInFlight,
      subBatches: 1,
      kernelFallbacks: [...this.compiled.kernelFallbacks ?? []],
    };
  }

  hostTimes(): HostTimes { return { ...this.times }; }

  /** Checks feeds and writes them for a timing function (src/runtime/profile.ts); undefined: keep the buffers. */
  prepareTiming(feeds?: RunFeeds): (() => void) | undefined {
    if (!feeds) return undefined;
    const f = this.checkFeeds(feeds);
    return () => { this.writeFeedsNow(f); };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.ahead = [];
    this.lastGpuFeeds = undefined;
    this.gpu.destroy();
    this.buffers.clear();
  }
}

/** The executor behind a session (for the timing functions of src/runtime/profile.ts). */
export function executorOf(s: Session): Executor {
  if (!(s instanceof Executor)) throw invalid('session', 'not a session made by createSession or createInt8Session');
  return s;
}
