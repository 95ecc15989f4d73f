// Comparing fcm-opt's outputs with a reference (onnxruntime): the metrics `fcm-opt check` reports and the
// tolerance every accuracy test uses.
//
// Tolerance: max |ours - reference| <= 1e-4 * max(1, max |reference|). Both sides accumulate in float32 but in
// different orders (tiles, channel chunks, onnxruntime's own blocking), so each sum carries rounding of about
// K * 2^-24 relative to its magnitude for K terms; for the K <= a few thousand of these models that stays far
// below 1e-4 relative to the output's scale, while a wrong index, tap or epilogue is off by O(1) of it.

export const relTolerance = 1e-4;

export const tolerance = (ref: ArrayLike<number>, rel = relTolerance) => rel * Math.max(1, maxAbs(ref));

/**
 * fp16 (f16 tensors in memory, f32 arithmetic) against the fp32 reference. Every tensor a kernel writes is rounded to
 * f16, a relative error of up to 2^-11 per element, and the next layer sums K such terms in f32: its output carries
 * about 2^-11 of its scale (independent roundings partly cancel), and a network of L layers compounds that, amplified
 * by its gains. So the error is judged relative to the output's scale, max |reference| (the range, also reported,
 * says nothing about a one-element output or one that varies little around a large value: a hand-presence score
 * of 0.11 came out 4.5e-3 of its value off), together with the cosine similarity and the top-1 class. Measured on
 * lavapipe, fp16 against onnxruntime fp32, fused and unfused (TESTING.md): the trained corpus models that run stay
 * within 4.5e-3 of max |reference| (hand-landmark-lite) with a cosine of at least 0.99998; the random-weight
 * MobileNetV2 0.35 (fixtures/bundled, 1000 logits) 1.2e-2 and 0.99994. The error bound sits 2.5x above the worst of
 * these, 1 - cosine 8x above (a wrong kernel is off by O(1) of the output's scale).
 */
export const f16Bounds = { rel: 3e-2, cosine: 0.9995 } as const;

/** The fp16 absolute tolerance of reference `ref`: rel * max |ref|, at least f16's smallest step 2^-24 (see f16Bounds). */
export function f16Tolerance(ref: ArrayLike<number>, rel: number = f16Bounds.rel): number {
  return rel * maxAbs(ref) + 2 ** -24;
}

/** max |a| over the finite values: an infinity or NaN in the reference must not make the tolerance infinite. */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i])) m = Math.max(m, Math.abs(a[i]));
  return m;
}

export interface Comparison {
  maxAbsError: number;
  /** max |ours - ref| / max |ref|. */
  maxRelError: number;
  /** max |ours - ref| / (max ref - min ref): the error on the scale the output spans. */
  rangeRelError: number;
  cosine: number;
  /**
   * Rows whose argmax agree exactly, as a fraction: rows are the batch items (the output flattened per first
   * dimension), or with a class axis (a classification output, compareOutputs' `classAxis`) every position of the
   * other axes (a class per time step or pixel).
   */
  top1: number;
  /** Fraction of the reference's top-5 per row that is in ours (1: every row's top-5 set equal). */
  top5: number;
  /** Rows compared by top1 and top5. */
  rows: number;
  /** The class axis the rows were taken along (classification outputs only). */
  classAxis?: number;
  /**
   * fp16: rows whose argmax differs from the reference's only between values the reference itself holds within the
   * tolerance of each other (a near tie, e.g. the largest of 14,336 box regressions): counted as agreeing.
   */
  top1Ties?: number;
  tolerance: number;
  /** With an elementwise criterion (`check --atol/--rtol`): its bounds and how many elements exceed
   *  atol + rtol * |reference|; it then decides alone (no top-1 condition). */
  atol?: number;
  rtol?: number;
  overCount?: number;
  /** A non-finite value that differs from the reference's (NaN, +inf and -inf each match only themselves), or a
   *  length mismatch, fails regardless. */
  ok: boolean;
}

/** The indices (0..n-1) of the k largest of a[start + i * stride], largest first (ties: lower index first). */
function topK(a: ArrayLike<number>, start: number, n: number, k: number, stride = 1): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((p, q) => (a[start + q * stride] - a[start + p * stride]) || p - q);
  return idx.slice(0, Math.min(k, n));
}

/** Polygraphy's criterion: every element within atol + rtol * |reference|. */
export interface Elementwise { atol: number; rtol: number }

/**
 * `rel`: the relative tolerance (`fcm-opt check --tolerance`), default relTolerance; `elementwise` (`--atol`,
 * `--rtol`) replaces that rule with the per-element one. `precision` 'fp16': the f16 tolerance instead of
 * relTolerance's (f16Tolerance, with `rel` in place of f16Bounds.rel when given) and a cosine of at least
 * f16Bounds.cosine; top-1 must agree either way (fp16: a differing argmax passes where the reference holds the two
 * values within the tolerance of each other). `classAxis` (a classification output: class scores along that axis,
 * negative from the end): top-1 and top-5 per position of the other axes instead of per batch item.
 */
export function compareOutputs(ours: ArrayLike<number>, ref: ArrayLike<number>, shape: readonly number[], rel?: number, elementwise?: Elementwise, precision: 'fp32' | 'fp16' = 'fp32',
  classAxis?: number): Comparison {
  const tol = precision === 'fp16' ? f16Tolerance(ref, rel ?? f16Bounds.rel) : tolerance(ref, rel ?? relTolerance);
  const ew = elementwise ? { atol: elementwise.atol, rtol: elementwise.rtol } : {};
  if (ours.length !== ref.length || shape.reduce((a, b) => a * b, 1) !== ours.length) {
    return { maxAbsError: Infinity, maxRelError: Infinity, rangeRelError: Infinity, cosine: 0, top1: 0, top5: 0, rows: 0, tolerance: tol, ...ew, ...(elementwise ? { overCount: ref.length } : {}), ok: false };
  }
  let maxErr = 0, dot = 0, na = 0, nb = 0, over = 0;
  let bad = false;
  for (let i = 0; i < ref.length; i++) {
    const a = ours[i], b = ref[i];
    if (!Number.isFinite(a) || !Number.isFinite(b)) {
      // onnxruntime's overflow or NaN reproduced exactly is agreement; anything else is an unbounded error.
      if (!Object.is(a, b)) { bad = true; maxErr = Infinity; over++; }
      continue;
    }
    const d = Math.abs(a - b);
    maxErr = Math.max(maxErr, d);
    if (elementwise && !(d <= elementwise.atol + elementwise.rtol * Math.abs(b))) over++;
    dot += a * b; na += a * a; nb += b * b;
  }
  const cosine = na === 0 && nb === 0 ? 1 : na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
  // Row r: n values `stride` apart from `start(r)`. Batch items: contiguous; along a class axis: the positions of the
  // other axes, each with the classes `inner` apart.
  let rows: number, n: number, stride = 1, start = (r: number) => r * n;
  const axis = classAxis === undefined ? undefined : classAxis < 0 ? shape.length + classAxis : classAxis;
  if (axis !== undefined) {
    if (!(axis >= 0 && axis < shape.length)) throw new Error(`internal: class axis ${classAxis} of a rank-${shape.length} output`);
    n = shape[axis];
    const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    rows = n > 0 ? ref.length / n : 0;
    stride = inner;
    start = (r) => Math.floor(r / inner) * n * inner + (r % inner);
  } else {
    rows = shape.length > 1 ? shape[0] : 1;
    n = rows > 0 ? ref.length / rows : 0;
  }
  let t1 = 0, t5 = 0, ties = 0;
  for (let r = 0; r < rows && n > 0; r++) {
    const o = start(r);
    const ra = topK(ours, o, n, 5, stride), rb = topK(ref, o, n, 5, stride);
    if (ra[0] === rb[0]) t1++;
    else if (precision === 'fp16' && ref[o + rb[0] * stride] - ref[o + ra[0] * stride] <= tol) ties++;
    t5 += rb.filter((i) => ra.includes(i)).length / rb.length;
  }
  const top1 = rows && n ? t1 / rows : 1, top5 = rows && n ? t5 / rows : 1;
  const top1Agrees = rows && n ? t1 + ties === rows : true;
  const mr = maxAbs(ref);
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < ref.length; i++) if (Number.isFinite(ref[i])) { lo = Math.min(lo, ref[i]); hi = Math.max(hi, ref[i]); }
  const range = hi > lo ? hi - lo : 0;
  return {
    maxAbsError: maxErr,
    maxRelError: mr > 0 ? maxErr / mr : maxErr,
    rangeRelError: range > 0 ? maxErr / range : maxErr,
    cosine,
    top1,
    top5,
    rows: rows && n ? rows : 0,
    ...(axis !== undefined ? { classAxis: axis } : {}),
    ...(ties ? { top1Ties: ties } : {}),
    tolerance: tol,
    ...(elementwise ? { ...ew, overCount: over, ok: !bad && over === 0 }
      : { ok: !bad && maxErr <= tol && top1Agrees && (precision !== 'fp16' || cosine >= f16Bounds.cosine) }),
  };
}

/** Deterministic input in [-1, 1): a 32-bit LCG (Numerical Recipes constants) from `seed`. */
export function seededInput(n: number, seed = 0): Float32Array {
  const out = new Float32Array(n);
  let s = (seed ^ 0x9e3779b9) >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}
