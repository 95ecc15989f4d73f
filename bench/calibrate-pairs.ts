// Checks the planner's time model where it decides: an FCM against its two layers run apart. Reads the tuner's
// measurements in hw_configs/calibration/h100-2026-12-07 (README there): for every pair `fcm-opt plan --tune`
// timed, its fused and LBL GPU times in one pass. Plans nothing: for each pair it computes the model's estimate of the
// FCM (cost.ts costFcm at its best tiles) and of the two layers (costLayer) under the description --hw, and prints the
// pairs where the model picks the slower of the two, with the time that choice costs, and the rms log error of the
// estimates against the measurements.
//   npm run build; node dist/bench/calibrate-pairs.js [--hw h100] [--dir hw_configs/calibration/h100-2026-12-07] [--fit]
// --fit: also searches the figures (docs/planner.md, "Calibration ... 2026-12-07"): each pair's roofline terms at the
// tiles --hw gives them, with no dispatch term, factor or floor, then a coordinate search over a grid of the rates'
// scale, dispatch_us, kernel_floor_us, fcm_channel_ns and the three FCM factors for the fewest microseconds lost to
// wrong choices, then the least squared log error; it prints the best figures as .cfg lines.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { zooModels, zooFoldModels } from '../fixtures/zoo.js';
import { loadHw } from '../src/planner/hw.js';
import { type CostContext, convSpec, costFcm, costLayer } from '../src/planner/cost.js';
import { planningInput } from '../src/pipeline/pipeline.js';

const arg = (name: string, d: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] : d; };
const dir = arg('dir', 'hw_configs/calibration/h100-2026-12-07');
const hw = loadHw(arg('hw', 'h100'));
// The files' model names: the zoo's (shufflenet_v2 and mnasnet as the folder names them).
const models: Record<string, (batch?: number) => ReturnType<(typeof zooModels)[string]>> = {
  ...zooModels, ...zooFoldModels, shufflenet_v2: zooFoldModels.shufflenet_v2_x1_0, mnasnet: zooModels.mnasnet1_0,
};

const fit = process.argv.includes('--fit');
// The description without its dispatch term, factors and floors: each pair's roofline terms, for --fit.
const raw: typeof hw = { ...hw, dispatchOverheadUs: 0, pwdwTimeFactor: 1, dwpwTimeFactor: 1, pwpwTimeFactor: 1, kernelFloorUs: undefined, fcmChannelNs: undefined };
interface Pair { kind: 'pwdw' | 'dwpw' | 'pwpw'; depth: number; fused: number; lbl: number; rf: number; r1: number; r2: number }
const terms: Pair[] = [];
let pairs = 0, wrong = 0, lostUs = 0, err = 0;
for (const file of readdirSync(dir).filter((f) => /^tune-.*-b\d+\.log$/.test(f)).sort()) {
  const [, model, b] = file.match(/^tune-(.*)-b(\d+)\.log$/)!;
  const batch = Number(b);
  if (!models[model]) throw new Error(`${file}: no zoo model '${model}'`);
  const dag = planningInput(models[model](batch), hw).dag;
  const ctx: CostContext = { hw, dtypeBytes: 4, objective: 'time', batch };
  for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
    // "  pwdw conv_13+relu_14: fused 6.4 us (spatial*2) vs LBL 8.4 us: kept"
    const m = line.match(/^\s+(pwdw|dwpw|pwpw) (\S+?): fused ([\d.]+) us \(\S+\) vs LBL ([\d.]+) us/);
    if (!m) continue;
    const kind = m[1] as 'pwdw' | 'dwpw' | 'pwpw';
    const [fused, lbl] = [Number(m[3]), Number(m[4])];
    const first = dag.find((l) => l.name === m[2].split('+')[0]);
    const second = first?.children.map((c) => dag[c]).find((l) => l.type === (kind === 'pwdw' ? 'dw' : 'pw'));
    if (!first || !second) throw new Error(`${file}: no pair '${m[2]}' (${kind}) in the zoo's ${model}`);
    const s1 = convSpec(first, model), s2 = convSpec(second, model);
    const f = costFcm(kind, s1, s2, ctx)?.timeUs;
    if (f === undefined) { console.log(`${model} b${batch} ${kind} ${m[2]}: no tile fits the description`); continue; }
    const l = costLayer(s1, ctx, model).timeUs! + costLayer(s2, ctx, model).timeUs!;
    pairs++;
    err += Math.log(f / fused) ** 2 + Math.log(l / lbl) ** 2;
    if (fit) {
      const rc: CostContext = { ...ctx, hw: raw };
      terms.push({ kind, depth: s1.c, fused, lbl, rf: costFcm(kind, s1, s2, rc)?.timeUs ?? NaN, r1: costLayer(s1, rc, model).timeUs!, r2: costLayer(s2, rc, model).timeUs! });
    }
    if (f < l !== fused < lbl) {
      wrong++;
      lostUs += Math.abs(fused - lbl);
      console.log(`${model} b${batch} ${kind} ${m[2]}: measured ${fused} fused / ${lbl} LBL us, estimated ${f.toFixed(1)} / ${l.toFixed(1)}: ${f < l ? 'fuses' : 'leaves unfused'}, ${Math.abs(fused - lbl).toFixed(1)} us slower`);
    }
  }
}
console.log(`${hw.name}: ${pairs} pairs, the model picks the slower on ${wrong} (${lostUs.toFixed(1)} us in all); rms log error of the estimates ${Math.sqrt(err / (2 * pairs)).toFixed(2)}`);

if (fit) {
  type Figures = { scale: number; dispatch: number; floor: number; channelNs: number; pwdw: number; dwpw: number; pwpw: number };
  // The planner's estimate (cost.ts rooflineUs) from a pair's roofline terms under candidate figures.
  const estimate = (p: Pair, x: Figures) => {
    const chain = p.kind === 'pwpw' ? 0 : (x.channelNs * p.depth) / 1e3;
    return {
      f: Math.max(x[p.kind] * x.scale * p.rf, chain, x.floor) + x.dispatch,
      l: Math.max(x.scale * p.r1, x.floor) + Math.max(x.scale * p.r2, x.floor) + 2 * x.dispatch,
    };
  };
  const score = (x: Figures) => {
    let lost = 0, e = 0, n = 0;
    for (const p of terms) {
      if (!(p.rf > 0)) continue;
      const { f, l } = estimate(p, x);
      if (f < l !== p.fused < p.lbl) { lost += Math.abs(p.fused - p.lbl); n++; }
      e += Math.log(f / p.fused) ** 2 + Math.log(l / p.lbl) ** 2;
    }
    return { lost, wrong: n, rms: Math.sqrt(e / (2 * terms.length)) };
  };
  const better = (a: ReturnType<typeof score>, b: ReturnType<typeof score>) => a.lost < b.lost - 1e-9 || (Math.abs(a.lost - b.lost) <= 1e-9 && a.rms < b.rms);
  const grid: { [K in keyof Figures]: number[] } = {
    scale: [0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1], dispatch: [1, 1.5, 2, 2.5, 3, 3.5, 4, 5, 6, 8, 10], floor: [0, 0.5, 1, 1.5, 2, 3],
    channelNs: [0, 20, 25, 30, 35, 40, 45, 50, 60], pwdw: [0.8, 1, 1.2, 1.33, 1.5, 1.8, 2.2], dwpw: [1, 1.5, 2, 2.5, 3, 4, 5], pwpw: [0.6, 0.8, 1, 1.33, 1.6],
  };
  const start: Figures = { scale: 1, dispatch: hw.dispatchOverheadUs ?? 0, floor: hw.kernelFloorUs ?? 0, channelNs: hw.fcmChannelNs ?? 0, pwdw: hw.pwdwTimeFactor ?? 1, dwpw: hw.dwpwTimeFactor ?? 1, pwpw: hw.pwpwTimeFactor ?? 1 };
  const own = score(start);
  console.log(`${hw.name}'s own figures on the pairs' roofline terms: the slower on ${own.wrong} (${own.lost.toFixed(1)} us), rms log error ${own.rms.toFixed(2)}`);
  // Coordinate search from the description and from other scales of its rates (the search is local).
  let x = start, best = own;
  for (const scale of [1, 0.5, 0.3, 0.2]) {
    let y: Figures = { ...start, scale }, s = score(y);
    for (let round = 0; round < 8; round++) {
      let moved = false;
      for (const k of Object.keys(grid) as (keyof Figures)[]) {
        for (const v of grid[k]) {
          const z = { ...y, [k]: v };
          const t = score(z);
          if (better(t, s)) { y = z; s = t; moved = true; }
        }
      }
      if (!moved) break;
    }
    if (better(s, best)) { x = y; best = s; }
  }
  console.log(`fit over ${terms.length} pairs: picks the slower on ${best.wrong} (${best.lost.toFixed(1)} us in all), rms log error ${best.rms.toFixed(2)}; as ${hw.name}'s figures:`);
  console.log([`dram_GBps::${+(hw.dramGBps! / x.scale).toPrecision(4)}`, `fp32_GFLOPS::${+(hw.fp32Gflops! / x.scale).toPrecision(4)}`, `dispatch_us::${x.dispatch}`,
    `kernel_floor_us::${x.floor}`, `fcm_channel_ns::${x.channelNs}`, `pwdw_time_factor::${x.pwdw}`, `dwpw_time_factor::${x.dwpw}`, `pwpw_time_factor::${x.pwpw}`].join('\n'));
}
