// Integer elementwise, pooling, reduction, data-movement and fully connected kernels, bit-exact against
// src/quant/reference.ts: random odd shapes, broadcasting, extreme zero points, int8 and uint8.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Tensor } from '../../../src/graph/ir.js';
import {
  type QArray, type QType, activationRange, addSub, averagePool, concat, fullyConnected, maxPool, mean, mul, pad, qLimits, reluX, requantize,
} from '../../../src/quant/reference.js';
import { int8Activation, int8Binary, int8Requantize } from '../../../kernels/int8/elementwise.js';
import { int8Pool } from '../../../kernels/int8/pool.js';
import { int8Mean } from '../../../kernels/int8/mean.js';
import { int8Pad } from '../../../kernels/int8/pad.js';
import { int8Concat } from '../../../kernels/int8/concat.js';
import { int8FullyConnected } from '../../../kernels/int8/fc.js';
import { FcmError } from '../../../src/errors.js';
import { act, args, assertEqualQ, biasT, makeRng, node, randInt, run, weights } from './cases.js';
import { closeInt8Device, hasDot4 } from './harness.js';

after(closeInt8Device);

const types: QType[] = ['int8', 'uint8'];
const qp = (t: Tensor) => ({ scale: t.quant!.scale[0], zeroPoint: t.quant!.zeroPoint[0] });
const data = (t: Tensor) => t.data as QArray;

for (const t of types) {
  const [qmin, qmax] = qLimits(t);
  for (const op of ['Add', 'Sub', 'Mul'] as const) {
    test(`${op} ${t}: same shapes, broadcasting, extreme zero points, Relu6`, async () => {
      const r = makeRng(op.length * 10 + (t === 'int8' ? 1 : 2));
      const shapes: Array<[number[], number[], number[]]> = [[[1, 5, 7, 3], [1, 5, 7, 3], [1, 5, 7, 3]], [[2, 6, 3, 5], [1, 6, 1, 1], [2, 6, 3, 5]], [[3, 1, 7], [4, 1], [3, 4, 7]]];
      for (const [as, bs, ys] of shapes) {
        for (const zps of [[randInt(r, qmin, qmax), randInt(r, qmin, qmax), randInt(r, qmin, qmax)], [qmin, qmax, qmin], [qmax, qmin, qmax]]) {
          const a = act(r, 'a', t, as, 0.01 + r() * 0.2, zps[0]), b = act(r, 'b', t, bs, 0.01 + r() * 0.2, zps[1]);
          const y = act(r, 'y', t, ys, 0.02 + r() * 0.3, zps[2], false);
          const relu6 = zps[0] === qmin;
          const n = node(op, ['a', 'b'], relu6 ? { activation: 'Clip', activationParams: [0, 6] } : {});
          const range = activationRange(relu6 ? 'RELU6' : 'NONE', qp(y), t);
          const ra = { type: t, a: data(a), aShape: as, aq: qp(a), b: data(b), bShape: bs, bq: qp(b), yShape: ys, yq: qp(y), act: range };
          const want = op === 'Mul' ? mul(ra) : addSub(ra, op === 'Sub');
          const k = await args(n, [a, b], [y], false);
          assertEqualQ(await run(int8Binary(k), k), want, `${op} ${t} [${as}] [${bs}] zp ${zps}`);
        }
      }
    });
  }

  test(`Relu / Clip / requantize ${t}`, async () => {
    const r = makeRng(t === 'int8' ? 31 : 32);
    const x = act(r, 'x', t, [1, 3, 5, 7], 0.6, t === 'int8' ? 8 : 200);
    const y = act(r, 'y', t, [1, 3, 5, 7], 0.28, qmin, false);
    let k = await args(node('Relu', ['x'], {}), [x], [y], false);
    assertEqualQ(await run(int8Activation(k), k), reluX(data(x), qp(x), qp(y), t, 0, Infinity), 'Relu');
    k = await args(node('Clip', ['x'], { min: -1, max: 6 }), [x], [{ ...y, quant: { scale: [0.05], zeroPoint: [qmax - 100] } }], false);
    assertEqualQ(await run(int8Activation(k), k), reluX(data(x), qp(x), { scale: 0.05, zeroPoint: qmax - 100 }, t, -1, 6), 'Clip');
    const other: QType = t === 'int8' ? 'uint8' : 'int8';
    const yo = act(r, 'y', other, [1, 3, 5, 7], 0.3, other === 'int8' ? -5 : 130, false);
    k = await args(node('QuantizeLinear', ['x'], {}), [x], [yo], false);
    assertEqualQ(await run(int8Requantize(k), k), requantize(data(x), qp(x), qp(yo), other), 'requantize');
  });

  test(`AveragePool / MaxPool ${t}: stride 2, padding not counted, odd sizes, clamp`, async () => {
    const r = makeRng(t === 'int8' ? 41 : 42);
    for (const [H, W, k, s, pads] of [[7, 9, 3, 2, [1, 1, 1, 1]], [6, 5, 2, 2, [0, 0, 0, 0]], [7, 7, 7, 1, [0, 0, 0, 0]], [5, 8, 3, 1, [1, 0, 1, 2]]] as Array<[number, number, number, number, number[]]>) {
      const x = act(r, 'x', t, [2, 3, H, W], 0.1, randInt(r, qmin, qmax));
      const HO = Math.floor((H + pads[0] + pads[2] - k) / s) + 1, WO = Math.floor((W + pads[1] + pads[3] - k) / s) + 1;
      const y: Tensor = { ...x, name: 'y', shape: [2, 3, HO, WO], data: undefined };
      const range = activationRange('RELU6', qp(y), t);
      for (const op of ['AveragePool', 'MaxPool']) {
        const n = node(op, ['x'], { kernel: [k, k], strides: [s, s], pads, activation: 'Clip', activationParams: [0, 6] });
        const pa = { type: t, x: data(x), xShape: x.shape, yShape: y.shape, kernel: [k, k], strides: [s, s], pads, act: range };
        const ka = await args(n, [x], [y], false);
        assertEqualQ(await run(int8Pool(ka), ka), op === 'MaxPool' ? maxPool(pa) : averagePool(pa), `${op} ${H}x${W} k${k} s${s}`);
      }
    }
  });

  test(`Mean ${t}: spatial keep_dims with requantization, same-quantization mean over other axes`, async () => {
    const r = makeRng(t === 'int8' ? 51 : 52);
    const x = act(r, 'x', t, [2, 5, 7, 3], 0.07, randInt(r, qmin, qmax));
    const y = act(r, 'y', t, [2, 5, 1, 1], 0.05, randInt(r, qmin, qmax), false);
    let k = await args(node('ReduceMean', ['x'], { axes: [2, 3], keepdims: 1 }), [x], [y], false);
    assertEqualQ(await run(int8Mean(k), k), mean({ type: t, x: data(x), xShape: x.shape, xq: qp(x), yq: qp(y), axes: [2, 3], spatialKeepDims: true }), 'spatial');
    k = await args(node('GlobalAveragePool', ['x'], {}), [x], [y], false);
    assertEqualQ(await run(int8Mean(k), k), mean({ type: t, x: data(x), xShape: x.shape, xq: qp(x), yq: qp(y), axes: [2, 3], spatialKeepDims: true }), 'global');
    const y2: Tensor = { ...x, name: 'y', shape: [2, 7], data: undefined };
    k = await args(node('ReduceMean', ['x'], { axes: [1, 3], keepdims: 0 }), [x], [y2], false);
    assertEqualQ(await run(int8Mean(k), k), mean({ type: t, x: data(x), xShape: x.shape, xq: qp(x), yq: qp(x), axes: [1, 3], spatialKeepDims: false }), 'same quantization');
    k = await args(node('ReduceMean', ['x'], { axes: [1], keepdims: 1 }), [x], [{ ...y, shape: [2, 1, 7, 3] }], false);
    assert.throws(() => int8Mean(k), (e: unknown) => e instanceof FcmError && /float32/.test(e.message));
    // The spatial kernel's word sums: planes of 49 (MobileNetV1's 7x7, several workgroups), 16
    // (whole words) and 1 byte, dot4 and its fallback.
    for (const shape of [[1, 300, 7, 7], [2, 9, 4, 4], [1, 6, 1, 1]]) {
      const xb = act(r, 'x', t, shape, 0.03, randInt(r, qmin, qmax));
      const yb = act(r, 'y', t, [shape[0], shape[1], 1, 1], 0.02, randInt(r, qmin, qmax), false);
      const want = mean({ type: t, x: data(xb), xShape: xb.shape, xq: qp(xb), yq: qp(yb), axes: [2, 3], spatialKeepDims: true });
      for (const dot4 of (await hasDot4()) ? [false, true] : [false]) {
        const kb = await args(node('ReduceMean', ['x'], { axes: [2, 3], keepdims: 1 }), [xb], [yb], dot4);
        const p = int8Mean(kb);
        assert.match(p.name, /spatial/);
        assertEqualQ(await run(p, kb), want, `spatial [${shape}] dot4=${dot4}`);
      }
    }
    // Trailing axes without keep_dims and the same quantization (MobileNetV2's final mean): contiguous planes too.
    for (const [shape, axes] of [[[1, 300, 7, 7], [3, 2]], [[2, 5, 7, 3], [1, 2, 3]]] as Array<[number[], number[]]>) {
      const xb = act(r, 'x', t, shape, 0.03, randInt(r, qmin, qmax));
      const yb: Tensor = { ...xb, name: 'y', shape: shape.slice(0, 4 - axes.length), data: undefined };
      const want = mean({ type: t, x: data(xb), xShape: xb.shape, xq: qp(xb), yq: qp(xb), axes, spatialKeepDims: false });
      for (const dot4 of (await hasDot4()) ? [false, true] : [false]) {
        const kb = await args(node('ReduceMean', ['x'], { axes, keepdims: 0 }), [xb], [yb], dot4);
        const p = int8Mean(kb);
        assert.match(p.name, /spatial/);
        assertEqualQ(await run(p, kb), want, `trailing axes ${axes} of [${shape}] dot4=${dot4}`);
      }
    }
  });

  test(`Pad ${t}: zero point and a value, rank 4 and 3`, async () => {
    const r = makeRng(t === 'int8' ? 61 : 62);
    for (const [shape, pads, value] of [[[1, 3, 5, 7], [0, 0, 1, 2, 0, 1, 2, 1], 0], [[2, 3, 5], [1, 0, 3, 0, 2, 0], 0.5]] as Array<[number[], number[], number]>) {
      const x = act(r, 'x', t, shape, 0.1, randInt(r, qmin, qmax));
      const ys = shape.map((d, i) => d + pads[i] + pads[i + shape.length]);
      const y: Tensor = { ...x, name: 'y', shape: ys, data: undefined };
      const k = await args(node('Pad', ['x'], { pads, mode: 'constant', value }), [x], [y], false);
      const pv = value ? Math.min(qmax, Math.max(qmin, Math.round(value / 0.1) + qp(x).zeroPoint)) : qp(x).zeroPoint;
      assertEqualQ(await run(int8Pad(k), k), pad(t, data(x), shape, pads, pv).y, `pad [${shape}] value ${value}`);
    }
  });

  test(`Concat ${t}: equal and different quantization, channel and inner axes`, async () => {
    const r = makeRng(t === 'int8' ? 71 : 72);
    for (const [axis, shapes] of [[1, [[1, 3, 4, 5], [1, 2, 4, 5], [1, 5, 4, 5]]], [3, [[2, 3, 2, 1], [2, 3, 2, 6]]]] as Array<[number, number[][]]>) {
      const yq = { scale: 0.1, zeroPoint: randInt(r, qmin, qmax) };
      const xs = shapes.map((s, i) => (i === 0 ? act(r, `x${i}`, t, s, yq.scale, yq.zeroPoint) : act(r, `x${i}`, t, s, 0.03 + r() * 0.2, randInt(r, qmin, qmax))));
      const ys = [...shapes[0]];
      ys[axis] = shapes.reduce((a, s) => a + s[axis], 0);
      const y: Tensor = { name: 'y', dtype: t, shape: ys, quant: { scale: [yq.scale], zeroPoint: [yq.zeroPoint] } };
      const k = await args(node('Concat', xs.map((x) => x.name), { axis }), xs, [y], false);
      const want = concat(t, xs.map((x) => ({ x: data(x), shape: x.shape, q: qp(x) })), axis, yq).y;
      assertEqualQ(await run(int8Concat(k), k), want, `concat axis ${axis}`);
    }
  });

  test(`FullyConnected ${t}: aligned and unaligned depth, per-channel and per-tensor, dot4 and fallback`, async () => {
    const r = makeRng(t === 'int8' ? 81 : 82);
    for (const [rows, depth, units, perChannel] of [[1, 64, 10, true], [3, 37, 7, false], [2, 5, 9, true], [2, 1283, 13, true], [1, 1280, 37, false], [3, 300, 8, true]] as Array<[number, number, number, boolean]>) {
      const x = act(r, 'x', t, [rows, depth], 0.05, randInt(r, qmin, qmax));
      const w = weights(r, t, [units, depth], perChannel);
      const b = biasT(r, units);
      // Output scale grows with sqrt(depth) so that long rows do not all clamp.
      const y = act(r, 'y', t, [rows, units], 0.4 * Math.sqrt(Math.max(1, depth / 64)), randInt(r, qmin, qmax), false);
      const range = activationRange('RELU', qp(y), t);
      const want = fullyConnected({
        type: t, x: data(x), xShape: x.shape, xq: qp(x), w: data(w), wScales: w.quant!.scale, wZeroPoint: t === 'uint8' ? w.quant!.zeroPoint[0] : 0,
        bias: b.data as Int32Array, units, yq: qp(y), act: range,
      });
      for (const dot4 of (await hasDot4()) ? [true, false] : [false]) {
        const k = await args(node('Gemm', ['x', 'w', 'b'], { transB: 1, alpha: 1, beta: 1, transA: 0, activation: 'Relu' }), [x, w, b], [y], dot4);
        assertEqualQ(await run(int8FullyConnected(k), k), want, `fc ${rows}x${depth} -> ${units} dot4=${dot4}`);
      }
    }
  });
}
