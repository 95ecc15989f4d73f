// --tune (issue 8): the planner's choice checked on the device. The cost model ranks FCMs well but cannot see
// everything the GPU does (dispatch overhead, occupancy, the kernels' own tile splitting), so each fused module of
// the plan is timed on the device with a few tile variants and against its two layers run LBL:
//   1. the LBL time of every layer from one unfused session's profile (timestamp queries, median of `profiles`);
//   2. for each tile variant, one session of the plan with every fused module's tiles changed alike, profiled;
//      each module keeps its fastest variant;
//   3. a module slower than its LBL pair with every variant is excluded (planFusion's `exclude`) and the DAG is
//      planned again; new pairs that re-planning brings are measured in the next round (at most `rounds`).
// The result is a Plan (data, as any other) whose fused modules carry `tuned` figures; it prints, saves and
// loads like the planner's own.

import type { Graph } from '../graph/ir.js';
import type { HwConfig } from '../planner/hw-config.js';
import type { Plan, PlanModule, Tiles } from '../planner/plan.js';
import { planFusion } from '../planner/index.js';
import { pairKey } from '../planner/optimal.js';
import { toDag } from '../../converters/dag.js';
import { joinLayers } from '../bench/bench.js';
import { normalizeProfile, type ProfileEntry } from '../bench/runtime.js';
import { median } from '../bench/stats.js';
import { type Session, createSession } from './session.js';
import { batchOf } from '../graph/util.js';

export interface TileVariant { name: string; apply(t: Tiles): Tiles }

const scale = (v: number | undefined, f: number) => (v === undefined ? undefined : Math.max(1, Math.round(v * f)));

export const tileVariants: readonly TileVariant[] = [
  { name: 'planner', apply: (t) => ({ ...t }) },
  { name: 'filters/2', apply: (t) => ({ ...t, l1Filters: scale(t.l1Filters, 0.5), l2Filters: scale(t.l2Filters, 0.5), d: scale(t.d, 0.5) }) },
  { name: 'filters*2', apply: (t) => ({ ...t, l1Filters: scale(t.l1Filters, 2), l2Filters: scale(t.l2Filters, 2), d: scale(t.d, 2) }) },
  { name: 'spatial/2', apply: (t) => ({ ...t, h: scale(t.h, 0.5), w: scale(t.w, 0.5) }) },
  { name: 'spatial*2', apply: (t) => ({ ...t, h: scale(t.h, 2), w: scale(t.w, 2) }) },
];

export interface TuneOptions {
  /** Profiled runs per session; the median of each node's time is taken (default 7). */
  profiles?: number;
  /** Planning rounds (default 3). */
  rounds?: number;
  variants?: readonly TileVariant[];
  /** Name recorded in the plan (default the graph's source). */
  model?: string;
  /** How a session's per-node GPU times are taken (default: median of `profiles` timestamped runs); tests inject. */
  measure?: (s: Session, feeds: Record<string, Float32Array>) => Promise<ProfileEntry[]>;
  /** Called with a line of progress. */
  log?: (line: string) => void;
}

export interface TuneRow { module: string; kind: string; lblUs: number; fusedUs: Record<string, number>; kept: boolean; variant?: string }
export interface TuneResult { plan: Plan; rows: TuneRow[]; excluded: string[] }

const isFused = (m: PlanModule) => m.kind === 'pwdw' || m.kind === 'dwpw' || m.kind === 'pwpw';

async function medianProfile(s: Session, feeds: Record<string, Float32Array>, n: number): Promise<ProfileEntry[]> {
  // Back-to-back runs first: a GPU that idled (compiling pipelines) runs at lower clocks.
  for (let i = 0; i < 20; i++) await s.run(feeds);
  const samples = new Map<string, { op?: string; ms: number[] }>();
  for (let i = 0; i < n; i++) {
    for (const e of normalizeProfile(await s.profile(feeds))) {
      const r = samples.get(e.node) ?? { op: e.op, ms: [] };
      r.ms.push(e.gpuMs);
      samples.set(e.node, r);
    }
  }
  return [...samples].map(([node, r]) => ({ node, op: r.op, gpuMs: median(r.ms) }));
}

function withTiles(plan: Plan, tiles: (m: PlanModule, i: number) => Tiles): Plan {
  return { ...plan, modules: plan.modules.map((m, i) => (isFused(m) ? { ...m, tiles: tiles(m, i) } : m)) };
}

/** Tunes the optimal plan of `g` for `hw` on this machine's GPU. `g` as createSession takes it (float graph). */
export async function tunePlan(g: Graph, hw: HwConfig, options: TuneOptions = {}): Promise<TuneResult> {
  const profiles = options.profiles ?? 7, rounds = options.rounds ?? 3, variants = options.variants ?? tileVariants;
  const log = options.log ?? (() => undefined);
  const measure = options.measure ?? ((s: Session, f: Record<string, Float32Array>) => medianProfile(s, f, profiles));
  const dag = toDag(g);
  const feeds: Record<string, Float32Array> = {};
  for (const x of g.inputs) {
    const n = g.tensors.get(x)!.shape.reduce((a, b) => a * b, 1);
    feeds[x] = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));
  }
  const su = await createSession(g, { hw, plan: 'unfused' });
  let lbl: ProfileEntry[];
  try {
    lbl = await measure(su, feeds);
  } finally {
    su.dispose();
  }
  const lblOf = new Map(lbl.map((e) => [e.node, e.gpuMs]));
  const excluded = new Set<string>();
  const rows: TuneRow[] = [];
  let plan = planFusion(dag, hw, { mode: 'optimal', model: options.model ?? g.source, exclude: excluded, batch: batchOf(g) });
  const measured = new Map<string, { variant: string; fusedUs: number; lblUs: number }>();
  for (let round = 0; round < rounds; round++) {
    const todo = plan.modules.filter((m) => isFused(m) && !measured.has(pairKey(m.layers[0], m.layers[1])));
    if (!todo.length) break;
    const times = new Map<string, Record<string, number>>();
    for (const v of variants) {
      const pv = withTiles(plan, (m) => v.apply(m.tiles));
      const s = await createSession(g, { hw, plan: pv });
      try {
        const rowsV = joinLayers(pv, s.graph, await measure(s, feeds), undefined);
        pv.modules.forEach((m, i) => {
          const t = rowsV[i].fusedGpuMs;
          if (!isFused(m) || t === undefined) return;
          const k = pairKey(m.layers[0], m.layers[1]);
          times.set(k, { ...(times.get(k) ?? {}), [v.name]: t * 1000 });
        });
      } finally {
        s.dispose();
      }
    }
    for (const m of todo) {
      const k = pairKey(m.layers[0], m.layers[1]);
      const fusedUs = times.get(k) ?? {};
      // The module's LBL time: its conv layers as the unfused session ran them (epilogues folded in).
      const lblUs = (m.nodes ?? []).reduce((a, n) => a + (lblOf.get(n) ?? 0), 0) * 1000;
      const best = Object.entries(fusedUs).sort((a, b) => a[1] - b[1])[0];
      const kept = best !== undefined && best[1] < lblUs;
      rows.push({ module: (m.nodes ?? []).join('+'), kind: m.kind, lblUs, fusedUs, kept, variant: best?.[0] });
      if (kept) measured.set(k, { variant: best[0], fusedUs: best[1], lblUs });
      else excluded.add(k);
      log(`  ${m.kind} ${(m.nodes ?? []).slice(0, 2).join('+')}: LBL ${lblUs.toFixed(1)} us, fused ${best ? `${best[1].toFixed(1)} us (${best[0]})` : '-'}: ${kept ? 'kept' : 'left unfused'}`);
    }
    plan = planFusion(dag, hw, { mode: 'optimal', model: options.model ?? g.source, exclude: excluded, batch: batchOf(g) });
  }
  // Pairs that the last re-planning brought and no round measured stay unfused: every fused module of a tuned
  // plan was measured faster than its LBL pair. Excluding only removes candidates, so this ends.
  for (;;) {
    const unmeasured = plan.modules.filter((m) => isFused(m) && !measured.has(pairKey(m.layers[0], m.layers[1])));
    if (!unmeasured.length) break;
    for (const m of unmeasured) excluded.add(pairKey(m.layers[0], m.layers[1]));
    plan = planFusion(dag, hw, { mode: 'optimal', model: options.model ?? g.source, exclude: excluded, batch: batchOf(g) });
  }
  const byName = new Map(variants.map((v) => [v.name, v]));
  const tuned: Plan = {
    ...plan,
    modules: plan.modules.map((m) => {
      if (!isFused(m)) return m;
      const r = measured.get(pairKey(m.layers[0], m.layers[1]));
      if (!r) return m;
      return { ...m, tiles: byName.get(r.variant)!.apply(m.tiles), tuned: { fusedUs: r.fusedUs, lblUs: r.lblUs, variant: r.variant } };
    }),
  };
  return { plan: tuned, rows, excluded: [...excluded] };
}
