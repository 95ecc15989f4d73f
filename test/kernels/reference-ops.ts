// TypeScript references for the layer-by-layer kernels other than convolution (test/kernels/reference.ts has
// conv2d and the activations): plain loops in float64 over row-major arrays, ONNX semantics.

export const numelOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

export function strides(s: readonly number[]): number[] {
  const r = new Array<number>(s.length);
  let p = 1;
  for (let k = s.length - 1; k >= 0; k--) { r[k] = p; p *= s[k]; }
  return r;
}

export function unravel(i: number, s: readonly number[]): number[] {
  const st = strides(s);
  return s.map((d, k) => Math.floor(i / st[k]) % d);
}

/** numpy broadcasting of a binary op to `out`. */
export function broadcastBinary(a: ArrayLike<number>, as: number[], b: ArrayLike<number>, bs: number[], out: number[], f: (x: number, y: number) => number): Float64Array {
  const r = new Float64Array(numelOf(out));
  const at = (d: ArrayLike<number>, s: number[], c: number[]) => {
    const lead = c.length - s.length;
    let o = 0;
    const st = strides(s);
    s.forEach((dim, k) => { if (dim !== 1) o += c[k + lead] * st[k]; });
    return d[o];
  };
  for (let i = 0; i < r.length; i++) {
    const c = unravel(i, out);
    r[i] = f(at(a, as, c), at(b, bs, c));
  }
  return r;
}

export function reduceMeanRef(x: ArrayLike<number>, s: number[], axes: number[]): Float64Array {
  const kept = s.map((d, k) => (axes.includes(k) ? 1 : d));
  const out = new Float64Array(numelOf(kept));
  const cnt = numelOf(axes.map((k) => s[k]));
  for (let i = 0; i < x.length; i++) {
    const c = unravel(i, s).map((v, k) => (axes.includes(k) ? 0 : v));
    out[c.reduce((o, v, k) => o + v * strides(kept)[k], 0)] += x[i] / cnt;
  }
  return out;
}

export function poolRef(x: ArrayLike<number>, s: number[], o: number[], op: 'max' | 'avg', k: number[], st: number[], pads: number[], includePad = false): Float64Array {
  const [N, C, H, W] = s, [HO, WO] = [o[2], o[3]];
  const out = new Float64Array(N * C * HO * WO);
  for (let nc = 0; nc < N * C; nc++) for (let oy = 0; oy < HO; oy++) for (let ox = 0; ox < WO; ox++) {
    const y0 = oy * st[0] - pads[0], x0 = ox * st[1] - pads[1];
    let m = -Infinity, sum = 0, cnt = 0;
    for (let a = 0; a < k[0]; a++) for (let b = 0; b < k[1]; b++) {
      const iy = y0 + a, ix = x0 + b;
      if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
      const v = x[(nc * H + iy) * W + ix];
      m = Math.max(m, v); sum += v; cnt++;
    }
    if (includePad) cnt = (Math.min(y0 + k[0], H + pads[2]) - y0) * (Math.min(x0 + k[1], W + pads[3]) - x0);
    out[(nc * HO + oy) * WO + ox] = op === 'max' ? m : sum / cnt;
  }
  return out;
}

export function matmulRef(a: ArrayLike<number>, b: ArrayLike<number>, M: number, K: number, N: number, transA = false, transB = false): Float64Array {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += (transA ? a[k * M + m] : a[m * K + k]) * (transB ? b[n * K + k] : b[k * N + n]);
    out[m * N + n] = s;
  }
  return out;
}

export function transposeRef(x: ArrayLike<number>, s: number[], perm: number[]): Float64Array {
  const o = perm.map((p) => s[p]);
  const out = new Float64Array(x.length);
  const st = strides(s);
  for (let i = 0; i < out.length; i++) {
    const c = unravel(i, o);
    out[i] = x[c.reduce((acc, v, k) => acc + v * st[perm[k]], 0)];
  }
  return out;
}

/** An ONNX Resize of `x` to `out` (scales: the attribute's, where the model gives them). */
export interface ResizeCase { mode: 'nearest' | 'linear'; ctm: string; nearest?: string; x: number[]; out: number[]; scales?: number[] }

/** The input coordinate of output index v along an axis (ONNX formulas), exact at ties for these sizes. */
function coordinate(ctm: string, v: number, inLen: number, outLen: number, scale?: number): number {
  // With sizes the scale is out/in: multiply by in and divide by out, so a tie (k + 0.5) comes out exactly.
  const div = (u: number) => (scale === undefined ? (u * inLen) / outLen : u / scale);
  switch (ctm) {
    case 'half_pixel': return div(v + 0.5) - 0.5;
    case 'pytorch_half_pixel': return outLen > 1 ? div(v + 0.5) - 0.5 : 0;
    case 'align_corners': return outLen === 1 ? 0 : (v * (inLen - 1)) / (outLen - 1);
    case 'asymmetric': return div(v);
    case 'tf_half_pixel_for_nn': return div(v + 0.5);
    default: throw new Error(ctm);
  }
}

function roundNearest(mode: string, v: number): number {
  switch (mode) {
    case 'round_prefer_floor': return v - Math.floor(v) === 0.5 ? Math.floor(v) : Math.round(v);
    case 'round_prefer_ceil': return Math.floor(v + 0.5);
    case 'floor': return Math.floor(v);
    case 'ceil': return Math.ceil(v);
    default: throw new Error(mode);
  }
}

export function resizeRef(c: ResizeCase, x: ArrayLike<number>): Float64Array {
  const out = new Float64Array(numelOf(c.out));
  const st = strides(c.x);
  const clampI = (i: number, n: number) => Math.min(Math.max(i, 0), n - 1);
  for (let i = 0; i < out.length; i++) {
    const oc = unravel(i, c.out);
    // onnxruntime maps an axis of scale 1 one to one, whatever the mode (upsample.cc: "no need to apply the
    // co-ordinate transformation").
    const unit = (k: number) => (c.scales ? Math.fround(c.scales[k]) === 1 : c.x[k] === c.out[k]);
    const orig = oc.map((v, k) => (unit(k) ? v : coordinate(c.ctm, v, c.x[k], c.out[k], c.scales?.[k])));
    if (c.mode === 'nearest') {
      const ic = orig.map((v, k) => clampI(roundNearest(c.nearest ?? 'round_prefer_floor', v), c.x[k]));
      out[i] = x[ic.reduce((s, v, k) => s + v * st[k], 0)];
      continue;
    }
    // Linear: the coordinate clamped to [0, in - 1], then the 2^rank neighbours weighted per axis.
    const lo: number[] = [], hi: number[] = [], t: number[] = [];
    orig.forEach((v, k) => {
      const cv = Math.min(Math.max(v, 0), c.x[k] - 1);
      lo.push(Math.floor(cv)); hi.push(Math.min(Math.floor(cv) + 1, c.x[k] - 1)); t.push(cv - Math.floor(cv));
    });
    let s = 0;
    for (let corner = 0; corner < 1 << c.x.length; corner++) {
      let wgt = 1, off = 0;
      for (let k = 0; k < c.x.length; k++) {
        const h = (corner >> k) & 1;
        wgt *= h ? t[k] : 1 - t[k];
        off += (h ? hi[k] : lo[k]) * st[k];
      }
      if (wgt !== 0) s += wgt * x[off];
    }
    out[i] = s;
  }
  return out;
}
