// What the f32-island calibration ('auto', src/pipeline/session.ts fp16Session) adds to creating an fp16 session:
// createSession with keepF32 'none' (no calibration) and 'auto', in one process, in this order:
//   none (cold)   pipelines of the session compiled
//   none (warm)   the same again: pipelines cached on the device; what creating a session costs besides compiling
//   auto          the calibration graph's pipelines compiled, its runs (calibration and held-out inputs), the trial
//                 sessions and their runs; the session's own pipelines already cached
//   auto (warm)   the same again, every pipeline cached: the calibration's runs and trials alone
// and the calibration alone (calibrateF16Islands, warm). auto - none (warm) is the calibration's cost over a session
// whose pipelines are compiled; auto (cold) in a fresh process (--auto-first) adds the session's own compilation.
//   node dist/bench/f16-calibration.js [MODEL] [--hw h100] [--rounds 3] [--auto-first]
// MODEL: a zoo name (fixtures/zoo.ts, default mobilenet_v2) or a model file. Prints one JSON line.
import { createSession, calibrateF16Islands } from '../src/pipeline/session.js';
import { acquireGpu, releaseGpu } from '../src/runtime/device.js';
import { zooModels } from '../fixtures/zoo.js';
import { loadModel } from '../src/graph/load.js';
import { prepareForRun } from '../src/pipeline/pipeline.js';
import { median } from '../src/bench/stats.js';
import type { Graph } from '../src/graph/ir.js';

const arg = (name: string, def: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] : def; };
const model = process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : 'mobilenet_v2';
const hw = arg('hw', 'h100');
const rounds = Number(arg('rounds', '3'));
const ctx = await acquireGpu();
const g: Graph = zooModels[model] ? zooModels[model](1) : await loadModel(model);

async function timeCreate(keepF32: 'none' | 'auto'): Promise<{ ms: number; f32: number }> {
  const t0 = performance.now();
  const s = await createSession(g, { hw, precision: 'fp16', fp16: { keepF32 } });
  const ms = performance.now() - t0;
  const f32 = s.stats().f32Tensors.length;
  s.dispose();
  return { ms, f32 };
}

const out: Record<string, unknown> = { model, adapter: ctx.adapterInfo.description || ctx.adapterInfo.vendor, hw };
if (process.argv.includes('--auto-first')) out.autoColdMs = +(await timeCreate('auto')).ms.toFixed(1);
out.noneColdMs = +(await timeCreate('none')).ms.toFixed(1);
const none: number[] = [], auto: number[] = [], cal: number[] = [];
let f32 = 0;
for (let r = 0; r < rounds; r++) {
  none.push((await timeCreate('none')).ms);
  const a = await timeCreate('auto');
  auto.push(a.ms);
  f32 = a.f32;
}
// The calibration alone (the graph as createSession plans it, calibrated unfused), warm.
const planned = await prepareForRun(g, { plan: 'auto', hw, precision: 'fp16' });
for (let r = 0; r < rounds; r++) {
  const t0 = performance.now();
  await calibrateF16Islands(ctx, planned, { precision: 'fp16' }, undefined);
  cal.push(performance.now() - t0);
}
const med = (a: number[]) => +median(a).toFixed(1);
Object.assign(out, {
  rounds, f32Tensors: f32, floatTensors: [...g.tensors.values()].filter((t) => t.dtype === 'float32').length,
  noneWarmMs: med(none), autoFirstMs: +auto[0].toFixed(1), autoWarmMs: med(auto.slice(1).length ? auto.slice(1) : auto), calibrationRunsMs: med(cal),
  autoOverNoneMs: +(median(auto.slice(1).length ? auto.slice(1) : auto) - median(none)).toFixed(1),
});
console.log(JSON.stringify(out));
await releaseGpu();
