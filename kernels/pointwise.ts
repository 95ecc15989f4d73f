// Pointwise (1x1, stride 1, no padding, group 1) convolution: out[n, f, p] = act(sum_c w[f, c] x[n, c, p] + b[f])
// (+ res), a product of a small weight matrix and a tall-skinny activation (M = N*P positions). Three kernels,
// picked by chooseDot from the shape only (deterministic; the cache key names the choice and its tiles):
//   gemm     most layers: a register-tiled product. A workgroup owns BM positions x BF filters; BK channels of
//            both operands are staged in workgroup memory per step, the next step's global loads issued before
//            the current step's FMAs; each thread accumulates 4 positions x RF filters (one vec4 of x and RF/4
//            broadcast vec4s of w per channel feed 4*RF FMAs; px 2: 8 positions, 8*RF FMAs). With few tiles, ks groups of threads in the
//            workgroup split the channel steps of the same tile and add their sums in workgroup memory.
//   vec4     each thread owns RF filters x 4 consecutive positions of one image, x read straight from global
//            memory: kept for large maps with 8 filters per thread, and for inputs of < 8 channels. Needs P % 4 == 0.
//   split-K  for little output (late layers at batch 1, squeeze-excite, classifier GEMV): KS threads share one
//            output, each summing every KS-th channel, then a tree reduction in workgroup memory.

import type { KernelArgs, KernelLimits, KernelProgram } from './program.js';
import { type ConvGeom, convBindings, convGeom, convStore, geomKey, isPointwise } from './conv-common.js';
import { invalid, overLimit, unsupported } from '../src/errors.js';
import type { ResidualSampler } from './resize.js';
import { type Epilogue, bindings, cacheKey, ceilDiv, constsU32, layoutWorkgroups, plusResidual, pow2AtLeast, pow2AtMost, threadCap, where } from './shader.js';


export function pointwise(args: KernelArgs, geom?: ConvGeom, choice?: DotChoice): KernelProgram {
  const g = geom ?? convGeom(args);
  const w = where(args);
  if (!isPointwise(g)) throw invalid(w, 'not a pointwise convolution (1x1, stride 1, no padding, group 1)');
  const b = convBindings(g);
  const dot: DotGeom = { N: g.N, C: g.C, F: g.F, P: g.H * g.W, hasBias: g.hasBias, hasRes: g.hasRes, hasScale: g.hasScale, ...(g.shuffleOuts ? { shuffleOuts: g.shuffleOuts } : {}), ...(g.channelsLast ? { channelsLast: true } : {}), ...(g.resSampler ? { resSampler: g.resSampler } : {}), act: g.act };
  return dotProgram(dot, choice ?? chooseDot(dot, args.limits), b.names, b.inputs, args.limits, w, 'Conv(pw)', 'pointwise');
}

/** The program of one DotChoice (bench/layer-kernels.ts times the choices against each other). */
export function dotProgram(dot: DotGeom, choice: DotChoice, names: string[], inputs: number[], limits: KernelLimits, w: string, label: string, keyPrefix: string): KernelProgram {
  if (choice.kind === 'gemm') return dotGemm(dot, choice.tiles, names, inputs, limits, w, label, keyPrefix);
  if (choice.kind === 'vec4') return dotVec4(dot, choice.rf, choice.threads, names, inputs, limits, w, label, keyPrefix);
  if ((choice.rf ?? 1) > 1 || (choice.rp ?? 1) > 1) {
    if ((choice.nb ?? 1) > 1) throw invalid(w, 'split-K takes filters or images per thread, not both');
    return dotSplitKFilters(dot, choice.ks, choice.rf ?? 1, names, inputs, limits, w, label, keyPrefix, choice.rp ?? 1);
  }
  return dotSplitK(dot, choice.ks, names, inputs, limits, w, label, keyPrefix, choice.nb);
}

export interface DotGeom {
  N: number; C: number; F: number; P: number; hasBias: boolean; hasRes: boolean;
  /** x[n, c, :] is multiplied by sc[n * C + c] as it is read (squeeze-excite folded in; conv-common.ts). */
  hasScale?: boolean;
  /**
   * The shuffled store (a ChannelShuffle{groups 2} folded in, src/rewrite/shuffle-conv.ts): binding `sh` holds a
   * tensor of the output's shape [N, F, P]; output element (n, f, p) goes to shuffled channel 2f + 1 and sh's element
   * (n, f, p) to channel 2f, of the 2F shuffled channels split into outputs of these channel counts, in order.
   */
  shuffleOuts?: number[];
  /**
   * The channels-last store (a Transpose [0, 2, 3, 1] folded in, src/rewrite/channels-last-store.ts): output element
   * (n, f, p) goes to out[(n * P + p) * F + f], `out` an array of scalars (a vec4 of 4 positions is 4 stores).
   */
  channelsLast?: boolean;
  /** The residual read through a resize (kernels/resize.ts residualSampler): `res` a scalar array, read by resAt(i). */
  resSampler?: ResidualSampler;
  act: Epilogue;
}

/** Threads in flight that keep an H100-class GPU busy (132 SMs x ~512); fewer than 1/4 of it: split K. */
const fillThreads = 65536;
const splitKThreads = 256;

/**
 * gemm tiles: TX x TY threads, each 4 positions x RF filters (BM = 4 TX positions, BF = RF TY filters); ks (default
 * 1) such groups in one workgroup, each summing every ks-th BK-channel step of the same tile, then added in
 * workgroup memory: the long reductions of late layers (7x7 960 -> 160 at batch 8: 75 tiles of 64 threads, each
 * walking 960 channels) get ks times the threads without a second dispatch.
 */
export interface GemmTiles {
  tx: number; ty: number; rf: number; ks?: number;
  /** Position vec4s per thread (default 1): 2 makes each thread's tile 8 positions x RF filters (BM = 8 TX). */
  px?: number;
  /** Channels per staging step (default 16, a multiple of 4): more FMAs between barriers and per load in flight. */
  bk?: number;
  /** The thread's tile unrolled in the generated WGSL (gemmUnrolledWgsl). */
  un?: boolean;
}

/**
 * splitK: `ks` threads share each output's channels; `nb` > 1: each thread sums NB images of one filter (one position
 * per image); `rf` > 1: RF filters of one position (a load of x feeds RF FMAs instead of one); `rp` > 1 with it: RP
 * positions of those RF filters (RP + RF loads feed RP x RF FMAs).
 */
export type DotChoice = { kind: 'gemm'; tiles: GemmTiles } | { kind: 'vec4'; rf: number; threads: number } | { kind: 'splitK'; ks: number; nb?: number; rf?: number; rp?: number };

/** gemm's channels per staging step. */
const gemmBK = 16;

/**
 * gemm tiles for a layer. Layers with 264+ tiles of 64 x 64 (two per SM; large maps, batch 32's 7x7 layers): 4
 * filters per thread, 16 threads across 64 filters (8 across 32, 4 across 16 for narrow layers), 16 along positions
 * (H200, 2026-12-02: 64x64 tiles the fastest or within 10% on MobileNetV2's 7x7 layers at batch
 * 32). The rest: 8 x 8 threads over 32 positions x 32 filters (4 x 8 where that leaves fewer than 66 tiles), and K
 * split inside the workgroup (ks slices, at most one per 16-channel step) until the tiles hold ~32k threads: on the
 * H200 at batch 1 and 8 this was 1.3-2.6x faster than 16-wide tiles, vec4 and split-K on the 56x56..7x7 layers
 * (7x7 960 -> 320 at batch 8: 62 -> 24 us; bench/layer-kernels.ts).
 */
export function gemmTiles(g: Pick<DotGeom, 'N' | 'P' | 'F' | 'C'>, limits: KernelLimits): GemmTiles | undefined {
  const cap = threadCap(limits);
  const rf = 4;
  const tilesOf = (tx: number, ty: number) => ceilDiv(g.N * g.P, 4 * tx) * ceilDiv(g.F, rf * ty);
  const fits = (t: GemmTiles) => t.tx * t.ty * (t.ks ?? 1) <= cap && gemmStorage(t) <= limits.maxComputeWorkgroupStorageSize;
  const wide = { tx: 16, ty: g.F <= 16 ? 4 : g.F <= 32 ? 8 : 16, rf };
  if (tilesOf(wide.tx, wide.ty) >= 264 && fits(wide)) return wide;
  const ty = 8;
  let tx = 8;
  if (tilesOf(tx, ty) < 66) tx = 4;
  // Fewer tiles than that: split K or vec4 spread the work further.
  if (tilesOf(tx, ty) < 66 || !fits({ tx, ty, rf })) return undefined;
  let ks = 1;
  while (tilesOf(tx, ty) * tx * ty * ks < sliceThreads && ks * 2 <= ceilDiv(g.C, gemmBK) && fits({ tx, ty, rf, ks: ks * 2 })) ks *= 2;
  return ks > 1 ? { tx, ty, rf, ks } : { tx, ty, rf };
}

/** Threads that keep an H100-class GPU's 132 SMs busy at 256 each: below it, gemm splits K inside a workgroup. */
const sliceThreads = 132 * 256;

/** The unrolled gemm adds its K slices' sums in xs (free after the last step) where xs holds them. */
const gemmRedInXs = (t: GemmTiles) => t.un === true && (t.bk ?? gemmBK) * t.tx * (t.px ?? 1) * (t.ks ?? 1) >= t.tx * t.ty * t.rf * (t.px ?? 1);

export const gemmStorage = (t: GemmTiles) => {
  const ks = t.ks ?? 1, px = t.px ?? 1, bk = t.bk ?? gemmBK;
  return 16 * bk * (t.tx * px + t.ty * t.rf / 4) * ks + (ks > 1 && !gemmRedInXs(t) ? 16 * t.tx * t.ty * t.rf * px : 0);
};

/**
 * `opts.gemm: false`: the choice without the gemm kernel (bench/layer-kernels.ts compares the two). gemm replaces
 * the other two except where they were the faster on the H200 (bench/layer-kernels.ts, MobileNetV2 at batch 1, 8,
 * 32): vec4 with 8 filters per thread on 12544+ positions (early layers: 15-22 TFLOPS) or
 * with 65536+ threads (batch 32's 14x14 64 -> 384 and 96 -> 576: 13.9 and 26.5 us, gemm 21.7 and 37.0), and
 * split-K on fewer than 20000 outputs (late layers at batch 1: 7x7 960 -> 160 in 10 us, gemm 19; tiledSplitK).
 */
export function chooseDot(g: DotGeom, limits: KernelLimits, opts: { gemm?: boolean } = {}): DotChoice {
  const other = tiledSplitK(g, limits, chooseDotNoGemm(g, limits));
  if (opts.gemm === false || g.C < 8) return other;
  if (other.kind === 'vec4' && other.rf === 8 && (g.N * g.P >= 12544 || g.N * g.F * g.P / 32 >= 65536)) return other;
  const narrow = narrowGemm(g, limits, other);
  if (narrow) return narrow;
  if (other.kind === 'splitK' && other.ks > 1 && g.N * g.F * g.P < 20000) return other;
  const tiles = gemmTiles(g, limits);
  return tiles ? { kind: 'gemm', tiles } : other;
}

/**
 * Split-K proper (K split: ks > 1) at batch 1 on <= 65536 outputs becomes split-K with several outputs per thread: 2 filters where the
 * map has 64+ positions, 4 filters x 2 positions below (7x7). On the H100 (`plan --tune`, MobileNetV2 at batch 1,
 * 2026-12-07) these were the fastest or within noise of it on all 14 such layers: 28x28 and 14x14 projections 5.7 ->
 * 5.4 us, 10.6 -> 9.5 (576 -> 96), ties on 384 -> 64; 7x7 960 -> 160 10.9 -> 9.9, 576 -> 160 8.5 -> 7.6, 960 -> 320
 * 12.1 -> 11.8; 7.5 us a pass over the 14. A load of x feeds RF filters, one of w RP positions.
 */
function tiledSplitK(g: DotGeom, limits: KernelLimits, c: DotChoice): DotChoice {
  if (c.kind !== 'splitK' || c.ks === 1 || (c.nb ?? 1) > 1 || (c.rf ?? 1) > 1 || g.N !== 1 || g.P < 2 || g.N * g.F * g.P > 65536) return c;
  if (g.P >= 64) return g.F >= 2 ? { kind: 'splitK', ks: splitKSlices(ceilDiv(g.F, 2) * g.P, g.C), rf: 2 } : c;
  if (g.F < 4) return c;
  const groups = ceilDiv(g.F, 4) * ceilDiv(g.P, 2);
  const ks = splitKSlices(groups, g.C);
  // The 4 x 2 tiles need ~one workgroup per SM: with few channels the slices stop early (>= 8 channels each) and the
  // tiles leave SMs idle. ShuffleNetV2's 7x7 232 -> 232 (16 slices, 90 workgroups) ran 7.5-9.7 us on them against
  // 5.9-6.4 with 2 filters a thread (H100, `plan --tune`, 2026-12-07); MobileNetV2's and MnasNet's 7x7 projections
  // (576-1152 channels, 64 slices, 250-300 workgroups) stay the fastest on them.
  if (groups * ks < tiledSplitKThreads) return { kind: 'splitK', ks: splitKSlices(ceilDiv(g.F, 2) * g.P, g.C), rf: 2 };
  return ks === 1 || 4 * splitKThreads * 8 <= limits.maxComputeWorkgroupStorageSize ? { kind: 'splitK', ks, rf: 4, rp: 2 } : c;
}

/** Threads below which split-K's 4 x 2 tiles take 2 filters a thread instead: 128 workgroups of 256. */
const tiledSplitKThreads = 128 * splitKThreads;

/**
 * Batch 1, 64+ positions, at most 64 filters, 64+ channels, where the rule takes split-K with 2 filters a thread: gemm
 * on tiles of 4 x 8 threads of 4 filters with K in 4 slices. On the H100 (`plan --tune`, 2026-12-07) it ran
 * MobileNetV2's 28x28 192 -> 32 projections in 4.9-5.4 us against 5.4-6.0, its 14x14 384 -> 64 in 7.1-7.2 against
 * 7.9-8.0, ShuffleNetV2's 14x14 116 -> 116 at stride 2 in 4.8 against 5.3; its 192 -> 64 tied (5.0 against 5.2). The
 * larger projections (576 -> 96) stay on split-K, where gemm was 3-5% slower.
 */
function narrowGemm(g: DotGeom, limits: KernelLimits, c: DotChoice): DotChoice | undefined {
  if (c.kind !== 'splitK' || c.rf !== 2 || c.rp !== undefined || g.N !== 1 || g.P < 64 || g.F > 64 || g.C < 64) return undefined;
  const tiles: GemmTiles = { tx: 4, ty: 8, rf: 4, ks: 4 };
  return tiles.tx * tiles.ty * tiles.ks! <= threadCap(limits) && gemmStorage(tiles) <= limits.maxComputeWorkgroupStorageSize ? { kind: 'gemm', tiles } : undefined;
}

function chooseDotNoGemm(g: DotGeom, limits: KernelLimits): DotChoice {
  const cap = threadCap(limits);
  const P4 = g.P / 4;
  if (g.P % 4 === 0) {
    for (const rf of [8, 4, 2, 1]) {
      if (g.F % rf !== 0) continue;
      const threads = g.N * (g.F / rf) * P4;
      if (threads >= fillThreads / 2 || (rf === 1 && threads >= fillThreads / 4)) {
        let t = 32;
        while (t < P4 && t < Math.min(128, cap)) t *= 2;
        return { kind: 'vec4', rf, threads: t };
      }
    }
  }
  const nb = g.P === 1 ? imagesPerThread(g.N) : 1;
  const ks = splitKSlices(ceilDiv(g.N, nb) * g.F * g.P, g.C);
  return nb > 1 ? { kind: 'splitK', ks, nb } : { kind: 'splitK', ks };
}

/**
 * One position per image (classifier heads, 1x1 maps) over several images: each split-K thread sums NB images of one
 * filter, so that a weight row is read once per NB images instead of once per image (a batch-32 classifier of
 * 1280 -> 1000 read its 5 MB of weights 32 times: 35 us on the H200, 2.4 TFLOP/s).
 */
const imagesPerThread = (N: number) => (N >= 8 ? 8 : N >= 4 ? 4 : N >= 2 ? 2 : 1);

/**
 * Split K so that about 4 workgroups of 256 threads land on each of ~132 SMs (half of what an SM holds: a thread's
 * loads are its only latency hiding), each thread summing >= 8 channels. `sums`: the dot products the threads own.
 */
function splitKSlices(sums: number, C: number): number {
  let ks = 1;
  while (ks < 64 && ks * 2 <= splitKThreads && sums * ks < 528 * splitKThreads && C / (ks * 2) >= 8) ks *= 2;
  return ks;
}

/**
 * The epilogue of every store path (gemm loop and unrolled forms, vec4, split-K): bias, activation, residual, then the
 * store of output element `o` (a vec4 of 4 positions when `vec`) of filter `f`, plain or shuffled (shuffledStore).
 */
function dotStore(g: DotGeom, v: string, o: string, f: string, vec: boolean): string {
  const biased = g.hasBias ? `${v} + ${vec ? `vec4<f32>(b[${f}])` : `b[${f}]`}` : v;
  const act = vec ? `vec4<f32>(act(y.x), act(y.y), act(y.z), act(y.w))` : 'act(y)';
  const res = !g.resSampler ? `res[${o}]`
    : vec ? `vec4<f32>(${[0, 1, 2, 3].map((k) => `resAt(4u * (${o}) + ${k}u)`).join(', ')})` : `resAt(${o})`;
  const value = g.hasRes ? plusResidual(g.act, act, res, vec) : act;
  const store = g.shuffleOuts ? shuffledStore(g.shuffleOuts, g.F, vec ? g.P / 4 : g.P, value, o, f)
    : g.channelsLast ? channelsLastStore(g.F, g.P, vec, value, o, f) : `out[${o}] = ${value};`;
  return `let y = ${biased};\n    ${store}`;
}

/**
 * Stores `value`, element o = (n * F + f) * PU + p of the conv's output (PU = P, or P / 4 vec4s of 4 positions), at
 * channels-last out[(n * P + p) * F + f].
 */
function channelsLastStore(F: number, P: number, vec: boolean, value: string, o: string, f: string): string {
  const PU = vec ? P / 4 : P;
  const at = (p: string) => `out[(sn * ${P}u + ${p}) * ${F}u + (${f})]`;
  return `{
      let sv = ${value};
      let sn = (${o}) / ${F * PU}u;
      let sp = (${o}) % ${PU}u;
      ${vec ? ['x', 'y', 'z', 'w'].map((c, k) => `${at(`4u * sp + ${k}u`)} = sv.${c};`).join('\n      ') : `${at('sp')} = sv;`}
    }`;
}

/**
 * Stores `value`, element o = (n * F + f) * PU + p of the conv's output (PU positions per channel: P, or P / 4 vec4s),
 * at shuffled channel 2f + 1 and copies sh[o] to channel 2f (ChannelShuffle{groups 2} of [sh, conv output]: shuffled
 * channel q = 2j + i is concatenated channel i * F + j), each in the output `sy<k>` of `outs` holding that channel.
 */
function shuffledStore(outs: readonly number[], F: number, PU: number, value: string, o: string, f: string): string {
  const at = (q: string, v: string) => {
    let start = 0;
    return outs.map((D, k) => {
      const body = `sy${k}[(sn * ${D}u + ${q} - ${start}u) * ${PU}u + sp] = ${v};`;
      start += D;
      return k === outs.length - 1 ? `{ ${body} }` : `if (${q} < ${start}u) { ${body} }`;
    }).join(' else ');
  };
  return `{
      let sv = ${value};
      let sp = (${o}) % ${PU}u;
      let sn = (${o}) / ${F * PU}u;
      let sq = 2u * (${f});
      ${at('sq + 1u', 'sv')}
      ${at('sq', `sh[${o}]`)}
    }`;
}

/** Bindings: `names` (inputs) read-only, then the output `out`, or the shuffled outputs `sy0`.. (DotGeom.shuffleOuts). */
function dotBindings(g: DotGeom, names: string[], vec: boolean, wVec = false): string {
  const outs = g.shuffleOuts ? g.shuffleOuts.map((_, k) => `sy${k}`) : ['out'];
  const vecOf = new Set([...(vec ? ['x', ...(g.resSampler ? [] : ['res']), 'sh', ...(g.channelsLast ? [] : outs)] : []), ...(wVec ? ['w'] : [])]);
  const t = (n: string) => (vecOf.has(n) ? 'array<vec4<f32>>' : 'array<f32>');
  const lines = names.map((n, k) => `@group(0) @binding(${k}) var<storage, read> ${n}: ${t(n)};`);
  outs.forEach((n, k) => lines.push(`@group(0) @binding(${names.length + k}) var<storage, read_write> ${n}: ${t(n)};`));
  return lines.join('\n');
}

/** The program's output count and the cache key's part for the store (none for the plain store: keys unchanged). */
const dotOutputs = (g: DotGeom) => g.shuffleOuts?.length ?? 1;
const storeKey = (g: DotGeom): string[] => [...(g.shuffleOuts ? [`shuf2[${g.shuffleOuts.join('x')}]`] : []), ...(g.channelsLast ? ['nhwc'] : []), ...(g.resSampler ? [g.resSampler.key] : [])];

/** The functions every dot program's WGSL declares: the activation, and the residual's sampler where it has one. */
const dotFns = (g: DotGeom): string => `${g.act.fn}${g.resSampler ? `\n${g.resSampler.wgsl}` : ''}`;

/**
 * The gemm's entry point up to its per-thread coordinates, shared by both of its WGSL forms: the workgroup's tile
 * (f0, m0), the thread's K slice (sl), place in the slice (lt, tx, ty) and first channel (cs).
 */
function gemmEntry(threads: number): string {
  return `@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let g = wid.x + wid.y * DISPATCH_X;
  // Uniform per workgroup: returning here cannot split a barrier.
  if (g >= TOTAL) { return; }
  let f0 = (g % FT) * BF;
  let m0 = (g / FT) * BM;
  let sl = li / TT;
  let lt = li % TT;
  let tx = lt % TX;
  let ty = lt / TX;
  // Slice sl's steps start at channel sl * BK and advance KS * BK; every slice runs the same (uniform) trip count,
  // channels past C load as zeros.
  let cs = sl * BK;`;
}

/** gemm kernel (see the file's head): `names` are the bindings (x, w, b?, res?, sc?) in order, `inputs` their node input indices. */
export function dotGemm(g: DotGeom, t: GemmTiles, names: string[], inputs: number[], limits: KernelLimits, w: string, label: string, keyPrefix: string): KernelProgram {
  if (t.rf % 4 !== 0) throw invalid(w, `gemm tiles need a multiple of 4 filters per thread, got ${t.rf}`);
  const KS = t.ks ?? 1, PX = t.px ?? 1;
  if (!Number.isInteger(KS) || KS < 1) throw invalid(w, `gemm K slices must be a positive integer, got ${KS}`);
  if (!Number.isInteger(PX) || PX < 1) throw invalid(w, `gemm position vec4s per thread must be a positive integer, got ${PX}`);
  const BK = t.bk ?? gemmBK;
  if (!Number.isInteger(BK) || BK < 4 || BK % 4 !== 0) throw invalid(w, `gemm channels per step must be a positive multiple of 4, got ${BK}`);
  const TT = t.tx * t.ty, T = TT * KS, RF4 = t.rf / 4, TXP = t.tx * PX;
  if (T > threadCap(limits)) throw overLimit(w, `gemm tiles need ${T} threads per workgroup, the device allows ${threadCap(limits)}`);
  const bytes = gemmStorage(t);
  if (bytes > limits.maxComputeWorkgroupStorageSize) {
    throw overLimit(w, `gemm tiles need ${bytes} bytes of workgroup storage, the device allows ${limits.maxComputeWorkgroupStorageSize}`);
  }
  const M = g.N * g.P, BM = 4 * TXP, BF = t.rf * t.ty;
  const FT = ceilDiv(g.F, BF), total = ceilDiv(M, BM) * FT;
  const d = layoutWorkgroups(total, limits, w);
  // P % 4 == 0: the 4 positions of a thread lie in one image, 16-byte aligned (vec4 loads and stores).
  const vec = g.P % 4 === 0;
  // C % 4 == 0: a filter's 4 channels are one aligned vec4 of w.
  const wVec = g.C % 4 === 0;
  // Loads per thread of one slice's step (the TT threads of a slice stage its BK channels).
  const XL = ceilDiv(BK * TXP, TT), WL = ceilDiv(BF * BK / 4, TT);
  const sc = (n: string, c: string) => (g.hasScale ? ` * sc[${n} * C + ${c}]` : '');
  const loadX = vec ? `
  if (m >= M || c >= C) { return vec4<f32>(0.0); }
  let n = m / P;
  return x[(n * C + c) * P4 + (m - n * P) / 4u]${sc('n', 'c')};` : `
  if (c >= C) { return vec4<f32>(0.0); }
  return vec4<f32>(xAt(m, c), xAt(m + 1u, c), xAt(m + 2u, c), xAt(m + 3u, c));`;
  // Scalar paths build vec4s from constant components only: a loop index into a vec4 sends it to local memory
  // (on the H200, w read that way made the gemm 10-40% slower than with vec4 loads of w).
  const scalarFns = `${vec ? '' : `
/** x at position mi (0 past M), channel c. */
fn xAt(mi: u32, c: u32) -> f32 {
  if (mi >= M) { return 0.0; }
  let n = mi / P;
  return x[(n * C + c) * P + mi - n * P]${sc('n', 'c')};
}`}${wVec ? '' : `
/** w of filter f at channel c (0 past C). */
fn wAt(f: u32, c: u32) -> f32 {
  if (c >= C) { return 0.0; }
  return w[f * C + c];
}`}`;
  const store = vec ? `
    let n = m / P;
    let o = (n * F + f) * P4 + (m - n * P) / 4u;
    let v = acc[j * RF + r];
    ${dotStore(g, 'v', 'o', 'f', true)}` : `
    let a = acc[j * RF + r];${['x', 'y', 'z', 'w'].map((q, i) => `
    if (m + ${i}u < M) {
      let mi = m + ${i}u;
      let n = mi / P;
      let o = (n * F + f) * P + mi - n * P;
      let v = a.${q};
      ${dotStore(g, 'v', 'o', 'f', false)}
    }`).join('')}`;
  // Slices 1.. hand their sums to slice 0 one at a time through `red` (TT * RF * PX vec4s), which then stores.
  const reduce = KS === 1 ? '' : `
  for (var s1 = 1u; s1 < KS; s1++) {
    if (sl == s1) { for (var r = 0u; r < RF * PX; r++) { red[r * TT + lt] = acc[r]; } }
    workgroupBarrier();
    if (sl == 0u) { for (var r = 0u; r < RF * PX; r++) { acc[r] += red[r * TT + lt]; } }
    workgroupBarrier();
  }
  if (sl != 0u) { return; }`;
  const wgsl = t.un ? gemmUnrolledWgsl(g, t, names, d, total) : `
${dotBindings(g, names, vec, wVec)}
${constsU32({ C: g.C, F: g.F, P: g.P, ...(vec ? { P4: g.P / 4 } : {}), M, BM, BF, BK, TX: t.tx, TXP, PX, TY: t.ty, RF: t.rf, RF4, TT, KS, T, XL, WL, FT, TOTAL: total, DISPATCH_X: d.dispatchX })}
${dotFns(g)}
// Per slice sl: xs[(sl * BK + k) * TXP + i]: positions 4i..4i+3 of the tile at the step's channel k (thread tx
// owns i = tx + j * TX, j < PX); ws[((sl * BK + k) * TY + ty) * RF4 + r]: filters ty * RF + 4r.. at channel k.
var<workgroup> xs: array<vec4<f32>, ${BK * TXP * KS}>;
var<workgroup> ws: array<vec4<f32>, ${BK * t.ty * RF4 * KS}>;
${KS > 1 ? `var<workgroup> red: array<vec4<f32>, ${TT * t.rf * PX}>;` : ''}

${scalarFns}

fn loadX(m: u32, c: u32) -> vec4<f32> {${loadX}
}

/** Channels c..c+3 of filter f. */
fn loadW(f: u32, c: u32) -> vec4<f32> {${wVec ? `
  if (f >= F || c >= C) { return vec4<f32>(0.0); }
  return w[(f * C + c) / 4u];` : `
  if (f >= F) { return vec4<f32>(0.0); }
  return vec4<f32>(wAt(f, c), wAt(f, c + 1u), wAt(f, c + 2u), wAt(f, c + 3u));`}
}

${gemmEntry(T)}
  var xr: array<vec4<f32>, XL>;
  var wr: array<vec4<f32>, WL>;
  for (var i = 0u; i < XL; i++) { let e = lt + i * TT; if (e < BK * TXP) { xr[i] = loadX(m0 + 4u * (e % TXP), cs + e / TXP); } }
  for (var i = 0u; i < WL; i++) { let e = lt + i * TT; if (e < BF * BK / 4u) { wr[i] = loadW(f0 + e / (BK / 4u), cs + 4u * (e % (BK / 4u))); } }
  var acc: array<vec4<f32>, RF * PX>;
  for (var r = 0u; r < RF * PX; r++) { acc[r] = vec4<f32>(0.0); }
  let xo = sl * BK * TXP;
  let wo = sl * BK * TY * RF4;
  for (var c0 = 0u; c0 < C; c0 += BK * KS) {
    for (var i = 0u; i < XL; i++) { let e = lt + i * TT; if (e < BK * TXP) { xs[xo + e] = xr[i]; } }
    for (var i = 0u; i < WL; i++) {
      let e = lt + i * TT;
      if (e < BF * BK / 4u) {
        let fl = e / (BK / 4u);
        let k = 4u * (e % (BK / 4u));
        for (var q = 0u; q < 4u; q++) { ws[wo + (k + q) * (TY * RF4) + fl / 4u][fl % 4u] = wr[i][q]; }
      }
    }
    workgroupBarrier();
    // The next step's loads go out before this step's FMAs (c0 is uniform: no divergence).
    let c1 = c0 + BK * KS + cs;
    if (c0 + BK * KS < C) {
      for (var i = 0u; i < XL; i++) { let e = lt + i * TT; if (e < BK * TXP) { xr[i] = loadX(m0 + 4u * (e % TXP), c1 + e / TXP); } }
      for (var i = 0u; i < WL; i++) { let e = lt + i * TT; if (e < BF * BK / 4u) { wr[i] = loadW(f0 + e / (BK / 4u), c1 + 4u * (e % (BK / 4u))); } }
    }
    for (var k = 0u; k < BK; k++) {
${Array.from({ length: PX }, (_, j) => `      let xv${j} = xs[xo + k * TXP + ${j * t.tx}u + tx];`).join('\n')}
      for (var r4 = 0u; r4 < RF4; r4++) {
        let wv = ws[wo + (k * TY + ty) * RF4 + r4];
${Array.from({ length: PX }, (_, j) => `        acc[${j * t.rf}u + 4u * r4] += wv.x * xv${j};
        acc[${j * t.rf}u + 4u * r4 + 1u] += wv.y * xv${j};
        acc[${j * t.rf}u + 4u * r4 + 2u] += wv.z * xv${j};
        acc[${j * t.rf}u + 4u * r4 + 3u] += wv.w * xv${j};`).join('\n')}
      }
    }
    workgroupBarrier();
  }${reduce}
  for (var j = 0u; j < PX; j++) {
    let m = m0 + 4u * (tx + j * TX);
    if (m >= M) { break; }
    for (var r = 0u; r < RF; r++) {
      let f = f0 + ty * RF + r;
      if (f >= F) { break; }${store}
    }
  }
}
`;
  return {
    name: label,
    cacheKey: cacheKey(`${keyPrefix}-gemm`, g.N, g.C, g.F, g.P, +g.hasBias, +g.hasRes, +!!g.hasScale, g.act.key, `TX${t.tx}TY${t.ty}RF${t.rf}BK${BK}KS${KS}${PX > 1 ? `PX${PX}` : ''}${wVec ? 'W4' : ''}${t.un ? 'U' : ''}`, `dx${d.dispatchX}`, ...storeKey(g)),
    wgsl, workgroupSize: [T, 1, 1], dispatch: d.dispatch, inputs, outputs: dotOutputs(g), workgroupStorageBytes: bytes,
  };
}

/**
 * The gemm's WGSL with every loop over the thread's tile unrolled here (`un`): accumulators, staging registers and
 * the per-load index bases are named variables, so no index into an array or a vec4 is left to the driver's
 * unrolling (an array indexed by a loop variable may live in local memory). Bounds checks are
 * emitted only where the shape leaves partial tiles. On the H200 it ran the same tiles within 3% of the loop form and
 * made 8 x 8 thread tiles usable, which won on a few layers and lost on most (bench/layer-kernels.ts --un);
 * double-buffered staging (one barrier per step) was slower nearly everywhere and was removed.
 */
function gemmUnrolledWgsl(g: DotGeom, t: GemmTiles, names: string[], d: { dispatchX: number }, total: number): string {
  const KS = t.ks ?? 1, PX = t.px ?? 1, BK = t.bk ?? gemmBK;
  const TT = t.tx * t.ty, RF = t.rf, RF4 = RF / 4, TXP = t.tx * PX, BF = RF * t.ty, BF4 = BF / 4, BM = 4 * TXP;
  const M = g.N * g.P, FT = ceilDiv(g.F, BF);
  const vec = g.P % 4 === 0, wVec = g.C % 4 === 0;
  const XN = BK * TXP, WN = BF * BK / 4, XL = ceilDiv(XN, TT), WL = ceilDiv(WN, TT), BK4 = BK / 4;
  // Per slice and buffer: x tile XN vec4s, w tile BK * BF4 vec4s.
  const XS = XN * KS, WS = BK * BF4 * KS;
  const needM = M % BM !== 0, needF = g.F % BF !== 0, needC = g.C % (BK * KS) !== 0;
  const redInXs = gemmRedInXs(t);
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const q4 = ['x', 'y', 'z', 'w'];
  const and = (...c: string[]) => c.filter((s) => s).join(' && ') || 'true';
  const lines: string[] = [];
  const L = (s: string) => lines.push(s);
  // Per-thread bases of each staged load, fixed over the channel steps.
  for (const i of range(XL)) {
    L(`  let xe${i} = lt + ${i * TT}u;`);
    L(`  let xk${i} = xe${i} / TXP;`);
    L(`  let xm${i} = m0 + 4u * (xe${i} % TXP);`);
    const eOk = (i + 1) * TT > XN ? `xe${i} < ${XN}u` : '';
    if (vec) {
      L(`  let xn${i} = xm${i} / P;`);
      L(`  let xb${i} = xn${i} * C * P4 + (xm${i} - xn${i} * P) / 4u + xk${i} * P4;`);
      L(`  let xo${i} = ${and(eOk, needM ? `xm${i} < M` : '')};`);
    } else {
      for (const q of range(4)) {
        L(`  let xn${i}_${q} = (xm${i} + ${q}u) / P;`);
        L(`  let xb${i}_${q} = xn${i}_${q} * C * P + xm${i} + ${q}u - xn${i}_${q} * P + xk${i} * P;`);
        L(`  let xo${i}_${q} = ${and(eOk, `xm${i} + ${q}u < M`)};`);
      }
    }
  }
  for (const i of range(WL)) {
    L(`  let we${i} = lt + ${i * TT}u;`);
    L(`  let wf${i} = f0 + we${i} / BK4;`);
    L(`  let wk${i} = 4u * (we${i} % BK4);`);
    L(`  let wb${i} = wf${i} * C + wk${i};`);
    L(`  let wo${i} = ${and((i + 1) * TT > WN ? `we${i} < ${WN}u` : '', needF ? `wf${i} < F` : '')};`);
    // Where the 4 channels of this load land in ws: rows wk..wk+3, filter column (we / BK4) of BF.
    L(`  let wsi${i} = wk${i} * BF4 + (we${i} / BK4) / 4u;`);
    L(`  let wsc${i} = (we${i} / BK4) % 4u;`);
  }
  const prologue = lines.splice(0).join('\n');
  const scale = (n: string, c: string) => (g.hasScale ? ` * sc[${n} * C + ${c}]` : '');
  // Loads of the step whose first channel (of this slice) is `cb`.
  const load = (cb: string) => {
    const out: string[] = [];
    for (const i of range(XL)) {
      const cOk = needC ? `${cb} + xk${i} < C` : '';
      if (vec) {
        out.push(`    xr${i} = vec4<f32>(0.0);`);
        out.push(`    if (${and(`xo${i}`, cOk)}) { xr${i} = x[xb${i} + ${cb} * P4]${scale(`xn${i}`, `${cb} + xk${i}`)}; }`);
      } else {
        out.push(`    xr${i} = vec4<f32>(${range(4).map((q) => `xAt(xb${i}_${q} + ${cb} * P, ${g.hasScale ? `xn${i}_${q} * C + ${cb} + xk${i}` : '0u'}, ${and(`xo${i}_${q}`, cOk)})`).join(', ')});`);
      }
    }
    for (const i of range(WL)) {
      if (wVec) {
        out.push(`    wr${i} = vec4<f32>(0.0);`);
        out.push(`    if (${and(`wo${i}`, needC ? `${cb} + wk${i} < C` : '')}) { wr${i} = w[(wb${i} + ${cb}) / 4u]; }`);
      } else {
        out.push(`    wr${i} = vec4<f32>(${range(4).map((q) => `wAt(wb${i} + ${cb} + ${q}u, ${and(`wo${i}`, `${cb} + wk${i} + ${q}u < C`)})`).join(', ')});`);
      }
    }
    return out.join('\n');
  };
  const store = (xOff: string, wOff: string) => {
    const out: string[] = [];
    for (const i of range(XL)) {
      const s = `xs[${xOff} + xe${i}] = xr${i};`;
      out.push((i + 1) * TT > XN ? `    if (xe${i} < ${XN}u) { ${s} }` : `    ${s}`);
    }
    for (const i of range(WL)) {
      const s = range(4).map((q) => `ws[${wOff} + wsi${i} + ${q * BF4}u][wsc${i}] = wr${i}.${q4[q]};`).join(' ');
      out.push((i + 1) * TT > WN ? `    if (we${i} < ${WN}u) { ${s} }` : `    ${s}`);
    }
    return out.join('\n');
  };
  const compute = (xOff: string, wOff: string) => {
    const out: string[] = [];
    for (const k of range(BK)) {
      out.push('    {');
      for (const j of range(PX)) out.push(`      let x${j} = xs[${xOff} + ${k * TXP + j * t.tx}u];`);
      for (const r4 of range(RF4)) out.push(`      let w${r4} = ws[${wOff} + ${k * BF4 + r4}u];`);
      for (const j of range(PX)) for (const r of range(RF)) out.push(`      a${j}_${r} = fma(vec4<f32>(w${r >> 2}.${q4[r & 3]}), x${j}, a${j}_${r});`);
      out.push('    }');
    }
    return out.join('\n');
  };
  const accs = range(PX).flatMap((j) => range(RF).map((r) => `a${j}_${r}`));
  // The slices' sums pass through xs where it is large enough (free after the last step's barrier).
  const red = redInXs ? 'xs' : 'red';
  const reduce = KS === 1 ? '' : `
  for (var s1 = 1u; s1 < KS; s1++) {
    if (sl == s1) {
${accs.map((a, i) => `      ${red}[${i * TT}u + lt] = ${a};`).join('\n')}
    }
    workgroupBarrier();
    if (sl == 0u) {
${accs.map((a, i) => `      ${a} += ${red}[${i * TT}u + lt];`).join('\n')}
    }
    workgroupBarrier();
  }
  if (sl != 0u) { return; }`;
  const stores: string[] = [];
  for (const j of range(PX)) {
    stores.push(`  {\n    let m = m0 + 4u * (tx + ${j * t.tx}u);`);
    if (vec) stores.push(`    let n = m / P;\n    let ob = n * F * P4 + (m - n * P) / 4u;`);
    stores.push(needM ? '    if (m < M) {' : '    {');
    for (const r of range(RF)) {
      stores.push(`    {\n      let f = f0 + ty * RF + ${r}u;`);
      stores.push(needF ? '      if (f < F) {' : '      {');
      if (vec) {
        stores.push(`        let o = ob + f * P4;\n        let v = a${j}_${r};\n        ${dotStore(g, 'v', 'o', 'f', true)}`);
      } else {
        for (const q of range(4)) {
          stores.push(`        if (m + ${q}u < M) {\n          let mi = m + ${q}u;\n          let n = mi / P;\n          let o = (n * F + f) * P + mi - n * P;\n          let v = a${j}_${r}.${q4[q]};\n          ${dotStore(g, 'v', 'o', 'f', false)}\n        }`);
        }
      }
      stores.push('      }\n    }');
    }
    stores.push('    }\n  }');
  }
  const loop = `
  for (var c0 = 0u; c0 < C; c0 += BK * KS) {
${store('sl * XN', 'sl * WSL')}
    workgroupBarrier();
    // The next step's loads go out before this step's FMAs (c0 is uniform: no divergence).
    if (c0 + BK * KS < C) {
      let cb = c0 + BK * KS + cs;
${load('cb')}
    }
${compute('xb', 'wb')}
    workgroupBarrier();
  }`;
  return `
${dotBindings(g, names, vec, wVec)}
${constsU32({ C: g.C, F: g.F, P: g.P, ...(vec ? { P4: g.P / 4 } : {}), M, BM, BF, BF4, BK, BK4, TX: t.tx, TXP, TY: t.ty, RF, RF4, TT, KS, XN, WSL: BK * BF4, XS, WS, FT, TOTAL: total, DISPATCH_X: d.dispatchX })}
${dotFns(g)}
// Slice sl: xs[sl * XN + k * TXP + i]: positions 4i..4i+3 of the tile at the step's channel k;
// ws[sl * WSL + k * BF4 + fq]: filters 4fq..4fq+3 of the tile at channel k.
var<workgroup> xs: array<vec4<f32>, ${XS}>;
var<workgroup> ws: array<vec4<f32>, ${WS}>;
${KS > 1 && !redInXs ? `var<workgroup> red: array<vec4<f32>, ${TT * RF * PX}>;` : ''}
${vec ? '' : `
fn xAt(i: u32, s: u32, ok: bool) -> f32 {
  if (!ok) { return 0.0; }
  return x[i]${g.hasScale ? ' * sc[s]' : ''};
}`}${wVec ? '' : `
fn wAt(i: u32, ok: bool) -> f32 {
  if (!ok) { return 0.0; }
  return w[i];
}`}

${gemmEntry(TT * KS)}
${prologue}
${range(XL).map((i) => `  var xr${i}: vec4<f32>;`).join('\n')}
${range(WL).map((i) => `  var wr${i}: vec4<f32>;`).join('\n')}
  {
    let cb = cs;
${load('cb')}
  }
${accs.map((a) => `  var ${a} = vec4<f32>(0.0);`).join('\n')}
  let xb = sl * XN + tx;
  let wb = sl * WSL + ty * RF4;${loop}${reduce}
${stores.join('\n')}
}
`;
}

/** vec4 kernel: `names` are the bindings (x, w, b?, res?) in order, `inputs` their node input indices. */
export function dotVec4(g: DotGeom, rf: number, T: number, names: string[], inputs: number[], limits: KernelLimits, w: string, label: string, keyPrefix: string): KernelProgram {
  const P4 = g.P / 4, FBLK = g.F / rf, PB = ceilDiv(P4, T);
  const total = g.N * FBLK * PB;
  const d = layoutWorkgroups(total, limits, w);
  // RF >= 4: the weights of CK channels are staged in workgroup memory as vec4 (4 filters each), so a thread
  // issues one 16-byte x load and RF/4 broadcast loads per channel for 4*RF FMAs.
  const staged = rf >= 4;
  const CK = Math.min(g.C, 32), RF4 = rf / 4;
  const wgsl = staged ? `
${dotBindings(g, names, true)}
${constsU32({ C: g.C, F: g.F, P4, RF: rf, RF4, CK, PB, FBLK, TOTAL: total, DISPATCH_X: d.dispatchX })}
${dotFns(g)}
var<workgroup> wsT: array<vec4<f32>, ${CK * RF4}>;

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let g = wid.x + wid.y * DISPATCH_X;
  // Uniform per workgroup: returning here cannot split a barrier.
  if (g >= TOTAL) { return; }
  let p4 = (g % PB) * ${T}u + li;
  let pl = min(p4, P4 - 1u);
  let f0 = ((g / PB) % FBLK) * RF;
  let n = g / (PB * FBLK);
  var acc: array<vec4<f32>, RF>;
  for (var c0 = 0u; c0 < C; c0 += CK) {
    for (var e = li; e < CK * RF4; e += ${T}u) {
      let c = min(c0 + e / RF4, C - 1u);
      let fq = f0 + (e % RF4) * 4u;
      var v = vec4<f32>(w[fq * C + c], w[(fq + 1u) * C + c], w[(fq + 2u) * C + c], w[(fq + 3u) * C + c]);
      if (c0 + e / RF4 >= C) { v = vec4<f32>(0.0); }
      wsT[e] = v;
    }
    workgroupBarrier();
    var xi = (n * C + c0) * P4 + pl;
    for (var cl = 0u; cl < CK; cl++) {
      let xv = x[min(xi, (n * C + C - 1u) * P4 + pl)]${g.hasScale ? ' * sc[n * C + min(c0 + cl, C - 1u)]' : ''};
      xi += P4;
      for (var r4 = 0u; r4 < RF4; r4++) {
        let wv = wsT[cl * RF4 + r4];
        acc[4u * r4] += wv.x * xv;
        acc[4u * r4 + 1u] += wv.y * xv;
        acc[4u * r4 + 2u] += wv.z * xv;
        acc[4u * r4 + 3u] += wv.w * xv;
      }
    }
    workgroupBarrier();
  }
  if (p4 >= P4) { return; }
  for (var r = 0u; r < RF; r++) {
    let f = f0 + r;
    let o = (n * F + f) * P4 + p4;
    let v = acc[r];
    ${dotStore(g, 'v', 'o', 'f', true)}
  }
}
` : `
${dotBindings(g, names, true)}
${constsU32({ C: g.C, F: g.F, P4, RF: rf, PB, FBLK, TOTAL: total, DISPATCH_X: d.dispatchX })}
${dotFns(g)}

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let g = wid.x + wid.y * DISPATCH_X;
  if (g >= TOTAL) { return; }
  let p4 = (g % PB) * ${T}u + li;
  if (p4 >= P4) { return; }
  let f0 = ((g / PB) % FBLK) * RF;
  let n = g / (PB * FBLK);
  var acc: array<vec4<f32>, RF>;
  var xi = n * C * P4 + p4;
  for (var c = 0u; c < C; c++) {
    let xv = x[xi]${g.hasScale ? ' * sc[n * C + c]' : ''};
    xi += P4;
    for (var r = 0u; r < RF; r++) { acc[r] += w[(f0 + r) * C + c] * xv; }
  }
  for (var r = 0u; r < RF; r++) {
    let f = f0 + r;
    let o = (n * F + f) * P4 + p4;
    let v = acc[r];
    ${dotStore(g, 'v', 'o', 'f', true)}
  }
}
`;
  return {
    name: label,
    cacheKey: cacheKey(`${keyPrefix}-vec4`, g.N, g.C, g.F, g.P, +g.hasBias, +g.hasRes, +!!g.hasScale, g.act.key, `RF${rf}T${T}`, staged ? `CK${CK}` : 'global', `dx${d.dispatchX}`, ...storeKey(g)),
    wgsl, workgroupSize: [T, 1, 1], dispatch: d.dispatch, inputs, outputs: dotOutputs(g), workgroupStorageBytes: staged ? 16 * CK * RF4 : 0,
  };
}

/**
 * Split-K kernel; positions-major thread layout when P is large enough to coalesce x, channel-major otherwise. `nb` > 1
 * (one position per image only): each thread sums nb images of its filter (dotSplitKImages).
 */
export function dotSplitK(g: DotGeom, ks: number, names: string[], inputs: number[], limits: KernelLimits, w: string, label: string, keyPrefix: string, nb = 1): KernelProgram {
  if (!Number.isInteger(ks) || ks < 1 || ks > splitKThreads || splitKThreads % ks !== 0) throw invalid(w, `split-K slices must divide ${splitKThreads}, got ${ks}`);
  if (nb !== 1) return dotSplitKImages(g, ks, nb, names, inputs, limits, w, label, keyPrefix);
  const T = splitKThreads, OT = T / ks;
  const outputs = g.N * g.F * g.P;
  const total = ceilDiv(outputs, OT);
  const d = layoutWorkgroups(total, limits, w);
  // Positions-major: consecutive threads read consecutive positions of one channel. Channel-major (P small, e.g.
  // 1x1 squeeze-excite maps and GEMV): consecutive threads read consecutive channels of x and of a weight row.
  const posMajor = g.P >= 16 || ks === 1;
  const wgsl = `
${dotBindings(g, names, false)}
${constsU32({ C: g.C, F: g.F, P: g.P, KS: ks, OT, OUTPUTS: outputs, TOTAL: total, DISPATCH_X: d.dispatchX })}
${dotFns(g)}
${ks > 1 ? `var<workgroup> part: array<f32, ${T}>;` : ''}

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let g = wid.x + wid.y * DISPATCH_X;
  ${ks === 1 ? 'if (g >= TOTAL) { return; }' : '// No early return: every thread reaches the barriers.'}
  let ol = ${posMajor ? 'li % OT' : 'li / KS'};
  let ks = ${posMajor ? 'li / OT' : 'li % KS'};
  let o = g * OT + ol;
  let p = o % P;
  let f = (o / P) % F;
  let n = o / (P * F);
  var s = 0.0;
  if (o < OUTPUTS) {
    let xb = n * C * P + p;
    let wb = f * C;
    // Four independent partial sums: four loads of each in flight instead of one (the loop is latency-bound).
    var s4 = vec4<f32>(0.0);
    var c = ks;
    for (; c + 3u * KS < C; c += 4u * KS) {
      s4 += vec4<f32>(w[wb + c], w[wb + c + KS], w[wb + c + 2u * KS], w[wb + c + 3u * KS])
        * vec4<f32>(x[xb + c * P], x[xb + (c + KS) * P], x[xb + (c + 2u * KS) * P], x[xb + (c + 3u * KS) * P])${g.hasScale ? `
        * vec4<f32>(sc[n * C + c], sc[n * C + c + KS], sc[n * C + c + 2u * KS], sc[n * C + c + 3u * KS])` : ''};
    }
    for (; c < C; c += KS) { s4.x += w[wb + c] * x[xb + c * P]${g.hasScale ? ' * sc[n * C + c]' : ''}; }
    s = (s4.x + s4.y) + (s4.z + s4.w);
  }
${ks === 1 ? '' : `  part[li] = s;
  workgroupBarrier();
  for (var h = KS / 2u; h > 0u; h /= 2u) {
    if (ks < h) { part[li] += part[li + h${posMajor ? ' * OT' : ''}]; }
    workgroupBarrier();
  }
  s = part[li];`}
  if (${ks === 1 ? '' : 'ks == 0u && '}o < OUTPUTS) {
    ${dotStore(g, 's', 'o', 'f', false)}
  }
}
`;
  return {
    name: label,
    cacheKey: cacheKey(`${keyPrefix}-splitk`, g.N, g.C, g.F, g.P, +g.hasBias, +g.hasRes, +!!g.hasScale, g.act.key, `KS${ks}`, +posMajor, `dx${d.dispatchX}`, ...storeKey(g)),
    wgsl, workgroupSize: [T, 1, 1], dispatch: d.dispatch, inputs, outputs: dotOutputs(g), workgroupStorageBytes: ks > 1 ? 4 * T : 0,
  };
}

/**
 * Split-K over images (dotSplitK with nb > 1, P == 1): the workgroup's threads are OT groups of KS; a group owns one
 * filter f and NB consecutive images n0.., each thread the channels ks, ks + KS, .. of all NB (one load of w[f, c]
 * feeds NB FMAs; threads of a group read consecutive channels). The groups' partial sums meet in workgroup memory.
 */
function dotSplitKImages(g: DotGeom, ks: number, nb: number, names: string[], inputs: number[], limits: KernelLimits, w: string, label: string, keyPrefix: string): KernelProgram {
  if (g.P !== 1) throw invalid(w, `split-K over ${nb} images per thread needs one position per image, got ${g.P}`);
  if (!Number.isInteger(nb) || nb < 1 || nb > 16) throw invalid(w, `split-K images per thread must be 1..16, got ${nb}`);
  if (g.shuffleOuts) throw invalid(w, 'split-K over images has no shuffled store');
  const T = splitKThreads, OT = T / ks;
  const groups = ceilDiv(g.N, nb) * g.F;
  const d = layoutWorkgroups(ceilDiv(groups, OT), limits, w);
  const js = [...Array(nb).keys()];
  const sc = (j: number) => (g.hasScale ? ` * sc[x${j} + c]` : '');
  const wgsl = `
${dotBindings(g, names, false)}
${constsU32({ C: g.C, F: g.F, N: g.N, KS: ks, OT, NB: nb, GROUPS: groups, DISPATCH_X: d.dispatchX })}
${dotFns(g)}
var<workgroup> part: array<f32, ${T * nb}>;

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  // No early return: every thread reaches the barriers.
  let gi = (wid.x + wid.y * DISPATCH_X) * OT + li / KS;
  let ks = li % KS;
  let f = gi % F;
  let n0 = (gi / F) * NB;
${js.map((j) => `  var s${j} = 0.0;`).join('\n')}
  if (gi < GROUPS) {
    let wb = f * C;
    // Rows past the last image read the last one (their sums are never stored).
${js.map((j) => `    let x${j} = min(n0 + ${j}u, N - 1u) * C;`).join('\n')}
    for (var c = ks; c < C; c += KS) {
      let wv = w[wb + c];
${js.map((j) => `      s${j} += wv * x[x${j} + c]${sc(j)};`).join('\n')}
    }
  }
${js.map((j) => `  part[${j}u * ${T}u + li] = s${j};`).join('\n')}
  workgroupBarrier();
  for (var h = KS / 2u; h > 0u; h /= 2u) {
    if (ks < h) {
${js.map((j) => `      part[${j}u * ${T}u + li] += part[${j}u * ${T}u + li + h];`).join('\n')}
    }
    workgroupBarrier();
  }
  if (ks == 0u && gi < GROUPS) {
    for (var j = 0u; j < NB; j++) {
      let n = n0 + j;
      if (n < N) {
        let o = n * F + f;
        let v = part[j * ${T}u + li];
        ${dotStore(g, 'v', 'o', 'f', false)}
      }
    }
  }
}
`;
  return {
    name: label,
    cacheKey: cacheKey(`${keyPrefix}-splitk`, g.N, g.C, g.F, g.P, +g.hasBias, +g.hasRes, +!!g.hasScale, g.act.key, `KS${ks}`, `NB${nb}`, `dx${d.dispatchX}`, ...storeKey(g)),
    wgsl, workgroupSize: [T, 1, 1], dispatch: d.dispatch, inputs, outputs: 1, workgroupStorageBytes: 4 * T * nb,
  };
}

/**
 * Split-K with a tile of RF filters x RP positions per thread (dotSplitK's layout, rf * rp > 1): a thread owns RP
 * consecutive positions of RF consecutive filters and sums the channels ks, ks + KS, .. of all of them, so that RP
 * loads of x and RF of w feed RP x RF FMAs. Split-K proper re-reads x once per filter and w once per position: on
 * MobileNetV2's 7x7 960 -> 160 at batch 1 that is 30 MB of each through L2 for 0.8 MB of tensors. Filters past F (a
 * last group of F % RF) and positions past P (of P % RP) read the last one's values and are never stored.
 */
function dotSplitKFilters(g: DotGeom, ks: number, rf: number, names: string[], inputs: number[], limits: KernelLimits, w: string, label: string, keyPrefix: string, rp = 1): KernelProgram {
  if (!Number.isInteger(rf) || rf < 1 || rf > 8) throw invalid(w, `split-K filters per thread must be 1..8, got ${rf}`);
  if (!Number.isInteger(rp) || rp < 1 || rp > 8) throw invalid(w, `split-K positions per thread must be 1..8, got ${rp}`);
  if (rf * rp < 2 || rf * rp > 32) throw invalid(w, `split-K tile of ${rf} filters x ${rp} positions: 2..32 outputs per thread`);
  if (!Number.isInteger(ks) || ks < 1 || ks > splitKThreads || splitKThreads % ks !== 0) throw invalid(w, `split-K slices must divide ${splitKThreads}, got ${ks}`);
  if (ks > 1 && 4 * splitKThreads * rf * rp > limits.maxComputeWorkgroupStorageSize) {
    throw invalid(w, `split-K tile of ${rf} filters x ${rp} positions needs ${4 * splitKThreads * rf * rp} bytes of workgroup memory, the device has ${limits.maxComputeWorkgroupStorageSize}`);
  }
  const T = splitKThreads, OT = T / ks;
  const fg = ceilDiv(g.F, rf), pg = ceilDiv(g.P, rp);
  const groups = g.N * fg * pg;
  const total = ceilDiv(groups, OT);
  const d = layoutWorkgroups(total, limits, w);
  // As split-K proper: positions-major where a channel's positions give coalesced loads, else channel-major.
  const posMajor = g.P >= 16 || ks === 1;
  const is = [...Array(rf).keys()], js = [...Array(rp).keys()];
  const tile = is.flatMap((i) => js.map((j) => ({ i, j, k: i * rp + j })));
  const acc = (i: number, j: number) => (rp === 1 ? `a${i}` : `a${i}_${j}`);
  const sum = (i: number, j: number) => (rp === 1 ? `s${i}` : `s${i}_${j}`);
  const scaleOf = (c: string) => (g.hasScale ? ` * sc[n * C + ${c}]` : '');
  // One position (rp 1): four channels a step, the loads of x and w as vec4s (four independent sums per output).
  // Several: one channel a step, RP + RF scalar loads feeding RP x RF FMAs.
  const step = [0, 1, 2, 3].map((j) => (j === 0 ? 'c' : `c + ${j}u * KS`));
  const body = rp === 1 ? `    var c = ks;
    for (; c + 3u * KS < C; c += 4u * KS) {
      let xv = vec4<f32>(${step.map((c) => `x[xb + (${c}) * P]${scaleOf(c)}`).join(', ')});
${is.map((i) => `      ${acc(i, 0)} += vec4<f32>(${step.map((c) => `w[w${i} + ${c}]`).join(', ')}) * xv;`).join('\n')}
    }
    for (; c < C; c += KS) {
      let xs = x[xb + c * P]${scaleOf('c')};
${is.map((i) => `      ${acc(i, 0)}.x += w[w${i} + c] * xs;`).join('\n')}
    }` : `    for (var c = ks; c < C; c += KS) {
${js.map((j) => `      let x${j} = x[xb + c * P + q${j}]${scaleOf('c')};`).join('\n')}
${is.map((i) => `      let v${i} = w[w${i} + c];`).join('\n')}
${tile.map(({ i, j }) => `      ${acc(i, j)} += v${i} * x${j};`).join('\n')}
    }`;
  const zero = rp === 1 ? 'vec4<f32>(0.0)' : '0.0';
  const total1 = (i: number, j: number) => (rp === 1 ? `(${acc(i, j)}.x + ${acc(i, j)}.y) + (${acc(i, j)}.z + ${acc(i, j)}.w)` : acc(i, j));
  const wgsl = `
${dotBindings(g, names, false)}
${constsU32({ C: g.C, F: g.F, P: g.P, KS: ks, OT, FG: fg, PG: pg, GROUPS: groups, TOTAL: total, DISPATCH_X: d.dispatchX })}
${dotFns(g)}
${ks > 1 ? `var<workgroup> part: array<f32, ${T * rf * rp}>;` : ''}

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let g = wid.x + wid.y * DISPATCH_X;
  ${ks === 1 ? 'if (g >= TOTAL) { return; }' : '// No early return: every thread reaches the barriers.'}
  let ol = ${posMajor ? 'li % OT' : 'li / KS'};
  let ks = ${posMajor ? 'li / OT' : 'li % KS'};
  let o = g * OT + ol;
  let p0 = (o % PG) * ${rp}u;
  let f0 = ((o / PG) % FG) * ${rf}u;
  let n = o / (PG * FG);
${tile.map(({ i, j }) => `  var ${acc(i, j)} = ${zero};`).join('\n')}
  if (o < GROUPS) {
    let xb = n * C * P;
${rp === 1 ? '    let xb1 = xb + p0;' : js.map((j) => `    let q${j} = min(p0 + ${j}u, P - 1u);`).join('\n')}
${is.map((i) => `    let w${i} = min(f0 + ${i}u, F - 1u) * C;`).join('\n')}
${rp === 1 ? body.replaceAll('xb +', 'xb1 +') : body}
  }
${tile.map(({ i, j }) => `  var ${sum(i, j)} = ${total1(i, j)};`).join('\n')}
${ks === 1 ? '' : `${tile.map(({ i, j, k }) => `  part[${k * T}u + li] = ${sum(i, j)};`).join('\n')}
  workgroupBarrier();
  for (var h = KS / 2u; h > 0u; h /= 2u) {
    if (ks < h) {
${tile.map(({ k }) => `      part[${k * T}u + li] += part[${k * T}u + li + h${posMajor ? ' * OT' : ''}];`).join('\n')}
    }
    workgroupBarrier();
  }
${tile.map(({ i, j, k }) => `  ${sum(i, j)} = part[${k * T}u + li];`).join('\n')}`}
  if (${ks === 1 ? '' : 'ks == 0u && '}o < GROUPS) {
${tile.map(({ i, j }) => `    if (f0 + ${i}u < F && p0 + ${j}u < P) {
      let f = f0 + ${i}u;
      let oi = (n * F + f) * P + p0 + ${j}u;
      ${dotStore(g, sum(i, j), 'oi', 'f', false)}
    }`).join('\n')}
  }
}
`;
  return {
    name: label,
    cacheKey: cacheKey(`${keyPrefix}-splitk`, g.N, g.C, g.F, g.P, +g.hasBias, +g.hasRes, +!!g.hasScale, g.act.key, `KS${ks}`, `RF${rf}`, ...(rp > 1 ? [`RP${rp}`] : []), +posMajor, `dx${d.dispatchX}`, ...storeKey(g)),
    wgsl, workgroupSize: [T, 1, 1], dispatch: d.dispatch, inputs, outputs: dotOutputs(g), workgroupStorageBytes: ks > 1 ? 4 * T * rf * rp : 0,
  };
}

/** A DotChoice as a variant name (a plan's kernel choice, src/planner/plan.ts): the kernel and its tiles. */
export function dotChoiceKey(c: DotChoice): string {
  if (c.kind === 'vec4') return `vec4:RF${c.rf}T${c.threads}`;
  if (c.kind === 'splitK') return `splitK:KS${c.ks}${(c.nb ?? 1) > 1 ? `NB${c.nb}` : ''}${(c.rf ?? 1) > 1 || (c.rp ?? 1) > 1 ? `RF${c.rf ?? 1}` : ''}${(c.rp ?? 1) > 1 ? `RP${c.rp}` : ''}`;
  const t = c.tiles;
  return `gemm:TX${t.tx}TY${t.ty}RF${t.rf}KS${t.ks ?? 1}${(t.px ?? 1) > 1 ? `PX${t.px}` : ''}${t.bk ? `BK${t.bk}` : ''}${t.un ? 'U' : ''}`;
}

/**
 * The choices --tune times for a layer (src/tune/tune.ts), chooseDot's first: the gemm kernel (C >= 8) at gemmTiles'
 * tiles and at its two tile shapes without K split (64-wide and 8 x 8 threads; where the shape has 66+ such tiles), the choice
 * without gemm (vec4 or split-K), and where none of them is vec4 and P % 4 == 0, vec4 with 4 filters per thread (1
 * where F % 4 != 0), on one position over several images split-K with one image per thread, and on <= 65536
 * outputs split-K with 4 and 2 filters per thread and with tiles of 4 filters x 4 and 2 positions, where they
 * differ from it. Each is legal for the shape and limits.
 */
export function dotCandidates(g: DotGeom, limits: KernelLimits): DotChoice[] {
  const out = [chooseDot(g, limits)];
  const tiles = gemmTiles(g, limits);
  const fits = (t: GemmTiles) => t.tx * t.ty * (t.ks ?? 1) <= threadCap(limits) && gemmStorage(t) <= limits.maxComputeWorkgroupStorageSize
    && ceilDiv(g.N * g.P, 4 * t.tx) * ceilDiv(g.F, t.rf * t.ty) >= 66;
  const shapes: GemmTiles[] = [{ tx: 16, ty: g.F <= 16 ? 4 : g.F <= 32 ? 8 : 16, rf: 4 }, { tx: 8, ty: 8, rf: 4 }];
  // Inputs of < 8 channels stay off gemm, as chooseDot keeps them.
  const others: DotChoice[] = g.C < 8 ? [] : [...(tiles ? [tiles] : []), ...shapes.filter(fits)].map((t) => ({ kind: 'gemm', tiles: t }));
  others.push(chooseDot(g, limits, { gemm: false }));
  // Few outputs (late layers at batch 1): split-K with 4 and 2 filters per thread, a load of x feeding each of them.
  if (g.N * g.F * g.P <= 65536) {
    // Split-K proper too: the rule's tiled forms replace it at batch 1 (tiledSplitK).
    others.push({ kind: 'splitK', ks: splitKSlices(g.N * g.F * g.P, g.C) });
    for (const rf of [4, 2]) if (g.F >= rf) others.push({ kind: 'splitK', ks: splitKSlices(g.N * ceilDiv(g.F, rf) * g.P, g.C), rf });
    // And tiles of 4 filters x 2 or 4 positions: w is re-read once per position otherwise (as much as x per filter).
    for (const rp of [4, 2]) {
      if (g.F < 4 || g.P < rp) continue;
      const ks = splitKSlices(g.N * ceilDiv(g.F, 4) * ceilDiv(g.P, rp), g.C);
      if (ks === 1 || 4 * splitKThreads * 4 * rp <= limits.maxComputeWorkgroupStorageSize) others.push({ kind: 'splitK', ks, rf: 4, rp });
    }
    // And gemm on narrow tiles with K split inside the workgroup, which gemmTiles leaves out below 66 tiles: 4 x 8
    // threads of 4 filters over 8 or 4 slices, 8 x 4 threads of 8 filters over 4 (a staged x feeds RF FMAs, a staged
    // w TX positions').
    for (const t of [{ tx: 4, ty: 8, rf: 4, ks: 8 }, { tx: 4, ty: 8, rf: 4, ks: 4 }, { tx: 8, ty: 4, rf: 8, ks: 4 }]) {
      if (g.C >= 8 && t.ks <= ceilDiv(g.C, gemmBK) && t.tx * t.ty * t.ks <= threadCap(limits) && gemmStorage(t) <= limits.maxComputeWorkgroupStorageSize) others.push({ kind: 'gemm', tiles: t });
    }
  }
  // One position over several images: split-K with one image per thread too (the rule's NB images share a weight load).
  if (g.P === 1 && g.N > 1) others.push({ kind: 'splitK', ks: splitKSlices(g.N * g.F, g.C) });
  if (g.P % 4 === 0 && ![...out, ...others].some((c) => c.kind === 'vec4')) {
    let threads = 32;
    while (threads < g.P / 4 && threads < Math.min(128, threadCap(limits))) threads *= 2;
    others.push({ kind: 'vec4', rf: g.F % 4 === 0 ? 4 : 1, threads });
  }
  for (const c of others) {
    if (!out.some((o) => dotChoiceKey(o) === dotChoiceKey(c))) out.push(c);
  }
  return out;
}
