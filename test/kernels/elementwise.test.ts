// The element-wise ops real models spell out (Neg, Exp, Log, Sqrt, Reciprocal, Floor, Ceil, Not, Cast, Pow, the
// comparisons, And/Or/Xor, and the n-ary Max, Min, Sum, Mean, Where) against float64 references, with
// broadcasting, odd sizes and ties. Bool results are float32 0 or 1 (kernels/unary.ts).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeDevice } from './fused-harness.js';
import { randomF32 } from './reference.js';
import { numelOf, strides, unravel } from './reference-ops.js';
import { assertRelClose, runLayer } from './layer-harness.js';

after(closeDevice);

let seed = 900;
const rnd = (shape: number[], scale = 1) => {
  const data = randomF32(numelOf(shape), seed++);
  for (let i = 0; i < data.length; i++) data[i] *= scale;
  return { data, shape };
};
/** Values on a grid of 0.5 in [-2, 2]: equal pairs occur, so comparisons meet ties. */
const grid = (shape: number[]) => {
  const x = rnd(shape);
  for (let i = 0; i < x.data.length; i++) x.data[i] = Math.round(x.data[i] * 4) / 2;
  return x;
};

/** numpy broadcasting of an n-ary function to `out`. */
function broadcastN(ins: { data: ArrayLike<number>; shape: number[] }[], out: number[], f: (...v: number[]) => number): Float64Array {
  const r = new Float64Array(numelOf(out));
  for (let i = 0; i < r.length; i++) {
    const c = unravel(i, out);
    const v = ins.map(({ data, shape }) => {
      const st = strides(shape), lead = out.length - shape.length;
      let o = 0;
      shape.forEach((d, k) => { if (d !== 1) o += c[k + lead] * st[k]; });
      return data[o];
    });
    r[i] = f(...v);
  }
  return r;
}

const exact = (got: ArrayLike<number>, ref: ArrayLike<number>, what: string) => {
  assert.equal(got.length, ref.length);
  for (let i = 0; i < ref.length; i++) assert.ok(Object.is(got[i], ref[i]) || got[i] === ref[i], `${what}: element ${i}: got ${got[i]}, expected ${ref[i]}`);
};

// Tolerances, per element (|got - ref| <= atol + rtol |ref|), from WGSL's accuracy rules (spec, 'Floating point
// accuracy'): exp 3 + 2|x| ULP (|x| <= 4 here: 11 ULP, 6.6e-7 relative); log 3 ULP outside [0.5, 2] and 2^-21
// absolute inside it (hence its atol); sqrt and 1/x 2.5 ULP (1.5e-7). The rtols leave a few times that; atol 1e-30
// only matters at exact zeros. Neg, Floor and Ceil are exact.
const unaryCases: [string, (v: number) => number, number, number, (v: number) => number][] = [
  ['Neg', (v) => -v, 0, 0, (v) => v],
  ['Floor', Math.floor, 0, 0, (v) => v],
  ['Ceil', Math.ceil, 0, 0, (v) => v],
  ['Exp', Math.exp, 2e-6, 1e-30, (v) => v],
  ['Log', Math.log, 2e-6, 2 ** -21, (v) => 0.05 + Math.abs(v)],
  ['Sqrt', Math.sqrt, 1e-6, 1e-30, (v) => Math.abs(v)],
  ['Reciprocal', (v) => 1 / v, 1e-6, 1e-30, (v) => (v < 0 ? v - 0.25 : v + 0.25)],
];
for (const [op, f, rtol, atol, domain] of unaryCases) {
  test(`${op} [2,3,5,7]`, async () => {
    const x = rnd([2, 3, 5, 7], 4);
    for (let i = 0; i < x.data.length; i++) x.data[i] = domain(x.data[i]);
    const [got] = await runLayer({ op, inputs: [x], outputShapes: [x.shape] });
    const ref = Array.from(x.data, f);
    if (rtol === 0) exact(got, ref, op);
    else assertRelClose(got, ref, op, rtol, atol);
  });
}

test('Not and Cast (to int32 truncates toward zero, to bool tests non-zero, to float32 copies)', async () => {
  const x = rnd([3, 5, 7], 3);
  x.data[0] = 0; x.data[1] = -0.5; x.data[2] = 2.5;
  const b = { data: Float32Array.from(x.data, (v) => (v > 0 ? 1 : 0)), shape: x.shape };
  const [not] = await runLayer({ op: 'Not', inputs: [b], outputShapes: [x.shape] });
  exact(not, Array.from(b.data, (v) => (v ? 0 : 1)), 'Not');
  const [toInt] = await runLayer({ op: 'Cast', attrs: { to: 'int32' }, inputs: [x], outputShapes: [x.shape] });
  exact(toInt, Array.from(x.data, (v) => Math.trunc(v) + 0), 'Cast int32');
  const [toBool] = await runLayer({ op: 'Cast', attrs: { to: 'bool' }, inputs: [x], outputShapes: [x.shape] });
  exact(toBool, Array.from(x.data, (v) => (v !== 0 ? 1 : 0)), 'Cast bool');
  const [toF] = await runLayer({ op: 'Cast', attrs: { to: 'float32' }, inputs: [b], outputShapes: [x.shape] });
  exact(toF, b.data, 'Cast float32');
  await assert.rejects(runLayer({ op: 'Cast', attrs: { to: 'float16' }, inputs: [x], outputShapes: [x.shape] }), /float16/);
});

const cmp: Record<string, (a: number, b: number) => number> = {
  Less: (a, b) => +(a < b), Greater: (a, b) => +(a > b), LessOrEqual: (a, b) => +(a <= b),
  GreaterOrEqual: (a, b) => +(a >= b), Equal: (a, b) => +(a === b),
  And: (a, b) => +(a !== 0 && b !== 0), Or: (a, b) => +(a !== 0 || b !== 0), Xor: (a, b) => +((a !== 0) !== (b !== 0)),
};
for (const [op, f] of Object.entries(cmp)) {
  test(`${op} with broadcasting and ties: [2,3,5,7] x [3,1,7] and [1,1] x [2,1,5,1]`, async () => {
    const a = grid([2, 3, 5, 7]), b = grid([3, 1, 7]);
    const [got] = await runLayer({ op, inputs: [a, b], outputShapes: [a.shape] });
    const ref = broadcastN([a, b], a.shape, f);
    exact(got, ref, op);
    assert.ok(ref.some((v) => v === 1) && ref.some((v) => v === 0), `${op}: the case must produce both values`);
    const c = grid([1, 1]), d = grid([2, 1, 5, 1]);
    const [got2] = await runLayer({ op, inputs: [c, d], outputShapes: [[2, 1, 5, 1]] });
    exact(got2, broadcastN([c, d], [2, 1, 5, 1], f), `${op} scalar-like`);
  });
}

test('Pow: x^2, x^3 and x^-1 of negative bases, x^0.5, 0^b, a tensor of exponents', async () => {
  const x = rnd([2, 3, 5, 7], 3);
  x.data[0] = 0; x.data[1] = -0;
  for (const e of [2, 3, -1, 0.5, 0]) {
    const base = e === 0.5 ? { data: Float32Array.from(x.data, Math.abs), shape: x.shape } : x;
    const [got] = await runLayer({ op: 'Pow', inputs: [base, { data: Float32Array.of(e), shape: [] }], outputShapes: [x.shape] });
    const ref = Array.from(base.data, (v) => Math.pow(Math.fround(v), e));
    // x^2, x^3 are one or two f32 products (<= 2 roundings: 1.2e-7 relative), x^-1 is pow (exp2 of e*log2|x|:
    // 3 + 2*|e*log2 x| ULP, |e log2 x| <= 12 here, ~27 ULP = 1.6e-6) and 0.5 is sqrt; rtol 4e-6 covers all.
    // 0^-1 and -0^-1 are +-infinity, exactly.
    ref.forEach((r, i) => { if (!Number.isFinite(r)) assert.ok(Object.is(got[i], r), `Pow ${e}: element ${i}: got ${got[i]}, expected ${r}`); });
    const finite = ref.map((r, i) => [r, i] as const).filter(([r]) => Number.isFinite(r));
    assertRelClose(finite.map(([, i]) => got[i]), finite.map(([r]) => r), `Pow ${e}`, 4e-6, 1e-30);
  }
  // Exponents per element (broadcast over the batch), integers in [-3, 3] on negative bases.
  const ex = { data: Float32Array.from(rnd([3, 5, 7]).data, (v) => Math.round(v * 3)), shape: [3, 5, 7] };
  const xs = { data: Float32Array.from(x.data, (v) => (Math.abs(v) < 0.25 ? v + 0.5 : v)), shape: x.shape };
  const [got] = await runLayer({ op: 'Pow', inputs: [xs, ex], outputShapes: [x.shape] });
  assertRelClose(got, broadcastN([xs, ex], x.shape, Math.pow), 'Pow tensor', 4e-6, 1e-30);
  // A fractional exponent of a negative base is NaN (C's pow).
  const [nan] = await runLayer({ op: 'Pow', inputs: [{ data: Float32Array.of(-2, 2), shape: [2] }, { data: Float32Array.of(0.3), shape: [1] }], outputShapes: [[2]] });
  assert.ok(Number.isNaN(nan[0]) && Math.abs(nan[1] - Math.pow(2, 0.3)) < 1e-6);
});

const nary: [string, number[][], number[], (...v: number[]) => number][] = [
  ['Max', [[2, 3, 5, 7], [3, 1, 1], [1, 5, 7]], [2, 3, 5, 7], Math.max],
  ['Min', [[2, 3, 5, 7], [3, 1, 1], [1, 5, 7]], [2, 3, 5, 7], Math.min],
  ['Max', [[3, 1, 7], [2, 3, 5, 1]], [2, 3, 5, 7], Math.max],
  ['Max', [[2, 5, 3]], [2, 5, 3], (v) => v],
  ['Sum', [[2, 3, 5, 7], [7], [2, 3, 1, 1]], [2, 3, 5, 7], (...v) => v.reduce((a, b) => a + Math.fround(b), 0)],
  ['Mean', [[2, 3, 5, 7], [7], [2, 3, 1, 1]], [2, 3, 5, 7], (...v) => v.reduce((a, b) => a + b, 0) / v.length],
];
for (const [op, shapes, out, f] of nary) {
  test(`${op} of ${shapes.map((s) => `[${s}]`).join(', ')}`, async () => {
    const ins = shapes.map((s) => grid(s));
    const [got] = await runLayer({ op, inputs: ins, outputShapes: [out] });
    const ref = broadcastN(ins, out, f);
    // Max/Min pick an input value: exact. Sum/Mean of 3 values on the 0.5 grid: exact in f32 (the division by 3
    // rounds once, 2.5 ULP in WGSL): rtol 1e-6.
    if (op === 'Max' || op === 'Min') exact(got, ref, op);
    else assertRelClose(got, ref, op, 1e-6, 1e-30);
  });
}

test('Max and Min keep a NaN of either operand', async () => {
  const a = { data: Float32Array.of(NaN, 1, 2), shape: [3] }, b = { data: Float32Array.of(0, NaN, 1), shape: [3] };
  for (const op of ['Max', 'Min']) {
    const [got] = await runLayer({ op, inputs: [a, b], outputShapes: [[3]] });
    assert.ok(Number.isNaN(got[0]) && Number.isNaN(got[1]), op);
    assert.equal(got[2], op === 'Max' ? 2 : 1);
  }
});

test('Where: a bool condition [2,1,5,1] chooses between X [2,3,5,7] and Y [7]', async () => {
  const c = { data: Float32Array.from(rnd([2, 1, 5, 1]).data, (v) => (v > 0 ? 1 : 0)), shape: [2, 1, 5, 1] };
  const x = rnd([2, 3, 5, 7]), y = rnd([7]);
  const [got] = await runLayer({ op: 'Where', inputs: [c, x, y], outputShapes: [[2, 3, 5, 7]] });
  exact(got, broadcastN([c, x, y], [2, 3, 5, 7], (k, a, b) => (k ? a : b)), 'Where');
});
