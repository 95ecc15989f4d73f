// An image feed converted on the GPU: 8-bit pixels in NHWC order (what image decoders give: RGBRGB...) uploaded as
// bytes, a quarter of float32's, and turned into the model's float input, out = (byte * scale - mean[c]) / std[c],
// laid out NCHW or NHWC as the model takes it. One invocation per output element.
//
// Bindings: `px` the pixels packed four to a u32 word (little-endian, byte i of the image is bits 8*(i%4) of word
// i/4), `out` the float32 input tensor.

import { invalid } from '../src/errors.js';
import type { KernelLimits, KernelProgram } from './program.js';
import { cacheKey, f32, flatDispatch, u32 } from './shader.js';

export interface ImageNormalization {
  /** The model input's layout: 'nchw' (default, ONNX vision models) or 'nhwc'. The pixels are always NHWC. */
  layout?: 'nchw' | 'nhwc';
  /** Multiplies each byte first (default 1/255: bytes to [0, 1]). */
  scale?: number;
  /** Per channel, subtracted after scaling (default 0; one value applies to every channel). */
  mean?: readonly number[];
  /** Per channel, divides after the mean (default 1). */
  std?: readonly number[];
}

/** Per-channel parameters with defaults applied and checked; `w` names the input in errors. */
export function imageParams(o: ImageNormalization, channels: number, w: string): { layout: 'nchw' | 'nhwc'; scale: number; mean: number[]; std: number[] } {
  const layout = o.layout ?? 'nchw';
  if (layout !== 'nchw' && layout !== 'nhwc') throw invalid(w, `image layout must be 'nchw' or 'nhwc', got '${String(layout)}'`);
  const scale = o.scale ?? 1 / 255;
  if (!Number.isFinite(scale)) throw invalid(w, `image scale must be a finite number, got ${scale}`);
  const perChannel = (v: readonly number[] | undefined, def: number, what: string): number[] => {
    const a = v === undefined ? [def] : [...v];
    if (a.length !== 1 && a.length !== channels) throw invalid(w, `image ${what} has ${a.length} values; the input has ${channels} channels`);
    if (!a.every((x) => typeof x === 'number' && Number.isFinite(x))) throw invalid(w, `image ${what} must be finite numbers`);
    return a.length === 1 ? Array.from({ length: channels }, () => a[0]) : a;
  };
  const mean = perChannel(o.mean, 0, 'mean');
  const std = perChannel(o.std, 1, 'std');
  if (std.some((s) => s === 0)) throw invalid(w, 'image std must not be 0');
  return { layout, scale, mean, std };
}

/** Host reference of the conversion (tests, and the shape of what the kernel computes). */
export function imageToFloat(px: Uint8Array, shape: readonly number[], o: ImageNormalization): Float32Array {
  const [n, a, b, c] = shape;
  const layout = o.layout ?? 'nchw';
  const [H, W, C] = layout === 'nchw' ? [b, c, a] : [a, b, c];
  const p = imageParams(o, C, 'image');
  const out = new Float32Array(n * H * W * C);
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        for (let ch = 0; ch < C; ch++) {
          const v = (px[((i * H + y) * W + x) * C + ch] * p.scale - p.mean[ch]) / p.std[ch];
          out[layout === 'nchw' ? ((i * C + ch) * H + y) * W + x : ((i * H + y) * W + x) * C + ch] = v;
        }
      }
    }
  }
  return out;
}

/**
 * The program converting the pixels of a model input of `shape` ([N, C, H, W] for 'nchw', [N, H, W, C] for 'nhwc').
 * Division by std is a multiplication by its reciprocal, computed in float64 on the host and rounded once: within
 * 1 ULP or so of the host reference's division.
 */
export function imageInputProgram(shape: readonly number[], o: ImageNormalization, limits: KernelLimits, name: string): KernelProgram {
  const w = `input '${name}'`;
  if (shape.length !== 4) throw invalid(w, `an image input must have rank 4, the model's has shape [${shape.join(',')}]`);
  const layout = o.layout ?? 'nchw';
  const [N, a, b, c] = shape;
  const [H, W, C] = layout === 'nchw' ? [b, c, a] : [a, b, c];
  const p = imageParams(o, C, w);
  const total = N * H * W * C;
  const d = flatDispatch(total, limits, w);
  const mul = p.std.map((s) => p.scale / s);
  const add = p.mean.map((m, k) => -m / p.std[k]);
  const arr = (v: number[]) => `array<f32, ${C}>(${v.map((x) => f32(x, w)).join(', ')})`;
  // The source byte of output element i: NHWC index of the same (n, y, x, c).
  const src = layout === 'nhwc' ? 'i' : `((n * ${u32(H)} + y) * ${u32(W)} + x) * ${u32(C)} + ch`;
  const coords = layout === 'nhwc'
    ? `let ch = i % ${u32(C)};`
    : `let x = i % ${u32(W)};
  let y = (i / ${u32(W)}) % ${u32(H)};
  let ch = (i / ${u32(W * H)}) % ${u32(C)};
  let n = i / ${u32(W * H * C)};`;
  const wgsl = `@group(0) @binding(0) var<storage, read> px: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
var<private> MUL: array<f32, ${C}> = ${arr(mul)};
var<private> ADD: array<f32, ${C}> = ${arr(add)};
@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  ${coords}
  let s = ${src};
  let byte = extractBits(px[s >> 2u], (s & 3u) * 8u, 8u);
  out[i] = f32(byte) * MUL[ch] + ADD[ch];
}
`;
  return {
    name: `ImageInput(${layout}, ${name})`,
    cacheKey: cacheKey('image-input', layout, shape, mul, add, d.key),
    wgsl,
    workgroupSize: d.workgroupSize,
    dispatch: d.dispatch,
    inputs: [0],
    outputs: 1,
    workgroupStorageBytes: 0,
  };
}
