// Integer average and max pooling (reference/integer_ops/pooling.h, reference/pooling.h for uint8), NCHW, one
// invocation per output word. Average: the integer sum of the taps inside the image (padding not counted) divided
// by their count, rounded half away from zero (integer division truncates toward zero in WGSL as in C++). Input
// and output share their quantization (TFLite requires it); the fused activation clamps.

import { unsupported } from '../../src/errors.js';
import { cacheKey, constsI32, constsU32, flatDispatch, intsAttr, where } from '../shader.js';
import {
  type Int8KernelArgs, type Int8Program, activationClamp, int8Bindings, loader, perWordMain, qTensor,
} from './common.js';

export function int8Pool(args: Int8KernelArgs): Int8Program {
  const w = where(args);
  const op = args.node.op;
  if (op !== 'AveragePool' && op !== 'MaxPool') throw unsupported(w, `no integer pooling kernel for ${op}`);
  const xq = qTensor(args.inputs[0], 'input', w), yq = qTensor(args.outputs[0], 'output', w);
  if (xq.type !== yq.type || xq.scale !== yq.scale || xq.zeroPoint !== yq.zeroPoint) throw unsupported(w, 'input and output quantization differ');
  const a = args.node.attrs;
  const [N, C, H, W] = args.inputs[0]!.shape;
  const [, , HO, WO] = args.outputs[0].shape;
  const [kh, kw] = intsAttr(a, 'kernel', undefined, w, 2);
  const [sh, sw] = intsAttr(a, 'strides', [1, 1], w, 2);
  const [pt, pl] = intsAttr(a, 'pads', [0, 0, 0, 0], w, 4);
  const dil = intsAttr(a, 'dilations', [1, 1], w, 2);
  if (dil[0] !== 1 || dil[1] !== 1) throw unsupported(w, 'dilated pooling has no integer kernel');
  if (op === 'AveragePool' && a.countIncludePad) throw unsupported(w, 'count_include_pad has no integer kernel (TFLite excludes padding)');
  const [lo, hi] = activationClamp(a, '', yq, w);
  const total = N * C * HO * WO;
  const d = flatDispatch(Math.ceil(total / 4), args.limits, w, 'j');
  const wgsl = `${int8Bindings(['x'], [])}
${constsU32({ HO, WO, KH: kh, KW: kw, SH: sh, SW: sw })}
${constsI32({ H, W, PT: pt, PL: pl, LO: lo, HI: hi })}
${loader('x', xq.type)}
fn elem(i: u32) -> i32 {
  let ox = i % WO;
  let oy = (i / WO) % HO;
  let xb = (i / (WO * HO)) * u32(H);
  let iy0 = i32(oy * SH) - PT;
  let ix0 = i32(ox * SW) - PL;
  var acc = ${op === 'MaxPool' ? '-2147483647i' : '0i'};
  var n = 0i;
  for (var ky = 0u; ky < KH; ky++) {
    let iy = iy0 + i32(ky);
    if (iy < 0i || iy >= H) { continue; }
    for (var kx = 0u; kx < KW; kx++) {
      let ix = ix0 + i32(kx);
      if (ix >= 0i && ix < W) {
        let v = ld_x((xb + u32(iy)) * u32(W) + u32(ix));
        ${op === 'MaxPool' ? 'acc = max(acc, v);' : 'acc += v;'}
        n++;
      }
    }
  }
  ${op === 'MaxPool' ? '' : 'acc = select((acc - n / 2i) / n, (acc + n / 2i) / n, acc > 0i);'}
  return clamp(acc, LO, HI);
}
${perWordMain(total, d)}`;
  return {
    name: `${op}${xq.type === 'int8' ? 'I8' : 'U8'}`,
    cacheKey: cacheKey('int8-pool', op, xq.type, [N, C, H, W], [HO, WO], [kh, kw, sh, sw, pt, pl], [lo, hi], d.key),
    wgsl, workgroupSize: d.workgroupSize, dispatch: d.dispatch, inputs: [0], outputs: 1, workgroupStorageBytes: 0, constants: [],
  };
}
