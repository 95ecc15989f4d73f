// The integer Softmax kernel (kernels/int8/softmax.ts) against src/quant/reference.ts softmax, bit for bit on the
// device: int8 and uint8; rows of whole words (inner 1, depth 1000, one and three rows) and rows that straddle
// words (depth not a multiple of 4, a non-last axis with inner > 1); input scales from just above 2^-26 (a sum of
// exps over 512, so every output rounds to 0) to large ones where diffMin cuts most differences; equal values,
// also 8192 and 5000 of them (the wrapping int32 sum reaching 0 and going negative). Its WGSL exp and reciprocal
// are checked alone on edge and random int32 values. Output grids other than TFLite's 1/256 are refused.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Tensor } from '../../../src/graph/ir.js';
import { type QArray, type QType, qAlloc, qLimits, requantize, softmax, softmaxParams } from '../../../src/quant/reference.js';
import { expOnNegativeValues, oneOverOnePlusXForXIn01 } from '../../../src/quant/fixedpoint.js';
import { type Int8Program, fixedPointWgsl, int8Bindings } from '../../../kernels/int8/common.js';
import { int8Softmax, softmaxFixedPointWgsl } from '../../../kernels/int8/softmax.js';
import { int8KernelFor } from '../../../kernels/registry.js';
import { FcmError } from '../../../src/errors.js';
import { mulberry32 } from '../../../fixtures/rng.js';
import { args, assertEqualQ, node, numel, randInt, run } from './cases.js';
import { closeInt8Device, runInt8 } from './harness.js';

after(closeInt8Device);

const types: QType[] = ['int8', 'uint8'];
type Fill = 'uniform' | 'narrow' | 'equal';

function input(r: () => number, t: QType, shape: number[], scale: number, fill: Fill): Tensor {
  const [lo, hi] = qLimits(t);
  const n = numel(shape);
  const data = qAlloc(t, n);
  const c = randInt(r, lo + 20, hi - 20);
  for (let i = 0; i < n; i++) {
    data[i] = fill === 'equal' ? c : fill === 'narrow' ? randInt(r, c - 20, c + 20) : randInt(r, lo, hi);
  }
  return { name: 'x', dtype: t, shape, data, quant: { scale: [scale], zeroPoint: [randInt(r, lo, hi)] } };
}

const output = (t: QType, shape: number[], scale = 1 / 256, zeroPoint = qLimits(t)[0]): Tensor => ({ name: 'y', dtype: t, shape, quant: { scale: [scale], zeroPoint: [zeroPoint] } });

async function check(t: QType, shape: number[], axis: number, scale: number, fill: Fill, seed: number): Promise<QArray> {
  const r = mulberry32(seed);
  const x = input(r, t, shape, scale, fill);
  const y = output(t, shape);
  const k = await args(node('Softmax', ['x'], { axis }), [x], [y], false);
  const p = int8Softmax(k);
  const rank = shape.length;
  const want = softmax(t, x.data as QArray, shape, axis < 0 ? axis + rank : axis, { scale, zeroPoint: x.quant!.zeroPoint[0] }, { scale: 1 / 256, zeroPoint: qLimits(t)[0] });
  const got = await run(p, k);
  assertEqualQ(got, want, `Softmax ${t} [${shape}] axis ${axis} scale ${scale} ${fill}`);
  return want;
}

for (const t of types) {
  const [qmin] = qLimits(t);
  const seed = t === 'int8' ? 100 : 200;

  test(`Softmax ${t}: depth 1000, one and three rows (threads own output words)`, async () => {
    await check(t, [1, 1000], 1, 0.18109971284866333, 'uniform', seed + 1);
    await check(t, [1, 1000], -1, 0.05, 'narrow', seed + 2);
    const want = await check(t, [3, 1000], 1, 0.3, 'uniform', seed + 3);
    assert.ok(new Set(want).size > 2, 'the outputs are not all alike');
  });

  test(`Softmax ${t}: rows that straddle words (depth not a multiple of 4, a non-last axis with inner > 1)`, async () => {
    await check(t, [2, 37], 1, 0.1, 'uniform', seed + 4);
    await check(t, [5, 6], -1, 0.07, 'narrow', seed + 5);
    await check(t, [7, 3], 1, 0.2, 'uniform', seed + 6);
    await check(t, [1, 1], 1, 0.2, 'uniform', seed + 7);
    await check(t, [2, 5, 3, 7], 1, 0.12, 'uniform', seed + 8);
    await check(t, [2, 5, 3, 7], 1, 0.02, 'narrow', seed + 9);
    await check(t, [2, 5, 3, 7], -3, 0.5, 'narrow', seed + 10);
    await check(t, [3, 2, 8], 0, 0.25, 'uniform', seed + 11);
  });

  test(`Softmax ${t}: extreme input scales`, async () => {
    // Just above 2^-26 (the smallest TFLite takes) and 1e-5: exps near 1, a sum over 512 units, every output qmin.
    for (const scale of [2 ** -26 * 1.001, 1e-5]) {
      const want = await check(t, [1, 1000], 1, scale, 'uniform', seed + 12);
      assert.ok(want.every((v) => v === qmin), `scale ${scale}: exponent over 31 rounds every output to qmin`);
      await check(t, [2, 37], 1, scale, 'uniform', seed + 13);
    }
    // Large scales: diffMin cuts all but the differences near the maximum (to 0 itself at the saturated multiplier).
    for (const scale of [1, 4, 100]) {
      assert.ok(softmaxParams(1, scale).diffMin > -16, `scale ${scale} cuts differences below -15`);
      const want = await check(t, [3, 1000], 1, scale, 'uniform', seed + 14);
      assert.ok(want.filter((v) => v === qmin).length > 2000, `scale ${scale}: most outputs are cut`);
      await check(t, [2, 5, 3, 7], 1, scale, 'narrow', seed + 15);
    }
  });

  test(`Softmax ${t}: all values equal (also 8192 and 5000 of them: the int32 sum wraps to 0 and below)`, async () => {
    const want = await check(t, [2, 37], 1, 0.1, 'equal', seed + 16);
    assert.ok(want.every((v) => v === want[0]) && want[0] > qmin);
    await check(t, [2, 5, 3, 7], 1, 0.1, 'equal', seed + 17);
    await check(t, [1, 8192], 1, 0.1, 'equal', seed + 18);
    await check(t, [1, 5000], 1, 0.1, 'equal', seed + 19);
    await check(t, [1, 5001], 1, 1e-6, 'narrow', seed + 20);
  });

  test(`Softmax ${t}: output quantization other than 1/256, zero point qmin is refused`, async () => {
    const r = mulberry32(seed + 21);
    const x = input(r, t, [1, 10], 0.1, 'uniform');
    for (const [s, z] of [[0.01, qmin], [1 / 256, qmin + 1], [1 / 128, qmin]]) {
      const y = output(t, [1, 10], s, z);
      const k = await args(node('Softmax', ['x'], { axis: 1 }), [x], [y], false);
      assert.throws(() => softmax(t, x.data as QArray, [1, 10], 1, { scale: 0.1, zeroPoint: 0 }, { scale: s, zeroPoint: z }), RangeError);
      for (const f of [int8Softmax, (a: typeof k) => int8KernelFor(a)]) {
        assert.throws(() => f(k), (e: unknown) => e instanceof FcmError && e.kind === 'unsupported' && e.message.includes("'softmax_t'")
          && e.message.includes('output scale 1/256') && e.message.includes(`zero point ${qmin}`));
      }
    }
    // An input scale under 2^-26 (no multiplier > 1), a type change, a missing axis: refused as well.
    const tiny = { ...x, quant: { scale: [2 ** -27], zeroPoint: [0] } };
    let k = await args(node('Softmax', ['x'], { axis: 1 }), [tiny], [output(t, [1, 10])], false);
    assert.throws(() => int8Softmax(k), (e: unknown) => e instanceof FcmError && e.kind === 'unsupported' && /input scale/.test(e.message));
    const other: QType = t === 'int8' ? 'uint8' : 'int8';
    k = await args(node('Softmax', ['x'], { axis: 1 }), [x], [output(other, [1, 10])], false);
    assert.throws(() => int8Softmax(k), (e: unknown) => e instanceof FcmError && e.kind === 'unsupported' && /one 8-bit type/.test(e.message));
    k = await args(node('Softmax', ['x'], {}), [x], [output(t, [1, 10])], false);
    assert.throws(() => int8Softmax(k), (e: unknown) => e instanceof FcmError && e.kind === 'unsupported' && /axis/.test(e.message));
  });
}

test('Softmax programs: the cache key names the type, shape split and multiplier; whole words bind a plain output', async () => {
  const r = mulberry32(7);
  const key = async (t: QType, shape: number[], axis: number, scale: number) => {
    const k = await args(node('Softmax', ['x'], { axis }), [input(r, t, shape, scale, 'uniform')], [output(t, shape)], false);
    return int8Softmax(k);
  };
  const a = await key('int8', [1, 1000], 1, 0.1);
  assert.notEqual(a.cacheKey, (await key('uint8', [1, 1000], 1, 0.1)).cacheKey);
  assert.notEqual(a.cacheKey, (await key('int8', [1, 1000], 1, 0.2)).cacheKey);
  assert.notEqual(a.cacheKey, (await key('int8', [10, 100], 1, 0.1)).cacheKey);
  assert.equal(a.cacheKey, (await key('int8', [1, 1000], -1, 0.1)).cacheKey);
  assert.equal(a.wgsl, (await key('int8', [1, 1000], -1, 0.1)).wgsl);
  assert.deepEqual(a.dispatch, [1, 1, 1]);
  assert.ok(!a.wgsl.includes('atomic'));
  assert.ok((await key('int8', [2, 5, 3, 7], 1, 0.1)).wgsl.includes('atomic<u32>'));
});

test('the WGSL exp_on_negative_values (5 integer bits) and one_over_one_plus_x equal fixedpoint.ts', async () => {
  const r = mulberry32(4321);
  const I32_MIN = -2147483648, I32_MAX = 2147483647;
  const rnd32 = () => Math.floor(r() * 2 ** 32) | 0;
  const values = [I32_MIN, I32_MIN + 1, I32_MAX, I32_MAX - 1, 0, -1, 1, -(1 << 24), -(1 << 24) - 1, -(1 << 26), -(1 << 30), 1 << 30, (1 << 30) - 1];
  for (let k = 0; k < 20000; k++) {
    const kind = k % 3;
    values.push(kind === 0 ? rnd32() : kind === 1 ? rnd32() >> Math.floor(r() * 31) : -Math.floor(r() * 2 ** (20 + Math.floor(r() * 12))));
  }
  const n = values.length;
  const wgsl = `
${int8Bindings(['args'], [])}
${fixedPointWgsl}
${softmaxFixedPointWgsl}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= ${n}u) { return; }
  let a = bitcast<i32>(args[i]);
  out[2u * i] = bitcast<u32>(exp_neg5(min(a, 0i)));
  out[2u * i + 1u] = bitcast<u32>(one_over_one_plus_x(a));
}`;
  const p: Int8Program = { name: 'softmax-fixedpoint-test', cacheKey: 'sfp', wgsl, workgroupSize: [64, 1, 1], dispatch: [Math.ceil(n / 64), 1, 1], inputs: [0], outputs: 1, workgroupStorageBytes: 0, constants: [] };
  const [out] = await runInt8(p, [new Uint32Array(Int32Array.from(values).buffer)], [2 * n]);
  const got = new Int32Array(out.buffer);
  for (let i = 0; i < n; i++) {
    const a = values[i];
    assert.equal(got[2 * i], expOnNegativeValues(Math.min(a, 0), 5), `exp_on_negative_values(${Math.min(a, 0)})`);
    assert.equal(got[2 * i + 1], oneOverOnePlusXForXIn01(a), `one_over_one_plus_x(${a})`);
  }
});

// The output QUANTIZE to the other 8-bit type folded in (src/runtime/compile.ts; requantizedOutput): equal to the
// reference Softmax then the reference requantization, for rows of whole words and rows that straddle words.
// Without the flag a mixed-type Softmax stays refused.
test('Softmax with its QUANTIZE to the other 8-bit type folded in (int8 -> uint8, uint8 -> int8)', async () => {
  for (const [t, u] of [['int8', 'uint8'], ['uint8', 'int8']] as [QType, QType][]) {
    for (const [shape, axis, seed] of [[[2, 1000], 1, 301], [[2, 7, 3], 1, 302]] as [number[], number, number][]) {
      const r = mulberry32(seed);
      const x = input(r, t, shape, 0.15, 'uniform');
      const mid = { scale: 1 / 256, zeroPoint: qLimits(t)[0] }, yq = { scale: 1 / 256, zeroPoint: qLimits(u)[0] };
      const want = requantize(softmax(t, x.data as QArray, shape, axis, { scale: 0.15, zeroPoint: x.quant!.zeroPoint[0] }, mid), mid, yq, u);
      const k = { ...(await args(node('Softmax', ['x'], { axis }), [x], [output(u, shape)], false)), requantizedOutput: true };
      const got = await run(int8KernelFor(k), k);
      assertEqualQ(got, want, `Softmax ${t} -> ${u} [${shape}]`);
      assert.ok(new Set(want).size > 2, 'the outputs are not all alike');
      assert.throws(() => int8Softmax({ ...k, requantizedOutput: false }), (e: unknown) => e instanceof FcmError && e.kind === 'unsupported');
    }
  }
  // Only Softmax takes it.
  const r = mulberry32(5);
  const k = { ...(await args(node('Relu', ['x'], {}), [input(r, 'int8', [1, 8], 0.1, 'uniform')], [output('uint8', [1, 8])], false)), requantizedOutput: true };
  assert.throws(() => int8KernelFor(k), (e: unknown) => e instanceof FcmError && e.kind === 'unsupported' && /folded QUANTIZE/.test(e.message));
});
