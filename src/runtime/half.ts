// IEEE 754 binary16 on the host: the bits of the f16 tensors the fp16 executor uploads (weights, feeds) and reads
// back (outputs). Node 20 has no Float16Array; these are the conversions WGSL's f16() does: round to nearest, ties
// to even, overflow to infinity, subnormals kept, NaN kept NaN.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The binary16 bits of the float32 with bits `x` (round to nearest even). */
function halfOfBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: value / 2^-24, from the 24-bit significand.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the significand moves to the next exponent (up to infinity), as it should.
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

/** The binary16 bits of `v` (rounded to nearest even from its float32 value). */
export function toHalfBits(v: number): number {
  f32[0] = v;
  return halfOfBits(u32[0]);
}

let table: Float32Array | undefined;

/** Every binary16 value by its bits (256 KiB, made on first use). */
function halfTable(): Float32Array {
  if (table) return table;
  table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f, m = h & 0x3ff;
    table[h] = e === 0 ? sign * m * 2 ** -24 : e === 0x1f ? (m ? NaN : sign * Infinity) : sign * (1 + m / 1024) * 2 ** (e - 15);
  }
  return table;
}

/** The value of binary16 bits `h`. */
export const fromHalfBits = (h: number): number => halfTable()[h & 0xffff];

/** `v` rounded to binary16 (the float64 reference tests compare with). */
export const roundHalf = (v: number): number => fromHalfBits(toHalfBits(v));

/** binary16 bits of every value (a Float32Array is read through its bits: no float round trip per element). */
export function toHalf(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  if (values instanceof Float32Array) {
    const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
    for (let i = 0; i < bits.length; i++) out[i] = halfOfBits(bits[i]);
  } else {
    for (let i = 0; i < values.length; i++) out[i] = toHalfBits(values[i]);
  }
  return out;
}

/** float32 values of binary16 bits. */
export function fromHalf(bits: Uint16Array): Float32Array {
  const t = halfTable();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]];
  return out;
}
