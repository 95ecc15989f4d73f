// TypeScript reference implementations for kernel tests: plain loops in float64, NCHW, the IR's conventions
// (src/graph/ir.ts). Slow and obviously correct; test sizes are small.

import { mulberry32 } from '../../fixtures/rng.js';

export interface Conv2dParams {
  strides?: [number, number];
  /** [top, left, bottom, right] */
  pads?: [number, number, number, number];
  dilations?: [number, number];
  group?: number;
}

export interface Tensor4 { data: Float32Array | Float64Array; shape: [number, number, number, number] }

/** ONNX Conv: x [N,C,H,W], w [F, C/group, KH, KW], optional bias [F]. Returns float64. */
export function conv2d(x: Tensor4, w: Tensor4, bias: ArrayLike<number> | undefined, p: Conv2dParams = {}): Tensor4 {
  const [N, C, H, W] = x.shape;
  const [F, Cg, KH, KW] = w.shape;
  const [sh, sw] = p.strides ?? [1, 1];
  const [pt, pl, pb, pr] = p.pads ?? [0, 0, 0, 0];
  const [dh, dw] = p.dilations ?? [1, 1];
  const group = p.group ?? 1;
  if (C % group !== 0 || F % group !== 0 || Cg !== C / group) throw new Error(`conv2d: bad shapes x [${x.shape}] w [${w.shape}] group ${group}`);
  const HO = Math.floor((H + pt + pb - ((KH - 1) * dh + 1)) / sh) + 1;
  const WO = Math.floor((W + pl + pr - ((KW - 1) * dw + 1)) / sw) + 1;
  const Fg = F / group;
  const y = new Float64Array(N * F * HO * WO);
  for (let n = 0; n < N; n++) {
    for (let f = 0; f < F; f++) {
      const c0 = Math.floor(f / Fg) * Cg;
      for (let oy = 0; oy < HO; oy++) {
        for (let ox = 0; ox < WO; ox++) {
          let s = bias ? bias[f] : 0;
          for (let c = 0; c < Cg; c++) {
            for (let kh = 0; kh < KH; kh++) {
              const iy = oy * sh - pt + kh * dh;
              if (iy < 0 || iy >= H) continue;
              for (let kw = 0; kw < KW; kw++) {
                const ix = ox * sw - pl + kw * dw;
                if (ix < 0 || ix >= W) continue;
                s += x.data[((n * C + c0 + c) * H + iy) * W + ix] * w.data[((f * Cg + c) * KH + kh) * KW + kw];
              }
            }
          }
          y[((n * F + f) * HO + oy) * WO + ox] = s;
        }
      }
    }
  }
  return { data: y, shape: [N, F, HO, WO] };
}

/** ONNX semantics of the IR's epilogue activations ('' = identity). */
export function activation(name: string, params: readonly number[] = []): (v: number) => number {
  switch (name) {
    case '': return (v) => v;
    case 'Relu': return (v) => Math.max(v, 0);
    case 'Clip': { const lo = params[0] ?? -Infinity, hi = params[1] ?? Infinity; return (v) => Math.min(Math.max(v, lo), hi); }
    case 'HardSigmoid': { const a = params[0] ?? 0.2, b = params[1] ?? 0.5; return (v) => Math.max(0, Math.min(1, a * v + b)); }
    case 'HardSwish': return (v) => v * Math.max(0, Math.min(1, v / 6 + 0.5));
    case 'Sigmoid': return (v) => 1 / (1 + Math.exp(-v));
    case 'SiLU': return (v) => v / (1 + Math.exp(-v));
    case 'LeakyRelu': { const a = params[0] ?? 0.01; return (v) => (v >= 0 ? v : a * v); }
    case 'Tanh': return Math.tanh;
    default: throw new Error(`reference: unknown activation ${name}`);
  }
}

/** In place: y = act(y) (+ residual). */
export function epilogue(y: Tensor4, act: string, params: readonly number[] = [], residual?: ArrayLike<number>): Tensor4 {
  const f = activation(act, params);
  for (let i = 0; i < y.data.length; i++) y.data[i] = f(y.data[i]) + (residual ? residual[i] : 0);
  return y;
}

/** Deterministic uniform values in [lo, hi) (mulberry32), as float32. */
export function randomF32(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const u = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * u();
  return out;
}

/** max |a - b| and max |b| (b the reference). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): { maxDiff: number; maxRef: number; at: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let maxDiff = 0, maxRef = 0, at = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    // NaN must fail: a comparison with NaN is false, so test for it explicitly.
    if (Number.isNaN(d) || d > maxDiff) { maxDiff = Number.isNaN(d) ? Infinity : d; at = i; }
    maxRef = Math.max(maxRef, Math.abs(b[i]));
  }
  return { maxDiff, maxRef, at };
}
