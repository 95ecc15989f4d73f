// Comparing fcm-opt's outputs with a reference (onnxruntime): the metrics `fcm-opt check` reports and the
// tolerance every accuracy test uses.
//
// Tolerance: max |ours - reference| <= 1e-4 * max(1, max |reference|). Both sides accumulate in float32 but in
// different orders (tiles, channel chunks, onnxruntime's own blocking), so each sum carries rounding of about
// K * 2^-24 relative to its magnitude for K terms; for the K <= a few thousand of these models that stays far
// below 1e-4 relative to the output's scale, while a wrong index, tap or epilogue is off by O(1) of it.

export const relTolerance = 1e-4;

export const tolerance = (ref: ArrayLike<number>, rel = relTolerance) => rel * Math.max(1, maxAbs(ref));

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
  cosine: number;
  /** Rows (batch items: the output flattened per first dimension) whose argmax agree, as a fraction. */
  top1: number;
  /** Fraction of the reference's top-5 per row that is in ours. */
  top5: number;
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

function topK(a: ArrayLike<number>, start: number, n: number, k: number): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((p, q) => (a[start + q] - a[start + p]) || p - q);
  return idx.slice(0, Math.min(k, n));
}

/** Polygraphy's criterion: every element within atol + rtol * |reference|. */
export interface Elementwise { atol: number; rtol: number }

/**
 * `rel`: the relative tolerance (`fcm-opt check --tolerance`), default relTolerance; `elementwise` (`--atol`,
 * `--rtol`) replaces that rule with the per-element one.
 */
export function compareOutputs(ours: ArrayLike<number>, ref: ArrayLike<number>, shape: readonly number[], rel = relTolerance, elementwise?: Elementwise): Comparison {
  const tol = tolerance(ref, rel);
  const ew = elementwise ? { atol: elementwise.atol, rtol: elementwise.rtol } : {};
  if (ours.length !== ref.length || shape.reduce((a, b) => a * b, 1) !== ours.length) {
    return { maxAbsError: Infinity, maxRelError: Infinity, cosine: 0, top1: 0, top5: 0, tolerance: tol, ...ew, ...(elementwise ? { overCount: ref.length } : {}), ok: false };
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
  const rows = shape.length > 1 ? shape[0] : 1;
  const n = rows > 0 ? ref.length / rows : 0;
  let t1 = 0, t5 = 0;
  for (let r = 0; r < rows && n > 0; r++) {
    const ra = topK(ours, r * n, n, 5), rb = topK(ref, r * n, n, 5);
    if (ra[0] === rb[0]) t1++;
    t5 += rb.filter((i) => ra.includes(i)).length / rb.length;
  }
  const top1 = rows && n ? t1 / rows : 1, top5 = rows && n ? t5 / rows : 1;
  const mr = maxAbs(ref);
  return {
    maxAbsError: maxErr,
    maxRelError: mr > 0 ? maxErr / mr : maxErr,
    cosine,
    top1,
    top5,
    tolerance: tol,
    ...(elementwise ? { ...ew, overCount: over, ok: !bad && over === 0 } : { ok: !bad && maxErr <= tol && top1 === 1 }),
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
