// What every integer (int8 / uint8) kernel shares: its arguments (the node and the IR tensors of its inputs and
// outputs, with their quantization and, for constants, their data), the packed 8-bit buffer layout, the WGSL
// fixed-point library (TFLite's SaturatingRoundingDoublingHighMul, RoundingDivideByPOT,
// MultiplyByQuantizedMultiplier, bit-exact) and the packed 4x8 dot product with its unpacking fallback.
//
// Buffer layout. An 8-bit tensor is its flat row-major (IR layout, NCHW for rank 4) bytes, four per u32, byte k of
// word j being element 4j + k (little-endian: a Uint32Array view of the Int8Array / Uint8Array bytes), the last word
// zero-padded: ceil(n / 4) words. Kernels read bytes with ld_NAME(i) and write whole words, so no two invocations
// ever write the same word (kernels whose tiles cannot own whole words use the atomic byte store below).
//
// Constants (weights, biases, requantization multipliers) are prepared on the host by the kernel function itself
// (Int8Program.constants) and bound after the activation inputs, so the runtime uploads what it is given.

import type { Node, Quantization, Tensor, TensorData } from '../../src/graph/ir.js';
import { invalid, unsupported } from '../../src/errors.js';
import { quantizeMultiplierSmallerThanOneExp, tfliteRound } from '../../src/quant/fixedpoint.js';
import { type QType, qLimits } from '../../src/quant/reference.js';
import type { KernelArgs, KernelProgram } from '../program.js';

export { qLimits, type QType };

/**
 * What every integer kernel takes: KernelArgs' node and limits, with the IR tensors in place of their shapes (the
 * shapes live in the tensors, so they cannot disagree; `shapeArgs` gives the KernelArgs view). `inputs[i]` is the IR
 * tensor of node.inputs[i] (undefined for ''), with shape, dtype, quant and, for constants, data; `outputs[i]` that
 * of node.outputs[i]. `dot4`: the adapter offers the WGSL
 * language feature packed_4x8_integer_dot_product (navigator.gpu.wgslLanguageFeatures; the `webgpu` package's
 * GPU object has the same set); false forces the unpacking fallback.
 */
export interface Int8KernelArgs extends Pick<KernelArgs, 'node' | 'limits'> {
  inputs: readonly (Tensor | undefined)[];
  outputs: readonly Tensor[];
  dot4: boolean;
  /**
   * A residual Add folded into the kernel (src/runtime/compile.ts): the kernel computes its own output on
   * outputs[0]'s grid exactly as it would store it, then TFLite's ADD of that value and node.inputs[index] (the
   * residual) onto `sum`'s grid, with the Add's activation (`attrs`), and stores the sum. Kernels that take it
   * bind the residual (their program's `inputs` hold `index`); the registry refuses the others.
   */
  residual?: ResidualAdd;
  /**
   * outputs[0] is the node's output as a QUANTIZE to the other 8-bit type stores it, on the same scale with zero
   * points 128 apart (an exact shift of every value), folded into the kernel (src/runtime/compile.ts). Softmax
   * takes it; the registry refuses it for any other op.
   */
  requantizedOutput?: boolean;
  /**
   * The buffer bound as input 0 holds inputs[0]'s values on the other 8-bit type's grid (the same scale, zero points
   * 128 apart: a QUANTIZE between them folded in, src/runtime/compile.ts), so each byte with its top bit flipped is
   * inputs[0]'s byte. Kernels that take it say so (Int8Program.inputFlipped); the registry refuses the others.
   */
  flippedInput?: boolean;
  /**
   * Integer subgroup matrices on this device that passed their check (src/runtime/int8-subgroup-matrix-check.ts):
   * pointwise convolutions take kernels/int8/pointwise-subgroup-matrix.ts where its chooser gives them tiles.
   */
  subgroupMatrix?: Int8SmxSupport;
}

/**
 * What a device offers the integer subgroup-matrix kernel: per 8-bit type, the N (16, else 8) of an M16 K32
 * configuration with 8-bit components and a 32-bit result of the same signedness (i8 -> i32, u8 -> u32), at one
 * subgroup size (kernels/int8/pointwise-subgroup-matrix.ts int8SubgroupMatrixSupport).
 */
export interface Int8SmxSupport {
  subgroupSize: number;
  n: Partial<Record<QType, 16 | 8>>;
  /** The kernel's emulated form (plain WGSL at the same offsets): whole schedules tested on devices without the feature. */
  emulate?: boolean;
}

/** A residual Add folded into the kernel that computes one of its operands. */
export interface ResidualAdd { index: number; sum: Tensor; attrs: Node['attrs'] }

/** A host-prepared constant buffer (u32 words; i32 data is stored as its bit pattern). */
export interface ConstantBuffer { name: string; data: Uint32Array }

/**
 * An integer kernel's program. Bindings in group 0, in order: the activation inputs (`inputs`: indices into
 * node.inputs, each bound as its packed 8-bit buffer), then `constants` in order (read-only storage, uploaded
 * once), then the outputs (packed 8-bit, ceil(n / 4) u32 words each). No uniforms.
 */
export interface Int8Program extends KernelProgram {
  constants: ConstantBuffer[];
  /** It reads input 0 with every byte's top bit flipped (Int8KernelArgs.flippedInput). */
  inputFlipped?: boolean;
}

/** The KernelArgs view (shapes only) that the fp32 helpers (convGeom, attribute readers) take. */
export function shapeArgs(args: Int8KernelArgs): KernelArgs {
  return {
    node: args.node,
    inputShapes: args.inputs.map((t) => t?.shape),
    outputShapes: args.outputs.map((t) => t.shape),
    limits: args.limits,
  };
}

// ---- quantization parameters -----------------------------------------------------------------------------------

export interface QInfo { type: QType; scale: number; zeroPoint: number }

/** Per-tensor quantization of an 8-bit activation tensor. */
export function qTensor(t: Tensor | undefined, what: string, w: string): QInfo {
  if (!t) throw invalid(w, `${what} is missing`);
  if (t.dtype !== 'int8' && t.dtype !== 'uint8') throw unsupported(w, `${what} '${t.name}' is ${t.dtype}, not a quantized 8-bit tensor`);
  const q = t.quant;
  if (!q || q.scale.length !== 1) throw unsupported(w, `${what} '${t.name}' needs per-tensor quantization`);
  const zp = q.zeroPoint[0] ?? 0;
  const [lo, hi] = qLimits(t.dtype);
  if (!(q.scale[0] > 0) || !Number.isInteger(zp) || zp < lo || zp > hi) throw invalid(w, `${what} '${t.name}' has an invalid scale or zero point`);
  return { type: t.dtype, scale: q.scale[0], zeroPoint: zp };
}

/** Constant 8-bit weights: data, per-channel (axis 0) or per-tensor scales, and the uint8 zero point. */
export function qWeights(t: Tensor | undefined, what: string, w: string, type: QType): { data: Int8Array | Uint8Array; scales: number[]; zeroPoint: number } {
  if (!t) throw invalid(w, `${what} is missing`);
  if (!t.data || (t.dtype !== 'int8' && t.dtype !== 'uint8') || !t.quant) throw unsupported(w, `${what} '${t.name}' must be constant 8-bit quantized`);
  if (t.dtype !== type) throw unsupported(w, `${what} '${t.name}' is ${t.dtype}, the activations are ${type}`);
  const q: Quantization = t.quant;
  if (q.scale.length > 1 && (q.axis ?? 0) !== 0) throw unsupported(w, `${what} '${t.name}': per-channel weights must be quantized along axis 0`);
  if (q.scale.length !== 1 && q.scale.length !== t.shape[0]) throw invalid(w, `${what} '${t.name}' has ${q.scale.length} scales for ${t.shape[0]} channels`);
  // int8 weights are symmetric (TFLite requires zero point 0); uint8 weights carry one zero point.
  const zeroPoint = type === 'uint8' ? (q.zeroPoint[0] ?? 0) : 0;
  if (type === 'int8' && q.zeroPoint.some((z) => z !== 0)) throw unsupported(w, `${what} '${t.name}': int8 weights must be symmetric (zero point 0)`);
  return { data: t.data as Int8Array | Uint8Array, scales: q.scale, zeroPoint };
}

/** An int32 bias constant, or zeros. */
export function qBias(t: Tensor | undefined, n: number, w: string): Int32Array {
  if (!t) return new Int32Array(n);
  if (!(t.data instanceof Int32Array) || t.data.length !== n) throw unsupported(w, `bias '${t.name}' must be a constant int32 tensor of ${n} values`);
  return t.data;
}

/**
 * The integer clamp of a fused activation (attrs `activation${suffix}` / `activationParams${suffix}`: Relu or Clip)
 * on the output's grid, as kernel_util.cc CalculateActivationRangeQuantized computes it (float32 division).
 */
export function activationClamp(attrs: Node['attrs'], suffix: string, q: QInfo, w: string): [number, number] {
  const [qmin, qmax] = qLimits(q.type);
  const act = attrs[`activation${suffix}`];
  if (act === undefined) return [qmin, qmax];
  const p = (attrs[`activationParams${suffix}`] ?? []) as number[];
  let lo = -Infinity, hi = Infinity;
  if (act === 'Relu') lo = 0;
  else if (act === 'Clip') { lo = p[0] ?? -Infinity; hi = p[1] ?? Infinity; }
  else throw unsupported(w, `activation '${String(act)}' has no integer kernel (only Relu and Clip fuse into int8 layers)`);
  const f32 = Math.fround;
  const at = (v: number) => q.zeroPoint + tfliteRound(f32(v / f32(q.scale)));
  return [lo === -Infinity ? qmin : Math.max(qmin, at(lo)), hi === Infinity ? qmax : Math.min(qmax, at(hi))];
}

// ---- packing ----------------------------------------------------------------------------------------------------

/** Four 8-bit values per u32, zero-padded to whole words (the layout of every 8-bit buffer). */
export function pack8(x: ArrayLike<number>): Uint32Array {
  const bytes = new Uint8Array(Math.max(4, Math.ceil(x.length / 4) * 4));
  // 8-bit arrays are their bytes already: one copy (run() packs its quantized input every time).
  if (x instanceof Uint8Array || x instanceof Int8Array) bytes.set(new Uint8Array(x.buffer, x.byteOffset, x.length));
  else for (let i = 0; i < x.length; i++) bytes[i] = x[i] & 0xff;
  return new Uint32Array(bytes.buffer);
}

/** The first n values of a packed buffer, as int8 or uint8. */
export function unpack8(words: Uint32Array, n: number, type: QType): Int8Array | Uint8Array {
  const b = new Uint8Array(words.buffer, words.byteOffset, words.byteLength).slice(0, n);
  return type === 'int8' ? new Int8Array(b.buffer) : b;
}

export const packedWords = (n: number) => Math.max(1, Math.ceil(n / 4));

/** i32 data as u32 words (bit patterns). */
export function i32Words(v: ArrayLike<number>): Uint32Array {
  const a = Int32Array.from(v);
  return new Uint32Array(a.buffer);
}

export const dataOf = (t: TensorData) => t as unknown as ArrayLike<number>;

// ---- WGSL -------------------------------------------------------------------------------------------------------

/** Binding declarations: activation inputs, then constants (all array<u32>; i32 read via bitcast), then outputs. */
export function int8Bindings(inputs: readonly string[], constants: readonly string[], outputs: readonly string[] = ['out'], atomicOut = false): string {
  const lines: string[] = [];
  let b = 0;
  for (const n of [...inputs, ...constants]) lines.push(`@group(0) @binding(${b++}) var<storage, read> ${n}: array<u32>;`);
  for (const n of outputs) lines.push(`@group(0) @binding(${b++}) var<storage, read_write> ${n}: array<${atomicOut ? 'atomic<u32>' : 'u32'}>;`);
  return lines.join('\n');
}

/** `fn ld_NAME(i: u32) -> i32`: element i of a packed 8-bit buffer, sign- (int8) or zero-extended (uint8); `flip`: its top bit flipped first. */
export function loader(name: string, type: QType, flip = false): string {
  const word = `${name}[i >> 2u]${flip ? ' ^ 0x80808080u' : ''}`;
  return type === 'int8'
    ? `fn ld_${name}(i: u32) -> i32 { return extractBits(bitcast<i32>(${word}), (i & 3u) * 8u, 8u); }`
    : `fn ld_${name}(i: u32) -> i32 { return i32(extractBits(${word}, (i & 3u) * 8u, 8u)); }`;
}

/**
 * TFLite's fixed-point requantization in WGSL, bit-exact with src/quant/fixedpoint.ts.
 * srdhm: gemmlowp SaturatingRoundingDoublingHighMul. WGSL has no 64-bit integers, so the 62-bit product of the
 * magnitudes is formed from 16-bit limbs in u32 arithmetic (every partial product < 2^32), the nudge (2^30, or
 * 2^30 - 1 for a negative product, which makes the truncating int64 division a floor of the magnitude) added with
 * a carry, and bits 31..62 taken; INT32_MIN * INT32_MIN saturates to INT32_MAX as in gemmlowp.
 * (An exact short path for accumulators below 2^20, the quotient rounded from an f32 estimate with the low bits from
 * the wrapping product, ran 4-6% slower on an H100 in MobileNetV2's int8 passes: its int/float conversions run at a
 * quarter of the integer multiply-add rate there.)
 * rdbpot: gemmlowp RoundingDivideByPOT (ties away from zero). mbqm: common.h MultiplyByQuantizedMultiplier (left
 * shift wraps as in C++, then srdhm, then the rounding right shift) with the TFLite default double rounding.
 */
export const fixedPointWgsl = `
fn srdhm(a: i32, b: i32) -> i32 {
  if (a == -2147483647i - 1i && b == -2147483647i - 1i) { return 2147483647i; }
  let neg = (a < 0i) != (b < 0i);
  let ua = select(u32(a), 0u - u32(a), a < 0i);
  let ub = select(u32(b), 0u - u32(b), b < 0i);
  let nudge = select(0x40000000u, 0x3fffffffu, neg);
  let al = ua & 0xffffu; let ah = ua >> 16u;
  let bl = ub & 0xffffu; let bh = ub >> 16u;
  let ll = al * bl; let lh = al * bh; let hl = ah * bl; let hh = ah * bh;
  let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
  let lo = (ll & 0xffffu) | (mid << 16u);
  let hi = hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
  let lo2 = lo + nudge;
  let hi2 = hi + select(0u, 1u, lo2 < lo);
  let q = (hi2 << 1u) | (lo2 >> 31u);
  return select(i32(q), -i32(q), neg);
}
fn rdbpot(x: i32, e: u32) -> i32 {
  let mask = i32((1u << e) - 1u);
  let rem = x & mask;
  let threshold = (mask >> 1u) + select(0i, 1i, x < 0i);
  return (x >> e) + select(0i, 1i, rem > threshold);
}
fn mbqm(x: i32, m: i32, shift: i32) -> i32 {
  let left = u32(max(shift, 0i));
  let right = u32(max(-shift, 0i));
  return rdbpot(srdhm(x << left, m), right);
}
`;

/**
 * `fn dot4(a: u32, b: u32) -> i32`: the sum of the four byte products of two packed words, signed (int8) or unsigned
 * (uint8) bytes; with `native`, the WGSL built-in (requires packed_4x8_integer_dot_product), else by unpacking.
 */
export function dot4Wgsl(type: QType, native: boolean): string {
  if (native) {
    return type === 'int8'
      ? 'fn dot4(a: u32, b: u32) -> i32 { return dot4I8Packed(a, b); }'
      : 'fn dot4(a: u32, b: u32) -> i32 { return bitcast<i32>(dot4U8Packed(a, b)); }';
  }
  const ext = type === 'int8'
    ? (v: string, k: number) => `extractBits(bitcast<i32>(${v}), ${k * 8}u, 8u)`
    : (v: string, k: number) => `i32(extractBits(${v}, ${k * 8}u, 8u))`;
  const terms = [0, 1, 2, 3].map((k) => `${ext('a', k)} * ${ext('b', k)}`).join(' + ');
  return `fn dot4(a: u32, b: u32) -> i32 { return ${terms}; }`;
}

/**
 * `fn transpose4(a0, a1, a2, a3) -> array<u32, 4>`: the 4x4 byte transpose, word k of the result holding byte k of
 * a0..a3 (a0's in its low byte). Four words of 4 positions of 4 consecutive NCHW channels become 4 words of 4
 * channels of one position each: the operand a dot4 over channels takes, in 12 bit operations instead of 16 byte
 * extracts and inserts.
 */
export const transpose4Wgsl = `
fn transpose4(a0: u32, a1: u32, a2: u32, a3: u32) -> array<u32, 4> {
  let t0 = (a0 & 0x00ff00ffu) | ((a1 & 0x00ff00ffu) << 8u);
  let t1 = ((a0 >> 8u) & 0x00ff00ffu) | (a1 & 0xff00ff00u);
  let t2 = (a2 & 0x00ff00ffu) | ((a3 & 0x00ff00ffu) << 8u);
  let t3 = ((a2 >> 8u) & 0x00ff00ffu) | (a3 & 0xff00ff00u);
  return array<u32, 4>((t0 & 0xffffu) | (t2 << 16u), (t1 & 0xffffu) | (t3 << 16u), (t0 >> 16u) | (t2 & 0xffff0000u), (t1 >> 16u) | (t3 & 0xffff0000u));
}
`;

/**
 * `fn ldw_NAME(o: u32) -> u32`: the 4 bytes of a packed buffer from byte offset o (any alignment; bytes past the
 * buffer's end read as the clamped last word, and the callers discard what they hold); `flip`: each byte's top bit
 * flipped (Int8KernelArgs.flippedInput).
 */
export function wordLoader(name: string, words: number, flip = false): string {
  const f = flip ? ' ^ 0x80808080u' : '';
  return `fn ldw_${name}(o: u32) -> u32 {
  let q = o >> 2u;
  let s = (o & 3u) * 8u;
  let lo = ${name}[q]${f};
  if (s == 0u) { return lo; }
  return (lo >> s) | ((${name}[min(q + 1u, ${words - 1}u)]${f}) << (32u - s));
}`;
}

/**
 * The folded residual Add (Int8KernelArgs.residual) of a kernel whose own output has quantization `own`: WGSL
 * `fn addRes(v: u32, r: u32) -> u32`, the four sums of the bytes of an output word v (on the kernel's grid, as it
 * would store them) and of the residual word r, as TFLite's ADD computes them (reference.ts addSub: both sides
 * shifted left by 20 and scaled to twice the larger scale, summed, scaled to the sum's grid, clamped by the Add's
 * activation); the loader `ldw_res(o)` of the residual's 4 bytes from byte offset o (any alignment); the cache key
 * part. Integer addition commutes, so which operand of the Add the kernel computes does not matter.
 */
export function residualAddWgsl(args: Int8KernelArgs, own: QInfo, outWords: number): { wgsl: string; key: string; inputs: number[] } | undefined {
  const ra = args.residual;
  if (!ra) return undefined;
  const w = `node '${args.node.name}' (${args.node.op} + Add)`;
  const rt = args.inputs[ra.index];
  const rq = qTensor(rt, 'residual', w), yq = qTensor(ra.sum, 'sum', w);
  if (rq.type !== own.type || yq.type !== own.type) throw unsupported(w, 'the residual, the sum and the output must share one 8-bit type');
  const out = args.outputs[0].shape;
  if (rt!.shape.length !== out.length || rt!.shape.some((d, k) => d !== out[k]) || ra.sum.shape.some((d, k) => d !== out[k])) {
    throw unsupported(w, `the residual [${rt!.shape}] is not of the output's shape [${out}]`);
  }
  const twiceMax = 2 * Math.max(own.scale, rq.scale);
  const m1 = quantizeMultiplierSmallerThanOneExp(own.scale / twiceMax);
  const m2 = quantizeMultiplierSmallerThanOneExp(rq.scale / twiceMax);
  const mo = quantizeMultiplierSmallerThanOneExp(twiceMax / ((1 << 20) * yq.scale));
  const [lo, hi] = activationClamp(ra.attrs, '', yq, w);
  const c = [own.zeroPoint, rq.zeroPoint, yq.zeroPoint, m1.multiplier, m1.shift, m2.multiplier, m2.shift, mo.multiplier, mo.shift, lo, hi];
  const ext = own.type === 'int8' ? (v: string) => `extractBits(bitcast<i32>(${v}), k * 8u, 8u)` : (v: string) => `i32(extractBits(${v}, k * 8u, 8u))`;
  const wgsl = `${wordLoader('res', outWords)}
fn addRes(v: u32, r: u32) -> u32 {
  var o = 0u;
  for (var k = 0u; k < 4u; k++) {
    let s1 = mbqm((${ext('v')} - (${c[0]}i)) << 20u, ${c[3]}i, ${c[4]}i);
    let s2 = mbqm((${ext('r')} - (${c[1]}i)) << 20u, ${c[5]}i, ${c[6]}i);
    o |= (u32(clamp(mbqm(s1 + s2, ${c[7]}i, ${c[8]}i) + (${c[2]}i), ${c[9]}i, ${c[10]}i)) & 0xffu) << (k * 8u);
  }
  return o;
}`;
  return { wgsl, key: `res${c.join(',')}`, inputs: [ra.index] };
}

/** n copies of a WGSL fragment, unrolled in the source. */
export const unroll = (n: number, f: (i: number) => string, sep = '\n') => Array.from({ length: n }, (_, i) => f(i)).join(sep);

/**
 * The register tile of a dot4 pointwise phase, as scalar accumulators a0..a{n-1}: a{4r+k} sums filter r at
 * position k, and with `sums`, a{4RF+k} the byte sum of position k's words (uint8's weight zero point). Unrolled
 * scalars, not a private array: on the H200 an array indexed in loops spilled to local memory (a DW-PW
 * variant with one ran 2-3x slower than with scalars).
 */
export const declareAccs = (n: number) => unroll(n, (e) => `var a${e} = 0i;`, ' ');
/** One channel word of the tile: weight words w0..w{RF-1} from `weight(r)`, position words named x0..x3. */
export function dot4TileStep(RF: number, weight: (r: number) => string, sums: boolean, indent = '      '): string {
  const lines = unroll(RF, (r) => `let w${r} = ${weight(r)};\n${indent}${unroll(4, (k) => `a${r * 4 + k} += dot4(w${r}, x${k});`, ' ')}`, `\n${indent}`);
  return sums ? `${lines}\n${indent}${unroll(4, (k) => `a${RF * 4 + k} += dot4(x${k}, 0x01010101u);`, ' ')}` : lines;
}
/**
 * Split-K reduction of the accumulators over KS K-groups of G threads through `red` (workgroup array of
 * (KS - 1) * n * G i32): groups 1.. store, one barrier, group 0 adds (wrapping int32 addition: bit-exact).
 */
export function reduceAccs(n: number, KS: number, kg: string, lane: string, G: string): string {
  if (KS <= 1) return '';
  return `  if (${kg} > 0u && ${kg} < ${KS}u) {
    let rb = (${kg} - 1u) * ${n}u;
    ${unroll(n, (e) => `red[(rb + ${e}u) * ${G} + ${lane}] = a${e};`, ' ')}
  }
  workgroupBarrier();
  if (${kg} == 0u) {
    for (var k2 = 0u; k2 < ${KS - 1}u; k2++) {
      ${unroll(n, (e) => `a${e} += red[(k2 * ${n}u + ${e}u) * ${G} + ${lane}];`, ' ')}
    }
  }`;
}

/** `requires packed_4x8_integer_dot_product;` where the native dot product is used (a WGSL language feature). */
export const dot4Requires = (native: boolean) => (native ? 'requires packed_4x8_integer_dot_product;\n' : '');

/**
 * `fn st_out(i: u32, v: i32)` for an output bound as array<atomic<u32>>: stores byte i without disturbing the other
 * three bytes of its word, which other invocations may be writing (atomicAnd clears, atomicOr sets; both commute
 * with the other bytes' updates). `st_word` stores a whole word that one invocation owns.
 */
export const atomicByteStore = `
fn st_out(i: u32, v: i32) {
  let s = (i & 3u) * 8u;
  atomicAnd(&out[i >> 2u], ~(0xffu << s));
  atomicOr(&out[i >> 2u], (u32(v) & 0xffu) << s);
}
fn st_word(j: u32, w: u32) { atomicStore(&out[j], w); }
`;

/**
 * The body pattern of the elementwise-style kernels: each invocation owns one output word, i.e. the elements
 * 4j..4j+3, computes each with `fn elem(i: u32) -> i32` and stores the packed word (padding bytes 0).
 */
export function perWordMain(total: number, d: { workgroupSize: [number, number, number]; guard: string }): string {
  return `
@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  var word = 0u;
  for (var k = 0u; k < 4u; k++) {
    let e = j * 4u + k;
    if (e < ${total}u) { word |= (u32(elem(e)) & 0xffu) << (k * 8u); }
  }
  out[j] = word;
}
`;
}

