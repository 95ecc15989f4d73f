// Faithful mode as a Plan: the pairs the FusePlanner reference decides to fuse (all three kinds, decided independently, so
// a layer can sit in two pairs, as in the FusePlanner reference) plus every other conv layer as a lone module.
import type { Dag, DagLayer } from '../dag.js';
import type { HwConfig } from '../hw-config.js';
import type { ModuleKind, Plan, PlanModule, Tiles } from '../plan.js';
import { buildEstimates, fcmKinds, type FusePlannerEstimates } from './builder.js';
import type { SplittingAndFusionInfo } from './estimators.js';

const set = (v: number) => (v === -1 ? undefined : v);

/** Plan tiles from the FusePlanner reference's fields: h/w of the module's output tile, d = input channels per step. */
function tilesOf(info: SplittingAndFusionInfo, fused: boolean): Tiles {
  const tiles: Tiles = {
    l1Filters: set(info.l1_tile_filters),
    l2Filters: fused ? set(info.l2_tile_filters) : undefined,
    h: set(fused ? info.l2_tile_h : info.l1_tile_h),
    w: set(fused ? info.l2_tile_w : info.l1_tile_w),
    d: set(info.l1_tile_d),
  };
  for (const k of Object.keys(tiles) as (keyof Tiles)[]) if (tiles[k] === undefined) delete tiles[k];
  return tiles;
}

const nodesOf = (layers: DagLayer[]) => {
  const nodes = layers.flatMap((l) => (Array.isArray(l.nodes) ? l.nodes : []));
  return nodes.length > 0 ? nodes : undefined;
};

/** Layers the plan lists: every typed conv-like layer (the FusePlanner reference estimates only dw and pw). */
const isPlannedLayer = (l: DagLayer) => l.type === 's' || l.type === 'dw' || l.type === 'pw' || l.type === 'fc';

export function planFusePlanner(dag: Dag, hw: HwConfig, model: string): Plan {
  const estimates: FusePlannerEstimates = buildEstimates(dag, hw);
  const lbl = estimates.layer_by_layer;
  const lblGma = (id: number) => lbl[String(id)]?.total_dm ?? 0;
  const modules: PlanModule[] = [];
  const inPair = new Set<number>();
  for (const kind of fcmKinds) {
    const { candidates, fused } = estimates[kind];
    for (const [firstKey, second] of Object.entries(fused)) {
      const first = Number(firstKey);
      const info = candidates[firstKey];
      inPair.add(first).add(second);
      const mod: PlanModule = {
        kind,
        layers: [first, second],
        tiles: tilesOf(info, true),
        gma: info.total_dm,
        gmaUnfused: lblGma(first) + lblGma(second),
      };
      const nodes = nodesOf([dag[first], dag[second]]);
      if (nodes) mod.nodes = nodes;
      modules.push(mod);
    }
  }
  for (const layer of dag) {
    if (!isPlannedLayer(layer) || inPair.has(layer.id)) continue;
    const info = lbl[String(layer.id)];
    // Standard and FC layers: the FusePlanner reference makes no estimate; they count 0 in its totals.
    const gma = info ? info.total_dm : 0;
    const mod: PlanModule = { kind: layer.type as ModuleKind, layers: [layer.id], tiles: info ? tilesOf(info, false) : {}, gma, gmaUnfused: gma };
    const nodes = nodesOf([layer]);
    if (nodes) mod.nodes = nodes;
    modules.push(mod);
  }
  modules.sort((a, b) => a.layers[0] - b.layers[0] || a.layers.length - b.layers.length);

  // The model's conv GMA as the FusePlanner reference estimates it (LBL, DW and PW layers); savings are the FusePlanner reference's
  // `saved_dm` of each chosen pair, counted once per pair even where pairs overlap (the FusePlanner reference's claim).
  const gmaUnfused = Object.values(lbl).reduce((s, e) => s + (e ? e.total_dm : 0), 0);
  const saved = modules.reduce((s, m) => s + (m.layers.length === 2 ? m.gmaUnfused - m.gma : 0), 0);
  return {
    model,
    hw: hw.name,
    mode: 'fuseplanner',
    modules,
    totals: { gma: gmaUnfused - saved, gmaUnfused, saved, savedPercent: gmaUnfused > 0 ? (100 * saved) / gmaUnfused : 0 },
    estimates,
  };
}

/** Layer ids that appear in more than one chosen pair (possible only in faithful mode). */
export function overlappingLayers(plan: Plan): number[] {
  const count = new Map<number, number>();
  for (const m of plan.modules) if (m.layers.length > 1) for (const l of m.layers) count.set(l, (count.get(l) ?? 0) + 1);
  return [...count].filter(([, c]) => c > 1).map(([l]) => l).sort((a, b) => a - b);
}
