// The integer pointwise kernel on subgroup matrices (kernels/int8/pointwise-subgroup-matrix.ts) in its emulated form
// (each matrix load, multiply-accumulate and store in plain WGSL at the same byte offsets and strides: lavapipe has no
// subgroup matrices) bit-exact against src/quant/reference.ts conv and the word kernel: int8 and uint8 (the weight
// zero point's column sums), rows of whole words and not (P % 4: gathered x, atomic byte stores, tiles spanning two
// images), edges in F, M and C, 16 x 16 and 16 x 8 blocks, 32 and 64 channels per step, a folded residual Add,
// extreme zero points. A mutant (the uint8 column sums left out) must fail. Also the support read from adapter info
// and the tile chooser.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { type QArray, type QType, activationRange, addSub, conv } from '../../../src/quant/reference.js';
import type { Tensor } from '../../../src/graph/ir.js';
import {
  type Int8SmxTiles, chooseInt8SmxTiles, int8PointwiseSubgroupMatrix, int8SmxFits, int8SmxTileVariants, int8SubgroupMatrixSupport,
} from '../../../kernels/int8/pointwise-subgroup-matrix.js';
import { int8PointwiseWords } from '../../../kernels/int8/pointwise.js';
import { act, args, assertEqualQ, biasT, makeRng, node, run, weights } from './cases.js';
import { closeInt8Device } from './harness.js';

after(closeInt8Device);

interface Shape { t: QType; N: number; C: number; F: number; H: number; W: number; res?: boolean; extreme?: boolean }

const qp = (t: Tensor) => ({ scale: t.quant!.scale[0], zeroPoint: t.quant!.zeroPoint[0] });

function layer(s: Shape, seed: number) {
  const r = makeRng(seed);
  const [qmin, qmax] = s.t === 'int8' ? [-128, 127] : [0, 255];
  const zx = s.extreme ? qmax : s.t === 'int8' ? -9 : 140, zo = s.extreme ? qmin : s.t === 'int8' ? 4 : 118;
  const x = act(r, 'x', s.t, [s.N, s.C, s.H, s.W], 0.03, zx);
  const wt = weights(r, s.t, [s.F, s.C, 1, 1]);
  const b = biasT(r, s.F);
  const own = act(r, 'y', s.t, [s.N, s.F, s.H, s.W], 0.2, zo, false);
  const res = act(r, 'r', s.t, [s.N, s.F, s.H, s.W], 0.15, s.t === 'int8' ? 2 : 125);
  const sum = act(r, 'sum', s.t, [s.N, s.F, s.H, s.W], 0.3, s.t === 'int8' ? -1 : 130, false);
  const n = node('Conv', ['x', 'w', 'b', ...(s.res ? ['r'] : [])], { kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, activation: 'Clip', activationParams: [0, 6] });
  let want = conv({
    type: s.t, x: x.data as QArray, xShape: x.shape, xq: qp(x), w: wt.data as QArray, wShape: wt.shape, wScales: wt.quant!.scale,
    wZeroPoint: s.t === 'uint8' ? wt.quant!.zeroPoint[0] : 0, bias: b.data as Int32Array, yShape: own.shape, yq: qp(own),
    strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, act: activationRange('RELU6', qp(own), s.t),
  });
  if (s.res) {
    want = addSub({ type: s.t, a: want, aq: qp(own), aShape: own.shape, b: res.data as QArray, bq: qp(res), bShape: res.shape, yq: qp(sum), yShape: sum.shape, act: activationRange('NONE', qp(sum), s.t) });
  }
  return { n, inputs: [x, wt, b, ...(s.res ? [res] : [])], own, sum, want, residual: s.res ? { index: 3, sum, attrs: {} } : undefined };
}

const v16 = int8SmxTileVariants(16), v8 = int8SmxTileVariants(8);
const cases: { s: Shape; tiles: Int8SmxTiles[] }[] = [
  // Aligned rows (8x8), two images, F 40 (edge in F), C 70 (edge in C, 3 steps of 32 / 2 of 64 / 1 of 128). (64 x 64 tiles
  // emulated need more than lavapipe's 32 KiB of workgroup memory: the WGSL test compiles them.) Each case also runs
  // tiles with padded rows (Int8SmxTiles.pad: v[6..9]).
  { s: { t: 'int8', N: 2, C: 70, F: 40, H: 8, W: 8 }, tiles: [v16[3], v16[2], v16[1], v8[3], v16[5], v16[6], v16[8]] },
  // Unaligned rows (7x7: tiles span images, gathered x, byte stores), edges in M (98 % 32).
  { s: { t: 'int8', N: 2, C: 33, F: 20, H: 7, W: 7 }, tiles: [v16[3], v16[4], v8[1], v16[6], v8[9]] },
  // uint8 with a weight zero point: the column sums; aligned 4x4 (M 48), 16 filters (the narrow tiles).
  { s: { t: 'uint8', N: 3, C: 64, F: 16, H: 4, W: 4 }, tiles: [v16[4], v16[3], v8[3], v16[9], v8[7]] },
  // uint8 unaligned (5x5), extreme zero points, C 40.
  { s: { t: 'uint8', N: 1, C: 40, F: 24, H: 5, W: 5, extreme: true }, tiles: [v16[3], v8[2]] },
  // A folded residual Add, aligned and not.
  { s: { t: 'int8', N: 1, C: 32, F: 24, H: 6, W: 6, res: true }, tiles: [v16[3]] },
  { s: { t: 'uint8', N: 2, C: 35, F: 12, H: 3, W: 5, res: true }, tiles: [v16[3], v8[4]] },
];

for (const [i, c] of cases.entries()) {
  const s = c.s;
  test(`int8 pointwise on subgroup matrices (emulated) ${s.t} ${s.N}x${s.C}->${s.F} ${s.H}x${s.W}${s.res ? ' + add' : ''}: ${c.tiles.length} tilings`, async () => {
    const m = layer(s, 900 + i);
    const a = { ...(await args(m.n, m.inputs, [m.own], false)), ...(m.residual ? { residual: m.residual } : {}) };
    // The word kernel first: both must equal the reference.
    assertEqualQ(await run(int8PointwiseWords(a), a), m.want, 'word kernel');
    for (const t of c.tiles) {
      assert.ok(int8SmxFits(t, 32, a.limits, s.t === 'uint8', true), `${JSON.stringify(t)} fits lavapipe`);
      const p = int8PointwiseSubgroupMatrix(a, t, 32, true);
      assertEqualQ(await run(p, a), m.want, `${p.name} ${p.cacheKey}`);
    }
  });
}

test('a mutant without the uint8 column sums fails the check', async () => {
  const m = layer({ t: 'uint8', N: 1, C: 32, F: 16, H: 4, W: 4 }, 31);
  const a = await args(m.n, m.inputs, [m.own], false);
  const p = int8PointwiseSubgroupMatrix(a, v16[3], 32, true);
  assertEqualQ(await run(p, a), m.want, 'unmutated');
  const mutant = p.wgsl.replace(/ - ZW \* /g, ' - 0i * ');
  assert.notEqual(mutant, p.wgsl);
  const got = await run({ ...p, wgsl: mutant }, a);
  assert.ok(got.some((v, i) => v !== m.want[i]), 'the mutant gave the reference output');
});

test('support from adapter info: i8 -> i32 and u8 -> u32 at M16 K32, N16 before N8, one subgroup size', () => {
  const f = new Set(['chromium-experimental-subgroup-matrix', 'subgroups']);
  const cfg = (componentType: string, resultComponentType: string, N: number, K = 32) => ({ componentType, resultComponentType, M: 16, N, K });
  const info = (configs: ReturnType<typeof cfg>[], min = 32, max = 32) => ({ subgroupMatrixConfigs: configs, subgroupMinSize: min, subgroupMaxSize: max });
  // An H100 under Dawn: f16 16x16x16, and the integer configurations at N16 and N8.
  assert.deepEqual(int8SubgroupMatrixSupport(f, info([cfg('f16', 'f32', 16, 16), cfg('u8', 'u32', 16), cfg('u8', 'u32', 8), cfg('i8', 'i32', 8), cfg('i8', 'i32', 16)])),
    { subgroupSize: 32, n: { int8: 16, uint8: 16 } });
  assert.deepEqual(int8SubgroupMatrixSupport(f, info([cfg('i8', 'i32', 8)])), { subgroupSize: 32, n: { int8: 8 } });
  assert.equal(int8SubgroupMatrixSupport(f, info([cfg('f16', 'f32', 16, 16)])), undefined);
  assert.equal(int8SubgroupMatrixSupport(f, info([cfg('i8', 'i32', 16, 16)])), undefined, 'K 16');
  assert.equal(int8SubgroupMatrixSupport(f, info([cfg('i8', 'u32', 16)])), undefined, 'mixed signedness');
  assert.equal(int8SubgroupMatrixSupport(f, info([cfg('i8', 'i32', 16)], 8, 32)), undefined, 'varying subgroup size');
  assert.equal(int8SubgroupMatrixSupport(new Set(['subgroups']), info([cfg('i8', 'i32', 16)])), undefined, 'no feature');
});

test('the tile chooser: padded 32 x 32, more channels a step as C grows, 16 x 64 for <= 16 filters, none for tiny maps or 7x7 maps of one image or long K', () => {
  const support = { subgroupSize: 32, n: { int8: 16 as const } };
  const limits = { maxComputeWorkgroupStorageSize: 49152, maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 1024 };
  const key = (t?: Int8SmxTiles) => (t ? `${16 * t.tm * t.sgf}x${t.nb * t.tn * t.sgp}K${t.bk}${t.pad ? 'P' : ''}` : '-');
  const pick = (N: number, P: number, F: number, C: number) => key(chooseInt8SmxTiles({ N, P, F, C }, 'int8', support, limits, false));
  assert.equal(pick(1, 3136, 144, 24), '32x32K32P');
  assert.equal(pick(1, 784, 32, 144), '32x32K32P');
  assert.equal(pick(32, 784, 32, 192), '32x32K64P');
  assert.equal(pick(32, 196, 96, 384), '32x32K128P');
  assert.equal(pick(1, 12544, 16, 32), '16x64K32P');
  assert.equal(pick(1, 49, 160, 960), '-');
  assert.equal(pick(1, 49, 960, 160), '-', '7x7 of one image');
  assert.equal(pick(32, 49, 160, 576), '-', '7x7 with 512+ channels');
  assert.equal(pick(32, 49, 960, 160), '32x32K32P');
  assert.equal(pick(1, 1, 1000, 1280), '-');
  // A device whose workgroup memory holds only the smaller steps gets them.
  assert.equal(key(chooseInt8SmxTiles({ N: 32, P: 196, F: 96, C: 384 }, 'int8', support, { ...limits, maxComputeWorkgroupStorageSize: 8192 }, false)), '32x32K32P');
  assert.equal(chooseInt8SmxTiles({ N: 1, P: 784, F: 32, C: 144 }, 'uint8', support, limits, false), undefined, 'no u8 configuration');
});
