// ONNX Resize (and Upsample-style scaling) in 'nearest' and 'linear' modes, over any axes, one invocation per
// output element. Each resized axis maps its output coordinate x to the input coordinate (A x + B) / D with
// integers A, B, D (the coordinate_transformation_mode with the axis' scale as a ratio of integers), so nearest
// rounding is exact: onnxruntime computes the same coordinate in float32, which is exact for the ratios models use
// (2, 1/2, 4, in/out sizes), and a tie such as x / 2 = 0.5 must round the same way. Linear clamps the coordinate to
// [0, in - 1] like onnxruntime and blends the 2^k neighbours of the k resized axes.
//
// Scales come from the `scales` attribute (the constant scales input, moved there by normalize-attrs) or, with
// sizes, are out / in. roi (tf_crop_and_resize), cubic, antialias and the opset-18 `axes` are refused.

import type { KernelArgs, KernelProgram } from './program.js';
import { invalid, overLimit, unsupported } from '../src/errors.js';
import { bindings, cacheKey, coords, flatDispatch, i32, inShape, offset, outShape, size, strAttr, u32, where } from './shader.js';
import type { Attrs } from '../src/graph/ir.js';

/** Coordinate of output index x along one axis: (a x + b) / d, d > 0. */
interface AxisMap { a: number; b: number; d: number }

const gcd = (a: number, b: number): number => { a = Math.abs(a); b = Math.abs(b); while (b) [a, b] = [b, a % b]; return a || 1; };

function reduce(m: AxisMap): AxisMap {
  const g = gcd(gcd(m.a, m.b), m.d);
  return { a: m.a / g, b: m.b / g, d: m.d / g };
}

/** in/out as a ratio p/q of integers for a scale given as a float: exact when scale * q is an integer, q <= 1024. */
function ratioOfScale(scale: number, inLen: number, outLen: number): [number, number] | undefined {
  if (Math.fround(outLen / inLen) === Math.fround(scale)) return [inLen, outLen];
  for (let q = 1; q <= 1024; q++) {
    const n = scale * q;
    if (Number.isInteger(n) && n > 0) return [q, n];
  }
  return undefined;
}

/** The axis map of one coordinate_transformation_mode with the input/output length ratio p/q = 1 / scale. */
function axisMap(mode: string, p: number, q: number, inLen: number, outLen: number, w: string): AxisMap {
  switch (mode) {
    // (x + 0.5) p/q - 0.5
    case 'half_pixel': return reduce({ a: 2 * p, b: p - q, d: 2 * q });
    case 'pytorch_half_pixel': return outLen > 1 ? reduce({ a: 2 * p, b: p - q, d: 2 * q }) : { a: 0, b: 0, d: 1 };
    case 'asymmetric': return reduce({ a: p, b: 0, d: q });
    case 'tf_half_pixel_for_nn': return reduce({ a: 2 * p, b: p, d: 2 * q });
    case 'align_corners': return outLen > 1 ? reduce({ a: inLen - 1, b: 0, d: outLen - 1 }) : { a: 0, b: 0, d: 1 };
    default: throw unsupported(w, `coordinate_transformation_mode '${mode}' is not supported`);
  }
}

const nearestModes: Record<string, string> = {
  // round_prefer_floor(v) = ceil(v - 1/2) = ceil((2n - d) / 2d); round_prefer_ceil(v) = floor((2n + d) / 2d).
  round_prefer_floor: 'cdiv(2 * n - d, 2 * d)',
  round_prefer_ceil: 'fdiv(2 * n + d, 2 * d)',
  floor: 'fdiv(n, d)',
  ceil: 'cdiv(n, d)',
};

export function resize(args: KernelArgs): KernelProgram {
  const w = where(args);
  const a = args.node.attrs;
  const x = inShape(args, 0, 'X');
  const o = outShape(args);
  if (o.length !== x.length) throw invalid(w, `output [${o.join(',')}] has another rank than the input [${x.join(',')}]`);
  const mode = strAttr(a, 'mode', 'nearest', w);
  if (mode !== 'nearest' && mode !== 'linear') throw unsupported(w, `mode '${mode}' is not supported (nearest, linear)`);
  const ctm = strAttr(a, 'coordinate_transformation_mode', 'half_pixel', w);
  const nearestMode = strAttr(a, 'nearest_mode', 'round_prefer_floor', w);
  if (mode === 'nearest' && !nearestModes[nearestMode]) throw unsupported(w, `nearest_mode '${nearestMode}' is not supported`);
  if (a.antialias !== undefined && a.antialias !== 0) throw unsupported(w, 'antialias is not supported');
  if (a.axes !== undefined) throw unsupported(w, 'the axes attribute is not supported');
  const policy = strAttr(a, 'keep_aspect_ratio_policy', 'stretch', w);
  if (policy !== 'stretch') throw unsupported(w, `keep_aspect_ratio_policy '${policy}' is not supported`);
  if (x.some((d) => d === 0) || o.some((d) => d === 0)) throw invalid(w, 'resizing an empty tensor');

  // Scales: the attribute when the scales input was a constant; otherwise sizes (the output shape). One of them
  // must be there (opset 11+); opset 10's Resize(X, scales) has other coordinates and is refused.
  const scalesIn = args.inputShapes[2];
  const hasScales = !!args.node.inputs[2] && !!scalesIn && size(scalesIn) > 0;
  const sizesIn = args.inputShapes[3];
  if (!hasScales && !(args.node.inputs[3] && sizesIn && size(sizesIn) > 0)) {
    throw unsupported(w, 'Resize needs scales (input 2) or sizes (input 3); the opset-10 form Resize(X, scales) is not supported');
  }
  let scales: number[] | undefined;
  if (hasScales) {
    const v = a.scales;
    if (!Array.isArray(v) || !v.every((s) => typeof s === 'number')) throw unsupported(w, 'scales computed at run time are not supported (the scales input must be a constant)');
    scales = v as number[];
    if (scales.length !== x.length) throw invalid(w, `${scales.length} scales for an input of rank ${x.length}`);
    scales.forEach((s, k) => {
      if (!(s > 0) || !Number.isFinite(s)) throw invalid(w, `scale ${s} of axis ${k} must be positive`);
      // onnxruntime: out = floor(in * scale), the product in float32 or float64.
      if (o[k] !== Math.floor(x[k] * s) && o[k] !== Math.floor(Math.fround(x[k] * s))) {
        throw invalid(w, `output [${o.join(',')}] does not follow from input [${x.join(',')}] and scales [${scales!.join(',')}]`);
      }
    });
  }

  const maps = axisMaps(x, o, ctm, scales, w);
  const total = size(o);
  const d = flatDispatch(total, args.limits, w);
  const sampler = resizeSampler('sample', 'X', x, o, maps, mode, nearestMode);

  const wgsl = `
${bindings(['X'])}
${sampler}

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  out[i] = sample(i);
}
`;
  const mapKey = mapsKey(maps);
  return {
    name: `Resize(${mode})`,
    cacheKey: cacheKey('resize', mode, mode === 'nearest' ? nearestMode : '', x, o, mapKey, u32(total), d.key),
    wgsl,
    workgroupSize: d.workgroupSize,
    dispatch: d.dispatch,
    inputs: [0],
    outputs: 1,
    workgroupStorageBytes: 0,
  };
}

/**
 * Each axis' map from output to input coordinates (null: the identity), for input shape `x`, output shape `o`, the
 * coordinate_transformation_mode `ctm` and the scales (undefined: the ratio of the lengths).
 */
export function axisMaps(x: readonly number[], o: readonly number[], ctm: string, scales: readonly number[] | undefined, w: string): (AxisMap | null)[] {
  // Refused whatever the lengths: its roi input would move even an axis of scale 1.
  if (ctm === 'tf_crop_and_resize') throw unsupported(w, `coordinate_transformation_mode '${ctm}' is not supported`);
  return x.map((inLen, k) => {
    const outLen = o[k];
    let pq: [number, number] | undefined = [inLen, outLen];
    if (scales) pq = ratioOfScale(scales[k], inLen, outLen);
    if (!pq) throw unsupported(w, `scale ${scales![k]} of axis ${k} is not a ratio of small integers`);
    // An axis of scale 1 (the lengths' ratio where sizes are given) reads the output coordinate itself, whatever the
    // coordinate_transformation_mode: onnxruntime maps such an axis one to one (tf_half_pixel_for_nn's x + 0.5 would
    // otherwise move a nearest 'ceil' or a linear blend one element on).
    if (scales ? Math.fround(scales[k]) === 1 : inLen === outLen) return null;
    const m = axisMap(ctm, pq[0], pq[1], inLen, outLen, w);
    // Every numerator the shader forms (2n + d included) must fit an i32.
    const big = 2 * (Math.abs(m.a) * outLen + Math.abs(m.b)) + 2 * m.d;
    if (big >= 2 ** 31) throw overLimit(w, `axis ${k} (${inLen} -> ${outLen}) is too long for the kernel's 32-bit coordinates`);
    return m;
  });
}

/** The maps' part of a cache key. */
export const mapsKey = (maps: readonly (AxisMap | null)[]) => maps.map((m) => (m ? `${m.a}/${m.b}/${m.d}` : 'id')).join(',');

/**
 * WGSL: `fn <name>(i: u32) -> f32`, the value of element i (row-major in `o`) of the resize of the storage array
 * `src` (shape `x`), and its helpers (prefixed with the name). Nearest reads one element; linear clamps the
 * coordinate to [0, in - 1] and blends the 2^k neighbours of the k resized axes.
 */
export function resizeSampler(name: string, src: string, x: readonly number[], o: readonly number[], maps: readonly (AxisMap | null)[], mode: string, nearestMode: string): string {
  const resized = maps.map((m, k) => (m ? k : -1)).filter((k) => k >= 0);
  const lines: string[] = [];
  let value: string;
  if (mode === 'nearest') {
    for (const k of resized) {
      const m = maps[k]!;
      lines.push(`let n${k} = ${i32(m.a)} * i32(o${k}) + ${i32(m.b)};`);
      lines.push(`let i${k} = u32(clamp(${name}_nearest(n${k}, ${i32(m.d)}), 0i, ${i32(x[k] - 1)}));`);
    }
    const c = x.map((_, k) => (maps[k] ? `i${k}` : `o${k}`));
    value = `${src}[${offset(c, x)}]`;
  } else {
    // Per resized axis: lower index l, upper index h and weight t of h, the coordinate clamped to [0, in - 1].
    for (const k of resized) {
      const m = maps[k]!;
      lines.push(`let n${k} = clamp(${i32(m.a)} * i32(o${k}) + ${i32(m.b)}, 0i, ${i32((x[k] - 1) * m.d)});`);
      lines.push(`let l${k} = ${name}_fdiv(n${k}, ${i32(m.d)});`);
      lines.push(`let h${k} = u32(min(l${k} + 1i, ${i32(x[k] - 1)}));`);
      lines.push(`let t${k} = f32(n${k} - l${k} * ${i32(m.d)}) / f32(${i32(m.d)});`);
    }
    const terms: string[] = [];
    for (let corner = 0; corner < 1 << resized.length; corner++) {
      const c = x.map((_, k) => `o${k}`);
      const wts: string[] = [];
      resized.forEach((k, j) => {
        const hi = (corner >> j) & 1;
        c[k] = hi ? `h${k}` : `u32(l${k})`;
        wts.push(hi ? `t${k}` : `(1.0 - t${k})`);
      });
      terms.push(`${wts.length ? wts.join(' * ') + ' * ' : ''}${src}[${offset(c, x)}]`);
    }
    value = terms.join('\n    + ');
  }
  return `
// Floor and ceiling of n / d for d > 0.
fn ${name}_fdiv(n: i32, d: i32) -> i32 { if (n >= 0i) { return n / d; } return -((-n + d - 1i) / d); }
fn ${name}_cdiv(n: i32, d: i32) -> i32 { return -${name}_fdiv(-n, d); }
fn ${name}_nearest(n: i32, d: i32) -> i32 { return ${(nearestModes[nearestMode] ?? 'fdiv(n, d)').replace(/\b(fdiv|cdiv)\(/g, `${name}_$1(`)}; }
fn ${name}(i: u32) -> f32 {
  ${coords('i', o, 'o')}
  ${lines.join('\n  ')}
  return ${value};
}`;
}

/** A residual read through a resize (src/rewrite/resized-residual.ts): `resAt(i)`, its WGSL and its cache-key part. */
export interface ResidualSampler { wgsl: string; key: string }

/**
 * The sampler of a convolution's residual given at a lower resolution (attr `residualResize`, the Resize's mode, with
 * `residualResizeCtm` and `residualResizeNearest`; src/graph/ir.ts): `fn resAt(i: u32) -> f32` reads element i of the
 * output-shaped [N, F, HO, WO] resize of binding `res` ([N, F, h, w]), as kernels/resize.ts computes it (the lengths'
 * ratio as the scale). Undefined without the attribute.
 */
export function residualSampler(a: Attrs, res: readonly number[], out: readonly number[], w: string): ResidualSampler | undefined {
  if (a.residualResize === undefined) return undefined;
  const mode = strAttr(a, 'residualResize', 'linear', w);
  if (mode !== 'nearest' && mode !== 'linear') throw unsupported(w, `residualResize '${mode}' is not supported (nearest, linear)`);
  const ctm = strAttr(a, 'residualResizeCtm', 'half_pixel', w);
  const nearestMode = strAttr(a, 'residualResizeNearest', 'round_prefer_floor', w);
  if (mode === 'nearest' && !nearestModes[nearestMode]) throw unsupported(w, `residualResizeNearest '${nearestMode}' is not supported`);
  if (res.length !== 4 || out.length !== 4 || res[0] !== out[0] || res[1] !== out[1] || res.some((d) => d < 1)) {
    throw invalid(w, `a resized residual [${res.join(',')}] must be [${out[0]},${out[1]},h,w] for the output [${out.join(',')}]`);
  }
  const maps = axisMaps(res, out, ctm, undefined, w);
  // The key names both shapes: a kernel's own key may name the output's positions only as their count.
  return { wgsl: resizeSampler('resAt', 'res', res, out, maps, mode, nearestMode), key: `rz[${mode}${mode === 'nearest' ? `,${nearestMode}` : ''},${res.join('x')}->${out.join('x')},${mapsKey(maps)}]` };
}
