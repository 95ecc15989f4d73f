// Calibrates the planner's time model (hw_configs/*.cfg dram_GBps, fp32_GFLOPS, dispatch_us) to measured
// per-module GPU times: the output of `node dist/bench/gpu.js --parts e2e,modules` (gpu-e2e.json: batch 1,
// gpu-modules.json: batch B) for the zoo models. The modules are rebuilt by planning the same models with the
// description the measurement used (--measured-hw); for each candidate balance (flops per byte) the Spearman rank
// correlation of estimate vs measured is printed per model and batch, then the least-squares fit of the absolute
// figures (log error) at the best balance.
//   npm run build; node dist/bench/calibrate.js [--dir bench/data/h200-2026-12-01] [--measured-hw h100-datasheet]
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zooModels } from '../fixtures/zoo.js';
import { exportOnnx } from '../converters/onnx/export.js';
import { loadModel } from '../converters/load.js';
import { toDag } from '../converters/dag.js';
import { loadHw } from '../src/planner/hw.js';
import { planFusion } from '../src/planner/index.js';
import { type CostContext, convSpec, costFcm, costLayer } from '../src/planner/cost.js';
import { spearman } from '../src/bench/correlation.js';

const arg = (name: string, d: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] : d; };
const dir = arg('dir', 'bench/data/h200-2026-12-01');
const hw = loadHw(arg('measured-hw', 'h100-datasheet'));
type Layer = { module: number | null; fusedGpuMs?: number };
const e2e = JSON.parse(readFileSync(join(dir, 'gpu-e2e.json'), 'utf8')) as { model: string; report: { layers: Layer[] } }[];
const mods = JSON.parse(readFileSync(join(dir, 'gpu-modules.json'), 'utf8')) as { model: string; batch: number; layers: Layer[] }[];

interface Feat { gma: number; flops: number; wg: number; disp: number; factor: number }
const data: { name: string; batch: number; feats: Feat[]; times: number[] }[] = [];
const factorOf = (kind: string) => (kind === 'pwdw' ? hw.pwdwTimeFactor : kind === 'dwpw' ? hw.dwpwTimeFactor : kind === 'pwpw' ? hw.pwpwTimeFactor : 1) ?? 1;
for (const name of Object.keys(zooModels)) {
  const path = join(tmpdir(), `${name}-calibrate.onnx`);
  writeFileSync(path, exportOnnx(zooModels[name](1)));
  const g = await loadModel(path, { batch: 1 });
  const dag = toDag(g);
  const times = (layers: Layer[]) => layers.filter((l) => l.module !== null).map((l) => (l.fusedGpuMs ?? NaN) * 1000);
  const b1 = e2e.find((x) => x.model === name), bm = mods.find((x) => x.model === name);
  const measured: [number, number[]][] = [];
  if (b1) measured.push([1, times(b1.report.layers)]);
  if (bm) measured.push([bm.batch, times(bm.layers)]);
  for (const [batch, t] of measured) {
    // The measured plans were made at the measured batch with the measured description (bench/gpu.ts planFor).
    const plan = planFusion(dag, hw, { mode: 'optimal', model: name, dtypeBytes: 4, batch });
    const ctx: CostContext = { hw, dtypeBytes: 4, objective: 'time', batch };
    const feats = plan.modules.map((m) => {
      const sp = m.layers.map((id) => convSpec(dag[id], name));
      const c = m.layers.length === 2 ? costFcm(m.kind as 'pwdw' | 'dwpw' | 'pwpw', sp[0], sp[1], ctx)! : costLayer(sp[0], ctx, name);
      return { gma: c.gma, flops: c.flops, wg: c.workgroups, disp: c.dispatches, factor: factorOf(m.kind) };
    });
    if (t.length !== feats.length) { console.log(`${name} b${batch}: measured modules differ from the plan (another --measured-hw?): skipped`); continue; }
    data.push({ name, batch, feats, times: t });
  }
}
const est = (f: Feat, bw: number, ratio: number, d: number, batch: number) =>
  f.factor * Math.max((f.gma * 4 * batch) / (bw * 1e3), (f.flops * batch) / (ratio * bw * 1e3)) / Math.min(1, (f.wg * batch) / hw.sms) + f.disp * d;
console.log(`models ${[...new Set(data.map((d) => d.name))].join(', ')}; rows: flops per byte, then Spearman per model at each batch`);
let best = { ratio: 0, min: -2 };
for (const ratio of [1, 2, 3, 4, 6, 8, 12, 16, 28]) {
  const rhos = data.map((d) => ({ b: d.batch, r: spearman(d.feats.map((f) => est(f, 1000, ratio, 0, d.batch)), d.times) }));
  const min = Math.min(...rhos.map((x) => x.r));
  if (min > best.min) best = { ratio, min };
  console.log(`  ${String(ratio).padStart(3)}: ${rhos.map((x) => `b${x.b} ${x.r.toFixed(2)}`).join('  ')}`);
}
let fit = { bw: 0, d: 0, rms: Infinity };
for (let bw = 100; bw <= 3000; bw += 100) for (let d = 0; d <= 20; d++) {
  let e = 0, n = 0;
  for (const x of data) x.feats.forEach((f, i) => { if (x.times[i] > 0) { e += Math.log(est(f, bw, best.ratio, d, x.batch) / x.times[i]) ** 2; n++; } });
  const rms = Math.sqrt(e / n);
  if (rms < fit.rms) fit = { bw, d, rms };
}
console.log(`best balance ${best.ratio} flops/byte (lowest rho ${best.min.toFixed(2)}); fit: dram_GBps::${fit.bw} fp32_GFLOPS::${fit.bw * best.ratio} dispatch_us::${fit.d} (rms log error ${fit.rms.toFixed(2)})`);
