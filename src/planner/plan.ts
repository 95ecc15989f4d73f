// A fusion plan is data: modules (a fused pair or a lone layer) with tiles and costs. It can be printed,
// saved as JSON, loaded and compared. Layers are DAG ids; `nodes` are the IR node names (ONNX/TFLite DAGs)
// so that src/rewrite can apply a plan to a graph without planning again.

export type ModuleKind = 'pwdw' | 'dwpw' | 'pwpw' | 'dw' | 'pw' | 's' | 'fc';

export interface Tiles {
  /** Filters (output channels) per tile of the first layer / of the second layer. */
  l1Filters?: number;
  l2Filters?: number;
  /** Spatial tile of the module's output (height, width) and depth (input channels per step). */
  h?: number;
  w?: number;
  d?: number;
}

export interface PlanModule {
  kind: ModuleKind;
  layers: number[];
  nodes?: string[];
  tiles: Tiles;
  /** Estimated global memory accesses (elements) of this module, fused, and of its layers run LBL. */
  gma: number;
  gmaUnfused: number;
  /** Estimated time in microseconds when the hardware description gives bandwidth and throughput. */
  timeUs?: number;
  timeUsUnfused?: number;
  /** --tune: measured GPU time (us) of the fused module with these tiles and of its layers run LBL. */
  tuned?: { fusedUs: number; lblUs: number; variant: string };
}

/**
 * The kernel variant of one pointwise layer (a key of kernels/registry.ts pointwiseVariants: 'smx:SG2x2T1x1BK32P',
 * 'gemm:TX8TY8RF4KS1', 'vec4:RF8T64', 'splitK:KS4'), chosen by --tune; `tuned`: the GPU times (us) it measured for
 * this variant and for the rule's (`rule`).
 */
export interface PlanKernel { variant: string; tuned?: { us: number; ruleUs: number; rule: string } }

export interface Plan {
  model: string;
  hw: string;
  mode: 'fuseplanner' | 'optimal';
  modules: PlanModule[];
  totals: { gma: number; gmaUnfused: number; saved: number; savedPercent: number; timeUs?: number; timeUsUnfused?: number };
  /**
   * Kernel choices by IR node name (pointwise Convs left unfused; float executor): each node runs that variant where the
   * device and shape allow it, else the rule's (a one-line note). Absent: the rules choose every kernel.
   */
  kernels?: Record<string, PlanKernel>;
  /** fuseplanner mode: the estimates, exactly in the structure of the reference files. */
  estimates?: unknown;
}
