// The channels-last store of the DW-PW FCM (kernels/fused-dwpw.ts; attr channelsLast, a Transpose [0, 2, 3, 1] folded
// in by src/rewrite/channels-last-store.ts) on both of its store loops: filter groups with channel slices (a small
// tile, FG > 1, KS > 1) and one group with several positions a thread (a tile larger than the workgroup). Each in
// fp32 and in f16 storage, against the same kernel's plain store transposed on the host, bit for bit (the store
// moves values, it never sums them), and the plain store against the float64 reference (fused-dwpw.test.ts covers
// it more widely). And the registry: the subgroup-matrix FCM leaves such a node to the f16 form of this kernel; the
// other FCMs, a residual and the integer kernels refuse it.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { fusedDwPw } from '../../kernels/fused-dwpw.js';
import { withStorage } from '../../kernels/f16.js';
import { int8KernelFor, kernelFor } from '../../kernels/registry.js';
import { defaultLimits } from '../../kernels/program.js';
import { type Node, fcmDomain, newAttrs } from '../../src/graph/ir.js';
import { roundHalf } from '../../src/runtime/half.js';
import { FcmError } from '../../src/errors.js';
import { closeDevice, getDevice, limitsOf } from './fused-harness.js';
import { type LayerCase, runLayer } from './layer-harness.js';
import { conv2d, epilogue, maxAbsDiff, randomF32 } from './reference.js';

after(closeDevice);

interface Case { name: string; N: number; C: number; H: number; W: number; F: number; stride: number; tiles: Record<string, number>; threads?: number; cacheKey: RegExp }

const cases: Case[] = [
  // 4x4 tiles of 32 filters: 8 filter groups, channel slices over the 24 channels.
  { name: 'filter groups and channel slices', N: 1, C: 24, H: 8, W: 8, F: 30, stride: 1, tiles: { tileFilters1: 8, tileFilters2: 32, tileH: 4, tileW: 4, splitK1: 2 }, cacheKey: /FG8KS2\|/ },
  // An 8x8 tile on 32 threads: 2 positions a thread, one group; stride 2, batch 2, F no multiple of 4.
  { name: 'one group, 2 positions a thread', N: 2, C: 6, H: 15, W: 15, F: 7, stride: 2, tiles: { tileFilters1: 4, tileFilters2: 8, tileH: 8, tileW: 8 }, threads: 32, cacheKey: /RP2T32FG1\|/ },
];

/** y [N, F, P] as [N, P, F]. */
function toChannelsLast(y: ArrayLike<number>, N: number, F: number, P: number): Float32Array {
  const out = new Float32Array(N * F * P);
  for (let n = 0; n < N; n++) for (let f = 0; f < F; f++) for (let p = 0; p < P; p++) out[(n * P + p) * F + f] = y[(n * F + f) * P + p];
  return out;
}

const dwpwAttrs = (stride: number, tiles: Record<string, number>) => ({
  kernel: [3, 3], strides: [stride, stride], pads: [1, 1, 1, 1], dilations: [1, 1], activation1: 'Clip', activationParams1: [0, 6], activation2: 'Relu', ...tiles,
});

const fcmNode = (op: string, attrs: Record<string, unknown>, inputs = ['x', 'w1', 'b1', 'w2', 'b2']): Node =>
  ({ name: 'head', op, domain: fcmDomain, inputs, outputs: ['y'], attrs: newAttrs(attrs as Record<string, never>) });

for (const c of cases) {
  test(`FusedDwPw channels-last store, ${c.name}: fp32 and f16 bit for bit the plain store transposed`, async () => {
    const { N, C, H, W, F, stride } = c;
    const HO = Math.floor((H + 2 - 3) / stride) + 1, WO = Math.floor((W + 2 - 3) / stride) + 1, P = HO * WO;
    const limits = { ...limitsOf(await getDevice()), ...(c.threads ? { maxComputeInvocationsPerWorkgroup: c.threads, maxComputeWorkgroupSizeX: c.threads } : {}) };
    for (const storage of ['f32', 'f16'] as const) {
      const r = (d: Float32Array) => (storage === 'f16' ? Float32Array.from(d, roundHalf) : d);
      const seed = 300 + C + F + N;
      const x = r(randomF32(N * C * H * W, seed)), w1 = r(randomF32(C * 9, seed + 1)), b1 = r(randomF32(C, seed + 2));
      const w2 = r(randomF32(F * C, seed + 3)), b2 = r(randomF32(F, seed + 4));
      const inputs = [{ data: x, shape: [N, C, H, W] }, { data: w1, shape: [C, 1, 3, 3] }, { data: b1, shape: [C] }, { data: w2, shape: [F, C, 1, 1] }, { data: b2, shape: [F] }];
      const attrs = dwpwAttrs(stride, c.tiles);
      const build = (last: boolean) => {
        const node = fcmNode('FusedDwPw', last ? { ...attrs, channelsLast: 1 } : attrs);
        const outputShapes = [last ? [N, HO, WO, F] : [N, F, HO, WO]];
        return { lc: { op: 'FusedDwPw', inputs, outputShapes } as LayerCase, p: fusedDwPw({ node, inputShapes: inputs.map((t) => t.shape), outputShapes, limits }) };
      };
      const last = build(true), plain = build(false);
      assert.match(last.p.cacheKey, c.cacheKey);
      assert.match(last.p.cacheKey, /\|nhwc$/);
      assert.equal(last.p.cacheKey, `${plain.p.cacheKey}|nhwc`);
      const [got] = await runLayer(last.lc, storage, [withStorage(last.p, storage)]);
      const [ref] = await runLayer(plain.lc, storage, [withStorage(plain.p, storage)]);
      const moved = toChannelsLast(ref, N, F, P);
      let diff = 0;
      for (let i = 0; i < got.length; i++) if (!Object.is(got[i], moved[i])) diff++;
      assert.equal(diff, 0, `${storage}: ${diff} of ${got.length} values differ from the plain store's, transposed on the host`);
      // The plain store against float64: depthwise + Clip(0, 6), then pointwise + Relu. fp32 1e-4 * max(1, max|ref|)
      // (sums of <= 24 terms); f16 also rounds the stored value to 11 significant bits: 1e-3.
      const mid = epilogue(conv2d({ data: x, shape: [N, C, H, W] }, { data: w1, shape: [C, 1, 3, 3] }, b1, { strides: [stride, stride], pads: [1, 1, 1, 1], group: C }), 'Clip', [0, 6]);
      const y = epilogue(conv2d(mid, { data: w2, shape: [F, C, 1, 1] }, b2), 'Relu').data;
      const { maxDiff, maxRef, at } = maxAbsDiff(ref, y);
      const tol = (storage === 'f16' ? 1e-3 : 1e-4) * Math.max(1, maxRef);
      assert.ok(maxDiff <= tol, `${storage}: plain store max |diff| ${maxDiff} > ${tol} at ${at}`);
    }
  });
}

test('the registry: f16 with subgroup-matrix FCMs falls back to the f16 DW-PW kernel; other FCMs, a residual and the integer kernels refuse the store', () => {
  // MobileNetV2's 14x14 576 -> 96 projection after its depthwise layer at batch 32 (the subgroup-matrix FCM takes it).
  const h100 = { ...defaultLimits, maxComputeWorkgroupStorageSize: 49152, maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 1024 };
  const support = { subgroupSize: 32, fcm: true };
  const attrs = dwpwAttrs(1, { tileFilters1: 16, tileFilters2: 32, tileH: 7, tileW: 7 });
  const shapes = [[32, 576, 14, 14], [576, 1, 3, 3], [576], [96, 576, 1, 1], [96]];
  const plain = kernelFor(fcmNode('FusedDwPw', attrs), shapes, [[32, 96, 14, 14]], h100, 'f16', { subgroupMatrix: support });
  assert.ok(plain.kind === 'programs' && /smx/.test(plain.programs[0].cacheKey), 'the plain node takes the subgroup-matrix FCM');
  const last = kernelFor(fcmNode('FusedDwPw', { ...attrs, channelsLast: 1 }), shapes, [[32, 14, 14, 96]], h100, 'f16', { subgroupMatrix: support });
  assert.ok(last.kind === 'programs');
  const p = last.kind === 'programs' ? last.programs[0] : undefined;
  assert.match(p?.name ?? '', /^FusedDwPw/);
  assert.match(p?.cacheKey ?? '', /^f16\|FusedDwPw\|.*\|nhwc$/);
  assert.match(p?.wgsl ?? '', /var<storage, read_write> out: array<f16>;/);
  const refused = (f: () => unknown, re: RegExp) => assert.throws(f, (e) => e instanceof FcmError && e.kind === 'unsupported' && re.test(e.message));
  // A residual (input 5).
  refused(() => kernelFor(fcmNode('FusedDwPw', { ...attrs, channelsLast: 1 }, ['x', 'w1', 'b1', 'w2', 'b2', 'r']), [...shapes, [32, 96, 14, 14]], [[32, 14, 14, 96]], h100), /residual/);
  // The other FCMs have no such store.
  const pwpw = fcmNode('FusedPwPw', { activation1: 'Relu', tileFilters1: 16, tileFilters2: 16, tileH: 7, tileW: 7, channelsLast: 1 });
  refused(() => kernelFor(pwpw, [[1, 8, 4, 4], [8, 8, 1, 1], [8], [6, 8, 1, 1], [6]], [[1, 4, 4, 6]], h100), /FusedPwPw has no channels-last store/);
  refused(() => int8KernelFor({ node: fcmNode('FusedDwPw', { ...attrs, channelsLast: 1 }), inputs: [], outputs: [], limits: defaultLimits, dot4: false }, fcmDomain), /channels-last/);
  // The output must be the channels-last shape.
  assert.throws(() => kernelFor(fcmNode('FusedDwPw', { ...attrs, channelsLast: 1 }), shapes, [[32, 96, 14, 14]], h100), (e) => e instanceof FcmError && /output/.test(e.message));
});
