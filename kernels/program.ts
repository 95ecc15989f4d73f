// The contract between kernel files and the runtime: what a kernel builder receives (KernelArgs: the node with its
// attributes and the planner's tiles, the shapes of its tensors, the device limits) and what it returns (a pure
// description of one compute program). The runtime compiles a program (cached by `cacheKey`), binds buffers and
// dispatches it. Kernel files never touch the device.

import type { Node } from '../src/graph/ir.js';

/** The device limits a kernel needs (a subset of GPUSupportedLimits). */
export interface KernelLimits {
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX?: number;
  maxComputeWorkgroupsPerDimension?: number;
}

/** WebGPU's guaranteed minimums: what a kernel may assume when the caller has no device (tests, planning). */
export const defaultLimits: Required<KernelLimits> = {
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupsPerDimension: 65535,
};

/** The node as a kernel sees it: attributes carry the op's parameters, the fused activations and the FCM tiles. */
export type KernelNode = Pick<Node, 'name' | 'op' | 'inputs' | 'attrs'>;

/**
 * What every kernel builder takes: the node, the shape of each of node.inputs (undefined for ''), the shape of each
 * of node.outputs, and the device limits. The integer kernels take the same node and limits with the IR tensors
 * themselves (kernels/int8/common.ts Int8KernelArgs; `shapeArgs` gives this view of them).
 */
export interface KernelArgs {
  node: KernelNode;
  inputShapes: readonly (readonly number[] | undefined)[];
  outputShapes: readonly (readonly number[])[];
  limits: KernelLimits;
}

export interface KernelProgram {
  /** Human name for profiles and errors, e.g. 'FusedPwDw' or 'Conv(dw 3x3 s2)'. */
  name: string;
  /** Everything baked into the WGSL (op, shapes, tiles, epilogue, workgroup size): equal keys, equal WGSL. */
  cacheKey: string;
  wgsl: string;
  /** Entry point is always `main`. */
  workgroupSize: [number, number, number];
  /** Number of workgroups in x, y, z (each within the device's maxComputeWorkgroupsPerDimension). */
  dispatch: [number, number, number];
  /**
   * Bindings in group 0, in order: the node's tensor inputs that are used (`inputs` lists their indices in
   * node.inputs), then the outputs. Every parameter is a WGSL constant: programs take no uniforms.
   */
  inputs: number[];
  outputs: number;
  /** Which of node.outputs the output bindings are, in order; absent: the first `outputs` of them. */
  outputIndices?: number[];
  /** Bytes of workgroup memory the program declares (checked against the device's limit before compiling). */
  workgroupStorageBytes: number;
}
