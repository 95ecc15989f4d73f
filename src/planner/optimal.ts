// fcm-opt's own planner ('optimal' mode): legal candidate FCMs from the DAG's edges (candidates.ts), costs
// with each layer's real geometry (cost.ts), and the set of disjoint modules that saves the most, chosen
// exactly (a maximum-weight matching on the candidate graph, which is a forest: see selectDisjointPairs).

import type { Dag, DagLayer } from './dag.js';
import type { HwConfig } from './hw-config.js';
import type { Plan, PlanModule } from './plan.js';
import { findCandidates, isConvLayer, type Candidate } from './candidates.js';
import { convSpec, costFcm, costLayer, hasTimeModel, layerFlops, type ConvSpec, type CostContext, type ModuleCost } from './cost.js';
import { invalid } from '../errors.js';

export interface PlanOptimalOptions {
  /** Name recorded in the plan and used in error messages (the model or DAG file). */
  model?: string;
  /** Bytes per element: 4 fp32, 2 fp16, 1 int8. Default: 1 when the DAG carries quantization scales, else 4. */
  dtypeBytes?: number;
  /** Bytes per element of a tile in workgroup memory (default dtypeBytes): the fp16 kernels stage their tiles in f32. */
  tileBytes?: number;
  /** 'auto' (default): time when the description has dramGBps, fp32Gflops and dispatchOverheadUs, else GMA. */
  objective?: 'auto' | 'gma' | 'time';
  /** Images per inference: time estimates scale bytes, flops and workgroups by it (CostContext.batch). */
  batch?: number;
  /** Pairs left unfused, as `${first}:${second}` DAG layer ids (e.g. measured slower fused by --tune). */
  exclude?: ReadonlySet<string>;
}

export const pairKey = (first: number, second: number) => `${first}:${second}`;

/**
 * GMA mode only: a fusion is refused when it recomputes more flops than its two layers need (more than
 * doubles the work). The FusePlanner reference's rule (builder.py to_fuse_or_not_to: redundant_comp / avoided < 10, with
 * redundant_comp a fraction of the work) never refuses anything at real sizes; with no throughput in the
 * description this bound keeps PW-PW and DW-PW modules with many filter tiles from trading accesses for
 * unbounded recomputation. The time objective needs no such rule: recomputed flops are in the roofline.
 */
export const maxRedundantFraction = 1;

/** A legal candidate with its fused cost and the saving that makes it worth fusing (> 0). */
export interface ScoredCandidate extends Candidate {
  cost: ModuleCost;
  /** GMA (elements) or time (us) saved against the two layers run LBL, by the objective. */
  saving: number;
}

export interface Evaluation {
  ctx: CostContext;
  /** LBL cost of every conv layer by id. */
  lone: Map<number, ModuleCost>;
  /** Candidates worth fusing (saving > 0, recomputation accepted). */
  candidates: ScoredCandidate[];
}

const where = (opts: PlanOptimalOptions) => opts.model ?? 'model';

/** Costs every conv layer LBL and every legal candidate fused. */
export function evaluateDag(dag: Dag, hw: HwConfig, opts: PlanOptimalOptions = {}): Evaluation {
  const file = where(opts);
  const dtypeBytes = opts.dtypeBytes ?? (dag.some((l) => typeof l.ifms_scales === 'number') ? 1 : 4);
  if (!(dtypeBytes > 0)) throw invalid(file, `data width ${dtypeBytes} bytes is not positive`);
  const objective = opts.objective === 'gma' || opts.objective === 'time' ? opts.objective : hasTimeModel(hw) ? 'time' : 'gma';
  if (objective === 'time' && !hasTimeModel(hw)) {
    throw invalid(hw.name, 'the time objective needs dramGBps, fp32Gflops and dispatchOverheadUs in the hardware description');
  }
  if (opts.batch !== undefined && !(Number.isSafeInteger(opts.batch) && opts.batch >= 1)) throw invalid(file, `batch ${opts.batch} is not a whole number >= 1`);
  if (opts.tileBytes !== undefined && !(opts.tileBytes > 0)) throw invalid(file, `tile element width ${opts.tileBytes} bytes is not positive`);
  const ctx: CostContext = { hw, dtypeBytes, tileBytes: opts.tileBytes, objective, batch: opts.batch };
  const specs = new Map<number, ConvSpec>();
  const lone = new Map<number, ModuleCost>();
  for (const l of dag) {
    if (!isConvLayer(l)) continue;
    const s = convSpec(l, file);
    specs.set(l.id, s);
    lone.set(l.id, costLayer(s, ctx, file));
  }
  const candidates: ScoredCandidate[] = [];
  for (const c of findCandidates(dag)) {
    if (opts.exclude?.has(pairKey(c.first, c.second))) continue;
    const first = specs.get(c.first)!;
    // A Pad between PW and DW is folded: the DW reads the PW's output with the Pad's padding added.
    const second = c.extraPads
      ? convSpec(dag[c.second], file, c.extraPads, [first.h.out, first.w.out])
      : specs.get(c.second)!;
    const cost = costFcm(c.kind, first, second, ctx);
    if (!cost) continue;
    const a = lone.get(c.first)!;
    const b = lone.get(c.second)!;
    const avoided = a.gma + b.gma - cost.gma;
    let saving: number;
    if (objective === 'time') {
      saving = a.timeUs! + b.timeUs! - cost.timeUs!;
    } else {
      saving = avoided;
      if (cost.redundantFlops > maxRedundantFraction * (layerFlops(first) + layerFlops(second))) continue;
    }
    if (saving > 0) candidates.push({ ...c, cost, saving });
  }
  return { ctx, lone, candidates };
}

/** Plans the DAG: every conv layer in exactly one module, fused pairs chosen to save the most. */
export function planOptimal(dag: Dag, hw: HwConfig, opts: PlanOptimalOptions = {}): Plan {
  const ev = evaluateDag(dag, hw, opts);
  const chosen = selectDisjointPairs(ev.candidates.map((c) => ({ first: c.first, second: c.second, weight: c.saving })))
    .map((i) => ev.candidates[i]);
  const byFirst = new Map(chosen.map((c) => [c.first, c]));
  const seconds = new Set(chosen.map((c) => c.second));
  const timed = ev.ctx.objective === 'time';
  const modules: PlanModule[] = [];
  for (const l of dag) {
    if (!isConvLayer(l) || seconds.has(l.id)) continue;
    const c = byFirst.get(l.id);
    if (c) {
      const a = ev.lone.get(c.first)!;
      const b = ev.lone.get(c.second)!;
      const m: PlanModule = {
        kind: c.kind,
        layers: [c.first, c.second],
        tiles: c.cost.tiles,
        gma: c.cost.gma,
        gmaUnfused: a.gma + b.gma,
      };
      const nodes = nodeNames(dag, [c.first, ...c.between, c.second, ...c.epilogue]);
      if (nodes) m.nodes = nodes;
      if (timed) {
        m.timeUs = c.cost.timeUs;
        m.timeUsUnfused = a.timeUs! + b.timeUs!;
      }
      modules.push(m);
    } else {
      const a = ev.lone.get(l.id)!;
      const m: PlanModule = { kind: a.kind, layers: [l.id], tiles: a.tiles, gma: a.gma, gmaUnfused: a.gma };
      const nodes = nodeNames(dag, [l.id]);
      if (nodes) m.nodes = nodes;
      if (timed) {
        m.timeUs = a.timeUs;
        m.timeUsUnfused = a.timeUs;
      }
      modules.push(m);
    }
  }
  const gma = modules.reduce((s, m) => s + m.gma, 0);
  const gmaUnfused = modules.reduce((s, m) => s + m.gmaUnfused, 0);
  const totals: Plan['totals'] = {
    gma,
    gmaUnfused,
    saved: gmaUnfused - gma,
    savedPercent: gmaUnfused > 0 ? (100 * (gmaUnfused - gma)) / gmaUnfused : 0,
  };
  if (timed) {
    totals.timeUs = modules.reduce((s, m) => s + m.timeUs!, 0);
    totals.timeUsUnfused = modules.reduce((s, m) => s + m.timeUsUnfused!, 0);
  }
  return { model: where(opts), hw: hw.name, mode: 'optimal', modules, totals };
}

/** IR node names of the layers (DAGs written from an IR graph carry them), or undefined when any lacks them. */
function nodeNames(dag: Dag, ids: number[]): string[] | undefined {
  const names: string[] = [];
  for (const id of ids) {
    const l: DagLayer = dag[id];
    if (!Array.isArray(l.nodes) || !l.nodes.every((n) => typeof n === 'string')) return undefined;
    names.push(...l.nodes);
  }
  return names;
}

// ---------------------------------------------------------------------------------------------------------
// Optimal choice

export interface WeightedPair {
  first: number;
  second: number;
  weight: number;
}

/**
 * The set of pairwise disjoint pairs (no layer in two) of maximum total weight: indices into `pairs`.
 *
 * Why a tree DP is exact here: every candidate pair (a, b) has b as the sole consumer of a's output chain,
 * so each layer is the first of at most one pair (out-degree <= 1 in the directed candidate graph), and
 * pairs follow DAG edges, so the candidate graph has no directed cycle. A directed graph with out-degree
 * <= 1 and no directed cycle is a forest of in-trees (each vertex points to its parent), and a maximum-
 * weight matching on a forest is a linear-time DP. (Each layer is also the second of at most one pair when
 * convs have one data input, so in practice the trees are paths: chains of alternating DW/PW layers.)
 * When the given pairs are not such a forest (another caller's candidates), an exact branch-and-bound
 * search is used instead.
 */
export function selectDisjointPairs(pairs: readonly WeightedPair[]): number[] {
  const live = pairs.map((p, i) => ({ ...p, i })).filter((p) => p.weight > 0 && p.first !== p.second);
  const out = new Map<number, (typeof live)[number]>();
  let forest = true;
  for (const p of live) {
    if (out.has(p.first)) forest = false;
    out.set(p.first, p);
  }
  if (forest && hasDirectedCycle(out)) forest = false;
  return forest ? treeMatching(live, out) : exactMatching(live);
}

function hasDirectedCycle(out: Map<number, WeightedPair>): boolean {
  const state = new Map<number, number>(); // 1: on the current walk, 2: done
  for (const start of out.keys()) {
    const walk: number[] = [];
    let v: number | undefined = start;
    while (v !== undefined && !state.has(v)) {
      state.set(v, 1);
      walk.push(v);
      v = out.get(v)?.second;
    }
    if (v !== undefined && state.get(v) === 1) return true;
    for (const w of walk) state.set(w, 2);
  }
  return false;
}

/** Maximum-weight matching on an in-forest (edges child -> parent, one out-edge per vertex at most). */
function treeMatching(live: { first: number; second: number; weight: number; i: number }[], out: Map<number, { second: number; weight: number; i: number }>): number[] {
  const children = new Map<number, number[]>();
  const vertices = new Set<number>();
  for (const p of live) {
    vertices.add(p.first);
    vertices.add(p.second);
    (children.get(p.second) ?? children.set(p.second, []).get(p.second)!).push(p.first);
  }
  const roots = [...vertices].filter((v) => !out.has(v)).sort((a, b) => a - b);
  // Post-order without recursion (chains can be long).
  const order: number[] = [];
  const stack = [...roots];
  while (stack.length > 0) {
    const v = stack.pop()!;
    order.push(v);
    for (const c of children.get(v) ?? []) stack.push(c);
  }
  order.reverse();
  const free = new Map<number, number>(); // best of v's subtree with v unmatched below
  const best = new Map<number, number>();
  const pick = new Map<number, number>(); // the child v is matched with in `best`, or -1
  for (const v of order) {
    const cs = (children.get(v) ?? []).slice().sort((a, b) => a - b);
    const f = cs.reduce((s, c) => s + best.get(c)!, 0);
    let b = f;
    let chosen = -1;
    for (const c of cs) {
      const withC = f - best.get(c)! + free.get(c)! + out.get(c)!.weight;
      if (withC > b) {
        b = withC;
        chosen = c;
      }
    }
    free.set(v, f);
    best.set(v, b);
    pick.set(v, chosen);
  }
  const result: number[] = [];
  const todo: [number, boolean][] = roots.map((r) => [r, true]);
  while (todo.length > 0) {
    const [v, mayMatch] = todo.pop()!;
    const chosen = mayMatch ? pick.get(v)! : -1;
    for (const c of children.get(v) ?? []) {
      if (c === chosen) {
        result.push(out.get(c)!.i);
        todo.push([c, false]);
      } else {
        todo.push([c, true]);
      }
    }
  }
  return result.sort((a, b) => a - b);
}

/** Exact maximum-weight set of disjoint pairs by branch and bound (any pair graph). */
function exactMatching(live: { first: number; second: number; weight: number; i: number }[]): number[] {
  const sorted = live.slice().sort((a, b) => b.weight - a.weight || a.i - b.i);
  const suffix = new Array<number>(sorted.length + 1).fill(0);
  for (let k = sorted.length - 1; k >= 0; k--) suffix[k] = suffix[k + 1] + sorted[k].weight;
  let bestWeight = 0;
  let bestSet: number[] = [];
  const used = new Set<number>();
  const current: number[] = [];
  const visit = (k: number, weight: number) => {
    if (weight > bestWeight) {
      bestWeight = weight;
      bestSet = current.slice();
    }
    if (k === sorted.length || weight + suffix[k] <= bestWeight) return;
    const p = sorted[k];
    if (!used.has(p.first) && !used.has(p.second)) {
      used.add(p.first);
      used.add(p.second);
      current.push(p.i);
      visit(k + 1, weight + p.weight);
      current.pop();
      used.delete(p.first);
      used.delete(p.second);
    }
    visit(k + 1, weight);
  };
  visit(0, 0);
  return bestSet.sort((a, b) => a - b);
}
