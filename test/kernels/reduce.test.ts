// kernels/reduce.ts's ReduceSum, ReduceMax, ReduceMin, ReduceProd (ReduceMean and GlobalAveragePool are in
// ops.test.ts) against a float64 reference: several axis sets, keepdims 0/1, all axes, noop_with_empty_axes.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeDevice } from './fused-harness.js';
import { randomF32 } from './reference.js';
import { numelOf, strides, unravel } from './reference-ops.js';
import { assertClose, runLayer } from './layer-harness.js';

after(closeDevice);

function reduceRef(x: ArrayLike<number>, s: number[], axes: number[], init: number, f: (a: number, v: number) => number): Float64Array {
  const kept = s.map((d, k) => (axes.includes(k) ? 1 : d));
  const out = new Float64Array(numelOf(kept)).fill(init);
  const ks = strides(kept);
  for (let i = 0; i < x.length; i++) {
    const c = unravel(i, s).map((v, k) => (axes.includes(k) ? 0 : v));
    const o = c.reduce((a, v, k) => a + v * ks[k], 0);
    out[o] = f(out[o], x[i]);
  }
  return out;
}

const ops: Record<string, [number, (a: number, v: number) => number]> = {
  ReduceSum: [0, (a, v) => a + v], ReduceMax: [-Infinity, Math.max], ReduceMin: [Infinity, Math.min], ReduceProd: [1, (a, v) => a * v],
};
let seed = 1300;
const cases: [number[], number, number[]][] = [[[1], 0, [2, 7, 3]], [[2, 3], 1, [2, 5, 1, 1]], [[0, 2], 1, [1, 5, 1, 3]], [[-1], 1, [2, 5, 7, 1]], [[], 0, []]];
for (const [op, [init, f]] of Object.entries(ops)) {
  for (const [axes, keep, out] of cases) {
    test(`${op} axes [${axes}] keepdims ${keep} of [2,5,7,3]`, async () => {
      const x = { data: randomF32(2 * 5 * 7 * 3, seed++), shape: [2, 5, 7, 3] };
      // Products of up to 210 values in [-1, 1] vanish: move them to [0.9, 1.1] (magnitudes ~1 either way).
      if (op === 'ReduceProd') for (let i = 0; i < x.data.length; i++) x.data[i] = 1 + 0.1 * x.data[i];
      const [got] = await runLayer({ op, attrs: { axes, keepdims: keep }, inputs: [x], outputShapes: [out] });
      const norm = axes.length ? axes.map((a) => (a + 4) % 4) : [0, 1, 2, 3];
      const ref = reduceRef(x.data, x.shape, norm, init, f);
      // Max/Min pick an element: exact. Sum/Prod: up to 210 terms in float32, each rounding <= 2^-24 of the
      // running magnitude (<= 210 for sums of values in [-1, 1], ~1-10 for the products): assertClose's 1e-4 of
      // max(1, max |ref|) is far above that and far below an element left out or added twice.
      if (op === 'ReduceMax' || op === 'ReduceMin') for (let i = 0; i < ref.length; i++) assert.equal(got[i], ref[i], `${op}: element ${i}`);
      else assertClose(got, ref, op);
    });
  }
}

test('ReduceSum with noop_with_empty_axes and no axes copies the input; axes from a run-time input are refused', async () => {
  const x = { data: randomF32(30, 5), shape: [2, 3, 5] };
  const [got] = await runLayer({ op: 'ReduceSum', attrs: { noop_with_empty_axes: 1 }, inputs: [x], outputShapes: [x.shape] });
  assert.deepEqual(Array.from(got), Array.from(x.data));
  await assert.rejects(runLayer({ op: 'ReduceSum', inputs: [x, { data: Float32Array.of(1), shape: [1] }], outputShapes: [[2, 1, 5]] }), /run time/);
});

test('ReduceMax keeps a NaN wherever it is in the reduced elements', async () => {
  const x = { data: Float32Array.of(NaN, 1, 2, 3, 4, NaN, 7, 8, 9), shape: [3, 3] };
  const [got] = await runLayer({ op: 'ReduceMax', attrs: { axes: [1], keepdims: 0 }, inputs: [x], outputShapes: [[3]] });
  assert.ok(Number.isNaN(got[0]) && Number.isNaN(got[1]));
  assert.equal(got[2], 9);
});
