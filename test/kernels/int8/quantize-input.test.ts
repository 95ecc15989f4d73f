// The GPU quantizer of float inputs (kernels/int8/quantize-input.ts) equals quantizeF32 value for value: random
// floats over and beyond the quantized range, each threshold and its float neighbours (where a rounding or a
// division error would show), +-0, +-inf, NaN bit patterns, subnormals; int8 and uint8, several scales and zero
// points. The threshold table is checked on the host too (the kernel's search in TypeScript), so a wrong table and
// a wrong kernel fail apart.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { type QType, orderKey, quantizeF32, quantizeThresholds } from '../../../src/quant/reference.js';
import { int8QuantizeInput } from '../../../kernels/int8/quantize-input.js';
import { unpack8 } from '../../../kernels/int8/common.js';
import { closeInt8Device, deviceLimits, runInt8 } from './harness.js';
import { makeRng } from './cases.js';

after(closeInt8Device);

const cases: Array<{ t: QType; scale: number; zp: number }> = [
  { t: 'uint8', scale: 0.0078125, zp: 128 }, { t: 'uint8', scale: 0.017352, zp: 114 }, { t: 'int8', scale: 0.0235294, zp: -1 },
  { t: 'int8', scale: 3.1e-5, zp: -128 }, { t: 'uint8', scale: 255, zp: 0 }, { t: 'int8', scale: 0.1, zp: 127 },
];

function values(t: QType, scale: number, zp: number): Float32Array {
  const r = makeRng(Math.round(scale * 1e6) + zp + 7);
  const th = quantizeThresholds({ scale, zeroPoint: zp }, t);
  const bits: number[] = [0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x7f800001, 1, 0x80000001, 0x007fffff];
  // Each threshold's float and its neighbours, from the order key back to bits.
  const fromKey = (k: number) => (k & 0x80000000 ? k & 0x7fffffff : ~k >>> 0);
  for (const k of th) for (const d of [-2, -1, 0, 1, 2]) bits.push(fromKey((k + d) >>> 0));
  const u = new Uint32Array(bits);
  const f = new Float32Array(u.buffer);
  const span = 300 * scale;
  const rnd = Float32Array.from({ length: 3001 }, () => (r() * 2 - 1) * span);
  const out = new Float32Array(f.length + rnd.length);
  out.set(f);
  out.set(rnd, f.length);
  return out;
}

test('quantizeThresholds: qmin plus the thresholds at or below x is quantizeF32, NaN aside', () => {
  for (const c of cases) {
    const q = { scale: c.scale, zeroPoint: c.zp };
    const th = quantizeThresholds(q, c.t);
    assert.equal(th.length, 255);
    for (let i = 1; i < th.length; i++) assert.ok(th[i] >= th[i - 1], 'thresholds ascend');
    const x = values(c.t, c.scale, c.zp);
    const want = quantizeF32(x, q, c.t);
    const bits = new Uint32Array(x.buffer);
    const lo = c.t === 'int8' ? -128 : 0;
    for (let i = 0; i < x.length; i++) {
      if (Number.isNaN(x[i])) { assert.equal(want[i], 0); continue; }
      const k = orderKey(bits[i]);
      let n = 0;
      while (n < th.length && th[n] <= k) n++;
      assert.equal(lo + n, want[i], `${c.t} scale ${c.scale} zp ${c.zp}: x = ${x[i]} (bits ${bits[i].toString(16)})`);
    }
  }
});

test('int8QuantizeInput on the GPU equals quantizeF32 bit for bit', async () => {
  const limits = await deviceLimits();
  for (const c of cases) {
    const q = { scale: c.scale, zeroPoint: c.zp };
    const x = values(c.t, c.scale, c.zp);
    const p = int8QuantizeInput(x.length, q, c.t, limits, 'x');
    const [words] = await runInt8(p, [new Uint32Array(x.buffer)], [Math.ceil(x.length / 4)]);
    const got = unpack8(words, x.length, c.t);
    const want = quantizeF32(x, q, c.t);
    for (let i = 0; i < x.length; i++) assert.equal(got[i], want[i], `${c.t} scale ${c.scale} zp ${c.zp}: x = ${x[i]}`);
    // The padding bytes of the last word are zero.
    if (x.length % 4) assert.equal(words[words.length - 1] >>> (8 * (x.length % 4)), 0);
  }
});
