// Sampled sweeps for the kernel tests: a sweep of options (tiles, rows per invocation) over cases (layers) runs a
// seeded sample by default, in which every option meets `perOption` different cases and every case meets
// options as evenly as the sample allows, so each option and each case is run at least once. Software Vulkan
// compiles each program with LLVM (about a second each on lavapipe), and the full products ran to hundreds of
// programs. FCM_OPT_FULL_SWEEPS=1 runs every pair; FCM_OPT_SWEEP_SEED=N draws another sample (the default is
// fixed, so a failure reproduces).
import { mulberry32 } from '../fixtures/rng.js';

/** Whether FCM_OPT_FULL_SWEEPS=1 asks for every pair. */
export const fullSweeps = process.env.FCM_OPT_FULL_SWEEPS === '1';

/** The sample's seed: FCM_OPT_SWEEP_SEED, else `fallback` (each sweep's own). */
export function sweepSeed(fallback: number): number {
  const s = process.env.FCM_OPT_SWEEP_SEED;
  if (s === undefined || s === '') return fallback;
  const v = Number(s);
  if (!Number.isInteger(v)) throw new Error(`FCM_OPT_SWEEP_SEED must be an integer, got '${s}'`);
  return v;
}


function shuffled(n: number, rand: () => number): number[] {
  const p = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/**
 * For each option (index into an options list of length `options`), the cases (indices < `cases`) to run it on:
 * every case with FCM_OPT_FULL_SWEEPS=1; else `perOption` distinct cases per option, dealt from a stream of seeded
 * permutations of the cases, so that cases come up about equally often and each case comes up once options *
 * perOption >= cases. Deterministic in (options, cases, perOption, seed).
 */
export function sampleSweep(options: number, cases: number, perOption: number, seed: number): number[][] {
  if (fullSweeps || perOption >= cases) return Array.from({ length: options }, () => [...Array(cases).keys()]);
  if (options * perOption < cases) throw new Error(`a sweep of ${options} options x ${perOption} cannot reach all ${cases} cases`);
  const rand = mulberry32(seed);
  const stream: number[] = [];
  const out: number[][] = [];
  for (let o = 0; o < options; o++) {
    const picked: number[] = [];
    // Take the stream's next cases not yet picked for this option; refill with a fresh permutation when short.
    while (picked.length < perOption) {
      if (stream.length === 0 || stream.every((c) => picked.includes(c))) stream.push(...shuffled(cases, rand));
      const i = stream.findIndex((c) => !picked.includes(c));
      picked.push(stream.splice(i, 1)[0]);
    }
    out.push(picked.sort((a, b) => a - b));
  }
  return out;
}

/** The (case, option) pairs of sampleSweep, case-major (each case's inputs are built once). */
export function sweepPairs(options: number, cases: number, perOption: number, seed: number): [number, number][] {
  const s = sampleSweep(options, cases, perOption, seed);
  const pairs: [number, number][] = [];
  for (let c = 0; c < cases; c++) for (let o = 0; o < options; o++) if (s[o].includes(c)) pairs.push([c, o]);
  return pairs;
}
