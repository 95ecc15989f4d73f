// Time to the first result: createSession (import, planning, pipelines compiled, buffers made) and the first run(),
// in this process, for one model, with pipelines compiled one by one (createComputePipeline) or all at once
// (createComputePipelineAsync; FCM_OPT_ASYNC_COMPILE=0|1 picks, src/runtime/gpu.ts asyncCompile). Run each mode in
// its own process, with the driver's shader cache off for cold figures (NVIDIA: __GL_SHADER_DISK_CACHE=0):
//   for m in 0 1; do FCM_OPT_ASYNC_COMPILE=$m __GL_SHADER_DISK_CACHE=0 node dist/bench/first-run.js MODEL [--hw h100] [--precision fp16]; done
// Prints one JSON line: the mode, pipelines compiled, createSession ms, first run ms, and a second run's ms.
// --watch-s N: then N seconds of runs, the heated GPU pass timed every half second (`watch`: [s, ms] pairs): how long
// the process takes to reach its steady speed. On a fresh NVIDIA machine (no disk cache yet) the first fp16 process of
// MobileNetV2 at batch 32 started 4x slower and needed ~18 s (BENCHMARKS.md, Method); __GL_SHADER_DISK_CACHE=0 makes
// every process a first one. --batch and --keep-f32 (fp16: auto or none) as the other benches take them.
import { createSession } from '../src/pipeline/session.js';
import { acquireGpu, releaseGpu } from '../src/runtime/device.js';
import { asyncCompile } from '../src/runtime/gpu.js';
import { benchInputs } from '../src/bench/bench.js';
import { loadModel } from '../src/graph/load.js';
import { passGpuMs } from '../src/runtime/profile.js';

const model = process.argv[2];
if (!model) throw new Error('usage: first-run.js MODEL [--hw h100] [--precision fp16]');
const arg = (name: string, def: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] : def; };
const ctx = await acquireGpu();
const batch = Number(arg('batch', '1')), watchS = Number(arg('watch-s', '0'));
const g = await loadModel(model, { batch });
const t0 = performance.now();
const s = await createSession(model, { batch, hw: arg('hw', 'h100'), precision: arg('precision', 'fp32') as 'fp32' | 'fp16', subBatches: 1, fp16: { keepF32: arg('keep-f32', 'auto') as 'auto' | 'none' } });
const t1 = performance.now();
const feeds = benchInputs(g);
await s.run(feeds);
const t2 = performance.now();
await s.run(feeds);
const t3 = performance.now();
const watch: [number, number][] = [];
for (let last = -1; performance.now() - t3 < watchS * 1000;) {
  await s.run(feeds);
  const at = (performance.now() - t3) / 1000;
  if (at - last >= 0.5) { last = at; watch.push([+at.toFixed(2), +(await passGpuMs(s)).toFixed(3)]); }
}
console.log(JSON.stringify({
  model, async: asyncCompile(ctx), adapter: ctx.adapterInfo.description || ctx.adapterInfo.vendor, pipelines: s.stats().pipelinesCreated,
  createMs: +(t1 - t0).toFixed(1), firstRunMs: +(t2 - t1).toFixed(1), toFirstResultMs: +(t2 - t0).toFixed(1), secondRunMs: +(t3 - t2).toFixed(2),
  ...(watch.length ? { watch } : {}),
}));
s.dispose();
await releaseGpu();
