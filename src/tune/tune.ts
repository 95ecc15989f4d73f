// --tune: the planner's choice checked on the device. The cost model ranks FCMs well but cannot see
// everything the GPU does (dispatch overhead, occupancy, the kernels' own tile splitting), so each fused module of
// the plan is timed on the device with a few tile variants and against its two layers run LBL:
//   1. the LBL time of every layer from one unfused session (each node's kernels alone in one heated pass,
//      src/runtime/profile.ts timeNodes, median of `profiles` rounds; per-dispatch profiles on the integer executor);
//   2. for each tile variant, one session of the plan with every fused module's tiles changed alike, timed alike;
//      each module keeps its fastest variant;
//   3. a module slower than its LBL pair with every variant is excluded (planFusion's `exclude`) and the DAG is
//      planned again; new pairs that re-planning brings are measured in the next round (at most `rounds`).
//   4. the kernel variants of every pointwise Conv left unfused (kernels/registry.ts pointwiseVariants: the rule's and
//      the few others its kernel family offers for the shape on this device): one session of the tuned plan per
//      variant index, every node switched to its k-th variant alike (a node with fewer keeps the rule's), timed with
//      two sessions of the rule's kernels in the same rounds; a node keeps a variant only when it beats the rule's
//      time by kernelMargin, or by the rule's sessions' median spread where that is larger (tuneKernels below).
// The result is a Plan (data, as any other) whose fused modules carry `tuned` figures and whose `kernels` the chosen
// variants with their times; it prints, saves and
// loads like the planner's own. A quantized graph is tuned on the integer kernels: createSession runs it
// there, and it is planned as the integer executor plans it (src/pipeline/pipeline.ts planningInput).

import { type Graph, fcmDomain } from '../graph/ir.js';
import type { HwConfig } from '../planner/hw-config.js';
import type { Plan, PlanModule, Tiles } from '../planner/plan.js';
import { pairKey } from '../planner/optimal.js';
import { type BenchLayer, joinLayers } from '../bench/bench.js';
import type { ProfileEntry } from '../bench/runtime.js';
import { medianModuleTimes, timedSession } from '../bench/profile.js';
import { type Session, executorOf } from '../runtime/executor.js';
import { SubBatchSession } from '../runtime/sub-batch.js';
import { type SessionOptions, createSession } from '../pipeline/session.js';
import { planFor, planningInput } from '../pipeline/pipeline.js';
import type { FloatPrecision } from '../runtime/precision.js';

export { planningInput };

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
  /** Timed rounds per session; the median of each node's time is taken (default 7). */
  profiles?: number;
  /** Repetitions of each node per timed pass (default: about 40 ms of them, 1 to 20). */
  iters?: number;
  /** Planning rounds (default 3). */
  rounds?: number;
  variants?: readonly TileVariant[];
  /** Name recorded in the plan (default the graph's source). */
  model?: string;
  /**
   * Per-node GPU times of sessions measured together (default: src/bench/profile.ts medianNodeTimes, `profiles`
   * rounds of `iters` repetitions, interleaved; medianProfiles where the sessions cannot time nodes, the integer
   * executor); tests inject.
   */
  measure?: (s: readonly Session[], feeds: Record<string, Float32Array>) => Promise<ProfileEntry[][]>;
  /** Called with a line of progress. */
  log?: (line: string) => void;
  /** Float graphs: tune the fp16 kernels (planned with 2-byte elements) instead of fp32. */
  precision?: FloatPrecision;
  /** fp16: the sessions' f32 tensors (SessionOptions.fp16; default keepF32 'auto'). */
  fp16?: SessionOptions['fp16'];
  /** The command's memory budget (--max-memory), charged by each session before its GPU buffers are made. */
  maxMemory?: number;
  /** Step 4, the pointwise layers' kernel variants (default true). */
  kernels?: boolean;
  /** A kernel variant must be at least this fraction faster than the rule's (default kernelMargin; see there). */
  kernelMargin?: number;
}

export interface TuneRow { module: string; kind: string; lblUs: number; fusedUs: Record<string, number>; kept: boolean; variant?: string }
export interface TuneResult { plan: Plan; rows: TuneRow[]; excluded: string[]; kernelRows: KernelTuneRow[] }

/**
 * One pointwise layer's kernel variants as measured (us): the rule's variant and its time (the mean of its two
 * sessions), each other variant's, and the one kept (absent: the rule's). `noise`: |a - b| / mean of the rule's two
 * sessions on this node, the spread of the same kernels between two sessions of the same rounds.
 */
export interface KernelTuneRow { node: string; rule: string; ruleUs: number; noise: number; us: Record<string, number>; chosen?: string }

const isFused = (m: PlanModule) => m.kind === 'pwdw' || m.kind === 'dwpw' || m.kind === 'pwpw';

/**
 * GPU time (us) per plan module of the nodes that only the fused session runs: a squeeze-excite Mul whose product
 * a fused module's first conv reads is not folded (src/rewrite/channel-scale.ts; FCMs take no scale), so fusing
 * that module costs the Mul's dispatch too. Rows are joinLayers' for the fused and unfused profiles.
 */
export function strandedUs(plan: Plan, fusedGraph: Graph, rows: readonly BenchLayer[]): Map<number, number> {
  const moduleOf = new Map<string, number>();
  for (const n of fusedGraph.nodes) {
    if (n.domain !== fcmDomain) continue;
    const i = plan.modules.findIndex((m) => (m.nodes ?? []).includes(n.attrs.layer1 as string));
    if (i >= 0) moduleOf.set(n.name, i);
  }
  const out = new Map<number, number>();
  for (const r of rows) {
    if (r.module !== null || r.fusedGpuMs === undefined || r.unfusedGpuMs !== undefined) continue;
    const node = fusedGraph.nodes.find((n) => n.name === r.nodes[0]);
    if (!node) continue;
    const readers = fusedGraph.nodes.filter((n) => n.inputs.some((x) => x && node.outputs.includes(x)));
    const i = readers.length === 1 ? moduleOf.get(readers[0].name) : undefined;
    if (i !== undefined) out.set(i, (out.get(i) ?? 0) + r.fusedGpuMs * 1000);
  }
  return out;
}

function withTiles(plan: Plan, tiles: (m: PlanModule, i: number) => Tiles): Plan {
  return { ...plan, modules: plan.modules.map((m, i) => (isFused(m) ? { ...m, tiles: tiles(m, i) } : m)) };
}

/** Tunes the optimal plan of `g` for `hw` on this machine's GPU. `g` as createSession takes it (float graph). */
export async function tunePlan(g: Graph, hw: HwConfig, options: TuneOptions = {}): Promise<TuneResult> {
  const profiles = options.profiles ?? 7, rounds = options.rounds ?? 3, variants = options.variants ?? tileVariants;
  const log = options.log ?? (() => undefined);
  const iters = options.iters;
  const measure = options.measure ?? (async (s: readonly Session[], f: Record<string, Float32Array>) => (await medianModuleTimes(s.map(timedSession), f, profiles, { iters })).times);
  const feeds: Record<string, Float32Array> = {};
  for (const x of g.inputs) {
    const n = g.tensors.get(x)!.shape.reduce((a, b) => a * b, 1);
    feeds[x] = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));
  }
  // The unfused session stays open: every variant is profiled interleaved with it, and each module is compared
  // with its LBL layers from the same rounds.
  const precision = options.precision ?? 'fp32';
  const su = await createSession(g, { hw, plan: 'unfused', precision, fp16: options.fp16, maxMemory: options.maxMemory });
  let r: Omit<TuneResult, 'kernelRows'>, integer: boolean;
  try {
    integer = su.path === 'int8';
    r = await tuneRounds(g, hw, su, feeds, measure, variants, rounds, options.model ?? g.source, log, precision, options.maxMemory, options.fp16);
  } finally {
    su.dispose();
  }
  // The integer executor's pointwise kernels have no variants to choose among.
  if (options.kernels === false || integer) return { ...r, kernelRows: [] };
  const k = await tuneKernels(g, hw, r.plan, { feeds, measure, precision, fp16: options.fp16, maxMemory: options.maxMemory, log, margin: options.kernelMargin ?? kernelMargin });
  return { ...r, plan: k.plan, kernelRows: k.rows };
}

/**
 * How much faster than the rule's a kernel variant must be to replace it, at least: 5% of the rule's time. Two sessions
 * running the same kernels, timed in the same interleaved rounds, still give a node medians apart (rounds follow the
 * device's clock; docs/gpu-notes.md): a variant that wins by less may have won by noise, and the rule's kernel is the
 * one tested everywhere. The rules' own comments (chooseSmxTiles, gemmTiles) count variants within 10% on the H100 /
 * H200 as ties. 5% is a judgement, not a measured bound, so the tuner also measures the spread each time: the rule's
 * kernels run in two sessions, and where the median of their per-layer spread (each KernelTuneRow's `noise`) is larger,
 * that is the margin. On the test graph on the shared lavapipe machine the spread was 1.6% in one run and 23% in another.
 */
export const kernelMargin = 0.05;

/** The executor of a session (a sub-batched session's inner one). */
const executorIn = (s: Session) => executorOf(s instanceof SubBatchSession ? s.inner : s);

/**
 * Step 4 (see the head of the file): `plan` with `kernels` holding, per pointwise Conv whose variants beat the rule's
 * by `margin`, the fastest variant and its time. Session 0 and 1 run the rule's kernels; session k + 1 every node's
 * k-th variant. Kernel choices already in `plan` are replaced.
 */
export async function tuneKernels(g: Graph, hw: HwConfig, plan: Plan, o: {
  feeds: Record<string, Float32Array>; measure: (s: readonly Session[], f: Record<string, Float32Array>) => Promise<ProfileEntry[][]>;
  precision: FloatPrecision; fp16?: SessionOptions['fp16']; maxMemory?: number; log: (line: string) => void; margin: number;
}): Promise<{ plan: Plan; rows: KernelTuneRow[] }> {
  const base: Plan = { ...plan, kernels: undefined };
  delete base.kernels;
  const sessions: Session[] = [];
  try {
    const open = async (p: Plan) => { const s = await createSession(g, { hw, plan: p, precision: o.precision, fp16: o.fp16, maxMemory: o.maxMemory }); sessions.push(s); return s; };
    const rule = await open(base);
    const variants = executorIn(rule).compiled.kernelVariants ?? new Map<string, { variant: string; variants: string[] }>();
    const nodes = [...variants].filter(([, v]) => v.variants.length > 1);
    const count = Math.max(0, ...nodes.map(([, v]) => v.variants.length));
    if (!nodes.length) return { plan: base, rows: [] };
    await open(base);
    for (let k = 1; k < count; k++) {
      const kernels = Object.fromEntries(nodes.filter(([, v]) => v.variants.length > k).map(([n, v]) => [n, { variant: v.variants[k] }]));
      await open({ ...base, kernels });
    }
    o.log(`kernel variants: ${nodes.length} pointwise layer${nodes.length === 1 ? '' : 's'}, ${count} variants at most, ${sessions.length} sessions`);
    // A node a session has no time for (a measure that returned fewer lists) is not compared.
    const times = (await o.measure(sessions, o.feeds)).map((list) => new Map(list.map((e) => [e.node, e.gpuMs * 1000])));
    const measured: { node: string; v: { variant: string; variants: string[] }; a: number; b: number; us: Record<string, number> }[] = [];
    for (const [node, v] of nodes) {
      const a = times[0]?.get(node), b = times[1]?.get(node);
      if (a === undefined || b === undefined) continue;
      const us: Record<string, number> = { [v.variant]: (a + b) / 2 };
      for (let k = 1; k < v.variants.length; k++) {
        // Only where the session ran the variant asked for (a device may refuse it: the registry's fallback).
        const ran = executorIn(sessions[k + 1]).compiled.kernelVariants?.get(node)?.variant;
        const t = times[k + 1]?.get(node);
        if (ran === v.variants[k] && t !== undefined) us[v.variants[k]] = t;
      }
      measured.push({ node, v, a, b, us });
    }
    // The rule's kernels against themselves (two sessions, the same rounds): where their median spread over the layers
    // is larger than the margin, it is the margin.
    const noiseOf = (m: (typeof measured)[number]) => { const r = (m.a + m.b) / 2; return r > 0 ? Math.abs(m.a - m.b) / r : 0; };
    const noise = measured.map(noiseOf).sort((x, y) => x - y);
    const medianNoise = noise.length ? noise[Math.floor(noise.length / 2)] : 0;
    const margin = Math.max(o.margin, medianNoise);
    if (noise.length) o.log(`  rule against itself: median ${(100 * medianNoise).toFixed(1)}%, max ${(100 * noise[noise.length - 1]).toFixed(1)}%; margin ${(100 * margin).toFixed(1)}%`);
    const rows: KernelTuneRow[] = [];
    const kernels: NonNullable<Plan['kernels']> = {};
    for (const m of measured) {
      const { node, v, us } = m;
      const ruleUs = us[v.variant];
      const [best, bestUs] = Object.entries(us).sort((x, y) => x[1] - y[1])[0];
      const chosen = best !== v.variant && bestUs < ruleUs * (1 - margin) ? best : undefined;
      rows.push({ node, rule: v.variant, ruleUs, noise: noiseOf(m), us, ...(chosen ? { chosen } : {}) });
      if (chosen) kernels[node] = { variant: chosen, tuned: { us: us[chosen], ruleUs, rule: v.variant } };
      o.log(`  ${node}: ${chosen ? `${chosen} ${us[chosen].toFixed(1)} us` : 'rule'} (rule ${v.variant} ${ruleUs.toFixed(1)} us; ${Object.entries(us).filter(([k]) => k !== v.variant).map(([k, t]) => `${k} ${t.toFixed(1)}`).join(', ')})`);
    }
    return { plan: Object.keys(kernels).length ? { ...base, kernels } : base, rows };
  } finally {
    for (const s of sessions) s.dispose();
  }
}

async function tuneRounds(g: Graph, hw: HwConfig, su: Session, feeds: Record<string, Float32Array>,
  measure: (s: readonly Session[], f: Record<string, Float32Array>) => Promise<ProfileEntry[][]>,
  variants: readonly TileVariant[], rounds: number, model: string, log: (line: string) => void, precision: FloatPrecision, maxMemory?: number, fp16?: SessionOptions['fp16']): Promise<Omit<TuneResult, 'kernelRows'>> {
  // The unfused session shows which executor createSession chose (the integer one reports path 'int8').
  const pin = planningInput(g, hw, su.path === 'int8', precision);
  const excluded = new Set<string>();
  const rows: TuneRow[] = [];
  const replan = () => planFor(pin, { model, exclude: excluded });
  let plan = replan();
  const measured = new Map<string, { variant: string; fusedUs: number; lblUs: number }>();
  for (let round = 0; round < rounds; round++) {
    const todo = plan.modules.filter((m) => isFused(m) && !measured.has(pairKey(m.layers[0], m.layers[1])));
    if (!todo.length) break;
    // Per pair and variant: the fused module's time and its LBL layers' time from the same rounds (us).
    const times = new Map<string, Record<string, [number, number]>>();
    for (const v of variants) {
      const pv = withTiles(plan, (m) => v.apply(m.tiles));
      const s = await createSession(g, { hw, plan: pv, precision, fp16, maxMemory });
      try {
        const [pf, pu] = await measure([s, su], feeds);
        const rowsV = joinLayers(pv, s.graph, pf, pu);
        const stranded = strandedUs(pv, s.graph, rowsV);
        pv.modules.forEach((m, i) => {
          const t = rowsV[i].fusedGpuMs, u = rowsV[i].unfusedGpuMs;
          if (!isFused(m) || t === undefined || u === undefined) return;
          const k = pairKey(m.layers[0], m.layers[1]);
          times.set(k, { ...(times.get(k) ?? {}), [v.name]: [t * 1000 + (stranded.get(i) ?? 0), u * 1000] });
        });
      } finally {
        s.dispose();
      }
    }
    for (const m of todo) {
      const k = pairKey(m.layers[0], m.layers[1]);
      const pairs = times.get(k) ?? {};
      const fusedUs = Object.fromEntries(Object.entries(pairs).map(([v, [f]]) => [v, f]));
      // The module's LBL time (its conv layers as the unfused session ran them, epilogues folded in): the median
      // over the variants' rounds.
      const lbls = Object.values(pairs).map(([, u]) => u).sort((a, b) => a - b);
      const lblUs = lbls.length ? lbls[Math.floor(lbls.length / 2)] : 0;
      // A variant wins against the LBL time of its own rounds.
      const best = Object.entries(pairs).sort((a, b) => a[1][0] / a[1][1] - b[1][0] / b[1][1])[0];
      const kept = best !== undefined && best[1][0] < best[1][1];
      rows.push({ module: (m.nodes ?? []).join('+'), kind: m.kind, lblUs, fusedUs, kept, variant: best?.[0] });
      if (kept) measured.set(k, { variant: best[0], fusedUs: best[1][0], lblUs: best[1][1] });
      else excluded.add(k);
      log(`  ${m.kind} ${(m.nodes ?? []).slice(0, 2).join('+')}: fused ${best ? `${best[1][0].toFixed(1)} us (${best[0]}) vs LBL ${best[1][1].toFixed(1)} us` : '-'}: ${kept ? 'kept' : 'left unfused'}`);
    }
    plan = replan();
  }
  // Pairs that the last re-planning brought and no round measured stay unfused: every fused module of a tuned
  // plan was measured faster than its LBL pair. Excluding only removes candidates, so this ends.
  for (;;) {
    const unmeasured = plan.modules.filter((m) => isFused(m) && !measured.has(pairKey(m.layers[0], m.layers[1])));
    if (!unmeasured.length) break;
    for (const m of unmeasured) excluded.add(pairKey(m.layers[0], m.layers[1]));
    plan = replan();
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
