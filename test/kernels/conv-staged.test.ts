// The staged form of the general convolution (kernels/conv2d.ts conv2dStaged: a filter block's weights in workgroup
// memory, FB filters x PT positions per invocation), forced through explicit tiles on ragged shapes: a last chunk of
// positions shorter than a workgroup's, taps outside the image on every side (padding, asymmetric pads, dilation),
// batch 2 and 3, one input channel, residual and activations; fp32 and f16 storage. And the rule that picks the tiles.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { type StagedTiles, conv2dStaged, stagedTiles } from '../../kernels/conv2d.js';
import { convGeom } from '../../kernels/conv-common.js';
import { withStorage } from '../../kernels/f16.js';
import { roundHalf } from '../../src/runtime/half.js';
import { closeDevice, getDevice, limitsOf } from './fused-harness.js';
import { type LayerCase, nodeOf, runLayer } from './layer-harness.js';
import { activation, conv2d, maxAbsDiff, randomF32 } from './reference.js';

after(closeDevice);

interface Case {
  n: number; c: number; h: number; w: number; f: number; k: [number, number]; stride: number;
  pads: [number, number, number, number]; dilation?: number; bias?: boolean; res?: boolean; act?: string; params?: number[];
  tiles: StagedTiles;
}

const cases: Case[] = [
  // A stem at batch 2: 9 x 8 = 72 positions an image, one chunk of 2 x 64 (the last 56 positions of it absent),
  // all 32 filters in one block.
  { n: 2, c: 3, h: 17, w: 15, f: 32, k: [3, 3], stride: 2, pads: [1, 1, 1, 1], bias: true, act: 'Clip', params: [0, 6], tiles: { fb: 32, pt: 2, wg: 64 } },
  // Dilation 2, asymmetric pads, residual after the activation; 2 blocks of 8 filters, 3 positions per invocation
  // of 32 (chunks of 96 over 7 x 6 = 42 positions).
  { n: 1, c: 3, h: 13, w: 11, f: 16, k: [3, 3], stride: 2, pads: [0, 1, 1, 0], dilation: 2, bias: true, res: true, act: 'HardSwish', tiles: { fb: 8, pt: 3, wg: 32 } },
  // A 5 x 3 window over 2 channels at stride 1, batch 3, 3 blocks of 4 filters, chunks of 16 over 7 x 9 = 63 positions
  // (four chunks, the last one short).
  { n: 3, c: 2, h: 7, w: 9, f: 12, k: [5, 3], stride: 1, pads: [2, 1, 2, 1], act: 'Relu', tiles: { fb: 4, pt: 1, wg: 16 } },
  // A ResNet-like 7 x 7 stem scaled down: 16 filters in one block, 2 positions per invocation.
  { n: 1, c: 3, h: 20, w: 18, f: 16, k: [7, 7], stride: 2, pads: [3, 3, 3, 3], bias: true, tiles: { fb: 16, pt: 2, wg: 32 } },
  // A window over 16 channels (144 taps, near the filter-blocked rule's limit of 160): a mid-network 3x3 conv.
  { n: 1, c: 16, h: 9, w: 10, f: 8, k: [3, 3], stride: 1, pads: [1, 1, 1, 1], bias: true, res: true, act: 'Relu', tiles: { fb: 8, pt: 2, wg: 32 } },
  // One input channel (grayscale), no padding: every tap inside the image.
  { n: 2, c: 1, h: 10, w: 12, f: 8, k: [3, 3], stride: 1, pads: [0, 0, 0, 0], bias: true, act: 'Sigmoid', tiles: { fb: 8, pt: 2, wg: 16 } },
];

async function check(k: Case, storage: 'f32' | 'f16') {
  const seed = k.n * 101 + k.c * 13 + k.f + k.h;
  const r = (d: Float32Array) => (storage === 'f16' ? Float32Array.from(d, roundHalf) : d);
  const d = k.dilation ?? 1;
  const x = r(randomF32(k.n * k.c * k.h * k.w, seed)), wt = r(randomF32(k.f * k.c * k.k[0] * k.k[1], seed + 1));
  const b = k.bias ? r(randomF32(k.f, seed + 2)) : undefined;
  const ref = conv2d({ data: x, shape: [k.n, k.c, k.h, k.w] }, { data: wt, shape: [k.f, k.c, k.k[0], k.k[1]] }, b,
    { strides: [k.stride, k.stride], pads: k.pads, dilations: [d, d], group: 1 });
  const res = k.res ? r(randomF32(ref.data.length, seed + 3)) : undefined;
  const act = activation(k.act ?? '', k.params);
  const want = Float32Array.from(ref.data, (v, i) => act(v) + (res ? res[i] : 0));
  const attrs: Record<string, unknown> = { kernel: k.k, strides: [k.stride, k.stride], pads: k.pads, dilations: [d, d], group: 1 };
  if (k.act) { attrs.activation = k.act; if (k.params) attrs.activationParams = k.params; }
  const lc: LayerCase = {
    op: 'Conv', attrs,
    inputs: [{ data: x, shape: [k.n, k.c, k.h, k.w] }, { data: wt, shape: [k.f, k.c, k.k[0], k.k[1]] }, b ? { data: b, shape: [k.f] } : null,
      res ? { data: res, shape: [...ref.shape] } : null],
    outputShapes: [[...ref.shape]],
  };
  const limits = limitsOf(await getDevice());
  const args = { node: nodeOf(lc), inputShapes: lc.inputs.map((t) => t?.shape), outputShapes: lc.outputShapes, limits };
  const p = withStorage(conv2dStaged(args, convGeom(args), k.tiles), storage);
  assert.match(p.cacheKey, new RegExp(`FB${k.tiles.fb}PT${k.tiles.pt}WG${k.tiles.wg}`));
  const [got] = await runLayer(lc, storage, [p]);
  // fp32: sums of <= 147 products of values in [-1, 1) in another order than the reference's, ~147 * 2^-24 of their
  // size (1e-5); f16 storage rounds each result to 11 significant bits (2^-11 = 4.9e-4 of it): 1e-3. A filter, tap or
  // position mixed up is O(1) off; an output never written stays NaN.
  const { maxDiff, maxRef, at } = maxAbsDiff(got, want);
  const tol = (storage === 'f16' ? 1e-3 : 1e-5) * Math.max(1, maxRef);
  assert.ok(maxDiff <= tol, `${JSON.stringify(k)} ${storage}: max |diff| ${maxDiff} > ${tol} at ${at} (got ${got[at]}, expected ${want[at]})`);
}

for (const k of cases) {
  test(`staged conv ${k.k[0]}x${k.k[1]} s${k.stride} over ${k.c} channels, ${k.f} filters, batch ${k.n}: ${k.tiles.fb} filters x ${k.tiles.pt} positions, ${k.tiles.wg} a workgroup`, async () => {
    await check(k, 'f32');
    await check(k, 'f16');
  });
}

test('staged conv tiles: big blocks and 2 positions where 65536 invocations remain, the workgroup memory respected', () => {
  const limits = { maxComputeWorkgroupStorageSize: 16384, maxComputeInvocationsPerWorkgroup: 256 };
  const geom = (n: number, c: number, f: number, k: number, ho: number) =>
    ({ N: n, C: c, H: 2 * ho, W: 2 * ho, F: f, HO: ho, WO: ho, kh: k, kw: k, sh: 2, sw: 2, pt: 1, pl: 1, pb: 1, pr: 1, dh: 1, dw: 1, group: 1, hasBias: true, hasRes: false, hasScale: false, act: { fn: '', key: 'none' } }) as unknown as Parameters<typeof stagedTiles>[0];
  // MobileNetV2's stem at batch 32: 401408 positions, 16 filters and 2 positions an invocation (401408 of them).
  assert.deepEqual(stagedTiles(geom(32, 3, 32, 3, 112), limits), { fb: 16, pt: 2, wg: 128 });
  // At batch 1 (12544 positions): 4 filters an invocation leave 100352 invocations.
  assert.deepEqual(stagedTiles(geom(1, 3, 32, 3, 112), limits), { fb: 4, pt: 1, wg: 128 });
  // ResNet's 7x7 stem at batch 32: 16 filters x 147 taps, 9408 bytes of weights.
  assert.deepEqual(stagedTiles(geom(32, 3, 64, 7, 112), limits), { fb: 16, pt: 2, wg: 128 });
  // Under a 4 KiB workgroup memory limit, 4 filters (2352 bytes).
  assert.deepEqual(stagedTiles(geom(32, 3, 64, 7, 112), { ...limits, maxComputeWorkgroupStorageSize: 4096 }), { fb: 4, pt: 2, wg: 128 });
  // ShuffleNetV2's 24 filters at batch 32: 8 divides them (not 16 or 32).
  assert.deepEqual(stagedTiles(geom(32, 3, 24, 3, 112), limits), { fb: 8, pt: 2, wg: 128 });
  // Too few positions to fill the GPU: the filter-blocked rule's block, one position.
  assert.deepEqual(stagedTiles(geom(1, 3, 16, 3, 8), limits), { fb: 4, pt: 1, wg: 128 });
  // No multiple of 4 divides F, or the filter-blocked form does not apply (a window over 64 channels): none.
  assert.equal(stagedTiles(geom(1, 3, 6, 3, 112), limits), undefined);
  assert.equal(stagedTiles(geom(1, 64, 64, 3, 56), limits), undefined);
  // A device of 64 threads a workgroup gets workgroups of 64.
  assert.equal(stagedTiles(geom(32, 3, 32, 3, 112), { ...limits, maxComputeInvocationsPerWorkgroup: 64 })?.wg, 64);
});
