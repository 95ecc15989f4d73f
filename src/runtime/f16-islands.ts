// Mixed precision for fp16 sessions: which tensors stay f32 ("f32 islands") so that f16 storage does not break a
// model whose folded weights amplify the rounding of f16 activations (an MLSD depthwise conv: BN-folded weights up to
// 56 on relu6 inputs, cancelling, so that the 2^-11 rounding of its inputs comes out as 10% of its output's range).
//
// The rule measures each node's own f16 error on a calibration input. calibrationGraph adds to the graph, for every
// node N that runs on a kernel, a probe N' (the same op and attributes) that reads N's float inputs rounded to f16 and
// writes its outputs in f32: activations rounded by a copy (Mul by 1) into an f16 tensor, constants as f16 copies. The
// graph runs once in fp32 storage but for those rounded copies (a mixed schedule, kernels/f16.ts), and N's error is
//
//   e(N) = max |y'(N) - y(N)| / max |y(N)|        (over N's outputs; 0 when both are 0, infinite when only y is 0)
//
// the error of its kernel in an fp16 session fed the exact inputs (f16 storage rounds inputs and outputs, computes in
// f32; the output's own rounding, u = 2^-11 of itself, is not amplified and not counted). Every float input of a node
// with e(N) > islandThreshold stays f32 (activations and constants); its outputs stay f16. An error already in N's
// inputs (from earlier nodes) is the earlier nodes' to bound, so each node is judged alone.
//
// Why measured rather than bounded from the weights: the static bound (2u + u^2) * max_o (|b_o| + sum_k |w_ok| R_k) /
// max |y| (R_k the largest |input| of channel k) is sound but assumes every term aligned. At a threshold of 1e-2 it
// flagged 48 of pose-landmark-lite's 89 convs and two of selfie-seg's, which pass in pure f16; its worst case grows
// with the fan-in while rounding errors of many terms mostly cancel. The measurement costs a run of twice the nodes
// per calibration input when the session is made, and holds for those inputs: another input with other statistics
// may differ (a sum of non-negative inputs carries an offset that a later node may cancel or f16 overflow on, where
// zero-mean inputs give none), so src/pipeline/session.ts measures on inputs of different statistics and takes each
// node's largest error (largestErrors).
//
// The threshold: the fp16 check tolerates 3e-2 of max |reference| at the outputs (src/runtime/compare.ts f16Bounds)
// after every node's error has compounded; a node that alone loses a third of that is kept f32. Ordinary nodes lose
// about u to 10u (5e-4 to 5e-3). Measured (lavapipe, seeded calibration input): mlsd-tiny's Conv__221 3.4e-2, its
// next node 5.8e-3; pose-landmark-lite at most 9.6e-3, ocr-det 1.7e-3, selfie-seg 1.4e-3.
//
// What a node-local rule does not see: a model whose outputs amplify any perturbation (mlsd-tiny: its fp32 check
// uses 96% of the fp32 tolerance from summation order alone; in fp16 it misses the tolerance with every activation
// f32 and the weights f16, and with every weight f32 and the activations f16), or one whose many small errors add
// up through its depth (ocr-det: no node over 3e-3, its output 2.4e-2 to 6.3e-2 off in pure f16 depending on the
// input). src/pipeline/session.ts therefore checks the mixed session end to end, with a margin under the tolerance on
// the calibration inputs and at the tolerance on a held-out input, lowering the threshold until it passes, then keeps
// every tensor f32.

import type { Graph, Node, Tensor } from '../graph/ir.js';
import { aliasOps } from '../../kernels/registry.js';
import { runsOnFloatHost } from './host-float.js';

/** f16's unit roundoff (round to nearest): the largest relative error of rounding a float32 to f16. */
export const f16UnitRoundoff = 2 ** -11;

/** A node's own f16 error (fraction of its output's range) above which its inputs stay f32 (see above). */
export const islandThreshold = 1e-2;

/** Suffixes of the calibration graph's own tensors and nodes: rounded copies, and probes (and their outputs). */
const halfSuffix = '#f16', probeSuffix = '#probe';

/** One probe: node N of the graph, its float inputs, and its outputs with their probes' outputs. */
export interface Probe {
  node: string;
  op: string;
  /** N's float32 inputs (activations and constants): kept f32 when N's error is over the threshold. */
  inputs: string[];
  /** [N's output, the probe's output] per output of N. */
  outputs: [string, string][];
}

export interface CalibrationGraph {
  /** The graph, its probes added; its outputs are the graph's, then every output of N and of N'. */
  graph: Graph;
  probes: Probe[];
  /** The rounded copies: the only tensors the calibration schedule stores as f16. */
  halfTensors: string[];
}

/** Nodes the rule probes: those on a kernel (not reshape-like aliases nor host nodes) from float32 to float32. */
function probed(g: Graph, n: Node): boolean {
  if (aliasOps.has(n.op) || runsOnFloatHost(n)) return false;
  const isFloat = (x: string) => g.tensors.get(x)?.dtype === 'float32';
  return n.inputs.some((x) => x && isFloat(x)) && n.outputs.some((y) => y) && n.outputs.every((y) => !y || isFloat(y));
}

/** The calibration graph of `g` (see above): `g` with a probe of every node that runs on a kernel. */
export function calibrationGraph(g: Graph): CalibrationGraph {
  const tensors = new Map(g.tensors);
  const nodes: Node[] = [];
  const probes: Probe[] = [];
  const rounded = new Map<string, string>();
  const halfTensors: string[] = [];
  // The graph's own tensors (rounded copies x#f16, probe outputs y#probe, the constant 1) take names no tensor has
  // yet: a model may name its tensors anything, 'one', 'x#f16' or 'y#probe' too.
  const fresh = (base: string) => {
    let name = base;
    while (tensors.has(name)) name += '#';
    return name;
  };
  let one: string | undefined;
  const add = (t: Tensor) => {
    if (tensors.has(t.name)) throw new Error(`internal: calibration graph: tensor '${t.name}' exists`);
    tensors.set(t.name, t);
  };
  const roundedCopy = (x: string): string => {
    let r = rounded.get(x);
    if (r) return r;
    const t = g.tensors.get(x)!;
    r = fresh(`${x}${halfSuffix}`);
    if (t.data !== undefined) add({ ...t, name: r });
    else {
      if (one === undefined) add({ name: (one = fresh(`${halfSuffix}#one`)), dtype: 'float32', shape: [], data: new Float32Array([1]) });
      add({ name: r, dtype: 'float32', shape: [...t.shape] });
      nodes.push({ name: `${x}${halfSuffix}`, op: 'Mul', domain: '', inputs: [x, one], outputs: [r], attrs: Object.create(null) });
    }
    rounded.set(x, r);
    halfTensors.push(r);
    return r;
  };
  const outputs: string[] = [];
  for (const n of g.nodes) {
    nodes.push(n);
    if (!probed(g, n)) continue;
    const isFloat = (x: string) => !!x && g.tensors.get(x)?.dtype === 'float32';
    const inputs = n.inputs.map((x) => (isFloat(x) ? roundedCopy(x) : x));
    const outs = n.outputs.map((y) => {
      if (!y) return y;
      const p = fresh(`${y}${probeSuffix}`);
      add({ ...g.tensors.get(y)!, name: p });
      return p;
    });
    nodes.push({ ...n, name: `${n.name}${probeSuffix}`, inputs, outputs: outs });
    const pairs = n.outputs.map((y, i) => [y, outs[i]] as [string, string]).filter(([y]) => y);
    probes.push({ node: n.name, op: n.op, inputs: [...new Set(n.inputs.filter(isFloat))], outputs: pairs });
    for (const [y, p] of pairs) outputs.push(y, p);
  }
  const graphOutputs = [...new Set([...g.outputs, ...outputs])];
  return { graph: { ...g, tensors, nodes, outputs: graphOutputs }, probes, halfTensors };
}

/** One node's measured f16 error. */
export interface NodeError {
  node: string;
  op: string;
  /** max |y' - y| / max |y| over the node's outputs (see above). */
  error: number;
  inputs: string[];
}

export interface F16Islands {
  /** Tensors kept f32, in the order of the graph's tensors. */
  keepF32: string[];
  /** The nodes over the threshold, in graph order. */
  flagged: NodeError[];
  /** Every probed node. */
  measured: NodeError[];
}

/** The relative error of `probe` against `ref`: max |probe - ref| / max |ref| (non-finite reference values skipped). */
export function relativeError(ref: ArrayLike<number>, probe: ArrayLike<number>): number {
  let d = 0, m = 0;
  for (let i = 0; i < ref.length; i++) {
    if (!Number.isFinite(ref[i])) continue;
    m = Math.max(m, Math.abs(ref[i]));
    const e = Math.abs(probe[i] - ref[i]);
    d = Math.max(d, Number.isNaN(e) ? Infinity : e);
  }
  return d === 0 ? 0 : m === 0 ? Infinity : d / m;
}

/** The measured error of every probe (the calibration run's `values`, by tensor name). */
export function measureErrors(probes: readonly Probe[], values: ReadonlyMap<string, ArrayLike<number>>): NodeError[] {
  return probes.map((p) => {
    let error = 0;
    for (const [y, q] of p.outputs) {
      const a = values.get(y), b = values.get(q);
      if (!a || !b) throw new Error(`internal: calibration run lacks '${a ? q : y}'`);
      error = Math.max(error, relativeError(a, b));
    }
    return { node: p.node, op: p.op, error, inputs: p.inputs };
  });
}

/**
 * The tensors an fp16 session keeps f32, from the measured errors (see the rule above): the float inputs of every
 * node N with e(N) > threshold, and of every node P upstream of one whose error, amplified on the way, would still
 * exceed it: e(P) * R(P) > threshold, where R(P) is the largest product of the gains e(M) / u of the nodes on a path
 * from P's output to such an N (N included; reshape-like aliases pass errors unchanged).
 */
export function islandsFromErrors(g: Graph, measured: readonly NodeError[], threshold: number = islandThreshold): F16Islands {
  const byNode = new Map(measured.map((m) => [m.node, m]));
  // The node making each tensor, seen through aliases (an alias's output is made by its input's producer).
  const producer = new Map<string, Node>();
  for (const n of g.nodes) {
    for (const y of n.outputs) {
      if (!y) continue;
      const p = aliasOps.has(n.op) && n.inputs[0] ? producer.get(n.inputs[0]) : n;
      if (p) producer.set(y, p);
    }
  }
  const reach = new Map<string, number>();
  for (const m of measured) if (m.error > threshold) reach.set(m.node, 1);
  // Backwards in graph order: a node's reach is final once every node after it has passed on its own.
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    const r = reach.get(n.name);
    const m = byNode.get(n.name);
    if (!r || !m) continue;
    const gain = m.error / f16UnitRoundoff;
    for (const x of m.inputs) {
      const p = producer.get(x);
      const pm = p && byNode.get(p.name);
      if (!pm) continue;
      const pr = Math.max(reach.get(pm.node) ?? 0, gain * r);
      // Only a producer whose error reaches over the threshold passes the reach on: a node within it is harmless.
      if (pm.error * pr > threshold) reach.set(pm.node, pr);
    }
  }
  const flagged = measured.filter((m) => (reach.get(m.node) ?? 0) * m.error > threshold);
  const keep = new Set(flagged.flatMap((m) => m.inputs));
  return { keepF32: [...g.tensors.keys()].filter((t) => keep.has(t)), flagged, measured: [...measured] };
}

/** Each node's largest error over several calibration runs (measureErrors of each, of one calibration graph). */
export function largestErrors(runs: readonly (readonly NodeError[])[]): NodeError[] {
  if (!runs.length) return [];
  return runs[0].map((m, i) => {
    for (const r of runs) if (r[i]?.node !== m.node) throw new Error(`internal: calibration runs differ at node '${m.node}'`);
    return { ...m, error: Math.max(...runs.map((r) => r[i].error)) };
  });
}

/** The tensors an fp16 session keeps f32 (islandsFromErrors) from the calibration run's `values`. */
export function chooseF32Tensors(g: Graph, probes: readonly Probe[], values: ReadonlyMap<string, ArrayLike<number>>, threshold: number = islandThreshold): F16Islands {
  return islandsFromErrors(g, measureErrors(probes, values), threshold);
}
