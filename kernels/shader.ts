// The one small WGSL helper every kernel uses (fp32, FCM and integer): reading the node's attributes and the
// shapes of KernelArgs (kernels/program.ts), shape constants, index maths (NCHW offsets, flat index <-> coordinates),
// bounds guards, workgroup sizes and the dispatch layout that keeps within maxComputeWorkgroupsPerDimension, the
// activation epilogue snippets and the cache key.
//
// Kernels bake shapes into the WGSL as constants (as the FCM kernels do), so a program is specific to its
// shapes and attributes and `cacheKey` must name all of them; equal keys mean equal WGSL.
//
// WebGPU does not zero out-of-bounds accesses: a load past the end may read anything in the binding and a
// store may clobber it. Every kernel returns early for invocations past the last element (`guardFlat`) and
// checks every computed input coordinate before it loads (`inRange`).

import type { Attrs, AttrValue, Node } from '../src/graph/ir.js';
import { checkedProduct, invalid, overLimit, unsupported } from '../src/errors.js';
import type { KernelArgs, KernelLimits } from './program.js';

/** The node a kernel's errors name: `node 'conv_3' (Conv)`. */
export function where<A extends { node: Pick<Node, 'name' | 'op'> }>(args: A): string {
  return `node '${args.node.name}' (${args.node.op})`;
}

// ---- attributes -----------------------------------------------------------------------------------------

export function numAttr(a: Attrs, key: string, def: number, w: string): number {
  const v: AttrValue | undefined = a[key];
  if (v === undefined) return def;
  if (typeof v === 'number') return v;
  if (Array.isArray(v) && v.length === 1 && typeof v[0] === 'number') return v[0];
  throw invalid(w, `attribute ${key} must be a number, got ${JSON.stringify(v)}`);
}

export function intAttr(a: Attrs, key: string, def: number, w: string): number {
  const v = numAttr(a, key, def, w);
  if (!Number.isInteger(v)) throw invalid(w, `attribute ${key} must be an integer, got ${v}`);
  return v;
}

export function intsAttr(a: Attrs, key: string, def: readonly number[] | undefined, w: string, len?: number): number[] {
  const v = a[key];
  if (v === undefined) {
    if (def === undefined) throw invalid(w, `attribute ${key} is missing`);
    return [...def];
  }
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isInteger(x))) {
    throw invalid(w, `attribute ${key} must be integers, got ${JSON.stringify(v)}`);
  }
  if (len !== undefined && v.length !== len) throw invalid(w, `attribute ${key} must have ${len} values, got ${v.length}`);
  return v as number[];
}

export function strAttr(a: Attrs, key: string, def: string, w: string): string {
  const v = a[key];
  if (v === undefined) return def;
  if (typeof v !== 'string') throw invalid(w, `attribute ${key} must be a string`);
  return v;
}

/** A negative axis counts from the end (ONNX); out of range is invalid. */
export function normAxis(axis: number, rank: number, w: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw invalid(w, `axis ${axis} is out of range for rank ${rank}`);
  return a;
}

// ---- shapes ---------------------------------------------------------------------------------------------

/** The shape of node.inputs[i], required present, rank checked when given; element count must fit a u32 index. */
export function inShape(args: KernelArgs, i: number, what: string, rank?: number): number[] {
  const s = args.inputShapes[i];
  const w = where(args);
  if (!s || !args.node.inputs[i]) throw invalid(w, `input ${i} (${what}) is missing`);
  if (rank !== undefined && s.length !== rank) {
    // The graph's shapes were checked at import: a rank this kernel does not take is a limit of the kernel.
    throw unsupported(w, `${what} '${args.node.inputs[i]}' must have rank ${rank}, got [${s.join(',')}]`);
  }
  checkedProduct(s, `${w}: ${what} '${args.node.inputs[i]}'`, 2 ** 32 - 1);
  return [...s];
}

export function hasInput(args: KernelArgs, i: number): boolean {
  return !!args.node.inputs[i] && args.inputShapes[i] !== undefined;
}

export function outShape(args: KernelArgs, i = 0): number[] {
  const s = args.outputShapes[i];
  if (!s) throw invalid(where(args), `output ${i} has no shape`);
  checkedProduct(s, `${where(args)}: output ${i}`, 2 ** 32 - 1);
  return [...s];
}

/** Input i must have exactly the shape `expected`. */
export function expectInput(args: KernelArgs, i: number, expected: readonly number[], what: string): void {
  const s = args.inputShapes[i];
  if (!s || s.length !== expected.length || s.some((d, k) => d !== expected[k])) {
    throw invalid(where(args), `${what} '${args.node.inputs[i]}' has shape [${s?.join(',')}], expected [${expected.join(',')}]`);
  }
}

export function expectOutput(args: KernelArgs, expected: readonly number[], i = 0): void {
  const s = args.outputShapes[i];
  if (!s || s.length !== expected.length || s.some((d, k) => d !== expected[k])) {
    throw invalid(where(args), `output shape [${s?.join(',')}] does not match the computed [${expected.join(',')}]`);
  }
}

export const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, k) => d === b[k]);

export const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Row-major strides (elements). */
export function stridesOf(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  let p = 1;
  for (let k = shape.length - 1; k >= 0; k--) { st[k] = p; p *= shape[k]; }
  return st;
}

export const ceilDiv = (a: number, b: number) => Math.ceil(a / b);

/** The largest power of two <= n (1 for n < 2). */
export const pow2AtMost = (n: number) => { let p = 1; while (p * 2 <= n) p *= 2; return p; };

/** The smallest power of two >= n (1 for n <= 1). */
export const pow2AtLeast = (n: number) => { let p = 1; while (p < n) p *= 2; return p; };

/**
 * 4-byte words of workgroup storage that arrays of these lengths (f32, i32 or u32) take: Dawn rounds each
 * workgroup variable up to 16 bytes, so an odd tile that summed to exactly the limit failed pipeline creation (32784 > 32768 bytes).
 */
export const wgFloats = (...lengths: number[]) => lengths.reduce((a, n) => a + ceilDiv(n, 4) * 4, 0);

// ---- WGSL snippets --------------------------------------------------------------------------------------

export function u32(v: number): string {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`internal: ${v} is not a u32`);
  return `${v}u`;
}

export function i32(v: number): string {
  if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) throw new Error(`internal: ${v} is not an i32`);
  return `${v}i`;
}

/** WGSL `const` lines for integer parameters (all u32). */
export function constsU32(c: Record<string, number>): string {
  return Object.entries(c).map(([k, v]) => {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`internal: constant ${k}=${v} is not a u32`);
    return `const ${k}: u32 = ${v}u;`;
  }).join('\n');
}

/** WGSL `const` lines for signed integer parameters. */
export function constsI32(c: Record<string, number>): string {
  return Object.entries(c).map(([k, v]) => `const ${k}: i32 = ${i32(v)};`).join('\n');
}

/** An f32 literal for WGSL; refuses non-finite values (WGSL has no literal for them). */
export function f32(v: number, w: string): string {
  if (!Number.isFinite(v)) throw invalid(w, `value ${v} cannot be a WGSL constant`);
  const s = String(Math.fround(v));
  return `f32(${/[.eE]/.test(s) ? s : s + '.0'})`;
}

/** Binding declarations in KernelProgram order: the used inputs (read-only), then the outputs (f32 arrays). */
export function bindings(inputs: readonly string[], outputs: readonly string[] = ['out']): string {
  const lines = inputs.map((n, k) => `@group(0) @binding(${k}) var<storage, read> ${n}: array<f32>;`);
  outputs.forEach((n, k) => lines.push(`@group(0) @binding(${inputs.length + k}) var<storage, read_write> ${n}: array<f32>;`));
  return lines.join('\n');
}

/**
 * WGSL lines `let P0 = ...; let P1 = ...;` decomposing the flat row-major index `idx` into the coordinates
 * of `shape` (u32). Dimensions of size 1 give the constant 0u.
 */
export function coords(idx: string, shape: readonly number[], prefix: string): string {
  const st = stridesOf(shape);
  return shape.map((d, k) => {
    if (d === 1) return `let ${prefix}${k} = 0u;`;
    const q = st[k] === 1 ? idx : `(${idx} / ${u32(st[k])})`;
    return k === 0 ? `let ${prefix}${k} = ${q};` : `let ${prefix}${k} = ${q} % ${u32(d)};`;
  }).join('\n  ');
}

/** The flat row-major offset expression of coordinate expressions `c` in `shape` (u32). */
export function offset(c: readonly string[], shape: readonly number[]): string {
  if (c.length !== shape.length) throw new Error('internal: offset rank mismatch');
  const st = stridesOf(shape);
  const terms = c.map((e, k) => (shape[k] === 1 ? '' : st[k] === 1 ? `${e}` : `${e} * ${u32(st[k])}`)).filter((t) => t);
  return terms.length ? terms.join(' + ') : '0u';
}

/** NCHW offset of (n, c, y, x) in a tensor of shape [N, C, H, W]. */
export function nchw(n: string, c: string, y: string, x: string, shape: readonly number[]): string {
  const [, C, H, W] = shape;
  return `((((${n}) * ${u32(C)} + (${c})) * ${u32(H)} + (${y})) * ${u32(W)} + (${x}))`;
}

/** A bounds test for a signed coordinate against [0, n). */
export const inRange = (v: string, n: number) => `(${v} >= 0i && ${v} < ${i32(n)})`;

// ---- dispatch -------------------------------------------------------------------------------------------

export interface FlatDispatch {
  workgroupSize: [number, number, number];
  dispatch: [number, number, number];
  /** WGSL: `let i = ...; if (i >= TOTAL) { return; }` with `gid` the global invocation id. */
  guard: string;
  /** Part of the cache key. */
  key: string;
}

/**
 * Workgroup size cap: 256 is WebGPU's default minimum, what the planner assumes for the FCMs, and plenty for
 * every kernel here.
 */
export const maxThreads = 256;

/** Workgroup size cap for this device. */
export function threadCap(l: KernelLimits): number {
  return Math.min(maxThreads, l.maxComputeInvocationsPerWorkgroup, l.maxComputeWorkgroupSizeX ?? maxThreads);
}

/** The smallest power of two >= items, at least 32 (one warp), at most `cap`. */
export function threadsFor(items: number, cap: number): number {
  let t = 32;
  while (t < items && t < cap) t *= 2;
  return Math.min(t, cap);
}

/**
 * Lay `total` workgroups out in x, then y, within maxComputeWorkgroupsPerDimension; the shader recombines
 * them as `wid.x + wid.y * dispatchX`.
 */
export function layoutWorkgroups(total: number, l: KernelLimits, w: string): { dispatch: [number, number, number]; dispatchX: number } {
  const maxDim = l.maxComputeWorkgroupsPerDimension ?? 65535;
  const x = Math.max(1, Math.min(total, maxDim));
  const y = Math.ceil(total / x);
  if (y > maxDim) throw overLimit(w, `${total} workgroups exceed ${maxDim}^2`);
  return { dispatch: [x, y, 1], dispatchX: x };
}

/**
 * One invocation per item (`total` items, e.g. output elements): a 1-D workgroup of up to 256 threads and a
 * 2-D grid of workgroups. The WGSL entry must declare `@builtin(global_invocation_id) gid: vec3<u32>` and
 * start with `guard`, which defines `i` (the item) and returns past the end.
 */
export function flatDispatch(total: number, l: KernelLimits, w: string, name = 'i'): FlatDispatch {
  if (!Number.isSafeInteger(total) || total > 0xffffffff) throw overLimit(w, `${total} items exceed the u32 index range`);
  // Small tensors (squeeze-excite vectors) get small workgroups so that fewer invocations idle.
  const t = Math.min(threadCap(l), total >= 256 ? 256 : 64);
  const d = layoutWorkgroups(ceilDiv(Math.max(total, 1), t), l, w);
  return {
    workgroupSize: [t, 1, 1],
    dispatch: d.dispatch,
    guard: `let ${name} = gid.x + gid.y * ${u32(d.dispatchX * t)};\n  if (${name} >= ${u32(total)}) { return; }`,
    key: `wg${t}dx${d.dispatchX}`,
  };
}

// ---- activations (epilogues and standalone) ---------------------------------------------------------------

export const activationOps = ['Relu', 'Clip', 'HardSwish', 'HardSigmoid', 'Sigmoid', 'SiLU', 'LeakyRelu', 'Tanh'] as const;

/**
 * `fn NAME(v: f32) -> f32` applying an ONNX activation with the IR's parameter convention
 * (Clip: [min, max]; LeakyRelu: [alpha]; HardSigmoid: [alpha, beta]); '' is the identity.
 * Clip with an infinite bound drops that bound.
 */
export function activationFn(fnName: string, act: string, p: readonly number[], w: string): string {
  const lit = (v: number) => f32(v, w);
  let body: string;
  switch (act) {
    case '': body = 'v'; break;
    case 'Relu': body = 'max(v, 0.0)'; break;
    case 'Clip': {
      const lo = p[0] ?? -Infinity, hi = p[1] ?? Infinity;
      if (Number.isNaN(lo) || Number.isNaN(hi)) throw invalid(w, 'Clip bounds must not be NaN');
      body = 'v';
      if (Number.isFinite(lo)) body = `max(${body}, ${lit(lo)})`;
      if (Number.isFinite(hi)) body = `min(${body}, ${lit(hi)})`;
      break;
    }
    case 'HardSigmoid': body = `clamp(${lit(p[0] ?? 0.2)} * v + ${lit(p[1] ?? 0.5)}, 0.0, 1.0)`; break;
    case 'HardSwish': body = 'v * clamp(v / 6.0 + 0.5, 0.0, 1.0)'; break;
    // exp(-v) overflows to +inf for v < -88: 1 / (1 + inf) = 0, the right limit.
    case 'Sigmoid': body = '1.0 / (1.0 + exp(-v))'; break;
    case 'SiLU': body = 'v / (1.0 + exp(-v))'; break;
    case 'LeakyRelu': body = `select(${lit(p[0] ?? 0.01)} * v, v, v >= 0.0)`; break;
    // Some drivers build tanh from exp and return NaN for large |v|; tanh(+-10) is +-1 in f32 anyway.
    case 'Tanh': body = 'tanh(clamp(v, -10.0, 10.0))'; break;
    default: throw unsupported(w, `activation '${act}' is not supported`);
  }
  // NaN passes through as in onnxruntime: WGSL's max/min/clamp may return the other operand for a NaN (lavapipe
  // does), turning NaN inputs into finite outputs. Tested on the bits: compilers may fold `v != v` to false.
  if (body === 'v') return `fn ${fnName}(v: f32) -> f32 { return v; }`;
  return `fn ${fnName}(v: f32) -> f32 { return select(${body}, v, (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u); }`;
}

export interface Epilogue {
  /** WGSL function text `fn NAME(v: f32) -> f32`. */
  fn: string;
  /** Part of the cache key. */
  key: string;
  /** Whether `fn` also defines `ract` / `ract4`, the activation after the residual (withPostActivation). */
  post?: boolean;
}

/**
 * `e` with the activation a node applies after its residual add (attrs activationPost / activationParamsPost,
 * src/graph/ir.ts) appended as the WGSL functions `ract` (f32) and `ract4` (vec4<f32>, per lane); `e` itself when the
 * node has none, so kernels without it keep their WGSL and cache keys. Stores go through plusResidual.
 */
export function withPostActivation(e: Epilogue, a: Attrs, w: string): Epilogue {
  if (a.activationPost === undefined) return e;
  const post = nodeEpilogue(a, w, 'Post', 'ract');
  const fn4 = 'fn ract4(v: vec4<f32>) -> vec4<f32> { return vec4<f32>(ract(v.x), ract(v.y), ract(v.z), ract(v.w)); }';
  return { fn: `${e.fn}\n${post.fn}\n${fn4}`, key: `${e.key}>${post.key}`, post: true };
}

/** WGSL for `v + r`, through the activation after the residual when `e` has one (`vec`: vec4 operands). */
export function plusResidual(e: Epilogue, v: string, r: string, vec = false): string {
  return e.post ? `${vec ? 'ract4' : 'ract'}(${v} + ${r})` : `${v} + ${r}`;
}

/**
 * The activation epilogue of a node: attrs `activation${suffix}` / `activationParams${suffix}` (src/graph/ir.ts;
 * suffix '' for Conv, '1'/'2' for the FCMs), as the WGSL function `fnName`.
 */
export function nodeEpilogue(a: Attrs, w: string, suffix = '', fnName = 'act'): Epilogue {
  const name = a[`activation${suffix}`];
  const params = a[`activationParams${suffix}`];
  if (name !== undefined && typeof name !== 'string') throw invalid(w, `activation${suffix} must be a string`);
  if (params !== undefined && !(Array.isArray(params) && params.every((p) => typeof p === 'number'))) {
    throw invalid(w, `activationParams${suffix} must be numbers`);
  }
  const p = (params ?? []) as number[];
  return { fn: activationFn(fnName, name ?? '', p, w), key: `${name ?? 'none'}(${p.join(',')})` };
}

/** The parameters of a standalone activation node in the epilogue convention. */
export function standaloneParams(op: string, a: Attrs, w: string): number[] {
  switch (op) {
    case 'Clip': return [numAttr(a, 'min', -Infinity, w), numAttr(a, 'max', Infinity, w)];
    case 'LeakyRelu': return [numAttr(a, 'alpha', 0.01, w)];
    case 'HardSigmoid': return [numAttr(a, 'alpha', 0.2, w), numAttr(a, 'beta', 0.5, w)];
    default: return [];
  }
}

// ---- cache key ------------------------------------------------------------------------------------------

/** A cache key from parts: shapes print as AxBxC, everything else as text, joined with '|'. */
export function cacheKey(...parts: (string | number | boolean | readonly number[] | undefined)[]): string {
  return parts.map((p) => (p === undefined ? '-' : Array.isArray(p) ? `[${p.join('x')}]` : String(p))).join('|');
}
