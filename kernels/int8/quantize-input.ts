// Quantization of a float32 model input on the GPU (TFLite's QUANTIZE, reference/quantize.h AffineQuantize:
// clamp(round(x / scale) + zero point)), bit-exact with src/quant/reference.ts quantizeF32 by table: the host
// finds the 255 thresholds of the monotone map once (quantizeThresholds) and each value is qmin plus the number of
// thresholds at or below it, found by an 8-step binary search on float32 order keys: integer compares only, no
// float division (WGSL allows 2.5 ULP) and no NaN semantics (NaN bit patterns store 0, as quantizeF32 does).
// On the H200 the host loop took 2 ms per 224x224x3 image, twice the integer model's GPU time.
//
// Bindings: `xf` the float32 input as u32 bit patterns, `th` the threshold keys (constant), `out` packed bytes.

import { type QParams, type QType, qLimits, quantizeThresholds } from '../../src/quant/reference.js';
import type { KernelLimits } from '../program.js';
import { cacheKey, constsI32, constsU32, flatDispatch } from '../shader.js';
import { type Int8Program, int8Bindings, perWordMain } from './common.js';

export function int8QuantizeInput(n: number, q: QParams, t: QType, limits: KernelLimits, name: string): Int8Program {
  const [lo, hi] = qLimits(t);
  const th = quantizeThresholds(q, t);
  const d = flatDispatch(Math.ceil(n / 4), limits, `input '${name}'`, 'j');
  const steps = [128, 64, 32, 16, 8, 4, 2, 1];
  const wgsl = `${int8Bindings(['xf'], ['th'])}
${constsU32({ NT: hi - lo })}
${constsI32({ QMIN: lo })}
fn elem(i: u32) -> i32 {
  let b = xf[i];
  if ((b & 0x7fffffffu) > 0x7f800000u) { return 0i; }
  let k = select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
  var pos = 0u;
  ${steps.map((s) => `if (pos + ${s}u <= NT && th[pos + ${s - 1}u] <= k) { pos += ${s}u; }`).join('\n  ')}
  return QMIN + i32(pos);
}
${perWordMain(n, d)}`;
  return {
    name: `Quantize${t === 'int8' ? 'I8' : 'U8'}(input ${name})`,
    cacheKey: cacheKey('int8-quantize-input', t, n, `s${q.scale}z${q.zeroPoint}`, d.key),
    wgsl,
    workgroupSize: d.workgroupSize,
    dispatch: d.dispatch,
    inputs: [0],
    outputs: 1,
    workgroupStorageBytes: 0,
    constants: [{ name: 'th', data: th }],
  };
}
