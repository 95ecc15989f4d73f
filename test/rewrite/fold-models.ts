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

/**
 * A BlazeFace-like detector: a stem, then two feature maps (8x8 and 4x4 at 32x32 input), each with a box head (1x1
 * conv to anchors x 4) and a score head (1x1 conv to anchors x 1), each head's NCHW output turned channels-last
 * (Transpose [0, 2, 3, 1]), reshaped to [N, HW * anchors, k] and concatenated over the two maps: the 4 head
 * Transposes fold into their convs (src/rewrite/channels-last-store.ts). `refusals` adds one head of each kind the
 * rules keep: a 3x3 conv's Transpose, a head conv whose output also feeds a Relu that is a graph output, and a
 * Transpose to [0, 3, 1, 2] (not channels-last); 3 Transposes stay.
 */
export function tinyDetector(batch = 1, opts: { refusals?: boolean } = {}): Graph {
  const b = new GraphBuilder('tiny_detector', 34);
  let y = b.relu(b.conv(b.input('input', [batch, 3, 32, 32]), { filters: 8, kernel: 3, stride: 2, bias: true }));
  y = b.relu(b.conv(b.conv(y, { filters: 8, kernel: 3, stride: 2, group: 8, bias: true }), { filters: 12, kernel: 1, bias: true }));
  const maps = [y, b.relu(b.conv(b.conv(y, { filters: 12, kernel: 3, stride: 2, group: 12, bias: true }), { filters: 16, kernel: 1, bias: true }))];
  const anchors = [2, 6];
  const flat = (x: string, k: number) => {
    const [n, h, w, c] = b.shape(x);
    return b.node('Reshape', [x], [n, (h * w * c) / k, k], { shape: [n, (h * w * c) / k, k] });
  };
  const nhwc = (x: string) => { const [n, c, h, w] = b.shape(x); return b.node('Transpose', [x], [n, h, w, c], { perm: [0, 2, 3, 1] }); };
  const head = (x: string, a: number, k: number) => flat(nhwc(b.conv(x, { filters: a * k, kernel: 1, bias: true })), k);
  const boxes = maps.map((m, i) => head(m, anchors[i], 4));
  const scores = maps.map((m, i) => head(m, anchors[i], 1));
  const cat = (xs: string[]) => { const s = xs.map((x) => b.shape(x)); return b.node('Concat', xs, [s[0][0], s.reduce((q, t) => q + t[1], 0), s[0][2]], { axis: 1 }); };
  const outs = [cat(boxes), cat(scores)];
  if (opts.refusals) {
    outs.push(flat(nhwc(b.conv(maps[1], { filters: 4, kernel: 3, bias: true })), 4));
    const shared = b.conv(maps[1], { filters: 4, kernel: 1, bias: true });
    outs.push(flat(nhwc(shared), 4), b.relu(shared));
    const c = b.conv(maps[1], { filters: 4, kernel: 1, bias: true });
    const [n, f, h, w] = b.shape(c);
    outs.push(b.node('Transpose', [c], [n, w, f, h], { perm: [0, 3, 1, 2] }));
  }
  return b.build(outs);
}

/**
 * A feature-pyramid decoder: three stride-2 stages (8x8, 4x4, 2x2 at 16x16 input), then two top-down steps, each the
 * coarser map upsampled 2x (linear half_pixel, then nearest asymmetric floor) and added to a lateral 1x1 conv of the
 * finer stage (fuseEpilogues makes the Add that conv's residual), then a 3x3 head: both Resizes fold into the
 * laterals' residuals (src/rewrite/resized-residual.ts). `refusals` adds a Resize read by a 3x3 conv as its input
 * and one whose output is also a graph output; both stay.
 */
export function tinyPyramid(batch = 1, opts: { refusals?: boolean } = {}): Graph {
  const b = new GraphBuilder('tiny_pyramid', 35);
  const c1 = b.relu(b.conv(b.input('input', [batch, 3, 16, 16]), { filters: 8, kernel: 3, stride: 2, bias: true }));
  const c2 = b.relu(b.conv(c1, { filters: 12, kernel: 3, stride: 2, bias: true }));
  const c3 = b.relu(b.conv(c2, { filters: 16, kernel: 3, stride: 2, bias: true }));
  const scales = b.constant('scales', [4], Float32Array.of(1, 1, 2, 2));
  const up = (x: string, mode: 'linear' | 'nearest') => {
    const [n, c, h, w] = b.shape(x);
    const attrs: Record<string, string> = mode === 'linear' ? { mode, coordinate_transformation_mode: 'half_pixel' } : { mode, coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' };
    return b.node('Resize', [x, '', scales], [n, c, 2 * h, 2 * w], attrs);
  };
  const p2 = b.add(b.conv(c2, { filters: 16, kernel: 1, bias: true }), up(c3, 'linear'));
  const p1 = b.add(b.conv(c1, { filters: 16, kernel: 1, bias: true }), up(p2, 'nearest'));
  const outs = [b.conv(b.relu(p1), { filters: 4, kernel: 3, bias: true })];
  if (opts.refusals) {
    outs.push(b.conv(up(c3, 'linear'), { filters: 4, kernel: 3, bias: true }));
    const shared = up(c3, 'nearest');
    outs.push(b.add(b.conv(c2, { filters: 16, kernel: 1, bias: true }), shared), shared);
  }
  return b.build(outs);
}
