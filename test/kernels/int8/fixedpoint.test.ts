// The WGSL fixed-point library (kernels/int8/common.ts) against src/quant/fixedpoint.ts, bit for bit, on the device:
// every pair of a set of edge values (INT32_MIN, INT32_MAX, 0, +-1, limb boundaries 2^15, 2^16 +- 1, 2^30, ...)
// plus random pairs over the whole int32 range and over small ranges; and dot4 (native and fallback) against
// a TypeScript dot product of the bytes.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { multiplyByQuantizedMultiplier, roundingDivideByPOT, srdhm, srdhmBigInt } from '../../../src/quant/fixedpoint.js';
import { type Int8Program, dot4Requires, dot4Wgsl, fixedPointWgsl, int8Bindings } from '../../../kernels/int8/common.js';
import { rng } from '../../../fixtures/tflite-builder.js';
import { closeInt8Device, hasDot4, runInt8 } from './harness.js';

after(closeInt8Device);

const I32_MIN = -2147483648, I32_MAX = 2147483647;
const edges = [
  I32_MIN, I32_MIN + 1, I32_MAX, I32_MAX - 1, 0, 1, -1, 2, -2, 32767, 32768, -32768, -32769, 65535, 65536, 65537, -65535,
  -65536, -65537, 1 << 30, -(1 << 30), (1 << 30) + 1, (1 << 30) - 1, 1073741823, 1518500250, -1518500250, 0x7fff0000,
  -0x7fff0000, 0x0000ffff | 0x10000, 123456789, -987654321,
  // Around 2^20, the largest accumulators of short channel loops.
  (1 << 20) - 1, 1 << 20, (1 << 20) + 1, -((1 << 20) - 1), -(1 << 20), -((1 << 20) + 1), 1000000, -999999,
];

function program(count: number): Int8Program {
  const wgsl = `
${int8Bindings(['args'], [])}
${fixedPointWgsl}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * 65535u * 64u;
  if (i >= ${count}u) { return; }
  let a = bitcast<i32>(args[3u * i]);
  let b = bitcast<i32>(args[3u * i + 1u]);
  let e = bitcast<i32>(args[3u * i + 2u]);
  out[3u * i] = bitcast<u32>(srdhm(a, b));
  out[3u * i + 1u] = bitcast<u32>(rdbpot(a, u32(abs(e) % 32i)));
  out[3u * i + 2u] = bitcast<u32>(mbqm(a, b, e));
}`;
  const groups = Math.ceil(count / 64);
  return {
    name: 'fixedpoint-test', cacheKey: `fp${count}`, wgsl, workgroupSize: [64, 1, 1],
    dispatch: [Math.min(groups, 65535), Math.ceil(groups / 65535), 1], inputs: [0], outputs: 1, workgroupStorageBytes: 0, constants: [],
  };
}

test('srdhm, rdbpot and mbqm in WGSL equal fixedpoint.ts on edge and random values', async () => {
  const r = rng(1234);
  const triples: Array<[number, number, number]> = [];
  for (const a of edges) for (const b of edges) triples.push([a, b, (triples.length % 43) - 31]);
  const rnd32 = () => (Math.floor(r() * 2 ** 32) | 0);
  // Accumulators below 2^20 (convolutions of 8-bit values over short channel loops) against multipliers over the whole
  // range, and against multipliers that put |a| |b| + nudge within a few units of a multiple of 2^31 (the rounding
  // boundary of the quotient).
  for (let k = 0; k < 40000; k++) {
    const a = (Math.floor(r() * 2 ** 21) - 2 ** 20) >> Math.floor(r() * 20);
    let b = rnd32();
    if (k % 2 && a !== 0) {
      const ua = BigInt(Math.abs(a)), nudge = (a < 0) !== (b < 0) ? (1n << 30n) - 1n : 1n << 30n;
      const q = BigInt(Math.floor(r() * Math.abs(a)));
      const want = q * (1n << 31n) + BigInt(Math.floor(r() * 5) - 2) - nudge;
      const mag = want / ua;
      if (mag > 0n && mag < 1n << 31n) b = (b < 0 ? -1 : 1) * Number(mag);
    }
    triples.push([a, b, (k % 43) - 31]);
  }
  for (let k = 0; k < 30000; k++) {
    const kind = k % 4;
    const a = kind === 0 ? rnd32() : kind === 1 ? Math.floor(r() * 200001) - 100000 : kind === 2 ? rnd32() >> Math.floor(r() * 31) : Math.floor(r() * 512) - 256;
    const b = kind === 3 ? 1073741824 + Math.floor(r() * 1073741823) : kind === 2 ? rnd32() >> Math.floor(r() * 31) : rnd32();
    // Shifts as QuantizeMultiplier produces them ([-31, 30]); left shifts of large x wrap as in C++.
    const e = Math.floor(r() * 62) - 31;
    triples.push([a, b, e]);
  }
  const words = new Uint32Array(new Int32Array(triples.flat()).buffer);
  const [out] = await runInt8(program(triples.length), [words], [triples.length * 3]);
  const got = new Int32Array(out.buffer);
  let checked = 0;
  for (let i = 0; i < triples.length; i++) {
    const [a, b, e] = triples[i];
    const want = srdhm(a, b);
    assert.equal(want, srdhmBigInt(a, b), `fixedpoint.ts srdhm(${a}, ${b}) disagrees with its BigInt form`);
    assert.equal(got[3 * i], want, `srdhm(${a}, ${b})`);
    assert.equal(got[3 * i + 1], roundingDivideByPOT(a, Math.abs(e) % 32), `rdbpot(${a}, ${Math.abs(e) % 32})`);
    assert.equal(got[3 * i + 2], multiplyByQuantizedMultiplier(a, b, e), `mbqm(${a}, ${b}, ${e})`);
    checked++;
  }
  assert.equal(checked, edges.length ** 2 + 70000);
  assert.equal(got[0], I32_MAX, 'INT32_MIN * INT32_MIN saturates');
});

for (const type of ['int8', 'uint8'] as const) {
  for (const native of [true, false]) {
    test(`dot4 ${type} ${native ? 'native (dot4' + (type === 'int8' ? 'I8' : 'U8') + 'Packed)' : 'unpacking fallback'}`, async (t) => {
      if (native && !(await hasDot4())) { t.skip('adapter lacks packed_4x8_integer_dot_product'); return; }
      const r = rng(type === 'int8' ? 5 : 6);
      const n = 4096;
      const words = new Uint32Array(2 * n);
      for (let i = 0; i < words.length; i++) words[i] = Math.floor(r() * 2 ** 32);
      // Extremes: all bytes -128 / 127 / 255.
      words.set([0x80808080, 0x80808080, 0x7f7f7f7f, 0x80808080, 0xffffffff, 0xffffffff, 0, 0xffffffff]);
      const wgsl = `${dot4Requires(native)}
${int8Bindings(['v'], [])}
${dot4Wgsl(type, native)}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x >= ${n}u) { return; }
  out[gid.x] = bitcast<u32>(dot4(v[2u * gid.x], v[2u * gid.x + 1u]));
}`;
      const p: Int8Program = { name: 'dot4-test', cacheKey: 'dot4', wgsl, workgroupSize: [64, 1, 1], dispatch: [n / 64, 1, 1], inputs: [0], outputs: 1, workgroupStorageBytes: 0, constants: [] };
      const [out] = await runInt8(p, [words], [n]);
      const got = new Int32Array(out.buffer);
      const bytes = type === 'int8' ? new Int8Array(words.buffer) : new Uint8Array(words.buffer);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let k = 0; k < 4; k++) s += bytes[8 * i + k] * bytes[8 * i + 4 + k];
        assert.equal(got[i], s, `dot4 #${i}`);
      }
    });
  }
}
