// Runs a whole int8/uint8 IR graph (as importTflite makes it from a quantized .tflite file) with the
// integer reference kernels of reference.ts, and, for comparison, the same graph in float64 with
// dequantized weights and biases (optionally fake-quantizing every quantized activation).
//
// Conventions of the imported graphs relied on here (converters/tflite/import.ts): quantized tensors carry
// Tensor.quant; a TFLite QUANTIZE between two quantized tensors is DequantizeLinear + QuantizeLinear over a
// float intermediate, run here as one integer requantization; fused activations are separate Relu/Clip
// nodes whose input (`.../preact`) has the output's quantization; only nodes that the graph outputs depend
// on run (the SHAPE/STRIDED_SLICE/PACK chains that feed a RESHAPE's shape input are dead in the IR).

import { unsupported } from '../errors.js';
import { type Graph, type Node, type Tensor, getTensor, numel } from '../graph/ir.js';
import {
  type QArray, type QParams, type QType, addSub, averagePool, concat, conv, dequantize, fullyConnected,
  hardSwish, logistic, maxPool, mean, mul, pad, qLimits, quantize, reluX, requantize, softmax, transpose,
} from './reference.js';
import { tfliteRound } from './fixedpoint.js';

export type Value = { data: QArray | Float32Array | Float64Array | Int32Array; shape: number[] };

export interface Int8RunResult {
  /** Every computed tensor, by name (quantized tensors as Int8Array/Uint8Array). */
  values: Map<string, Value>;
  /** The graph outputs as computed (int8/uint8, or float32 after a final DequantizeLinear). */
  outputs: Value[];
  /** The graph outputs as floats (quantized outputs dequantized). */
  dequantized: Float32Array[];
}

const isQ = (t: Tensor): t is Tensor & { dtype: QType } => (t.dtype === 'int8' || t.dtype === 'uint8') && !!t.quant;

function qparams(g: Graph, t: Tensor, where: string): QParams {
  if (!t.quant || t.quant.scale.length !== 1) throw unsupported(g.source, `${where}: tensor '${t.name}' needs per-tensor quantization`);
  return { scale: t.quant.scale[0], zeroPoint: t.quant.zeroPoint[0] ?? 0 };
}

/** The nodes the outputs depend on, in graph order. */
function liveNodes(g: Graph): Node[] {
  const need = new Set(g.outputs);
  const live: boolean[] = new Array(g.nodes.length).fill(false);
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    if (n.outputs.some((o) => need.has(o))) {
      live[i] = true;
      for (const x of n.inputs) if (x) need.add(x);
    }
  }
  return g.nodes.filter((_, i) => live[i]);
}

/** The real clamp of a Relu/Clip node (or a node's fused `activation` attribute). */
function clampOf(n: Node): [number, number] | undefined {
  const op = n.op === 'Relu' || n.op === 'Clip' ? n.op : (n.attrs.activation as string | undefined);
  if (op === 'Relu') return [0, Infinity];
  if (op === 'Clip') {
    if (n.op === 'Clip') return [(n.attrs.min as number) ?? -Infinity, (n.attrs.max as number) ?? Infinity];
    const p = n.attrs.activationParams as number[] | undefined;
    return [p?.[0] ?? -Infinity, p?.[1] ?? Infinity];
  }
  if (op !== undefined) throw unsupported('', `activation ${op} has no integer reference`);
  return undefined;
}

/** The integer clamp of a real range on an output, as CalculateActivationRangeQuantized computes it. */
function intClamp(range: [number, number] | undefined, q: QParams, t: QType): [number, number] {
  const [qmin, qmax] = qLimits(t);
  if (!range) return [qmin, qmax];
  const f32 = Math.fround;
  const lo = range[0] === -Infinity ? qmin : Math.max(qmin, q.zeroPoint + tfliteRound(f32(range[0] / f32(q.scale))));
  const hi = range[1] === Infinity ? qmax : Math.min(qmax, q.zeroPoint + tfliteRound(f32(range[1] / f32(q.scale))));
  return [lo, hi];
}

/** Graph inputs: typed arrays of the input's dtype, or floats for a float input. */
export type Inputs = Record<string, ArrayLike<number>>;

/** Runs g with TFLite's integer arithmetic. */
export function runInt8Reference(g: Graph, inputs: Inputs): Int8RunResult {
  const values = new Map<string, Value>();
  /** For a DequantizeLinear output: the quantized tensor it came from (a requantization when re-quantized). */
  const dequantizedFrom = new Map<string, string>();
  for (const name of g.inputs) {
    const t = getTensor(g, name);
    const x = inputs[name];
    if (!x) throw unsupported(g.source, `no value given for input '${name}'`);
    if (x.length !== numel(t.shape)) throw unsupported(g.source, `input '${name}' has ${x.length} values, its shape [${t.shape}] needs ${numel(t.shape)}`);
    const data = t.dtype === 'int8' ? Int8Array.from(x) : t.dtype === 'uint8' ? Uint8Array.from(x) : Float32Array.from(x);
    values.set(name, { data, shape: [...t.shape] });
  }
  const get = (name: string, where: string): Value => {
    const v = values.get(name);
    if (v) return v;
    const t = getTensor(g, name, `${g.source}: ${where}`);
    if (!t.data) throw unsupported(g.source, `${where}: tensor '${name}' has no value`);
    const c = { data: t.data as Value['data'], shape: [...t.shape] };
    values.set(name, c);
    return c;
  };
  for (const n of liveNodes(g)) {
    const where = `node '${n.name}' (${n.op})`;
    if (n.domain !== '') throw unsupported(g.source, `${where}: opaque op has no integer reference`);
    const yT = getTensor(g, n.outputs[0]);
    const x0 = n.inputs[0] ? get(n.inputs[0], where) : undefined;
    const x0T = n.inputs[0] ? getTensor(g, n.inputs[0]) : undefined;
    const set = (data: Value['data'], shape = yT.shape) => values.set(n.outputs[0], { data, shape: [...shape] });
    const qOut = () => {
      if (!isQ(yT)) throw unsupported(g.source, `${where}: output '${yT.name}' is ${yT.dtype}, not a quantized 8-bit tensor`);
      return { t: yT.dtype, q: qparams(g, yT, where) };
    };
    const qIn = (i: number) => {
      const t = getTensor(g, n.inputs[i]);
      if (!isQ(t)) throw unsupported(g.source, `${where}: input '${t.name}' is ${t.dtype}, not a quantized 8-bit tensor`);
      return { v: get(n.inputs[i], where), q: qparams(g, t, where), t: t.dtype };
    };
    switch (n.op) {
      case 'QuantizeLinear': {
        const { t, q } = qOut();
        const from = dequantizedFrom.get(n.inputs[0]);
        if (from) {
          const src = getTensor(g, from);
          set(requantize(get(from, where).data as QArray, qparams(g, src, where), q, t));
        } else {
          set(quantize(x0!.data, q, t));
        }
        break;
      }
      case 'DequantizeLinear': {
        const a = qIn(0);
        dequantizedFrom.set(n.outputs[0], n.inputs[0]);
        set(dequantize(a.v.data, a.q));
        break;
      }
      case 'Conv': {
        const a = qIn(0);
        const { t, q } = qOut();
        const wT = getTensor(g, n.inputs[1]);
        if (!wT.quant || !wT.data || (wT.dtype !== 'int8' && wT.dtype !== 'uint8')) throw unsupported(g.source, `${where}: weights must be constant 8-bit quantized`);
        if (wT.quant.axis !== undefined && wT.quant.axis !== 0) throw unsupported(g.source, `${where}: per-channel weights must be quantized along axis 0`);
        const bias = n.inputs[2] ? getTensor(g, n.inputs[2]).data : undefined;
        if (bias && !(bias instanceof Int32Array)) throw unsupported(g.source, `${where}: the bias must be int32`);
        if (n.inputs[3]) throw unsupported(g.source, `${where}: a fused residual has no integer reference`);
        set(conv({
          type: t, x: a.v.data as QArray, xShape: a.v.shape, xq: a.q,
          w: wT.data as QArray, wShape: wT.shape, wScales: wT.quant.scale, wZeroPoint: wT.dtype === 'uint8' ? wT.quant.zeroPoint[0] : 0,
          bias: bias as Int32Array | undefined, yShape: yT.shape, yq: q,
          strides: n.attrs.strides as number[], pads: n.attrs.pads as number[], dilations: n.attrs.dilations as number[], group: n.attrs.group as number,
          act: intClamp(clampOf(n), q, t),
        }));
        break;
      }
      case 'Gemm': {
        const a = qIn(0);
        const { t, q } = qOut();
        if (n.attrs.transA || !n.attrs.transB || n.attrs.alpha !== 1 || n.attrs.beta !== 1) throw unsupported(g.source, `${where}: only FULLY_CONNECTED's Gemm form (transB, alpha = beta = 1)`);
        const wT = getTensor(g, n.inputs[1]);
        if (!wT.quant || !wT.data) throw unsupported(g.source, `${where}: weights must be constant quantized`);
        const bias = n.inputs[2] ? getTensor(g, n.inputs[2]).data as Int32Array : undefined;
        set(fullyConnected({
          type: t, x: a.v.data as QArray, xShape: a.v.shape, xq: a.q, w: wT.data as QArray, wScales: wT.quant.scale,
          wZeroPoint: wT.dtype === 'uint8' ? wT.quant.zeroPoint[0] : 0, bias, units: wT.shape[0], yq: q, act: intClamp(clampOf(n), q, t),
        }));
        break;
      }
      case 'Relu': case 'Clip': {
        const a = qIn(0);
        const { t, q } = qOut();
        const [lo, hi] = clampOf(n)!;
        set(reluX(a.v.data as QArray, a.q, q, t, lo, hi));
        break;
      }
      case 'Add': case 'Sub': case 'Mul': {
        const a = qIn(0), b = qIn(1);
        const { t, q } = qOut();
        const args = { type: t, a: a.v.data as QArray, aShape: a.v.shape, aq: a.q, b: b.v.data as QArray, bShape: b.v.shape, bq: b.q, yShape: yT.shape, yq: q, act: intClamp(clampOf(n), q, t) };
        set(n.op === 'Mul' ? mul(args) : addSub(args, n.op === 'Sub'));
        break;
      }
      case 'AveragePool': case 'MaxPool': {
        const a = qIn(0);
        const { t, q } = qOut();
        if (a.q.scale !== q.scale || a.q.zeroPoint !== q.zeroPoint) throw unsupported(g.source, `${where}: input and output quantization differ`);
        const args = { type: t, x: a.v.data as QArray, xShape: a.v.shape, yShape: yT.shape, kernel: n.attrs.kernel as number[], strides: n.attrs.strides as number[], pads: n.attrs.pads as number[], act: intClamp(clampOf(n), q, t) };
        set(n.op === 'MaxPool' ? maxPool(args) : averagePool(args));
        break;
      }
      case 'ReduceMean': {
        const a = qIn(0);
        const { t, q } = qOut();
        const axes = (n.attrs.axes as number[]).length ? (n.attrs.axes as number[]) : a.v.shape.map((_, i) => i);
        const spatial = a.v.shape.length === 4 && !!n.attrs.keepdims && axes.length === 2 && axes.includes(2) && axes.includes(3);
        set(mean({ type: t, x: a.v.data as QArray, xShape: a.v.shape, xq: a.q, yq: q, axes, spatialKeepDims: spatial }));
        break;
      }
      case 'Pad': {
        const a = qIn(0);
        const { t, q } = qOut();
        if ((n.attrs.mode ?? 'constant') !== 'constant') throw unsupported(g.source, `${where}: only constant padding`);
        const value = n.attrs.value as number | undefined;
        const padValue = value ? quantize([value], q, t)[0] : q.zeroPoint;
        set(pad(t, a.v.data as QArray, a.v.shape, n.attrs.pads as number[], padValue).y);
        break;
      }
      case 'Reshape': case 'Flatten': case 'Squeeze': case 'Unsqueeze': case 'Identity': {
        if (x0T && isQ(x0T) && isQ(yT)) {
          const a = qparams(g, x0T, where), b = qparams(g, yT, where);
          if (a.scale !== b.scale || a.zeroPoint !== b.zeroPoint) throw unsupported(g.source, `${where}: a reshape may not change quantization`);
        }
        set(x0!.data);
        break;
      }
      case 'Transpose': {
        const perm = n.attrs.perm as number[];
        const d = x0!.data;
        const alloc = (len: number) => new (d.constructor as new (l: number) => typeof d)(len);
        set(transpose(d as QArray, x0!.shape, perm, alloc as (l: number) => QArray).y);
        break;
      }
      case 'Concat': {
        const { t, q } = qOut();
        const parts = n.inputs.filter((s) => s).map((_, i) => qIn(i)).map((p) => ({ x: p.v.data as QArray, shape: p.v.shape, q: p.q }));
        let axis = n.attrs.axis as number;
        if (axis < 0) axis += yT.shape.length;
        set(concat(t, parts, axis, q).y);
        break;
      }
      case 'Softmax': {
        const a = qIn(0);
        const { t, q } = qOut();
        let axis = n.attrs.axis as number;
        if (axis < 0) axis += a.v.shape.length;
        set(softmax(t, a.v.data as QArray, a.v.shape, axis, a.q, q));
        break;
      }
      case 'HardSwish': {
        const a = qIn(0);
        const { t, q } = qOut();
        set(hardSwish(a.v.data as QArray, a.q, q, t));
        break;
      }
      case 'Sigmoid': {
        const a = qIn(0);
        const { t, q } = qOut();
        if (a.t !== t) throw unsupported(g.source, `${where}: input is ${a.t}, output ${t}: TFLite's LOGISTIC keeps the type`);
        try {
          set(logistic(a.v.data as QArray, a.q, q, t));
        } catch (e) {
          if (e instanceof RangeError) throw unsupported(g.source, `${where}: ${e.message}`);
          throw e;
        }
        break;
      }
      default:
        throw unsupported(g.source, `${where}: no integer reference for ${n.op}`);
    }
  }
  const outputs = g.outputs.map((o) => {
    const v = values.get(o);
    if (!v) throw unsupported(g.source, `output '${o}' was not computed`);
    return v;
  });
  const dequantized = g.outputs.map((o, i) => {
    const t = getTensor(g, o);
    return isQ(t) ? dequantize(outputs[i].data, qparams(g, t, `output '${o}'`)) : Float32Array.from(outputs[i].data);
  });
  return { values, outputs, dequantized };
}

// ---- The float counterpart ----------------------------------------------------------------------------------

/** Real values of a constant or computed tensor. */
function realOf(g: Graph, name: string, v: Value, biasScale?: number[]): Float64Array {
  const t = getTensor(g, name);
  const out = new Float64Array(v.data.length);
  if (biasScale) {
    for (let i = 0; i < out.length; i++) out[i] = v.data[i] * biasScale[biasScale.length === 1 ? 0 : i];
  } else if (isQ(t)) {
    const q = t.quant!;
    const per = q.axis !== undefined && q.scale.length > 1;
    const inner = per ? numel(t.shape.slice(q.axis! + 1)) : 1;
    for (let i = 0; i < out.length; i++) {
      const c = per ? Math.floor(i / inner) % q.scale.length : 0;
      out[i] = q.scale[c] * (v.data[i] - q.zeroPoint[c]);
    }
  } else {
    for (let i = 0; i < out.length; i++) out[i] = v.data[i];
  }
  return out;
}

/**
 * The same graph in float64: dequantized weights, biases as int32 * input scale * weight scale, activations
 * as real numbers. With fakeQuant, every quantized activation is rounded to its grid (quantize, dequantize)
 * as the integer model stores it, so the two differ only by the integer kernels' rounding.
 */
export function runDequantizedFloat(g: Graph, inputs: Inputs, opts: { fakeQuant?: boolean } = {}): Float64Array[] {
  const values = new Map<string, Float64Array>();
  const shapes = new Map<string, number[]>();
  for (const name of g.inputs) {
    const t = getTensor(g, name);
    values.set(name, realOf(g, name, { data: Float32Array.from(inputs[name]), shape: t.shape }));
    shapes.set(name, [...t.shape]);
  }
  const get = (name: string): Float64Array => {
    let v = values.get(name);
    if (!v) {
      const t = getTensor(g, name);
      if (!t.data) throw unsupported(g.source, `tensor '${name}' has no value`);
      v = realOf(g, name, { data: t.data as Value['data'], shape: t.shape });
      values.set(name, v);
    }
    return v;
  };
  const shapeOf = (name: string) => shapes.get(name) ?? getTensor(g, name).shape;
  for (const n of liveNodes(g)) {
    const y = evalFloatNode(g, n, get, shapeOf);
    const yT = getTensor(g, n.outputs[0]);
    if (opts.fakeQuant && isQ(yT)) {
      const q = qparams(g, yT, n.name);
      const [lo, hi] = qLimits(yT.dtype);
      for (let i = 0; i < y.length; i++) y[i] = q.scale * (Math.min(hi, Math.max(lo, tfliteRound(y[i] / q.scale) + q.zeroPoint)) - q.zeroPoint);
    }
    values.set(n.outputs[0], y);
    shapes.set(n.outputs[0], [...yT.shape]);
  }
  return g.outputs.map((o) => values.get(o)!);
}

/** One node in float64 (the ops runInt8Reference runs). Exported for per-layer comparisons. */
export function evalFloatNode(g: Graph, n: Node, get: (name: string) => Float64Array, shapeOf: (name: string) => number[]): Float64Array {
  const yT = getTensor(g, n.outputs[0]);
  const x = n.inputs[0] ? get(n.inputs[0]) : new Float64Array(0);
  const xs = n.inputs[0] ? shapeOf(n.inputs[0]) : [];
  const y = new Float64Array(numel(yT.shape));
  const range = clampOf(n);
  const act = (v: number) => (range ? Math.min(range[1], Math.max(range[0], v)) : v);
  const where = `node '${n.name}' (${n.op})`;
  switch (n.op) {
    case 'QuantizeLinear': case 'DequantizeLinear': case 'Reshape': case 'Flatten': case 'Squeeze': case 'Unsqueeze': case 'Identity':
      y.set(x);
      return y;
    case 'Relu': case 'Clip':
      for (let i = 0; i < y.length; i++) y[i] = act(x[i]);
      return y;
    case 'Conv': {
      const wT = getTensor(g, n.inputs[1]);
      const w = get(n.inputs[1]);
      const xT = getTensor(g, n.inputs[0]);
      const [nb, c, h, wd] = xs, [f, cg, kh, kw] = wT.shape, [, , oh, ow] = yT.shape;
      const [sh, sw] = n.attrs.strides as number[], [dh, dw] = n.attrs.dilations as number[], [pt, pl] = n.attrs.pads as number[];
      const fg = f / ((n.attrs.group as number) ?? 1);
      const bias = n.inputs[2] ? realOf(g, n.inputs[2], { data: getTensor(g, n.inputs[2]).data as Int32Array, shape: [f] },
        wT.quant!.scale.map((s) => s * xT.quant!.scale[0])) : undefined;
      // Same loop order as reference.ts conv: a zero border stands for the skipped taps.
      const g0 = (n.attrs.group as number) ?? 1;
      const hp = Math.max(h + pt, (oh - 1) * sh + (kh - 1) * dh + 1), wp = Math.max(wd + pl, (ow - 1) * sw + (kw - 1) * dw + 1);
      const xp = new Float64Array(cg * hp * wp), acc = new Float64Array(oh * ow);
      for (let b = 0; b < nb; b++) for (let gi = 0; gi < g0; gi++) {
        xp.fill(0);
        for (let ci = 0; ci < cg; ci++) for (let yy = 0; yy < h; yy++) for (let xx = 0; xx < wd; xx++) {
          xp[(ci * hp + yy + pt) * wp + pl + xx] = x[((b * c + gi * cg + ci) * h + yy) * wd + xx];
        }
        for (let o = gi * fg; o < (gi + 1) * fg; o++) {
          acc.fill(bias ? bias[o] : 0);
          for (let ci = 0; ci < cg; ci++) for (let ky = 0; ky < kh; ky++) for (let kx = 0; kx < kw; kx++) {
            const wv = w[((o * cg + ci) * kh + ky) * kw + kx];
            const base = (ci * hp + ky * dh) * wp + kx * dw;
            for (let oy = 0; oy < oh; oy++) {
              const row = base + oy * sh * wp, at = oy * ow;
              for (let ox = 0; ox < ow; ox++) acc[at + ox] += wv * xp[row + ox * sw];
            }
          }
          const out = (b * f + o) * oh * ow;
          for (let i = 0; i < oh * ow; i++) y[out + i] = act(acc[i]);
        }
      }
      return y;
    }
    case 'Gemm': {
      const wT = getTensor(g, n.inputs[1]);
      const w = get(n.inputs[1]);
      const xT = getTensor(g, n.inputs[0]);
      const [units, depth] = wT.shape;
      const bias = n.inputs[2] ? realOf(g, n.inputs[2], { data: getTensor(g, n.inputs[2]).data as Int32Array, shape: [units] },
        wT.quant!.scale.map((s) => s * xT.quant!.scale[0])) : undefined;
      const rows = x.length / depth;
      for (let r = 0; r < rows; r++) for (let u = 0; u < units; u++) {
        let acc = bias ? bias[u] : 0;
        for (let d = 0; d < depth; d++) acc += w[u * depth + d] * x[r * depth + d];
        y[r * units + u] = act(acc);
      }
      return y;
    }
    case 'Add': case 'Sub': case 'Mul': {
      const b = get(n.inputs[1]);
      const ia = broadcastTo(xs, yT.shape), ib = broadcastTo(shapeOf(n.inputs[1]), yT.shape);
      for (let i = 0; i < y.length; i++) {
        const p = x[ia[i]], q = b[ib[i]];
        y[i] = act(n.op === 'Add' ? p + q : n.op === 'Sub' ? p - q : p * q);
      }
      return y;
    }
    case 'AveragePool': case 'MaxPool': {
      const [nb, c, h, wd] = xs, [, , oh, ow] = yT.shape;
      const [kh, kw] = n.attrs.kernel as number[], [sh, sw] = n.attrs.strides as number[], [pt, pl] = n.attrs.pads as number[];
      for (let p = 0; p < nb * c; p++) for (let oy = 0; oy < oh; oy++) for (let ox = 0; ox < ow; ox++) {
        let s = 0, m = -Infinity, cnt = 0;
        for (let ky = 0; ky < kh; ky++) for (let kx = 0; kx < kw; kx++) {
          const iy = oy * sh - pt + ky, ix = ox * sw - pl + kx;
          if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
          const v = x[(p * h + iy) * wd + ix];
          s += v; m = Math.max(m, v); cnt++;
        }
        y[(p * oh + oy) * ow + ox] = act(n.op === 'MaxPool' ? m : s / cnt);
      }
      return y;
    }
    case 'ReduceMean': {
      const axes = (n.attrs.axes as number[]).length ? (n.attrs.axes as number[]) : xs.map((_, i) => i);
      const kept = xs.map((d, i) => (axes.includes(i) ? 1 : d));
      const idx = broadcastTo(kept, xs);
      const count = x.length / y.length;
      for (let i = 0; i < x.length; i++) y[idx[i]] += x[i] / count;
      return y;
    }
    case 'Pad': {
      const r = xs.length, pads = n.attrs.pads as number[];
      const os = yT.shape;
      y.fill((n.attrs.value as number) ?? 0);
      const pos = new Array<number>(r).fill(0);
      for (let i = 0; i < x.length; i++) {
        let o = 0;
        for (let d = 0; d < r; d++) o = o * os[d] + pos[d] + pads[d];
        y[o] = x[i];
        for (let d = r - 1; d >= 0; d--) { if (++pos[d] < xs[d]) break; pos[d] = 0; }
      }
      return y;
    }
    case 'Transpose': {
      return transpose(x, xs, n.attrs.perm as number[], (l) => new Float64Array(l)).y;
    }
    case 'Concat': {
      let axis = n.attrs.axis as number;
      if (axis < 0) axis += yT.shape.length;
      const outer = numel(yT.shape.slice(0, axis)), inner = numel(yT.shape.slice(axis + 1));
      let o = 0;
      for (let k = 0; k < outer; k++) for (const name of n.inputs.filter((s) => s)) {
        const len = shapeOf(name)[axis] * inner, v = get(name);
        for (let j = 0; j < len; j++) y[o++] = v[k * len + j];
      }
      return y;
    }
    case 'Softmax': {
      let axis = n.attrs.axis as number;
      if (axis < 0) axis += xs.length;
      const depth = xs[axis], inner = numel(xs.slice(axis + 1)), outer = numel(xs.slice(0, axis));
      for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) {
        let m = -Infinity, s = 0;
        for (let c = 0; c < depth; c++) m = Math.max(m, x[(o * depth + c) * inner + i]);
        for (let c = 0; c < depth; c++) s += Math.exp(x[(o * depth + c) * inner + i] - m);
        for (let c = 0; c < depth; c++) y[(o * depth + c) * inner + i] = Math.exp(x[(o * depth + c) * inner + i] - m) / s;
      }
      return y;
    }
    case 'HardSwish':
      for (let i = 0; i < y.length; i++) y[i] = (x[i] * Math.min(6, Math.max(0, x[i] + 3))) / 6;
      return y;
    default:
      throw unsupported(g.source, `${where}: no float reference for ${n.op}`);
  }
}

function broadcastTo(inShape: number[], outShape: number[]): Int32Array {
  const r = outShape.length;
  const s = [...Array(r - inShape.length).fill(1), ...inShape];
  const st = new Array<number>(r).fill(0);
  let acc = 1;
  for (let i = r - 1; i >= 0; i--) { st[i] = s[i] === 1 ? 0 : acc; acc *= s[i]; }
  const n = numel(outShape), idx = new Int32Array(n), pos = new Array<number>(r).fill(0);
  for (let i = 0; i < n; i++) {
    let o = 0;
    for (let d = 0; d < r; d++) o += pos[d] * st[d];
    idx[i] = o;
    for (let d = r - 1; d >= 0; d--) { if (++pos[d] < outShape[d]) break; pos[d] = 0; }
  }
  return idx;
}
