// Static shape and dtype inference for every known op and the fused FCM ops, following the ONNX operator
// definitions. Conv and pool attributes are canonicalized on the way (defaults filled in, auto_pad resolved
// into explicit pads) so later passes read one form. Ops outside the known list are opaque: their outputs
// keep a shape the importer already knew, or are marked `shapeUnknown` (and so is everything computed
// from them) for onnxruntime to fill in (src/graph/ort-shapes.ts).
import { checkedProduct, invalid, unsupported } from '../errors.js';
import { defaultMaxMemory } from '../../converters/options.js';
import type { DType, Graph, Node, Tensor } from './ir.js';
import { dtypeSize, fcmDomain, isKnownOp } from './ir.js';
import { attrInt, attrInts, attrString, cloneGraph, constNumbers, nodeWhere } from './util.js';

export interface ShapeOptions {
  /** Largest tensor in bytes (default 4 GiB): a bigger inferred shape is an error (exit 4). */
  maxMemory?: number;
}

interface Out { shape: number[]; dtype: DType }

/** A new graph in which every tensor has its static shape, or `shapeUnknown` past opaque ops. */
export function inferShapes(g: Graph, opts: ShapeOptions = {}): Graph {
  const out = cloneGraph(g);
  for (const x of out.inputs) {
    const t = out.tensors.get(x);
    if (!t || t.shapeUnknown) throw invalid(`${g.source}: tensor '${x}'`, 'graph input has no static shape');
    checkShape(t.shape, `${g.source}: tensor '${x}'`, t.dtype, opts);
  }
  for (const n of out.nodes) inferNode(out, n, opts);
  return out;
}

/** Names of tensors whose shape inference could not determine, in graph order. */
export function unknownTensors(g: Graph): string[] {
  const names: string[] = [];
  for (const n of g.nodes) for (const y of n.outputs) if (y && g.tensors.get(y)?.shapeUnknown) names.push(y);
  return names;
}

function checkShape(shape: readonly number[], where: string, dtype: DType, opts: ShapeOptions) {
  const limit = Math.floor((opts.maxMemory ?? defaultMaxMemory) / Math.max(1, dtypeSize(dtype)));
  checkedProduct(shape, where, limit);
}

/** Infers the outputs of one node into `g.tensors` (and canonicalizes its attributes in place). */
export function inferNode(g: Graph, n: Node, opts: ShapeOptions = {}): void {
  const where = nodeWhere(g, n);
  const ins: Array<Tensor | undefined> = n.inputs.map((x) => {
    if (!x) return undefined;
    const t = g.tensors.get(x);
    if (!t) throw invalid(where, `reads tensor '${x}', which is not defined`);
    return t;
  });
  const known = isKnownOp(n) || n.domain === fcmDomain;
  const anyUnknown = ins.some((t) => t?.shapeUnknown);
  let results: Array<Out | null>;
  if (!known) {
    // Opaque: trust a static shape the importer recorded (value_info, or onnxruntime's answer).
    results = n.outputs.map((y) => {
      const t = y ? g.tensors.get(y) : undefined;
      return t && t.data === undefined && isStatic(t.shape) && hasShapeInfo(t) ? { shape: t.shape, dtype: t.dtype } : null;
    });
    // LSTM (run on the host, src/runtime/lstm.ts): its outputs follow from X and R, branches of an If included.
    if (n.domain === '' && n.op === 'LSTM' && !anyUnknown) results = lstmOut(n, ins, where);
    // Elementwise ops of the default domain broadcast their operands (ONNX semantics): nothing to look up, and a shape
    // the importer recorded must be that broadcast (a file's recorded shape hid operands that do not broadcast).
    else if (n.outputs.length === 1 && !anyUnknown) {
      const computed = elementwiseOut(n, ins, where);
      const recorded = results[0];
      if (recorded === null) results = [computed];
      else if (computed !== null && computed.shape.join() !== recorded.shape.join()) {
        throw invalid(where, `output '${n.outputs[0]}' is recorded as [${recorded.shape}], but its operands broadcast to [${computed.shape}]`);
      }
    }
  } else if (anyUnknown) {
    results = n.outputs.map(() => null);
  } else {
    const r = inferKnown(g, n, ins, where);
    results = r === null ? n.outputs.map(() => null) : r;
  }
  n.outputs.forEach((y, i) => {
    if (!y) return;
    const old = g.tensors.get(y);
    const res = results[i] ?? null;
    if (res === null) {
      const dtype = old?.dtype ?? ins[0]?.dtype ?? 'float32';
      g.tensors.set(y, { ...(old ?? { name: y }), name: y, dtype, shape: old?.shape ?? [], shapeUnknown: true });
      return;
    }
    checkShape(res.shape, `${where}: output '${y}'`, res.dtype, opts);
    const t: Tensor = { name: y, dtype: res.dtype, shape: res.shape };
    // An opaque op's shape was looked up (onnxruntime, or the importer): keep saying so, or a scalar output
    // ([] is also what an importer leaves when it knows nothing) would read as unknown on the next inference.
    if (!known && old?.shapeUnknown === false) t.shapeUnknown = false;
    if (old?.quant) t.quant = old.quant;
    g.tensors.set(y, t);
  });
}

/** Opaque default-domain elementwise ops: output dtype 'bool' for comparisons and logic, else the first operand's. */
const elementwiseUnary = new Set(['Sqrt', 'Exp', 'Log', 'Neg', 'Reciprocal', 'Floor', 'Ceil', 'Round', 'Sign', 'Erf', 'Not', 'Softplus', 'Cos', 'Sin']);
const elementwiseBinary = new Set(['Pow', 'Max', 'Min', 'Mod', 'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Where']);
const boolResult = new Set(['Not', 'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Xor']);

function elementwiseOut(n: Node, ins: ReadonlyArray<Tensor | undefined>, where: string): Out | null {
  if (n.domain !== '' || ins.length === 0 || ins.some((t) => !t)) return null;
  const ts = ins as Tensor[];
  if (elementwiseUnary.has(n.op) && ts.length === 1) return { shape: [...ts[0].shape], dtype: boolResult.has(n.op) ? 'bool' : ts[0].dtype };
  if (!elementwiseBinary.has(n.op) || ts.length < 2 || (n.op === 'Where' ? ts.length !== 3 : n.op !== 'Max' && n.op !== 'Min' && ts.length !== 2)) return null;
  const shape = ts.slice(1).reduce((acc, t) => broadcastShapes(acc, t.shape, where), ts[0].shape);
  return { shape, dtype: boolResult.has(n.op) ? 'bool' : n.op === 'Where' ? ts[1].dtype : ts[0].dtype };
}

const isStatic = (s: readonly number[]) => s.every((d) => Number.isInteger(d) && d >= 0);
// `shapeUnknown: false` says the shape was looked up (onnxruntime), scalars included; otherwise an importer
// that knew nothing about a tensor may have left an empty shape, so only a rank > 0 counts.
/** ONNX LSTM, layout 0: Y [T, D, B, H], Y_h and Y_c [D, B, H] from X [T, B, I] and R [D, 4H, H]. */
function lstmOut(n: Node, ins: Array<Tensor | undefined>, where: string): Out[] {
  const x = ins[0], r = ins[2];
  if (!x || x.shape.length !== 3) throw invalid(where, `LSTM input X must be [seq_length, batch, input_size], got [${x?.shape ?? ''}]`);
  if (!r || r.shape.length !== 3 || r.shape[1] !== 4 * r.shape[2]) throw invalid(where, `LSTM input R must be [num_directions, 4 * hidden_size, hidden_size], got [${r?.shape ?? ''}]`);
  if (n.attrs.layout !== undefined && n.attrs.layout !== 0) throw unsupported(where, 'LSTM with layout 1 (batch first) is not supported');
  const [T, B] = x.shape, [D, , H] = r.shape;
  return [[T, D, B, H], [D, B, H], [D, B, H]].slice(0, n.outputs.length).map((shape) => ({ shape, dtype: x.dtype }));
}

const hasShapeInfo = (t: Tensor) => t.shapeUnknown === false || (t.shapeUnknown === undefined && t.shape.length > 0);

/** An operand that is an attribute once normalized, or a constant input before: values, undefined when
 *  absent, null when it is computed at run time (then the output shape is unknown here). */
function operand(g: Graph, n: Node, attr: string, index: number, where: string, lossy = false): number[] | undefined | null {
  if (Object.prototype.hasOwnProperty.call(n.attrs, attr)) {
    const v = n.attrs[attr];
    if (typeof v === 'number') return [v];
    if (Array.isArray(v) && v.every((x) => typeof x === 'number')) return v as number[];
    throw invalid(where, `attribute '${attr}' must be a number or a list of numbers`);
  }
  const x = n.inputs[index];
  if (!x) return undefined;
  const t = g.tensors.get(x)!;
  return t.data ? constNumbers(t, where, lossy) : null;
}

function normAxis(axis: number, rank: number, where: string, what = 'axis'): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) throw invalid(where, `${what} ${axis} is out of range for rank ${rank}`);
  return axis < 0 ? axis + rank : axis;
}

export function broadcastShapes(a: readonly number[], b: readonly number[], where: string): number[] {
  const r = Math.max(a.length, b.length);
  const out = new Array<number>(r);
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw invalid(where, `shapes [${a}] and [${b}] do not broadcast`);
    out[i] = x === 1 ? y : x;
  }
  return out;
}

const dtypeCodes: Record<number, DType> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string', 9: 'bool',
  10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 16: 'bfloat16',
};
export function castTarget(g: Graph, n: Node, where: string): DType {
  const v = n.attrs.to;
  if (typeof v === 'string') return v as DType;
  if (typeof v === 'number' && dtypeCodes[v]) return dtypeCodes[v];
  throw invalid(where, `Cast has no valid 'to' attribute`);
}

interface Window { kernel: number[]; strides: number[]; dilations: number[]; pads: number[]; out: number[] }

/**
 * Output spatial sizes of a sliding window (Conv, pools) with auto_pad resolved into explicit pads,
 * as the ONNX Conv/MaxPool definitions give them (SAME_LOWER puts the odd padding first).
 */
function slidingWindow(g: Graph, n: Node, spatial: number[], kernel: number[], where: string, ceilMode: boolean, hasDilations: boolean): Window {
  const r = spatial.length;
  if (kernel.length !== r) throw invalid(where, `kernel has ${kernel.length} dims, input has ${r} spatial dims`);
  const strides = attrInts(g, n, 'strides') ?? new Array(r).fill(1);
  const dilations = hasDilations ? attrInts(g, n, 'dilations') ?? new Array(r).fill(1) : new Array(r).fill(1);
  let pads = attrInts(g, n, 'pads') ?? new Array(2 * r).fill(0);
  if (strides.length !== r || dilations.length !== r || pads.length !== 2 * r) throw invalid(where, 'strides, dilations or pads do not match the kernel rank');
  if (strides.some((s) => s <= 0)) throw invalid(where, `stride ${strides.join('x')} must be positive`);
  if (dilations.some((d) => d <= 0)) throw invalid(where, `dilation ${dilations.join('x')} must be positive`);
  if (kernel.some((k) => k <= 0)) throw invalid(where, `kernel ${kernel.join('x')} must be positive`);
  if (pads.some((p) => p < 0)) throw invalid(where, `pads [${pads}] must not be negative`);
  const autoPad = attrString(g, n, ['autoPad', 'auto_pad'], 'NOTSET');
  const out = new Array<number>(r);
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = new Array(2 * r).fill(0);
    for (let i = 0; i < r; i++) {
      out[i] = Math.ceil(spatial[i] / strides[i]);
      const eff = (kernel[i] - 1) * dilations[i] + 1;
      const total = Math.max(0, (out[i] - 1) * strides[i] + eff - spatial[i]);
      const head = autoPad === 'SAME_LOWER' ? Math.ceil(total / 2) : Math.floor(total / 2);
      pads[i] = head;
      pads[i + r] = total - head;
    }
  } else if (autoPad === 'VALID' || autoPad === 'NOTSET' || autoPad === '') {
    if (autoPad === 'VALID') pads = new Array(2 * r).fill(0);
    for (let i = 0; i < r; i++) {
      const eff = (kernel[i] - 1) * dilations[i] + 1;
      const span = spatial[i] + pads[i] + pads[i + r] - eff;
      if (span < 0) throw invalid(where, `kernel ${kernel.join('x')} (dilated ${eff}) is larger than the padded input ${spatial.join('x')}`);
      let o = (ceilMode ? Math.ceil(span / strides[i]) : Math.floor(span / strides[i])) + 1;
      // ceil_mode: a last window starting inside the end padding is dropped (ONNX, PyTorch).
      if (ceilMode && (o - 1) * strides[i] >= spatial[i] + pads[i]) o--;
      out[i] = o;
    }
  } else {
    throw invalid(where, `unknown auto_pad '${autoPad}'`);
  }
  return { kernel, strides, dilations, pads, out };
}

function storeWindow(n: Node, w: Window, withDilations: boolean) {
  n.attrs.kernel = w.kernel;
  n.attrs.strides = w.strides;
  n.attrs.pads = w.pads;
  if (withDilations) n.attrs.dilations = w.dilations;
  delete n.attrs.autoPad;
  delete n.attrs.auto_pad;
}

/** Conv output [N, F, ...] with checks of the weight against the input channels and group. */
function convShape(g: Graph, n: Node, x: number[], w: number[], where: string): number[] {
  if (x.length < 3) throw invalid(where, `input has rank ${x.length}, Conv needs [N, C, spatial...]`);
  if (w.length !== x.length) throw invalid(where, `weight has rank ${w.length}, input has rank ${x.length}`);
  const group = attrInt(g, n, 'group', 1);
  if (group <= 0) throw invalid(where, `group ${group} must be positive`);
  const [F, Cg] = w;
  const C = x[1];
  if (Cg * group !== C) {
    throw invalid(where, `weight [${w}] expects ${Cg * group} input channels (${Cg} per group x group ${group}), input has ${C}`);
  }
  if (F % group !== 0) throw invalid(where, `${F} output channels are not divisible by group ${group}`);
  const kernel = attrInts(g, n, 'kernel') ?? attrInts(g, n, 'kernel_shape') ?? w.slice(2);
  if (kernel.join() !== w.slice(2).join()) throw invalid(where, `kernel ${kernel.join('x')} does not match weight [${w}]`);
  const win = slidingWindow(g, n, x.slice(2), kernel, where, false, true);
  storeWindow(n, win, true);
  n.attrs.group = group;
  return [x[0], F, ...win.out];
}

function checkBias(g: Graph, b: Tensor | undefined, F: number, where: string) {
  if (b && !b.shapeUnknown && (b.shape.length !== 1 || b.shape[0] !== F)) throw invalid(where, `bias '${b.name}' has shape [${b.shape}], expected [${F}]`);
}

function inferKnown(g: Graph, n: Node, ins: Array<Tensor | undefined>, where: string): Array<Out | null> | null {
  const outs = inferOp(g, n, ins, where);
  // The executor's channels-last store (src/graph/ir.ts): the node's 4-D output [N, C, H, W] is stored [N, H, W, C].
  const y = outs?.[0];
  if (n.attrs.channelsLast !== 1 || !y || y.shape.length !== 4) return outs;
  const [N, C, H, W] = y.shape;
  return [{ ...y, shape: [N, H, W, C] }, ...outs!.slice(1)];
}

function inferOp(g: Graph, n: Node, ins: Array<Tensor | undefined>, where: string): Array<Out | null> | null {
  const need = (i: number): Tensor => {
    const t = ins[i];
    if (!t) throw invalid(where, `input ${i} is missing`);
    return t;
  };
  const x = () => need(0);
  const same = (): Out[] => [{ shape: [...x().shape], dtype: x().dtype }];

  if (n.domain === fcmDomain) return fusedShape(g, n, ins, where);

  switch (n.op) {
    case 'Conv': {
      const w = need(1);
      const shape = convShape(g, n, x().shape, w.shape, where);
      checkBias(g, ins[2], w.shape[0], where);
      // The residual epilogue (src/graph/ir.ts) adds the residual element by element: the kernels index it as the output.
      // (The executor's residualResize reads a lower-resolution residual through a resize: src/graph/ir.ts.)
      if (ins[3] && n.attrs.residualResize === undefined && ins[3].shape.join() !== shape.join()) throw invalid(where, `residual [${ins[3].shape}] is not the output's shape [${shape}]`);
      return [{ shape, dtype: x().dtype }];
    }
    case 'Gemm': {
      const a = x().shape, b = need(1).shape;
      if (a.length !== 2 || b.length !== 2) throw invalid(where, `Gemm needs 2-D operands, got [${a}] and [${b}]`);
      const transA = attrInt(g, n, ['transA', 'trans_a'], 0), transB = attrInt(g, n, ['transB', 'trans_b'], 0);
      const [M, K] = transA ? [a[1], a[0]] : a;
      const [K2, N] = transB ? [b[1], b[0]] : b;
      if (K !== K2) throw invalid(where, `inner dimensions differ: [${a}]${transA ? 'ᵀ' : ''} x [${b}]${transB ? 'ᵀ' : ''}`);
      if (ins[2]) broadcastShapes([M, N], ins[2].shape, where);
      return [{ shape: [M, N], dtype: x().dtype }];
    }
    case 'MatMul': return [{ shape: matmulShape(x().shape, need(1).shape, where), dtype: x().dtype }];
    case 'Add': case 'Sub': case 'Mul': case 'Div':
      return [{ shape: broadcastShapes(x().shape, need(1).shape, where), dtype: x().dtype }];
    case 'PRelu': {
      const shape = broadcastShapes(x().shape, need(1).shape, where);
      if (shape.join() !== x().shape.join()) throw invalid(where, `slope [${need(1).shape}] does not broadcast to input [${x().shape}]`);
      return same();
    }
    case 'Softmax': {
      // ONNX (opset 13) normalizes along an axis of the input: a scalar has none.
      const r = x().shape.length;
      if (r < 1) throw invalid(where, 'input is a scalar (rank 0); Softmax needs rank 1 or more');
      const axis = typeof n.attrs.axis === 'number' ? n.attrs.axis : -1;
      if (axis < -r || axis >= r) throw invalid(where, `axis ${axis} is outside rank ${r}`);
      return same();
    }
    case 'Relu': case 'LeakyRelu': case 'Clip': case 'HardSigmoid': case 'HardSwish': case 'Sigmoid': case 'Tanh':
    case 'SiLU': case 'Abs': case 'Identity':
      return same();
    case 'Dropout': return [{ shape: [...x().shape], dtype: x().dtype }, { shape: [...x().shape], dtype: 'bool' }];
    case 'BatchNormalization': {
      const s = x().shape;
      if (s.length < 2) throw invalid(where, `input has rank ${s.length}, needs [N, C, ...]`);
      for (let i = 1; i <= 4; i++) {
        const p = need(i);
        if (p.shape.length !== 1 || p.shape[0] !== s[1]) throw invalid(where, `parameter '${p.name}' has shape [${p.shape}], expected [${s[1]}]`);
      }
      return [same()[0], ...n.outputs.slice(1).map(() => ({ shape: [s[1]], dtype: x().dtype }))];
    }
    case 'GlobalAveragePool': {
      const s = x().shape;
      if (s.length < 3) throw invalid(where, `input has rank ${s.length}, needs [N, C, spatial...]`);
      return [{ shape: [s[0], s[1], ...s.slice(2).map(() => 1)], dtype: x().dtype }];
    }
    case 'ReduceMean': {
      const s = x().shape;
      const axes = operand(g, n, 'axes', 1, where);
      if (axes === null) return null;
      const keep = attrInt(g, n, 'keepdims', 1);
      const noop = attrInt(g, n, ['noopWithEmptyAxes', 'noop_with_empty_axes'], 0);
      if ((!axes || axes.length === 0) && noop) return same();
      const set = new Set((axes && axes.length ? axes : s.map((_, i) => i)).map((a) => normAxis(a, s.length, where)));
      const shape: number[] = [];
      s.forEach((d, i) => { if (!set.has(i)) shape.push(d); else if (keep) shape.push(1); });
      return [{ shape, dtype: x().dtype }];
    }
    case 'MaxPool': case 'AveragePool': {
      const s = x().shape;
      if (s.length < 3) throw invalid(where, `input has rank ${s.length}, needs [N, C, spatial...]`);
      const kernel = attrInts(g, n, 'kernel') ?? attrInts(g, n, 'kernel_shape');
      if (!kernel) throw invalid(where, 'pooling has no kernel');
      const ceil = attrInt(g, n, ['ceilMode', 'ceil_mode'], 0) !== 0;
      const win = slidingWindow(g, n, s.slice(2), kernel, where, ceil, n.op === 'MaxPool');
      storeWindow(n, win, n.op === 'MaxPool');
      const shape = [s[0], s[1], ...win.out];
      return [{ shape, dtype: x().dtype }, { shape: [...shape], dtype: 'int64' }];
    }
    case 'Flatten': {
      const s = x().shape;
      const axis = attrInt(g, n, 'axis', 1);
      const a = axis < 0 ? axis + s.length : axis;
      if (a < 0 || a > s.length) throw invalid(where, `axis ${axis} is out of range for rank ${s.length}`);
      return [{ shape: [s.slice(0, a).reduce((p, d) => p * d, 1), s.slice(a).reduce((p, d) => p * d, 1)], dtype: x().dtype }];
    }
    case 'Reshape': {
      const target = operand(g, n, 'shape', 1, where);
      if (target === null) return null;
      if (target === undefined) throw invalid(where, 'Reshape has no target shape');
      return [{ shape: reshapeShape(x().shape, target, attrInt(g, n, ['allowzero', 'allowZero'], 0) !== 0, where), dtype: x().dtype }];
    }
    case 'Transpose': {
      const s = x().shape;
      const perm = attrInts(g, n, 'perm') ?? s.map((_, i) => s.length - 1 - i);
      if (perm.length !== s.length || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
        throw invalid(where, `perm [${perm}] is not a permutation of ${s.length} axes`);
      }
      return [{ shape: perm.map((p) => s[p]), dtype: x().dtype }];
    }
    case 'Concat': {
      const parts = ins.filter((t): t is Tensor => !!t);
      if (parts.length === 0) throw invalid(where, 'Concat has no inputs');
      const r = parts[0].shape.length;
      const axis = normAxis(attrInt(g, n, 'axis', 0), r, where);
      const shape = [...parts[0].shape];
      shape[axis] = 0;
      for (const p of parts) {
        if (p.shape.length !== r || p.shape.some((d, i) => i !== axis && d !== shape[i])) {
          throw invalid(where, `input '${p.name}' [${p.shape}] does not match [${parts[0].shape}] outside axis ${axis}`);
        }
        shape[axis] += p.shape[axis];
      }
      return [{ shape, dtype: parts[0].dtype }];
    }
    case 'Split': {
      const s = x().shape;
      const axis = normAxis(attrInt(g, n, 'axis', 0), s.length, where);
      let split = operand(g, n, 'split', 1, where);
      if (split === null) return null;
      const k = n.outputs.length;
      if (!split || split.length === 0) {
        const chunk = Math.ceil(s[axis] / k);
        split = n.outputs.map((_, i) => Math.max(0, Math.min(chunk, s[axis] - i * chunk)));
      }
      if (split.length !== k || split.reduce((a, b) => a + b, 0) !== s[axis] || split.some((v) => v < 0)) {
        throw invalid(where, `split [${split}] does not divide dimension ${s[axis]} into ${k} outputs`);
      }
      return split.map((len) => ({ shape: s.map((d, i) => (i === axis ? len : d)), dtype: x().dtype }));
    }
    case 'Slice': {
      const s = x().shape;
      const starts = operand(g, n, 'starts', 1, where, true), ends = operand(g, n, 'ends', 2, where, true);
      const axes = operand(g, n, 'axes', 3, where), steps = operand(g, n, 'steps', 4, where, true);
      if (starts === null || ends === null || axes === null || steps === null) return null;
      if (!starts || !ends) throw invalid(where, 'Slice has no starts or ends');
      return [{ shape: sliceRanges(s, starts, ends, axes, steps, where).map((r) => r.len), dtype: x().dtype }];
    }
    case 'Pad': {
      const s = x().shape;
      const pads = operand(g, n, 'pads', 1, where);
      const axesIn = operand(g, n, 'axes', 3, where);
      if (pads === null || axesIn === null) return null;
      if (!pads) throw invalid(where, 'Pad has no pads');
      const full = expandPads(pads, axesIn, s.length, where);
      const shape = s.map((d, i) => d + full[i] + full[i + s.length]);
      if (shape.some((d) => d < 0)) throw invalid(where, `pads [${pads}] remove more than the input [${s}] has`);
      return [{ shape, dtype: x().dtype }];
    }
    case 'Shape': {
      const r = x().shape.length;
      const clampAxis = (a: number) => Math.max(0, Math.min(r, a < 0 ? a + r : a));
      const start = clampAxis(attrInt(g, n, 'start', 0)), end = clampAxis(attrInt(g, n, 'end', r));
      return [{ shape: [Math.max(0, end - start)], dtype: 'int64' }];
    }
    case 'Gather': {
      const s = x().shape, idx = need(1).shape;
      const axis = normAxis(attrInt(g, n, 'axis', 0), s.length, where);
      return [{ shape: [...s.slice(0, axis), ...idx, ...s.slice(axis + 1)], dtype: x().dtype }];
    }
    case 'Unsqueeze': {
      const axes = operand(g, n, 'axes', 1, where);
      if (axes === null) return null;
      if (!axes) throw invalid(where, 'Unsqueeze has no axes');
      return [{ shape: unsqueezeShape(x().shape, axes, where), dtype: x().dtype }];
    }
    case 'Squeeze': {
      const axes = operand(g, n, 'axes', 1, where);
      if (axes === null) return null;
      return [{ shape: squeezeShape(x().shape, axes ?? [], where), dtype: x().dtype }];
    }
    case 'Cast': return [{ shape: [...x().shape], dtype: castTarget(g, n, where) }];
    case 'Constant': {
      const v = n.attrs.value;
      if (v && typeof v === 'object' && !Array.isArray(v) && 'shape' in v) return [{ shape: [...v.shape], dtype: v.dtype }];
      throw unsupported(where, 'Constant without a tensor value');
    }
    case 'QuantizeLinear': {
      const zp = ins[2];
      const dt = zp ? zp.dtype : (attrString(g, n, ['outputDtype', 'output_dtype'], 'uint8') as DType);
      return [{ shape: [...x().shape], dtype: dt }];
    }
    case 'DequantizeLinear': return [{ shape: [...x().shape], dtype: need(1).dtype }];
  }
  throw unsupported(where, `no shape inference for ${n.op}`);
}

/** FusedPwDw / FusedDwPw / FusedPwPw: two convolutions, the intermediate never stored (see ir.ts). */
function fusedShape(g: Graph, n: Node, ins: Array<Tensor | undefined>, where: string): Out[] {
  const x = ins[0], w1 = ins[1], w2 = ins[3];
  if (!x || !w1 || !w2) throw invalid(where, 'fused module needs inputs [x, w1, b1, w2, b2, residual]');
  const s = x.shape;
  if (s.length !== 4 || w1.shape.length !== 4 || w2.shape.length !== 4) throw invalid(where, 'fused modules take 4-D NCHW tensors and weights');
  const C = s[1];
  const pointwise = (w: number[], cin: number, which: string) => {
    if (w[1] !== cin || w[2] !== 1 || w[3] !== 1) throw invalid(where, `${which} weight [${w}] is not a 1x1 convolution of ${cin} channels`);
    return w[0];
  };
  const depthwise = (w: number[], cin: number, spatial: number[], which: string) => {
    if (w[0] !== cin || w[1] !== 1) throw invalid(where, `${which} weight [${w}] is not depthwise over ${cin} channels`);
    const kernel = attrInts(g, n, 'kernel') ?? w.slice(2);
    if (kernel.join() !== w.slice(2).join()) throw invalid(where, `kernel ${kernel.join('x')} does not match weight [${w}]`);
    const win = slidingWindow(g, n, spatial, kernel, where, false, true);
    storeWindow(n, win, true);
    return win.out;
  };
  let F1: number, F2: number, hw: number[];
  switch (n.op) {
    case 'FusedPwDw':
      F1 = pointwise(w1.shape, C, 'first');
      hw = depthwise(w2.shape, F1, s.slice(2), 'second');
      F2 = F1;
      break;
    case 'FusedDwPw':
      hw = depthwise(w1.shape, C, s.slice(2), 'first');
      F1 = C;
      F2 = pointwise(w2.shape, F1, 'second');
      break;
    case 'FusedPwPw':
      F1 = pointwise(w1.shape, C, 'first');
      F2 = pointwise(w2.shape, F1, 'second');
      hw = s.slice(2);
      break;
    default: throw unsupported(where, `unknown fused module ${n.op}`);
  }
  checkBias(g, ins[2], F1, where);
  checkBias(g, ins[4], F2, where);
  const shape = [s[0], F2, ...hw];
  if (ins[5] && n.attrs.residualResize === undefined) broadcastShapes(shape, ins[5].shape, where);
  return [{ shape, dtype: x.dtype }];
}

export function matmulShape(a: readonly number[], b: readonly number[], where: string): number[] {
  if (a.length === 0 || b.length === 0) throw invalid(where, 'MatMul operands must not be scalars');
  const A = a.length === 1 ? [1, a[0]] : [...a];
  const B = b.length === 1 ? [b[0], 1] : [...b];
  const K = A[A.length - 1];
  if (K !== B[B.length - 2]) throw invalid(where, `inner dimensions differ: [${a}] x [${b}]`);
  const batch = broadcastShapes(A.slice(0, -2), B.slice(0, -2), where);
  const out = [...batch];
  if (a.length !== 1) out.push(A[A.length - 2]);
  if (b.length !== 1) out.push(B[B.length - 1]);
  return out;
}

export function reshapeShape(s: readonly number[], target: readonly number[], allowZero: boolean, where: string): number[] {
  const total = s.reduce((p, d) => p * d, 1);
  let inferred = -1;
  const out = target.map((d, i) => {
    if (d === 0 && !allowZero) {
      if (i >= s.length) throw invalid(where, `shape [${target}] copies dimension ${i}, input has rank ${s.length}`);
      return s[i];
    }
    if (d === -1) {
      if (inferred >= 0) throw invalid(where, `shape [${target}] has more than one -1`);
      inferred = i;
      return 1;
    }
    if (!Number.isInteger(d) || d < 0) throw invalid(where, `shape [${target}] has an invalid dimension ${d}`);
    return d;
  });
  const known = out.reduce((p, d) => p * d, 1);
  if (inferred >= 0) {
    if (known === 0 || total % known !== 0) throw invalid(where, `cannot reshape [${s}] into [${target}]`);
    out[inferred] = total / known;
  } else if (known !== total) {
    throw invalid(where, `cannot reshape [${s}] (${total} elements) into [${target}] (${known})`);
  }
  return out;
}

export function unsqueezeShape(s: readonly number[], axes: readonly number[], where: string): number[] {
  const r = s.length + axes.length;
  const set = new Set(axes.map((a) => normAxis(a, r, where)));
  if (set.size !== axes.length) throw invalid(where, `axes [${axes}] repeat an axis`);
  const out: number[] = [];
  let j = 0;
  for (let i = 0; i < r; i++) out.push(set.has(i) ? 1 : s[j++]);
  return out;
}

export function squeezeShape(s: readonly number[], axes: readonly number[], where: string): number[] {
  if (axes.length === 0) return s.filter((d) => d !== 1);
  const set = new Set(axes.map((a) => normAxis(a, s.length, where)));
  for (const a of set) if (s[a] !== 1) throw invalid(where, `cannot squeeze axis ${a} of size ${s[a]}`);
  return s.filter((_, i) => !set.has(i));
}

export interface SliceRange { start: number; step: number; len: number }

/** Per-axis start/step/length of an ONNX Slice (bounds clamped as the operator defines). */
export function sliceRanges(s: readonly number[], starts: readonly number[], ends: readonly number[],
  axes: readonly number[] | undefined, steps: readonly number[] | undefined, where: string): SliceRange[] {
  const ranges: SliceRange[] = s.map((d) => ({ start: 0, step: 1, len: d }));
  const ax = axes && axes.length ? axes : starts.map((_, i) => i);
  if (starts.length !== ends.length || ax.length !== starts.length || (steps && steps.length && steps.length !== starts.length)) {
    throw invalid(where, 'Slice starts, ends, axes and steps differ in length');
  }
  const seen = new Set<number>();
  ax.forEach((a0, i) => {
    const a = normAxis(a0, s.length, where);
    if (seen.has(a)) throw invalid(where, `Slice axis ${a0} repeats`);
    seen.add(a);
    const d = s[a];
    const step = steps && steps.length ? steps[i] : 1;
    if (step === 0) throw invalid(where, 'Slice step 0');
    let st = starts[i] < 0 ? starts[i] + d : starts[i];
    let en = ends[i] < 0 ? ends[i] + d : ends[i];
    if (step > 0) { st = Math.max(0, Math.min(d, st)); en = Math.max(0, Math.min(d, en)); }
    else { st = Math.max(-1, Math.min(d - 1, st)); en = Math.max(-1, Math.min(d - 1, en)); }
    const len = Math.max(0, Math.ceil((en - st) / step));
    ranges[a] = { start: st, step, len };
  });
  return ranges;
}

/** Pads given for `axes` (opset 18) as full-rank [begins..., ends...]. */
export function expandPads(pads: readonly number[], axes: readonly number[] | undefined, rank: number, where: string): number[] {
  if (!axes || axes.length === 0) {
    if (pads.length !== 2 * rank) throw invalid(where, `pads [${pads}] need ${2 * rank} values for rank ${rank}`);
    return [...pads];
  }
  if (pads.length !== 2 * axes.length) throw invalid(where, `pads [${pads}] need ${2 * axes.length} values for axes [${axes}]`);
  const full = new Array<number>(2 * rank).fill(0);
  axes.forEach((a0, i) => {
    const a = normAxis(a0, rank, where);
    full[a] = pads[i];
    full[a + rank] = pads[i + axes.length];
  });
  return full;
}

