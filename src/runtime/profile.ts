// Timing a session's kernels beyond profile(): what the bench and the tuner measure (src/bench, src/tune). The
// mechanics (timestamp queries, heat, one pass per group) are in timing.ts; here, the session-level checks and
// the ordering with the session's runs.

import { invalid, unsupported } from '../errors.js';
import { type Session, executorOf } from './executor.js';
import type { Feeds } from './precision.js';
import { scoped } from './gpu.js';
import { SubBatchSession } from './sub-batch.js';

/** A session split into sub-batches (src/runtime/sub-batch.ts) runs its executor's pass k times per run(): its
 *  figures are the executor's, times k. */
const splitOf = (s: Session): { session: Session; times: number } =>
  (s instanceof SubBatchSession ? { session: s.inner, times: s.k } : { session: s, times: 1 });

/**
 * GPU time (ms) of one inference's single compute pass, from timestamp queries at its start and end: what run() costs
 * on the GPU without submission and read-back. `heatMs` (default 20): the timed pass follows, in the same submission,
 * about that much GPU time of untimed passes of the same dispatches (their count from an unheated pass timed first),
 * so it runs at the clock of a busy GPU. Unheated (heatMs 0), a pass that follows host work runs at whatever clock
 * the idle GPU fell to: writing a batch-32 feed (19 MB through writeBuffer, ~20 ms) leaves an H200 idle long enough
 * to slow the next pass. Exit 3 when the adapter has no timestamp queries, and where host steps split an inference
 * (the integer executor's host-run nodes). A session split into k sub-batches: k times its sub-batch pass (on the first sub-batch
 * of `feeds`).
 */
export async function passGpuMs(session: Session, feeds?: Feeds, opts: { heatMs?: number } = {}): Promise<number> {
  const split = splitOf(session);
  if (split.times > 1) {
    const first = feeds && Object.fromEntries(Object.entries(feeds).map(([x, v]) => [x, v.subarray(0, v.length / split.times)]));
    return split.times * (await passGpuMs(split.session, first, opts));
  }
  const s = executorOf(session);
  if (s.stats().hostNodes.length) throw unsupported(s.graph.source, 'pass timing is not available where host steps split an inference');
  const write = s.prepareTiming(feeds);
  if (!s.timer.timestamps) throw unsupported(s.graph.source, 'the adapter has no timestamp queries');
  const heatMs = opts.heatMs ?? 20;
  return s.serial(() => scoped(s.ctx, `${s.graph.source}: timing a pass`, async () => {
    write?.();
    const cold = await s.timer.onePass(s.dispatches);
    if (!(heatMs > 0) || !(cold > 0)) return cold;
    return s.timer.onePass(s.dispatches, Math.min(1000, Math.ceil(heatMs / cold)));
  }));
}

/**
 * GPU time (ms per repetition) of each group's dispatches (the nodes of a module, in execution order), timed as one
 * compute pass holding them `iters` times (default 20): after about `heatMs` (default 10) of the first group's
 * untimed, every group in one submission, each timed pass behind an untimed one of the same dispatches: the steady
 * state of a busy GPU, as inside run()'s single pass (the per-module figures; one pass per dispatch, as
 * profile() times, adds a pass's overhead to every dispatch). 0 for a group without dispatches. Exit 3 without
 * timestamp queries, and where host steps split an inference. A session split into k sub-batches: k times its sub-batch's.
 */
export async function timeNodes(session: Session, groups: readonly (readonly string[])[], opts: { iters?: number; heatMs?: number } = {}): Promise<number[]> {
  const split = splitOf(session);
  if (split.times > 1) return (await timeNodes(split.session, groups, opts)).map((ms) => split.times * ms);
  const s = executorOf(session);
  if (s.stats().hostNodes.length) throw unsupported(s.graph.source, 'node timing is not available where host steps split an inference');
  if (!s.timer.timestamps) throw unsupported(s.graph.source, 'the adapter has no timestamp queries');
  const iters = Math.max(1, Math.floor(opts.iters ?? 20)), heatMs = opts.heatMs ?? 10;
  const known = new Set(s.dispatches.map((x) => x.step.node.name));
  // profile() lists the feed programs (int8 quantization, fp16 rounding of float32 feeds) as 'quantize input X':
  // no graph node, so no dispatch of the schedule; they time as 0, like any group without dispatches.
  for (const x of s.stats().inputQuantizers) known.add(`quantize input ${x}`);
  for (const g of groups) for (const n of g) if (!known.has(n)) throw invalid(s.graph.source, `timeNodes: node '${n}' runs no kernel in this session`);
  const lists = groups.map((g) => {
    const names = new Set(g);
    return s.dispatches.filter((x) => names.has(x.step.node.name));
  });
  return s.serial(() => scoped(s.ctx, `${s.graph.source}: timing nodes`, () => s.timer.groups(lists, iters, heatMs)));
}
