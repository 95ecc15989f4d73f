// Half-precision storage for the float kernels: the f16 program of a kernel is its fp32 program with every storage
// binding's element type f32 -> f16 (vec4<f32> -> vec4<f16>), a conversion to f32 on every load from such a binding
// and back to f16 on every store. Everything in between (accumulators, workgroup tiles, epilogues, softmax and
// reduction sums) stays f32: only the tensors in memory are halved. One generator for every float kernel, so a kernel
// added to kernels/ has its f16 form without a second copy of its WGSL.
//
// Why a rewrite of the generated WGSL rather than a parameter threaded through each generator: the storage element
// type touches only the binding declarations and the indexing expressions on them, and WGSL has no implicit
// conversion between f16 and f32, so any access this rewrite missed is a type error at pipeline creation (every
// kernel's f16 form is compiled by the tests), never a silent change of arithmetic.

import type { KernelLimits, KernelProgram } from './program.js';
import type { Int8Program } from './int8/common.js';
import { cacheKey, flatDispatch } from './shader.js';

export type StorageType = 'f32' | 'f16';

/** Bytes of one tensor element in storage. */
export const storageBytes = (s: StorageType): number => (s === 'f16' ? 2 : 4);

/** The storage element types the rewrite converts, and their f16 forms. */
const halfOf: Record<string, string> = { f32: 'f16', 'vec2<f32>': 'vec2<f16>', 'vec4<f32>': 'vec4<f16>' };

const decl = /@group\(0\)\s*@binding\((\d+)\)\s*var<storage,\s*(read|read_write)>\s*(\w+)\s*:\s*array<\s*(f32|vec2<f32>|vec4<f32>)\s*>\s*;/g;

/** The index of the bracket closing the one at `open` (`[` or `(`). */
function closing(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    if (c === '[' || c === '(') depth++;
    else if (c === ']' || c === ')') {
      depth--;
      if (depth === 0) return i;
    }
  }
  throw new Error(`internal: f16 rewrite: unbalanced bracket at ${open}`);
}

/** The end (index of the `;`) of the statement part starting at `from`, at bracket depth 0. */
function statementEnd(s: string, from: number): number {
  let depth = 0;
  for (let i = from; i < s.length; i++) {
    const c = s[i];
    if (c === '[' || c === '(' || c === '{') depth++;
    else if (c === ']' || c === ')' || c === '}') depth--;
    else if (c === ';' && depth === 0) return i;
  }
  throw new Error(`internal: f16 rewrite: no ';' after ${from}`);
}

const isIdent = (c: string | undefined) => c !== undefined && /[A-Za-z0-9_]/.test(c);

/** Rewrites loads and stores of the storage arrays `types` (name -> f32 element type) in `s`. */
function rewriteAccesses(s: string, types: ReadonlyMap<string, string>): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (!isIdent(c) || isIdent(s[i - 1])) { out += c; i++; continue; }
    let j = i;
    while (isIdent(s[j])) j++;
    const name = s.slice(i, j);
    let k = j;
    while (s[k] === ' ') k++;
    const t = types.get(name);
    if (t === undefined || s[i - 1] === '.' || s[k] !== '[') { out += name; i = j; continue; }
    const close = closing(s, k);
    const access = `${name}[${rewriteAccesses(s.slice(k + 1, close), types)}]`;
    // Postfix after the element: a component (`[q]`, `.x`) of a vector element.
    let p = close + 1;
    let post = '';
    for (;;) {
      let q = p;
      while (s[q] === ' ') q++;
      if (s[q] === '[') { const e = closing(s, q); post += `[${rewriteAccesses(s.slice(q + 1, e), types)}]`; p = e + 1; continue; }
      if (s[q] === '.' && isIdent(s[q + 1])) { let e = q + 1; while (isIdent(s[e])) e++; post += s.slice(q, e); p = e; continue; }
      break;
    }
    let q = p;
    while (s[q] === ' ') q++;
    const assign = /^(=(?!=)|[+\-*/]=)/.exec(s.slice(q, q + 2));
    if (assign) {
      // A store: the value is computed in f32 and converted once.
      const end = statementEnd(s, q + assign[0].length);
      const rhs = rewriteAccesses(s.slice(q + assign[0].length, end), types).trim();
      const storeT = post ? 'f16' : halfOf[t];
      const loadT = post ? 'f32' : t;
      const value = assign[0] === '=' ? rhs : `${loadT}(${access}${post}) ${assign[0][0]} (${rhs})`;
      out += `${access}${post} = ${storeT}(${value})`;
      i = end;
      continue;
    }
    out += `${t}(${access})${post}`;
    i = p;
  }
  return out;
}

/**
 * The WGSL of a float kernel with its storage arrays of f32 elements stored as f16 (`enable f16;` first). Loads
 * convert to f32 and stores round to f16 (WGSL lets the implementation pick either neighbour; lavapipe rounds to
 * nearest, as the tests' bound assumes), so the kernel's arithmetic is the fp32 kernel's. `half(binding)`: whether
 * the array at that binding number is stored as f16 (default: all); the others stay f32 arrays, as written (a mixed
 * session keeps some tensors f32: src/runtime/f16-islands.ts).
 */
export function halfStorageWgsl(wgsl: string, half: (binding: number) => boolean = () => true): string {
  const types = new Map<string, string>();
  // Comments go first: text in them (`out[i] = ...`) is no access. WGSL has no string literals.
  const code = wgsl.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');
  const declared = code.replace(decl, (m, binding: string, access: string, name: string, t: string) => {
    if (!half(Number(binding))) return m;
    types.set(name, t.replace(/\s/g, ''));
    return `@group(0) @binding(${binding}) var<storage, ${access}> ${name}: array<${halfOf[t.replace(/\s/g, '')]}>;`;
  });
  if (!types.size) throw new Error('internal: f16 rewrite: the program declares no f32 storage array');
  return `enable f16;\n${rewriteAccesses(declared, types)}`;
}

/**
 * A float kernel's program with `storage` elements: one type for every binding, or one per binding in program order
 * (the used inputs, then the outputs). A program with an f16 binding has its own cache key: prefix 'f16|' when every
 * binding is f16, else 'f16[' + one letter per binding (h f16, f f32) + ']|'; one with none is the fp32 program.
 */
export function withStorage(p: KernelProgram, storage: StorageType | readonly StorageType[]): KernelProgram {
  if (typeof storage === 'string') {
    if (storage === 'f32') return p;
    return { ...p, cacheKey: `f16|${p.cacheKey}`, wgsl: halfStorageWgsl(p.wgsl) };
  }
  const n = p.inputs.length + p.outputs;
  if (storage.length !== n) throw new Error(`internal: ${p.name} has ${n} bindings, storage types given for ${storage.length}`);
  if (storage.every((s) => s === 'f32')) return p;
  if (storage.every((s) => s === 'f16')) return withStorage(p, 'f16');
  const key = storage.map((s) => (s === 'f16' ? 'h' : 'f')).join('');
  return { ...p, cacheKey: `f16[${key}]|${p.cacheKey}`, wgsl: halfStorageWgsl(p.wgsl, (b) => storage[b] === 'f16') };
}

/**
 * The conversion of a float32 model input of `n` elements to its f16 buffer on the GPU (run() writes the Float32Array
 * feed as it is, then this dispatch): on the host the same rounding cost 6-9 ms per 224x224x3 image on one core.
 * Bindings: `xf` the float32 feed, `out` the input's f16 tensor. Values beyond f16's range have no defined result in
 * WGSL (Dawn on lavapipe gives infinity); image inputs are far inside it.
 */
export function halfFeedProgram(n: number, limits: KernelLimits, name: string): Int8Program {
  // A pair of elements per invocation, stored as one vec2<f16> (4-byte stores: single f16 stores took 25 us for
  // MobileNetV2's batch-32 input on an H100, twice what its 29 MB need). The buffer holds whole 4-byte words, so
  // an odd n's last pair exists; its second half is 0.
  const pairs = Math.ceil(n / 2);
  const d = flatDispatch(pairs, limits, `input '${name}'`);
  const wgsl = `enable f16;
@group(0) @binding(0) var<storage, read> xf: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<vec2<f16>>;

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  var hi = 0.0;
  if (2u * i + 1u < ${n}u) { hi = xf[2u * i + 1u]; }
  out[i] = vec2<f16>(f16(xf[2u * i]), f16(hi));
}
`;
  return {
    name: `ToF16(input ${name})`, cacheKey: cacheKey('f16-feed-pairs', n, d.key), wgsl,
    workgroupSize: d.workgroupSize, dispatch: d.dispatch, inputs: [0], outputs: 1, workgroupStorageBytes: 0, constants: [],
  };
}

/**
 * The widening of an f16 model output of `n` elements to float32 values on the GPU, for an output an fp16 session
 * leaves on the GPU (run()'s outputLocation 'gpu': the caller's buffer holds float32 values, as a float32 session's).
 * Bindings: `h` the output's f16 tensor, `out` the float32 buffer.
 */
export function floatOutputProgram(n: number, limits: KernelLimits, name: string): KernelProgram {
  const d = flatDispatch(n, limits, `output '${name}'`);
  const wgsl = `enable f16;
@group(0) @binding(0) var<storage, read> h: array<f16>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  out[i] = f32(h[i]);
}
`;
  return {
    name: `ToF32(output ${name})`, cacheKey: cacheKey('f32-output', n, d.key), wgsl,
    workgroupSize: d.workgroupSize, dispatch: d.dispatch, inputs: [0], outputs: 1, workgroupStorageBytes: 0,
  };
}
