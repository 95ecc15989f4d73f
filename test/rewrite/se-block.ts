// A squeeze-excite block for the channel-scale tests (structural: channel-scale-fold.test.ts; on the GPU:
// channel-scale.test.ts).
import { GraphBuilder } from '../../fixtures/ir-builder.js';

/** The activation inside the SE block and its gate; SiLU spelled x * Sigmoid(x) as PyTorch exports it. */
export type SeInner = 'relu' | 'silu' | 'hswish';
export type SeGate = 'hsigmoid' | 'sigmoid';

/**
 * conv -> relu -> SE (GAP, 1x1, inner activation, 1x1, gate) -> Mul -> pointwise projection (+ extra readers).
 * Defaults: relu inside, HardSigmoid gate, 4 hidden channels.
 */
export function seBlock(opts: { hw?: number; channels?: number; proj?: number; projKernel?: number; swap?: boolean; secondReader?: boolean; batch?: number; inner?: SeInner; gate?: SeGate; squeeze?: number; hiddenReader?: boolean } = {}) {
  const b = new GraphBuilder('se', 7);
  const hw = opts.hw ?? 8, C = opts.channels ?? 16, N = opts.batch ?? 1;
  const x = b.input('input', [N, 3, hw, hw]);
  const f = b.relu(b.conv(x, { filters: C, kernel: 3, bias: true }));
  let s = b.globalAveragePool(f);
  s = b.conv(s, { filters: opts.squeeze ?? 4, kernel: 1, bias: true });
  const inner = opts.inner ?? 'relu';
  s = inner === 'relu' ? b.relu(s) : inner === 'hswish' ? b.node('HardSwish', [s], b.shape(s)) : b.mul(s, b.node('Sigmoid', [s], b.shape(s)));
  const hidden = s;
  s = b.conv(s, { filters: C, kernel: 1, bias: true });
  s = (opts.gate ?? 'hsigmoid') === 'hsigmoid' ? b.hardSigmoid(s, 1 / 6, 0.5) : b.node('Sigmoid', [s], b.shape(s));
  const m = opts.swap ? b.mul(s, f) : b.mul(f, s);
  // The builder takes the Mul's shape from its first operand: with the scale first, give it the product's.
  if (opts.swap) b.tensors.get(m)!.shape = [...b.tensors.get(f)!.shape];
  const y = b.conv(m, { filters: opts.proj ?? 24, kernel: opts.projKernel ?? 1, bias: true });
  const outs = [y];
  if (opts.secondReader) outs.push(b.relu(m));
  if (opts.hiddenReader) outs.push(b.relu(hidden));
  return { g: b.build(outs), m, f, s, y };
}

