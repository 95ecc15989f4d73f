// The PointwiseMean kernel (kernels/pointwise-mean.ts) on lavapipe against a float64 host reference,
// out[n, f] = mean_p act(sum_c w[f, c] x[n, c, p] + b[f]), fp32 and fp16 (kernels/f16.ts's rewrite of its WGSL), on
// ragged shapes: positions no tile divides (15, 49, 289: two chunks of the chosen 256), filters not a multiple of the
// filter block, batch 1 and 3, a 1x1 map, and tiles given by hand that loop over position chunks and split the
// channels over slices with a channel count no step divides.
//
// Tolerance, per element. fp32: the kernel sums C products per position and then P activated values in f32, in its
// own order; recursive summation of n terms errs by at most about n 2^-24 of the sum of the terms' magnitudes, and
// the activations used have slopes of at most 1.5 (HardSwish near 3), so |got - ref| <= 1.5 (C + P + 4) 2^-24 M with
// M = mean_p (sum_c |w x| + |b|), plus 1e-6 M for exp / division in SiLU and HardSwish (lavapipe's are within a few
// f32 ulps). fp16: the reference takes the inputs rounded to f16 (what the kernel reads), and the stored result is
// rounded to f16, at most half an ulp: + 2^-11 |ref| + 2^-25. A wrong index, a position counted twice, a missed
// channel slice or the activation applied after the mean is off by O(|ref|) (the activations bend inside the inputs'
// range: Clip at 0 and 0.6 below, SiLU and HardSwish everywhere).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeDevice, getDevice, limitsOf } from './fused-harness.js';
import { activation, randomF32 } from './reference.js';
import { type LayerCase, runLayer } from './layer-harness.js';
import { type PointwiseMeanTiles, choosePointwiseMeanTiles, pointwiseMean } from '../../kernels/pointwise-mean.js';
import { withStorage } from '../../kernels/f16.js';
import { defaultLimits } from '../../kernels/program.js';
import { fromHalf, toHalf } from '../../src/runtime/half.js';

after(closeDevice);

interface Case {
  N: number; C: number; H: number; W: number; F: number;
  act?: string; params?: number[]; bias?: boolean; flat?: boolean; tiles?: PointwiseMeanTiles; seed: number;
}

function build(c: Case, half: boolean) {
  const round = (a: Float32Array) => (half ? fromHalf(toHalf(a)) : a);
  const x = randomF32(c.N * c.C * c.H * c.W, c.seed), w = randomF32(c.F * c.C, c.seed + 1, -0.5, 0.5);
  const b = c.bias === false ? undefined : randomF32(c.F, c.seed + 2, -0.3, 0.3);
  const lc: LayerCase = {
    op: 'PointwiseMean',
    attrs: c.act ? { activation: c.act, ...(c.params ? { activationParams: c.params } : {}) } : {},
    inputs: [{ data: x, shape: [c.N, c.C, c.H, c.W] }, { data: w, shape: [c.F, c.C, 1, 1] }, b ? { data: b, shape: [c.F] } : null],
    outputShapes: [c.flat ? [c.N, c.F] : [c.N, c.F, 1, 1]],
  };
  // The reference from the values the kernel reads.
  const xr = round(x), wr = round(w), br = b ? round(b) : undefined;
  const f = activation(c.act ?? '', c.params ?? []);
  const P = c.H * c.W;
  const ref = new Float64Array(c.N * c.F), mag = new Float64Array(c.N * c.F);
  for (let n = 0; n < c.N; n++) {
    for (let o = 0; o < c.F; o++) {
      let s = 0, m = 0;
      for (let p = 0; p < P; p++) {
        let d = br ? br[o] : 0, a = br ? Math.abs(br[o]) : 0;
        for (let k = 0; k < c.C; k++) { const t = wr[o * c.C + k] * xr[(n * c.C + k) * P + p]; d += t; a += Math.abs(t); }
        s += f(d); m += a;
      }
      ref[n * c.F + o] = s / P; mag[n * c.F + o] = m / P;
    }
  }
  return { lc, ref, mag };
}

async function check(c: Case, half: boolean): Promise<void> {
  const { lc, ref, mag } = build(c, half);
  const device = await getDevice();
  const limits = limitsOf(device);
  const given = c.tiles ? [pointwiseMean({ node: { name: 'pm', op: 'PointwiseMean', inputs: ['x', 'w', lc.inputs[2] ? 'b' : ''], attrs: lc.attrs as never }, inputShapes: lc.inputs.map((i) => i?.shape), outputShapes: lc.outputShapes, limits }, c.tiles)] : undefined;
  const [got] = await runLayer(lc, half ? 'f16' : 'f32', given && (half ? given.map((p) => withStorage(p, 'f16')) : given));
  const P = c.H * c.W;
  const what = `${half ? 'fp16' : 'fp32'} ${c.N}x${c.C}x${c.H}x${c.W} -> ${c.F} ${c.act ?? 'no act'}${c.tiles ? ` tiles ${JSON.stringify(c.tiles)}` : ''}`;
  let worst = 0, at = -1;
  for (let i = 0; i < ref.length; i++) {
    const tol = (1.5 * (c.C + P + 4) * 2 ** -24 + 1e-6) * mag[i] + (half ? 2 ** -11 * Math.abs(ref[i]) + 2 ** -25 : 0);
    const r = Math.abs(got[i] - ref[i]) / tol;
    const ratio = Number.isNaN(r) ? Infinity : r;
    if (ratio > worst) { worst = ratio; at = i; }
  }
  assert.ok(worst <= 1, `${what}: element ${at}: got ${got[at]}, expected ${ref[at]} (${worst.toFixed(2)}x the tolerance)`);
  // The activation matters for these inputs: the mean of the raw sums differs (the fold must not apply it after the mean).
  assert.ok(ref.some((v) => v !== 0));
}

const cases: Case[] = [
  // A head's 7x7 map, ragged filters (37 against blocks of 4 x lanes), relu6 (bounds inside the range: [0, 0.6]).
  { N: 1, C: 20, H: 7, W: 7, F: 37, act: 'Clip', params: [0, 0.6], seed: 11 },
  // Batch 3, 15 positions (4 lanes of a vec4, 16 computed), HardSwish, no bias, [N, F] output (ReduceMean keepdims 0).
  { N: 3, C: 9, H: 5, W: 3, F: 10, act: 'HardSwish', bias: false, flat: true, seed: 21 },
  // Hand tiles: 9 positions in chunks of 8 (the second ragged), 4 channel slices over steps of 8 of 33 channels,
  // 6 filters in a block of 8 (two groups of 4 per thread). SiLU.
  { N: 2, C: 33, H: 3, W: 3, F: 6, act: 'SiLU', tiles: { tp: 2, px: 1, tf: 1, rf4: 2, ks: 4, bk: 8 }, seed: 31 },
  // Hand tiles: two vec4s of positions per thread (20 positions in chunks of 8: 3 chunks), 13 filters in blocks of 8
  // over 2 filter lanes, 2 slices over steps of 4 of 10 channels. Clip with both bounds in range.
  { N: 1, C: 10, H: 4, W: 5, F: 13, act: 'Clip', params: [-0.2, 0.4], tiles: { tp: 1, px: 2, tf: 2, rf4: 1, ks: 2, bk: 4 }, seed: 71 },
  // The chosen tiles with 4 channel slices (64 channels, one filter block of 4 x 1 lane over 12 filters), Relu.
  { N: 1, C: 64, H: 7, W: 7, F: 12, act: 'Relu', seed: 61 },
  // A 1x1 map (P = 1), Relu, 5 filters.
  { N: 1, C: 16, H: 1, W: 1, F: 5, act: 'Relu', seed: 41 },
  // 17x17 = 289 positions: two chunks of 256 with the chosen tiles; no activation.
  { N: 1, C: 8, H: 17, W: 17, F: 4, seed: 51 },
];

test('the chosen tiles: whole 7x7 maps in one chunk, filter lanes and channel slices by batch, within the limits', () => {
  const l = { ...defaultLimits, maxComputeWorkgroupStorageSize: 49152 };
  const b1 = choosePointwiseMeanTiles({ N: 1, C: 320, F: 1280, P: 49 }, l);
  const b32 = choosePointwiseMeanTiles({ N: 32, C: 320, F: 1280, P: 49 }, l);
  assert.equal(4 * b1.px * b1.tp, 52);
  assert.equal(4 * b32.px * b32.tp, 52);
  // Batch 1: 1280 / 4 = 320 workgroups of 13 lanes x 16 slices; batch 32: 32 x 20 of 13 x 16 lanes, no slices.
  assert.deepEqual([4 * b1.rf4 * b1.tf, b1.ks], [4, 16]);
  assert.deepEqual([4 * b32.rf4 * b32.tf, b32.ks], [64, 1]);
  assert.equal(choosePointwiseMeanTiles({ N: 1, C: 64, F: 12, P: 49 }, defaultLimits).ks, 4, 'the 64-channel case below splits');
  for (const t of [b1, b32, choosePointwiseMeanTiles({ N: 8, C: 160, F: 960, P: 49 }, defaultLimits)]) {
    assert.ok(t.tp * t.tf * t.ks <= 256);
  }
});

for (const c of cases) {
  test(`PointwiseMean fp32 ${c.N}x${c.C}x${c.H}x${c.W} -> ${c.F}, ${c.act ?? 'no activation'}${c.tiles ? ', hand tiles' : ''}`, async () => {
    await check(c, false);
  });
}

test('PointwiseMean fp16 (f16 storage, f32 arithmetic): the 7x7 Clip case, both hand-tiled cases, the HardSwish [N, F] case', async () => {
  const device = await getDevice();
  assert.ok(device.features.has('shader-f16'), 'the test device has shader-f16 (lavapipe offers it)');
  for (const c of [cases[0], cases[2], cases[1], cases[3]]) await check(c, true);
});
