// The depthwise kernel with vector loads (kernels/depthwise.ts depthwiseVecRows), the registry's f16 depthwise kernel:
// the splits it takes (outputs per invocation rw 1, 2, 4, 8; input vectors vx 1, 2, 4 where they fit; output rows
// per invocation rh 2 and 4) on shapes
// that reach its edges (W not a multiple of 4 or odd, WO not a multiple of rw, stride 2, asymmetric and wide pads,
// 5x5 windows, dilation, batch > 1, no bias, the folded activations and residual), with f16 storage against a
// float64 reference; a wide split also with f32 storage.
//
// Tolerance of the f16 runs (as test/kernels/f16.test.ts). Inputs, weights, bias and residual are rounded to f16
// first and the float64 reference is computed from those rounded values, so the only differences are the kernel's
// own: its f32 sums of at most 25 products and the f32 epilogue, within the fp32 kernels' bound of
// 1e-4 * max(1, max |ref|) (layer-harness.ts assertClose says why), and the one rounding of each stored result to
// f16, at most half an ulp: 2^-11 |value| in f16's normal range, 2^-25 below it. So per element
// |got - ref| <= 2^-11 |ref| + 2^-25 + 1e-4 max(1, max |ref|). A wrong tap, vector component, padding vector or
// store offset is off by the size of a product (~0.1-1 here), far over it.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeDevice, getDevice, limitsOf } from './fused-harness.js';
import { conv2d, epilogue, randomF32, type Tensor4 } from './reference.js';
import { type LayerCase, assertClose, nodeOf, runLayer } from './layer-harness.js';
import { type DepthwiseVecTiles, depthwiseHalfTiles, depthwiseVecFits, depthwiseVecRows } from '../../kernels/depthwise.js';
import { convGeom, geomKey, isDepthwise } from '../../kernels/conv-common.js';
import { mobileNetV2, mobileNetV3Large } from '../../fixtures/zoo.js';
import { loadHw } from '../../src/planner/hw.js';
import { prepareForRun } from '../../src/pipeline/pipeline.js';
import { withStorage } from '../../kernels/f16.js';
import { kernelFor } from '../../kernels/registry.js';
import { type KernelLimits, defaultLimits } from '../../kernels/program.js';
import { roundHalf } from '../../src/runtime/half.js';
import { fullSweeps } from '../sweep.js';

after(closeDevice);

const half = 2 ** -11, halfSub = 2 ** -25;

function assertHalfClose(got: ArrayLike<number>, ref: ArrayLike<number>, what: string): void {
  assert.equal(got.length, ref.length, `${what}: length`);
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) maxRef = Math.max(maxRef, Math.abs(ref[i]));
  const atol = 1e-4 * Math.max(1, maxRef);
  let worst = -1, worstRatio = 0;
  for (let i = 0; i < ref.length; i++) {
    const r = Math.abs(got[i] - ref[i]) / (half * Math.abs(ref[i]) + halfSub + atol);
    const ratio = Number.isNaN(r) ? Infinity : r;
    if (ratio > worstRatio) { worst = i; worstRatio = ratio; }
  }
  assert.ok(worstRatio <= 1, `${what}: element ${worst}: got ${got[worst]}, expected ${ref[worst]} (${worstRatio.toFixed(2)}x the bound)`);
}

let seed = 900;
const rnd = (n: number, scale = 1) => Float32Array.from(randomF32(n, seed++), (v) => roundHalf(v * scale));

interface DwCase {
  n: number; c: number; h: number; w: number; k: number;
  stride?: number; pads?: [number, number, number, number]; dil?: number;
  bias?: boolean; act?: string; params?: number[]; residual?: boolean;
}

const cases: DwCase[] = [
  // W 10: vec2 loads only; WO 10 leaves a partial last group for rw 4 and 8.
  { n: 2, c: 3, h: 9, w: 10, k: 3, pads: [1, 1, 1, 1], act: 'Relu' },
  // Stride 2 on W 16 (vec4 loads), ReLU6 and the residual.
  { n: 1, c: 4, h: 8, w: 16, k: 3, stride: 2, pads: [1, 1, 1, 1], act: 'Clip', params: [0, 6], residual: true },
  // Odd W: scalar loads and stores only.
  { n: 2, c: 2, h: 7, w: 7, k: 3, pads: [1, 1, 1, 1], act: 'HardSwish', residual: true },
  // 5x5, pad 2: the span starts 2 elements into its first vector.
  { n: 1, c: 3, h: 10, w: 12, k: 5, pads: [2, 2, 2, 2], act: 'Clip', params: [0, 6] },
  // 5x5 stride 2, WO 6.
  { n: 1, c: 2, h: 11, w: 12, k: 5, stride: 2, pads: [2, 2, 2, 2], act: 'Relu', residual: true },
  // TF "SAME" stride 2 (pads only bottom and right), no bias.
  { n: 2, c: 2, h: 6, w: 8, k: 3, stride: 2, pads: [0, 0, 1, 1], bias: false },
  // Dilation 2 with pad 2; WO 14: vec2 stores and a partial last group for rw 4 and 8.
  { n: 1, c: 2, h: 9, w: 14, k: 3, pads: [2, 2, 2, 2], dil: 2, act: 'Relu' },
  // Wider pad on the left than the window needs on the right; W 4, one vector per row.
  { n: 1, c: 3, h: 4, w: 4, k: 3, pads: [1, 2, 1, 0] },
];

function layerOf(cc: DwCase): { lc: LayerCase; ref: Float64Array } {
  const s = cc.stride ?? 1, p = cc.pads ?? [0, 0, 0, 0], d = cc.dil ?? 1;
  const x = rnd(cc.n * cc.c * cc.h * cc.w);
  const w = rnd(cc.c * cc.k * cc.k, 0.5);
  const b = cc.bias === false ? undefined : rnd(cc.c);
  const y = conv2d({ data: x, shape: [cc.n, cc.c, cc.h, cc.w] }, { data: w, shape: [cc.c, 1, cc.k, cc.k] }, b,
    { strides: [s, s], pads: p, dilations: [d, d], group: cc.c });
  const res = cc.residual ? rnd(y.data.length) : undefined;
  epilogue(y as Tensor4, cc.act ?? '', cc.params, res);
  const attrs: Record<string, unknown> = { kernel: [cc.k, cc.k], strides: [s, s], pads: p, dilations: [d, d], group: cc.c };
  if (cc.act) { attrs.activation = cc.act; if (cc.params) attrs.activationParams = cc.params; }
  const lc: LayerCase = {
    op: 'Conv', attrs,
    inputs: [{ data: x, shape: [cc.n, cc.c, cc.h, cc.w] }, { data: w, shape: [cc.c, 1, cc.k, cc.k] }, b ? { data: b, shape: [cc.c] } : null,
      res ? { data: res, shape: [...y.shape] } : null],
    outputShapes: [[...y.shape]],
  };
  return { lc, ref: y.data as Float64Array };
}

const geomOf = (lc: LayerCase, limits: KernelLimits = defaultLimits) =>
  convGeom({ node: nodeOf(lc), inputShapes: lc.inputs.map((x) => x?.shape), outputShapes: lc.outputShapes, limits });

for (const cc of cases) {
  test(`f16 depthwise splits: ${JSON.stringify(cc)}`, async () => {
    const { lc, ref } = layerOf(cc);
    const limits = limitsOf(await getDevice());
    const g = geomOf(lc, limits);
    const splits: DepthwiseVecTiles[] = [];
    const widest = (rw: number) => [4, 2, 1].find((vx) => depthwiseVecFits(g, { rw, vx }))!;
    // Every row width, each with the widest input vector that fits, and every narrower input vector that fits with
    // the first row width it fits: so each case runs each rw (its stores, WO % rw) and each vx (its loads, pads and
    // strides within vectors) at least once. lavapipe compiles each (shape, split) for about a second: the other
    // pairs (an rw with a narrower vx than its widest) run with FCM_OPT_FULL_SWEEPS=1 (5x5 windows: rw 8 with the
    // widest only there too). Several output rows per invocation (rows shared between them, HO % rh != 0 in some
    // cases).
    const all: DepthwiseVecTiles[] = [];
    for (const rw of [1, 2, 4, 8]) for (const vx of [1, 2, 4]) if (depthwiseVecFits(g, { rw, vx }) && (cc.k < 5 || rw < 8 || vx === widest(8))) all.push({ rw, vx });
    if (fullSweeps) splits.push(...all);
    else {
      for (const rw of [1, 2, 4, 8]) splits.push({ rw, vx: widest(rw) });
      for (const vx of [1, 2, 4]) if (!splits.some((t) => t.vx === vx)) splits.push(...all.filter((t) => t.vx === vx).slice(0, 1));
    }
    splits.push({ rw: 4, vx: widest(4), rh: 2 });
    if (cc.k < 5) splits.push({ rw: 2, vx: widest(2), rh: 4 });
    // Each case takes vector loads somewhere, except the odd row.
    assert.equal(splits.some((t) => t.vx > 1), cc.w % 2 === 0, `splits of W ${cc.w}`);
    for (const t of splits) {
      const p = withStorage(depthwiseVecRows(g, t, limits, 'dw'), 'f16');
      const [got] = await runLayer(lc, 'f16', [p]);
      assertHalfClose(got, ref, `rw ${t.rw} vx ${t.vx} rh ${t.rh ?? 1}`);
    }
    // A wide split with f32 storage: the same WGSL before the f16 rewrite.
    const wide = { rw: 4, vx: widest(4), rh: 2 };
    const [got32] = await runLayer(lc, 'f32', [depthwiseVecRows(g, wide, limits, 'dw')]);
    assertClose(got32, ref, `f32 rw ${wide.rw} vx ${wide.vx} rh 2`);
  });
}

test('the registry runs f16 depthwise nodes on the vector-load kernel, fp32 and mixed-storage nodes as before', () => {
  const { lc } = layerOf({ n: 1, c: 4, h: 8, w: 16, k: 3, stride: 2, pads: [1, 1, 1, 1], act: 'Relu', residual: true });
  const node = nodeOf(lc), shapes = lc.inputs.map((x) => x?.shape);
  const g = geomOf(lc);
  const t = depthwiseHalfTiles(g);
  assert.deepEqual(t, { rw: 2, vx: 4, rh: 2 }, 'stride 2 to a row of 8: 2 outputs x 2 rows per invocation on vec4 loads');
  const f16 = kernelFor(node, shapes, lc.outputShapes, defaultLimits, 'f16');
  assert.ok(f16.kind === 'programs' && f16.programs.length === 1);
  assert.match(f16.programs[0].cacheKey, /^f16\|depthwise\|.*\|RW2V4H2\|/);
  const f32 = kernelFor(node, shapes, lc.outputShapes, defaultLimits, 'f32');
  assert.ok(f32.kind === 'programs' && /^depthwise\|.*\|RW\d\|/.test(f32.programs[0].cacheKey), 'fp32 keeps the scalar-load kernel');
  // One f32 tensor (the residual): the scalar-load kernel with per-binding storage.
  const mixed = kernelFor(node, shapes, lc.outputShapes, defaultLimits, (name) => (name === node.inputs[3] ? 'f32' : 'f16'));
  assert.ok(mixed.kind === 'programs' && /^f16\[hhhfh\]\|depthwise\|.*\|RW\d\|/.test(mixed.programs[0].cacheKey), mixed.kind === 'programs' ? mixed.programs[0].cacheKey : '');
});

test('depthwiseHalfTiles: the split measured fastest per MobileNetV2 depthwise row, where it fits', () => {
  const t = (W: number, WO: number, sw: number) => depthwiseHalfTiles({ W, WO, sw });
  // MobileNetV2's depthwise rows: 112, 56, 28 (stride 1, vec4, 2 rows), 14 (8 outputs, vec2), 7 (scalar); stride 2
  // from 112 (4 x 2 rows), 56 and 28 (2 x 2 rows), 14 (vec2).
  assert.deepEqual(t(112, 112, 1), { rw: 4, vx: 4, rh: 2 });
  assert.deepEqual(t(28, 28, 1), { rw: 4, vx: 4, rh: 2 });
  assert.deepEqual(t(14, 14, 1), { rw: 8, vx: 2 });
  assert.deepEqual(t(7, 7, 1), { rw: 4, vx: 1 });
  assert.deepEqual(t(112, 56, 2), { rw: 4, vx: 4, rh: 2 });
  assert.deepEqual(t(56, 28, 2), { rw: 2, vx: 4, rh: 2 });
  assert.deepEqual(t(28, 14, 2), { rw: 2, vx: 4, rh: 2 });
  assert.deepEqual(t(14, 7, 2), { rw: 4, vx: 2 });
  // No candidate fits: the fp32 rule's width, the widest load that fits (odd input rows at stride 2, a stride of 3).
  assert.deepEqual(t(15, 8, 2), { rw: 1, vx: 1 });
  assert.deepEqual(t(12, 4, 3), { rw: 1, vx: 1 });
  // Rows narrower than the candidate's outputs: a 1-wide row at stride 1 takes the fp32 rule.
  assert.deepEqual(t(1, 1, 1), { rw: 1, vx: 1 });
});

test('every split of every MobileNetV2 and V3 depthwise layer compiles in f16 (what bench/layer-kernels.ts times on the GPU)', async () => {
  const device = await getDevice();
  const limits = limitsOf(device);
  let n = 0;
  for (const model of [mobileNetV2(2), mobileNetV3Large(2)]) {
    const g = await prepareForRun(model, { plan: 'unfused', hw: loadHw('h100') });
    const shape = (x: string) => (x ? g.tensors.get(x)?.shape : undefined);
    const seen = new Set<string>();
    for (const node of g.nodes) {
      if (node.op !== 'Conv') continue;
      const geom = convGeom({ node, inputShapes: node.inputs.map(shape), outputShapes: node.outputs.map((y) => shape(y) ?? []), limits });
      if (!isDepthwise(geom) || seen.has(geomKey(geom))) continue;
      seen.add(geomKey(geom));
      for (const rw of [1, 2, 4, 8]) {
        for (const vx of [1, 2, 4]) {
          for (const rh of [1, 2]) {
            if (!depthwiseVecFits(geom, { rw, vx, rh })) continue;
            const p = withStorage(depthwiseVecRows(geom, { rw, vx, rh }, limits, node.name), 'f16');
            const info = await device.createShaderModule({ code: p.wgsl }).getCompilationInfo();
            const errs = info.messages.filter((m) => m.type === 'error');
            assert.equal(errs.length, 0, `${node.name} rw ${rw} vx ${vx} rh ${rh}: ${errs[0]?.message}`);
            n++;
          }
        }
      }
    }
  }
  assert.ok(n > 100, `${n} programs`);
});
