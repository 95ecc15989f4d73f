// An executor for quantized (int8 / uint8) graphs with the integer kernels of kernels/int8/: TFLite's arithmetic
// on the GPU, bit-exact with src/quant/run-reference.ts. Compiled once (pipelines, constant buffers with the
// weights / biases / multipliers each kernel prepared on the host, activation buffers shared by lifetime
// (memory.ts), bind groups, read-back buffers); run() creates nothing on the GPU.
//
// Steps. Every live node becomes a GPU dispatch when int8KernelFor has a kernel for it; a DequantizeLinear whose
// only reader is a QuantizeLinear runs as one requantization of the 8-bit tensor (TFLite's QUANTIZE between two
// 8-bit tensors, as the importer spells it); reshape-like ops are aliases. Nodes without an integer kernel run
// on the host with the integer reference itself (runInt8Reference on the sub-graph of consecutive host nodes),
// so the result stays bit-exact: typically the float input's QuantizeLinear, a refused Softmax and the output's
// Quantize/Dequantize. Consecutive GPU steps share command buffers of defaultSubmitEvery dispatches, one pass each; a host step between
// two GPU steps costs one more submission and a read-back (stats().readBacksPerRun says how many).
//
// Epilogues: the importer writes fused activations as Relu/Clip nodes whose input has the output's quantization;
// those fold into the Conv (its integer clamp). Residual Adds never fold (TFLite adds with ADD, requantizing both
// operands; the integer convs take no residual) and neither do activations that change the quantization.

import { FcmError, gpuFailure, invalid, overLimit, unsupported } from '../errors.js';
import { type DType, type Graph, type Node, type Tensor, fcmDomain, numel } from '../graph/ir.js';
import type { Plan } from '../planner/plan.js';
import type { HwConfig } from '../planner/hw-config.js';
import { planFusion } from '../planner/index.js';
import { loadHw } from '../planner/hw.js';
import { toDag } from '../../converters/dag.js';
import { fuseEpilogues } from '../rewrite/epilogues.js';
import { foldPads } from '../rewrite/fold-pads.js';
import { applyPlan } from '../rewrite/apply-plan.js';
import { type Inputs, type Value, runInt8Reference } from '../quant/run-reference.js';
import { type QType, dequantize, quantizeF32 } from '../quant/reference.js';
import { int8KernelFor } from '../../kernels/int8/registry.js';
import { type Int8Program, pack8, packedWords, unpack8 } from '../../kernels/int8/common.js';
import { int8QuantizeInput } from '../../kernels/int8/quantize-input.js';
import { aliasOps } from '../../kernels/registry.js';
import { type GpuContext, acquireGpu, defaultSubmitEvery, wallTimeDispatch } from './device.js';
import type { ModelInput, Profile, RunResult, Session, SessionOptions, SessionStats } from './session.js';
import { loadModel } from '../graph/load.js';
import { batchOf } from '../graph/util.js';
import { isQuantizedGraph } from '../graph/passes/dequantize.js';
import { type MemoryPlan, planMemory } from './memory.js';

export interface Int8SessionOptions {
  /** 'auto' (default): plan with 1-byte elements and fuse; 'unfused': epilogues only; or a Plan to apply. */
  plan?: 'auto' | 'unfused' | Plan;
  /** GPU description for planning ('auto' plan): a HwConfig, a .cfg/.json path, a shipped name, or 'auto' (the adapter). */
  hw?: HwConfig | string;
  /** Packed 4x8 dot products: undefined = where the adapter's WGSL offers them; false forces the unpacking fallback. */
  dot4?: boolean;
}

export interface Int8Output {
  shape: number[];
  dtype: DType;
  /** Real values: the 8-bit values dequantized, or the float output as computed. */
  data: Float32Array;
  /** The raw 8-bit values of a quantized output. */
  raw?: Int8Array | Uint8Array;
  quant?: { scale: number; zeroPoint: number };
}

export type Int8RunOutputs = Record<string, Int8Output>;

/** Per input: real values (Float32Array; quantized on the host as TFLite's QUANTIZE does), or raw 8-bit values
 *  (Int8Array / Uint8Array) for an 8-bit input or for a float input read only by a QuantizeLinear to that type. */
export type Int8Feeds = Record<string, Float32Array | Int8Array | Uint8Array>;

export interface Int8SessionStats {
  dispatchesPerRun: number;
  /** Command buffers submitted per run(): ceil(dispatches / defaultSubmitEvery) per GPU phase. */
  commandBuffersPerRun: number;
  /** Waits for the GPU per run() (read-backs): 1 when every node between input and output quantization runs on the GPU. */
  readBacksPerRun: number;
  /** Fused modules (FCM nodes) among the dispatches. */
  fusedModules: number;
  /** Nodes run on the host by the integer reference, by name. */
  hostNodes: string[];
  /**
   * Quantized inputs whose Float32Array feeds the GPU quantizes (kernels/int8/quantize-input.ts): one dispatch
   * more per run, not counted in dispatchesPerRun, for each one fed floats.
   */
  inputQuantizers: string[];
  /** Whether the kernels use dot4I8Packed / dot4U8Packed. */
  dot4: boolean;
  pipelinesCreated: number;
  buffersCreated: number;
  bindGroupsCreated: number;
  activationBytes: number;
  activationBytesUnshared: number;
  /** Bytes of the constant buffers (prepared weights, biases, multipliers). */
  weightBytes: number;
  runs: number;
}

export interface Int8StepProfile { node: string; op: string; where: 'gpu' | 'host'; ms: number }
export interface Int8Profile { method: 'timestamp' | 'wall'; totalMs: number; steps: Int8StepProfile[] }

export interface Int8Session {
  readonly graph: Graph;
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly inputShapes: Record<string, number[]>;
  run(feeds: Int8Feeds): Promise<Int8RunOutputs>;
  /** Per-step time: GPU dispatches from timestamp queries (one pass each) or wall time, host steps wall time. */
  profile(feeds: Int8Feeds): Promise<Int8Profile>;
  stats(): Int8SessionStats;
  dispose(): void;
}

// ---- Preparing the graph ----------------------------------------------------------------------------------------

const hold = 'ai.fcm.opt.int8-hold';
const activationOps = new Set(['Relu', 'Clip', 'HardSwish', 'HardSigmoid', 'Sigmoid', 'SiLU', 'LeakyRelu', 'Tanh']);

function sameQuant(a: Tensor | undefined, b: Tensor | undefined): boolean {
  return !!a?.quant && !!b?.quant && a.dtype === b.dtype && a.quant.scale.length === 1 && b.quant.scale.length === 1
    && a.quant.scale[0] === b.quant.scale[0] && (a.quant.zeroPoint[0] ?? 0) === (b.quant.zeroPoint[0] ?? 0);
}

/** Hides from fuseEpilogues the nodes that must not fold into an integer Conv (see the header). */
function maskEpilogues(g: Graph): Graph {
  const keep = (n: Node) => {
    if (n.domain !== '') return true;
    if (n.op === 'Add') return false;
    if (!activationOps.has(n.op)) return true;
    return (n.op === 'Relu' || n.op === 'Clip') && sameQuant(g.tensors.get(n.inputs[0]), g.tensors.get(n.outputs[0]));
  };
  return { ...g, nodes: g.nodes.map((n) => (keep(n) ? n : { ...n, domain: hold })) };
}

function unmask(g: Graph): Graph {
  return { ...g, nodes: g.nodes.map((n) => (n.domain === hold ? { ...n, domain: '' } : n)) };
}

function resolveHw(hw: Int8SessionOptions['hw'], ctx: GpuContext): HwConfig {
  if (typeof hw === 'object') return hw;
  if (hw && hw !== 'auto') return loadHw(hw);
  return loadHw('auto', { adapter: { info: ctx.adapterInfo, limits: ctx.limits as unknown as { maxComputeWorkgroupStorageSize: number } } });
}

/** The graph the integer executor runs: epilogues folded, and FCM nodes for 'auto' (planned with 1-byte elements) or a Plan. */
export function prepareInt8Graph(g: Graph, plan: 'auto' | 'unfused' | Plan, hw: () => HwConfig): Graph {
  const g1 = unmask(fuseEpilogues(maskEpilogues(g)));
  if (plan === 'unfused') return foldPads(g1);
  const p = plan === 'auto' ? planFusion(toDag(g1), hw(), { mode: 'optimal', model: g.source, dtypeBytes: 1, batch: batchOf(g1) }) : plan;
  return foldPads(unmask(applyPlan(maskEpilogues(g1), p)));
}

// ---- Steps ------------------------------------------------------------------------------------------------------

interface GpuStep { kind: 'gpu'; node: Node; program: Int8Program; bindings: string[]; nIn: number; group: Node[] }
interface HostStep { kind: 'host'; nodes: Node[]; reads: string[]; writes: string[] }
type Step = GpuStep | HostStep;

/** Ops runInt8Reference runs (the host fallback). */
const hostOps = new Set([
  'QuantizeLinear', 'DequantizeLinear', 'Conv', 'Gemm', 'Relu', 'Clip', 'Add', 'Sub', 'Mul', 'AveragePool', 'MaxPool',
  'ReduceMean', 'Pad', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Transpose', 'Concat', 'Softmax', 'HardSwish',
]);

const isQ = (t: Tensor | undefined): t is Tensor & { dtype: QType } => !!t && (t.dtype === 'int8' || t.dtype === 'uint8') && !!t.quant;

function liveNodes(g: Graph): Node[] {
  const need = new Set(g.outputs);
  const live = new Array<boolean>(g.nodes.length).fill(false);
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    if (g.nodes[i].outputs.some((o) => need.has(o))) {
      live[i] = true;
      for (const x of g.nodes[i].inputs) if (x) need.add(x);
    }
  }
  return g.nodes.filter((_, i) => live[i]);
}

interface Schedule { steps: Step[]; aliases: Map<string, string> }

function schedule(g: Graph, limits: GpuContext['kernelLimits'], dot4: boolean): Schedule {
  const nodes = liveNodes(g);
  const readers = new Map<string, number>();
  for (const n of nodes) for (const x of n.inputs) if (x) readers.set(x, (readers.get(x) ?? 0) + 1);
  const aliases = new Map<string, string>();
  const root = (t: string) => aliases.get(t) ?? t;
  const steps: Step[] = [];
  const refused: string[] = [];
  const toHost = (ns: Node[], why: string) => {
    for (const n of ns) {
      if (n.domain !== '' || !hostOps.has(n.op)) refused.push(`node '${n.name}' (${n.op}): ${why}`);
    }
    const last = steps[steps.length - 1];
    if (last?.kind === 'host') last.nodes.push(...ns);
    else steps.push({ kind: 'host', nodes: [...ns], reads: [], writes: [] });
  };
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i];
    const tensor = (name: string) => (name ? g.tensors.get(name) : undefined);
    if (n.domain === '' && aliasOps.has(n.op) && sameQuant(tensor(n.inputs[0]), tensor(n.outputs[0]))
      && numel(tensor(n.inputs[0])!.shape) === numel(tensor(n.outputs[0])!.shape)) {
      aliases.set(n.outputs[0], root(n.inputs[0]));
      continue;
    }
    // DequantizeLinear -> QuantizeLinear (its only reader, next in order): one requantization.
    const next = nodes[i + 1];
    let group = [n];
    let k: Pick<Node, 'name' | 'op' | 'inputs' | 'outputs' | 'attrs'> = n;
    if (n.domain === '' && n.op === 'DequantizeLinear' && next?.domain === '' && next.op === 'QuantizeLinear'
      && next.inputs[0] === n.outputs[0] && readers.get(n.outputs[0]) === 1 && !g.outputs.includes(n.outputs[0])) {
      group = [n, next];
      k = { name: next.name, op: 'QuantizeLinear', inputs: [n.inputs[0]], outputs: next.outputs, attrs: next.attrs };
      i++;
    }
    try {
      let intermediate: Tensor | undefined;
      if (n.domain === fcmDomain) {
        const s = n.attrs.intermediateScale, z = n.attrs.intermediateZeroPoint;
        const x = tensor(n.inputs[0]);
        if (typeof s !== 'number' || typeof z !== 'number' || !x) {
          throw unsupported(`node '${n.name}' (${n.op})`, 'the fused node does not record its intermediate quantization (rewrite it with applyPlan)');
        }
        intermediate = { name: `${n.name}/intermediate`, dtype: x.dtype, shape: [], quant: { scale: [s], zeroPoint: [z] } };
      }
      const program = int8KernelFor({
        node: k, inputs: k.inputs.map((x) => tensor(x)), outputs: k.outputs.map((y) => tensor(y)!), limits, dot4, intermediate,
      }, n.domain);
      const ins = program.inputs.map((j) => root(k.inputs[j]));
      const outs = (program.outputIndices ?? [...Array(program.outputs).keys()]).map((j) => k.outputs[j]);
      steps.push({ kind: 'gpu', node: n.domain === fcmDomain ? n : { ...n, ...k, domain: n.domain }, program, bindings: [...ins, ...outs], nIn: ins.length, group });
    } catch (e) {
      if (!(e instanceof FcmError && e.kind === 'unsupported')) throw e;
      toHost(group, e.message);
    }
  }
  if (refused.length) throw unsupported(g.source, `the integer executor cannot run ${refused.length} node(s): ${refused.join('; ')}`);
  // A dispatch that only reads host values and only feeds the host or the outputs (the output's QUANTIZE after a
  // host Softmax) runs on the host too: an upload, a submission and a read-back fewer.
  const hostMade = (t: string) => g.inputs.includes(t) || steps.some((s) => s.kind === 'host' && s.nodes.some((n) => n.outputs.includes(t)));
  const gpuReads = (t: string) => steps.some((s) => s.kind === 'gpu' && s.bindings.slice(0, s.nIn).includes(t));
  for (let changed = true; changed;) {
    changed = false;
    for (let i = steps.length - 1; i >= 0; i--) {
      const s = steps[i];
      if (s.kind !== 'gpu' || s.node.domain !== '' || !s.group.every((n) => hostOps.has(n.op))) continue;
      const ins = s.bindings.slice(0, s.nIn).filter((x) => !g.tensors.get(x)?.data);
      const outs = s.bindings.slice(s.nIn);
      if (!ins.every(hostMade) || outs.some(gpuReads)) continue;
      steps[i] = { kind: 'host', nodes: s.group, reads: [], writes: [] };
      changed = true;
    }
  }
  for (let i = steps.length - 1; i > 0; i--) {
    const a = steps[i - 1], b = steps[i];
    if (a.kind === 'host' && b.kind === 'host') { a.nodes.push(...b.nodes); steps.splice(i, 1); }
  }
  // Host steps: what they read (not made inside the step, not constant) and write.
  for (const s of steps) {
    if (s.kind !== 'host') continue;
    const made = new Set(s.nodes.flatMap((n) => n.outputs.filter((y) => y)));
    s.writes = [...made];
    s.reads = [...new Set(s.nodes.flatMap((n) => n.inputs.filter((x) => x && !made.has(x) && !g.tensors.get(x)?.data)))];
  }
  return { steps, aliases };
}

// ---- The device -------------------------------------------------------------------------------------------------

const dot4Probe = new WeakMap<GPUDevice, Promise<boolean>>();

/** Whether the device's WGSL accepts packed_4x8_integer_dot_product (device.ts keeps its GPU object private). */
function probeDot4(d: GPUDevice): Promise<boolean> {
  let p = dot4Probe.get(d);
  if (!p) {
    p = (async () => {
      d.pushErrorScope('validation');
      const m = d.createShaderModule({ code: 'requires packed_4x8_integer_dot_product;\n@compute @workgroup_size(1) fn main() { _ = dot4I8Packed(1u, 1u); }' });
      const info = await m.getCompilationInfo();
      const err = await d.popErrorScope();
      return !err && !info.messages.some((x) => x.type === 'error');
    })();
    dot4Probe.set(d, p);
  }
  return p;
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
  const errs = (await Promise.all([d.popErrorScope(), d.popErrorScope(), d.popErrorScope()])).filter((e) => e);
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

// ---- The session ------------------------------------------------------------------------------------------------

export async function createInt8Session(graph: Graph, options: Int8SessionOptions = {}): Promise<Int8Session> {
  const ctx = await acquireGpu();
  if (ctx.lost) throw gpuFailure('WebGPU', `the device was lost (${ctx.lost})`);
  const g = prepareInt8Graph(graph, options.plan ?? 'auto', () => resolveHw(options.hw, ctx));
  const dot4 = options.dot4 ?? (await probeDot4(ctx.device));
  const sched = schedule(g, ctx.kernelLimits, dot4);
  const s = new GpuInt8Session(ctx, g, sched, dot4);
  try {
    await scoped(ctx, `${g.source}: creating the integer session`, () => s.build());
  } catch (e) {
    s.dispose();
    throw e;
  }
  return s;
}

interface Dispatch { pipeline: GPUComputePipeline; bindGroup: GPUBindGroup; size: [number, number, number]; step: GpuStep }
/** A quantized input's GPU quantizer: float feeds are written to `floats` and quantized into the input's buffer. */
interface InputQuantizer { floats: GPUBuffer; pipeline: GPUComputePipeline; bindGroup: GPUBindGroup; size: [number, number, number] }
interface Staged { name: string; src: GPUBuffer; staging: GPUBuffer }
/** What run() does, in order: a run of dispatches (then read-backs), or a host step (then uploads). */
type Phase =
  | { kind: 'gpu'; dispatches: Dispatch[]; readBack: Staged[] }
  | { kind: 'host'; step: HostStep; upload: string[] };

class GpuInt8Session implements Int8Session {
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly inputShapes: Record<string, number[]>;
  private readonly counters = { pipelinesCreated: 0, buffersCreated: 0, bindGroupsCreated: 0, runs: 0, weightBytes: 0 };
  private readonly owned: GPUBuffer[] = [];
  private readonly buffers = new Map<string, GPUBuffer>();
  private readonly phases: Phase[] = [];
  private readonly finalRead: Staged[] = [];
  private readonly quantizers = new Map<string, InputQuantizer>();
  private memory!: MemoryPlan;
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;

  constructor(private readonly ctx: GpuContext, readonly graph: Graph, private readonly sched: Schedule, private readonly dot4: boolean) {
    this.inputNames = [...graph.inputs];
    this.outputNames = [...graph.outputs];
    this.inputShapes = Object.fromEntries(graph.inputs.map((x) => [x, [...graph.tensors.get(x)!.shape]]));
  }

  private root(t: string): string { return this.sched.aliases.get(t) ?? t; }

  private tensor(name: string): Tensor { return this.graph.tensors.get(name)!; }

  private bytesOf(name: string): number {
    const t = this.tensor(name);
    const where = `${this.graph.source}: tensor '${name}'`;
    if (t.shapeUnknown) throw unsupported(where, 'has no static shape');
    if (!isQ(t)) throw unsupported(where, `is ${t.dtype}: integer kernels read and write quantized 8-bit tensors`);
    const b = 4 * packedWords(numel(t.shape));
    if (b > this.ctx.limits.maxStorageBufferBindingSize) throw overLimit(where, `${b} bytes is over the adapter's maxStorageBufferBindingSize of ${this.ctx.limits.maxStorageBufferBindingSize}`);
    return b;
  }

  private buffer(size: number, usage: number, label: string, data?: Uint32Array): GPUBuffer {
    const b = this.ctx.device.createBuffer({ size: Math.max(4, Math.ceil(size / 4) * 4), usage, label, mappedAtCreation: !!data });
    if (data) {
      new Uint32Array(b.getMappedRange()).set(data);
      b.unmap();
    }
    this.counters.buffersCreated++;
    this.owned.push(b);
    return b;
  }

  private pipeline(p: Int8Program): GPUComputePipeline {
    const key = `int8:${p.cacheKey}`;
    let pipeline = this.ctx.pipelines.get(key);
    if (!pipeline) {
      const module = this.ctx.device.createShaderModule({ code: p.wgsl, label: p.name });
      // Synchronous, as session.ts: createComputePipelineAsync crashes Dawn on lavapipe for some shaders.
      pipeline = this.ctx.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: p.name });
      this.ctx.pipelines.set(key, pipeline);
      this.counters.pipelinesCreated++;
    }
    return pipeline;
  }

  build(): void {
    const g = this.graph, d = this.ctx.device;
    const S = GPUBufferUsage.STORAGE, CS = GPUBufferUsage.COPY_SRC, CD = GPUBufferUsage.COPY_DST, MR = GPUBufferUsage.MAP_READ;
    const steps = this.sched.steps;
    const isConst = (t: string) => this.tensor(t).data !== undefined;
    const onGpu = (t: string) => steps.some((s) => s.kind === 'gpu' && s.bindings.includes(t));
    // Activation buffers: the tensors GPU steps bind; host steps read or write the ones that cross.
    const memSteps = steps.map((s) => (s.kind === 'gpu'
      ? { reads: s.bindings.slice(0, s.nIn).filter((x) => !isConst(x)), writes: s.bindings.slice(s.nIn) }
      : { reads: s.reads.map((x) => this.root(x)).filter(onGpu), writes: s.writes.map((y) => this.root(y)).filter(onGpu) }));
    const gpuInputs = g.inputs.map((x) => this.root(x)).filter(onGpu);
    const gpuOutputs = g.outputs.map((y) => this.root(y)).filter((y) => onGpu(y) && !steps.some((s) => s.kind === 'host' && s.writes.includes(y)));
    this.memory = planMemory({ inputs: gpuInputs, outputs: gpuOutputs, steps: memSteps, bytes: (t) => this.bytesOf(t) });
    const slots = this.memory.slotBytes.map((b, i) => this.buffer(b, S | CS | CD, `int8 slot ${i}`));
    for (const [t, s] of this.memory.slotOf) this.buffers.set(t, slots[s]);
    // Float feeds of quantized inputs that only GPU steps read are quantized on the GPU (kernels/int8/quantize-input.ts).
    for (const x of g.inputs) {
      const t = this.tensor(x), dst = this.buffers.get(this.root(x));
      if (!isQ(t) || !dst || steps.some((s) => s.kind === 'host' && s.reads.some((r) => this.root(r) === this.root(x)))) continue;
      const p = int8QuantizeInput(numel(t.shape), { scale: t.quant!.scale[0], zeroPoint: t.quant!.zeroPoint[0] ?? 0 }, t.dtype as QType, this.ctx.limits, x);
      const pipeline = this.pipeline(p);
      const floats = this.buffer(4 * numel(t.shape), S | CD, `float feed ${x}`);
      const th = this.buffer(p.constants[0].data.byteLength, S, `${x}: quantizer thresholds`, p.constants[0].data);
      const bindGroup = d.createBindGroup({
        layout: pipeline.getBindGroupLayout(0), label: p.name,
        entries: [floats, th, dst].map((buffer, binding) => ({ binding, resource: { buffer } })),
      });
      this.counters.bindGroupsCreated++;
      this.quantizers.set(x, { floats, pipeline, bindGroup, size: p.dispatch });
    }

    const gpuWritten = new Set(steps.flatMap((s) => (s.kind === 'gpu' ? s.bindings.slice(s.nIn) : [])));
    let phase: Phase | undefined;
    for (const st of steps) {
      if (st.kind === 'host') {
        // Read back what the host step needs from the GPU (host steps always follow a GPU phase, consecutive host
        // nodes being one step); upload what later dispatches read.
        const need = [...new Set(st.reads.map((x) => this.root(x)))].filter((r) => gpuWritten.has(r));
        if (need.length && phase?.kind !== 'gpu') throw new Error(`internal: host step reads '${need[0]}' with no GPU work before it`);
        for (const r of need) {
          (phase as Extract<Phase, { kind: 'gpu' }>).readBack.push({ name: r, src: this.buffers.get(r)!, staging: this.buffer(this.bytesOf(r), MR | CD, `read ${r}`) });
        }
        phase = { kind: 'host', step: st, upload: st.writes.map((y) => this.root(y)).filter((y) => this.buffers.has(y)) };
        this.phases.push(phase);
        continue;
      }
      if (phase?.kind !== 'gpu') { phase = { kind: 'gpu', dispatches: [], readBack: [] }; this.phases.push(phase); }
      const p = st.program;
      const pipeline = this.pipeline(p);
      if (p.workgroupStorageBytes > this.ctx.limits.maxComputeWorkgroupStorageSize) {
        throw overLimit(`${g.source}: node '${st.node.name}'`, `${p.name} needs ${p.workgroupStorageBytes} bytes of workgroup storage, the adapter allows ${this.ctx.limits.maxComputeWorkgroupStorageSize}`);
      }
      // Constant activation operands (e.g. an Add of a constant) are packed like activations, once.
      const ins = st.bindings.slice(0, st.nIn).map((x) => {
        if (!this.buffers.has(x) && isConst(x)) {
          this.buffers.set(x, this.buffer(4 * packedWords(numel(this.tensor(x).shape)), S, x, pack8(this.tensor(x).data as ArrayLike<number>)));
        }
        return this.buffers.get(x)!;
      });
      const consts = p.constants.map((c) => {
        const b = this.buffer(c.data.byteLength, S, `${st.node.name}: ${c.name}`, c.data);
        this.counters.weightBytes += b.size;
        return b;
      });
      const outs = st.bindings.slice(st.nIn).map((y) => this.buffers.get(y)!);
      const all = [...ins, ...consts, ...outs];
      if (all.some((b) => !b)) throw new Error(`internal: a binding of '${st.node.name}' has no buffer`);
      const bindGroup = d.createBindGroup({
        layout: pipeline.getBindGroupLayout(0), label: `${st.node.name}: ${p.name}`,
        entries: all.map((buffer, binding) => ({ binding, resource: { buffer } })),
      });
      this.counters.bindGroupsCreated++;
      phase.dispatches.push({ pipeline, bindGroup, size: p.dispatch, step: st });
    }
    for (const y of gpuOutputs) {
      this.finalRead.push({ name: y, src: this.buffers.get(y)!, staging: this.buffer(this.bytesOf(y), MR | CD, `read ${y}`) });
    }
  }

  // ---- running ----

  /** The feeds as host values of the graph inputs (or, for raw feeds of a float input, of its QuantizeLinear). */
  private hostFeeds(feeds: Int8Feeds, floats: Map<string, Float32Array>): Map<string, Value> {
    const g = this.graph;
    if (this.disposed) throw invalid(g.source, 'the session was disposed');
    if (typeof feeds !== 'object' || feeds === null) throw invalid(g.source, 'run() takes an object of named typed arrays');
    for (const k of Object.keys(feeds)) if (!g.inputs.includes(k)) throw invalid(g.source, `'${k}' is not an input of the model (inputs: ${g.inputs.join(', ')})`);
    const values = new Map<string, Value>();
    for (const x of g.inputs) {
      const t = this.tensor(x);
      const v = feeds[x];
      const shape = [...t.shape], n = numel(shape);
      const want = `a Float32Array${isQ(t) ? ` or ${t.dtype === 'int8' ? 'Int8Array' : 'Uint8Array'}` : ''} of ${n} values [${shape.join(',')}]`;
      if (!(v instanceof Float32Array || v instanceof Int8Array || v instanceof Uint8Array)) throw invalid(g.source, `input '${x}' must be ${want}`);
      if (v.length !== n) throw invalid(g.source, `input '${x}' has ${v.length} values, the model takes [${shape.join(',')}] = ${n}`);
      const raw = !(v instanceof Float32Array);
      if (isQ(t)) {
        if (raw && (v instanceof Int8Array) !== (t.dtype === 'int8')) throw invalid(g.source, `input '${x}' is ${t.dtype}: give ${want}`);
        const q = { scale: t.quant!.scale[0], zeroPoint: t.quant!.zeroPoint[0] ?? 0 };
        if (!raw && this.quantizers.has(x)) floats.set(x, v as Float32Array);
        else values.set(x, { data: raw ? v : quantizeF32(v, q, t.dtype), shape });
      } else if (raw) {
        // Raw values of a float input: those of the QuantizeLinear that is its only reader.
        const readers = this.graph.nodes.filter((nd) => nd.inputs.includes(x));
        const q = readers.length === 1 && readers[0].op === 'QuantizeLinear' ? this.tensor(readers[0].outputs[0]) : undefined;
        if (!q || !isQ(q) || (v instanceof Int8Array) !== (q.dtype === 'int8')) {
          throw invalid(g.source, `input '${x}' is float32: give a Float32Array${q && isQ(q) ? `, or the ${q.dtype} values of '${q.name}'` : ''}`);
        }
        values.set(q.name, { data: v, shape: [...q.shape] });
      } else {
        values.set(x, { data: v, shape });
      }
    }
    return values;
  }

  private upload(values: Map<string, Value>, names: Iterable<string>): void {
    for (const name of names) {
      const v = values.get(name);
      const b = this.buffers.get(this.root(name));
      if (!v || !b) continue;
      const words = pack8(v.data as ArrayLike<number>);
      this.ctx.device.queue.writeBuffer(b, 0, words.buffer, words.byteOffset, words.byteLength);
    }
  }

  private async readBack(values: Map<string, Value>, staged: Staged[]): Promise<void> {
    await Promise.all(staged.map((r) => r.staging.mapAsync(GPUMapMode.READ)));
    for (const r of staged) {
      const t = this.tensor(r.name);
      const words = new Uint32Array(r.staging.getMappedRange().slice(0));
      r.staging.unmap();
      values.set(r.name, { data: unpack8(words, numel(t.shape), t.dtype as QType), shape: [...t.shape] });
    }
  }

  private runHost(values: Map<string, Value>, st: HostStep): void {
    const g = this.graph;
    // A raw feed stands for the QuantizeLinear that reads a float input: skip the nodes whose outputs are known.
    const nodes = st.nodes.filter((n) => !n.outputs.every((y) => !y || values.has(y)));
    if (!nodes.length) return;
    const made = new Set(nodes.flatMap((n) => n.outputs));
    const reads = [...new Set(nodes.flatMap((n) => n.inputs.filter((x) => x && !made.has(x) && !this.tensor(x).data)))];
    const inputs: Inputs = {};
    for (const x of reads) {
      const v = values.get(x) ?? values.get(this.root(x));
      if (!v) throw new Error(`internal: host step needs '${x}', which has no value`);
      inputs[x] = v.data;
    }
    const res = runInt8Reference({ ...g, inputs: reads, outputs: [...made].filter((y) => y), nodes }, inputs);
    for (const y of made) if (y) values.set(y, res.values.get(y)!);
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const r = this.queue.then(f, f);
    this.queue = r.catch(() => undefined);
    return r;
  }

  /** One inference. `time`: profile each dispatch (own pass with timestamps, or own submission) and host step. */
  private async execute(feeds: Int8Feeds, time?: Int8StepProfile[]): Promise<Map<string, Value>> {
    const d = this.ctx.device, g = this.graph;
    const floats = new Map<string, Float32Array>();
    const values = this.hostFeeds(feeds, floats);
    this.upload(values, g.inputs.filter((x) => this.buffers.has(this.root(x))));
    let enc: GPUCommandEncoder | undefined;
    let pass: GPUComputePassEncoder | undefined;
    let inPart = 0;
    for (const [x, v] of floats) {
      const qz = this.quantizers.get(x)!;
      d.queue.writeBuffer(qz.floats, 0, v.buffer, v.byteOffset, v.byteLength);
      if (time) {
        const [ms] = await this.timeDispatches([qz]);
        time.push({ node: `quantize input ${x}`, op: 'QuantizeLinear', where: 'gpu', ms });
        continue;
      }
      inPart++;
      enc ??= d.createCommandEncoder();
      pass ??= enc.beginComputePass();
      pass.setPipeline(qz.pipeline);
      pass.setBindGroup(0, qz.bindGroup);
      pass.dispatchWorkgroups(...qz.size);
    }
    const submit = async (staged: Staged[]) => {
      inPart = 0;
      if (!enc && !staged.length) return;
      enc ??= d.createCommandEncoder();
      pass?.end();
      pass = undefined;
      for (const r of staged) enc.copyBufferToBuffer(r.src, 0, r.staging, 0, r.staging.size);
      d.queue.submit([enc.finish()]);
      enc = undefined;
      if (staged.length) await this.readBack(values, staged);
    };
    for (const ph of this.phases) {
      if (ph.kind === 'gpu') {
        if (time) {
          // Each dispatch in its own timestamped pass, the phase's passes in one command buffer: per-dispatch
          // submissions would leave the GPU idle between them, and it clocks down.
          const ms = await this.timeDispatches(ph.dispatches);
          ph.dispatches.forEach((x, i) => time.push({ node: x.step.node.name, op: x.step.node.op, where: 'gpu', ms: ms[i] }));
        }
        for (const x of time ? [] : ph.dispatches) {
          // As in session.ts: submit in parts so the GPU starts while the host encodes the rest.
          if (inPart === defaultSubmitEvery) await submit([]);
          inPart++;
          enc ??= d.createCommandEncoder();
          pass ??= enc.beginComputePass();
          pass.setPipeline(x.pipeline);
          pass.setBindGroup(0, x.bindGroup);
          pass.dispatchWorkgroups(...x.size);
        }
        if (ph.readBack.length) await submit(ph.readBack);
      } else {
        // Pending dispatches go first: the uploads may reuse their buffers (memory.ts shares slots by lifetime).
        await submit([]);
        const t0 = performance.now();
        this.runHost(values, ph.step);
        this.upload(values, ph.upload);
        time?.push(...ph.step.nodes.map((n, i) => ({ node: n.name, op: n.op, where: 'host' as const, ms: i === 0 ? performance.now() - t0 : 0 })));
      }
    }
    await submit(this.finalRead);
    return values;
  }

  private async timeDispatches(xs: readonly Pick<Dispatch, 'pipeline' | 'bindGroup' | 'size'>[]): Promise<number[]> {
    const d = this.ctx.device;
    if (!this.ctx.timestamps) {
      const r: number[] = [];
      for (const x of xs) r.push(await wallTimeDispatch(d, x));
      return r;
    }
    const r: number[] = [];
    // A query set holds at most 4096 queries: 2 per dispatch.
    for (let c0 = 0; c0 < xs.length; c0 += 2048) {
      const part = xs.slice(c0, c0 + 2048), n = 2 * part.length;
      // Profiling only: these query objects are made per call, outside run().
      const querySet = d.createQuerySet({ type: 'timestamp', count: n });
      const resolve = d.createBuffer({ size: 8 * n, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      const read = d.createBuffer({ size: 8 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      try {
        const enc = d.createCommandEncoder();
        part.forEach((x, k) => {
          const pass = enc.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * k, endOfPassWriteIndex: 2 * k + 1 } });
          pass.setPipeline(x.pipeline);
          pass.setBindGroup(0, x.bindGroup);
          pass.dispatchWorkgroups(...x.size);
          pass.end();
        });
        enc.resolveQuerySet(querySet, 0, n, resolve, 0);
        enc.copyBufferToBuffer(resolve, 0, read, 0, 8 * n);
        d.queue.submit([enc.finish()]);
        await read.mapAsync(GPUMapMode.READ);
        const ts = new BigUint64Array(read.getMappedRange().slice(0));
        read.unmap();
        for (let k = 0; k < part.length; k++) r.push(ts[2 * k + 1] > ts[2 * k] ? Number(ts[2 * k + 1] - ts[2 * k]) / 1e6 : 0);
      } finally {
        querySet.destroy();
        resolve.destroy();
        read.destroy();
      }
    }
    return r;
  }

  async run(feeds: Int8Feeds): Promise<Int8RunOutputs> {
    return this.serial(async () => {
      const values = await scoped(this.ctx, `${this.graph.source}: run`, () => this.execute(feeds));
      this.counters.runs++;
      const out: Int8RunOutputs = Object.create(null);
      for (const y of this.graph.outputs) {
        const t = this.tensor(y);
        const v = values.get(y) ?? values.get(this.root(y));
        if (!v) throw new Error(`internal: output '${y}' was not computed`);
        if (isQ(t)) {
          const quant = { scale: t.quant!.scale[0], zeroPoint: t.quant!.zeroPoint[0] ?? 0 };
          // An aliased output (a Reshape) has the values of its root, typed as the output.
          const raw = v.data as Int8Array | Uint8Array;
          out[y] = { shape: [...t.shape], dtype: t.dtype, data: dequantize(raw, quant), raw, quant };
        } else {
          out[y] = { shape: [...t.shape], dtype: t.dtype, data: Float32Array.from(v.data as ArrayLike<number>) };
        }
      }
      return out;
    });
  }

  async profile(feeds: Int8Feeds): Promise<Int8Profile> {
    return this.serial(async () => {
      const steps: Int8StepProfile[] = [];
      await scoped(this.ctx, `${this.graph.source}: profile`, () => this.execute(feeds, steps));
      return { method: this.ctx.timestamps ? 'timestamp' : 'wall', totalMs: steps.reduce((a, s) => a + s.ms, 0), steps };
    });
  }

  stats(): Int8SessionStats {
    const dispatches = this.phases.flatMap((p) => (p.kind === 'gpu' ? p.dispatches : []));
    // One round trip per GPU phase, and a last one to copy outputs when a host step came after the last phase;
    // each phase submitted in parts of defaultSubmitEvery dispatches.
    const last = this.phases[this.phases.length - 1];
    const gpuPhases = this.phases.flatMap((p) => (p.kind === 'gpu' && p.dispatches.length ? [p.dispatches.length] : []));
    const tail = this.finalRead.length && last?.kind === 'host' ? 1 : 0;
    return {
      dispatchesPerRun: dispatches.length,
      commandBuffersPerRun: gpuPhases.reduce((a, n) => a + Math.ceil(n / defaultSubmitEvery), 0) + tail,
      readBacksPerRun: gpuPhases.length + tail,
      fusedModules: dispatches.filter((x) => x.step.node.domain === fcmDomain).length,
      hostNodes: this.sched.steps.flatMap((s) => (s.kind === 'host' ? s.nodes.map((n) => n.name) : [])),
      inputQuantizers: [...this.quantizers.keys()],
      dot4: this.dot4,
      pipelinesCreated: this.counters.pipelinesCreated,
      buffersCreated: this.counters.buffersCreated,
      bindGroupsCreated: this.counters.bindGroupsCreated,
      activationBytes: this.memory?.peakBytes ?? 0,
      activationBytesUnshared: this.memory?.unsharedBytes ?? 0,
      weightBytes: this.counters.weightBytes,
      runs: this.counters.runs,
    };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const b of this.owned) b.destroy();
    this.owned.length = 0;
    this.buffers.clear();
  }
}

/**
 * Whether the integer executor runs `g` with every node on the GPU except the host conversions at its ends
 * (float input quantization; Softmax, Quantize and Dequantize of the outputs): what createSession's int8: 'auto'
 * asks before routing a quantized graph here. Returns the nodes that would run on the host in the middle.
 */
export function int8Coverage(g: Graph, limits: GpuContext['kernelLimits'], dot4 = false): { ok: boolean; hostNodes: string[]; middle: string[]; reason?: string } {
  let sched: Schedule;
  try {
    sched = schedule(unmask(fuseEpilogues(maskEpilogues(g))), limits, dot4);
  } catch (e) {
    if (e instanceof FcmError) return { ok: false, hostNodes: [], middle: [], reason: e.message };
    throw e;
  }
  const steps = sched.steps;
  const firstGpu = steps.findIndex((s) => s.kind === 'gpu');
  const lastGpu = steps.length - 1 - [...steps].reverse().findIndex((s) => s.kind === 'gpu');
  const hostNodes = steps.flatMap((s) => (s.kind === 'host' ? s.nodes.map((n) => n.name) : []));
  if (firstGpu < 0) return { ok: false, hostNodes, middle: [], reason: 'no node has an integer kernel' };
  const middle = steps.slice(firstGpu, lastGpu + 1).flatMap((s) => (s.kind === 'host' ? s.nodes.map((n) => `${n.name} (${n.op})`) : []));
  const ends = steps.filter((_, i) => i < firstGpu || i > lastGpu).flatMap((s) => (s.kind === 'host' ? s.nodes : []));
  const endOk = ends.every((n) => ['QuantizeLinear', 'DequantizeLinear', 'Softmax', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity'].includes(n.op));
  const ok = middle.length === 0 && endOk;
  return {
    ok, hostNodes, middle,
    reason: ok ? undefined : middle.length ? `no integer kernel for ${middle.join(', ')}` : 'host steps other than input/output conversions',
  };
}

// ---- createSession's route (int8: 'auto') -----------------------------------------------------------------------

/**
 * For createSession: a quantized graph whose nodes all have integer kernels (int8Coverage) runs on the integer
 * executor, behind the float Session interface (real values in and out); anything else, or `int8: 'dequantize'`,
 * or extra outputs (per-layer checks read float intermediates), keeps the dequantized float path. Returns the
 * session, or the loaded graph for the float path (so the model is read once).
 */
export async function routeInt8(model: ModelInput, options: SessionOptions & { int8?: 'auto' | 'dequantize' }): Promise<{ session: Session } | { model: ModelInput }> {
  if (options.int8 === 'dequantize' || options.extraOutputs?.length) return { model };
  const g = typeof model === 'object' && !(model instanceof Uint8Array) ? model : await loadModel(model, { batch: options.batch, inputShapes: options.inputShapes });
  if (!isQuantizedGraph(g)) return { model: g };
  const ctx = await acquireGpu();
  if (!int8Coverage(g, ctx.kernelLimits, await probeDot4(ctx.device)).ok) return { model: g };
  const s = await createInt8Session(g, { plan: options.plan, hw: options.hw });
  return { session: new Int8AsFloatSession(s) };
}

class Int8AsFloatSession implements Session {
  readonly path = 'int8' as const;
  constructor(private readonly s: Int8Session) {}
  get graph() { return this.s.graph; }
  get inputNames() { return this.s.inputNames; }
  get outputNames() { return this.s.outputNames; }
  get inputShapes() { return this.s.inputShapes; }
  async run(feeds: Record<string, Float32Array>): Promise<RunResult> {
    const out = await this.s.run(feeds);
    const r: RunResult = Object.create(null);
    for (const [k, v] of Object.entries(out)) r[k] = { data: v.data, shape: v.shape };
    return r;
  }
  async profile(feeds?: Record<string, Float32Array>): Promise<Profile> {
    if (!feeds) throw invalid(this.s.graph.source, 'profiling the integer executor needs inputs');
    const p = await this.s.profile(feeds);
    return {
      method: p.method, totalMs: p.totalMs,
      note: 'integer kernels; host steps (input/output conversions) as wall time',
      nodes: p.steps.map((x) => ({ node: x.node, op: x.op, programs: [x.where === 'gpu' ? x.op : `${x.op} (host)`], ms: x.ms })),
    };
  }
  passGpuMs(): Promise<number> {
    return Promise.reject(unsupported(this.s.graph.source, 'pass timing is not available on the integer executor'));
  }
  timeNodes(): Promise<number[]> {
    return Promise.reject(unsupported(this.s.graph.source, 'node timing is not available on the integer executor'));
  }
  stats(): SessionStats {
    const s = this.s.stats();
    return {
      dispatchesPerRun: s.dispatchesPerRun, passesPerRun: s.commandBuffersPerRun, pipelinesCreated: s.pipelinesCreated,
      buffersCreated: s.buffersCreated, bindGroupsCreated: s.bindGroupsCreated, activationBytes: s.activationBytes,
      activationBytesUnshared: s.activationBytesUnshared, weightBytes: s.weightBytes, runs: s.runs,
    };
  }
  dispose(): void { this.s.dispose(); }
}
