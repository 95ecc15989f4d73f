// Split-K with several filters per thread (kernels/pointwise.ts dotSplitK with rf > 1): each thread sums one
// position of RF filters over every KS-th channel. Forced through dotProgram on ragged shapes: a last filter group
// shorter than RF, channels no multiple of 4 KS (the scalar tail), positions-major (P >= 16) and channel-major
// layouts, one slice (no reduction), batch 2, the channel scale of a folded squeeze-excite, residual and activation;
// fp32 and f16 storage. And the tuner's candidates: offered on few outputs, not on large layers.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { type DotGeom, chooseDot, dotChoiceKey, dotCandidates, dotProgram } from '../../kernels/pointwise.js';
import { convBindings, convGeom } from '../../kernels/conv-common.js';
import { withStorage } from '../../kernels/f16.js';
import { roundHalf } from '../../src/runtime/half.js';
import { closeDevice, getDevice, limitsOf } from './fused-harness.js';
import { type LayerCase, nodeOf, runLayer } from './layer-harness.js';
import { activation, maxAbsDiff, randomF32 } from './reference.js';

after(closeDevice);

interface Case { N: number; C: number; F: number; H: number; W: number; rf: number; rp?: number; ks: number; bias?: boolean; res?: boolean; scale?: boolean; act?: string; params?: number[] }

const cases: Case[] = [
  // 7x7 (positions-major), 19 filters in groups of 4 (the last holds 3), 37 channels over 8 slices (ragged tail).
  { N: 1, C: 37, F: 19, H: 7, W: 7, rf: 4, ks: 8, bias: true, act: 'Clip', params: [0, 6] },
  // 2x3 (channel-major), batch 2, 5 filters in pairs, residual after the activation.
  { N: 2, C: 64, F: 5, H: 2, W: 3, rf: 2, ks: 16, bias: true, res: true, act: 'Relu' },
  // One slice: no reduction; a folded squeeze-excite's channel scale; 8 filters per thread.
  { N: 1, C: 20, F: 11, H: 4, W: 4, rf: 8, ks: 1, scale: true, act: 'HardSigmoid', params: [1 / 6, 0.5] },
  // A late layer's shape, scaled down: 14x14, 96 channels over 32 slices of 3.
  { N: 1, C: 96, F: 24, H: 14, W: 14, rf: 4, ks: 32 },
  // Tiles of filters x positions: 7x7 (49 positions: the last group of 4 holds 1), 19 filters (last group 3), ragged
  // channel tail over 8 slices.
  { N: 1, C: 37, F: 19, H: 7, W: 7, rf: 4, rp: 4, ks: 8, bias: true, act: 'Clip', params: [0, 6] },
  // Channel-major (P < 16), batch 2, 3x3 positions in pairs (the last alone), residual.
  { N: 2, C: 64, F: 6, H: 3, W: 3, rf: 2, rp: 2, ks: 16, bias: true, res: true, act: 'Relu' },
  // One slice, channel scale, positions only (one filter a thread).
  { N: 1, C: 20, F: 5, H: 5, W: 5, rf: 1, rp: 4, ks: 1, scale: true, act: 'HardSigmoid', params: [1 / 6, 0.5] },
  // Batch 3 at 7x7 over 64 slices, 4 x 2 tiles.
  { N: 3, C: 160, F: 12, H: 7, W: 7, rf: 4, rp: 2, ks: 64 },
];

async function check(k: Case, storage: 'f32' | 'f16') {
  const { N, C, F, H, W } = k;
  const P = H * W;
  const seed = 11 * N + C + F + P;
  const r = (d: Float32Array) => (storage === 'f16' ? Float32Array.from(d, roundHalf) : d);
  const x = r(randomF32(N * C * P, seed)), w = r(randomF32(F * C, seed + 1));
  const b = k.bias ? r(randomF32(F, seed + 2)) : undefined;
  const res = k.res ? r(randomF32(N * F * P, seed + 3)) : undefined;
  const sc = k.scale ? r(randomF32(N * C, seed + 4, 0, 1)) : undefined;
  const attrs: Record<string, unknown> = { kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 };
  if (k.act) { attrs.activation = k.act; if (k.params) attrs.activationParams = k.params; }
  const lc: LayerCase = {
    op: 'Conv', attrs,
    inputs: [{ data: x, shape: [N, C, H, W] }, { data: w, shape: [F, C, 1, 1] }, b ? { data: b, shape: [F] } : null,
      res ? { data: res, shape: [N, F, H, W] } : null, sc ? { data: sc, shape: [N, C, 1, 1] } : null],
    outputShapes: [[N, F, H, W]],
  };
  const limits = limitsOf(await getDevice());
  const args = { node: nodeOf(lc), inputShapes: lc.inputs.map((t) => t?.shape), outputShapes: lc.outputShapes, limits };
  const g = convGeom(args);
  const dot: DotGeom = { N, C, F, P, hasBias: g.hasBias, hasRes: g.hasRes, hasScale: g.hasScale, act: g.act };
  const bind = convBindings(g);
  const choice = { kind: 'splitK' as const, ks: k.ks, rf: k.rf, ...(k.rp ? { rp: k.rp } : {}) };
  const p = withStorage(dotProgram(dot, choice, bind.names, bind.inputs, limits, 'split-K filters', 'Conv(pw)', 'pointwise'), storage);
  assert.match(p.cacheKey, new RegExp(`KS${k.ks}\\|RF${k.rf}${k.rp ? `\\|RP${k.rp}` : ''}\\|`));
  const [got] = await runLayer(lc, storage, [p]);
  const f = activation(k.act ?? '', k.params);
  const ref = new Float64Array(N * F * P);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < F; o++) {
      for (let q = 0; q < P; q++) {
        let s = b ? b[o] : 0;
        for (let c = 0; c < C; c++) s += w[o * C + c] * x[(n * C + c) * P + q] * (sc ? sc[n * C + c] : 1);
        const at = (n * F + o) * P + q;
        ref[at] = f(s) + (res ? res[at] : 0);
      }
    }
  }
  // fp32: sums of <= 96 products of values in [-1, 1) in another order than float64's, ~96 * 2^-24 of their size
  // (1e-5); f16 storage rounds the result to 11 significant bits (2^-11 = 4.9e-4 of each value): 1e-3. A filter,
  // position or image mixed up is O(1) off; an element never written stays NaN.
  const { maxDiff, maxRef, at } = maxAbsDiff(got, ref);
  const tol = (storage === 'f16' ? 1e-3 : 1e-5) * Math.max(1, maxRef);
  assert.ok(maxDiff <= tol, `${JSON.stringify(k)} ${storage}: max |diff| ${maxDiff} > ${tol} at ${at} (got ${got[at]}, expected ${ref[at]})`);
}

for (const k of cases) {
  test(`split-K with ${k.rf} filters${k.rp ? ` x ${k.rp} positions` : ''} per thread: N ${k.N}, C ${k.C}, F ${k.F}, ${k.H}x${k.W}, ${k.ks} slices${k.scale ? ', channel scale' : ''}${k.res ? ', residual' : ''}`, async () => {
    await check(k, 'f32');
    await check(k, 'f16');
  });
}

test('the tuner offers split-K with filters per thread on few outputs only', () => {
  const limits = { maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256 };
  const g = (N: number, C: number, F: number, P: number): DotGeom => ({ N, C, F, P, hasBias: true, hasRes: false, act: { fn: '', key: '' } });
  // MobileNetV2's 7x7 960 -> 160 at batch 1: 7840 outputs; 4 filters per thread leave 1960 dot products, 2 filters 3920, each over 64 slices.
  const late = dotCandidates(g(1, 960, 160, 49), limits).map(dotChoiceKey);
  assert.ok(late.includes('splitK:KS64RF4') && late.includes('splitK:KS64RF2'), `${late}`);
  // Tiles of 4 filters x 4 and 2 positions: 520 and 1000 dot products, 16 KiB and 8 KiB of partial sums.
  assert.ok(late.includes('splitK:KS64RF4RP4') && late.includes('splitK:KS64RF4RP2'), `${late}`);
  // Under an 8 KiB workgroup memory limit only the 4 x 2 tile fits.
  const small = dotCandidates(g(1, 960, 160, 49), { ...limits, maxComputeWorkgroupStorageSize: 8192 }).map(dotChoiceKey);
  assert.ok(!small.some((k) => k.includes('RP4')) && small.includes('splitK:KS64RF4RP2'), `${small}`);
  // Its 112x112 32 -> 16 at batch 1: 200704 outputs, none.
  assert.ok(dotCandidates(g(1, 32, 16, 12544), limits).every((c) => c.kind !== 'splitK' || c.rf === undefined));
  // One filter: no filter groups.
  assert.ok(dotCandidates(g(1, 64, 1, 49), limits).every((c) => c.kind !== 'splitK' || c.rf === undefined));
});

test('the rule: split-K at batch 1 on few outputs takes 2 filters a thread on 64+ positions, 4 filters x 2 positions below', () => {
  const limits = { maxComputeWorkgroupStorageSize: 16384, maxComputeInvocationsPerWorkgroup: 256 };
  const g = (N: number, C: number, F: number, P: number): DotGeom => ({ N, C, F, P, hasBias: true, hasRes: false, act: { fn: '', key: '' } });
  const rule = (N: number, C: number, F: number, P: number) => dotChoiceKey(chooseDot(g(N, C, F, P), limits));
  // MobileNetV2's projections at batch 1, as the H100's tuning chose them (kernels/pointwise.ts tiledSplitK,
  // narrowGemm): up to 64 filters on 64+ positions gemm with 4 K slices, more filters split-K with 2 a thread.
  assert.equal(rule(1, 144, 32, 784), 'gemm:TX4TY8RF4KS4');
  assert.equal(rule(1, 384, 64, 196), 'gemm:TX4TY8RF4KS4');
  assert.equal(rule(1, 576, 96, 196), 'splitK:KS16RF2');
  assert.equal(rule(1, 960, 160, 49), 'splitK:KS64RF4RP2');
  assert.equal(rule(1, 960, 320, 49), 'splitK:KS64RF4RP2');
  // ShuffleNetV2's 7x7 232 -> 232: 16 slices of the 4 x 2 tiles would fill 90 workgroups; 2 filters a thread instead.
  assert.equal(rule(1, 232, 232, 49), 'splitK:KS16RF2');
  // Without gemm (the tuner's other candidate, layer-kernels' "old"): split-K with 2 filters.
  assert.equal(dotChoiceKey(chooseDot(g(1, 384, 64, 196), limits, { gemm: false })), 'splitK:KS32RF2');
  // Split-K proper stays a tuning candidate there.
  assert.ok(dotCandidates(g(1, 960, 160, 49), limits).map(dotChoiceKey).includes('splitK:KS32'));
  // Not measured, not changed: batch 8 (gemm), one position (the classifier's split-K), few filters at 7x7.
  assert.match(rule(8, 960, 160, 49), /^gemm:/);
  assert.equal(rule(1, 1280, 1000, 1), 'splitK:KS64');
  assert.equal(rule(1, 64, 3, 49).includes('RP'), false);
});

test('the tuner offers gemm on narrow tiles with K split on few outputs, and each computes the layer', async () => {
  const limits = limitsOf(await getDevice());
  const g = (N: number, C: number, F: number, P: number): DotGeom => ({ N, C, F, P, hasBias: true, hasRes: false, act: { fn: '', key: '' } });
  // MobileNetV2's 14x14 576 -> 96 at batch 1: 18816 outputs, 39 tiles of 16 positions x 32 filters (gemmTiles: none).
  const late = dotCandidates(g(1, 576, 96, 196), limits).map(dotChoiceKey);
  for (const k of ['gemm:TX4TY8RF4KS8', 'gemm:TX4TY8RF4KS4', 'gemm:TX8TY4RF8KS4']) assert.ok(late.includes(k), `${k} in ${late}`);
  // K slices of 16 channels: 40 channels hold 3, so no 4- or 8-slice tile; a large layer (112x112 32 -> 16) none.
  assert.ok(dotCandidates(g(1, 40, 96, 196), limits).every((c) => c.kind !== 'gemm' || (c.tiles.ks ?? 1) < 4));
  assert.ok(dotCandidates(g(1, 32, 16, 12544), limits).every((c) => c.kind !== 'gemm' || (c.tiles.ks ?? 1) < 4));
  // Each on a 7x7 layer of 160 channels (10 steps of 16 over 8 slices: two slices past the last step load zeros),
  // 22 filters (the last group partial), bias, Clip and residual: against the float64 sum.
  const N = 1, C = 160, F = 22, H = 7, W = 7, P = H * W;
  const x = randomF32(N * C * P, 71), w = randomF32(F * C, 72), b = randomF32(F, 73), res = randomF32(N * F * P, 74);
  const lc: LayerCase = {
    op: 'Conv', attrs: { kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, activation: 'Clip', activationParams: [0, 6] },
    inputs: [{ data: x, shape: [N, C, H, W] }, { data: w, shape: [F, C, 1, 1] }, { data: b, shape: [F] }, { data: res, shape: [N, F, H, W] }],
    outputShapes: [[N, F, H, W]],
  };
  const args = { node: nodeOf(lc), inputShapes: lc.inputs.map((t) => t?.shape), outputShapes: lc.outputShapes, limits };
  const cg = convGeom(args);
  const dot: DotGeom = { N, C, F, P, hasBias: true, hasRes: true, hasScale: false, act: cg.act };
  const bind = convBindings(cg);
  const f = activation('Clip', [0, 6]);
  const ref = new Float64Array(N * F * P);
  for (let o = 0; o < F; o++) {
    for (let q = 0; q < P; q++) {
      let s = b[o];
      for (let c = 0; c < C; c++) s += w[o * C + c] * x[c * P + q];
      ref[o * P + q] = f(s) + res[o * P + q];
    }
  }
  for (const tiles of [{ tx: 4, ty: 8, rf: 4, ks: 8 }, { tx: 8, ty: 4, rf: 8, ks: 4 }]) {
    const p = dotProgram(dot, { kind: 'gemm', tiles }, bind.names, bind.inputs, limits, 'narrow gemm', 'Conv(pw)', 'pointwise');
    const [got] = await runLayer(lc, 'f32', [p]);
    // Sums of 160 products of values in [-1, 1) in another order than float64's: ~160 * 2^-24 of their size (1e-5).
    const { maxDiff, maxRef, at } = maxAbsDiff(got, ref);
    assert.ok(maxDiff <= 1e-5 * Math.max(1, maxRef), `${JSON.stringify(tiles)}: max |diff| ${maxDiff} at ${at} (got ${got[at]}, expected ${ref[at]})`);
  }
});
