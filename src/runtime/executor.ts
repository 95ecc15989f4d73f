// The executor: a compiled schedule (src/runtime/compile.ts) made real on the device once (constant buffers,
// activation buffers shared by lifetime, pipelines, bind groups, read-back buffers), then run any number of times;
// run() creates nothing on the GPU. One class for every precision (src/runtime/precision.ts says what differs).
//
// One inference: the feeds are written to their buffers (float feeds of a quantized input are quantized on the GPU
// by a feed program, in the first pass), then the dispatches are encoded into command buffers of one compute pass
// each, submitted every `submitEvery` dispatches so that the GPU works while the host encodes the rest. A host step
// (int8: nodes without an integer kernel, run by the integer reference) submits what is pending, reads back what it
// needs, runs, and uploads what later dispatches read. Error scopes wrap creation and every run: validation,
// out-of-memory and internal errors, and device loss, become FcmError gpu (exit 5).

import { type Graph, type Tensor, fcmDomain } from '../graph/ir.js';
import { invalid } from '../errors.js';
import type { Value } from '../quant/run-reference.js';
import type { Compiled, HostStep, Step } from './compile.js';
import { ordered } from './compile.js';
import { type GpuContext, defaultSubmitEvery } from './device.js';
import { type Dispatch, GpuObjects, checkLost, pushScopes, scoped, settle } from './gpu.js';
import type { Feeds, HostFeeds, Precision, PrecisionName, RunResult } from './precision.js';
import { DispatchTimer } from './timing.js';
import type { Int8Program } from '../../kernels/int8/common.js';

export interface SessionStats {
  /** Which kernels run the model: 'fp32' (float) or 'int8' (integer). */
  path: PrecisionName;
  /** Compute dispatches in one run() (feed programs not counted). */
  dispatchesPerRun: number;
  /** Compute passes in one run(): ceil(dispatches / submitEvery) per run of dispatches between host steps. */
  passesPerRun: number;
  /** Command buffers submitted per run(): the passes, and one more to copy outputs after a last host step. */
  commandBuffersPerRun: number;
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
  run(feeds: Feeds): Promise<RunResult>;
  /**
   * Per-node time: GPU dispatches from timestamp queries (one pass each) where the adapter has them, else per-dispatch
   * wall time; host steps as wall time. `heatRuns`: that many untimed repetitions of the first dispatches (those
   * before any host step) in one pass ahead of the timed passes, in the same submission, so that the timed dispatches
   * run at the clock of a busy GPU (an idle H200 runs at 345 of 1980 MHz). More timing: src/runtime/profile.ts.
   */
  profile(feeds?: Feeds, opts?: { heatRuns?: number }): Promise<Profile>;
  stats(): SessionStats;
  dispose(): void;
}

/** A dispatch of the schedule, with the step it runs. */
export interface ScheduledDispatch extends Dispatch { step: Step }

interface Staged { name: string; src: GPUBuffer; staging: GPUBuffer }
/** A feed program: float feeds are written to `floats` and converted into the input's buffer. */
interface FeedDispatch extends Dispatch { floats: GPUBuffer; name: string }
/** What run() does, in order: a run of dispatches (then read-backs), or a host step (then uploads). */
type Phase =
  | { kind: 'gpu'; dispatches: ScheduledDispatch[]; readBack: Staged[] }
  | { kind: 'host'; step: HostStep; upload: string[] };

export interface ExecutorOptions {
  /** Dispatches per submitted command buffer (0: all of a run of dispatches in one). */
  submitEvery?: number;
  /** int8: whether the kernels use packed 4x8 dot products (reported in stats). */
  dot4?: boolean;
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
  private readonly finalRead: Staged[] = [];
  private readonly feedPrograms = new Map<string, FeedDispatch>();
  private readonly submitEvery: number;
  private readonly dot4: boolean;
  private weightBytes = 0;
  private runs = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;

  private constructor(readonly ctx: GpuContext, readonly compiled: Compiled, readonly precision: Precision, options: ExecutorOptions) {
    const g = compiled.graph;
    this.graph = g;
    this.inputNames = [...g.inputs];
    this.outputNames = [...g.outputs];
    this.inputShapes = Object.fromEntries(g.inputs.map((x) => [x, [...g.tensors.get(x)!.shape]]));
    this.path = precision.name;
    this.submitEvery = options.submitEvery ?? defaultSubmitEvery;
    this.dot4 = options.dot4 ?? false;
    this.gpu = new GpuObjects(ctx);
    this.timer = new DispatchTimer(this.gpu, g.source);
  }

  /** Builds the schedule on the device; a GPU error while doing so is FcmError gpu (exit 5). */
  static async create(ctx: GpuContext, compiled: Compiled, precision: Precision, options: ExecutorOptions = {}): Promise<Executor> {
    const s = new Executor(ctx, compiled, precision, options);
    try {
      await scoped(ctx, `${compiled.graph.source}: ${precision.creating}`, () => s.build());
    } catch (e) {
      s.dispose();
      throw e;
    }
    return s;
  }

  /** The session's buffers, in creation order (tests destroy one to stand for a fault in buffer handling). */
  private get owned(): GPUBuffer[] { return this.gpu.owned; }

  root(t: string): string { return this.compiled.aliases.get(t) ?? t; }

  private tensor(name: string): Tensor { return this.graph.tensors.get(name)!; }

  /** The binding of tensor `t`: its buffer's first bytes(t) bytes. */
  private binding(t: string): { buffer: GPUBuffer; size: number } {
    const buffer = this.buffers.get(t);
    if (!buffer) throw new Error(`internal: tensor '${t}' has no buffer`);
    return { buffer, size: this.compiled.bytes.get(t)! };
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
      this.feedPrograms.set(x, { floats, pipeline, bindGroup, size: p.dispatch, name: x });
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
    // Read-back buffers for the outputs, once per session.
    for (const y of this.compiled.gpuOutputs) {
      this.finalRead.push({ name: y, src: this.binding(y).buffer, staging: this.gpu.buffer(this.compiled.bytes.get(y)!, MR | CD, `read ${y}`) });
    }
  }

  // ---- running ----

  private checkFeeds(feeds: Feeds): HostFeeds {
    if (this.disposed) throw invalid(this.graph.source, 'the session was disposed');
    return this.precision.feeds(this.graph, feeds, new Set(this.feedPrograms.keys()));
  }

  /** Writes host values of `names` (that have a buffer) to their buffers. */
  private upload(values: Map<string, Value>, names: Iterable<string>): void {
    for (const name of names) {
      const v = values.get(name);
      const b = this.buffers.get(this.root(name));
      if (!v || !b) continue;
      const data = this.precision.upload(v);
      this.ctx.device.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
    }
  }

  /** Writes the feeds: host values to their buffers, float feeds to their feed programs' buffers. */
  private writeFeeds(f: HostFeeds): FeedDispatch[] {
    this.upload(f.values, this.graph.inputs);
    const programs: FeedDispatch[] = [];
    for (const [x, v] of f.floats) {
      const fp = this.feedPrograms.get(x)!;
      this.ctx.device.queue.writeBuffer(fp.floats, 0, v.buffer, v.byteOffset, v.byteLength);
      programs.push(fp);
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

  async run(feeds: Feeds): Promise<RunResult> {
    const f = this.checkFeeds(feeds);
    return this.serial(async () => {
      const ctx = this.ctx, what = `${this.graph.source}: run`;
      checkLost(ctx, what);
      // Error scopes as in scoped(), but popped right after the last submit so that their answer and the outputs'
      // mapping arrive in the same round trip (host overhead per inference).
      const pop = pushScopes(ctx);
      let thrown: unknown;
      const values = new Map(f.values);
      try {
        await this.encodeRun(f, values);
      } catch (e) {
        thrown = e;
      }
      const pops = pop();
      let out: RunResult | undefined;
      if (thrown === undefined) {
        try {
          await this.readBack(values, this.finalRead);
          out = this.outputs(values);
        } catch (e) {
          thrown = e;
        }
      }
      const r = settle(ctx, what, await pops, out, thrown);
      this.runs++;
      return r;
    });
  }

  /** Encodes and submits one inference; the outputs' copies are submitted last, not awaited. */
  private async encodeRun(f: HostFeeds, values: Map<string, Value>): Promise<void> {
    const d = this.ctx.device;
    const every = this.submitEvery;
    let enc: GPUCommandEncoder | undefined;
    let pass: GPUComputePassEncoder | undefined;
    let last: GPUComputePipeline | undefined;
    let inPart = 0;
    const encode = (x: Dispatch) => {
      enc ??= this.gpu.encoder();
      if (!pass) { pass = enc.beginComputePass(); last = undefined; }
      if (x.pipeline !== last) pass.setPipeline(x.pipeline);
      last = x.pipeline;
      pass.setBindGroup(0, x.bindGroup);
      pass.dispatchWorkgroups(x.size[0], x.size[1], x.size[2]);
      inPart++;
    };
    const submit = (staged: readonly Staged[]) => {
      inPart = 0;
      if (!enc && !staged.length) return;
      enc ??= this.gpu.encoder();
      pass?.end();
      pass = undefined;
      for (const r of staged) enc.copyBufferToBuffer(r.src, 0, r.staging, 0, r.staging.size);
      d.queue.submit([enc.finish()]);
      enc = undefined;
    };
    for (const x of this.writeFeeds(f)) encode(x);
    for (const ph of this.phases) {
      if (ph.kind === 'gpu') {
        for (const x of ph.dispatches) {
          // Submit in parts so the GPU starts while the host encodes the rest.
          if (every > 0 && inPart === every) submit([]);
          encode(x);
        }
        if (ph.readBack.length) {
          submit(ph.readBack);
          await this.readBack(values, ph.readBack);
        }
      } else {
        // Pending dispatches go first: the uploads may reuse their buffers (memory.ts shares slots by lifetime).
        submit([]);
        this.runHost(values, ph);
      }
    }
    submit(this.finalRead);
  }

  private outputs(values: Map<string, Value>): RunResult {
    const out: RunResult = Object.create(null);
    for (const y of this.graph.outputs) {
      const v = values.get(y) ?? values.get(this.root(y));
      if (!v) throw new Error(`internal: output '${y}' was not computed`);
      out[y] = this.precision.output(this.tensor(y), v);
    }
    return out;
  }

  async profile(feeds?: Feeds, opts: { heatRuns?: number } = {}): Promise<Profile> {
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
  private async timedRun(f: HostFeeds | undefined, heatRuns: number): Promise<StepProfile[]> {
    const d = this.ctx.device;
    const values = new Map(f?.values ?? []);
    const feedPrograms = f ? this.writeFeeds(f) : [];
    const maxList = Math.max(feedPrograms.length, ...this.phases.map((p) => (p.kind === 'gpu' ? p.dispatches.length + this.feedPrograms.size : 0)));
    const times: StepProfile[] = [];
    let first = true;
    for (const ph of this.phases) {
      if (ph.kind === 'gpu') {
        const head = first ? feedPrograms : [];
        const list: Dispatch[] = [...head, ...ph.dispatches];
        const ms = await this.timer.perDispatch(list, maxList, first ? heatRuns : 0);
        head.forEach((x, i) => times.push({ node: `quantize input ${x.name}`, op: 'QuantizeLinear', program: 'QuantizeLinear', where: 'gpu', ms: ms[i] }));
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
    const every = this.submitEvery > 0 ? this.submitEvery : Infinity;
    // One round trip per run of dispatches, and a last one to copy outputs when a host step came after the last.
    const runsOfDispatches = this.phases.flatMap((p) => (p.kind === 'gpu' && p.dispatches.length ? [p.dispatches.length] : []));
    const last = this.phases[this.phases.length - 1];
    const tail = this.finalRead.length && last?.kind === 'host' ? 1 : 0;
    const passes = runsOfDispatches.reduce((a, n) => a + (every === Infinity ? 1 : Math.ceil(n / every)), 0);
    return {
      path: this.path,
      dispatchesPerRun: this.dispatches.length,
      passesPerRun: passes,
      commandBuffersPerRun: passes + tail,
      readBacksPerRun: runsOfDispatches.length + tail,
      fusedModules: this.dispatches.filter((x) => x.step.node.domain === fcmDomain).length,
      hostNodes: this.compiled.host.flatMap((s) => s.nodes.map((n) => n.name)),
      inputQuantizers: [...this.feedPrograms.keys()],
      dot4: this.dot4,
      pipelinesCreated: this.gpu.counters.pipelinesCreated,
      buffersCreated: this.gpu.counters.buffersCreated,
      bindGroupsCreated: this.gpu.counters.bindGroupsCreated,
      activationBytes: this.compiled.memory.peakBytes,
      activationBytesUnshared: this.compiled.memory.unsharedBytes,
      weightBytes: this.weightBytes,
      runs: this.runs,
    };
  }

  /** Checks feeds and writes them for a timing function (src/runtime/profile.ts); undefined: keep the buffers. */
  prepareTiming(feeds?: Feeds): (() => void) | undefined {
    if (!feeds) return undefined;
    const f = this.checkFeeds(feeds);
    return () => { this.writeFeeds(f); };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.gpu.destroy();
    this.buffers.clear();
  }
}

/** The executor behind a session (for the timing functions of src/runtime/profile.ts). */
export function executorOf(s: Session): Executor {
  if (!(s instanceof Executor)) throw invalid('session', 'not a session made by createSession or createInt8Session');
  return s;
}
