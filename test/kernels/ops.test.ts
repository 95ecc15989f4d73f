// The other layer-by-layer kernels (binary with broadcasting, activations, reductions, pooling, Gemm/MatMul,
// Concat, Split, Slice, Transpose, Pad, Softmax, BatchNormalization) against reference-ops.ts / reference.ts.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeDevice } from './fused-harness.js';
import { activation, randomF32 } from './reference.js';
import { broadcastBinary, matmulRef, numelOf, poolRef, reduceMeanRef, strides, transposeRef, unravel } from './reference-ops.js';
import { type LayerCase, assertClose, assertRelClose, programsOf, runLayer } from './layer-harness.js';

// Softmax probabilities and sigmoid tails are mostly far below 1e-4, so assertClose's bound (1e-4 of max |ref|)
// would pass a kernel that writes zeros for them: they are compared element by element, relative to each value.
// WGSL's exp is accurate to 3 + 2|x| ULP (spec, 'Floating point accuracy'): <= 83 ULP ~ 1e-5 relative for the
// |x| <= 40 of these cases; the row sums (<= 1000 positive terms, per-thread runs of <= 16 then a tree) add
// ~26 * 2^-24 ~ 1.6e-6 and the division 2.5 ULP. rtol 2e-5 covers that bound (lavapipe measured <= 2.6e-6);
// atol 1e-30 only matters at float32's subnormal range, far below the smallest probability here (~1e-16).
const expRtol = 2e-5, expAtol = 1e-30;

after(closeDevice);

let seed = 100;
const rnd = (shape: number[]) => ({ data: randomF32(numelOf(shape), seed++), shape });

const binaryCases: [string, number[], number[], number[]][] = [
  ['Add', [2, 3, 5, 7], [2, 3, 5, 7], [2, 3, 5, 7]],
  ['Mul', [2, 6, 5, 3], [2, 6, 1, 1], [2, 6, 5, 3]], // squeeze-excite scaling
  ['Sub', [2, 6, 5, 3], [3], [2, 6, 5, 3]],
  ['Div', [1, 6, 1, 1], [2, 1, 5, 3], [2, 6, 5, 3]], // both sides broadcast
  ['Add', [1, 1], [4, 1, 1, 9], [4, 1, 1, 9]],
  ['PRelu', [2, 5, 3, 3], [5, 1, 1], [2, 5, 3, 3]],
];
const fns: Record<string, (a: number, b: number) => number> = {
  Add: (a, b) => a + b, Sub: (a, b) => a - b, Mul: (a, b) => a * b, Div: (a, b) => a / b, PRelu: (a, b) => (a >= 0 ? a : a * b),
};
for (const [op, as, bs, os] of binaryCases) {
  test(`${op} [${as}] x [${bs}] -> [${os}]`, async () => {
    const a = rnd(as), b = rnd(bs);
    if (op === 'Div') for (let i = 0; i < b.data.length; i++) b.data[i] = 0.5 + Math.abs(b.data[i]);
    const [got] = await runLayer({ op, inputs: [a, b], outputShapes: [os] });
    assertClose(got, broadcastBinary(a.data, as, b.data, bs, os, fns[op]), op);
  });
}

for (const [op, params] of [['Relu', []], ['Clip', [-0.5, 0.25]], ['HardSwish', []], ['HardSigmoid', [0.3, 0.4]], ['Sigmoid', []],
  ['LeakyRelu', [0.2]], ['Tanh', []], ['Abs', []]] as [string, number[]][]) {
  test(`standalone ${op}`, async () => {
    const x = rnd([2, 3, 5, 7]);
    for (let i = 0; i < x.data.length; i++) x.data[i] *= 8;
    const attrs: Record<string, unknown> = op === 'Clip' ? { min: params[0], max: params[1] } : op === 'LeakyRelu' ? { alpha: params[0] }
      : op === 'HardSigmoid' ? { alpha: params[0], beta: params[1] } : {};
    const [got] = await runLayer({ op, attrs, inputs: [x], outputShapes: [x.shape] });
    const f = op === 'Abs' ? Math.abs : activation(op, params);
    assertClose(got, Array.from(x.data, f), op);
    // sigmoid(-8) = 3.4e-4: the tail is checked relative to each value (exp and one division, as above).
    if (op === 'Sigmoid') assertRelClose(got, Array.from(x.data, f), op, expRtol, expAtol);
  });
}

test('GlobalAveragePool, batch 2, odd spatial', async () => {
  const x = rnd([2, 5, 7, 3]);
  const [got] = await runLayer({ op: 'GlobalAveragePool', inputs: [x], outputShapes: [[2, 5, 1, 1]] });
  assertClose(got, reduceMeanRef(x.data, x.shape, [2, 3]), 'gap');
});

test('GlobalAveragePool over larger maps (workgroup-per-channel reduction), batch 2', async () => {
  const x = rnd([2, 5, 9, 11]);
  const [got] = await runLayer({ op: 'GlobalAveragePool', inputs: [x], outputShapes: [[2, 5, 1, 1]] });
  assertClose(got, reduceMeanRef(x.data, x.shape, [2, 3]), 'gap 9x11');
});

test('GlobalAveragePool over a large map (256 threads per channel, four partial sums, a remainder)', async () => {
  const x = rnd([1, 3, 47, 53]);
  const [got] = await runLayer({ op: 'GlobalAveragePool', inputs: [x], outputShapes: [[1, 3, 1, 1]] });
  assertClose(got, reduceMeanRef(x.data, x.shape, [2, 3]), 'gap 47x53');
});

for (const [axes, keep, out] of [[[1], 0, [2, 7, 3]], [[2, 3], 1, [2, 5, 1, 1]], [[0, 2], 1, [1, 5, 1, 3]], [[], 0, []]] as [number[], number, number[]][]) {
  test(`ReduceMean axes [${axes}] keepdims ${keep}`, async () => {
    const x = rnd([2, 5, 7, 3]);
    const [got] = await runLayer({ op: 'ReduceMean', attrs: { axes, keepdims: keep }, inputs: [x], outputShapes: [out] });
    assertClose(got, reduceMeanRef(x.data, x.shape, axes.length ? axes : [0, 1, 2, 3]), 'reducemean');
  });
}

const poolCases: [string, number[], number[], number[], number[], number, number[]][] = [
  // op, input, kernel, strides, pads, countIncludePad, output
  ['MaxPool', [2, 5, 9, 11], [3, 3], [2, 2], [1, 1, 1, 1], 0, [2, 5, 5, 6]],
  ['MaxPool', [1, 3, 8, 8], [2, 2], [2, 2], [0, 0, 0, 0], 0, [1, 3, 4, 4]],
  ['AveragePool', [2, 3, 9, 7], [3, 3], [2, 2], [1, 1, 1, 1], 0, [2, 3, 5, 4]],
  ['AveragePool', [2, 3, 9, 7], [3, 3], [2, 2], [1, 1, 1, 1], 1, [2, 3, 5, 4]],
  ['AveragePool', [1, 2, 7, 7], [7, 7], [1, 1], [0, 0, 0, 0], 0, [1, 2, 1, 1]],
];
for (const [op, xs, k, st, pads, inc, os] of poolCases) {
  test(`${op} [${xs}] k${k} s${st} p${pads} incl${inc}`, async () => {
    const x = rnd(xs);
    const [got] = await runLayer({ op, attrs: { kernel: k, strides: st, pads, countIncludePad: inc }, inputs: [x], outputShapes: [os] });
    assertClose(got, poolRef(x.data, xs, os, op === 'MaxPool' ? 'max' : 'avg', k, st, pads, inc === 1), op);
  });
}

test('Gemm transB with bias row, alpha/beta', async () => {
  const a = rnd([3, 37]), b = rnd([10, 37]), c = rnd([10]);
  const [got] = await runLayer({ op: 'Gemm', attrs: { transB: 1, alpha: 0.5, beta: 2 }, inputs: [a, b, c], outputShapes: [[3, 10]] });
  const ref = matmulRef(a.data, b.data, 3, 37, 10, false, true).map((v, i) => 0.5 * v + 2 * c.data[i % 10]);
  assertClose(got, ref, 'gemm');
});

test('Gemm transA, no C', async () => {
  const a = rnd([5, 4]), b = rnd([5, 6]);
  const [got] = await runLayer({ op: 'Gemm', attrs: { transA: 1 }, inputs: [a, b], outputShapes: [[4, 6]] });
  assertClose(got, matmulRef(a.data, b.data, 4, 5, 6, true, false), 'gemm');
});

test('MatMul with broadcast batch and a 1-D operand', async () => {
  const a = rnd([2, 3, 4]), b = rnd([4, 5]);
  const [got] = await runLayer({ op: 'MatMul', inputs: [a, b], outputShapes: [[2, 3, 5]] });
  assertClose(got, [...matmulRef(a.data.subarray(0, 12), b.data, 3, 4, 5), ...matmulRef(a.data.subarray(12), b.data, 3, 4, 5)], 'matmul');
  const v = rnd([4]);
  const [got2] = await runLayer({ op: 'MatMul', inputs: [v, b], outputShapes: [[5]] });
  assertClose(got2, matmulRef(v.data, b.data, 1, 4, 5), 'matmul 1-D');
});

test('Concat of three inputs along channels, one program each', async () => {
  const xs = [rnd([2, 3, 4, 5]), rnd([2, 1, 4, 5]), rnd([2, 6, 4, 5])];
  const lc: LayerCase = { op: 'Concat', attrs: { axis: 1 }, inputs: xs, outputShapes: [[2, 10, 4, 5]] };
  assert.equal((await programsOf(lc)).length, 3);
  const [got] = await runLayer(lc);
  const ref = new Float64Array(2 * 10 * 20);
  for (let i = 0; i < ref.length; i++) {
    const [n, c, y, x] = unravel(i, [2, 10, 4, 5]);
    const [k, cc] = c < 3 ? [0, c] : c < 4 ? [1, c - 3] : [2, c - 4];
    ref[i] = xs[k].data[((n * xs[k].shape[1] + cc) * 4 + y) * 5 + x];
  }
  assertClose(got, ref, 'concat');
});

test('Split along the last axis into uneven parts', async () => {
  const x = rnd([2, 3, 7]);
  const outs = await runLayer({ op: 'Split', attrs: { axis: -1, split: [2, 5] }, inputs: [x], outputShapes: [[2, 3, 2], [2, 3, 5]] });
  for (const [k, off, w] of [[0, 0, 2], [1, 2, 5]]) {
    const ref = Array.from({ length: 6 * w }, (_, i) => x.data[Math.floor(i / w) * 7 + off + (i % w)]);
    assertClose(outs[k], ref, `split ${k}`);
  }
});

test('Slice with steps 2 and -1, clamped ends', async () => {
  const x = rnd([2, 5, 6, 7]);
  const [got] = await runLayer({ op: 'Slice', attrs: { starts: [1, -1, 0], ends: [100, -100, 5], axes: [1, 2, 3], steps: [2, -1, 2] }, inputs: [x], outputShapes: [[2, 2, 6, 3]] });
  const ref = Array.from({ length: 2 * 2 * 6 * 3 }, (_, i) => {
    const [n, c, y, w] = unravel(i, [2, 2, 6, 3]);
    return x.data[((n * 5 + 1 + 2 * c) * 6 + (5 - y)) * 7 + 2 * w];
  });
  assertClose(got, ref, 'slice');
});

test('Transpose NCHW -> NHWC and a channel shuffle permutation', async () => {
  const x = rnd([2, 3, 4, 5]);
  const [got] = await runLayer({ op: 'Transpose', attrs: { perm: [0, 2, 3, 1] }, inputs: [x], outputShapes: [[2, 4, 5, 3]] });
  assertClose(got, transposeRef(x.data, x.shape, [0, 2, 3, 1]), 'transpose');
  const y = rnd([1, 2, 3, 4, 4]);
  const [got2] = await runLayer({ op: 'Transpose', attrs: { perm: [0, 2, 1, 3, 4] }, inputs: [y], outputShapes: [[1, 3, 2, 4, 4]] });
  assertClose(got2, transposeRef(y.data, y.shape, [0, 2, 1, 3, 4]), 'shuffle');
});

for (const mode of ['constant', 'reflect', 'edge']) {
  test(`Pad ${mode}`, async () => {
    const x = rnd([1, 2, 4, 5]);
    const pads = [0, 0, 1, 2, 0, 1, 2, 3];
    const os = [1, 3, 7, 10];
    const [got] = await runLayer({ op: 'Pad', attrs: { pads, mode, value: 0.75 }, inputs: [x], outputShapes: [os] });
    const ref = Array.from({ length: numelOf(os) }, (_, i) => {
      const c = unravel(i, os).map((v, k) => v - pads[k]);
      const fix = (v: number, d: number) => (mode === 'edge' ? Math.min(Math.max(v, 0), d - 1) : v < 0 ? -v : v >= d ? 2 * d - 2 - v : v);
      if (mode === 'constant' && c.some((v, k) => v < 0 || v >= x.shape[k])) return 0.75;
      const cc = c.map((v, k) => fix(v, x.shape[k]));
      return x.data[cc.reduce((o, v, k) => o + v * strides(x.shape)[k], 0)];
    });
    assertClose(got, ref, `pad ${mode}`);
  });
}

for (const axis of [1, -1]) {
  test(`Softmax axis ${axis}`, async () => {
    const x = rnd([2, 4, 3]);
    for (let i = 0; i < x.data.length; i++) x.data[i] *= 20;
    const [got] = await runLayer({ op: 'Softmax', attrs: { axis }, inputs: [x], outputShapes: [x.shape] });
    const a = axis < 0 ? 2 : axis;
    const ref = Array.from({ length: 24 }, (_, i) => {
      const c = unravel(i, x.shape);
      const vals = Array.from({ length: x.shape[a] }, (_, k) => { const d = [...c]; d[a] = k; return x.data[d.reduce((o, v, j) => o + v * strides(x.shape)[j], 0)]; });
      const m = Math.max(...vals);
      return Math.exp(x.data[i] - m) / vals.reduce((s, v) => s + Math.exp(v - m), 0);
    });
    assertRelClose(got, ref, 'softmax', expRtol, expAtol);
  });
}

// Rows of 64 or more run one workgroup per row (tree reductions): a classifier row, a non-power-of-two row,
// and a non-last axis whose rows are strided (inner > 1).
for (const [shape, axis] of [[[2, 1000], 1], [[1, 77], -1], [[2, 100, 3], 1]] as [number[], number][]) {
  test(`Softmax [${shape}] axis ${axis}, one workgroup per row`, async () => {
    const x = rnd(shape);
    for (let i = 0; i < x.data.length; i++) x.data[i] *= 12;
    const [got] = await runLayer({ op: 'Softmax', attrs: { axis }, inputs: [x], outputShapes: [x.shape] });
    const a = axis < 0 ? shape.length + axis : axis;
    const ref = Array.from({ length: x.data.length }, (_, i) => {
      const c = unravel(i, x.shape);
      const vals = Array.from({ length: x.shape[a] }, (_, k) => { const d = [...c]; d[a] = k; return x.data[d.reduce((o, v, j) => o + v * strides(x.shape)[j], 0)]; });
      const m = Math.max(...vals);
      return Math.exp(x.data[i] - m) / vals.reduce((s, v) => s + Math.exp(v - m), 0);
    });
    assertRelClose(got, ref, 'softmax', expRtol, expAtol);
  });
}

test('Softmax of rows at -FLT_MAX is uniform (the running max starts at -FLT_MAX, not above it)', async () => {
  for (const D of [8, 64]) {
    const x = { data: new Float32Array(D).fill(-3.4028234663852886e38), shape: [1, D] };
    const [got] = await runLayer({ op: 'Softmax', attrs: { axis: 1 }, inputs: [x], outputShapes: [x.shape] });
    assertRelClose(got, new Array(D).fill(1 / D), `softmax -FLT_MAX x${D}`, expRtol, expAtol);
  }
});

test('BatchNormalization standing alone', async () => {
  const x = rnd([2, 3, 4, 5]);
  const [sc, b, m] = [rnd([3]), rnd([3]), rnd([3])];
  const v = { data: Float32Array.from(rnd([3]).data, (t) => 0.5 + Math.abs(t)), shape: [3] };
  const [got] = await runLayer({ op: 'BatchNormalization', attrs: { epsilon: 1e-3 }, inputs: [x, sc, b, m, v], outputShapes: [x.shape] });
  const ref = Array.from(x.data, (t, i) => { const c = unravel(i, x.shape)[1]; return (t - m.data[c]) / Math.sqrt(v.data[c] + 1e-3) * sc.data[c] + b.data[c]; });
  assertClose(got, ref, 'bn');
});

test('shapes that do not broadcast are refused, naming the node', async () => {
  await assert.rejects(programsOf({ op: 'Add', inputs: [rnd([2, 3]), rnd([4])], outputShapes: [[2, 3]] }), /add_test.*do not broadcast/);
});
