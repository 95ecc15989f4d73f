// Integer pointwise (1x1, stride 1, no padding, group 1) convolution with packed 4x8 dot products:
// out[n, f, p] = requant(sum_c (w[f, c] - zw) * (x[n, c, p] - zx) + bias[f]).
//
// The zero points are folded (exact in wrapping int32 arithmetic, so bit-exact with TFLite's accumulation):
// sum (w - zw)(x - zx) = sum w x - zx sum w - zw sum x + C zx zw. The host folds the x-independent terms into the
// bias (foldBias); int8 weights are symmetric (zw = 0), so int8 needs only sum w x; uint8 also needs sum x per
// position, one more dot4 against 0x01010101 per word.
//
// Two kernels: the word kernel (int8PointwiseWords: a thread owns 4 filters x one word of 4 positions, K split
// inside the workgroup) for maps of 4 positions or more, split-K (int8PointwiseSplitK: several threads per
// output) for 1x1..1x3 maps. Both take the weights as the host packed them, rows padded to whole words, and build
// dot4 operands of 4 channels of one position from the NCHW bytes.
//
// Constants: `wp` the weights [F, ceil(C/4)] words; `qp` 4 words per filter (folded bias, multiplier, shift, 0).

import { invalid, overLimit } from '../../src/errors.js';
import { geomKey, isPointwise } from '../conv-common.js';
import { cacheKey, ceilDiv, constsI32, constsU32, layoutWorkgroups, pow2AtMost, threadCap, where } from '../shader.js';
import {
  type Int8KernelArgs, type Int8Program, type QType, atomicByteStore, dot4Requires, dot4Wgsl, fixedPointWgsl,
  declareAccs, int8Bindings, loader, reduceAccs, residualAddWgsl, transpose4Wgsl, unroll, wordLoader,
} from './common.js';
import { channelParams, convQuant } from './conv-common.js';

/**
 * Rows of 8-bit values packed four per word, each row zero-padded to whole words: rows x ceil(len / 4) words.
 * Rows past the data (rows > w.length / len) are zero.
 */
export function packRows(w: ArrayLike<number>, rows: number, len: number): Uint32Array {
  const l4 = Math.ceil(len / 4) * 4;
  const bytes = new Uint8Array(Math.max(4, rows * l4));
  const have = Math.min(rows, Math.floor(w.length / Math.max(1, len)));
  for (let r = 0; r < have; r++) for (let c = 0; c < len; c++) bytes[r * l4 + c] = w[r * len + c] & 0xff;
  return new Uint32Array(bytes.buffer);
}

/** bias[r] - zx * sum_c w[r, c] + len * zx * zw (int32, wrapping as the device does). */
export function foldBias(bias: ArrayLike<number>, w: ArrayLike<number>, rows: number, len: number, zx: number, zw: number): Int32Array {
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < len; c++) s += w[r * len + c];
    out[r] = (bias[r] - Math.imul(zx, s) + Math.imul(Math.imul(len, zx), zw)) | 0;
  }
  return out;
}


/** WGSL building a word of 4 consecutive channels c..c+3 (< C) at element offset `base + k * stride`. */
export function gatherWord(load: string, base: string, stride: string, c: string, C: string): string {
  return `{
      var word = 0u;
      for (var k = 0u; k < 4u; k++) {
        if (${c} + k < ${C}) { word |= (u32(${load}(${base} + k * ${stride})) & 0xffu) << (k * 8u); }
      }
      WORD_OUT = word;
    }`;
}

/**
 * The word kernel wherever a row of the map holds at least one word of positions; split-K for 1x1..1x3 maps
 * (classifiers, squeeze-excite), whose few outputs need many threads each. (The word kernel replaced a tiled one,
 * 64 filters x 64 positions per workgroup through workgroup memory: on the H200 that ran MobileNetV1's 14x14
 * 512->512 layers in 55 us against 15, its tiles leaving 32 workgroups for 132 SMs.)
 */
export function int8Pointwise(args: Int8KernelArgs): Int8Program {
  const g = convQuant(args).g;
  return g.H * g.W >= 4 ? int8PointwiseWords(args) : int8PointwiseSplitK(args);
}

/** The program of a pointwise kernel: one input, the packed weight rows (`rows` of them) and per-filter parameters. */
function pointwiseProgram(name: string, key: string, wgsl: string, T: number, dispatch: [number, number, number], bytes: number,
  q: ReturnType<typeof convQuant>, rows: number, inputs = [0]): Int8Program {
  const folded = foldBias(q.bias, q.w, q.g.F, q.g.C, q.xq.zeroPoint, q.wZeroPoint);
  return {
    name, cacheKey: key, wgsl, workgroupSize: [T, 1, 1], dispatch, inputs, outputs: 1, workgroupStorageBytes: bytes,
    constants: [{ name: 'wp', data: packRows(q.w, rows, q.g.C) }, { name: 'qp', data: channelParams(folded, q.multipliers, q.shifts) }],
  };
}

/** What the pointwise kernels start from: the node's integer parameters, its map size and words of channels. */
function pointwiseSetup(args: Int8KernelArgs) {
  const w = where(args);
  const q = convQuant(args);
  const g = q.g;
  if (!isPointwise(g)) throw invalid(w, 'not a pointwise convolution (1x1, stride 1, no padding, group 1)');
  return { w, q, g, t: q.xq.type as QType, P: g.H * g.W, C4: Math.ceil(g.C / 4) };
}

/**
 * `fn store(n, f, j, word)`: output word j (positions 4j..4j+3 < P) of row (n, f) of an NCHW output with F rows
 * of P bytes, from a byte offset of any alignment (whole-word store where it is aligned, else atomic bytes).
 */
export const rowStoreWgsl = `
fn store(n: u32, f: u32, j: u32, word: u32) {
  let o0 = (n * F + f) * P + j * 4u;
  if ((o0 & 3u) == 0u && j * 4u + 3u < P) {
    st_word(o0 >> 2u, word);
  } else {
    for (var k = 0u; k < 4u; k++) {
      if (j * 4u + k < P) { st_out(o0 + k, i32(extractBits(word, k * 8u, 8u))); }
    }
  }
}`;

/** Threads the word kernel aims for before splitting K: about 512 per SM of a large GPU (132 SMs). */
export const wordsTargetThreads = 132 * 512;

/**
 * The word kernel's register tile: `rf` filters x `pw` words of 4 consecutive positions per thread (rf * pw * 4
 * accumulators). Per step of 4 channels a thread loads 4 * pw input words and rf weight words for 4 * rf * pw dot4.
 */
export interface WordTile { rf: number; pw: number }

export const wordTileKey = (t: WordTile) => `RF${t.rf}PW${t.pw}`;

/** The tiles the chooser picks among, smallest first (bench/int8-subgroup-matrix.ts times them all). */
export const wordTileVariants: readonly WordTile[] = [{ rf: 4, pw: 1 }, { rf: 4, pw: 2 }, { rf: 8, pw: 2 }, { rf: 8, pw: 4 }];

/** Threads (before splitting K) of a layer with this tile. */
export const wordUnits = (g: { N: number; F: number }, P: number, t: WordTile) => g.N * ceilDiv(g.F, t.rf) * ceilDiv(ceilDiv(P, 4), t.pw);

/**
 * The register tile of a layer: 4 filters x 1 word (the tile measured on the H200) wherever larger tiles would leave
 * fewer than twice wordsTargetThreads threads (every MobileNetV2 layer at batch 1); larger tiles (fewer loads per
 * dot4) only where the layer has threads to spare (large batches). Fewer than 4 filters: 1 or 2.
 */
export function chooseWordTile(g: { N: number; F: number }, P: number): WordTile {
  if (g.F < 4) return { rf: g.F >= 2 ? 2 : 1, pw: 1 };
  let best = wordTileVariants[0];
  for (const t of wordTileVariants) if (g.F >= t.rf && ceilDiv(P, 4) >= t.pw && wordUnits(g, P, t) >= 2 * wordsTargetThreads) best = t;
  return best;
}

/**
 * Pointwise on whole words, no workgroup memory but the split-K reduction. A thread owns RF filters x PW words of 4
 * consecutive positions (NCHW: 4 consecutive bytes of each output row; tile: chooseWordTile, or `tile`) and a
 * K-group of KS walks every KS-th word of 4 channels: it loads the 4 input words of those channels at each of its PW
 * position words, transposes each quad into 4 words of 4 channels (transpose4) and takes 4 x RF x PW dot4 with the
 * RF weight words. KS K-groups share a workgroup and add their partial sums in workgroup memory (wrapping int32
 * addition: bit-exact), so that small maps (14x14, 7x7 at batch 1) still run about wordsTargetThreads threads. Rows
 * that start on a word (P % 4 == 0) are read and written as whole words; other maps read through ldw (a funnel shift
 * of two words) and store bytes atomically. Consecutive threads of a K-group take consecutive blocks of PW position
 * words: coalesced loads and stores. A row's last block may hold fewer than PW words: its loads are clamped to the
 * row's last word and its stores skipped.
 */
export function int8PointwiseWords(args: Int8KernelArgs, tile?: WordTile): Int8Program {
  const { w, q, g, t, P, C4 } = pointwiseSetup(args);
  const tl = tile ?? chooseWordTile(g, P);
  if (!Number.isInteger(tl.rf) || !Number.isInteger(tl.pw) || tl.rf < 1 || tl.pw < 1 || tl.rf * tl.pw > 64) {
    throw invalid(w, `word tile ${wordTileKey(tl)}: rf and pw must be positive integers with rf * pw <= 64`);
  }
  const T = Math.max(32, pow2AtMost(threadCap(args.limits)));
  const RF = tl.rf, PW = tl.pw;
  const FBLK = ceilDiv(g.F, RF), P4 = ceilDiv(P, 4), PB = ceilDiv(P4, PW);
  const units = g.N * FBLK * PB;
  const aligned = P % 4 === 0;
  const hasWzp = q.wZeroPoint !== 0;
  const acc = (r: number, v: number, k: number) => `a${(r * PW + v) * 4 + k}`;
  const sum = (v: number, k: number) => `a${RF * PW * 4 + v * 4 + k}`;
  const nacc = RF * PW * 4 + (hasWzp ? PW * 4 : 0);
  // Workgroup memory of a split into k K-groups: the reduction's partial sums, and the stores of unaligned rows.
  const bytesFor = (k: number) => 4 * ((k - 1) * nacc * (T / k) + (aligned ? 0 : RF * PW * (T / k)));
  if (bytesFor(1) > args.limits.maxComputeWorkgroupStorageSize) throw overLimit(w, `word tile ${wordTileKey(tl)} needs ${bytesFor(1)} bytes of workgroup storage`);
  let ks = 1;
  while (ks * 2 <= 8 && ks * 2 <= T / 32 && units * ks < wordsTargetThreads && C4 >= ks * 4
    && bytesFor(ks * 2) <= args.limits.maxComputeWorkgroupStorageSize) ks *= 2;
  const TT = T / ks;
  const total = ceilDiv(units, TT);
  const d = layoutWorkgroups(total, args.limits, w);
  const xWords = Math.max(1, ceilDiv(g.N * g.C * P, 4));
  const native = args.dot4;
  // A folded residual Add: each output word plus the residual's word at the same place (residualAddWgsl).
  const ra = residualAddWgsl(args, q.yq, Math.max(1, ceilDiv(g.N * g.F * P, 4)));
  const withRes = (word: string) => (ra ? `addRes(${word}, ldw_res((n * F + f) * P + j * 4u))` : word);
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  // One step of 4 channels: the input words of each position word (clamped into the row), transposed, then the dot4s.
  const step = range(PW).map((v) => {
    const j = PW === 1 ? 'jb' : `min(jb * PW + ${v}u, P4 - 1u)`;
    const loads = range(4).map((i) => (g.C % 4 === 0 || i === 0
      ? `let e${i}_${v} = ldw_x(b${v} + ${i}u * P);`
      : `var e${i}_${v} = 0u; if (c4 * 4u + ${i}u < C) { e${i}_${v} = ldw_x(b${v} + ${i}u * P); }`));
    return `let b${v} = (n * C + c4 * 4u) * P + ${j} * 4u;
      ${loads.join('\n      ')}
      let xv${v} = transpose4(e0_${v}, e1_${v}, e2_${v}, e3_${v});
      ${range(4).map((k) => `let x${v}_${k} = xv${v}[${k}];`).join(' ')}`;
  }).join('\n      ');
  const dots = range(RF).map((r) => `let w${r} = wp[wb + ${r}u * C4 + c4];
      ${range(PW).map((v) => range(4).map((k) => `${acc(r, v, k)} += dot4(w${r}, x${v}_${k});`).join(' ')).join('\n      ')}`).join('\n      ')
    + (hasWzp ? `
      ${range(PW).map((v) => range(4).map((k) => `${sum(v, k)} += dot4(x${v}_${k}, 0x01010101u);`).join(' ')).join('\n      ')}` : '');
  const wgsl = `${dot4Requires(native)}
${int8Bindings(ra ? ['x', 'res'] : ['x'], ['wp', 'qp'], ['out'], !aligned)}
${constsU32({ C: g.C, F: g.F, P, P4, PB, PW, C4, RF, FBLK, KS: ks, TT, UNITS: units, TOTAL: total, DISPATCH_X: d.dispatchX })}
${constsI32({ ZW: q.wZeroPoint, ZO: q.yq.zeroPoint, LO: q.clamp[0], HI: q.clamp[1] })}
${aligned ? 'fn ldw_x(o: u32) -> u32 { return x[o >> 2u]; }' : wordLoader('x', xWords)}
${transpose4Wgsl}
${dot4Wgsl(t, native)}
${fixedPointWgsl}
${aligned ? '' : atomicByteStore}
${ra?.wgsl ?? ''}
${ks > 1 ? `var<workgroup> red: array<i32, ${(ks - 1) * nacc * TT}>;` : ''}
${aligned ? '' : `var<workgroup> fin: array<u32, ${RF * PW * TT}>;`}

${aligned ? '' : rowStoreWgsl}

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  // No early return: every thread reaches the reduction's barrier.
  let g = wid.x + wid.y * DISPATCH_X;
  let kg = li / TT;
  let l = li % TT;
  let u = g * TT + l;
  let valid = g < TOTAL && u < UNITS;
  let jb = u % PB;
  let fb = (u / PB) % FBLK;
  let n = u / (PB * FBLK);
  ${declareAccs(nacc)}
  if (valid) {
    let wb = fb * RF * C4;
    for (var c4 = kg; c4 < C4; c4 += KS) {
      ${step}
      ${dots}
    }
  }
${reduceAccs(nacc, ks, 'kg', 'l', 'TT')}
  if (kg == 0u && valid) {
    ${range(RF).map((r) => `{
      let f = fb * RF + ${r}u;
      if (f < F) {
        let bias = bitcast<i32>(qp[4u * f]);
        let m = bitcast<i32>(qp[4u * f + 1u]);
        let s = bitcast<i32>(qp[4u * f + 2u]);
        ${range(PW).map((v) => `{
          let j = jb * PW + ${v}u;
          ${PW > 1 ? 'if (j < P4) {' : '{'}
            var word = 0u;
            ${range(4).map((k) => `word |= (u32(clamp(mbqm(${acc(r, v, k)} + bias${hasWzp ? ` - ZW * ${sum(v, k)}` : ''}, m, s) + ZO, LO, HI)) & 0xffu) << ${k * 8}u;`).join('\n            ')}
            ${aligned ? `out[(n * F + f) * P4 + j] = ${withRes('word')};` : `fin[${r * PW + v}u * TT + l] = ${withRes('word')};`}
          }
        }`).join('\n        ')}
      }
    }`).join('\n    ')}
  }
${aligned ? '' : `  // Unaligned rows: byte stores are atomics, so every thread of the workgroup takes a share of them (K-group 0
  // alone, 16 outputs per thread, serialised them).
  workgroupBarrier();
  for (var e = li; e < RF * PW * TT; e += ${T}u) {
    let l2 = e % TT;
    let u2 = g * TT + l2;
    let rv = e / TT;
    let f = ((u2 / PB) % FBLK) * RF + rv / PW;
    let j = (u2 % PB) * PW + rv % PW;
    if (g < TOTAL && u2 < UNITS && f < F && j < P4) { store(u2 / (PB * FBLK), f, j, fin[e]); }
  }`}
}
`;
  // Weight rows padded to whole blocks of RF filters (zero words): no filter guard in the inner loop.
  return pointwiseProgram(`Conv${t === 'int8' ? 'I8' : 'U8'}(pw words${native ? ' dot4' : ''}${ra ? ' + add' : ''})`,
    cacheKey('int8-pointwise-words', t, native ? 'dot4' : 'unpack', geomKey(g), `zw${q.wZeroPoint}zo${q.yq.zeroPoint}`, q.clamp,
      `T${T}${wordTileKey(tl)}KS${ks}`, +aligned, `dx${d.dispatchX}`, ra?.key ?? ''),
    wgsl, T, d.dispatch, bytesFor(ks), q, FBLK * RF, [0, ...(ra?.inputs ?? [])]);
}

/**
 * Split-K pointwise for little output: KS threads share one output, each summing dot4 over every KS-th word of 4
 * channels, then a tree reduction in workgroup memory (wrapping int32 addition is associative: bit-exact). A
 * workgroup owns OT = T / KS consecutive flat outputs, OT a multiple of 4 starting on a word, so it stores whole
 * words without atomics. Thread layout: channel-major for small maps (consecutive threads read consecutive words of
 * a weight row), positions-major from 16 positions (consecutive threads read consecutive positions of x).
 */
export function int8PointwiseSplitK(args: Int8KernelArgs): Int8Program {
  const { w, q, g, t, P, C4 } = pointwiseSetup(args);
  const T = Math.max(4, pow2AtMost(threadCap(args.limits)));
  const outputs = g.N * g.F * P;
  let ks = 1;
  while (ks * 2 <= T / 4 && outputs * ks < 528 * T && C4 / (ks * 2) >= 4) ks *= 2;
  const OT = T / ks;
  const total = ceilDiv(outputs, OT);
  const d = layoutWorkgroups(total, args.limits, w);
  const posMajor = P >= 16 || ks === 1;
  const hasWzp = q.wZeroPoint !== 0;
  // One image's channels of one position are a whole word when the map is 1x1 and C % 4 == 0.
  const direct = P === 1 && g.C % 4 === 0;
  const native = args.dot4;
  const wgsl = `${dot4Requires(native)}
${int8Bindings(['x'], ['wp', 'qp'])}
${constsU32({ C: g.C, F: g.F, P, C4, KS: ks, OT, OUTPUTS: outputs, WORDS: ceilDiv(outputs, 4), TOTAL: total, DISPATCH_X: d.dispatchX })}
${constsI32({ ZW: q.wZeroPoint, ZO: q.yq.zeroPoint, LO: q.clamp[0], HI: q.clamp[1] })}
${loader('x', t)}
${dot4Wgsl(t, native)}
${fixedPointWgsl}
var<workgroup> part: array<i32, ${T}>;
${hasWzp ? `var<workgroup> partx: array<i32, ${T}>;` : ''}
var<workgroup> res: array<u32, ${OT}>;

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  // No early return: every thread reaches the barriers.
  let g = wid.x + wid.y * DISPATCH_X;
  let ol = ${posMajor ? 'li % OT' : 'li / KS'};
  let ks = ${posMajor ? 'li / OT' : 'li % KS'};
  let o = g * OT + ol;
  let p = o % P;
  let f = (o / P) % F;
  let n = o / (P * F);
  var acc = 0i;
  var sx = 0i;
  if (g < TOTAL && o < OUTPUTS) {
    for (var c4 = ks; c4 < C4; c4 += KS) {
      ${direct ? 'let xv = x[n * C4 + c4];' : `var WORD_OUT = 0u;
      let c = c4 * 4u;
      ${gatherWord('ld_x', '(n * C + c) * P + p', 'P', 'c', 'C')}
      let xv = WORD_OUT;`}
      acc += dot4(wp[f * C4 + c4], xv);
      ${hasWzp ? 'sx += dot4(xv, 0x01010101u);' : ''}
    }
  }
  part[li] = acc;
  ${hasWzp ? 'partx[li] = sx;' : ''}
  workgroupBarrier();
  for (var h = KS / 2u; h > 0u; h /= 2u) {
    if (ks < h) {
      part[li] += part[li + h${posMajor ? ' * OT' : ''}];
      ${hasWzp ? `partx[li] += partx[li + h${posMajor ? ' * OT' : ''}];` : ''}
    }
    workgroupBarrier();
  }
  if (ks == 0u) {
    var v = 0u;
    if (o < OUTPUTS) {
      let bias = bitcast<i32>(qp[4u * f]);
      let r = clamp(mbqm(part[li] + bias${hasWzp ? ' - ZW * partx[li]' : ''}, bitcast<i32>(qp[4u * f + 1u]), bitcast<i32>(qp[4u * f + 2u])) + ZO, LO, HI);
      v = u32(r) & 0xffu;
    }
    res[ol] = v;
  }
  workgroupBarrier();
  let j = g * (OT / 4u) + li;
  if (li < OT / 4u && g < TOTAL && j < WORDS) {
    out[j] = res[4u * li] | (res[4u * li + 1u] << 8u) | (res[4u * li + 2u] << 16u) | (res[4u * li + 3u] << 24u);
  }
}
`;
  return pointwiseProgram(`Conv${t === 'int8' ? 'I8' : 'U8'}(pw split-K${native ? ' dot4' : ''})`,
    cacheKey('int8-pointwise-splitk', t, native ? 'dot4' : 'unpack', geomKey(g), `zw${q.wZeroPoint}zo${q.yq.zeroPoint}`, q.clamp,
      `T${T}KS${ks}`, +posMajor, +direct, `dx${d.dispatchX}`),
    wgsl, T, d.dispatch, 4 * (T * (hasWzp ? 2 : 1) + OT), q, g.F);
}
