// Split-K over images (kernels/pointwise.ts dotSplitK with nb > 1): a pointwise convolution on 1x1 maps or a classifier
// head over a batch, each thread summing NB images of one filter. Forced through dotProgram on ragged shapes: a last
// group of images shorter than NB, channels no multiple of the K slices, one slice (no reduction), the channel scale
// of a folded squeeze-excite, residual and activation; fp32 and f16 storage. And the rule: the batch-32 classifier
// takes it, batch 1 does not, and the Gemm kernel runs it.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { type DotGeom, chooseDot, dotChoiceKey, dotCandidates, dotProgram } from '../../kernels/pointwise.js';
import { convBindings, convGeom } from '../../kernels/conv-common.js';
import { withStorage } from '../../kernels/f16.js';
import { roundHalf } from '../../src/runtime/half.js';
import { closeDevice, getDevice, limitsOf } from './fused-harness.js';
import { type LayerCase, nodeOf, programsOf, runLayer } from './layer-harness.js';
import { activation, maxAbsDiff, randomF32 } from './reference.js';

after(closeDevice);

interface Case { N: number; C: number; F: number; nb: number; ks: number; bias?: boolean; res?: boolean; scale?: boolean; act?: string; params?: number[] }

const cases: Case[] = [
  // 5 images in groups of 4 (the second holds one), 37 channels over 4 slices.
  { N: 5, C: 37, F: 19, nb: 4, ks: 4, bias: true, act: 'Relu' },
  // Whole groups, 32 slices of 2 channels, residual after the activation.
  { N: 8, C: 64, F: 10, nb: 8, ks: 32, bias: true, res: true, act: 'Clip', params: [0, 6] },
  // One slice: no reduction; a folded squeeze-excite's channel scale.
  { N: 3, C: 20, F: 7, nb: 2, ks: 1, scale: true, act: 'HardSigmoid', params: [1 / 6, 0.5] },
  // A batch-32 head, 3 groups of filters per workgroup row.
  { N: 32, C: 96, F: 33, nb: 8, ks: 8, bias: true },
];

async function check(k: Case, storage: 'f32' | 'f16') {
  const { N, C, F } = k;
  const seed = 7 * N + C + F;
  const r = (d: Float32Array) => (storage === 'f16' ? Float32Array.from(d, roundHalf) : d);
  const x = r(randomF32(N * C, seed)), w = r(randomF32(F * C, seed + 1));
  const b = k.bias ? r(randomF32(F, seed + 2)) : undefined;
  const res = k.res ? r(randomF32(N * F, seed + 3)) : undefined;
  const sc = k.scale ? r(randomF32(N * C, seed + 4, 0, 1)) : undefined;
  const attrs: Record<string, unknown> = { kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 };
  if (k.act) { attrs.activation = k.act; if (k.params) attrs.activationParams = k.params; }
  const lc: LayerCase = {
    op: 'Conv', attrs,
    inputs: [{ data: x, shape: [N, C, 1, 1] }, { data: w, shape: [F, C, 1, 1] }, b ? { data: b, shape: [F] } : null,
      res ? { data: res, shape: [N, F, 1, 1] } : null, sc ? { data: sc, shape: [N, C, 1, 1] } : null],
    outputShapes: [[N, F, 1, 1]],
  };
  const limits = limitsOf(await getDevice());
  const args = { node: nodeOf(lc), inputShapes: lc.inputs.map((t) => t?.shape), outputShapes: lc.outputShapes, limits };
  const g = convGeom(args);
  const dot: DotGeom = { N, C, F, P: 1, hasBias: g.hasBias, hasRes: g.hasRes, hasScale: g.hasScale, act: g.act };
  const bind = convBindings(g);
  const choice = { kind: 'splitK' as const, ks: k.ks, nb: k.nb };
  const p = withStorage(dotProgram(dot, choice, bind.names, bind.inputs, limits, 'split-K over images', 'Conv(pw)', 'pointwise'), storage);
  assert.match(p.cacheKey, new RegExp(`KS${k.ks}\\|NB${k.nb}`));
  const [got] = await runLayer(lc, storage, [p]);
  const f = activation(k.act ?? '', k.params);
  const ref = new Float64Array(N * F);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < F; o++) {
      let s = b ? b[o] : 0;
      for (let c = 0; c < C; c++) s += w[o * C + c] * x[n * C + c] * (sc ? sc[n * C + c] : 1);
      ref[n * F + o] = f(s) + (res ? res[n * F + o] : 0);
    }
  }
  // fp32: sums of <= 96 products of values in [-1, 1) in another order than float64's, ~96 * 2^-24 of their size
  // (1e-5); f16 storage rounds the result to 11 significant bits (2^-11 = 4.9e-4 of each value): 1e-3. An image or
  // filter mixed up is O(1) off; an element never written stays NaN.
  const { maxDiff, maxRef, at } = maxAbsDiff(got, ref);
  const tol = (storage === 'f16' ? 1e-3 : 1e-5) * Math.max(1, maxRef);
  assert.ok(maxDiff <= tol, `${JSON.stringify(k)} ${storage}: max |diff| ${maxDiff} > ${tol} at ${at} (got ${got[at]}, expected ${ref[at]})`);
}

for (const k of cases) {
  test(`split-K over ${k.nb} images per thread: N ${k.N}, C ${k.C}, F ${k.F}, ${k.ks} slices${k.scale ? ', channel scale' : ''}${k.res ? ', residual' : ''}`, async () => {
    await check(k, 'f32');
    await check(k, 'f16');
  });
}

test('the rule: a batch of one-position layers takes split-K over images; one image, or positions, do not', () => {
  const limits = { maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256 };
  const g = (N: number, C: number, F: number, P: number): DotGeom => ({ N, C, F, P, hasBias: true, hasRes: false, act: { fn: '', key: '' } });
  // MobileNetV2's classifier at batch 32: 4 groups of 8 images x 1000 filters, 64 slices of 20 channels.
  assert.deepEqual(chooseDot(g(32, 1280, 1000, 1), limits), { kind: 'splitK', ks: 64, nb: 8 });
  assert.deepEqual(chooseDot(g(1, 1280, 1000, 1), limits), { kind: 'splitK', ks: 64 });
  assert.deepEqual(chooseDot(g(3, 300, 19, 1), limits), { kind: 'splitK', ks: 32, nb: 2 });
  // The one-image split-K stays a candidate for --tune.
  const keys = dotCandidates(g(32, 1280, 1000, 1), limits).map(dotChoiceKey);
  assert.equal(keys[0], 'splitK:KS64NB8');
  assert.ok(keys.includes('splitK:KS8'), keys.join(', '));
  assert.ok(dotCandidates(g(1, 1280, 1000, 1), limits).every((c) => c.kind !== 'splitK' || c.nb === undefined));
});

test('a batched classifier Gemm runs split-K over images and matches the reference', async () => {
  const M = 6, K = 72, N = 13;
  const a = randomF32(M * K, 31), bw = randomF32(N * K, 32), c = randomF32(N, 33);
  const lc: LayerCase = { op: 'Gemm', attrs: { transB: 1 }, inputs: [{ data: a, shape: [M, K] }, { data: bw, shape: [N, K] }, { data: c, shape: [N] }], outputShapes: [[M, N]] };
  const [p] = await programsOf(lc);
  assert.match(p.cacheKey, /^gemm-splitk\|.*\|NB4\|/);
  const [got] = await runLayer(lc);
  const ref = new Float64Array(M * N);
  for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) { let s = c[n]; for (let k = 0; k < K; k++) s += a[m * K + k] * bw[n * K + k]; ref[m * N + n] = s; }
  const { maxDiff, maxRef } = maxAbsDiff(got, ref);
  assert.ok(maxDiff <= 1e-5 * Math.max(1, maxRef), `max |diff| ${maxDiff}`);
});
