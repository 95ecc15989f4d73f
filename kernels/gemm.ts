// Gemm (Y = alpha * op(A) op(B) + beta * C, C broadcast to [M, N]) and MatMul (numpy semantics: batch dims
// broadcast, 1-D operands promoted and the added dims dropped). One invocation per output element, a dot
// product of length K: classifier heads are small next to the convolutions.

import type { KernelArgs, KernelProgram } from './program.js';
import { invalid, unsupported } from '../src/errors.js';
import { broadcastShapes } from './binary.js';
import { chooseDot, dotSplitK } from './pointwise.js';
import {
  bindings, cacheKey, coords, f32, flatDispatch, hasInput, inShape, intAttr, nodeEpilogue, numAttr, offset, outShape,
  sameShape, size, u32, where,
} from './shader.js';

export function gemm(args: KernelArgs): KernelProgram {
  const w = where(args);
  const op = args.node.op;
  if (op === 'MatMul') return matmul(args);
  if (op !== 'Gemm') throw unsupported(w, `no matrix kernel for '${op}'`);
  const at = args.node.attrs;
  const a = inShape(args, 0, 'A', 2), b = inShape(args, 1, 'B', 2);
  const transA = intAttr(at, 'transA', 0, w), transB = intAttr(at, 'transB', 0, w);
  const alpha = numAttr(at, 'alpha', 1, w), beta = numAttr(at, 'beta', 1, w);
  const [M, K] = transA ? [a[1], a[0]] : a;
  const [K2, N] = transB ? [b[1], b[0]] : b;
  if (K !== K2) throw invalid(w, `inner dimensions differ: A [${a.join(',')}]${transA ? 'ᵀ' : ''}, B [${b.join(',')}]${transB ? 'ᵀ' : ''}`);
  const o = outShape(args);
  if (!sameShape(o, [M, N])) throw invalid(w, `output [${o.join(',')}] is not [${M},${N}]`);
  const hasC = hasInput(args, 2) && beta !== 0;
  const c = hasC ? inShape(args, 2, 'C') : [];
  if (hasC) {
    const bc = broadcastShapes(c, [M, N]);
    if (!bc || !sameShape(bc, [M, N])) throw invalid(w, `C [${c.join(',')}] does not broadcast to [${M},${N}]`);
  }
  const act = nodeEpilogue(at, w);
  // Classifier heads (x [M,K] times a [N,K] weight, bias [N]) are a pointwise layer with one position: the
  // split-K kernel spreads the long dot products over the GPU instead of one serial loop per output.
  const biasRow = hasC && (sameShape(c, [N]) || sameShape(c, [1, N]));
  if (!transA && transB && alpha === 1 && (!hasC || (beta === 1 && biasRow))) {
    const dot = { N: M, C: K, F: N, P: 1, hasBias: hasC, hasRes: false, act };
    const ch = chooseDot(dot, args.limits);
    if (ch.kind === 'splitK') return dotSplitK(dot, ch.ks, hasC ? ['x', 'w', 'b'] : ['x', 'w'], hasC ? [0, 1, 2] : [0, 1], args.limits, w, 'Gemm', 'gemm', ch.nb);
  }
  const total = M * N;
  const d = flatDispatch(total, args.limits, w);
  const aIdx = transA ? `k * ${u32(M)} + m` : `m * ${u32(K)} + k`;
  const bIdx = transB ? `n * ${u32(K)} + k` : `k * ${u32(N)} + n`;
  const cOff = hasC ? offset(c.map((_, k) => (k + 2 - c.length === 0 ? 'm' : 'n')), c) : '';
  const wgsl = `
${bindings(hasC ? ['A', 'B', 'Cm'] : ['A', 'B'])}
${act.fn}

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  let m = i / ${u32(N)};
  let n = i % ${u32(N)};
  var s = 0.0;
  for (var k = 0u; k < ${u32(K)}; k++) { s += A[${aIdx}] * B[${bIdx}]; }
  var v = ${alpha === 1 ? 's' : `${f32(alpha, w)} * s`};
  ${hasC ? `v += ${beta === 1 ? '' : `${f32(beta, w)} * `}Cm[${cOff}];` : ''}
  out[i] = act(v);
}
`;
  return {
    name: 'Gemm',
    cacheKey: cacheKey('gemm', a, b, c, transA, transB, alpha, beta, hasC, act.key, d.key),
    wgsl,
    workgroupSize: d.workgroupSize,
    dispatch: d.dispatch,
    inputs: hasC ? [0, 1, 2] : [0, 1],
    outputs: 1,
    workgroupStorageBytes: 0,
  };
}

function matmul(args: KernelArgs): KernelProgram {
  const w = where(args);
  const a0 = inShape(args, 0, 'A'), b0 = inShape(args, 1, 'B');
  if (a0.length === 0 || b0.length === 0) throw invalid(w, 'MatMul operands must have rank >= 1');
  const a = a0.length === 1 ? [1, a0[0]] : a0;
  const b = b0.length === 1 ? [b0[0], 1] : b0;
  const M = a[a.length - 2], K = a[a.length - 1], K2 = b[b.length - 2], N = b[b.length - 1];
  if (K !== K2) throw invalid(w, `inner dimensions differ: A [${a0.join(',')}], B [${b0.join(',')}]`);
  const batch = broadcastShapes(a.slice(0, -2), b.slice(0, -2));
  if (!batch) throw invalid(w, `batch dimensions of [${a0.join(',')}] and [${b0.join(',')}] do not broadcast`);
  const full = [...batch, M, N];
  const expected = [...batch, ...(a0.length === 1 ? [] : [M]), ...(b0.length === 1 ? [] : [N])];
  const o = outShape(args);
  if (!sameShape(o, expected)) throw invalid(w, `output [${o.join(',')}] does not match the computed [${expected.join(',')}]`);
  const act = nodeEpilogue(args.node.attrs, w);
  const total = size(full);
  const d = flatDispatch(total, args.limits, w);
  const r = full.length;
  // Offsets of the batch part of each operand (right-aligned, broadcast dims dropped).
  const batchOff = (s: number[]) => {
    const bs = s.slice(0, -2);
    const lead = batch.length - bs.length;
    const st = bs.map((_, k) => bs.slice(k + 1).reduce((p, q) => p * q, 1) * s[s.length - 2] * s[s.length - 1]);
    const terms = bs.map((dim, k) => (dim === 1 ? '' : `o${k + lead} * ${u32(st[k])}`)).filter((t) => t);
    return terms.length ? terms.join(' + ') : '0u';
  };
  const wgsl = `
${bindings(['A', 'B'])}
${act.fn}

@compute @workgroup_size(${d.workgroupSize[0]})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${d.guard}
  ${coords('i', full, 'o')}
  let m = o${r - 2};
  let n = o${r - 1};
  let ab = ${batchOff(a)};
  let bb = ${batchOff(b)};
  var s = 0.0;
  for (var k = 0u; k < ${u32(K)}; k++) { s += A[ab + m * ${u32(K)} + k] * B[bb + k * ${u32(N)} + n]; }
  out[i] = act(s);
}
`;
  return {
    name: 'MatMul',
    cacheKey: cacheKey('matmul', a0, b0, act.key, d.key),
    wgsl,
    workgroupSize: d.workgroupSize,
    dispatch: d.dispatch,
    inputs: [0, 1],
    outputs: 1,
    workgroupStorageBytes: 0,
  };
}
