// Checks the planner's time model where it decides: an FCM against its two layers run apart. Reads the tuner's
// measurements in hw_configs/calibration/h100-2026-12-07 (README there): for every pair `fcm-opt plan --tune`
// timed, its fused and LBL GPU times in one pass. Plans nothing: for each pair it computes the model's estimate of the
// FCM (cost.ts costFcm at its best tiles) and of the two layers (costLayer) under the description --hw, and prints the
// pairs where the model picks the slower of the two, with the time that choice costs, and the rms log error of the
// estimates against the measurements.
//   npm run build; node dist/bench/calibrate-pairs.js [--hw h100] [--dir hw_configs/calibration/h100-2026-12-07]
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
    if (f < l !== fused < lbl) {
      wrong++;
      lostUs += Math.abs(fused - lbl);
      console.log(`${model} b${batch} ${kind} ${m[2]}: measured ${fused} fused / ${lbl} LBL us, estimated ${f.toFixed(1)} / ${l.toFixed(1)}: ${f < l ? 'fuses' : 'leaves unfused'}, ${Math.abs(fused - lbl).toFixed(1)} us slower`);
    }
  }
}
console.log(`${hw.name}: ${pairs} pairs, the model picks the slower on ${wrong} (${lostUs.toFixed(1)} us in all); rms log error of the estimates ${Math.sqrt(err / (2 * pairs)).toFixed(2)}`);
