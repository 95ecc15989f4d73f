// From a graph to what the executor runs, without touching the GPU: each node's kernel programs (or an alias
// for reshape-like ops), tensor sizes checked against the adapter's binding limit, and the activation memory
// plan. Every node the kernels cannot run is collected first and refused in one error, before any GPU work.

import type { Graph, Node, Tensor } from '../graph/ir.js';
import { FcmError, checkedProduct, invalid, overLimit, unsupported } from '../errors.js';
import type { KernelLimits, KernelProgram } from '../../kernels/program.js';
import { kernelFor, opLabel } from '../../kernels/registry.js';
import { type MemoryPlan, planMemory } from './memory.js';

export interface Step {
  node: Node;
  program: KernelProgram;
  /** Tensor names bound in program order: used inputs, then outputs. */
  bindings: string[];
}

export interface Compiled {
  graph: Graph;
  steps: Step[];
  /** Alias tensor -> the tensor whose buffer it shares (resolved to the root). */
  aliases: Map<string, string>;
  /** Constant tensors that some program reads. */
  constants: string[];
  memory: MemoryPlan;
  /** Bytes of every tensor the executor holds (4 per float, at least 4). */
  bytes: Map<string, number>;
}

export interface CompileLimits extends KernelLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

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

export function compileGraph(g: Graph, limits: CompileLimits): Compiled {
  // Reading a tensor the graph never defines is a broken graph, not an unsupported one.
  const defined = new Set([...g.inputs, ...[...g.tensors.values()].filter((t) => t.data).map((t) => t.name)]);
  const failures: { node: Node; error: FcmError }[] = [];
  const kernels: { node: Node; programs: KernelProgram[] | null }[] = [];
  for (const node of g.nodes) {
    for (const x of node.inputs) {
      if (x && !defined.has(x)) throw invalid(g.source, `node '${node.name}' reads '${x}', which no earlier node produces`);
    }
    node.outputs.forEach((y) => y && defined.add(y));
    try {
      const ins = node.inputs.map((x) => shapeOf(g, x));
      const outs = node.outputs.map((y) => shapeOf(g, y) ?? []);
      const k = kernelFor(node, ins, outs, limits);
      kernels.push({ node, programs: k.kind === 'alias' ? null : k.programs });
    } catch (e) {
      if (e instanceof FcmError && e.kind === 'unsupported') failures.push({ node, error: e });
      else throw e;
    }
  }
  if (failures.length) throw refuseAll(g, failures);
  for (const name of g.outputs) if (!defined.has(name)) throw invalid(g.source, `graph output '${name}' is never produced`);

  // Every tensor the executor touches is f32 of a static shape within the binding limit.
  const bytes = new Map<string, number>();
  const sizeOf = (name: string): number => {
    let b = bytes.get(name);
    if (b !== undefined) return b;
    const t = g.tensors.get(name) as Tensor;
    const where = `${g.source}: tensor '${name}'`;
    const isConst = t.data !== undefined;
    if (!isConst && t.dtype !== 'float32') throw unsupported(where, `has dtype ${t.dtype}; the executor runs float32 tensors`);
    if (isConst && !floatish.has(t.dtype)) throw unsupported(where, `constant of dtype ${t.dtype} cannot be read as float32`);
    const n = checkedProduct(t.shape, where);
    b = Math.max(4, checkedProduct([n, 4], where));
    if (b > limits.maxStorageBufferBindingSize) {
      throw overLimit(where, `[${t.shape.join(',')}] float32 is ${b} bytes, over the adapter's maxStorageBufferBindingSize of ${limits.maxStorageBufferBindingSize}`);
    }
    if (b > limits.maxBufferSize) throw overLimit(where, `${b} bytes is over the adapter's maxBufferSize of ${limits.maxBufferSize}`);
    bytes.set(name, b);
    return b;
  };

  const aliases = new Map<string, string>();
  const root = (name: string) => aliases.get(name) ?? name;
  const steps: Step[] = [];
  const constants = new Set<string>();
  for (const k of kernels) {
    const node = k.node;
    if (!k.programs) {
      const src = node.inputs[0], dst = node.outputs[0];
      sizeOf(src);
      if (sizeOf(dst) !== bytes.get(src)) throw invalid(g.source, `node '${node.name}' (${node.op}) changes the element count`);
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
      if (p.workgroupStorageBytes > limits.maxComputeWorkgroupStorageSize) {
        throw overLimit(`${g.source}: node '${node.name}'`, `${p.name} needs ${p.workgroupStorageBytes} bytes of workgroup storage, the adapter allows ${limits.maxComputeWorkgroupStorageSize}`);
      }
      for (const x of [...ins, ...outs]) {
        sizeOf(x);
        if (g.tensors.get(x)?.data !== undefined) constants.add(x);
      }
      for (const y of outs) if (g.tensors.get(y)?.data !== undefined) throw invalid(g.source, `node '${node.name}' writes the constant '${y}'`);
      steps.push({ node, program: p, bindings: [...ins.map(root), ...outs.map(root)] });
    }
  }
  for (const y of g.outputs) sizeOf(y);
  for (const x of g.inputs) sizeOf(x);

  const isConst = (name: string) => g.tensors.get(name)?.data !== undefined;
  const memory = planMemory({
    inputs: g.inputs.map(root).filter((x) => !isConst(x)),
    outputs: g.outputs.map(root).filter((x) => !isConst(x)),
    steps: steps.map((s) => ({
      reads: s.bindings.slice(0, s.program.inputs.length).filter((x) => !isConst(x)),
      writes: s.bindings.slice(s.program.inputs.length),
    })),
    bytes: (name) => bytes.get(name)!,
  });
  return { graph: g, steps, aliases, constants: [...constants].map(root), memory, bytes };
}
