// FusePlanner's decision loop, ported from the FusePlanner reference's builder.py (build_cnn): LBL estimates of every conv
// layer, then for each FCM kind independently the estimate of fusing each layer with the *next conv layer in
// list order*, and the decision rule of to_fuse_or_not_to (paper Sec. 5): fuse when the avoided accesses
// are positive and redundant computation / avoided < 10. The result has exactly the structure of
// test/planner/fuseplanner-reference/estimates/*.json.
import type { Dag, DagLayer } from '../dag.js';
import type { HwConfig } from '../hw-config.js';
import {
  estimateDw, estimateDwPw, estimatePw, estimatePwDw, estimatePwPw, type SplittingAndFusionInfo,
} from './estimators.js';

/** builder.COMP_TO_DM_ACCEPTED_RATIO. */
export const COMP_TO_DM_ACCEPTED_RATIO = 10;

export type FcmKind = 'pwdw' | 'dwpw' | 'pwpw';
export const fcmKinds: readonly FcmKind[] = ['pwdw', 'dwpw', 'pwpw'];

export interface FcmEstimates {
  /** candidates[firstId]: the estimate for fusing firstId with the next conv layer (`fused_with`). */
  candidates: Record<string, SplittingAndFusionInfo>;
  /** fused[firstId] = secondId for the pairs the decision rule accepts. */
  fused: Record<string, number>;
}

export interface FusePlannerEstimates {
  /** The FusePlanner reference's hw dict as read from a .cfg: lower-case keys, string values, L1/shmem in KiB. */
  hw: { sms: string; l1: string; shmem: string; warp_size: string };
  /** LBL estimate per conv layer id; null where the FusePlanner reference makes none (standard convolutions). */
  layer_by_layer: Record<string, SplittingAndFusionInfo | null>;
  pwdw: FcmEstimates;
  dwpw: FcmEstimates;
  pwpw: FcmEstimates;
}

/** utils.is_conv_layer: the FusePlanner reference's conv layers (fully connected layers are not). */
export const isSeedConv = (l: DagLayer) => l.type === 's' || l.type === 'pw' || l.type === 'dw';

/** utils.get_conv_layer_index_from_offset(dag, i, 1): the next conv layer in list order, whatever the edges say. */
export function nextConvInListOrder(dag: Dag, index: number): number {
  for (let j = index + 1; j < dag.length; j++) if (isSeedConv(dag[j])) return j;
  return -1;
}

/** estimator_v2.estimate_dm for one layer; null for the layers the FusePlanner reference returns -1 for. */
function estimateLbl(layer: DagLayer, hw: HwConfig): SplittingAndFusionInfo | null {
  if (layer.type === 'pw') return estimatePw(layer, hw);
  if (layer.type === 'dw') return estimateDw(layer, hw);
  return null;
}

const pairOf: Record<FcmKind, { first: 'pw' | 'dw'; second: 'pw' | 'dw'; estimate: typeof estimatePwDw }> = {
  pwdw: { first: 'pw', second: 'dw', estimate: estimatePwDw },
  dwpw: { first: 'dw', second: 'pw', estimate: estimateDwPw },
  pwpw: { first: 'pw', second: 'pw', estimate: estimatePwPw },
};

/** builder.to_fuse_or_not_to: also records `saved_dm` on accepted candidates, as the FusePlanner reference does. */
function decide(lbl: Record<string, SplittingAndFusionInfo | null>, candidates: Record<string, SplittingAndFusionInfo>): Record<string, number> {
  const fused: Record<string, number> = {};
  for (const [first, info] of Object.entries(candidates)) {
    const second = info.fused_with;
    if (second === -1) continue;
    const avoided = (lbl[first]!.total_dm + lbl[String(second)]!.total_dm) - info.total_dm;
    // Python would raise ZeroDivisionError at avoided == 0; that case is rejected by `avoided > 0` anyway.
    const ratio = info.redundant_comp / avoided;
    if (avoided > 0 && ratio < COMP_TO_DM_ACCEPTED_RATIO) {
      fused[first] = second;
      info.saved_dm = avoided;
    }
  }
  return fused;
}

/** builder.build_cnn, returning the estimates instead of printing them. */
export function buildEstimates(dag: Dag, hw: HwConfig): FusePlannerEstimates {
  const kib = (bytes: number) => String(bytes / 1024);
  const layerByLayer: Record<string, SplittingAndFusionInfo | null> = {};
  for (let i = 0; i < dag.length; i++) if (isSeedConv(dag[i])) layerByLayer[String(i)] = estimateLbl(dag[i], hw);

  const estimates = {
    hw: { sms: String(hw.sms), l1: kib(hw.l1BytesPerSm), shmem: kib(hw.shmemBytesPerSm), warp_size: String(hw.warpSize) },
    layer_by_layer: layerByLayer,
  } as FusePlannerEstimates;
  for (const kind of fcmKinds) {
    const { first, second, estimate } = pairOf[kind];
    const candidates: Record<string, SplittingAndFusionInfo> = {};
    for (let i = 0; i < dag.length; i++) {
      if (dag[i].type !== first) continue;
      const next = nextConvInListOrder(dag, i);
      if (next !== -1 && dag[next].type === second) candidates[String(i)] = estimate(dag[i], dag[next], hw);
    }
    estimates[kind] = { candidates, fused: decide(layerByLayer, candidates) };
  }
  return estimates;
}
