// What a kernel file returns: a pure description of one compute program. The runtime compiles it (cached by
// `cacheKey`), binds buffers and dispatches it. Kernel files never touch the device.

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
   * node.inputs), then the outputs, then a uniform buffer at the last binding when `uniforms` is non-empty.
   */
  inputs: number[];
  outputs: number;
  /** Which of node.outputs the output bindings are, in order; absent: the first `outputs` of them. */
  outputIndices?: number[];
  uniforms: Uniform[];
  /** Bytes of workgroup memory the program declares (checked against the device's limit before compiling). */
  workgroupStorageBytes: number;
}

export interface Uniform {
  name: string;
  type: 'u32' | 'i32' | 'f32';
  value: number;
}
