// Calibrates the planner's time model (hw_configs/*.cfg dram_GBps, fp32_GFLOPS, dispatch_us) to measured
// per-module GPU times: the output of `node dist/bench/gpu.js --parts e2e,modules` (gpu-e2e.json: batch 1,
// gpu-modules.json: batch B) for the zoo models. The modules are rebuilt by planning the same models with the
// description the measurement used (--measured-hw); for each candidate balance (flops per byte) the Spearman rank
// correlation of estimate vs measured is printed per model and batch, then the least-squares fit of the absolute
// figures (log error) at the best balance. This is how h100.cfg's figures were fitted until 2026-12-07; they now come
// from the tuner's one-pass times of fused modules against their layers (bench/calibrate-pairs.ts).
//   npm run build; node dist/bench/calibrate.js [--dir hw_configs/calibration/h200-2026-12-01] [--measured-hw h100-datasheet]
//   [--b1 FILE[,FILE...]] [--modules FILE[,FILE...]]
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zooModels } from '../fixtures/zoo.js';
import { exportOnnx } from '../converters/onnx/export.js';
import { loadModel } from '../src/graph/load.js';
import { toDag } from '../src/planner/to-dag.js';
import { loadHw } from '../src/planner/hw.js';
import { planFusion } from '../src/planner/index.js';
import { type CostContext, type ModuleCost, convSpec, costFcm, costLayer, rooflineUs } from '../src/planner/cost.js';
import type { HwConfig } from '../src/planner/hw-config.js';
import { spearman } from '../src/bench/correlation.js';

const arg = (name: string, d: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] : d; };
const dir = arg('dir', 'hw_configs/calibration/h200-2026-12-01');
const hw = loadHw(arg('measured-hw', 'h100-datasheet'));
type Layer = { module: number | null; fusedGpuMs?: number };
// --b1 FILE: batch 1's times from a gpu-modules.json (bench/gpu.ts --parts modules --batch 1: each node timed in one
// heated pass) or a gpu-e2e.json (its profiles) instead of DIR/gpu-e2e.json; --modules FILE: the batch-B file (default
// DIR/gpu-modules.json). Several measurements (runs) at once: comma-separated lists, paired in order; the fit then
// ranks by the lowest Spearman over every model, batch and run.
type Mods = { model: string; batch: number; layers: Layer[] }[];
type B1 = { model: string; report: { layers: Layer[] } }[];
const readB1 = (f: string): B1 => {
  const j = JSON.parse(readFileSync(f, 'utf8')) as (Mods[number] | B1[number])[];
  return j.map((m) => ('report' in m ? m : { model: m.model, report: { layers: m.layers } }));
};
const b1Files = arg('b1', join(dir, 'gpu-e2e.json')).split(',');
const modFiles = arg('modules', join(dir, 'gpu-modules.json')).split(',');
if (b1Files.length !== modFiles.length) throw new Error(`--b1 names ${b1Files.length} files and --modules ${modFiles.length}: they pair up`);
const sets = b1Files.map((f, i) => ({ e2e: readB1(f), mods: JSON.parse(readFileSync(modFiles[i], 'utf8')) as Mods, run: i }));

const data: { name: string; batch: number; costs: ModuleCost[]; times: number[] }[] = [];
for (const name of Object.keys(zooModels)) {
  const path = join(tmpdir(), `${name}-calibrate.onnx`);
  writeFileSync(path, exportOnnx(zooModels[name](1)));
  const g = await loadModel(path, { batch: 1 });
  const dag = toDag(g);
  const times = (layers: Layer[]) => layers.filter((l) => l.module !== null).map((l) => (l.fusedGpuMs ?? NaN) * 1000);
  for (const { e2e, mods, run } of sets) {
    const b1 = e2e.find((x) => x.model === name), bm = mods.find((x) => x.model === name);
    const measured: [number, number[]][] = [];
    if (b1) measured.push([1, times(b1.report.layers)]);
    if (bm) measured.push([bm.batch, times(bm.layers)]);
    for (const [batch, t] of measured) {
      // The measured plans were made at the measured batch with the measured description (bench/gpu.ts planFor).
      const plan = planFusion(dag, hw, { mode: 'optimal', model: name, dtypeBytes: 4, batch });
      const ctx: CostContext = { hw, dtypeBytes: 4, objective: 'time', batch };
      const costs = plan.modules.map((m) => {
        const sp = m.layers.map((id) => convSpec(dag[id], name));
        return m.layers.length === 2 ? costFcm(m.kind as 'pwdw' | 'dwpw' | 'pwpw', sp[0], sp[1], ctx)! : costLayer(sp[0], ctx, name);
      });
      const label = sets.length > 1 ? `${name}#${run}` : name;
      if (t.length !== costs.length) { console.log(`${label} b${batch}: measured modules differ from the plan (another --measured-hw?): skipped`); continue; }
      data.push({ name: label, batch, costs, times: t });
    }
  }
}
// The planner's own estimate (cost.ts rooflineUs) under candidate figures; the FCM time factors stay the measured description's.
const est = (c: ModuleCost, h: HwConfig, batch: number) =>
  rooflineUs(c.gma, c.flops, c.workgroups, c.dispatches, { hw: h, dtypeBytes: 4, objective: 'time', batch }, c.kind, c.outputs);
const rhosOf = (h: HwConfig) => data.map((d) => ({ name: d.name, b: d.batch, r: spearman(d.costs.map((c) => est(c, h, d.batch)), d.times) }));
const rmsOf = (h: HwConfig) => {
  let e = 0, n = 0;
  for (const x of data) x.costs.forEach((c, i) => { if (x.times[i] > 0) { e += Math.log(est(c, h, x.batch) / x.times[i]) ** 2; n++; } });
  return Math.sqrt(e / n);
};
console.log(`models ${[...new Set(data.map((d) => d.name))].join(', ')}; the measured description: ${JSON.stringify(rhosOf(hw).map((x) => `${x.name} b${x.b} ${x.r.toFixed(2)}`))}`);
// Grid: the lowest per-model Spearman first (the target is per model), then the rms log error.
let best = { h: hw, min: -2, rms: Infinity };
for (const bw of [500, 750, 1000, 1250, 1500, 1750, 2000, 3000, 4000]) {
  for (const ratio of [1, 2, 3, 4, 6, 8, 12, 16, 20, 24, 32]) {
    for (const d of [0, 5, 10, 15]) {
      for (const osat of [0, 3e4, 5e4, 6e4, 7e4, 1e5, 3e5, 1e6, 3e6]) {
        const h: HwConfig = { ...hw, dramGBps: bw, fp32Gflops: bw * ratio, dispatchOverheadUs: d, parallelOutputs: osat || undefined };
        const min = Math.min(...rhosOf(h).map((x) => x.r));
        if (min < best.min - 1e-9) continue;
        const rms = rmsOf(h);
        if (min > best.min + 1e-9 || rms < best.rms) best = { h, min, rms };
      }
    }
  }
}
const b = best.h;
console.log(`best: dram_GBps::${b.dramGBps} fp32_GFLOPS::${b.fp32Gflops} dispatch_us::${b.dispatchOverheadUs} parallel_outputs::${b.parallelOutputs ?? '(off)'} ` +
  `(lowest Spearman ${best.min.toFixed(2)}, rms log error ${best.rms.toFixed(2)}): ${rhosOf(b).map((x) => `${x.name} b${x.b} ${x.r.toFixed(2)}`).join(', ')}`);
