// The int8 speed check: the int8 plan (integer kernels) against the fp32 plan (the same model dequantized,
// float kernels), fused and unfused, in one process, interleaved. Model (--model): mob_v1, the FusePlanner reference's
// int8 MobileNetV1 rebuilt by the TFLite fixture writer (fixtures/tflite-builder.ts), or mobilenet_v2, an int8
// MobileNetV2 written by the same (buildMobileNetV2Int8), both 224x224 uint8 in. --tune: the int8 and the fp32 plans
// are also tuned on this GPU (src/tune/tune.ts) and timed alongside.
// After the timing, each session's structure and host split per run (--host-runs, one run at a time).
//   npm run build; node dist/bench/int8.js [--model mob_v1|mobilenet_v2] [--runs 50] [--warmup 10] [--hw h100] [--tune] [--host-runs 20] [--size 224] [--batch 1] [--out DIR]
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../src/graph/load.js';
import { buildMobileNetV2Int8, buildSeedMobileNetV1 } from '../fixtures/tflite-builder.js';
import { median, p90 } from '../src/bench/stats.js';
import { timeContestants } from '../src/bench/bench.js';
import { createInt8Session, createSession } from '../src/pipeline/session.js';
import { releaseGpu } from '../src/runtime/device.js';
import { mulberry32 } from '../fixtures/rng.js';
import { quantize } from '../src/quant/reference.js';
import { tunePlan } from '../src/tune/tune.js';
import { loadHw } from '../src/planner/hw.js';
import { prepareGraph } from '../src/graph/prepare.js';
import { dequantizeGraph } from '../src/graph/passes/dequantize.js';
import type { Plan } from '../src/planner/plan.js';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const runs = Number(arg('runs', '50')), warmup = Number(arg('warmup', '10')), hw = arg('hw', 'h100'), out = arg('out', '');

const modelName = arg('model', 'mob_v1');
if (modelName !== 'mob_v1' && modelName !== 'mobilenet_v2') throw new Error(`--model: mob_v1 or mobilenet_v2, not ${modelName}`);
// --size: another input size (a multiple of 32), e.g. 32 for the host-side figures on a software adapter.
const size = process.argv.includes('--size') ? Number(arg('size', '224')) : undefined;
// --batch: the model's batch (its inputs and outputs re-shaped at import).
const batch = Number(arg('batch', '1'));
const g = await loadModel(modelName === 'mob_v1' ? (size ? buildSeedMobileNetV1(undefined, size) : buildSeedMobileNetV1()) : buildMobileNetV2Int8(undefined, size),
  { source: `${modelName}_int8.tflite`, batch });
const input = g.inputs[0];
const n = g.tensors.get(input)!.shape.reduce((a, b) => a * b, 1);
const u = mulberry32(3);
const x = Float32Array.from({ length: n }, () => u() * 2 - 1);

// The model's own input type is uint8 (camera bytes): the integer plan also timed on those, quantized once here
// (the float feed costs a host-side quantization of 150k values per run, bit-exact with TFLite).
const tin = g.tensors.get(input)!;
const xq = tin.dtype === 'uint8' || tin.dtype === 'int8' ? quantize(x, { scale: tin.quant!.scale[0], zeroPoint: tin.quant!.zeroPoint[0] ?? 0 }, tin.dtype) : undefined;
const i8f = await createInt8Session(g, { plan: 'auto', hw });
const i8u = await createInt8Session(g, { plan: 'unfused', hw });
const f32f = await createSession(g, { plan: 'auto', hw, int8: 'dequantize' });
const f32u = await createSession(g, { plan: 'unfused', hw, int8: 'dequantize' });
// Tuned plans: the integer one on the integer kernels, the float one on the dequantized graph's float kernels.
const tuned: { i8?: Plan; f32?: Plan } = {};
if (process.argv.includes('--tune')) {
  const log = (l: string) => console.log(l);
  console.log('tuning the int8 plan:');
  tuned.i8 = (await tunePlan(g, loadHw(hw), { model: `${modelName}_int8`, log })).plan;
  console.log('tuning the fp32 plan:');
  tuned.f32 = (await tunePlan(prepareGraph(dequantizeGraph(g)), loadHw(hw), { model: `${modelName}_fp32`, log })).plan;
}
const i8t = tuned.i8 ? await createInt8Session(g, { plan: tuned.i8, hw }) : undefined;
const f32t = tuned.f32 ? await createSession(g, { plan: tuned.f32, hw, int8: 'dequantize' }) : undefined;
const contestants = [
  ...(i8t ? [{ name: 'int8 tuned', run: async () => { await i8t.run({ [input]: x }); } }] : []),
  ...(f32t ? [{ name: 'fp32 tuned (dequantized)', run: async () => { await f32t.run({ [input]: x }); } }] : []),
  { name: 'int8 fused', run: async () => { await i8f.run({ [input]: x }); } },
  { name: 'int8 unfused', run: async () => { await i8u.run({ [input]: x }); } },
  ...(xq ? [{ name: `int8 fused (${tin.dtype} input)`, run: async () => { await i8f.run({ [input]: xq }); } }] : []),
  { name: 'fp32 fused (dequantized)', run: async () => { await f32f.run({ [input]: x }); } },
  { name: 'fp32 unfused (dequantized)', run: async () => { await f32u.run({ [input]: x }); } },
];
const a = await i8f.run({ [input]: x }), b = await i8u.run({ [input]: x });
const same = Object.keys(a).every((k) => a[k].raw !== undefined && b[k].raw !== undefined
  ? a[k].raw!.every((v, i) => v === b[k].raw![i]) : a[k].data.every((v, i) => v === b[k].data[i]));
const times = await timeContestants(contestants, runs, warmup, undefined, 10);
const rows = contestants.map((c, i) => ({ name: c.name, medianMs: median(times[i]), p90Ms: p90(times[i]) }));
const s = {
  int8Fused: i8f.stats(), int8Unfused: i8u.stats(), fp32Fused: f32f.stats(), fp32Unfused: f32u.stats(),
  ...(i8t ? { int8Tuned: i8t.stats() } : {}), ...(f32t ? { fp32Tuned: f32t.stats() } : {}),
};
console.log(`${modelName} int8 (${size ?? 224}x${size ?? 224}, batch ${batch}), ${runs} runs after ${warmup} warm-up; int8 fused == unfused bit for bit: ${same}`);
for (const r of rows) console.log(`  ${r.name.padEnd(28)} median ${r.medianMs!.toFixed(3)} ms  p90 ${r.p90Ms!.toFixed(3)} ms`);
console.log(`  dispatches: int8 ${s.int8Fused.dispatchesPerRun}/${s.int8Unfused.dispatchesPerRun} (cmd buffers ${s.int8Fused.commandBuffersPerRun}, dot4 ${s.int8Fused.dot4}, host ${s.int8Fused.hostNodes.length}), fp32 ${s.fp32Fused.dispatchesPerRun}/${s.fp32Unfused.dispatchesPerRun}`);
// The structure of one run and its host split (ms per run, HOST_RUNS runs one at a time after the timing):
// dispatches (+ the float feed's quantizer), command buffers, waits for the GPU, and upload / encode / submit /
// wait / read, for comparing the integer schedule's host work with the float one's.
const hostRuns = Number(arg('host-runs', '20'));
const split: Record<string, { dispatches: number; feed: number; cmdBuffers: number; readBacks: number; hostMs: Record<string, number> }> = {};
for (const [name, sess, feed] of [['int8 fused', i8f, x], ['int8 fused (8-bit input)', i8f, xq], ['int8 unfused', i8u, x], ['fp32 fused', f32f, x], ['fp32 unfused', f32u, x]] as const) {
  if (!feed) continue;
  const h0 = sess.hostTimes();
  for (let i = 0; i < hostRuns; i++) await sess.run({ [input]: feed });
  const h1 = sess.hostTimes();
  const st = sess.stats();
  const per = (k: 'uploadMs' | 'encodeMs' | 'submitMs' | 'waitMs' | 'readMs') => (h1[k] - h0[k]) / hostRuns;
  const hostMs = { upload: per('uploadMs'), encode: per('encodeMs'), submit: per('submitMs'), wait: per('waitMs'), read: per('readMs') };
  const quantizer = st.inputQuantizers.length && feed instanceof Float32Array ? 1 : 0;
  split[name] = { dispatches: st.dispatchesPerRun, feed: quantizer, cmdBuffers: st.commandBuffersPerRun, readBacks: st.readBacksPerRun, hostMs };
  console.log(`  ${name.padEnd(26)} ${st.dispatchesPerRun}${quantizer ? '+1' : ''} dispatches, ${st.commandBuffersPerRun} cmd buffers, ${st.readBacksPerRun} read-back(s); host ms/run upload ${hostMs.upload.toFixed(3)} encode ${hostMs.encode.toFixed(3)} submit ${hostMs.submit.toFixed(3)} wait ${hostMs.wait.toFixed(3)} read ${hostMs.read.toFixed(3)}`);
}
if (i8t && f32t) console.log(`  tuned: int8 ${s.int8Tuned!.fusedModules} fused modules, fp32 ${tuned.f32!.modules.filter((m) => m.tuned).length}`);
if (out) writeFileSync(join(out, `int8-${modelName}.json`), JSON.stringify({ model: modelName, rows, same, stats: s, split, tuned }, null, 1));
for (const x of [i8f, i8u, f32f, f32u, i8t, f32t]) x?.dispose();
await releaseGpu();
process.exit(0);
