// Small ResNet-, RegNet- and ShuffleNet-like graphs for the dispatch folds (src/rewrite/residual-activation.ts,
// channel-shuffle.ts): the zoo's blocks (fixtures/zoo.ts) at lavapipe sizes, fixed seeds.
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { channelShuffle, concatChannels, splitHalves } from '../../fixtures/zoo.js';
import type { Graph } from '../../src/graph/ir.js';

const head = (b: GraphBuilder, y: string) => b.gemm(b.flatten(b.globalAveragePool(y)), 10);

/** Stem, then BasicBlocks relu(f(x) + shortcut): 16 (stride 1, identity), 24 (stride 2, 1x1 shortcut). */
export function tinyResNet(batch = 1): Graph {
  const b = new GraphBuilder('tiny_resnet', 31);
  let y = b.relu(b.conv(b.input('input', [batch, 3, 12, 12]), { filters: 16, kernel: 3, bias: true }));
  for (const [width, stride] of [[16, 1], [24, 2]]) {
    const f = b.conv(b.relu(b.conv(y, { filters: width, kernel: 3, stride, bias: true })), { filters: width, kernel: 3, bias: true });
    const shortcut = stride !== 1 ? b.conv(y, { filters: width, kernel: 1, stride, pad: 0, bias: true }) : y;
    y = b.relu(b.add(f, shortcut));
  }
  return b.build([head(b, y)]);
}

/** Stem, then RegNetX blocks (1x1, 3x3 grouped in groups of 8 channels, 1x1, relu(shortcut + f)): 16 s2, 16 s1, 32 s2. */
export function tinyRegNet(batch = 1): Graph {
  const b = new GraphBuilder('tiny_regnet', 32);
  let y = b.relu(b.conv(b.input('input', [batch, 3, 16, 16]), { filters: 16, kernel: 3, stride: 2, bias: true }));
  for (const [width, stride] of [[16, 2], [16, 1], [32, 2]]) {
    let f = b.relu(b.conv(y, { filters: width, kernel: 1, bias: true }));
    f = b.relu(b.conv(f, { filters: width, kernel: 3, stride, group: width / 8, bias: true }));
    f = b.conv(f, { filters: width, kernel: 1, bias: true });
    const shortcut = stride !== 1 || b.shape(y)[1] !== width ? b.conv(y, { filters: width, kernel: 1, stride, pad: 0, bias: true }) : y;
    y = b.relu(b.add(shortcut, f));
  }
  return b.build([head(b, y)]);
}

/** ShuffleNetV2 blocks: a down-sampling one (two branches) to 16 channels, then two stride-1 ones (split halves). */
export function tinyShuffleNet(batch = 1, opts: { slices?: boolean } = {}): Graph {
  const b = new GraphBuilder('tiny_shufflenet', 33);
  let y = b.relu(b.conv(b.input('input', [batch, 3, 12, 12]), { filters: 8, kernel: 3, bias: true }));
  const branch = (x: string, stride: number) => {
    let z = b.relu(b.conv(x, { filters: 8, kernel: 1, bias: true }));
    z = b.conv(z, { filters: 8, kernel: 3, stride, group: 8, bias: true });
    return b.relu(b.conv(z, { filters: 8, kernel: 1, bias: true }));
  };
  const halves = (x: string): [string, string] => {
    if (!opts.slices) return splitHalves(b, x);
    const [n, c, h, w] = b.shape(x);
    // torch's x[:, :c/2], x[:, c/2:] as Slices (the second with an open end, as exporters write it).
    return [
      b.node('Slice', [x], [n, c / 2, h, w], { starts: [0], ends: [c / 2], axes: [1], steps: [1] }),
      b.node('Slice', [x], [n, c / 2, h, w], { starts: [c / 2], ends: [2 ** 31 - 1], axes: [1], steps: [1] }),
    ];
  };
  const inC = b.shape(y)[1];
  const b1 = b.relu(b.conv(b.conv(y, { filters: inC, kernel: 3, stride: 2, group: inC, bias: true }), { filters: 8, kernel: 1, bias: true }));
  y = channelShuffle(b, concatChannels(b, [b1, branch(y, 2)]), 2);
  for (let i = 0; i < 2; i++) {
    const [x1, x2] = halves(y);
    y = channelShuffle(b, concatChannels(b, [x1, branch(x2, 1)]), 2);
  }
  return b.build([head(b, y)]);
}

// The detector and pyramid graphs are fixtures the fuzzer's run corpus uses too.
export { tinyDetector, tinyPyramid } from '../../fixtures/models.js';
