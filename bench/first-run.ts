// Time to the first result: createSession (import, planning, pipelines compiled, buffers made) and the first run(),
// in this process, for one model, with pipelines compiled one by one (createComputePipeline) or all at once
// (createComputePipelineAsync; FCM_OPT_ASYNC_COMPILE=0|1 picks, src/runtime/gpu.ts asyncCompile). Run each mode in
// its own process, with the driver's shader cache off for cold figures (NVIDIA: __GL_SHADER_DISK_CACHE=0):
//   for m in 0 1; do FCM_OPT_ASYNC_COMPILE=$m __GL_SHADER_DISK_CACHE=0 node dist/bench/first-run.js MODEL [--hw h100] [--precision fp16]; done
// Prints one JSON line: the mode, pipelines compiled, createSession ms, first run ms, and a second run's ms.
import { createSession } from '../src/pipeline/session.js';
import { acquireGpu, releaseGpu } from '../src/runtime/device.js';
import { asyncCompile } from '../src/runtime/gpu.js';
import { benchInputs } from '../src/bench/bench.js';
import { loadModel } from '../src/graph/load.js';

const model = process.argv[2];
if (!model) throw new Error('usage: first-run.js MODEL [--hw h100] [--precision fp16]');
const arg = (name: string, def: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] : def; };
const ctx = await acquireGpu();
const g = await loadModel(model);
const t0 = performance.now();
const s = await createSession(model, { hw: arg('hw', 'h100'), precision: arg('precision', 'fp32') as 'fp32' | 'fp16' });
const t1 = performance.now();
const feeds = benchInputs(g);
await s.run(feeds);
const t2 = performance.now();
await s.run(feeds);
const t3 = performance.now();
console.log(JSON.stringify({
  model, async: asyncCompile(ctx), adapter: ctx.adapterInfo.description || ctx.adapterInfo.vendor, pipelines: s.stats().pipelinesCreated,
  createMs: +(t1 - t0).toFixed(1), firstRunMs: +(t2 - t1).toFixed(1), toFirstResultMs: +(t2 - t0).toFixed(1), secondRunMs: +(t3 - t2).toFixed(2),
}));
s.dispose();
await releaseGpu();
