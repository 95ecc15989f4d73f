// Which kernel runs a node: op (and, for Conv, its geometry) -> the kernel file's program(s). Reshape-like
// ops move no data: the runtime aliases their output to their input's buffer ('alias').
// Everything the executor cannot run is refused here, per node, before any GPU work.

import type { Node } from '../src/graph/ir.js';
import { fcmDomain } from '../src/graph/ir.js';
import { unsupported } from '../src/errors.js';
import type { KernelArgs, KernelLimits, KernelProgram } from './program.js';
import { where } from './shader.js';
import { convGeom, isDepthwise, isPointwise } from './conv-common.js';
import { conv2d } from './conv2d.js';
import { depthwise } from './depthwise.js';
import { pointwise } from './pointwise.js';
import { binary } from './binary.js';
import { unary, unaryOps } from './unary.js';
import { reduceMean } from './reduce.js';
import { pool } from './pool.js';
import { gemm } from './gemm.js';
import { concat } from './concat.js';
import { split } from './split.js';
import { slice } from './slice.js';
import { transpose } from './transpose.js';
import { pad } from './pad.js';
import { softmax } from './softmax.js';
import { batchNorm } from './batchnorm.js';
import { fusedPwDw } from './fused-pwdw.js';
import { fusedDwPw } from './fused-dwpw.js';
import { fusedPwPw } from './fused-pwpw.js';

/** Ops whose output is the input's data under another shape: no kernel, the buffer is shared. */
export const aliasOps: ReadonlySet<string> = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Dropout']);

export type NodeKernel = { kind: 'alias' } | { kind: 'programs'; programs: KernelProgram[] };

type Kernel = (args: KernelArgs) => KernelProgram | KernelProgram[];

const byOp: Record<string, Kernel> = {
  Conv: (args) => {
    const g = convGeom(args);
    return isPointwise(g) ? pointwise(args, g) : isDepthwise(g) ? depthwise(args, g) : conv2d(args, g);
  },
  Add: binary, Sub: binary, Mul: binary, Div: binary, PRelu: binary,
  GlobalAveragePool: reduceMean, ReduceMean: reduceMean,
  MaxPool: pool, AveragePool: pool,
  Gemm: gemm, MatMul: gemm,
  Concat: concat, Split: split, Slice: slice, Transpose: transpose, Pad: pad, Softmax: softmax,
  BatchNormalization: batchNorm,
  ...Object.fromEntries(unaryOps.map((op) => [op, unary])),
};

const fused: Record<string, typeof fusedPwDw> = { FusedPwDw: fusedPwDw, FusedDwPw: fusedDwPw, FusedPwPw: fusedPwPw };

/** The op name an unsupported-op report lists: the domain is shown for non-default domains. */
export const opLabel = (n: Pick<Node, 'op' | 'domain'>) => (n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.op}` : n.op);

/**
 * The kernel of one node. `inputShapes[i]` is the shape of node.inputs[i] (undefined for ''), `outputShapes[i]`
 * of node.outputs[i]. Throws FcmError unsupported when no kernel can run it.
 */
export function kernelFor(node: Node, inputShapes: (number[] | undefined)[], outputShapes: number[][], limits: KernelLimits): NodeKernel {
  const w = where({ node, inputShapes, outputShapes, limits });
  if (node.domain === fcmDomain) {
    const k = fused[node.op];
    if (!k) throw unsupported(w, `no kernel for fused op '${node.op}'`);
    return { kind: 'programs', programs: [k({ node, inputShapes, outputShapes, limits })] };
  }
  if (node.domain !== '' && node.domain !== 'ai.onnx') throw unsupported(w, `no kernel for op '${opLabel(node)}'`);
  if (aliasOps.has(node.op)) {
    if (node.outputs.slice(1).some((y) => y)) throw unsupported(w, `${node.op} with a second output (mask) is not supported`);
    return { kind: 'alias' };
  }
  const k = byOp[node.op];
  if (!k) throw unsupported(w, `no kernel for op '${node.op}'`);
  if (node.op !== 'Split' && node.outputs.slice(1).some((y) => y)) throw unsupported(w, `${node.op} with more than one output is not supported`);
  const p = k({ node, inputShapes, outputShapes, limits });
  return { kind: 'programs', programs: Array.isArray(p) ? p : [p] };
}
