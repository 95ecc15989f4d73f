// Per-node GPU times of several sessions, comparable with each other: each session first runs back to back (a GPU
// that idled while pipelines compiled runs at lower clocks), then `rounds` rounds profile every session in turn,
// the order rotated each round, and each node gets the median of its rounds. Profiling the sessions one after the
// other instead put a steady 15-20% between the same kernel in two sessions (the GPU's clocks drift).
// Each profile is preceded, in its own submission, by about `heatMs` of untimed inferences: the timed passes
// otherwise follow host work (read-back, the previous profile's bookkeeping) and an idle H200 drops to 345 of
// 1980 MHz within it; unheated, its per-module times were those of a 3.5-4x slower GPU, latency-bound kernels
// (the FCMs' redundant compute) slowed more than memory-bound ones. No heat where one inference takes longer
// than heatMs (software Vulkan in the tests).
import { median } from './stats.js';
import { FcmError } from '../errors.js';
import type { Session } from '../runtime/executor.js';
import { timeNodes } from '../runtime/profile.js';
import { normalizeProfile, type FcmSessionLike, type ProfileEntry } from './runtime.js';

/** A session that can time its nodes in one pass (src/runtime/profile.ts timeNodes). */
export interface TimedSessionLike extends FcmSessionLike {
  timeNodes(groups: readonly (readonly string[])[], opts?: { iters?: number; heatMs?: number }): Promise<number[]>;
}

/** A session as the bench times it: its own calls, and timeNodes bound to it. */
export function timedSession(s: Session): TimedSessionLike & { graph: Session['graph'] } {
  return {
    path: s.path,
    graph: s.graph,
    run: (f) => s.run(f),
    profile: (f, o) => s.profile(f, o),
    timeNodes: (groups, o) => timeNodes(s, groups, o),
    hostTimes: () => s.hostTimes(),
    f32Tensors: s.stats().f32Tensors,
    subBatches: s.stats().subBatches,
    dispose: () => s.dispose(),
  };
}

export async function medianProfiles(
  sessions: readonly FcmSessionLike[], feeds: Record<string, Float32Array>, rounds: number, warmRuns = 30, heatMs = 20,
): Promise<ProfileEntry[][]> {
  for (const s of sessions) for (let i = 0; i < warmRuns; i++) await s.run(feeds);
  const heatRuns: number[] = [];
  for (const s of sessions) {
    const total = normalizeProfile(await s.profile(feeds)).reduce((a, e) => a + e.gpuMs, 0);
    heatRuns.push(total > 0 ? Math.min(1000, Math.floor(heatMs / total)) : 0);
  }
  const samples = sessions.map(() => new Map<string, { op?: string; ms: number[] }>());
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < sessions.length; k++) {
      const i = (r + k) % sessions.length;
      for (const e of normalizeProfile(await sessions[i].profile(feeds, { heatRuns: heatRuns[i] }))) {
        const row = samples[i].get(e.node) ?? { op: e.op, ms: [] };
        row.ms.push(e.gpuMs);
        samples[i].set(e.node, row);
      }
    }
  }
  return samples.map((m) => [...m].map(([node, r]) => ({ node, op: r.op, gpuMs: median(r.ms) })));
}

/**
 * Per-node GPU times like medianProfiles', from timeNodes (src/runtime/profile.ts) instead: each node's kernels alone, repeated
 * `iters` times in one compute pass (the first node after `heatMs` of its kernels: an H200 left idle by host work
 * ramps its clock for tens of ms), the sessions alternating over `rounds` rounds (rounded up to a multiple of the
 * sessions), medians. This is the
 * steady state of run()'s single pass; profiles time one pass per dispatch and follow the GPU's clock (on the H200
 * the same plan's kernel times summed 1.75x apart in two profiles on one machine). The nodes are those a
 * profile reports (the ones that run kernels).
 */
export async function medianNodeTimes(
  sessions: readonly TimedSessionLike[], feeds: Record<string, Float32Array>, rounds: number, iters?: number, heatMs = 100,
): Promise<ProfileEntry[][]> {
  const nodes: ProfileEntry[][] = [];
  for (const s of sessions) { await s.run(feeds); nodes.push(normalizeProfile(await s.profile(feeds))); }
  // Without `iters`: about 40 ms of repetitions per pass, 1 to 20 (software Vulkan takes one).
  const itersOf = nodes.map((list) => iters ?? Math.max(1, Math.min(20, Math.round(40 / Math.max(1e-3, list.reduce((a, e) => a + e.gpuMs, 0))))));
  const samples = sessions.map((_, i) => nodes[i].map(() => [] as number[]));
  // Every session first in as many rounds as every other: the first of a round follows host work, and with 5 rounds
  // of 2 sessions the medians were the first's for one session and the second's for the other (on the H200 a plan's
  // early, memory-bound kernels 1.4-1.7x apart between two sessions running the same kernels).
  const n = Math.ceil(rounds / sessions.length) * sessions.length;
  for (let r = 0; r < n; r++) {
    for (let k = 0; k < sessions.length; k++) {
      const i = (r + k) % sessions.length;
      const ms = await sessions[i].timeNodes(nodes[i].map((e) => [e.node]), { iters: itersOf[i], heatMs });
      ms.forEach((t, j) => samples[i][j].push(t));
    }
  }
  return nodes.map((list, i) => list.map((e, j) => ({ node: e.node, op: e.op, gpuMs: median(samples[i][j]) })));
}

/**
 * What the per-module figures use: medianNodeTimes where every session can time its nodes, else
 * (a session without timeNodes, or one that refuses it: the integer executor) medianProfiles. `method` says which.
 */
export async function medianModuleTimes(
  sessions: readonly FcmSessionLike[], feeds: Record<string, Float32Array>, rounds: number,
  opts: { iters?: number; warmRuns?: number; heatMs?: number } = {},
): Promise<{ method: 'pass' | 'profile'; times: ProfileEntry[][] }> {
  const timed = sessions.every((s) => s.timeNodes !== undefined);
  if (timed) {
    try {
      return { method: 'pass', times: await medianNodeTimes(sessions as readonly TimedSessionLike[], feeds, rounds, opts.iters, opts.heatMs) };
    } catch (e) {
      if (!(e instanceof FcmError && e.kind === 'unsupported')) throw e;
    }
  }
  return { method: 'profile', times: await medianProfiles(sessions, feeds, rounds, opts.warmRuns) };
}
