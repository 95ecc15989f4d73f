// The channels-last store of the pointwise kernels (kernels/pointwise.ts DotGeom.channelsLast; a Transpose
// [0, 2, 3, 1] folded in by src/rewrite/channels-last-store.ts) on every store path the chooser can pick, forced
// through dotProgram: the gemm loop and unrolled forms (vec4 and scalar positions, K slices), vec4 with staged and with
// global weights, split-K (positions-major, channel-major, one thread per output), split-K with several filters and
// positions per thread, and split-K over images (1x1 maps). Each runs in fp32 and in fp16 storage (kernels/f16.ts).
// Reference: reference.ts's conv2d + bias + activation in float64, transposed on the host; in fp32 also the same
// variant with its plain store, transposed on the host, bit for bit (the store moves values, it never sums them).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { type DotChoice, type DotGeom, dotProgram } from '../../kernels/pointwise.js';
import { convBindings, convGeom } from '../../kernels/conv-common.js';
import { withStorage } from '../../kernels/f16.js';
import { int8KernelFor, kernelFor, pointwiseVariants } from '../../kernels/registry.js';
import { defaultLimits } from '../../kernels/program.js';
import { pointwiseSubgroupMatrix } from '../../kernels/pointwise-subgroup-matrix.js';
import { newAttrs } from '../../src/graph/ir.js';
import { roundHalf } from '../../src/runtime/half.js';
import { FcmError } from '../../src/errors.js';
import { closeDevice, getDevice, limitsOf } from './fused-harness.js';
import { type LayerCase, nodeOf, runLayer } from './layer-harness.js';
import { conv2d, epilogue, maxAbsDiff, randomF32 } from './reference.js';

after(closeDevice);

interface Variant { name: string; hw: [number, number]; C: number; F: number; N: number; choice: DotChoice }

// F = 6 and 12 are no multiple of the gemm's 16 filters per tile (partial filter tiles); 5x5 maps leave P % 4 != 0
// (scalar stores); 4x4 maps give whole vec4s, whose 4 positions land F elements apart.
const variants: Variant[] = [
  { name: 'gemm loop, vec4 positions', hw: [4, 4], C: 8, F: 12, N: 2, choice: { kind: 'gemm', tiles: { tx: 4, ty: 4, rf: 4, bk: 4 } } },
  { name: 'gemm loop, scalar positions, 2 K slices', hw: [5, 5], C: 12, F: 6, N: 2, choice: { kind: 'gemm', tiles: { tx: 4, ty: 4, rf: 4, ks: 2, bk: 4 } } },
  { name: 'gemm unrolled, vec4 positions', hw: [4, 4], C: 8, F: 12, N: 2, choice: { kind: 'gemm', tiles: { tx: 4, ty: 4, rf: 4, bk: 4, un: true } } },
  { name: 'gemm unrolled, scalar positions, 2 K slices', hw: [5, 5], C: 12, F: 12, N: 2, choice: { kind: 'gemm', tiles: { tx: 4, ty: 4, rf: 4, ks: 2, bk: 4, un: true } } },
  { name: 'vec4, staged weights', hw: [4, 4], C: 8, F: 12, N: 2, choice: { kind: 'vec4', rf: 4, threads: 32 } },
  { name: 'vec4, global weights', hw: [4, 4], C: 8, F: 6, N: 2, choice: { kind: 'vec4', rf: 2, threads: 32 } },
  { name: 'split-K positions-major', hw: [4, 4], C: 40, F: 12, N: 2, choice: { kind: 'splitK', ks: 4 } },
  { name: 'split-K channel-major', hw: [3, 3], C: 40, F: 6, N: 2, choice: { kind: 'splitK', ks: 4 } },
  { name: 'split-K, one thread per output', hw: [5, 5], C: 8, F: 12, N: 2, choice: { kind: 'splitK', ks: 1 } },
  { name: 'split-K, 2 filters a thread', hw: [4, 4], C: 40, F: 6, N: 1, choice: { kind: 'splitK', ks: 4, rf: 2 } },
  { name: 'split-K, 4 filters x 2 positions a thread', hw: [3, 3], C: 40, F: 6, N: 1, choice: { kind: 'splitK', ks: 4, rf: 4, rp: 2 } },
  { name: 'split-K over images', hw: [1, 1], C: 40, F: 6, N: 5, choice: { kind: 'splitK', ks: 4, nb: 4 } },
];

/** y [N, F, H, W] as [N, H, W, F]. */
function toChannelsLast(y: ArrayLike<number>, N: number, F: number, P: number): Float64Array {
  const out = new Float64Array(N * F * P);
  for (let n = 0; n < N; n++) for (let f = 0; f < F; f++) for (let p = 0; p < P; p++) out[(n * P + p) * F + f] = y[(n * F + f) * P + p];
  return out;
}

const attrs = { kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, activation: 'Relu' };

async function check(v: Variant, storage: 'f32' | 'f16', N: number) {
  const [H, W] = v.hw, P = H * W, { C, F } = v;
  const seed = 200 + C + F + P + N;
  // f16 storage rounds every input as it is written; the reference starts from the same rounded values.
  const r = (d: Float32Array) => (storage === 'f16' ? Float32Array.from(d, roundHalf) : d);
  const x = r(randomF32(N * C * P, seed)), w = r(randomF32(F * C, seed + 1)), b = r(randomF32(F, seed + 2));
  const lc: LayerCase = {
    op: 'Conv',
    attrs: { ...attrs, channelsLast: 1 },
    inputs: [{ data: x, shape: [N, C, H, W] }, { data: w, shape: [F, C, 1, 1] }, { data: b, shape: [F] }],
    outputShapes: [[N, H, W, F]],
  };
  const limits = limitsOf(await getDevice());
  const args = { node: nodeOf(lc), inputShapes: lc.inputs.map((t) => t?.shape), outputShapes: lc.outputShapes, limits };
  const g = convGeom(args);
  assert.equal(g.channelsLast, true);
  const dot: DotGeom = { N, C, F, P, hasBias: true, hasRes: false, hasScale: false, channelsLast: true, act: g.act };
  const bind = convBindings(g);
  const p32 = dotProgram(dot, v.choice, bind.names, bind.inputs, limits, v.name, 'Conv(pw)', 'pointwise');
  assert.match(p32.wgsl, /var<storage, read_write> out: array<f32>;/, 'the output is an array of scalars');
  const [got] = await runLayer(lc, storage, [withStorage(p32, storage)]);
  const y = epilogue(conv2d({ data: x, shape: [N, C, H, W] }, { data: w, shape: [F, C, 1, 1] }, b), 'Relu').data;
  const ref = toChannelsLast(y, N, F, P);
  const what = `${v.name}, N ${N}, ${storage}`;
  assert.equal(got.length, ref.length);
  // fp32 1e-4 * max(1, max|ref|) (layer-harness.ts assertClose: float32 sums of <= 40 terms, ~40 * 2^-24 of their
  // size); f16 adds the store's rounding to 11 significant bits (<= 2^-11 = 4.9e-4 of each value), so 1e-3. A value
  // at the wrong place is O(1) off, and an element never written stays NaN.
  const { maxDiff, maxRef, at } = maxAbsDiff(got, ref);
  const tol = (storage === 'f16' ? 1e-3 : 1e-4) * Math.max(1, maxRef);
  assert.ok(maxDiff <= tol, `${what}: max |diff| ${maxDiff} > ${tol} at ${at} (got ${got[at]}, expected ${ref[at]})`);
  if (storage === 'f16') return;
  const plainCase: LayerCase = { ...lc, attrs, outputShapes: [[N, F, H, W]] };
  const [plain] = await runLayer(plainCase, 'f32', [dotProgram({ ...dot, channelsLast: undefined }, v.choice, bind.names, bind.inputs, limits, v.name, 'Conv(pw)', 'pointwise')]);
  const moved = toChannelsLast(plain, N, F, P);
  let diff = 0;
  for (let i = 0; i < got.length; i++) if (!Object.is(got[i], moved[i])) diff++;
  assert.equal(diff, 0, `${what}: ${diff} values differ from the plain store's, transposed on the host`);
}

variants.forEach((v) => {
  test(`channels-last store, ${v.name}: fp32 batch ${v.N} and fp16 batch ${v.N} match the reference`, async () => {
    await check(v, 'f32', v.N);
    const device = await getDevice();
    assert.ok(device.features.has('shader-f16'), 'the test device has shader-f16 (lavapipe offers it)');
    await check(v, 'f16', v.N);
  });
});

test('the registry: the rule\'s kernel stores channels-last, f16 with subgroup matrices falls back to the plain f16 kernel, and what refuses it', () => {
  // A BlazeFace box head (88 -> 96 on 16x16) on an H100's limits, which the subgroup-matrix chooser covers.
  const h100 = { ...defaultLimits, maxComputeWorkgroupStorageSize: 49152, maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 1024 };
  const support = { subgroupSize: 32 };
  const shapes = [[1, 88, 16, 16], [96, 88, 1, 1], [96]];
  const plain = { name: 'head', op: 'Conv', domain: '', inputs: ['x', 'w', 'b'], outputs: ['y'], attrs: newAttrs(attrs) };
  const k0 = kernelFor(plain, shapes, [[1, 96, 16, 16]], h100, 'f16', { subgroupMatrix: support });
  assert.ok(k0.kind === 'programs' && k0.programs[0].name === 'Conv(pw smx)', 'the plain conv takes the subgroup-matrix kernel');
  const last = { ...plain, attrs: newAttrs({ ...attrs, channelsLast: 1 }) };
  const k1 = kernelFor(last, shapes, [[1, 16, 16, 96]], h100, 'f16', { subgroupMatrix: support });
  assert.ok(k1.kind === 'programs');
  const p = k1.kind === 'programs' ? k1.programs[0] : undefined;
  assert.equal(p?.name, 'Conv(pw)');
  assert.match(p?.wgsl ?? '', /^enable f16;/);
  assert.match(p?.wgsl ?? '', /var<storage, read_write> out: array<f16>;/);
  assert.match(p?.cacheKey ?? '', /nhwc/);
  // Every variant --tune may time is a plain-kernel one.
  assert.ok(k1.kind === 'programs' && k1.variants?.every((key) => !key.startsWith('smx:')));
  assert.ok(pointwiseVariants({ node: last, inputShapes: shapes, outputShapes: [[1, 16, 16, 96]], limits: h100 }, support)!.every((x) => x.dot));
  // The subgroup-matrix kernel itself refuses the store rather than dropping it.
  const dot: DotGeom = { N: 1, C: 88, F: 96, P: 256, hasBias: true, hasRes: false, channelsLast: true, act: { fn: '', key: '' } };
  assert.throws(() => pointwiseSubgroupMatrix(dot, { sgf: 1, sgp: 2, tm: 2, tn: 2, bk: 16 }, support, ['x', 'w', 'b'], [0, 1, 2], h100, 'c'), /no channels-last store/);
  // The output must be the channels-last shape.
  assert.throws(() => kernelFor(last, shapes, [[1, 96, 16, 16]], h100), (e) => e instanceof FcmError && /output/.test(e.message));
  // A 3x3 conv, a residual and the integer kernels refuse it.
  const k3 = { ...last, attrs: newAttrs({ ...attrs, kernel: [3, 3], pads: [1, 1, 1, 1], channelsLast: 1 }) };
  assert.throws(() => kernelFor(k3, [[1, 88, 16, 16], [96, 88, 3, 3], [96]], [[1, 16, 16, 96]], h100), (e) => e instanceof FcmError && e.kind === 'unsupported' && /channels-last store/.test(e.message));
  const withRes = { ...last, inputs: ['x', 'w', 'b', 'r'] };
  assert.throws(() => kernelFor(withRes, [...shapes, [1, 96, 16, 16]], [[1, 16, 16, 96]], h100), (e) => e instanceof FcmError && e.kind === 'unsupported' && /residual/.test(e.message));
  assert.throws(() => int8KernelFor({ node: last, inputs: [], outputs: [], limits: defaultLimits, dot4: false }), (e) => e instanceof FcmError && e.kind === 'unsupported' && /channels-last/.test(e.message));
  // The attribute is 1 or absent.
  const two = { ...plain, attrs: newAttrs({ ...attrs, channelsLast: 2 }) };
  assert.throws(() => kernelFor(two, shapes, [[1, 16, 16, 96]], h100), (e) => e instanceof FcmError && /channelsLast must be 1/.test(e.message));
});
