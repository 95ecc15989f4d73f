// The integer pointwise word kernel's register tiles (kernels/int8/pointwise.ts WordTile: RF filters x PW position
// words per thread) bit-exact against src/quant/reference.ts conv: every tile variant and odd tiles (3 x 3, 1 x 2),
// with the edges each can leave ragged (F not a multiple of RF, a row's word count not a multiple of PW, C not a
// multiple of 4), rows on words and not (P % 4), K split or not, int8 and uint8 (the weight zero point's byte sums
// per position word), two images. A mutant of the tiling (every position word of a block storing the block's first
// word's result) must fail the same comparison: the check sees the tile's indexing.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { type QArray, type QType, activationRange, conv } from '../../../src/quant/reference.js';
import type { Tensor } from '../../../src/graph/ir.js';
import { type WordTile, chooseWordTile, int8PointwiseWords, wordTileVariants, wordsTargetThreads } from '../../../kernels/int8/pointwise.js';
import { act, args, assertEqualQ, biasT, makeRng, node, run, weights } from './cases.js';
import { closeInt8Device, hasDot4 } from './harness.js';

after(closeInt8Device);

interface Shape { t: QType; N: number; C: number; F: number; H: number; W: number }

function layer(s: Shape, seed: number) {
  const r = makeRng(seed);
  const zx = s.t === 'int8' ? -7 : 133, zo = s.t === 'int8' ? 3 : 121;
  const x = act(r, 'x', s.t, [s.N, s.C, s.H, s.W], 0.04, zx);
  const wt = weights(r, s.t, [s.F, s.C, 1, 1]);
  const b = biasT(r, s.F);
  const y: Tensor = act(r, 'y', s.t, [s.N, s.F, s.H, s.W], 0.25, zo, false);
  const n = node('Conv', ['x', 'w', 'b'], { kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, activation: 'Clip', activationParams: [0, 6] });
  const want = conv({
    type: s.t, x: x.data as QArray, xShape: x.shape, xq: { scale: 0.04, zeroPoint: zx }, w: wt.data as QArray, wShape: wt.shape,
    wScales: wt.quant!.scale, wZeroPoint: s.t === 'uint8' ? wt.quant!.zeroPoint[0] : 0, bias: b.data as Int32Array, yShape: y.shape,
    yq: { scale: 0.25, zeroPoint: zo }, strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1,
    act: activationRange('RELU6', { scale: 0.25, zeroPoint: zo }, s.t),
  });
  return { n, inputs: [x, wt, b], y, want };
}

// Each shape with the tiles listed: ragged in F (F % RF), in position words (ceil(P / 4) % PW) and in channels.
const cases: { s: Shape; tiles: WordTile[] }[] = [
  // 8x8 (aligned rows, 16 words), F 21, C 37: every variant, and 3 x 3 (16 words % 3, 21 % 3 == 0).
  { s: { t: 'int8', N: 2, C: 37, F: 21, H: 8, W: 8 }, tiles: [...wordTileVariants, { rf: 3, pw: 3 }] },
  // 9x7 (unaligned rows: the funnel-shift loads and atomic byte stores), 16 words of a row, 13 filters.
  { s: { t: 'int8', N: 1, C: 70, F: 13, H: 9, W: 7 }, tiles: [{ rf: 4, pw: 2 }, { rf: 8, pw: 4 }, { rf: 3, pw: 3 }] },
  // uint8 with a weight zero point (byte sums per position word), aligned 12x12 (36 words), 2 images.
  { s: { t: 'uint8', N: 2, C: 45, F: 19, H: 12, W: 12 }, tiles: [{ rf: 8, pw: 2 }, { rf: 8, pw: 4 }, { rf: 1, pw: 2 }] },
  // uint8, unaligned 5x5 (7 words), K split (C4 = 32).
  { s: { t: 'uint8', N: 1, C: 128, F: 10, H: 5, W: 5 }, tiles: [{ rf: 4, pw: 2 }, { rf: 8, pw: 4 }] },
];

for (const [i, c] of cases.entries()) {
  const s = c.s;
  test(`word pointwise tiles ${s.t} ${s.N}x${s.C}->${s.F} ${s.H}x${s.W}: ${c.tiles.map((t) => `${t.rf}x${t.pw}`).join(', ')}`, async () => {
    const m = layer(s, 500 + i);
    // dot4 and the fallback alternate over the tiles (both build the same operands and tiles).
    const dot4Ok = await hasDot4();
    for (const [k, tile] of c.tiles.entries()) {
      const a = await args(m.n, m.inputs, [m.y], dot4Ok && k % 2 === 0);
      const p = int8PointwiseWords(a, tile);
      assert.match(p.cacheKey, new RegExp(`RF${tile.rf}PW${tile.pw}`));
      assertEqualQ(await run(p, a), m.want, `${p.name} ${p.cacheKey}`);
    }
  });
}

test('a mutant of the word tiling (each block storing its first position word everywhere) fails the check', async () => {
  const m = layer({ t: 'int8', N: 1, C: 24, F: 8, H: 8, W: 8 }, 77);
  const a = await args(m.n, m.inputs, [m.y], false);
  const p = int8PointwiseWords(a, { rf: 4, pw: 2 });
  assertEqualQ(await run(p, a), m.want, 'unmutated');
  // The second position word of a block is stored from the first word's accumulators.
  const mutant = p.wgsl.replace(/mbqm\(a(\d+) \+ bias/g, (all, e) => (Math.floor(Number(e) / 4) % 2 === 1 ? `mbqm(a${Number(e) - 4} + bias` : all));
  assert.notEqual(mutant, p.wgsl);
  assert.throws(() => assertEqualQ(new Int8Array(0), m.want, 'x'));
  const got = await run({ ...p, wgsl: mutant }, a);
  let differ = 0;
  for (let i = 0; i < got.length; i++) if (got[i] !== m.want[i]) differ++;
  assert.ok(differ > 0, 'the mutant gave the reference output');
});

test('the tile chooser: 4 x 1 where threads are few (MobileNetV2 at batch 1), larger tiles only with threads to spare', () => {
  // MobileNetV2's 112x112 16 -> 96 layer at batch 1: 37632 threads with 4 x 2, under 2 * wordsTargetThreads.
  assert.deepEqual(chooseWordTile({ N: 1, F: 96 }, 112 * 112), { rf: 4, pw: 1 });
  assert.deepEqual(chooseWordTile({ N: 1, F: 2 }, 64), { rf: 2, pw: 1 });
  assert.deepEqual(chooseWordTile({ N: 1, F: 1 }, 64), { rf: 1, pw: 1 });
  // Batch 32, 56x56 24 -> 144: 32 * 18 * 196 = 112896 units with 8 x 4 (>= 2 * 67584 fails), 225792 with 8 x 2.
  const t = chooseWordTile({ N: 32, F: 144 }, 56 * 56);
  assert.deepEqual(t, { rf: 8, pw: 2 });
  assert.ok(32 * 18 * Math.ceil(784 / 2) >= 2 * wordsTargetThreads);
});
