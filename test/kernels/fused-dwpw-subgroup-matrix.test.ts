// The f16 DW-PW FCM on subgroup matrices (kernels/fused-dwpw-subgroup-matrix.ts): its emulated form run on lavapipe
// against a float64 reference of the two layers, the registry's choice (kernels/registry.ts), and its program
// description. lavapipe has no subgroup matrices: the emulated form is the same WGSL with the matrix operations written
// out (subgroup-matrix.test.ts); subgroup-matrix-wgsl.test.ts compiles the real form.
//
// Tolerance: inputs are rounded to f16 first. The reference computes the depthwise layer in float64, applies its
// epilogue and rounds to f16, as the unfused f16 layer stores it; the kernel sums the same taps in f32, so an
// intermediate may round to the other f16 neighbour: at most 2^-10 of its magnitude. The pointwise sum is then bounded
// as in subgroup-matrix.test.ts (2^-11 |ref| + 2^-25 + 1e-4 max(1, max |ref|)) plus 2^-10 sum_c |w2 mid| for those
// intermediates. A wrong offset, tap, step or tile (or an unwritten element: outputs start as NaN) is off by O(1).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeDevice } from './fused-harness.js';
import { runEmulated } from './smx-emulated.js';
import { activation, randomF32 } from './reference.js';
import { chooseSmxDwPwTiles, fusedDwPwSubgroupMatrix } from '../../kernels/fused-dwpw-subgroup-matrix.js';
import { type SmxTiles, smxStorage } from '../../kernels/pointwise-subgroup-matrix.js';
import { kernelFor } from '../../kernels/registry.js';
import { type KernelLimits, defaultLimits } from '../../kernels/program.js';
import { type Node, fcmDomain, newAttrs } from '../../src/graph/ir.js';
import { roundHalf } from '../../src/runtime/half.js';

after(closeDevice);

const lavapipe: KernelLimits = { ...defaultLimits, maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256 };
const h100: Required<KernelLimits> = { ...defaultLimits, maxComputeWorkgroupStorageSize: 49152, maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 1024 };

interface Case {
  n: number; c: number; h: number; w: number; f: number; k: number; stride: number; pads: [number, number, number, number]; dilation?: number;
  bias1?: boolean; bias2?: boolean; residual?: boolean; act1?: [string, number[]]; act2?: [string, number[]]; post?: string;
}

const outSize = (c: Case) => {
  const d = c.dilation ?? 1, e = (c.k - 1) * d + 1;
  return [Math.floor((c.h + c.pads[0] + c.pads[2] - e) / c.stride) + 1, Math.floor((c.w + c.pads[1] + c.pads[3] - e) / c.stride) + 1];
};

function nodeOf(c: Case): { node: Node; inputShapes: (number[] | undefined)[]; outputShapes: number[][] } {
  const [ho, wo] = outSize(c);
  const d = c.dilation ?? 1;
  const attrs = newAttrs({ kernel: [c.k, c.k], strides: [c.stride, c.stride], pads: c.pads, dilations: [d, d] });
  if (c.act1) { attrs.activation1 = c.act1[0]; attrs.activationParams1 = c.act1[1]; }
  if (c.act2) { attrs.activation2 = c.act2[0]; attrs.activationParams2 = c.act2[1]; }
  if (c.post) attrs.activationPost = c.post;
  const node: Node = {
    name: 'dwpw', op: 'FusedDwPw', domain: fcmDomain, attrs, outputs: ['y'],
    inputs: ['x', 'w1', c.bias1 ? 'b1' : '', 'w2', c.bias2 ? 'b2' : '', c.residual ? 'r' : ''],
  };
  return {
    node,
    inputShapes: [[c.n, c.c, c.h, c.w], [c.c, 1, c.k, c.k], c.bias1 ? [c.c] : undefined, [c.f, c.c, 1, 1], c.bias2 ? [c.f] : undefined, c.residual ? [c.n, c.f, ho, wo] : undefined],
    outputShapes: [[c.n, c.f, ho, wo]],
  };
}

/** The two layers in float64, the intermediate rounded to f16; with each output's sum of |w2 mid|. */
function reference(c: Case, x: Float32Array, w1: Float32Array, b1: Float32Array, w2: Float32Array, b2: Float32Array, res: Float32Array) {
  const [ho, wo] = outSize(c);
  const d = c.dilation ?? 1, P = ho * wo;
  const act1 = activation(...(c.act1 ?? ['', []])), act2 = activation(...(c.act2 ?? ['', []])), post = activation(c.post ?? '', []);
  const mid = new Float64Array(c.n * c.c * P);
  for (let n = 0; n < c.n; n++) for (let ch = 0; ch < c.c; ch++) for (let oy = 0; oy < ho; oy++) for (let ox = 0; ox < wo; ox++) {
    let s = 0;
    for (let kh = 0; kh < c.k; kh++) for (let kw = 0; kw < c.k; kw++) {
      const iy = oy * c.stride - c.pads[0] + kh * d, ix = ox * c.stride - c.pads[1] + kw * d;
      if (iy >= 0 && iy < c.h && ix >= 0 && ix < c.w) s += x[((n * c.c + ch) * c.h + iy) * c.w + ix] * w1[(ch * c.k + kh) * c.k + kw];
    }
    mid[(n * c.c + ch) * P + oy * wo + ox] = roundHalf(act1(s + (c.bias1 ? b1[ch] : 0)));
  }
  const y = new Float64Array(c.n * c.f * P), sumAbs = new Float64Array(y.length);
  for (let n = 0; n < c.n; n++) for (let f = 0; f < c.f; f++) for (let p = 0; p < P; p++) {
    let s = 0, a = 0;
    for (let ch = 0; ch < c.c; ch++) {
      const t = w2[f * c.c + ch] * mid[(n * c.c + ch) * P + p];
      s += t;
      a += Math.abs(t);
    }
    const o = (n * c.f + f) * P + p, v = act2(s + (c.bias2 ? b2[f] : 0));
    y[o] = c.residual ? post(v + res[o]) : v;
    sumAbs[o] = a;
  }
  return { y, sumAbs };
}

const relu6: [string, number[]] = ['Clip', [0, 6]];
const cases: [Case, SmxTiles][] = [
  // 8x8 (vec4 path), two filter tiles (each recomputes the depthwise results), 40 channels in two steps (the second
  // ragged), both biases and a residual; two sets of tiles.
  [{ n: 2, c: 40, h: 8, w: 8, f: 36, k: 3, stride: 1, pads: [1, 1, 1, 1], bias1: true, bias2: true, residual: true, act1: relu6 }, { sgf: 2, sgp: 2, tm: 1, tn: 1, bk: 32, pad: true, db: true }],
  // Stride 2 over an odd map (9x9 -> 5x5: the scalar path, tiles across images), HardSwish then Relu; one set.
  [{ n: 3, c: 13, h: 9, w: 9, f: 21, k: 3, stride: 2, pads: [1, 1, 1, 1], bias1: true, bias2: true, act1: ['HardSwish', []], act2: ['Relu', []] }, { sgf: 2, sgp: 2, tm: 1, tn: 1, bk: 32, pad: true }],
  // Dilation 2, a 5x5 kernel with asymmetric pads, no biases, residual then Relu, 16 channels a step over 24.
  [{ n: 2, c: 24, h: 7, w: 6, f: 16, k: 5, stride: 1, pads: [2, 3, 1, 2], dilation: 2, residual: true, act2: ['Relu', []], post: 'Relu' }, { sgf: 2, sgp: 2, tm: 1, tn: 1, bk: 16, pad: true }],
  // The rule's 32 x 64 tiles (each subgroup two blocks of positions): 10x10 maps (100 positions a tile of 64 splits
  // within and across images), 48 channels in two steps, 40 filters in two tiles.
  [{ n: 2, c: 48, h: 10, w: 10, f: 40, k: 3, stride: 1, pads: [1, 1, 1, 1], bias1: true, bias2: true, residual: true, act1: relu6 }, { sgf: 2, sgp: 2, tm: 1, tn: 2, bk: 32, pad: true }],
];

for (const [c, t] of cases) {
  const [ho, wo] = outSize(c);
  const label = `N${c.n} C${c.c} ${c.h}x${c.w} k${c.k} s${c.stride}${c.dilation ? ` d${c.dilation}` : ''} -> ${ho}x${wo} F${c.f}${c.residual ? ' +res' : ''}, ${16 * t.tm * t.sgf}x${16 * t.tn * t.sgp} BK${t.bk}${t.db ? ', two sets' : ''}`;
  test(`emulated DW-PW on subgroup matrices matches the two layers: ${label}`, async () => {
    let seed = 7100 + c.n * 100 + c.c;
    const r = (n: number, lo = -1, hi = 1) => Float32Array.from(randomF32(n, seed++, lo, hi), roundHalf);
    const x = r(c.n * c.c * c.h * c.w), w1 = r(c.c * c.k * c.k, -0.5, 0.5), b1 = r(c.c), w2 = r(c.f * c.c, -0.5, 0.5), b2 = r(c.f);
    const res = r(c.n * c.f * ho * wo);
    const args = { ...nodeOf(c), limits: lavapipe };
    const p = fusedDwPwSubgroupMatrix(args, t, { subgroupSize: 32 }, true);
    assert.deepEqual(p.inputs, [0, 1, ...(c.bias1 ? [2] : []), 3, ...(c.bias2 ? [4] : []), ...(c.residual ? [5] : [])]);
    const inputs = [x, w1, ...(c.bias1 ? [b1] : []), w2, ...(c.bias2 ? [b2] : []), ...(c.residual ? [res] : [])];
    const got = await runEmulated(p, inputs, c.n * c.f * ho * wo);
    const { y, sumAbs } = reference(c, x, w1, b1, w2, b2, res);
    let maxRef = 0;
    for (const v of y) maxRef = Math.max(maxRef, Math.abs(v));
    let worst = -1, worstRatio = 0;
    for (let i = 0; i < y.length; i++) {
      const bound = 2 ** -11 * Math.abs(y[i]) + 2 ** -25 + 1e-4 * Math.max(1, maxRef) + 2 ** -10 * sumAbs[i];
      const ratio = Math.abs(got[i] - y[i]) / bound;
      if (!(ratio <= worstRatio)) { worst = i; worstRatio = Number.isNaN(ratio) ? Infinity : ratio; }
    }
    assert.ok(worstRatio <= 1, `element ${worst}: got ${got[worst]}, expected ${y[worst]} (${worstRatio.toFixed(2)}x the bound)`);
  });
}

test('program: the pointwise tiles over the depthwise output, bindings x, w1, b1?, w, b?, res?, no intermediate binding', () => {
  const c = cases[0][0], t = cases[0][1];
  const p = fusedDwPwSubgroupMatrix({ ...nodeOf(c), limits: h100 }, t, { subgroupSize: 32 });
  const decls = [...p.wgsl.matchAll(/@binding\((\d+)\) var<storage, (\w+)> (\w+): array<([^>]+>?)>;/g)].map((m) => `${m[3]} ${m[4]}`);
  // x is read at any tap (scalar f16); res and out by 4 positions (P = 64).
  assert.deepEqual(decls, ['x f16', 'w1 f16', 'b1 f16', 'w vec4<f16>', 'b f16', 'res vec4<f16>', 'out vec4<f16>']);
  assert.equal(p.workgroupStorageBytes, smxStorage(t));
  // 2 images x 64 positions in tiles of 32, 36 filters in tiles of 32.
  assert.match(p.wgsl, /const TOTAL: u32 = 8u;/);
  assert.match(p.wgsl, /fn dwAt\(n: u32, c: u32, p: u32\) -> f16/);
  assert.match(p.cacheKey, /^pointwise-smx\|.*\|dw8x8k3x3s1x1p1,1d1x1b1Clip\(0,6\)$/);
  assert.notEqual(p.cacheKey, fusedDwPwSubgroupMatrix({ ...nodeOf({ ...c, stride: 2 }), limits: h100 }, t, { subgroupSize: 32 }).cacheKey);
});

test('registry: an all-f16 DW-PW node takes the subgroup-matrix program only where the device support says fcm', () => {
  // MobileNetV2's 14x14 576 -> 96 projection after its depthwise layer, at batch 32.
  const c: Case = { n: 32, c: 576, h: 14, w: 14, f: 96, k: 3, stride: 1, pads: [1, 1, 1, 1], bias1: true, bias2: true, residual: true, act1: relu6 };
  const { node, inputShapes, outputShapes } = nodeOf(c);
  const key = (storage: 'f32' | 'f16', support?: { subgroupSize: number; fcm?: boolean }) => {
    const k = kernelFor(node, inputShapes, outputShapes, h100, storage, support ? { subgroupMatrix: support } : {});
    return k.kind === 'programs' ? k.programs.map((p) => p.cacheKey).join(',') : 'alias';
  };
  assert.match(key('f16', { subgroupSize: 32, fcm: true }), /^pointwise-smx\|.*\|dw14x14/);
  assert.doesNotMatch(key('f16', { subgroupSize: 32 }), /smx/);
  assert.doesNotMatch(key('f32', { subgroupSize: 32, fcm: true }), /smx/);
  assert.doesNotMatch(key('f16'), /smx/);
  // The pointwise rule's tiles: 32 x 64 (294 tiles at batch 32).
  assert.deepEqual(chooseSmxDwPwTiles({ node, inputShapes, outputShapes, limits: h100 }, { subgroupSize: 32 }), { sgf: 2, sgp: 2, tm: 1, tn: 2, bk: 32, pad: true });
});
