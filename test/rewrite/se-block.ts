// A squeeze-excite block for the channel-scale tests (structural: channel-scale-fold.test.ts; on the GPU:
// channel-scale.test.ts).
import { GraphBuilder } from '../../fixtures/ir-builder.js';

/** conv -> relu -> SE (GAP, 1x1, relu, 1x1, HardSigmoid) -> Mul -> pointwise projection (+ extra readers). */
export function seBlock(opts: { hw?: number; channels?: number; proj?: number; projKernel?: number; swap?: boolean; secondReader?: boolean; batch?: number } = {}) {
  const b = new GraphBuilder('se', 7);
  const hw = opts.hw ?? 8, C = opts.channels ?? 16, N = opts.batch ?? 1;
  const x = b.input('input', [N, 3, hw, hw]);
  const f = b.relu(b.conv(x, { filters: C, kernel: 3, bias: true }));
  let s = b.globalAveragePool(f);
  s = b.relu(b.conv(s, { filters: 4, kernel: 1, bias: true }));
  s = b.hardSigmoid(b.conv(s, { filters: C, kernel: 1, bias: true }), 1 / 6, 0.5);
  const m = opts.swap ? b.mul(s, f) : b.mul(f, s);
  // The builder takes the Mul's shape from its first operand: with the scale first, give it the product's.
  if (opts.swap) b.tensors.get(m)!.shape = [...b.tensors.get(f)!.shape];
  const y = b.conv(m, { filters: opts.proj ?? 24, kernel: opts.projKernel ?? 1, bias: true });
  const outs = [y];
  if (opts.secondReader) outs.push(b.relu(m));
  return { g: b.build(outs), m, f, s, y };
}

