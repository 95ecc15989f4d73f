// The shuffled store of the pointwise kernels (kernels/pointwise.ts DotGeom.shuffleOuts; a ChannelShuffle folded in by
// src/rewrite/shuffle-conv.ts) on every store path the chooser can pick, forced through dotProgram: the gemm loop and
// unrolled forms (vec4 and scalar positions, K slices), vec4 with staged and with global weights, split-K
// (positions-major, channel-major, one thread per output). Each runs in fp32 and in fp16 storage (kernels/f16.ts), at
// batch 1 and 2, into one unsplit output, two halves, and an uneven split whose boundary falls between a conv value
// and its partner's. Reference: reference.ts's conv2d + bias + Relu in float64, shuffled and split on the host; in fp32
// also the same variant with its plain store (the unfolded conv), shuffled on the host, bit for bit.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { type DotChoice, type DotGeom, dotProgram } from '../../kernels/pointwise.js';
import { convBindings, convGeom } from '../../kernels/conv-common.js';
import { withStorage } from '../../kernels/f16.js';
import { kernelFor } from '../../kernels/registry.js';
import { defaultLimits } from '../../kernels/program.js';
import { pointwiseSubgroupMatrix } from '../../kernels/pointwise-subgroup-matrix.js';
import { newAttrs } from '../../src/graph/ir.js';
import { roundHalf } from '../../src/runtime/half.js';
import { closeDevice, getDevice, limitsOf } from './fused-harness.js';
import { type LayerCase, nodeOf, runLayer } from './layer-harness.js';
import { conv2d, epilogue, maxAbsDiff, randomF32 } from './reference.js';

after(closeDevice);

interface Variant { name: string; hw: [number, number]; C: number; F: number; choice: DotChoice }

// F = 12 is no multiple of the gemm's 16 filters per tile (partial filter tiles); 5x5 maps leave P % 4 != 0 (scalar
// stores); 4x4 maps give whole vec4s.
const variants: Variant[] = [
  { name: 'gemm loop, vec4 positions', hw: [4, 4], C: 8, F: 12, choice: { kind: 'gemm', tiles: { tx: 4, ty: 4, rf: 4, bk: 4 } } },
  { name: 'gemm loop, scalar positions, 2 K slices', hw: [5, 5], C: 12, F: 12, choice: { kind: 'gemm', tiles: { tx: 4, ty: 4, rf: 4, ks: 2, bk: 4 } } },
  { name: 'gemm unrolled, vec4 positions', hw: [4, 4], C: 8, F: 12, choice: { kind: 'gemm', tiles: { tx: 4, ty: 4, rf: 4, bk: 4, un: true } } },
  { name: 'gemm unrolled, scalar positions, 2 K slices', hw: [5, 5], C: 12, F: 12, choice: { kind: 'gemm', tiles: { tx: 4, ty: 4, rf: 4, ks: 2, bk: 4, un: true } } },
  { name: 'vec4, staged weights', hw: [4, 4], C: 8, F: 12, choice: { kind: 'vec4', rf: 4, threads: 32 } },
  { name: 'vec4, global weights', hw: [4, 4], C: 8, F: 12, choice: { kind: 'vec4', rf: 2, threads: 32 } },
  { name: 'split-K positions-major', hw: [4, 4], C: 40, F: 12, choice: { kind: 'splitK', ks: 4 } },
  { name: 'split-K channel-major', hw: [3, 3], C: 40, F: 12, choice: { kind: 'splitK', ks: 4 } },
  { name: 'split-K, one thread per output', hw: [5, 5], C: 8, F: 12, choice: { kind: 'splitK', ks: 1 } },
];

type Split = 'whole' | 'halves' | 'uneven';
const sizesOf = (F: number, s: Split) => (s === 'whole' ? [2 * F] : s === 'halves' ? [F, F] : [5, 2 * F - 5]);

/** ChannelShuffle{groups 2}(a, y) split into `sizes`: shuffled channel 2j is a's channel j, 2j + 1 is y's. */
function shuffled(a: ArrayLike<number>, y: ArrayLike<number>, N: number, F: number, P: number, sizes: number[]): Float64Array[] {
  const outs = sizes.map((D) => new Float64Array(N * D * P));
  for (let n = 0; n < N; n++) {
    for (let q = 0; q < 2 * F; q++) {
      const src = q % 2 === 0 ? a : y, j = q >> 1;
      let k = 0, start = 0;
      while (q >= start + sizes[k]) start += sizes[k++];
      for (let p = 0; p < P; p++) outs[k][(n * sizes[k] + q - start) * P + p] = src[(n * F + j) * P + p];
    }
  }
  return outs;
}

async function check(v: Variant, N: number, split: Split, storage: 'f32' | 'f16') {
  const [H, W] = v.hw, P = H * W, { C, F } = v;
  const seed = 100 + C + F + P + N;
  // f16 storage rounds every input as it is written; the reference starts from the same rounded values.
  const r = (d: Float32Array) => (storage === 'f16' ? Float32Array.from(d, roundHalf) : d);
  const x = r(randomF32(N * C * P, seed)), w = r(randomF32(F * C, seed + 1)), b = r(randomF32(F, seed + 2)), a = r(randomF32(N * F * P, seed + 3));
  const sizes = sizesOf(F, split);
  const lc: LayerCase = {
    op: 'Conv',
    attrs: { kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, activation: 'Relu', shuffleGroups: 2 },
    inputs: [{ data: x, shape: [N, C, H, W] }, { data: w, shape: [F, C, 1, 1] }, { data: b, shape: [F] }, null, null, { data: a, shape: [N, F, H, W] }],
    outputShapes: sizes.map((D) => [N, D, H, W]),
  };
  const limits = limitsOf(await getDevice());
  const args = { node: nodeOf(lc), inputShapes: lc.inputs.map((t) => t?.shape), outputShapes: lc.outputShapes, limits };
  const g = convGeom(args);
  assert.deepEqual(g.shuffleOuts, sizes);
  const dot: DotGeom = { N, C, F, P, hasBias: true, hasRes: false, hasScale: false, shuffleOuts: g.shuffleOuts, act: g.act };
  const bind = convBindings(g);
  assert.deepEqual(bind, { names: ['x', 'w', 'b', 'sh'], inputs: [0, 1, 2, 5] });
  const p32 = dotProgram(dot, v.choice, bind.names, bind.inputs, limits, v.name, 'Conv(pw)', 'pointwise');
  assert.equal(p32.outputs, sizes.length);
  const p = withStorage(p32, storage);
  const got = await runLayer(lc, storage, [p]);
  const y = epilogue(conv2d({ data: x, shape: [N, C, H, W] }, { data: w, shape: [F, C, 1, 1] }, b), 'Relu').data;
  const ref = shuffled(a, y, N, F, P, sizes);
  const what = `${v.name}, N ${N}, ${split}, ${storage}`;
  // The copied channels (a's) are moved, never computed: bit for bit (f16: the rounded input, stored back unchanged).
  const copied = shuffled(a, new Float64Array(N * F * P).fill(NaN), N, F, P, sizes);
  got.forEach((o, k) => {
    assert.equal(o.length, ref[k].length);
    let diff = 0;
    for (let i = 0; i < o.length; i++) if (!Number.isNaN(copied[k][i]) && o[i] !== copied[k][i]) diff++;
    assert.equal(diff, 0, `${what}: output ${k}: ${diff} copied values differ`);
    // Conv values: fp32 1e-4 * max(1, max|ref|) (layer-harness.ts assertClose: float32 sums of <= 40 terms, ~40 *
    // 2^-24 of their size); f16 adds the store's rounding to 11 significant bits (<= 2^-11 = 4.9e-4 of each value),
    // so 1e-3. A value at the wrong place is O(1) off, and an element never written stays NaN.
    const { maxDiff, maxRef, at } = maxAbsDiff(o, ref[k]);
    const tol = (storage === 'f16' ? 1e-3 : 1e-4) * Math.max(1, maxRef);
    assert.ok(maxDiff <= tol, `${what}: output ${k}: max |diff| ${maxDiff} > ${tol} at ${at} (got ${o[at]}, expected ${ref[k][at]})`);
  });
  if (storage === 'f16') return;
  // fp32: the same variant with its plain store computes every conv value bit for bit as the shuffled one stores it
  // (the fold changes where a value goes, never how it is summed).
  const { shuffleGroups: _, ...plainAttrs } = lc.attrs!;
  const plainCase: LayerCase = { ...lc, attrs: plainAttrs, inputs: lc.inputs.slice(0, 3), outputShapes: [[N, F, H, W]] };
  const plainDot: DotGeom = { ...dot, shuffleOuts: undefined };
  const [plain] = await runLayer(plainCase, 'f32', [dotProgram(plainDot, v.choice, ['x', 'w', 'b'], [0, 1, 2], limits, v.name, 'Conv(pw)', 'pointwise')]);
  const unfolded = shuffled(a, plain, N, F, P, sizes);
  got.forEach((o, k) => {
    let diff = 0;
    for (let i = 0; i < o.length; i++) if (!Object.is(o[i], unfolded[k][i])) diff++;
    assert.equal(diff, 0, `${what}: output ${k}: ${diff} values differ from the plain store's, shuffled on the host`);
  });
}

// Every variant in both storages and at both batches, each with another split, without compiling the full cross
// product (each WGSL compiles for seconds on lavapipe).
const splits: Split[] = ['halves', 'whole', 'uneven'];
variants.forEach((v, i) => {
  test(`shuffled store, ${v.name}: fp32 batch 2 (${splits[i % 3]}) and fp16 batch 1 (${splits[(i + 1) % 3]}) match the reference`, async () => {
    await check(v, 2, splits[i % 3], 'f32');
    const device = await getDevice();
    assert.ok(device.features.has('shader-f16'), 'the test device has shader-f16 (lavapipe offers it)');
    await check(v, 1, splits[(i + 1) % 3], 'f16');
  });
});

test('f16 with subgroup matrices: a shuffled conv falls back to the f16 form of the pointwise kernel', () => {
  // A ShuffleNetV2 stage-3 layer (116 -> 116 on 14x14) on an H100's limits, which the subgroup-matrix chooser covers.
  const h100 = { ...defaultLimits, maxComputeWorkgroupStorageSize: 49152, maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 1024 };
  const support = { subgroupSize: 32 };
  const attrs = { kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, activation: 'Relu' };
  const shapes = [[1, 116, 14, 14], [116, 116, 1, 1], [116]];
  const plain = { name: 'c', op: 'Conv', domain: '', inputs: ['x', 'w', 'b'], outputs: ['y'], attrs: newAttrs(attrs) };
  const k0 = kernelFor(plain, shapes, [[1, 116, 14, 14]], h100, 'f16', { subgroupMatrix: support });
  assert.ok(k0.kind === 'programs' && k0.programs[0].name === 'Conv(pw smx)', 'the plain conv takes the subgroup-matrix kernel');
  const shuffled = { ...plain, inputs: ['x', 'w', 'b', '', '', 'a'], outputs: ['y0', 'y1'], attrs: newAttrs({ ...attrs, shuffleGroups: 2 }) };
  const k1 = kernelFor(shuffled, [...shapes, undefined, undefined, [1, 116, 14, 14]], [[1, 116, 14, 14], [1, 116, 14, 14]], h100, 'f16', { subgroupMatrix: support });
  assert.equal(k1.kind, 'programs');
  const p = k1.kind === 'programs' ? k1.programs[0] : undefined;
  assert.equal(p?.name, 'Conv(pw)');
  assert.equal(p?.outputs, 2);
  assert.deepEqual(p?.inputs, [0, 1, 2, 5]);
  assert.match(p?.wgsl ?? '', /^enable f16;/);
  assert.match(p?.wgsl ?? '', /var<storage, read_write> sy1: array<(vec4<)?f16>?>/);
  // The subgroup-matrix kernel itself refuses the shuffled store rather than dropping it.
  const dot: DotGeom = { N: 1, C: 116, F: 116, P: 196, hasBias: true, hasRes: false, shuffleOuts: [116, 116], act: { fn: '', key: '' } };
  assert.throws(() => pointwiseSubgroupMatrix(dot, { sgf: 1, sgp: 2, tm: 2, tn: 2, bk: 16 }, support, ['x', 'w', 'b', 'sh'], [0, 1, 2, 5], h100, 'c'), /no shuffled store/);
});
