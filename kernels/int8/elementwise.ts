// Integer elementwise kernels, one invocation per output word (4 outputs), TFLite's reference arithmetic:
// - Add / Sub (add.cc, sub.cc Prepare; reference/integer_ops/add.h): inputs shifted left by 20, scaled to twice the
//   larger input scale, summed, scaled to the output; NumPy broadcasting.
// - Mul (mul.cc; reference/integer_ops/mul.h): zo + MBQM((a - za) * (b - zb)), broadcasting.
// - Relu / Clip as separate ops (activations.cc QuantizedReluX): requantize by float32(in / out scale), clamp.
// - QuantizeLinear from an 8-bit tensor (quantize.cc requantization): MBQM by in / out scale (double), clamp to
//   the output type. (The IR spells TFLite's QUANTIZE between 8-bit tensors DequantizeLinear + QuantizeLinear; the
//   runtime runs the pair as this kernel on the DequantizeLinear's input.)
// All parameters are WGSL constants (per-tensor quantization); no constant buffers.

import { invalid, unsupported } from '../../src/errors.js';
import { tfliteRound } from '../../src/quant/fixedpoint.js';
import { quantizeMultiplier, quantizeMultiplierSmallerThanOneExp } from '../../src/quant/fixedpoint.js';
import { cacheKey, constsI32, flatDispatch, size, stridesOf, where } from '../shader.js';
import {
  type Int8KernelArgs, type Int8Program, type QInfo, activationClamp, fixedPointWgsl, int8Bindings, loader,
  perWordMain, qLimits, qTensor,
} from './common.js';

/** `fn idx_NAME(i: u32) -> u32`: the flat index into a NumPy-broadcast input of `inShape` for output element i. */
export function broadcastFn(name: string, inShape: readonly number[], outShape: readonly number[], w: string): string {
  const r = outShape.length;
  const s = [...Array(r - inShape.length).fill(1), ...inShape];
  if (inShape.length > r || s.some((d, k) => d !== 1 && d !== outShape[k])) throw invalid(w, `[${inShape}] does not broadcast to [${outShape}]`);
  if (s.every((d, k) => d === outShape[k])) return `fn idx_${name}(i: u32) -> u32 { return i; }`;
  const os = stridesOf(outShape), is = stridesOf(s);
  const terms = s.map((d, k) => (d === 1 ? '' : `((i / ${os[k]}u) % ${outShape[k]}u) * ${is[k]}u`)).filter((t) => t);
  return `fn idx_${name}(i: u32) -> u32 { return ${terms.length ? terms.join(' + ') : '0u'}; }`;
}

function program(args: Int8KernelArgs, op: string, total: number, inputs: string[], body: string, key: unknown[]): Int8Program {
  const w = where(args);
  const d = flatDispatch(Math.ceil(total / 4), args.limits, w, 'j');
  const wgsl = `${int8Bindings(inputs, [])}\n${body}\n${perWordMain(total, d)}`;
  return {
    name: op, cacheKey: cacheKey(op, ...(key as string[]), d.key), wgsl, workgroupSize: d.workgroupSize, dispatch: d.dispatch,
    inputs: inputs.map((_, i) => i), outputs: 1, workgroupStorageBytes: 0, constants: [],
  };
}

export function int8Binary(args: Int8KernelArgs): Int8Program {
  const w = where(args);
  const op = args.node.op;
  if (op !== 'Add' && op !== 'Sub' && op !== 'Mul') throw unsupported(w, `no integer elementwise kernel for ${op}`);
  const aq = qTensor(args.inputs[0], 'input A', w), bq = qTensor(args.inputs[1], 'input B', w), yq = qTensor(args.outputs[0], 'output', w);
  if (aq.type !== yq.type || bq.type !== yq.type) throw unsupported(w, 'inputs and output must share one 8-bit type');
  const yShape = args.outputs[0].shape, total = size(yShape);
  const clampR = activationClamp(args.node.attrs, '', yq, w);
  const common = `${loader('a', yq.type)}\n${loader('b', yq.type)}\n${fixedPointWgsl}
${broadcastFn('a', args.inputs[0]!.shape, yShape, w)}
${broadcastFn('b', args.inputs[1]!.shape, yShape, w)}`;
  const consts = { ZA: aq.zeroPoint, ZB: bq.zeroPoint, ZO: yq.zeroPoint, LO: clampR[0], HI: clampR[1] };
  let body: string;
  let key: unknown[];
  if (op === 'Mul') {
    const { multiplier, shift } = quantizeMultiplier((aq.scale * bq.scale) / yq.scale);
    body = `${constsI32({ ...consts, M: multiplier, S: shift })}\n${common}
fn elem(i: u32) -> i32 {
  let p = (ld_a(idx_a(i)) - ZA) * (ld_b(idx_b(i)) - ZB);
  return clamp(ZO + mbqm(p, M, S), LO, HI);
}`;
    key = [multiplier, shift];
  } else {
    const twiceMax = 2 * Math.max(aq.scale, bq.scale);
    const m1 = quantizeMultiplierSmallerThanOneExp(aq.scale / twiceMax);
    const m2 = quantizeMultiplierSmallerThanOneExp(bq.scale / twiceMax);
    const mo = quantizeMultiplierSmallerThanOneExp(twiceMax / ((1 << 20) * yq.scale));
    body = `${constsI32({ ...consts, M1: m1.multiplier, S1: m1.shift, M2: m2.multiplier, S2: m2.shift, MO: mo.multiplier, SO: mo.shift })}\n${common}
fn elem(i: u32) -> i32 {
  let s1 = mbqm((ld_a(idx_a(i)) - ZA) << 20u, M1, S1);
  let s2 = mbqm((ld_b(idx_b(i)) - ZB) << 20u, M2, S2);
  return clamp(mbqm(s1 ${op === 'Sub' ? '-' : '+'} s2, MO, SO) + ZO, LO, HI);
}`;
    key = [m1.multiplier, m1.shift, m2.multiplier, m2.shift, mo.multiplier, mo.shift];
  }
  return program(args, `${op}${yq.type === 'int8' ? 'I8' : 'U8'}`, total, ['a', 'b'], body,
    [yq.type, args.inputs[0]!.shape.join('x'), args.inputs[1]!.shape.join('x'), yShape.join('x'), ...Object.values(consts), ...key]);
}

/** Requantize x to y's grid (multiplier `real`), clamp to [lo, hi]. */
function requantProgram(args: Int8KernelArgs, op: string, xq: QInfo, yq: QInfo, real: number, lo: number, hi: number): Int8Program {
  const { multiplier, shift } = quantizeMultiplier(real);
  const total = size(args.outputs[0].shape);
  const body = `${constsI32({ ZX: xq.zeroPoint, ZO: yq.zeroPoint, M: multiplier, S: shift, LO: lo, HI: hi })}
${loader('x', xq.type)}
${fixedPointWgsl}
fn elem(i: u32) -> i32 { return clamp(ZO + mbqm(ld_x(i) - ZX, M, S), LO, HI); }`;
  return program(args, op, total, ['x'], body, [xq.type, yq.type, xq.zeroPoint, yq.zeroPoint, multiplier, shift, lo, hi, total]);
}

/** Relu / Clip nodes between 8-bit tensors. */
export function int8Activation(args: Int8KernelArgs): Int8Program {
  const w = where(args);
  const xq = qTensor(args.inputs[0], 'input', w), yq = qTensor(args.outputs[0], 'output', w);
  if (xq.type !== yq.type) throw unsupported(w, 'input and output must share one 8-bit type');
  const a = args.node.attrs;
  const range = args.node.op === 'Relu' ? [0, Infinity] : args.node.op === 'Clip' ? [(a.min as number) ?? -Infinity, (a.max as number) ?? Infinity] : undefined;
  if (!range) throw unsupported(w, `no integer kernel for ${args.node.op}`);
  const [qmin, qmax] = qLimits(yq.type);
  const f32 = Math.fround;
  const lo = range[0] === -Infinity ? qmin : Math.max(qmin, yq.zeroPoint + tfliteRound(f32(range[0] / f32(yq.scale))));
  const hi = range[1] === Infinity ? qmax : Math.min(qmax, yq.zeroPoint + tfliteRound(f32(range[1] / f32(yq.scale))));
  return requantProgram(args, `${args.node.op}Q`, xq, yq, f32(xq.scale / yq.scale), lo, hi);
}

/** QuantizeLinear of an 8-bit input (TFLite QUANTIZE between 8-bit tensors, e.g. uint8 -> int8). */
export function int8Requantize(args: Int8KernelArgs): Int8Program {
  const w = where(args);
  const xq = qTensor(args.inputs[0], 'input', w), yq = qTensor(args.outputs[0], 'output', w);
  const [lo, hi] = qLimits(yq.type);
  return requantProgram(args, 'Requantize', xq, yq, xq.scale / yq.scale, lo, hi);
}
