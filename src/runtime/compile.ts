// From a graph to the schedule the executor runs, without touching the GPU, for each precision: each node's kernel
// programs (kernels/registry.ts), an alias for reshape-like ops, host steps where the precision has a host
// fallback (int8: the integer reference; float: the ops of host-float.ts), tensor sizes checked against the adapter's limits, and the activation
// memory plan. Every node no kernel can run is collected first and refused in one error, before any GPU work.
//
// int8 steps. Every live node becomes a GPU dispatch when int8KernelFor has a kernel for it; a DequantizeLinear
// whose only reader is a QuantizeLinear runs as one requantization of the 8-bit tensor (TFLite's QUANTIZE between
// two 8-bit tensors, as the importer spells it); reshape-like ops keeping the quantization are aliases. Three
// folds save dispatches the float schedule never has, each bit-exact and taken only where the kernel accepts it
// (else the nodes run as they were): a residual Add runs in the epilogue of the Conv or FCM computing one of its
// operands (residualFolds); a QUANTIZE that only shifts the grid by 128 between int8 and uint8 (the model's uint8
// input to int8, the Softmax's int8 output to uint8) runs inside the Conv that reads it (flipped input bytes) or
// the Softmax that feeds it. Nodes without an integer kernel run on the host with the integer reference itself
// (src/quant/run-reference.ts), so the result stays bit-exact: typically the float input's QuantizeLinear, a
// refused Softmax and the output's Quantize/Dequantize.

import { type Graph, type Node, type Tensor, fcmDomain, numel } from '../graph/ir.js';
import { FcmError, checkedProduct, invalid, overLimit, unsupported } from '../errors.js';
import type { KernelLimits, KernelProgram } from '../../kernels/program.js';
import { type KernelFeatures, aliasOps, int8KernelFor, kernelFor, opLabel } from '../../kernels/registry.js';
import { type Int8Program, type Int8SmxSupport, packedWords } from '../../kernels/int8/common.js';
import { type StorageType, storageBytes } from '../../kernels/f16.js';
import type { QType } from '../quant/reference.js';
import { type MemoryPlan, type MemoryStep, planMemory } from './memory.js';
import { checkFloatHostNode, runsOnFloatHost } from './host-float.js';
import { type ConstantBlock, type View, blockViews } from './views.js';

/** One dispatch: a program and the tensors it binds. */
export interface Step {
  node: Node;
  program: KernelProgram;
  /** Tensor names (alias roots) bound in program order: used inputs, then outputs. */
  bindings: string[];
  /** How many of `bindings` are inputs. */
  nIn: number;
  /** The graph nodes this dispatch computes (int8: a DequantizeLinear + QuantizeLinear pair is one). */
  group: Node[];
}

/** Nodes run on the host between dispatches (int8: with the integer reference). */
export interface HostStep {
  /** Runs before steps[at] (after every dispatch when at === steps.length). */
  at: number;
  nodes: Node[];
  /** Tensors it reads (not made inside the step, not constant) and writes. */
  reads: string[];
  writes: string[];
}

export interface Compiled {
  graph: Graph;
  /** The dispatches, in order. */
  steps: Step[];
  /** Host steps, by position among the dispatches (float: host-float.ts's ops; int8: the integer reference). */
  host: HostStep[];
  /** Alias tensor -> the tensor whose buffer it shares (resolved to the root). */
  aliases: Map<string, string>;
  /** Constant tensors that some program binds. */
  constants: string[];
  memory: MemoryPlan;
  /** Bytes of every tensor the executor holds on the GPU (fp32: 4 per element; fp16: 2, whole u32 words; int8: whole u32 words; at least 4). */
  bytes: Map<string, number>;
  /** Graph outputs (alias roots) read back from the GPU, in graph output order; the others come from host steps. */
  gpuOutputs: string[];
  /**
   * An f16 schedule's tensors kept f32 (src/runtime/f16-islands.ts), with the aliases of each; absent or empty:
   * every tensor has the schedule's storage type.
   */
  f32Tensors?: ReadonlySet<string>;
  /**
   * Float schedules: per pointwise Conv, the kernel variant that runs and the variants it can take (the rule's first;
   * kernels/registry.ts pointwiseVariants), and a note per node whose kernelVariant attribute named none of them.
   */
  kernelVariants?: Map<string, { variant: string; variants: string[] }>;
  kernelFallbacks?: string[];
  /** Float schedules: tensors (alias roots) held in a block of another's buffer (src/runtime/views.ts), by name. */
  views?: Map<string, View>;
  /** Float schedules: values written into views' bases once, when the session is made (src/runtime/views.ts). */
  constantBlocks?: ConstantBlock[];
  /** Float schedules: the Concat and Pad dispatches the views and constant blocks replaced. */
  copiesDropped?: number;
}

export interface CompileLimits extends KernelLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  /** The adapter's limits a dispatch must fit (checked per program by checkProgramLimits; absent: not checked). */
  maxStorageBuffersPerShaderStage?: number;
  maxBindingsPerBindGroup?: number;
  maxBindGroups?: number;
  maxComputeWorkgroupSizeY?: number;
  maxComputeWorkgroupSizeZ?: number;
  /** Where a binding may start in a buffer (src/runtime/views.ts; absent: WebGPU's default, 256 bytes). */
  minStorageBufferOffsetAlignment?: number;
}

/** Dispatches and host steps in execution order. */
export function ordered(c: Pick<Compiled, 'steps' | 'host'>): ({ kind: 'gpu'; step: Step } | { kind: 'host'; step: HostStep })[] {
  const out: ({ kind: 'gpu'; step: Step } | { kind: 'host'; step: HostStep })[] = [];
  for (let i = 0; i <= c.steps.length; i++) {
    for (const h of c.host) if (h.at === i) out.push({ kind: 'host', step: h });
    if (i < c.steps.length) out.push({ kind: 'gpu', step: c.steps[i] });
  }
  return out;
}

/**
 * Most dispatches (one bind group each) a session may have. WebGPU states no such limit, but the driver has one:
 * on lavapipe (Mesa 25.0.7) every bind group costs the process about 1.04 memory mappings (5,000 Relu nodes: +5,434
 * maps; 20,000: +20,764), and once Linux's vm.max_map_count (65,530 by default) is reached Dawn's descriptor-pool
 * allocation inside createBindGroup dies of SIGSEGV, with no error to catch: a chain of 60,000 Relu nodes ran,
 * 100,000 crashed. 50,000 leaves room for the process's other mappings; real CNNs have a few hundred dispatches.
 * Checked by compileGraph and compileInt8, before any GPU work (exit 4).
 */
export const maxDispatches = 50_000;

function checkDispatches(g: Graph, count: number): void {
  if (count > maxDispatches) {
    throw overLimit(g.source, `the schedule has ${count} GPU dispatches, over the limit of ${maxDispatches} per session (each needs a bind group; the driver's descriptor-pool memory runs out past about 62,000 on lavapipe)`);
  }
}

/** Integer attributes the kernels bake into WGSL as u32/i32 constants (geometry, axes, tiles). */
const kernelIntAttrs = ['strides', 'pads', 'dilations', 'kernel', 'kernel_shape', 'group', 'axis', 'axes', 'perm', 'tileFilters1', 'tileFilters2', 'tileH', 'tileW'];

/**
 * Refuses (exit 4) a node whose geometry does not fit the kernels' 32-bit integers: a stride of 2^40 is valid ONNX
 * (the output is one pixel wide) but no WGSL constant can hold it.
 */
function checkKernelIntegers(g: Graph, node: Node): void {
  for (const k of kernelIntAttrs) {
    const v = node.attrs[k];
    const values = typeof v === 'number' ? [v] : Array.isArray(v) ? v : [];
    for (const x of values) {
      if (typeof x === 'number' && Number.isInteger(x) && Math.abs(x) > 2 ** 31 - 1) {
        throw overLimit(`${g.source}: node '${node.name}' (${node.op})`, `attribute ${k} holds ${x}, over the kernels' 32-bit limit of ${2 ** 31 - 1}`);
      }
    }
  }
}

/**
 * Refuses (exit 4, node named) a program the adapter cannot run, before any GPU object is made: its workgroup storage,
 * workgroup size, workgroup count per dimension and storage bindings (one bind group, group 0) against the adapter's
 * limits as the device reports them. Dawn would refuse such a pipeline or dispatch with a validation error (exit 5)
 * or, for a dispatch over maxComputeWorkgroupsPerDimension, skip it silently and leave the output unwritten.
 */
export function checkProgramLimits(g: Graph, node: Pick<Node, 'name' | 'op'>, p: KernelProgram, limits: CompileLimits | KernelLimits): void {
  const where = `${g.source}: node '${node.name}' (${node.op})`;
  const l = limits as Partial<CompileLimits>;
  const over = (what: string, need: number, limit: number | undefined, name: string) => {
    if (limit !== undefined && need > limit) throw overLimit(where, `${p.name} needs ${what} ${need}, over the adapter's ${name} of ${limit}`);
  };
  over('workgroup storage of', p.workgroupStorageBytes, l.maxComputeWorkgroupStorageSize, 'maxComputeWorkgroupStorageSize');
  const [x, y, z] = p.workgroupSize;
  over('a workgroup size x of', x, l.maxComputeWorkgroupSizeX, 'maxComputeWorkgroupSizeX');
  over('a workgroup size y of', y, l.maxComputeWorkgroupSizeY, 'maxComputeWorkgroupSizeY');
  over('a workgroup size z of', z, l.maxComputeWorkgroupSizeZ, 'maxComputeWorkgroupSizeZ');
  over('invocations per workgroup:', x * y * z, l.maxComputeInvocationsPerWorkgroup, 'maxComputeInvocationsPerWorkgroup');
  p.dispatch.forEach((d, i) => over(`workgroups in ${'xyz'[i]}:`, d, l.maxComputeWorkgroupsPerDimension, 'maxComputeWorkgroupsPerDimension'));
  const constants = (p as Partial<Int8Program>).constants?.length ?? 0;
  const bindings = p.inputs.length + constants + (p.outputIndices?.length ?? p.outputs);
  over('storage buffers:', bindings, l.maxStorageBuffersPerShaderStage, 'maxStorageBuffersPerShaderStage');
  over('bindings in its bind group:', bindings, l.maxBindingsPerBindGroup, 'maxBindingsPerBindGroup');
  over('bind groups:', 1, l.maxBindGroups, 'maxBindGroups');
}

/** A kernel's refusal names the node only: the message gets the model file in front, as every message has. */
function withSource(g: Graph, e: unknown): unknown {
  if (!(e instanceof FcmError) || e.message.startsWith(`${g.source}: `)) return e;
  return new FcmError(e.kind, `${g.source}: ${e.message}`, { cause: e });
}

/** Bytes of GPU buffers a session of `c` creates: activations (its memory plan), weights and read-back buffers. */
export function sessionBytes(c: Compiled): number {
  let b = c.memory.peakBytes;
  for (const x of c.constants) b += c.bytes.get(x) ?? 0;
  for (const y of c.gpuOutputs) b += c.bytes.get(y) ?? 0;
  for (const s of c.steps) for (const k of (s.program as Partial<Int8Program>).constants ?? []) b += k.data.byteLength;
  return b;
}

// ---- fp32 -------------------------------------------------------------------------------------------------------

const shapeOf = (g: Graph, name: string): number[] | undefined => {
  if (!name) return undefined;
  const t = g.tensors.get(name);
  if (!t) throw invalid(g.source, `tensor '${name}' is not defined`);
  if (t.shapeUnknown) throw unsupported(g.source, `tensor '${name}' has no static shape`);
  return t.shape;
};

/** Unsupported nodes, one line per op type with its first node, as one FcmError (exit 3). */
function refuseAll(g: Graph, failures: { node: Node; error: FcmError }[]): FcmError {
  const byOp = new Map<string, { node: Node; error: FcmError; count: number }>();
  for (const f of failures) {
    const k = opLabel(f.node);
    const e = byOp.get(k);
    if (e) e.count++;
    else byOp.set(k, { ...f, count: 1 });
  }
  const parts = [...byOp.entries()].map(([op, e]) =>
    `${op} (${e.count} node${e.count > 1 ? 's' : ''}, first '${e.node.name}': ${e.error.message.replace(/^node '[^']*' \([^)]*\): /, '')})`);
  return unsupported(g.source, `the executor cannot run ${byOp.size} op type${byOp.size > 1 ? 's' : ''}: ${parts.join('; ')}`);
}

const floatish = new Set(['float32', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool']);
const integerInput = new Set(['int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64']);

/**
 * The float schedule: every node on the float kernels (or an alias), but those host-float.ts runs on the host
 * (TFLite_Detection_PostProcess) as host steps between dispatches. `storage` 'f16': the kernels'
 * half-storage forms (kernels/f16.ts), every tensor 2 bytes an element. `features`: the device's features that pick
 * kernels of their own (kernels/registry.ts KernelFeatures).
 */
export function compileGraph(g: Graph, limits: CompileLimits, storage: StorageType = 'f32', features: KernelFeatures = {}, keepF32: Iterable<string> = []): Compiled {
  const f32Tensors = storage === 'f16' ? withAliases(g, keepF32) : new Set<string>();
  const storageOf = (t: string): StorageType => (storage === 'f16' && !f32Tensors.has(t) ? 'f16' : 'f32');
  // Reading a tensor the graph never defines is a broken graph, not an unsupported one.
  const defined = new Set([...g.inputs, ...[...g.tensors.values()].filter((t) => t.data).map((t) => t.name)]);
  const failures: { node: Node; error: FcmError }[] = [];
  const kernels: { node: Node; programs: KernelProgram[] | null; host?: true }[] = [];
  const kernelVariants = new Map<string, { variant: string; variants: string[] }>();
  const kernelFallbacks: string[] = [];
  for (const node of g.nodes) {
    for (const x of node.inputs) {
      if (x && !defined.has(x)) throw invalid(g.source, `node '${node.name}' reads '${x}', which no earlier node produces`);
    }
    node.outputs.forEach((y) => y && defined.add(y));
    if (runsOnFloatHost(node)) {
      checkFloatHostNode(g, node);
      kernels.push({ node, programs: null, host: true });
      continue;
    }
    checkKernelIntegers(g, node);
    if (node.domain === '' && node.op === 'If' && typeof node.attrs.notInlined === 'string') {
      // An If the graph passes could not inline (src/graph/passes/inline-if.ts): why, in the refusal.
      failures.push({ node, error: unsupported(`node '${node.name}' (If)`, node.attrs.notInlined) });
      continue;
    }
    try {
      const ins = node.inputs.map((x) => shapeOf(g, x));
      const outs = node.outputs.map((y) => shapeOf(g, y) ?? []);
      const k = kernelFor(node, ins, outs, limits, f32Tensors.size ? storageOf : storage, features);
      kernels.push({ node, programs: k.kind === 'alias' ? null : k.programs });
      if (k.kind === 'programs' && k.variant && k.variants) kernelVariants.set(node.name, { variant: k.variant, variants: k.variants });
      if (k.kind === 'programs' && k.fallback) kernelFallbacks.push(k.fallback);
    } catch (e) {
      if (e instanceof FcmError && e.kind === 'unsupported') failures.push({ node, error: e });
      else throw withSource(g, e);
    }
  }
  if (failures.length) throw refuseAll(g, failures);
  for (const name of g.outputs) if (!defined.has(name)) throw invalid(g.source, `graph output '${name}' is never produced`);
  checkDispatches(g, kernels.reduce((c, k) => c + (k.programs?.length ?? 0), 0));

  // Every tensor the executor touches is f32 (f16) of a static shape within the binding limit; buffers and bindings
  // are whole 4-byte words.
  const bytes = new Map<string, number>();
  const sizeOf = (name: string): number => {
    let b = bytes.get(name);
    if (b !== undefined) return b;
    const t = g.tensors.get(name) as Tensor;
    const where = `${g.source}: tensor '${name}'`;
    const isConst = t.data !== undefined;
    // Bool and integer tensors between nodes (comparisons, Cast) hold their values as float32 (bool: 0 or 1;
    // integers exact up to 2^24); what the caller feeds and reads back is float32. An integer graph input (Silero VAD's
    // sample rate) is fed as float32 values too; an integer output would read back as float32, and is refused.
    const io = g.outputs.includes(name) || (g.inputs.includes(name) && !integerInput.has(t.dtype));
    if (!isConst && t.dtype !== 'float32' && (io || !floatish.has(t.dtype))) throw unsupported(where, `has dtype ${t.dtype}; the executor runs float32 tensors`);
    if (isConst && !floatish.has(t.dtype)) throw unsupported(where, `constant of dtype ${t.dtype} cannot be read as float32`);
    const n = checkedProduct(t.shape, where);
    // An empty tensor (a dimension 0) still gets a binding of one vec4: a kernel may read it as vec4 elements (its
    // element count is a multiple of 4), and WebGPU refuses a binding smaller than one element.
    b = n === 0 ? 16 : Math.max(4, 4 * Math.ceil(checkedProduct([n, storageBytes(storageOf(name))], where) / 4));
    if (b > limits.maxStorageBufferBindingSize) {
      throw overLimit(where, `[${t.shape.join(',')}] ${storageOf(name) === 'f16' ? 'float16' : 'float32'} is ${b} bytes, over the adapter's maxStorageBufferBindingSize of ${limits.maxStorageBufferBindingSize}`);
    }
    if (b > limits.maxBufferSize) throw overLimit(where, `${b} bytes is over the adapter's maxBufferSize of ${limits.maxBufferSize}`);
    bytes.set(name, b);
    return b;
  };

  const aliases = new Map<string, string>();
  const root = (name: string) => aliases.get(name) ?? name;
  const steps: Step[] = [];
  const constants = new Set<string>();
  const host: HostStep[] = [];
  for (const k of kernels) {
    const node = k.node;
    if (k.host) {
      // Consecutive host nodes are one step, run before the next dispatch.
      const last = host[host.length - 1];
      if (last && last.at === steps.length) last.nodes.push(node);
      else host.push({ at: steps.length, nodes: [node], reads: [], writes: [] });
      continue;
    }
    if (!k.programs) {
      const src = node.inputs[0], dst = node.outputs[0];
      sizeOf(src);
      sizeOf(dst);
      if (numel(g.tensors.get(dst)!.shape) !== numel(g.tensors.get(src)!.shape)) throw invalid(g.source, `node '${node.name}' (${node.op}) changes the element count`);
      aliases.set(dst, root(src));
      continue;
    }
    for (const p of k.programs) {
      const ins = p.inputs.map((i) => {
        const x = node.inputs[i];
        if (!x) throw new Error(`internal: ${p.name} binds absent input ${i} of '${node.name}'`);
        return x;
      });
      const outs = (p.outputIndices ?? [...Array(p.outputs).keys()]).map((i) => node.outputs[i]);
      checkProgramLimits(g, node, p, limits);
      for (const x of [...ins, ...outs]) {
        sizeOf(x);
        if (g.tensors.get(x)?.data !== undefined) constants.add(x);
      }
      for (const y of outs) if (g.tensors.get(y)?.data !== undefined) throw invalid(g.source, `node '${node.name}' writes the constant '${y}'`);
      steps.push({ node, program: p, bindings: [...ins.map(root), ...outs.map(root)], nIn: ins.length, group: [node] });
    }
  }
  const isConst = (name: string) => g.tensors.get(name)?.data !== undefined;
  // Host steps: what they read (not made inside the step, not constant) and write; graph outputs they write are
  // returned from the host, the others read back from the GPU.
  for (const s of host) {
    const made = new Set(s.nodes.flatMap((n) => n.outputs.filter((y) => y)));
    s.writes = [...made];
    s.reads = [...new Set(s.nodes.flatMap((n) => n.inputs.filter((x) => x && !made.has(x) && !isConst(x))))];
  }
  const hostMade = new Set(host.flatMap((s) => s.writes.map(root)));
  const gpuOutputs = g.outputs.map(root).filter((y) => !hostMade.has(y));
  for (const y of gpuOutputs) {
    sizeOf(y);
    // A graph output that is a constant (a weight listed as an output) is read back from its own buffer.
    if (g.tensors.get(y)?.data !== undefined) constants.add(y);
  }
  for (const x of g.inputs) sizeOf(x);

  // Tensors on the GPU: those dispatches bind and the graph's inputs and outputs read back; host steps read back
  // and upload the ones that cross.
  const onGpu = new Set([...steps.flatMap((s) => s.bindings), ...g.inputs.map(root), ...gpuOutputs]);
  // Concat and Pad inputs written into their block of the output's buffer, constant blocks written once: no copies.
  const pinned = new Set([...g.inputs.map(root), ...gpuOutputs, ...[...constants].map(root), ...host.flatMap((s) => [...s.reads, ...s.writes].map(root))]);
  const { views, dropped, constantBlocks } = blockViews({
    graph: g, steps, root, pinned, alignment: limits.minStorageBufferOffsetAlignment,
    elementBytes: (t) => storageBytes(storageOf(t)),
  });
  if (dropped.size) {
    const kept = steps.filter((s) => !dropped.has(s));
    // Host steps run before the dispatch that followed them: their places move down with the dispatches dropped.
    for (const h of host) h.at = kept.filter((s) => steps.indexOf(s) < h.at).length;
    steps.splice(0, steps.length, ...kept);
    // A constant only a dropped copy read needs no buffer.
    const bound = new Set(steps.flatMap((s) => s.bindings));
    for (const k of [...constants]) if (!bound.has(root(k)) && !gpuOutputs.includes(root(k))) constants.delete(k);
  }
  // Bases holding constant blocks keep their buffer for the whole run: the blocks are written once.
  const held = [...new Set(constantBlocks.map((b) => b.base))];
  const bufferOf = (t: string) => views.get(t)?.base ?? t;
  const memSteps: MemoryStep[] = [];
  for (const item of ordered({ steps, host })) {
    if (item.kind === 'gpu') memSteps.push({ reads: item.step.bindings.slice(0, item.step.nIn).filter((x) => !isConst(x)).map(bufferOf), writes: item.step.bindings.slice(item.step.nIn).map(bufferOf) });
    else memSteps.push({ reads: item.step.reads.map(root).filter((x) => onGpu.has(x)), writes: item.step.writes.map(root).filter((x) => onGpu.has(x) && !isConst(x)) });
  }
  for (const s of memSteps) for (const x of s.writes) sizeOf(x);
  const memory = planMemory({
    inputs: [...g.inputs.map(root).filter((x) => !isConst(x)), ...held],
    outputs: [...gpuOutputs.filter((x) => !isConst(x)), ...held],
    steps: memSteps,
    bytes: (name) => bytes.get(name)!,
  });
  noteFallbacks(g, kernelFallbacks);
  return {
    graph: g, steps, host, aliases, constants: [...constants].map(root), memory, bytes, gpuOutputs, ...(f32Tensors.size ? { f32Tensors } : {}),
    ...(kernelVariants.size ? { kernelVariants } : {}), ...(kernelFallbacks.length ? { kernelFallbacks } : {}), ...(views.size ? { views } : {}),
    ...(constantBlocks.length ? { constantBlocks } : {}), ...(dropped.size ? { copiesDropped: dropped.size } : {}),
  };
}

const notedFallbacks = new Set<string>();

/**
 * Kernel choices (a plan's `kernels`, src/planner/plan.ts) that this device or shape cannot take: one line on stderr,
 * once per process and graph (an fp16 session compiles its graph more than once), and the session's stats list them.
 */
function noteFallbacks(g: Graph, notes: readonly string[]): void {
  if (!notes.length) return;
  const line = `fcm-opt: note: ${g.source}: ${notes.length} kernel choice${notes.length > 1 ? 's' : ''} of the plan not taken (first: ${notes[0]})`;
  if (notedFallbacks.has(line)) return;
  notedFallbacks.add(line);
  console.warn(line);
}

/**
 * `names` and every tensor sharing a buffer with one of them through reshape-like ops (aliasOps): an alias reads its
 * root's buffer, so both have one storage type.
 */
function withAliases(g: Graph, names: Iterable<string>): Set<string> {
  const parent = new Map<string, string>();
  const find = (t: string): string => { let r = t; while (parent.has(r)) r = parent.get(r)!; return r; };
  for (const n of g.nodes) {
    if (!aliasOps.has(n.op) || !n.inputs[0] || !n.outputs[0]) continue;
    const a = find(n.inputs[0]), b = find(n.outputs[0]);
    if (a !== b) parent.set(b, a);
  }
  const roots = new Set([...names].map(find));
  const out = new Set<string>();
  for (const t of g.tensors.keys()) if (roots.has(find(t))) out.add(t);
  return out;
}

// ---- int8 -------------------------------------------------------------------------------------------------------

/** Ops runInt8Reference runs (the host fallback). */
const hostOps = new Set([
  'QuantizeLinear', 'DequantizeLinear', 'Conv', 'Gemm', 'Relu', 'Clip', 'Add', 'Sub', 'Mul', 'AveragePool', 'MaxPool',
  'ReduceMean', 'Pad', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Transpose', 'Concat', 'Softmax', 'HardSwish',
  'Sigmoid',
]);

export const isQ = (t: Tensor | undefined): t is Tensor & { dtype: QType } => !!t && (t.dtype === 'int8' || t.dtype === 'uint8') && !!t.quant;

export function sameQuant(a: Tensor | undefined, b: Tensor | undefined): boolean {
  return !!a?.quant && !!b?.quant && a.dtype === b.dtype && a.quant.scale.length === 1 && b.quant.scale.length === 1
    && a.quant.scale[0] === b.quant.scale[0] && (a.quant.zeroPoint[0] ?? 0) === (b.quant.zeroPoint[0] ?? 0);
}

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

interface GpuItem { kind: 'gpu'; step: Step }
interface HostItem { kind: 'host'; nodes: Node[]; reads: string[]; writes: string[] }

/** Bytes of an 8-bit tensor on the GPU (packed, whole u32 words), within the adapter's binding limit. */
function int8Bytes(g: Graph, name: string, limits: CompileLimits): number {
  const t = g.tensors.get(name)!;
  const where = `${g.source}: tensor '${name}'`;
  if (t.shapeUnknown) throw unsupported(where, 'has no static shape');
  if (!isQ(t)) throw unsupported(where, `is ${t.dtype}: integer kernels read and write quantized 8-bit tensors`);
  const b = 4 * packedWords(numel(t.shape));
  if (b > limits.maxStorageBufferBindingSize) throw overLimit(where, `${b} bytes is over the adapter's maxStorageBufferBindingSize of ${limits.maxStorageBufferBindingSize}`);
  return b;
}

/**
 * Whether QUANTIZE from `a` to `b` is an exact shift of every value: 8-bit tensors of the two types, one scale
 * each, equal, and zero points 128 apart (int8 -> uint8: +128). TFLite's requantization then multiplies by 1.0
 * exactly and never clamps.
 */
function shiftedGrids(a: Tensor | undefined, b: Tensor | undefined): boolean {
  if (!isQ(a) || !isQ(b) || a.dtype === b.dtype || a.quant!.scale.length !== 1 || b.quant!.scale.length !== 1) return false;
  const za = a.quant!.zeroPoint[0] ?? 0, zb = b.quant!.zeroPoint[0] ?? 0;
  return a.quant!.scale[0] === b.quant!.scale[0] && zb - za === (a.dtype === 'int8' ? 128 : -128);
}

/** What a dispatch folds besides its node: a residual Add, its output QUANTIZE, or its input's QUANTIZE (an exact shift). */
interface StepFold { residual?: { index: number; add: Node }; requantizedOutput?: boolean; flippedInput?: boolean }

/** The convolutions whose output an integer kernel may add a residual to: node input index of the residual. */
const residualIndex = (n: Node): number | undefined =>
  n.domain === '' && n.op === 'Conv' ? 3 : n.domain === fcmDomain && /^Fused(DwPw|PwPw|PwDw)$/.test(n.op) ? 5 : undefined;

/**
 * The residual Adds of an integer schedule that fold into the convolution (Conv or FCM) computing one of their
 * operands, by that producer: TFLite's ADD then runs in the producer's epilogue on the value it would have stored
 * (Int8KernelArgs.residual), bit for bit as the two ops. Legal where the operand has no other reader and is no
 * graph output, the producer has one output and no residual yet, and the other operand is computed (not a
 * constant) and is not the same tensor. The producer runs at the Add's place, after the residual exists. Of two
 * producers, the later one folds (the other's output is then the residual).
 */
function residualFolds(g: Graph, nodes: Node[], readers: Map<string, number>): Map<Node, { add: Node; index: number; residual: string }> {
  const producer = new Map<string, Node>();
  for (const n of nodes) for (const y of n.outputs) if (y) producer.set(y, n);
  const order = new Map(nodes.map((n, i) => [n, i]));
  const folds = new Map<Node, { add: Node; index: number; residual: string }>();
  for (const a of nodes) {
    if (a.domain !== '' || a.op !== 'Add' || a.inputs.length !== 2 || a.outputs.length !== 1 || a.inputs[0] === a.inputs[1]) continue;
    let best: { p: Node; index: number; residual: string } | undefined;
    for (const side of [0, 1]) {
      const x = a.inputs[side], r = a.inputs[1 - side];
      const p = x ? producer.get(x) : undefined;
      const index = p ? residualIndex(p) : undefined;
      if (!p || index === undefined || !r || g.tensors.get(r)?.data !== undefined || folds.has(p)) continue;
      if (p.outputs.length !== 1 || (p.inputs[index] ?? '') !== '' || readers.get(x) !== 1 || g.outputs.includes(x)) continue;
      if (!best || order.get(p)! > order.get(best.p)!) best = { p, index, residual: r };
    }
    if (best) folds.set(best.p, { add: a, index: best.index, residual: best.residual });
  }
  return folds;
}

/** The int8 schedule of `g` (epilogues folded and planned already): integer kernels, the rest on the host. */
export function compileInt8(g: Graph, limits: CompileLimits, dot4: boolean, subgroupMatrix?: Int8SmxSupport): Compiled {
  // The integer executor reads outputs back from dispatches and host steps; a constant listed as an output is
  // neither. Unsupported here: createSession runs such a graph on the float kernels, which read it back.
  const constOut = g.outputs.find((y) => g.tensors.get(y)?.data !== undefined);
  if (constOut !== undefined) throw unsupported(g.source, `graph output '${constOut}' is a constant; the integer executor reads back computed tensors only`);
  const nodes = liveNodes(g);
  const readers = new Map<string, number>();
  for (const n of nodes) for (const x of n.inputs) if (x) readers.set(x, (readers.get(x) ?? 0) + 1);
  const aliases = new Map<string, string>();
  const root = (t: string) => aliases.get(t) ?? t;
  // The reshape-like nodes made aliases, by output: a host step that reads one of a value it makes itself runs it.
  const aliasNodes = new Map<string, Node>();
  const items: (GpuItem | HostItem)[] = [];
  const refused: string[] = [];
  const toHost = (ns: Node[], why: string) => {
    for (const n of ns) {
      // TFLite_Detection_PostProcess runs on the host as in the float executor, on dequantized inputs (precision.ts).
      if (runsOnFloatHost(n)) checkFloatHostNode(g, n);
      else if (n.domain !== '' || !hostOps.has(n.op)) refused.push(`node '${n.name}' (${n.op}): ${why}`);
    }
    const last = items[items.length - 1];
    if (last?.kind === 'host') last.nodes.push(...ns);
    else items.push({ kind: 'host', nodes: [...ns], reads: [], writes: [] });
  };
  const tensor = (name: string) => (name ? g.tensors.get(name) : undefined);
  // The dispatch of node n as kernel node k (k differs for a requantization pair and a folded Add); throws the
  // kernel's refusal.
  const gpuStep = (n: Node, k: Pick<Node, 'name' | 'op' | 'inputs' | 'outputs' | 'attrs'>, group: Node[], fold: StepFold = {}) => {
    const { residual, requantizedOutput, flippedInput } = fold;
    let intermediate: Tensor | undefined;
    if (n.domain === fcmDomain) {
      const s = n.attrs.intermediateScale, z = n.attrs.intermediateZeroPoint;
      const x = tensor(n.inputs[0]);
      if (typeof s !== 'number' || typeof z !== 'number' || !x) {
        throw unsupported(`node '${n.name}' (${n.op})`, 'the fused node does not record its intermediate quantization (rewrite it with applyPlan)');
      }
      intermediate = { name: `${n.name}/intermediate`, dtype: x.dtype, shape: [], quant: { scale: [s], zeroPoint: [z] } };
    }
    // A folded Add: the kernel computes n's own output (n.outputs[0]'s grid) and stores the Add's sum.
    const outputs = residual ? [tensor(n.outputs[0])!] : k.outputs.map((y) => tensor(y)!);
    // A folded input QUANTIZE: the kernel binds its source (k.inputs[0]) and reads it as n's own input tensor.
    const inputs = k.inputs.map((x, j) => tensor(j === 0 && flippedInput ? n.inputs[0] : x));
    const program: Int8Program = int8KernelFor({
      node: k, inputs, outputs, limits, dot4, intermediate, ...(subgroupMatrix ? { subgroupMatrix } : {}),
      ...(residual ? { residual: { index: residual.index, sum: tensor(residual.add.outputs[0])!, attrs: residual.add.attrs } } : {}),
      ...(requantizedOutput ? { requantizedOutput } : {}),
      ...(flippedInput ? { flippedInput } : {}),
    }, n.domain);
    const ins = program.inputs.map((j) => root(k.inputs[j]));
    const outs = (program.outputIndices ?? [...Array(program.outputs).keys()]).map((j) => k.outputs[j]);
    const node = n.domain === fcmDomain || residual || flippedInput ? { ...n, inputs: k.inputs, outputs: k.outputs } : { ...n, ...k, domain: n.domain };
    items.push({ kind: 'gpu', step: { node, program, bindings: [...ins, ...outs], nIn: ins.length, group } });
  };
  const place = (n: Node, k: Pick<Node, 'name' | 'op' | 'inputs' | 'outputs' | 'attrs'>, group: Node[]) => {
    checkKernelIntegers(g, n);
    try {
      gpuStep(n, k, group);
    } catch (e) {
      if (!(e instanceof FcmError && e.kind === 'unsupported')) throw withSource(g, e);
      toHost(group, e.message);
    }
  };
  // Residual Adds folded into the kernel that computes one of their operands (residualFolds): the producer waits
  // for its Add and runs there, one dispatch for both; where its kernel takes no residual, both run as they were.
  const folds = residualFolds(g, nodes, readers);
  const flipped = new Map<Node, { requant: Pick<Node, 'name' | 'op' | 'inputs' | 'outputs' | 'attrs'>; group: Node[] }>();
  const producerOf = new Map([...folds].map(([p, f]) => [f.add, { p, ...f }]));
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i];
    if (folds.has(n)) continue;
    const fold = producerOf.get(n);
    if (fold) {
      const p = fold.p;
      const ins = [...p.inputs];
      while (ins.length < fold.index) ins.push('');
      ins[fold.index] = fold.residual;
      checkKernelIntegers(g, p);
      try {
        gpuStep(p, { name: p.name, op: p.op, inputs: ins, outputs: n.outputs, attrs: p.attrs }, [p, n], { residual: { index: fold.index, add: n } });
      } catch (e) {
        if (!(e instanceof FcmError && e.kind === 'unsupported')) throw withSource(g, e);
        place(p, p, [p]);
        place(n, n, [n]);
      }
      continue;
    }
    // Softmax -> QUANTIZE to the other 8-bit type's Softmax grid (an exact shift by 128): one dispatch.
    const dq = nodes[i + 1], q = nodes[i + 2];
    if (n.domain === '' && n.op === 'Softmax' && dq?.domain === '' && dq.op === 'DequantizeLinear' && q?.domain === '' && q.op === 'QuantizeLinear'
      && dq.inputs[0] === n.outputs[0] && q.inputs[0] === dq.outputs[0] && readers.get(n.outputs[0]) === 1 && readers.get(dq.outputs[0]) === 1
      && !g.outputs.includes(n.outputs[0]) && !g.outputs.includes(dq.outputs[0]) && shiftedGrids(tensor(n.outputs[0]), tensor(q.outputs[0]))) {
      checkKernelIntegers(g, n);
      try {
        gpuStep(n, { name: n.name, op: n.op, inputs: n.inputs, outputs: q.outputs, attrs: n.attrs }, [n, dq, q], { requantizedOutput: true });
        i += 2;
        continue;
      } catch (e) {
        if (!(e instanceof FcmError && e.kind === 'unsupported')) throw withSource(g, e);
      }
    }
    if (n.domain === '' && aliasOps.has(n.op) && sameQuant(tensor(n.inputs[0]), tensor(n.outputs[0]))
      && numel(tensor(n.inputs[0])!.shape) === numel(tensor(n.outputs[0])!.shape)) {
      aliases.set(n.outputs[0], root(n.inputs[0]));
      aliasNodes.set(n.outputs[0], n);
      continue;
    }
    // DequantizeLinear -> QuantizeLinear (its only reader, next in order): one requantization.
    const next = nodes[i + 1];
    if (n.domain === '' && n.op === 'DequantizeLinear' && next?.domain === '' && next.op === 'QuantizeLinear'
      && next.inputs[0] === n.outputs[0] && readers.get(n.outputs[0]) === 1 && !g.outputs.includes(n.outputs[0])) {
      const requant = { name: next.name, op: 'QuantizeLinear', inputs: [n.inputs[0]], outputs: next.outputs, attrs: next.attrs };
      // An exact shift read by one Conv only (the uint8 model input's QUANTIZE to int8): the Conv reads the
      // source's bytes with their top bit flipped, and runs at its own place; where its kernel cannot, both run.
      const y = next.outputs[0];
      const conv = readers.get(y) === 1 && !g.outputs.includes(y) ? nodes.slice(i + 2).find((r) => r.inputs.includes(y)) : undefined;
      if (conv && conv.domain === '' && conv.op === 'Conv' && conv.inputs[0] === y && !folds.has(conv) && shiftedGrids(tensor(n.inputs[0]), tensor(y))) {
        flipped.set(conv, { requant, group: [n, next] });
      } else {
        place(n, requant, [n, next]);
      }
      i++;
      continue;
    }
    const fl = flipped.get(n);
    if (fl) {
      checkKernelIntegers(g, n);
      try {
        gpuStep(n, { name: n.name, op: n.op, inputs: [fl.requant.inputs[0], ...n.inputs.slice(1)], outputs: n.outputs, attrs: n.attrs }, [...fl.group, n], { flippedInput: true });
      } catch (e) {
        if (!(e instanceof FcmError && e.kind === 'unsupported')) throw withSource(g, e);
        place(fl.group[0], fl.requant, fl.group);
        place(n, n, [n]);
      }
      continue;
    }
    place(n, n, [n]);
  }
  if (refused.length) throw unsupported(g.source, `the integer executor cannot run ${refused.length} node(s): ${refused.join('; ')}`);
  checkDispatches(g, items.filter((s) => s.kind === 'gpu').length);
  // A dispatch that only reads host values and only feeds the host or the outputs (the output's QUANTIZE after a
  // host Softmax) runs on the host too: an upload, a submission and a read-back fewer.
  // What the host makes and how often dispatches read each tensor, kept up to date as dispatches move to the host
  // (a scan of every item per question made long integer models quadratic).
  const hostMadeSet = new Set(g.inputs);
  const gpuReadCount = new Map<string, number>();
  const countReads = (st: Step, by: number) => {
    for (const x of st.bindings.slice(0, st.nIn)) gpuReadCount.set(x, (gpuReadCount.get(x) ?? 0) + by);
  };
  for (const it of items) {
    if (it.kind === 'host') for (const n of it.nodes) for (const y of n.outputs) hostMadeSet.add(y);
    else countReads(it.step, 1);
  }
  const hostMade = (t: string) => hostMadeSet.has(t);
  const gpuReads = (t: string) => (gpuReadCount.get(t) ?? 0) > 0;
  for (let changed = true; changed;) {
    changed = false;
    for (let i = items.length - 1; i >= 0; i--) {
      const s = items[i];
      if (s.kind !== 'gpu' || s.step.node.domain !== '' || !s.step.group.every((n) => hostOps.has(n.op))) continue;
      const ins = s.step.bindings.slice(0, s.step.nIn).filter((x) => !g.tensors.get(x)?.data);
      const outs = s.step.bindings.slice(s.step.nIn);
      if (!ins.every(hostMade) || outs.some(gpuReads)) continue;
      items[i] = { kind: 'host', nodes: s.step.group, reads: [], writes: [] };
      countReads(s.step, -1);
      for (const n of s.step.group) for (const y of n.outputs) hostMadeSet.add(y);
      changed = true;
    }
  }
  for (let i = items.length - 1; i > 0; i--) {
    const a = items[i - 1], b = items[i];
    if (a.kind === 'host' && b.kind === 'host') { a.nodes.push(...b.nodes); items.splice(i, 1); }
  }
  // Host steps: what they read (not made inside the step, not constant) and write. A read of an alias (a Reshape's
  // output) whose source the step makes itself has no buffer to come from: the step runs that node too, before
  // its first reader (the integer reference runs nodes in order).
  for (const s of items) {
    if (s.kind !== 'host') continue;
    for (let added = true; added;) {
      added = false;
      const made = new Set(s.nodes.flatMap((n) => n.outputs.filter((y) => y)));
      for (let i = 0; i < s.nodes.length && !added; i++) {
        for (const x of s.nodes[i].inputs) {
          const a = x ? aliasNodes.get(x) : undefined;
          if (!a || made.has(x) || !made.has(a.inputs[0])) continue;
          s.nodes.splice(i, 0, a);
          added = true;
          break;
        }
      }
    }
    const made = new Set(s.nodes.flatMap((n) => n.outputs.filter((y) => y)));
    s.writes = [...made];
    s.reads = [...new Set(s.nodes.flatMap((n) => n.inputs.filter((x) => x && !made.has(x) && !g.tensors.get(x)?.data)))];
  }

  const steps: Step[] = [];
  const host: HostStep[] = [];
  for (const s of items) {
    if (s.kind === 'gpu') steps.push(s.step);
    else host.push({ at: steps.length, nodes: s.nodes, reads: s.reads, writes: s.writes });
  }
  for (const s of steps) checkProgramLimits(g, s.node, s.program, limits);

  // Activation buffers: the tensors dispatches bind; host steps read or write the ones that cross.
  const isConst = (t: string) => g.tensors.get(t)?.data !== undefined;
  const bound = new Set(steps.flatMap((s) => s.bindings));
  const onGpu = (t: string) => bound.has(t);
  const memSteps: MemoryStep[] = items.map((s) => (s.kind === 'gpu'
    ? { reads: s.step.bindings.slice(0, s.step.nIn).filter((x) => !isConst(x)), writes: s.step.bindings.slice(s.step.nIn) }
    : { reads: s.reads.map(root).filter(onGpu), writes: s.writes.map(root).filter(onGpu) }));
  const gpuInputs = g.inputs.map(root).filter(onGpu);
  const gpuOutputs = g.outputs.map(root).filter((y) => onGpu(y) && !host.some((s) => s.writes.includes(y)));
  const bytes = new Map<string, number>();
  const sizeOf = (t: string) => {
    let b = bytes.get(t);
    if (b === undefined) { b = int8Bytes(g, t, limits); bytes.set(t, b); }
    return b;
  };
  const memory = planMemory({ inputs: gpuInputs, outputs: gpuOutputs, steps: memSteps, bytes: sizeOf });
  // Constant activation operands (e.g. an Add of a constant) are packed like activations.
  const constants = [...new Set(steps.flatMap((s) => s.bindings.slice(0, s.nIn).filter(isConst)))];
  for (const t of constants) bytes.set(t, 4 * packedWords(numel(g.tensors.get(t)!.shape)));
  return { graph: g, steps, host, aliases, constants, memory, bytes, gpuOutputs };
}

/**
 * Whether an int8 schedule runs every node on the GPU except the host conversions at its ends (float input
 * quantization; Softmax, Quantize and Dequantize of the outputs): what createSession's int8: 'auto' asks before
 * running a quantized graph on the integer kernels. Returns the nodes that would run on the host in the middle.
 */
export function int8Coverage(c: Pick<Compiled, 'steps' | 'host'>): { ok: boolean; hostNodes: string[]; middle: string[]; reason?: string } {
  const hostNodes = c.host.flatMap((s) => s.nodes.map((n) => n.name));
  if (!c.steps.length) return { ok: false, hostNodes, middle: [], reason: 'no node has an integer kernel' };
  const inMiddle = (s: HostStep) => s.at > 0 && s.at < c.steps.length;
  const middle = c.host.filter(inMiddle).flatMap((s) => s.nodes.map((n) => `${n.name} (${n.op})`));
  const ends = c.host.filter((s) => !inMiddle(s)).flatMap((s) => s.nodes);
  const endOk = ends.every((n) => ['QuantizeLinear', 'DequantizeLinear', 'Softmax', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity'].includes(n.op));
  const ok = middle.length === 0 && endOk;
  return {
    ok, hostNodes, middle,
    reason: ok ? undefined : middle.length ? `no integer kernel for ${middle.join(', ')}` : 'host steps other than input/output conversions',
  };
}
