// Integer concatenation (reference/concatenation.h ConcatenationWithScaling): inputs on the output's grid are
// copied; the others go through round(q * scale + bias) in float32 (scale = in_scale * (1 / out_scale), bias =
// -in_zp * scale, both computed on the host exactly as TFLite does; WGSL's f32 multiply and add are correctly
// rounded), then + output zero point, clamped. Rounding is half away from zero (TfLiteRound). Any rank and axis.

import { unsupported } from '../../src/errors.js';
import { cacheKey, f32, flatDispatch, intAttr, normAxis, where } from '../shader.js';
import {
  type Int8KernelArgs, type Int8Program, int8Bindings, loader, perWordMain, qLimits, qTensor,
} from './common.js';

export function int8Concat(args: Int8KernelArgs): Int8Program {
  const w = where(args);
  const ys = args.outputs[0].shape;
  const yq = qTensor(args.outputs[0], 'output', w);
  const axis = normAxis(intAttr(args.node.attrs, 'axis', 0, w), ys.length, w);
  const used = args.node.inputs.map((n, i) => (n ? i : -1)).filter((i) => i >= 0);
  const inner = ys.slice(axis + 1).reduce((a, b) => a * b, 1);
  const D = ys[axis];
  const total = ys.reduce((a, b) => a * b, 1);
  const [qmin, qmax] = qLimits(yq.type);
  const fr = Math.fround;
  const invOut = fr(1 / fr(yq.scale));
  let off = 0;
  const parts: string[] = [];
  const keys: unknown[] = [];
  used.forEach((idx, k) => {
    const q = qTensor(args.inputs[idx], `input ${idx}`, w);
    if (q.type !== yq.type) throw unsupported(w, 'inputs and output must share one 8-bit type');
    const d = args.inputs[idx]!.shape[axis];
    const at = `(o * ${d}u + (a - ${off}u)) * ${inner}u + r`;
    let value = `ld_x${k}(${at})`;
    if (q.scale !== yq.scale || q.zeroPoint !== yq.zeroPoint) {
      const scale = fr(fr(q.scale) * invOut);
      const bias = fr(-q.zeroPoint * scale);
      value = `clamp(tround(f32(ld_x${k}(${at})) * ${f32(scale, w)} + ${f32(bias, w)}) + ${yq.zeroPoint}i, ${qmin}i, ${qmax}i)`;
      keys.push(scale, bias);
    }
    parts.push(`if (a < ${off + d}u) { return ${value}; }`);
    keys.push(d);
    off += d;
  });
  const d = flatDispatch(Math.ceil(total / 4), args.limits, w, 'j');
  const wgsl = `${int8Bindings(used.map((_, k) => `x${k}`), [])}
${used.map((_, k) => loader(`x${k}`, yq.type)).join('\n')}
fn tround(v: f32) -> i32 {
  let m = abs(v);
  var r = floor(m);
  if (m - r >= 0.5) { r += 1.0; }
  return i32(select(r, -r, v < 0.0));
}
fn elem(i: u32) -> i32 {
  let r = i % ${inner}u;
  let a = (i / ${inner}u) % ${D}u;
  let o = i / ${inner * D}u;
  ${parts.join('\n  ')}
  return 0i;
}
${perWordMain(total, d)}`;
  return {
    name: `Concat${yq.type === 'int8' ? 'I8' : 'U8'}`,
    cacheKey: cacheKey('int8-concat', yq.type, ys, axis, yq.zeroPoint, keys.join(','), d.key),
    wgsl, workgroupSize: d.workgroupSize, dispatch: d.dispatch, inputs: used, outputs: 1, workgroupStorageBytes: 0, constants: [],
  };
}
