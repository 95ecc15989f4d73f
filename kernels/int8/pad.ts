// Integer constant padding (reference/pad.h): quantized tensors pad with the quantized pad value (the output zero
// point for 0). Any rank; one invocation per output word.

import { unsupported } from '../../src/errors.js';
import { quantize } from '../../src/quant/reference.js';
import { cacheKey, constsI32, flatDispatch, intsAttr, stridesOf, strAttr, where } from '../shader.js';
import { type Int8KernelArgs, type Int8Program, int8Bindings, loader, perWordMain, qTensor } from './common.js';

export function int8Pad(args: Int8KernelArgs): Int8Program {
  const w = where(args);
  const xq = qTensor(args.inputs[0], 'input', w), yq = qTensor(args.outputs[0], 'output', w);
  if (xq.type !== yq.type || xq.scale !== yq.scale || xq.zeroPoint !== yq.zeroPoint) throw unsupported(w, 'input and output quantization differ');
  if (strAttr(args.node.attrs, 'mode', 'constant', w) !== 'constant') throw unsupported(w, 'only constant padding has an integer kernel');
  const xs = args.inputs[0]!.shape, ys = args.outputs[0].shape, r = xs.length;
  const pads = intsAttr(args.node.attrs, 'pads', undefined, w, 2 * r);
  const value = (args.node.attrs.value as number | undefined) ?? 0;
  const padValue = value ? quantize([value], yq, yq.type)[0] : yq.zeroPoint;
  const total = ys.reduce((a, b) => a * b, 1);
  const yst = stridesOf(ys), xst = stridesOf(xs);
  const lines = ys.map((d, k) => `let c${k} = i32((i / ${yst[k]}u) % ${d}u) - ${pads[k]}i;\n  if (c${k} < 0i || c${k} >= ${xs[k]}i) { return PADV; }`).join('\n  ');
  const off = xs.map((_, k) => `u32(c${k}) * ${xst[k]}u`).join(' + ') || '0u';
  const d = flatDispatch(Math.ceil(total / 4), args.limits, w, 'j');
  const wgsl = `${int8Bindings(['x'], [])}
${constsI32({ PADV: padValue })}
${loader('x', xq.type)}
fn elem(i: u32) -> i32 {
  ${lines}
  return ld_x(${off});
}
${perWordMain(total, d)}`;
  return {
    name: `Pad${xq.type === 'int8' ? 'I8' : 'U8'}`,
    cacheKey: cacheKey('int8-pad', xq.type, xs, pads, padValue, d.key),
    wgsl, workgroupSize: d.workgroupSize, dispatch: d.dispatch, inputs: [0], outputs: 1, workgroupStorageBytes: 0, constants: [],
  };
}
