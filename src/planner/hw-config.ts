// A GPU description, as the planner reads it (parsed from hw_configs/*.cfg or *.json, or derived from the
// WebGPU adapter). The FusePlanner reference's keys are required; the others refine the cost model when present.
export interface HwConfig {
  name: string;
  /** FusePlanner keys (`SMs`, `L1`, `shmem`, `warp_size`): L1 and shared memory are per SM, in bytes here. */
  sms: number;
  l1BytesPerSm: number;
  shmemBytesPerSm: number;
  warpSize: number;
  /** Optional refinements. */
  l2Bytes?: number;
  dramGBps?: number;
  fp32Gflops?: number;
  dispatchOverheadUs?: number;
  /** Output elements at which the layer kernels reach fp32Gflops; fewer reach sqrt(outputs / this) of it (FCMs keep it). */
  parallelOutputs?: number;
  /**
   * How much slower than the roofline of its GMA and flops each FCM kernel runs, relative to the layer kernels the
   * roofline is calibrated to (default 1): the time model multiplies an FCM's roofline term by it.
   */
  pwdwTimeFactor?: number;
  dwpwTimeFactor?: number;
  pwpwTimeFactor?: number;
  /** The least time of a module's kernels beyond the dispatch term, in us (launch, first loads, last stores). */
  kernelFloorUs?: number;
  /**
   * Nanoseconds per input channel of a PW-DW or DW-PW module: their threads walk every input channel of the pair
   * alone, where the layer kernels split K, so such a module takes at least its depth times this.
   */
  fcmChannelNs?: number;
  /** The integer FCM kernels' factor on top of their kind's (default 1): planning with 1-byte elements multiplies by it. */
  int8TimeFactor?: number;
  /**
   * The most intermediate positions (the depthwise receptive field of the output tile) one PW-DW workgroup
   * computes: the executor's FCM halves larger tiles (kernels/fused-pwdw.ts, 2 positions per thread of 256), so
   * the planner's tiles are searched below it and their redundancy is the kernel's.
   */
  pwdwMaxHalo?: number;
  /** WebGPU's maxComputeWorkgroupStorageSize on this device: tiles for the executor fit min(shmem, this). */
  workgroupStorageBytes?: number;
}
