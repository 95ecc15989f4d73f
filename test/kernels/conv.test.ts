// Convolution kernels (kernels/conv2d.ts, depthwise.ts, pointwise.ts, grouped-conv.ts) against reference.ts's conv2d over shape
// sweeps: odd sizes, stride 2, channel counts that are not multiples of 4 or of the tiles, 1x1 spatial,
// batch > 1, every epilogue activation, bias and residual present and absent.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeDevice } from './fused-harness.js';
import { activation, conv2d, randomF32 } from './reference.js';
import { type LayerCase, assertClose, programsOf, runLayer } from './layer-harness.js';
import { fullSweeps, sampleSweep, sweepSeed } from '../sweep.js';
import { conv2d as conv2dKernel, filterBlock } from '../../kernels/conv2d.js';
import { defaultLimits } from '../../kernels/program.js';
import { newAttrs } from '../../src/graph/ir.js';

after(closeDevice);

interface ConvCase {
  n: number; c: number; h: number; w: number; f: number; k: [number, number];
  stride?: number; pads?: [number, number, number, number]; dilation?: number; group?: number;
  bias?: boolean; residual?: boolean; act?: string; params?: number[];
  /** Which kernel the registry must pick. */
  expect: 'pw' | 'dw' | 'grouped' | 'general';
}

let seed = 1;
async function check(cc: ConvCase): Promise<void> {
  const group = cc.group ?? 1;
  const s = cc.stride ?? 1, d = cc.dilation ?? 1, pads = cc.pads ?? [0, 0, 0, 0];
  const x = randomF32(cc.n * cc.c * cc.h * cc.w, seed++);
  const wt = randomF32(cc.f * (cc.c / group) * cc.k[0] * cc.k[1], seed++);
  const b = cc.bias ? randomF32(cc.f, seed++) : undefined;
  const ref = conv2d({ data: x, shape: [cc.n, cc.c, cc.h, cc.w] }, { data: wt, shape: [cc.f, cc.c / group, cc.k[0], cc.k[1]] }, b,
    { strides: [s, s], pads, dilations: [d, d], group });
  const res = cc.residual ? randomF32(ref.data.length, seed++) : undefined;
  const f = activation(cc.act ?? '', cc.params);
  for (let i = 0; i < ref.data.length; i++) ref.data[i] = f(ref.data[i]) + (res ? res[i] : 0);
  const attrs: Record<string, unknown> = { kernel: cc.k, strides: [s, s], pads, dilations: [d, d], group };
  if (cc.act) { attrs.activation = cc.act; if (cc.params) attrs.activationParams = cc.params; }
  const lc: LayerCase = {
    op: 'Conv', attrs,
    inputs: [
      { data: x, shape: [cc.n, cc.c, cc.h, cc.w] }, { data: wt, shape: [cc.f, cc.c / group, cc.k[0], cc.k[1]] },
      b ? { data: b, shape: [cc.f] } : null, res ? { data: res, shape: [...ref.shape] } : null,
    ],
    outputShapes: [[...ref.shape]],
  };
  const [p] = await programsOf(lc);
  const kind = p.cacheKey.startsWith('pointwise') ? 'pw' : p.cacheKey.startsWith('depthwise') ? 'dw' : p.cacheKey.startsWith('grouped') ? 'grouped' : 'general';
  assert.equal(kind, cc.expect, `kernel chosen for ${JSON.stringify(cc)}`);
  const [got] = await runLayer(lc);
  assertClose(got, ref.data, JSON.stringify(cc));
}

const cases: ConvCase[] = [
  // pointwise: odd sizes, channels not multiples of 4 or of the tile, batch 2, residual
  { n: 2, c: 5, h: 9, w: 7, f: 7, k: [1, 1], bias: true, residual: true, act: 'Clip', params: [0, 6], expect: 'pw' },
  // pointwise 1x1 spatial (squeeze-excite), more channels than one staging chunk
  { n: 2, c: 37, h: 1, w: 1, f: 19, k: [1, 1], bias: true, act: 'HardSigmoid', params: [1 / 6, 0.5], expect: 'pw' },
  // pointwise with register tiles RF=2, RP=4 and partial tiles at both edges
  { n: 1, c: 40, h: 13, w: 11, f: 70, k: [1, 1], act: 'HardSwish', expect: 'pw' },
  { n: 1, c: 3, h: 2, w: 3, f: 600, k: [1, 1], bias: true, act: 'Sigmoid', expect: 'pw' },
  // pointwise vec4 kernel (P % 4 == 0, enough threads): one filter per thread, and 8 filters per thread
  { n: 2, c: 6, h: 64, w: 64, f: 8, k: [1, 1], bias: true, residual: true, act: 'Relu', expect: 'pw' },
  { n: 1, c: 5, h: 128, w: 128, f: 64, k: [1, 1], bias: true, act: 'HardSwish', expect: 'pw' },
  // vec4 kernel with weights staged in workgroup memory (4 filters per thread; fewer than 8 channels, else gemm)
  { n: 2, c: 6, h: 64, w: 64, f: 64, k: [1, 1], bias: true, residual: true, act: 'Clip', params: [0, 6], expect: 'pw' },
  // gemm through the registry, with 4 and 2 K slices: in place of vec4 with 2 filters per thread (64 channels), and of
  // split-K with one thread per output (P % 4 != 0, 70 filters: three filter tiles, the last partial; 20 channels:
  // one 16-channel step per slice, the second slice's partial)
  { n: 1, c: 64, h: 64, w: 64, f: 64, k: [1, 1], bias: true, residual: true, act: 'Clip', params: [0, 6], expect: 'pw' },
  { n: 1, c: 20, h: 45, w: 45, f: 70, k: [1, 1], bias: true, act: 'HardSwish', expect: 'pw' },
  // pointwise split-K with 16 threads per output, channel-major (1x1 spatial, squeeze-excite / GEMV shape)
  { n: 2, c: 300, h: 1, w: 1, f: 19, k: [1, 1], bias: true, act: 'Relu', expect: 'pw' },
  // depthwise: K 3/5/7, stride 1/2, symmetric and asymmetric pads, dilation
  { n: 1, c: 6, h: 9, w: 9, f: 6, k: [3, 3], pads: [1, 1, 1, 1], group: 6, bias: true, act: 'Relu', expect: 'dw' },
  { n: 2, c: 5, h: 11, w: 8, f: 5, k: [3, 3], stride: 2, pads: [0, 0, 1, 1], group: 5, bias: true, residual: false, act: 'Clip', params: [0, 6], expect: 'dw' },
  { n: 1, c: 7, h: 13, w: 12, f: 7, k: [5, 5], stride: 2, pads: [2, 2, 2, 2], group: 7, act: 'SiLU', expect: 'dw' },
  { n: 1, c: 3, h: 15, w: 14, f: 3, k: [7, 7], pads: [6, 6, 6, 6], dilation: 2, group: 3, bias: true, residual: true, act: 'LeakyRelu', params: [0.1], expect: 'dw' },
  { n: 2, c: 9, h: 1, w: 1, f: 9, k: [3, 3], pads: [1, 1, 1, 1], group: 9, act: 'Tanh', expect: 'dw' },
  // general: stems (3 input channels, stride 2), strided 1x1, no padding, one input channel per group with 2 filters
  // each; grouped (RegNet-like, 1 < group < C: test/kernels/grouped-conv.test.ts has its sweep)
  { n: 2, c: 3, h: 17, w: 15, f: 8, k: [3, 3], stride: 2, pads: [1, 1, 1, 1], bias: true, act: 'Clip', params: [0, 6], expect: 'general' },
  { n: 1, c: 8, h: 9, w: 10, f: 12, k: [3, 3], pads: [1, 1, 1, 1], group: 4, bias: true, residual: true, act: 'Relu', expect: 'grouped' },
  { n: 1, c: 6, h: 9, w: 9, f: 5, k: [1, 1], stride: 2, expect: 'general' },
  { n: 1, c: 4, h: 8, w: 7, f: 6, k: [3, 2], stride: 1, expect: 'general' },
  { n: 1, c: 4, h: 6, w: 6, f: 8, k: [3, 3], pads: [1, 1, 1, 1], group: 4, expect: 'general' },
  // the staged form (kernels/conv2d.ts stagedTiles; test/kernels/conv-staged.test.ts forces its tiles) as the registry
  // picks it: 32 filters with a residual, dilation and asymmetric pads; 12 filters at batch 3 with positions not a
  // multiple of the workgroup
  { n: 1, c: 3, h: 13, w: 11, f: 32, k: [3, 3], stride: 2, pads: [0, 1, 1, 0], dilation: 2, bias: true, residual: true, act: 'HardSwish', expect: 'general' },
  { n: 3, c: 2, h: 7, w: 9, f: 12, k: [5, 3], pads: [2, 1, 2, 1], act: 'Relu', expect: 'general' },
  // the filter-blocked form: 10 filters (no multiple of 4 divides them), 2 per invocation
  { n: 2, c: 3, h: 11, w: 9, f: 10, k: [3, 3], stride: 2, pads: [1, 1, 1, 1], bias: true, act: 'Relu', expect: 'general' },
];

for (const c of cases) test(`Conv ${c.expect} ${JSON.stringify(c)}`, async () => { await check(c); });

test('general conv: filters per invocation from the window size, the filter count and the positions to fill', () => {
  const geom = (n: number, c: number, f: number, k: number, ho: number, group = 1) =>
    ({ N: n, C: c, H: 2 * ho, W: 2 * ho, F: f, HO: ho, WO: ho, kh: k, kw: k, sh: 2, sw: 2, pt: 1, pl: 1, pb: 1, pr: 1, dh: 1, dw: 1, group, hasBias: true, hasRes: false, hasScale: false, act: { fn: '', key: 'none' } }) as unknown as Parameters<typeof filterBlock>[0];
  // A stem at batch 1 (112 x 112 positions): 4 filters per invocation keep 65536+ invocations; at batch 32, 16.
  assert.equal(filterBlock(geom(1, 3, 32, 3, 112)), 4);
  assert.equal(filterBlock(geom(32, 3, 32, 3, 112)), 16);
  // ShuffleNetV2's 24 filters: 8 divides them, 4 fills the GPU at batch 1.
  assert.equal(filterBlock(geom(1, 3, 24, 3, 112)), 4);
  // Too few positions for any block to fill the GPU: the smallest block that divides F.
  assert.equal(filterBlock(geom(1, 3, 12, 3, 8)), 2);
  // Per-element form: an odd filter count, a grouped conv, a window over many channels (64 x 3 x 3 > 160).
  assert.equal(filterBlock(geom(1, 3, 5, 3, 112)), 1);
  assert.equal(filterBlock(geom(1, 4, 8, 3, 112, 2)), 1);
  assert.equal(filterBlock(geom(1, 64, 64, 3, 56)), 1);
  // The program says which form it is: 32 filters take the staged form, 10 the filter-blocked one.
  const stem = (f: number) => {
    const node = { name: 'stem', op: 'Conv', domain: '', inputs: ['x', 'w', 'b'], outputs: ['y'], attrs: newAttrs({ kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 }) };
    return conv2dKernel({ node, inputShapes: [[1, 3, 224, 224], [f, 3, 3, 3], [f]], outputShapes: [[1, f, 112, 112]], limits: defaultLimits });
  };
  assert.equal(stem(32).name, 'Conv(3x3 s2 g1 staged fb4)');
  assert.ok(stem(32).cacheKey.startsWith('conv2d-staged'));
  assert.equal(stem(10).name, 'Conv(3x3 s2 g1 fb2)');
  assert.ok(stem(10).cacheKey.startsWith('conv2d-fb'));
});

test('pointwise fits a small workgroup storage limit by shrinking its channel chunk', async () => {
  const { pointwise } = await import('../../kernels/pointwise.js');
  const { newAttrs } = await import('../../src/graph/ir.js');
  const node = { name: 'pw', op: 'Conv', inputs: ['x', 'w'], attrs: newAttrs({ kernel: [1, 1] }) };
  const p = pointwise({ node, inputShapes: [[1, 600, 1, 1], [600, 600, 1, 1]], outputShapes: [[1, 600, 1, 1]], limits: { maxComputeWorkgroupStorageSize: 4096, maxComputeInvocationsPerWorkgroup: 256 } });
  assert.ok(p.workgroupStorageBytes <= 4096, `${p.workgroupStorageBytes} bytes`);
});

test('a conv whose weights do not match its input is refused with the node named', async () => {
  await assert.rejects(programsOf({
    op: 'Conv', attrs: { kernel: [3, 3] },
    inputs: [{ data: new Float32Array(2 * 4 * 4), shape: [1, 2, 4, 4] }, { data: new Float32Array(4 * 3 * 9), shape: [4, 3, 3, 3] }],
    outputShapes: [[1, 4, 2, 2]],
  }), /conv_test.*weights \[4,3,3,3\] do not match 2 input channels/);
});

test('pointwise kernel choice: the cases above reach the gemm, vec4 (staged and global weights) and split-K kernels', async () => {
  const { chooseDot } = await import('../../kernels/pointwise.js');
  const limits = { maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256 };
  const g = (N: number, C: number, F: number, P: number) => ({ N, C, F, P, hasBias: true, hasRes: false, act: { fn: '', key: '' } });
  assert.deepEqual(chooseDot(g(2, 6, 64, 4096), limits), { kind: 'vec4', rf: 4, threads: 128 });
  assert.deepEqual(chooseDot(g(1, 64, 64, 4096), limits), { kind: 'gemm', tiles: { tx: 8, ty: 8, rf: 4, ks: 4 } });
  assert.deepEqual(chooseDot(g(1, 20, 70, 2025), limits), { kind: 'gemm', tiles: { tx: 8, ty: 8, rf: 4, ks: 2 } });
  assert.deepEqual(chooseDot(g(1, 5, 64, 16384), limits), { kind: 'vec4', rf: 8, threads: 128 });
  assert.deepEqual(chooseDot(g(2, 6, 8, 4096), limits), { kind: 'vec4', rf: 1, threads: 128 });
  assert.deepEqual(chooseDot(g(2, 300, 19, 1), limits), { kind: 'splitK', ks: 32, nb: 2 });
  // Odd spatial sizes cannot use vec4 loads.
  assert.equal(chooseDot(g(1, 40, 70, 143), limits).kind, 'splitK');
});

// gemm (kernels/pointwise.ts dotGemm) at every tile shape it can take, on small layers with partial tiles in both
// positions and filters, channels not a multiple of the 16-channel step or of 4, images sharing a tile (P % 4 != 0:
// scalar loads) and not (P % 4 == 0: vec4), each epilogue input. The registry takes gemm only for large layers
// (gemmTiles), too slow for lavapipe, so the programs are built here directly. Each tile runs on 1 of the 5
// layers (a seeded sample, test/sweep.ts), 18 of the 24 tiles by default (below); FCM_OPT_FULL_SWEEPS=1 runs all
// tiles on all layers.
test('pointwise gemm kernel matches the reference at each tile shape', async () => {
  const { dotGemm } = await import('../../kernels/pointwise.js');
  const { getDevice, limitsOf, runProgram } = await import('./fused-harness.js');
  const device = await getDevice();
  const limits = limitsOf(device);
  const layers = [
    { n: 2, c: 21, p: [5, 7], f: 37, bias: true, res: true, scale: false, act: 'Clip', params: [0, 6] },
    { n: 3, c: 16, p: [4, 6], f: 24, bias: false, res: false, scale: true, act: 'HardSwish' },
    { n: 1, c: 35, p: [8, 8], f: 70, bias: true, res: true, scale: true, act: 'Relu' },
    { n: 2, c: 9, p: [3, 3], f: 8, bias: true, res: false, scale: false, act: '' },
    // Several steps per K slice, every slice in range (100 channels: 7 steps of 16, the last partial).
    { n: 1, c: 100, p: [6, 6], f: 20, bias: true, res: true, scale: false, act: 'Relu' },
  ];
  // K slices (ks) too: 3 leaves whole slices past C on the narrow layers, whose loads are zeros.
  const tiles = [{ tx: 16, ty: 16, rf: 4 }, { tx: 4, ty: 16, rf: 4 }, { tx: 32, ty: 4, rf: 4 }, { tx: 8, ty: 8, rf: 8 }, { tx: 2, ty: 2, rf: 4 },
    { tx: 4, ty: 16, rf: 4, ks: 4 }, { tx: 2, ty: 2, rf: 4, ks: 3 }, { tx: 8, ty: 8, rf: 8, ks: 2 },
    // Two position vec4s per thread (8 positions x RF filters), alone and with K slices.
    { tx: 8, ty: 8, rf: 8, px: 2 }, { tx: 2, ty: 4, rf: 4, px: 2 }, { tx: 4, ty: 4, rf: 8, px: 2, ks: 2 }, { tx: 2, ty: 2, rf: 4, px: 3, ks: 3 },
    // Other channel steps (bk): 32 (100 channels: 4 steps, the last partial), 8 with K slices, 64 with px 2.
    { tx: 8, ty: 8, rf: 4, bk: 32 }, { tx: 2, ty: 2, rf: 4, bk: 8, ks: 3 }, { tx: 4, ty: 4, rf: 8, bk: 64, px: 2 },
    // The unrolled WGSL (un), with partial loads (2 x 2 threads), K slices, px 2, bk.
    { tx: 16, ty: 16, rf: 4, un: true }, { tx: 2, ty: 2, rf: 4, ks: 3, un: true }, { tx: 8, ty: 8, rf: 8, px: 2, un: true },
    { tx: 4, ty: 16, rf: 4, ks: 2, un: true }, { tx: 2, ty: 4, rf: 4, px: 2, un: true },
    { tx: 4, ty: 4, rf: 8, px: 2, ks: 2, bk: 8, un: true }, { tx: 8, ty: 8, rf: 4, bk: 32, un: true },
    // K-slice sums through xs (it holds them) and through their own buffer (bk 4: it does not).
    { tx: 4, ty: 4, rf: 4, ks: 4, un: true }, { tx: 2, ty: 8, rf: 8, ks: 2, bk: 4, un: true }];
  const { activationFn } = await import('../../kernels/shader.js');
  // Sampled: each tile on 1 layer (LLVM on lavapipe takes 5 to 20 s per rolled program, about 40 s per unrolled one);
  // the 15 rolled tiles meet each of the 5 layers 3 times, the 9 unrolled ones meet all 5. The default seed (908) keeps
  // {tx 2, ty 2, rf 4, bk 8, ks 3} on the 21-channel layer, where a dropped last K slice fails (TESTING.md).
  const rolled = tiles.flatMap((t, i) => (t.un ? [] : [i])), unrolled = tiles.flatMap((t, i) => (t.un ? [i] : []));
  const pick: number[][] = [];
  sampleSweep(rolled.length, layers.length, 1, sweepSeed(908)).forEach((ls, k) => { pick[rolled[k]] = ls; });
  sampleSweep(unrolled.length, layers.length, 1, sweepSeed(900) + 1).forEach((ls, k) => { pick[unrolled[k]] = ls; });
  // Six tiles run only with FCM_OPT_FULL_SWEEPS=1: each repeats parameter values the other 18 run (which still hold
  // every tx x ty shape but 2x4, rf 4 and 8, ks 1 to 4, px 1 to 3, bk 4 to 64, rolled and unrolled, partial loads,
  // K-slice sums through xs and their own buffer, and meet each of the 5 layers 3 or 4 times), and they are the
  // slowest to compile: 9 to 26 s of LLVM each on lavapipe, 86 s in all. Rolled {2,2,4,ks 3} (bk 8 with ks 3 stays),
  // {2,4,4,px 2} and {4,4,8,px 2,ks 2} (px 2 stays on 8x8, px with ks as px 3 ks 3); unrolled {8,8,8,px 2},
  // {4,16,4,ks 2} and {2,4,4,px 2} (px 2 with ks 2 and bk 8 stays, as do ks 3 on 2x2 threads, ks 4, bk 4, bk 32).
  const fullSweepOnly = new Set([6, 9, 10, 17, 18, 19]);
  let s = 900;
  for (const [li, L] of layers.entries()) {
    const P = L.p[0] * L.p[1];
    const x = randomF32(L.n * L.c * P, s++), wt = randomF32(L.f * L.c, s++), b = randomF32(L.f, s++);
    const res = randomF32(L.n * L.f * P, s++), sc = randomF32(L.n * L.c, s++);
    const xs = L.scale ? x.map((v, i) => v * sc[Math.floor(i / (L.c * P)) * L.c + Math.floor(i / P) % L.c]) : x;
    const ref = conv2d({ data: xs, shape: [L.n, L.c, L.p[0], L.p[1]] }, { data: wt, shape: [L.f, L.c, 1, 1] }, L.bias ? b : undefined,
      { strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 });
    const fa = activation(L.act, L.params);
    for (let i = 0; i < ref.data.length; i++) ref.data[i] = fa(ref.data[i]) + (L.res ? res[i] : 0);
    const names = ['x', 'w'], inputs = [x, wt];
    if (L.bias) { names.push('b'); inputs.push(b); }
    if (L.res) { names.push('res'); inputs.push(res); }
    if (L.scale) { names.push('sc'); inputs.push(sc); }
    const act = { fn: activationFn('act', L.act, L.params ?? [], 'test'), key: L.act };
    const geom = { N: L.n, C: L.c, F: L.f, P, hasBias: L.bias, hasRes: L.res, hasScale: L.scale, act };
    for (const [ti, t] of tiles.entries()) {
      if (!pick[ti].includes(li) || (!fullSweeps && fullSweepOnly.has(ti))) continue;
      const p = dotGemm(geom, t, names, names.map((_, k) => k), limits, 'test', 'Conv(pw)', 'pointwise');
      const got = await runProgram(device, p, inputs, ref.data.length);
      assertClose(got, ref.data, `${JSON.stringify(L)} tiles ${JSON.stringify(t)}`);
    }
  }
});

// The vec4 kernel at 1, 4, 8 and 16 filters per thread (4+: weights staged in chunks of 32 channels): 40 channels (a
// whole chunk and a partial one), two images, P % 4 == 0, every epilogue input but the scale; 16 filters per thread
// over 32 filters is two filter blocks.
test('pointwise vec4 kernel matches the reference at 1, 4, 8 and 16 filters per thread', async () => {
  const { dotVec4 } = await import('../../kernels/pointwise.js');
  const { getDevice, limitsOf, runProgram } = await import('./fused-harness.js');
  const { activationFn } = await import('../../kernels/shader.js');
  const device = await getDevice();
  const L = { n: 2, c: 40, h: 4, w: 6, f: 32 };
  const P = L.h * L.w;
  const x = randomF32(L.n * L.c * P, 960), wt = randomF32(L.f * L.c, 961), b = randomF32(L.f, 962), res = randomF32(L.n * L.f * P, 963);
  const ref = conv2d({ data: x, shape: [L.n, L.c, L.h, L.w] }, { data: wt, shape: [L.f, L.c, 1, 1] }, b, { strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 });
  const fa = activation('Clip', [0, 6]);
  for (let i = 0; i < ref.data.length; i++) ref.data[i] = fa(ref.data[i]) + res[i];
  const geom = { N: L.n, C: L.c, F: L.f, P, hasBias: true, hasRes: true, act: { fn: activationFn('act', 'Clip', [0, 6], 'test'), key: 'Clip' } };
  for (const rf of [1, 4, 8, 16]) {
    const p = dotVec4(geom, rf, 32, ['x', 'w', 'b', 'res'], [0, 1, 2, 3], limitsOf(device), 'test', 'Conv(pw)', 'pointwise');
    assert.match(p.cacheKey, new RegExp(`RF${rf}T32`));
    assertClose(await runProgram(device, p, [x, wt, b, res], ref.data.length), ref.data, `rf ${rf}`);
  }
});

test('pointwise gemm: tiles it cannot build are refused with the node named and the bad value', async () => {
  const { dotGemm } = await import('../../kernels/pointwise.js');
  const limits = { maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupSizeX: 256, maxComputeWorkgroupsPerDimension: 65535 };
  const geom = { N: 1, C: 32, F: 32, P: 64, hasBias: false, hasRes: false, act: { fn: 'fn act(v: f32) -> f32 { return v; }', key: '' } };
  const build = (t: Record<string, number>) => () => dotGemm(geom, { tx: 8, ty: 8, rf: 4, ...t }, ['x', 'w'], [0, 1], limits, "node 'conv_7'", 'Conv(pw)', 'pointwise');
  assert.throws(build({ bk: 6 }), /conv_7.*channels per step must be a positive multiple of 4, got 6/);
  assert.throws(build({ bk: 0 }), /got 0/);
  assert.throws(build({ ks: 0 }), /K slices must be a positive integer, got 0/);
  assert.throws(build({ px: 1.5 }), /position vec4s per thread must be a positive integer, got 1.5/);
  assert.throws(build({ rf: 6 }), /multiple of 4 filters per thread, got 6/);
  // 128 channels per step staged for 64 positions and 64 filters: 64 KiB of workgroup storage (the limit here is 32).
  assert.throws(build({ tx: 16, ty: 16, bk: 128 }), /65536 bytes of workgroup storage, the device allows 32768/);
  assert.ok(build({ bk: 32 })().wgsl.includes('const BK: u32 = 32u;'));
});

test('pointwise kernel choice: gemm except vec4 on large maps and split-K on small outputs; K slices where tiles are few', async () => {
  const { chooseDot } = await import('../../kernels/pointwise.js');
  const limits = { maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256 };
  const g = (N: number, C: number, F: number, P: number) => ({ N, C, F, P, hasBias: true, hasRes: false, act: { fn: '', key: '' } });
  // MobileNetV2 at batch 32: 112x112 16 -> 96 stays on vec4 with 8 filters per thread; 7x7 320 -> 1280 has 500
  // tiles of 64 x 64 and takes them.
  assert.deepEqual(chooseDot(g(32, 16, 96, 12544), limits), { kind: 'vec4', rf: 8, threads: 128 });
  assert.deepEqual(chooseDot(g(32, 320, 1280, 49), limits), { kind: 'gemm', tiles: { tx: 16, ty: 16, rf: 4 } });
  // Batch 32, 14x14 64 -> 384: vec4 with 8 filters per thread has 75264 threads and stays; at batch 8 (28x28
  // 32 -> 192, 37632 threads) gemm takes it.
  assert.deepEqual(chooseDot(g(32, 64, 384, 196), limits), { kind: 'vec4', rf: 8, threads: 64 });
  assert.equal(chooseDot(g(8, 32, 192, 784), limits).kind, 'gemm');
  // Batch 8, 14x14 384 -> 96: 147 tiles of 32 x 32, 4 K slices (9408 threads without).
  assert.deepEqual(chooseDot(g(8, 384, 96, 196), limits), { kind: 'gemm', tiles: { tx: 8, ty: 8, rf: 4, ks: 4 } });
  // Batch 1, 56x56 144 -> 24 (vec4 with one filter per thread before).
  assert.deepEqual(chooseDot(g(1, 144, 24, 3136), limits), { kind: 'gemm', tiles: { tx: 8, ty: 8, rf: 4, ks: 4 } });
  // 7x7 960 -> 160: at batch 8 (62720 outputs) 16-position tiles with 8 slices; at batch 1 split K proper stays.
  assert.deepEqual(chooseDot(g(8, 960, 160, 49), limits), { kind: 'gemm', tiles: { tx: 4, ty: 8, rf: 4, ks: 8 } });
  assert.equal(chooseDot(g(1, 960, 160, 49), limits).kind, 'splitK');
  // No more slices than 16-channel steps: 24 channels take 2.
  assert.deepEqual(chooseDot(g(1, 24, 144, 3136), limits), { kind: 'gemm', tiles: { tx: 8, ty: 8, rf: 4, ks: 2 } });
  // Slices within the workgroup storage: lavapipe-sized 16 KiB allows 2 of 4x8 where 32 KiB allows 8.
  assert.deepEqual(chooseDot(g(8, 960, 160, 49), { ...limits, maxComputeWorkgroupStorageSize: 16384 }), { kind: 'gemm', tiles: { tx: 4, ty: 8, rf: 4, ks: 4 } });
  // A small layer with one thread per output (12 channels, 8x8 at batch 2) has too few tiles for gemm.
  assert.deepEqual(chooseDot(g(2, 12, 24, 64), limits), { kind: 'splitK', ks: 1 });
  // Without gemm (bench/layer-kernels.ts's baseline).
  assert.deepEqual(chooseDot(g(32, 320, 1280, 49), limits, { gemm: false }), { kind: 'splitK', ks: 1 });
});

// depthwiseRows at every row width: rows shorter than, equal to and not a multiple of RW, stride 2, dilation,
// asymmetric pads, vec4 stores (RW 4, WO % 4 == 0) and scalar ones, bias, residual. Each row width runs on 2 of the 4
// layers (seeded sample, test/sweep.ts); FCM_OPT_FULL_SWEEPS=1 runs all of them.
test('depthwise kernel matches the reference at 1, 2, 3, 4 and 8 outputs per invocation', async () => {
  const { depthwiseRows } = await import('../../kernels/depthwise.js');
  const { getDevice, limitsOf, runProgram } = await import('./fused-harness.js');
  const { activationFn } = await import('../../kernels/shader.js');
  const device = await getDevice();
  const limits = limitsOf(device);
  const layers = [
    { n: 2, c: 5, h: 9, w: 16, k: 3, s: 1, d: 1, pads: [1, 1, 1, 1], bias: true, res: true, act: 'Clip', params: [0, 6] },
    { n: 1, c: 3, h: 11, w: 13, k: 3, s: 2, d: 1, pads: [0, 0, 1, 1], bias: false, res: false, act: 'Relu' },
    { n: 1, c: 4, h: 10, w: 9, k: 5, s: 1, d: 2, pads: [4, 3, 2, 4], bias: true, res: true, act: '' },
    { n: 2, c: 2, h: 3, w: 3, k: 3, s: 1, d: 1, pads: [1, 1, 1, 1], bias: true, res: false, act: 'HardSwish' },
  ];
  const rws = [1, 2, 3, 4, 8];
  const pick = sampleSweep(rws.length, layers.length, 2, sweepSeed(1200));
  let s = 1200;
  for (const [li, L] of layers.entries()) {
    const x = randomF32(L.n * L.c * L.h * L.w, s++), wt = randomF32(L.c * L.k * L.k, s++), b = randomF32(L.c, s++);
    const ref = conv2d({ data: x, shape: [L.n, L.c, L.h, L.w] }, { data: wt, shape: [L.c, 1, L.k, L.k] }, L.bias ? b : undefined,
      { strides: [L.s, L.s], pads: L.pads as [number, number, number, number], dilations: [L.d, L.d], group: L.c });
    const res = randomF32(ref.data.length, s++);
    const fa = activation(L.act, L.params);
    for (let i = 0; i < ref.data.length; i++) ref.data[i] = fa(ref.data[i]) + (L.res ? res[i] : 0);
    const [, , HO, WO] = ref.shape;
    const g = {
      N: L.n, C: L.c, H: L.h, W: L.w, F: L.c, HO, WO, kh: L.k, kw: L.k, sh: L.s, sw: L.s,
      pt: L.pads[0], pl: L.pads[1], pb: L.pads[2], pr: L.pads[3], dh: L.d, dw: L.d, group: L.c,
      hasBias: L.bias, hasRes: L.res, hasScale: false, act: { fn: activationFn('act', L.act, L.params ?? [], 'test'), key: L.act },
    };
    const inputs = [x, wt, ...(L.bias ? [b] : []), ...(L.res ? [res] : [])];
    for (const [ri, rw] of rws.entries()) {
      if (!pick[ri].includes(li)) continue;
      const got = await runProgram(device, depthwiseRows(g, rw, limits, 'test'), inputs, ref.data.length);
      assertClose(got, ref.data, `${JSON.stringify(L)} RW ${rw}`);
    }
  }
});
