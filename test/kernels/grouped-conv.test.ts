// The grouped convolution kernel (kernels/grouped-conv.ts) against reference.ts's float64 conv2d, outputs NaN-filled
// (an element no workgroup writes fails): a seeded sample of shapes at the tile rule's tiles (stride 1 through the
// registry; stride 2, which the registry leaves to the general kernel, as the grouped program itself) in fp32, and in
// fp16 through the registry, then explicit tiles the rule does not reach on lavapipe (several channel steps with a partial last
// one, scalar weights, partial filter tiles and thread rows). Few programs on purpose: lavapipe compiles each with LLVM.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeDevice, getDevice, limitsOf, runProgram } from './fused-harness.js';
import { conv2d, epilogue, randomF32, type Tensor4 } from './reference.js';
import { type LayerCase, assertClose, programsOf, runLayer } from './layer-harness.js';
import { sweepSeed } from '../sweep.js';
import { mulberry32 } from '../../fixtures/rng.js';
import { roundHalf } from '../../src/runtime/half.js';
import { type GroupedTiles, groupedConvProgram, groupedTiles, isGrouped } from '../../kernels/grouped-conv.js';
import { convGeom } from '../../kernels/conv-common.js';
import { activationFn } from '../../kernels/shader.js';
import { defaultLimits } from '../../kernels/program.js';
import { withStorage } from '../../kernels/f16.js';
import { newAttrs } from '../../src/graph/ir.js';

after(closeDevice);

interface GCase {
  n: number; c: number; h: number; w: number; f: number; group: number; k: [number, number];
  stride: number; pads: [number, number, number, number]; dilation: number;
  bias: boolean; residual: boolean; act: string; params?: number[];
}

/**
 * A seeded sample of grouped layers: the fixed axes below (input channels per group 8, 16 and 24; stride 1 and 2;
 * batch 1 and 2) each met at least once, the rest drawn (groups 2-4, output channels per group 4-24 including ones
 * not a multiple of 4, odd and even sizes 5-15, pads 0-2 and asymmetric, dilation 2 once in a while, epilogues).
 */
function sampleCases(seed: number): GCase[] {
  const r = mulberry32(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)];
  const axes: [number, number, number][] = [[8, 1, 2], [16, 2, 1], [24, 1, 1], [16, 1, 2], [8, 2, 1]];
  return axes.map(([cg, stride, n]) => {
    const group = pick([2, 3, 4]);
    const fg = pick([4, 6, 8, 12, 16, 24]);
    const k: [number, number] = pick([[3, 3], [3, 3], [5, 5], [1, 3]] as [number, number][]);
    const pad = () => Math.min(pick([0, 1, 1, 2]), k[0] - 1);
    return {
      n, c: cg * group, f: fg * group, group, k, stride, h: 5 + Math.floor(r() * 11), w: 5 + Math.floor(r() * 11),
      pads: [pad(), pad(), pad(), pad()], dilation: k[0] === 3 && r() < 0.2 ? 2 : 1,
      bias: r() < 0.7, residual: r() < 0.4, ...pick([{ act: 'Relu' }, { act: '' }, { act: 'Clip', params: [0, 6] }, { act: 'HardSwish' }]),
    };
  });
}

const cases = sampleCases(sweepSeed(1500));

let seed = 1500;
function layerOf(cc: GCase, half: boolean): { lc: LayerCase; ref: Tensor4 } {
  const q = (a: Float32Array) => (half ? a.map(roundHalf) : a);
  const wShape: Tensor4['shape'] = [cc.f, cc.c / cc.group, cc.k[0], cc.k[1]];
  const x = q(randomF32(cc.n * cc.c * cc.h * cc.w, seed++));
  const wt = q(randomF32(wShape.reduce((a, b) => a * b, 1), seed++));
  const b = cc.bias ? q(randomF32(cc.f, seed++)) : undefined;
  const ref = conv2d({ data: x, shape: [cc.n, cc.c, cc.h, cc.w] }, { data: wt, shape: wShape }, b,
    { strides: [cc.stride, cc.stride], pads: cc.pads, dilations: [cc.dilation, cc.dilation], group: cc.group });
  const res = cc.residual ? q(randomF32(ref.data.length, seed++)) : undefined;
  epilogue(ref, cc.act, cc.params, res);
  const attrs: Record<string, unknown> = { kernel: cc.k, strides: [cc.stride, cc.stride], pads: cc.pads, dilations: [cc.dilation, cc.dilation], group: cc.group };
  if (cc.act) { attrs.activation = cc.act; if (cc.params) attrs.activationParams = cc.params; }
  const lc: LayerCase = {
    op: 'Conv', attrs,
    inputs: [{ data: x, shape: [cc.n, cc.c, cc.h, cc.w] }, { data: wt, shape: wShape }, b ? { data: b, shape: [cc.f] } : null,
      res ? { data: res, shape: [...ref.shape] } : null],
    outputShapes: [[...ref.shape]],
  };
  return { lc, ref };
}

const half = 2 ** -11, halfSub = 2 ** -25;

/**
 * f16 storage: inputs are f16 values, sums f32 (assertClose's 1e-4 of the largest |ref|: K <= 600 terms here), then the
 * store rounds to f16, half an f16 ulp: 2^-11 |ref| (2^-25 below the normal range).
 */
function assertHalfClose(got: ArrayLike<number>, ref: ArrayLike<number>, what: string): void {
  assert.equal(got.length, ref.length, `${what}: length`);
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) maxRef = Math.max(maxRef, Math.abs(ref[i]));
  const atol = 1e-4 * Math.max(1, maxRef);
  for (let i = 0; i < ref.length; i++) {
    const bound = half * Math.abs(ref[i]) + halfSub + atol;
    // NaN (an element no workgroup wrote) fails: the comparison is false.
    assert.ok(Math.abs(got[i] - ref[i]) <= bound, `${what}: element ${i}: got ${got[i]}, expected ${ref[i]}`);
  }
}

test('the sampled cases meet every fixed axis; the registry gives stride 1 the grouped kernel, stride 2 the general one', async () => {
  assert.deepEqual([...new Set(cases.map((c) => c.c / c.group))].sort((a, b) => a - b), [8, 16, 24]);
  assert.deepEqual([...new Set(cases.map((c) => c.stride))].sort(), [1, 2]);
  assert.deepEqual([...new Set(cases.map((c) => c.n))].sort(), [1, 2]);
  assert.ok(cases.some((c) => c.pads.some((p) => p > 0)), 'no case pads');
  const wVec: boolean[] = [];
  const limits = limitsOf(await getDevice());
  for (const cc of cases) {
    const { lc } = layerOf(cc, false);
    const [p] = await programsOf(lc);
    // kernels/grouped-conv.ts usesGroupedKernel: stride 2 measured slower on the grouped kernel.
    assert.ok(p.cacheKey.startsWith(cc.stride === 1 ? 'grouped|' : 'conv2d|'), `${JSON.stringify(cc)}: ${p.cacheKey}`);
    const node = { name: 'g', op: 'Conv', inputs: lc.inputs.map((x, k) => (x ? `in${k}` : '')), attrs: newAttrs(lc.attrs as Record<string, never>) };
    const g = convGeom({ node, inputShapes: lc.inputs.map((x) => x?.shape), outputShapes: lc.outputShapes, limits });
    wVec.push(groupedConvProgram(g, groupedTiles(g, limits), limits, 'test').wgsl.includes('var<storage, read> w: array<vec4<f32>>'));
  }
  // Both weight staging forms: vec4 reads of a whole group's weights (one channel step) and scalar ones (below: several
  // steps, and the tile cases).
  assert.ok(wVec.includes(true) && wVec.includes(false), `vec4 weight reads: ${wVec}`);
});

for (const [i, cc] of cases.entries()) {
  test(`grouped conv fp32 (rule tiles) ${JSON.stringify(cc)}`, async () => {
    const { lc, ref } = layerOf(cc, false);
    if (cc.stride === 1) {
      const [got] = await runLayer(lc);
      assertClose(got, ref.data, JSON.stringify(cc));
      return;
    }
    // Stride 2 runs on the general kernel (the registry); the grouped kernel's own program at the rule's tiles here.
    const device = await getDevice();
    const limits = limitsOf(device);
    const node = { name: 'g', op: 'Conv', inputs: lc.inputs.map((x, k) => (x ? `in${k}` : '')), attrs: newAttrs(lc.attrs as Record<string, never>) };
    const g = convGeom({ node, inputShapes: lc.inputs.map((x) => x?.shape), outputShapes: lc.outputShapes, limits });
    const p = groupedConvProgram(g, groupedTiles(g, limits), limits, 'test');
    const got = await runProgram(device, p, p.inputs.map((k) => lc.inputs[k]!.data), ref.data.length);
    assertClose(got, ref.data, JSON.stringify(cc));
  });
  // f16 on two of the five: each is a program of its own.
  if (i % 2 === 1) {
    test(`grouped conv fp16 storage (rule tiles) ${JSON.stringify(cc)}`, async (t) => {
      if (!(await getDevice()).features.has('shader-f16')) { t.skip('no shader-f16 on this adapter'); return; }
      const { lc, ref } = layerOf(cc, true);
      const [p] = await programsOf(lc, 'f16');
      assert.ok(p.cacheKey.startsWith(cc.stride === 1 ? 'f16|grouped|' : 'f16|conv2d|'), p.cacheKey);
      const [got] = await runLayer(lc, 'f16');
      assertHalfClose(got, ref.data, JSON.stringify(cc));
    });
  }
}

// Tiles the rule does not give on these small layers: several channel steps (24 channels in steps of 7 and 5: the last
// step partial), scalar weights (rf 1 and 2), a filter tile not dividing the group's filters, 3 outputs per thread
// over rows of 10 and 7 (partial threads), a 1-row tile, stride 2 with padding.
const tileCases: { cc: GCase; t: GroupedTiles }[] = [
  { cc: { n: 2, c: 48, h: 9, w: 10, f: 20, group: 2, k: [3, 3], stride: 1, pads: [1, 1, 1, 1], dilation: 1, bias: true, residual: true, act: 'Relu' },
    t: { th: 3, tw: 10, tf: 6, rp: 3, rf: 2, bc: 7 } },
  { cc: { n: 1, c: 48, h: 11, w: 13, f: 27, group: 3, k: [3, 3], stride: 2, pads: [1, 0, 1, 2], dilation: 1, bias: false, residual: false, act: '' },
    t: { th: 1, tw: 7, tf: 5, rp: 3, rf: 1, bc: 5 } },
  { cc: { n: 2, c: 32, h: 7, w: 7, f: 32, group: 2, k: [3, 3], stride: 1, pads: [1, 1, 1, 1], dilation: 1, bias: true, residual: false, act: 'Clip', params: [0, 6] },
    t: { th: 4, tw: 4, tf: 8, rp: 1, rf: 8, bc: 6 } },
];

test('grouped conv kernel matches the reference at tiles the rule does not reach', async () => {
  const device = await getDevice();
  const limits = limitsOf(device);
  for (const { cc, t } of tileCases) {
    const { lc, ref } = layerOf(cc, false);
    const node = { name: 'g', op: 'Conv', inputs: lc.inputs.map((x, k) => (x ? `in${k}` : '')), attrs: newAttrs(lc.attrs as Record<string, never>) };
    const g = convGeom({ node, inputShapes: lc.inputs.map((x) => x?.shape), outputShapes: lc.outputShapes, limits });
    const p = groupedConvProgram(g, t, limits, 'test');
    const got = await runProgram(device, p, p.inputs.map((k) => lc.inputs[k]!.data), ref.data.length);
    assertClose(got, ref.data, `${JSON.stringify(cc)} tiles ${JSON.stringify(t)}`);
    // The f16 form of the scalar weight staging (the f16 cases above stage vec4s): valid WGSL (Tint only, no LLVM).
    if (device.features.has('shader-f16')) {
      const info = await device.createShaderModule({ code: withStorage(p, 'f16').wgsl }).getCompilationInfo();
      assert.deepEqual(info.messages.filter((m) => m.type === 'error').map((m) => m.message), [], `f16 ${JSON.stringify(t)}`);
    }
  }
});

test('registry: 1 < group < C at stride 1 takes the grouped kernel; stride 2, group 1 and depth multipliers the general one', async () => {
  const { kernelFor } = await import('../../kernels/registry.js');
  const keyOf = (c: number, f: number, group: number, k = 3, s = 1) => {
    const node = { name: 'c', op: 'Conv', domain: '', inputs: ['x', 'w'], outputs: ['y'], attrs: newAttrs({ kernel: [k, k], pads: [1, 1, 1, 1], group, strides: [s, s] }) };
    const o = Math.floor((8 + 2 - k) / s) + 1;
    const kk = kernelFor(node, [[1, c, 8, 8], [f, c / group, k, k]], [[1, f, o, o]], defaultLimits);
    return kk.kind === 'programs' ? kk.programs[0].cacheKey.split('|')[0] : 'alias';
  };
  assert.equal(keyOf(32, 32, 2), 'grouped');
  assert.equal(keyOf(32, 64, 16), 'grouped');
  // Stride 2 stays on the general kernel (usesGroupedKernel: measured slower on the grouped one).
  assert.equal(keyOf(32, 32, 2, 3, 2), 'conv2d');
  assert.equal(keyOf(32, 32, 1), 'conv2d');
  assert.equal(keyOf(8, 16, 8), 'conv2d');
  assert.equal(keyOf(8, 8, 8), 'depthwise');
  assert.equal(isGrouped({ group: 4, C: 4 }), false);
});

test('grouped tile rule: a group\'s filters per tile, 8x8 positions on large maps, smaller tiles for few workgroups, channel steps that fit', () => {
  const geom = (N: number, C: number, HW: number, s: number, group: number) => {
    const HO = Math.floor((HW - 1) / s) + 1;
    return {
      N, C, H: HW, W: HW, F: C, HO, WO: HO, kh: 3, kw: 3, sh: s, sw: s, pt: 1, pl: 1, pb: 1, pr: 1, dh: 1, dw: 1, group,
      hasBias: true, hasRes: false, hasScale: false, act: { fn: '', key: '' },
    };
  };
  const l48 = { ...defaultLimits, maxComputeWorkgroupStorageSize: 49152 };
  // regnet_x_400mf's 28x28 64-channel layer (4 groups of 16) at batch 32: 8x8 x 16 filters, 128 threads, all 16 channels.
  assert.deepEqual(groupedTiles(geom(32, 64, 28, 1, 4), l48), { th: 8, tw: 8, tf: 16, rp: 2, rf: 4, bc: 16 });
  // At batch 1 (112 workgroups of 8x8 would be 28): rows halved down to 64 threads.
  assert.deepEqual(groupedTiles(geom(1, 64, 28, 1, 4), l48), { th: 4, tw: 8, tf: 16, rp: 2, rf: 4, bc: 16 });
  // Stride 2 at 16 KiB of workgroup storage: a 17x17 patch of 16 channels does not fit; two steps of 8 do.
  assert.deepEqual(groupedTiles(geom(32, 64, 56, 2, 4), defaultLimits), { th: 8, tw: 8, tf: 16, rp: 2, rf: 4, bc: 8 });
  // Groups of 6 filters: scalar weights in pairs; groups of 64 filters: tiles of 32.
  assert.equal(groupedTiles(geom(8, 24, 14, 1, 4), l48).rf, 2);
  assert.equal(groupedTiles(geom(8, 256, 14, 1, 4), l48).tf, 32);
});

test('grouped conv: tiles it cannot build are refused with the node named', () => {
  const g = {
    N: 1, C: 32, H: 8, W: 8, F: 32, HO: 8, WO: 8, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pl: 1, pb: 1, pr: 1, dh: 1, dw: 1, group: 2,
    hasBias: false, hasRes: false, hasScale: false, act: { fn: activationFn('act', '', [], 't'), key: '' },
  };
  const t = { th: 8, tw: 8, tf: 16, rp: 2, rf: 4, bc: 16 };
  assert.throws(() => groupedConvProgram(g, { ...t, rf: 3 }, defaultLimits, "node 'conv_9'"), /conv_9.*16 filters per tile are not a multiple of 3/);
  assert.throws(() => groupedConvProgram(g, { ...t, bc: 0 }, defaultLimits, "node 'conv_9'"), /tile bc must be a positive integer, got 0/);
  assert.throws(() => groupedConvProgram(g, { ...t, th: 32 }, defaultLimits, "node 'conv_9'"), /512 threads per workgroup, the device allows 256/);
  assert.throws(() => groupedConvProgram(g, { ...t, tf: 32, rf: 8 }, defaultLimits, "node 'conv_9'"), /bytes of workgroup storage, the device allows 16384/);
});
