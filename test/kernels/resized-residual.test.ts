// A residual read through a resize (attr residualResize; kernels/resize.ts residualSampler; a Resize folded in by
// src/rewrite/resized-residual.ts): the pointwise kernels on every store path the chooser can pick (forced through
// dotProgram) and the DW-PW FCM, each in fp32 and f16 storage, with a linear half_pixel 2x upsampling (the
// feature-pyramid case), nearest asymmetric 2x, and linear align_corners from 3x4 to 5x7 (a ratio that is no
// integer). Reference: reference.ts's convolutions + bias + activation + the resized residual in float64 (the resize
// from reference-ops.ts, the one kernels/resize.ts is tested against). And the registry: the subgroup-matrix kernels
// leave such nodes to the plain f16 ones; other kernels and the integer ones refuse the attribute.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { type DotChoice, type DotGeom, dotProgram } from '../../kernels/pointwise.js';
import { convBindings, convGeom } from '../../kernels/conv-common.js';
import { fusedDwPw } from '../../kernels/fused-dwpw.js';
import { withStorage } from '../../kernels/f16.js';
import { int8KernelFor, kernelFor } from '../../kernels/registry.js';
import { defaultLimits } from '../../kernels/program.js';
import { type Node, fcmDomain, newAttrs } from '../../src/graph/ir.js';
import { roundHalf } from '../../src/runtime/half.js';
import { FcmError } from '../../src/errors.js';
import { closeDevice, getDevice, limitsOf } from './fused-harness.js';
import { type LayerCase, nodeOf, runLayer } from './layer-harness.js';
import { conv2d, epilogue, maxAbsDiff, randomF32 } from './reference.js';
import { type ResizeCase, resizeRef } from './reference-ops.js';

after(closeDevice);

interface Resizing { name: string; mode: 'linear' | 'nearest'; ctm: string; nearest?: string; low: (hw: [number, number]) => [number, number] }
const half = (hw: [number, number]): [number, number] => [hw[0] / 2, hw[1] / 2];
const resizings: Resizing[] = [
  { name: 'linear half_pixel 2x', mode: 'linear', ctm: 'half_pixel', low: half },
  { name: 'nearest asymmetric 2x', mode: 'nearest', ctm: 'asymmetric', nearest: 'floor', low: half },
  { name: 'linear align_corners', mode: 'linear', ctm: 'align_corners', low: (hw) => [Math.ceil(hw[0] / 2) + 1, Math.ceil(hw[1] / 2) + 1] },
];

interface Variant { name: string; hw: [number, number]; C: number; F: number; N: number; choice: DotChoice }

// Even maps (the 2x cases halve them); 4x4 and 8x8 give whole vec4s (4 interpolations a store), 6x6 scalar stores.
const variants: Variant[] = [
  { name: 'gemm loop, vec4 positions', hw: [4, 4], C: 8, F: 12, N: 2, choice: { kind: 'gemm', tiles: { tx: 4, ty: 4, rf: 4, bk: 4 } } },
  { name: 'gemm loop, scalar positions, 2 K slices', hw: [6, 6], C: 12, F: 6, N: 1, choice: { kind: 'gemm', tiles: { tx: 4, ty: 4, rf: 4, ks: 2, bk: 4 } } },
  { name: 'gemm unrolled, vec4 positions', hw: [8, 8], C: 8, F: 12, N: 1, choice: { kind: 'gemm', tiles: { tx: 4, ty: 4, rf: 4, bk: 4, un: true } } },
  { name: 'vec4, staged weights', hw: [4, 4], C: 8, F: 12, N: 2, choice: { kind: 'vec4', rf: 4, threads: 32 } },
  { name: 'split-K positions-major', hw: [4, 4], C: 40, F: 12, N: 1, choice: { kind: 'splitK', ks: 4 } },
  { name: 'split-K, 4 filters x 2 positions a thread', hw: [6, 6], C: 40, F: 6, N: 1, choice: { kind: 'splitK', ks: 4, rf: 4, rp: 2 } },
];

const pwAttrs = { kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, activation: 'Relu' };
const resAttrs = (r: Resizing) => ({ residualResize: r.mode, residualResizeCtm: r.ctm, ...(r.nearest ? { residualResizeNearest: r.nearest } : {}) });
const resizeCase = (r: Resizing, low: number[], out: number[]): ResizeCase => ({ mode: r.mode, ctm: r.ctm, ...(r.nearest ? { nearest: r.nearest } : {}), x: low, out });

/** fp32 1e-4 * max(1, max|ref|) (sums of <= 40 terms, ~40 * 2^-24 of their size, plus the interpolation's 4 terms);
 *  f16 also rounds the stored value to 11 significant bits (<= 2^-11 of it): 1e-3. A value read from the wrong place
 *  is O(1) off, and an element never written stays NaN. */
function assertNear(got: Float32Array, ref: ArrayLike<number>, storage: 'f32' | 'f16', what: string) {
  assert.equal(got.length, ref.length, what);
  const { maxDiff, maxRef, at } = maxAbsDiff(got, ref);
  const tol = (storage === 'f16' ? 1e-3 : 1e-4) * Math.max(1, maxRef);
  assert.ok(maxDiff <= tol, `${what}: max |diff| ${maxDiff} > ${tol} at ${at} (got ${got[at]}, expected ${ref[at]})`);
}

variants.forEach((v, i) => {
  const r = resizings[i % resizings.length];
  test(`resized residual, pointwise ${v.name}, ${r.name}: fp32 and f16 match the reference`, async () => {
    const [H, W] = v.hw, P = H * W, { C, F, N } = v;
    const [h, w] = r.low(v.hw);
    const limits = limitsOf(await getDevice());
    for (const storage of ['f32', 'f16'] as const) {
      const q = (d: Float32Array) => (storage === 'f16' ? Float32Array.from(d, roundHalf) : d);
      const seed = 400 + C + F + P + N;
      const x = q(randomF32(N * C * P, seed)), wt = q(randomF32(F * C, seed + 1)), b = q(randomF32(F, seed + 2)), res = q(randomF32(N * F * h * w, seed + 3));
      const lc: LayerCase = {
        op: 'Conv', attrs: { ...pwAttrs, ...resAttrs(r) },
        inputs: [{ data: x, shape: [N, C, H, W] }, { data: wt, shape: [F, C, 1, 1] }, { data: b, shape: [F] }, { data: res, shape: [N, F, h, w] }],
        outputShapes: [[N, F, H, W]],
      };
      const args = { node: nodeOf(lc), inputShapes: lc.inputs.map((t) => t?.shape), outputShapes: lc.outputShapes, limits };
      const g = convGeom(args);
      assert.ok(g.resSampler, 'the geometry carries the sampler');
      const dot: DotGeom = { N, C, F, P, hasBias: true, hasRes: true, hasScale: false, resSampler: g.resSampler, act: g.act };
      const bind = convBindings(g);
      const p = dotProgram(dot, v.choice, bind.names, bind.inputs, limits, v.name, 'Conv(pw)', 'pointwise');
      assert.match(p.wgsl, /var<storage, read> res: array<f32>;/, 'the residual is read element by element');
      assert.match(p.wgsl, /fn resAt\(i: u32\) -> f32/);
      assert.ok(p.cacheKey.includes(g.resSampler!.key));
      const [got] = await runLayer(lc, storage, [withStorage(p, storage)]);
      const up = resizeRef(resizeCase(r, [N, F, h, w], [N, F, H, W]), res);
      const y = epilogue(conv2d({ data: x, shape: [N, C, H, W] }, { data: wt, shape: [F, C, 1, 1] }, b), 'Relu', [], up).data;
      assertNear(got, y, storage, `${v.name}, ${r.name}, ${storage}`);
    }
  });
});

const fcmNode = (attrs: Record<string, unknown>, op = 'FusedDwPw'): Node =>
  ({ name: 'block', op, domain: fcmDomain, inputs: ['x', 'w1', 'b1', 'w2', 'b2', 'r'], outputs: ['y'], attrs: newAttrs(attrs as Record<string, never>) });

for (const r of resizings) {
  test(`resized residual, FusedDwPw, ${r.name}: fp32 and f16 match the reference`, async () => {
    const N = 2, C = 6, H = 8, W = 8, F = 10;
    const [h, w] = r.low([H, W]);
    const limits = limitsOf(await getDevice());
    for (const storage of ['f32', 'f16'] as const) {
      const q = (d: Float32Array) => (storage === 'f16' ? Float32Array.from(d, roundHalf) : d);
      const seed = 500 + h * w;
      const x = q(randomF32(N * C * H * W, seed)), w1 = q(randomF32(C * 9, seed + 1)), b1 = q(randomF32(C, seed + 2));
      const w2 = q(randomF32(F * C, seed + 3)), b2 = q(randomF32(F, seed + 4)), res = q(randomF32(N * F * h * w, seed + 5));
      const inputs = [{ data: x, shape: [N, C, H, W] }, { data: w1, shape: [C, 1, 3, 3] }, { data: b1, shape: [C] }, { data: w2, shape: [F, C, 1, 1] }, { data: b2, shape: [F] }, { data: res, shape: [N, F, h, w] }];
      const attrs = { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], activation1: 'Relu', tileFilters1: 4, tileFilters2: 8, tileH: 4, tileW: 4, ...resAttrs(r) };
      const p = fusedDwPw({ node: fcmNode(attrs), inputShapes: inputs.map((t) => t.shape), outputShapes: [[N, F, H, W]], limits });
      assert.match(p.wgsl, /fn resAt\(i: u32\) -> f32/);
      const [got] = await runLayer({ op: 'FusedDwPw', inputs, outputShapes: [[N, F, H, W]] }, storage, [withStorage(p, storage)]);
      const mid = epilogue(conv2d({ data: x, shape: [N, C, H, W] }, { data: w1, shape: [C, 1, 3, 3] }, b1, { pads: [1, 1, 1, 1], group: C }), 'Relu');
      const up = resizeRef(resizeCase(r, [N, F, h, w], [N, F, H, W]), res);
      const y = epilogue(conv2d(mid, { data: w2, shape: [F, C, 1, 1] }, b2), '', [], up).data;
      assertNear(got, y, storage, `FusedDwPw, ${r.name}, ${storage}`);
    }
  });
}

test('the registry: subgroup-matrix kernels leave a resized residual to the plain f16 ones; other kernels refuse it', () => {
  const h100 = { ...defaultLimits, maxComputeWorkgroupStorageSize: 49152, maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 1024 };
  const lin = resAttrs(resizings[0]);
  // A pyramid's lateral 1x1 conv (88 -> 96 on 16x16) plus the 8x8 map above it, which the subgroup-matrix chooser covers.
  const shapes = [[1, 88, 16, 16], [96, 88, 1, 1], [96], [1, 96, 8, 8]];
  const conv = (attrs: Record<string, unknown>): Node => ({ name: 'lateral', op: 'Conv', domain: '', inputs: ['x', 'w', 'b', 'r'], outputs: ['y'], attrs: newAttrs(attrs as Record<string, never>) });
  const full = kernelFor(conv(pwAttrs), [...shapes.slice(0, 3), [1, 96, 16, 16]], [[1, 96, 16, 16]], h100, 'f16', { subgroupMatrix: { subgroupSize: 32 } });
  assert.ok(full.kind === 'programs' && full.programs[0].name === 'Conv(pw smx)', 'the full-resolution residual takes the subgroup-matrix kernel');
  const k = kernelFor(conv({ ...pwAttrs, ...lin }), shapes, [[1, 96, 16, 16]], h100, 'f16', { subgroupMatrix: { subgroupSize: 32 } });
  assert.ok(k.kind === 'programs' && k.programs[0].name === 'Conv(pw)' && /^enable f16;/.test(k.programs[0].wgsl));
  assert.ok(k.kind === 'programs' && k.variants?.every((key) => !key.startsWith('smx:')));
  // The DW-PW FCM on subgroup matrices (MobileNetV2's 14x14 576 -> 96 at batch 32) falls back the same way.
  const dwShapes = [[32, 576, 14, 14], [576, 1, 3, 3], [576], [96, 576, 1, 1], [96], [32, 96, 7, 7]];
  const dwAttrs = { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], activation1: 'Relu', tileFilters1: 16, tileFilters2: 32, tileH: 7, tileW: 7, ...lin };
  const f = kernelFor(fcmNode(dwAttrs), dwShapes, [[32, 96, 14, 14]], h100, 'f16', { subgroupMatrix: { subgroupSize: 32, fcm: true } });
  assert.ok(f.kind === 'programs' && /^f16\|FusedDwPw\|.*\|rz\[linear,32x96x7x7->32x96x14x14,/.test(f.programs[0].cacheKey), f.kind === 'programs' ? f.programs[0].cacheKey : '');
  const refused = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e) => e instanceof FcmError && re.test(e.message));
  // A 3x3 conv, a PW-PW FCM, the integer kernels; no residual; a residual of other batch or channels.
  refused(() => kernelFor(conv({ ...pwAttrs, kernel: [3, 3], pads: [1, 1, 1, 1], ...lin }), [shapes[0], [96, 88, 3, 3], [96], shapes[3]], [[1, 96, 16, 16]], h100), /resized residual \(residualResize\) needs a pointwise/);
  refused(() => kernelFor(fcmNode({ activation1: 'Relu', tileFilters1: 16, tileFilters2: 16, tileH: 7, tileW: 7, ...lin }, 'FusedPwPw'), [[1, 8, 4, 4], [8, 8, 1, 1], [8], [6, 8, 1, 1], [6], [1, 6, 2, 2]], [[1, 6, 4, 4]], h100), /FusedPwPw reads no resized residual/);
  refused(() => int8KernelFor({ node: conv({ ...pwAttrs, ...lin }), inputs: [], outputs: [], limits: defaultLimits, dot4: false }), /resized residual/);
  refused(() => kernelFor({ ...conv({ ...pwAttrs, ...lin }), inputs: ['x', 'w', 'b'] }, shapes.slice(0, 3), [[1, 96, 16, 16]], h100), /residualResize needs a residual/);
  refused(() => kernelFor(conv({ ...pwAttrs, ...lin }), [...shapes.slice(0, 3), [1, 48, 8, 8]], [[1, 96, 16, 16]], h100), /must be \[1,96,h,w\]/);
  refused(() => kernelFor(conv({ ...pwAttrs, residualResize: 'cubic' }), shapes, [[1, 96, 16, 16]], h100), /residualResize 'cubic'/);
});

test('f16: a 1x1 conv of one channel to one (depthwise too) with a resized residual runs the pointwise kernel, which reads it', () => {
  const node: Node = { name: 'one', op: 'Conv', domain: '', inputs: ['x', 'w', 'b', 'r'], outputs: ['y'], attrs: newAttrs({ ...pwAttrs, ...resAttrs(resizings[0]) } as never) };
  const k = kernelFor(node, [[1, 1, 8, 8], [1, 1, 1, 1], [1], [1, 1, 4, 4]], [[1, 1, 8, 8]], defaultLimits, 'f16');
  assert.ok(k.kind === 'programs');
  const p = k.kind === 'programs' ? k.programs[0] : undefined;
  assert.equal(p?.name, 'Conv(pw)');
  assert.match(p?.wgsl ?? '', /resAt\(/);
});
