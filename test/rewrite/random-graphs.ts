// Seeded random graphs for the rewrite's property tests: chains of pointwise, depthwise and standard
// convolutions, activations (foldable or not), Pads of every kind (zero spatial, non-zero value, reflect, edge,
// on channels), residual and broadcast Adds, squeeze-excite channel scales (Mul(x, s) with s [N, C, 1, 1], either
// operand order), products of full-size tensors, side outputs and side readers. Everything the rewrite's legality rules look at
// varies, so a rule that is dropped or inverted changes some outcome.
import { GraphBuilder, mulberry32 } from '../../fixtures/ir-builder.js';
import { prepareGraph } from '../../src/graph/prepare.js';
import type { Graph } from '../../src/graph/ir.js';

export function randomGraph(seed: number): Graph {
  const rand = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const b = new GraphBuilder(`random-${seed}`, seed);
  let y = b.input('x', [1, pick([2, 4, 8]), 6, 6]);
  const bound = b.input('bound', []);
  const seen: string[] = [y];
  const outputs: string[] = [];
  const steps = 4 + Math.floor(rand() * 8);
  for (let s = 0; s < steps; s++) {
    const [n, c, h, w] = b.shape(y);
    const r = rand();
    if (r < 0.07) {
      // MobileNetV2's inverted residual: PW expand -> Relu6 -> DW -> Relu6 -> PW project, + the block's input.
      const e = b.relu6(b.conv(y, { filters: 2 * c, kernel: 1 }));
      const d = b.conv(e, { filters: 2 * c, kernel: 3, group: 2 * c, pad: 1 });
      const p = b.conv(rand() < 0.5 ? b.relu6(d) : d, { filters: c, kernel: 1, bias: true });
      y = rand() < 0.5 ? b.add(p, y) : b.add(y, p);
    } else if (r < 0.22) {
      const stride = rand() < 0.12 && h > 2 ? 2 : 1;
      y = b.conv(y, { filters: pick([2, 4, 8]), kernel: 1, stride, pad: rand() < 0.08 ? 1 : 0, bias: rand() < 0.5 });
    } else if (r < 0.42) {
      y = b.conv(y, { filters: c, kernel: 3, group: c, stride: rand() < 0.25 && h > 3 ? 2 : 1, pad: h < 4 ? 1 : pick([0, 1]), bias: rand() < 0.5 });
    } else if (r < 0.46) {
      y = b.conv(y, { filters: pick([2, 4]), kernel: 3, pad: 1, bias: true });
    } else if (r < 0.6) {
      const op = pick(['Relu', 'Clip', 'Sigmoid', 'HardSwish', 'LeakyRelu', 'HardSigmoid', 'Tanh', 'ClipComputed']);
      if (op === 'Clip') y = b.node('Clip', [y], b.shape(y), { min: pick([0, -0.5]), max: pick([6, 0.5]) });
      else if (op === 'ClipComputed') y = b.node('Clip', [y, '', bound], b.shape(y));
      else if (op === 'LeakyRelu') y = b.node(op, [y], b.shape(y), { alpha: 0.3 });
      else if (op === 'HardSigmoid') y = b.hardSigmoid(y, 0.3, 0.4);
      else y = b.node(op, [y], b.shape(y));
    } else if (r < 0.66) {
      // TFLite style: a zero spatial Pad, then a depthwise conv without padding of its own.
      const [t, l, bo, ri] = [h < 2 ? 1 : pick([0, 1]), w < 2 ? 1 : pick([0, 1]), 1, 1];
      if (rand() < 0.5) y = b.conv(y, { filters: c, kernel: 1 });
      const padded = b.node('Pad', [y], [n, c, h + t + bo, w + l + ri], { pads: [0, 0, t, l, 0, 0, bo, ri], mode: 'constant', value: 0 });
      if (rand() < 0.2) outputs.push(padded);
      y = b.conv(padded, { filters: c, kernel: 3, group: c, stride: rand() < 0.5 && h > 3 ? 2 : 1, pad: 0 });
    } else if (r < 0.74) {
      const [t, l, bo, ri] = [pick([0, 1]), pick([0, 1, 2]), pick([0, 1]), pick([0, 1])];
      const kind = rand();
      const channels = kind < 0.1 ? 1 : 0;
      // Reflect needs each pad below the dimension it pads (ONNX); edge takes any.
      const reflectable = h > Math.max(t, bo) && w > Math.max(l, ri);
      const mode = kind >= 0.1 && kind < 0.2 ? (reflectable ? 'reflect' : 'edge') : kind >= 0.2 && kind < 0.28 ? 'edge' : 'constant';
      const value = kind >= 0.28 && kind < 0.36 ? 0.5 : 0;
      y = b.node('Pad', [y], [n, c + 2 * channels, h + t + bo, w + l + ri], { pads: [0, channels, t, l, 0, channels, bo, ri], mode, value });
    } else if (r < 0.86) {
      const same = seen.filter((t) => t !== y && b.shape(t).join() === b.shape(y).join());
      const k = rand();
      if (k < 0.1) y = b.add(y, b.random('bias', [1, c, 1, 1], 1));
      else if (k < 0.17) y = b.add(y, y);
      else if (same.length > 0) y = rand() < 0.5 ? b.add(y, pick(same)) : b.add(pick(same), y);
      else continue;
    } else if (r < 0.96) {
      // Squeeze-excite: s = gate(PW(GAP(y))), then y * s (or s * y).
      const gate = rand() < 0.5 ? b.node('Sigmoid', [b.conv(b.globalAveragePool(y), { filters: c, kernel: 1, bias: true })], [n, c, 1, 1]) : b.hardSigmoid(b.conv(b.globalAveragePool(y), { filters: c, kernel: 1, bias: true }), 1 / 6, 0.5);
      if (rand() < 0.5) y = b.mul(y, gate);
      else {
        y = b.mul(gate, y);
        b.tensors.get(y)!.shape = [n, c, h, w];
      }
      // Most often a pointwise projection reads the product, as in MobileNetV3 and EfficientNet.
      if (rand() < 0.7) y = b.conv(y, { filters: pick([2, 4, 8]), kernel: 1, bias: rand() < 0.5 });
    } else {
      // A product of two full-size tensors is no channel scale (Tanh keeps values bounded).
      y = b.mul(y, b.node('Tanh', [y], b.shape(y)));
    }
    seen.push(y);
    if (rand() < 0.08) outputs.push(y);
    else if (rand() < 0.06) outputs.push(b.node('Sigmoid', [y], b.shape(y)));
  }
  return prepareGraph(b.build([y, ...outputs.filter((t) => t !== y)]));
}

/** Seeded feeds for every graph input of `g`. */
export function randomInputs(g: Graph, seed: number): Record<string, Float64Array> {
  const rand = mulberry32(seed);
  const feeds: Record<string, Float64Array> = {};
  for (const name of g.inputs) {
    const n = g.tensors.get(name)!.shape.reduce((a, b) => a * b, 1);
    feeds[name] = Float64Array.from({ length: n }, () => rand() * 4 - 2);
  }
  return feeds;
}
