// End to end through the host path, per model and batch, in one process: what run() costs with each way of getting
// data in and out, next to the GPU time of one pass.
//   host        Float32Array in, outputs read back (the default upload path), fused plan; and unfused; and with
//               the dispatches encoded in the run itself instead of during the run before (encodeAhead: false)
//   upload:P    the same with upload path P (write-buffer, staging-ring, mapped-at-creation)
//   image       Uint8Array NHWC bytes in (converted and normalised on the GPU), outputs read back
//   host, input in staging memory
//               the input written by the caller into the staging memory the session lends (Session.stagingInputs;
//               its writing not timed: a decoder would write there), outputs read back
//   gpu         a GPUBuffer in, outputs copied to a GPUBuffer, then queue.onSubmittedWorkDone(): GPU-resident
//               input and output, as PyTorch's figures with the input on the GPU
//   fp16 host / fp16 unfused host
//               the same in half precision (f16 storage, f32 accumulation), where the adapter has shader-f16
//               (--precisions fp32 leaves them out); its GPU pass time is reported as gpuPassMsFp16
//   host / gpu, pool not folded
//               the fused rows with the head's pointwise Conv and global average pool as two dispatches (foldPool:
//               false; src/rewrite/pointwise-mean.ts), its GPU pass alternated with the default's as gpuPassMsPoolNotFolded
//   host / gpu, first submit F, then ...
//               with --first-submit F[:E]: the fused host and gpu rows with the first part of F dispatches, then
//               parts of E (0: the rest in one submit)
//   host, K sub-batches of B/K
//               the fused host row with each batch run as K inferences in flight on an executor at batch B/K, the host
//               copy of one overlapping the GPU's work on the one before (SessionOptions.subBatches;
//               src/runtime/sub-batch.ts), for each K of --sub-batches (default 2,4,8) dividing the batch, batch > 1;
//               and the gpu row at the K that subBatches 'auto' picks. Every other row is unsplit (subBatches 1), as
//               is the GPU pass; gpuPassMsSplit gives the split runs' GPU time (K sub-batch passes).
// Timed as runBench times (src/bench/bench.ts timeContestants: blocks of 10 in a row, rotated, medians), with each
// variant's host time split (upload, encode, submit, wait, read; Session.hostTimes; medians part by part) and, at
// batch 1, throughput with
// --concurrency runs in flight against one at a time.
//
// Models: the zoo (fixtures/zoo.ts, generated here; zooFoldModels by name), or with --onnx-dir DIR the files DIR/<model>-b<batch>.onnx that
// bench/pytorch-reference.py --export DIR writes (torchvision's own models, shufflenet_v2_x1_0 included).
//
// Run (GPU machine, see BENCHMARKS.md): npm run build; then on the device
//   source .gpu/enter.sh && node dist/bench/host-path.js --out $OUT [--models a,b] [--batches 1,32] [--runs 100]
//   [--warmup 10] [--hw h100] [--concurrency 4] [--onnx-dir DIR] [--submit-every 0,6] [--first-submit 6,8:12,2:0:2]
//   [--sub-batches 2,4,8]
// Writes <out>/host-path.json and prints a summary.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zooFoldModels, zooModels } from '../fixtures/zoo.js';
import { exportOnnx } from '../converters/onnx/export.js';
import { loadModel } from '../src/graph/load.js';
import { benchInputs, throughput, timeContestants, type Contestant } from '../src/bench/bench.js';
import { median } from '../src/bench/stats.js';
import { loadHw } from '../src/planner/hw.js';
import { planFusion } from '../src/planner/index.js';
import { toDag } from '../src/planner/to-dag.js';
import { createSession, subBatchesFor } from '../src/pipeline/session.js';
import { RequestBatcher } from '../src/pipeline/batching.js';
import { tunePlan } from '../src/tune/tune.js';
import type { Session } from '../src/runtime/executor.js';
import { passGpuMs } from '../src/runtime/profile.js';
import { uploadPaths, type HostTimes } from '../src/runtime/transfer.js';
import { acquireGpu, describeDevice, releaseGpu } from '../src/runtime/device.js';
import { elementBytes } from '../src/pipeline/pipeline.js';
import { batchOf } from '../src/graph/util.js';
import type { Graph } from '../src/graph/ir.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
}

const out = arg('out', process.env.OUT ?? join(tmpdir(), 'fcm-host-path'));
const onnxDir = arg('onnx-dir', '');
const models = arg('models', onnxDir ? 'mobilenet_v2,mobilenet_v3_large,mnasnet1_0,efficientnet_b0,shufflenet_v2_x1_0' : Object.keys(zooModels).join(',')).split(',');
const batches = arg('batches', '1,32').split(',').map(Number);
const runs = Number(arg('runs', '100'));
const warmup = Number(arg('warmup', '10'));
const hwName = arg('hw', 'h100');
const concurrency = Number(arg('concurrency', '4'));
const precisions = arg('precisions', 'fp32,fp16').split(',');
// --keep-f32 auto|none: the fp16 rows' SessionOptions.fp16.keepF32 (auto: the calibrated f32 islands, which may keep
// every tensor f32; none: every tensor f16). The count kept is printed with the fp16 rows.
const keepF32 = arg('keep-f32', 'auto') as 'auto' | 'none';
// Extra fused host rows with other submit sizes (dispatches per command buffer; 0: one submit per run).
const submitSizes = arg('submit-every', '').split(',').filter((v) => v !== '').map(Number);
// --tune: also the plan tuned on this GPU (src/tune/tune.ts: each FCM timed against its two layers, losers unfused).
const tune = process.argv.includes('--tune');
// Extra fused host and GPU-resident rows with a first part of F dispatches, then parts of E (F:E; E 0 or left out:
// the rest in one), e.g. --first-submit 6,6:12 (executor.ts firstSubmit).
// F:E:G: parts growing G-fold from the first (executor.ts submitGrowth), capped at E where E is not 0.
const firstSubmits = arg('first-submit', '').split(',').filter((v) => v !== '').map((v) => {
  const [f, e, gr] = v.split(':').map(Number);
  return { firstSubmit: f, submitEvery: e ?? 0, ...(gr ? { submitGrowth: gr } : {}) };
});
// Split rows: each batch as K sub-batches in flight (SessionOptions.subBatches), for each K dividing the batch.
const subBatchList = arg('sub-batches', '2,4,8').split(',').filter((v) => v !== '').map(Number);
mkdirSync(out, { recursive: true });

async function graphOf(name: string, batch: number): Promise<{ g: Graph; path: string }> {
  if (onnxDir) {
    const path = join(onnxDir, `${name}-b${batch}.onnx`);
    if (!existsSync(path)) throw new Error(`${path} is missing: run bench/pytorch-reference.py --export ${onnxDir} first`);
    return { g: await loadModel(path, { batch }), path };
  }
  const path = join(tmpdir(), `${name}-b${batch}.onnx`);
  // --models may name the zoo's fold models too (shufflenet_v2_x1_0, resnet18, regnet_x_400mf); the default is zooModels.
  const make = zooModels[name] ?? zooFoldModels[name];
  if (!make) throw new Error(`unknown model ${name}: not in fixtures/zoo.ts`);
  writeFileSync(path, exportOnnx(make(batch)));
  return { g: await loadModel(path, { batch }), path };
}

const split = (a: HostTimes, b: HostTimes) => {
  const n = Math.max(1, b.runs - a.runs);
  return { uploadMs: (b.uploadMs - a.uploadMs) / n, encodeMs: (b.encodeMs - a.encodeMs) / n, submitMs: (b.submitMs - a.submitMs) / n, waitMs: (b.waitMs - a.waitMs) / n, readMs: (b.readMs - a.readMs) / n };
};

const ctx = await acquireGpu();
const device = ctx.device;
console.log(`device: ${ctx.adapterInfo.description || ctx.adapterInfo.vendor}; ${describeDevice(ctx)}`);
const report: unknown[] = [];
const fmt = (v: number) => v.toFixed(3);

for (const name of models) {
  for (const batch of batches) {
    const { g, path } = await graphOf(name, batch);
    const hw = loadHw(hwName);
    const plan = planFusion(toDag(g), hw, { mode: 'optimal', model: name, dtypeBytes: 4, batch: batchOf(g) });
    const inputs = benchInputs(g);
    const x = g.inputs[0];
    const shape = g.tensors.get(x)!.shape;
    const n = shape.reduce((a, c) => a * c, 1);
    const sessions: Session[] = [];
    // Unsplit unless a row says otherwise: the rows compare ways of getting data in and out of one batch-B pass.
    const make = async (o: Parameters<typeof createSession>[1]) => { const s = await createSession(path, { hw, batch, subBatches: 1, ...o }); sessions.push(s); return s; };
    try {
      const fused = await make({ plan, maxInFlight: Math.max(2, concurrency) });
      const unfused = await make({ plan: 'unfused' });
      const live = await make({ plan, encodeAhead: false });
      // Squeeze-excite blocks as one dispatch (off by default: src/rewrite/squeeze-excite.ts).
      const se = await make({ plan, squeezeExcite: true });
      // The head's pointwise Conv and global average pool as two dispatches (on by default: src/rewrite/pointwise-mean.ts).
      const noPoolFold = await make({ plan, foldPool: false });
      const tunedRows: [Contestant, Session][] = [];
      if (tune) {
        const t0 = performance.now();
        const tuned = await tunePlan(g, hw, { model: name });
        const fusedCount = tuned.plan.modules.filter((m) => m.kind === 'pwdw' || m.kind === 'dwpw' || m.kind === 'pwpw').length;
        console.log(`${name} b${batch}: tuned in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${fusedCount} fused modules kept, ${tuned.excluded.length} pairs excluded`);
        const ts = await make({ plan: tuned.plan });
        tunedRows.push(
          [{ name: 'tuned host', run: async () => { await ts.run(inputs); } }, ts],
          [{ name: 'tuned gpu', run: async () => { await ts.run({ [x]: gin }, { outputLocation: 'gpu', outputBuffers: { [y]: gout } }); await device.queue.onSubmittedWorkDone(); } }, ts],
        );
      }
      const bySubmit: [Contestant, Session][] = [];
      for (const every of submitSizes) {
        const s = await make({ plan, submitEvery: every });
        bySubmit.push([{ name: `host, submit every ${every}`, run: async () => { await s.run(inputs); } }, s]);
      }
      const byFirst: [Contestant, Session][] = [];
      for (const o of firstSubmits) {
        const s = await make({ plan, ...o, maxInFlight: Math.max(2, concurrency) });
        const growth = 'submitGrowth' in o ? `, growing x${o.submitGrowth}` : '';
        const parts = `first submit ${o.firstSubmit}, then ${o.submitEvery ? `every ${o.submitEvery}` : 'the rest'}${growth}`;
        byFirst.push(
          [{ name: `host, ${parts}`, run: async () => { await s.run(inputs); } }, s],
          [{ name: `gpu, ${parts}`, run: async () => { await s.run({ [x]: gin }, { outputLocation: 'gpu', outputBuffers: { [y]: gout } }); await device.queue.onSubmittedWorkDone(); } }, s],
        );
      }
      const bySplit: [Contestant, Session][] = [];
      const splitSessions: [number, Session][] = [];
      const autoK = subBatchesFor(g, {});
      for (const k of subBatchList) {
        if (batch < 2 || k < 2 || batch % k !== 0) continue;
        const s = await make({ plan, subBatches: k });
        splitSessions.push([k, s]);
        bySplit.push([{ name: `host, ${k} sub-batches of ${batch / k}`, run: async () => { await s.run(inputs); } }, s]);
        if (k === autoK) bySplit.push([{ name: `gpu, ${k} sub-batches of ${batch / k}`, run: async () => { await s.run({ [x]: gin }, { outputLocation: 'gpu', outputBuffers: { [y]: gout } }); await device.queue.onSubmittedWorkDone(); } }, s]);
      }
      const byPath = new Map<string, Session>();
      for (const p of uploadPaths) byPath.set(p, await make({ plan, upload: p }));
      const image = await make({ plan, imageInputs: { [x]: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } } });
      const pixels = Uint8Array.from({ length: n }, (_, i) => (i * 2654435761) >>> 24);
      const G = GPUBufferUsage;
      const gin = device.createBuffer({ size: 4 * n, usage: G.STORAGE | G.COPY_SRC | G.COPY_DST });
      device.queue.writeBuffer(gin, 0, inputs[x]);
      const y = g.outputs[0];
      const yBytes = 4 * g.tensors.get(y)!.shape.reduce((a, c) => a * c, 1);
      const gout = device.createBuffer({ size: yBytes, usage: G.STORAGE | G.COPY_SRC | G.COPY_DST });
      const half: [Contestant, Session][] = [];
      if (precisions.includes('fp16') && device.features.has('shader-f16')) {
        // A failure here (a kernel the f16 path lacks) costs the fp16 rows only, not the run.
        try {
          const plan16 = planFusion(toDag(g), hw, { mode: 'optimal', model: name, dtypeBytes: elementBytes('fp16'), tileBytes: 4, batch: batchOf(g) });
          const f16 = await make({ plan: plan16, precision: 'fp16', fp16: { keepF32 } });
          const u16 = await make({ plan: 'unfused', precision: 'fp16', fp16: { keepF32 } });
          await f16.run(inputs);
          console.log(`${name} b${batch}: fp16 (keepF32 ${keepF32}) keeps ${f16.stats().f32Tensors.length} tensors f32 fused, ${u16.stats().f32Tensors.length} unfused`);
          half.push(
            [{ name: 'fp16 host', run: async () => { await f16.run(inputs); } }, f16],
          [{ name: 'fp16 unfused host', run: async () => { await u16.run(inputs); } }, u16],
          );
        } catch (e) {
          console.log(`${name} b${batch}: fp16 left out: ${(e as Error).message}`);
        }
      }
      const contestants: [Contestant, Session][] = [
        [{ name: 'host', run: async () => { await fused.run(inputs); } }, fused],
        ...bySplit,
        [{ name: 'unfused host', run: async () => { await unfused.run(inputs); } }, unfused],
        [{ name: 'host, encoded in the run', run: async () => { await live.run(inputs); } }, live],
        ...[...byPath].map(([p, s]): [Contestant, Session] => [{ name: `upload:${p}`, run: async () => { await s.run(inputs); } }, s]),
        [{ name: 'image', run: async () => { await image.run({ [x]: pixels }); } }, image],
        [{ name: 'gpu', run: async () => { await fused.run({ [x]: gin }, { outputLocation: 'gpu', outputBuffers: { [y]: gout } }); await device.queue.onSubmittedWorkDone(); } }, fused],
        [{ name: 'gpu, encoded in the run', run: async () => { await live.run({ [x]: gin }, { outputLocation: 'gpu', outputBuffers: { [y]: gout } }); await device.queue.onSubmittedWorkDone(); } }, live],
        // The input produced where the upload copies from (Session.stagingInputs): the caller's producer writes there,
        // so producing it is not timed, and the run copies nothing on the host.
        [{ name: 'host, input in staging memory', run: async () => { const v = await fused.stagingInputs(); await fused.run({ [x]: v[x] }); } }, fused],
        [{ name: 'host, squeeze-excite folded', run: async () => { await se.run(inputs); } }, se],
        [{ name: 'gpu, squeeze-excite folded', run: async () => { await se.run({ [x]: gin }, { outputLocation: 'gpu', outputBuffers: { [y]: gout } }); await device.queue.onSubmittedWorkDone(); } }, se],
        [{ name: 'host, pool not folded', run: async () => { await noPoolFold.run(inputs); } }, noPoolFold],
        [{ name: 'gpu, pool not folded', run: async () => { await noPoolFold.run({ [x]: gin }, { outputLocation: 'gpu', outputBuffers: { [y]: gout } }); await device.queue.onSubmittedWorkDone(); } }, noPoolFold],
        ...tunedRows,
        ...bySubmit,
        ...byFirst,
        ...half,
      ];
      // Host split of each run of each contestant (its warm-up runs come first: timeContestants' warm-up rounds).
      const splits = contestants.map(() => [] as ReturnType<typeof split>[]);
      const wrapped: Contestant[] = contestants.map(([c, s], i) => ({
        name: c.name,
        run: async () => {
          const a = s.hostTimes();
          await c.run();
          splits[i].push(split(a, s.hostTimes()));
        },
      }));
      const times = await timeContestants(wrapped, runs, warmup, undefined, 10);
      const passMs: number[] = [];
      // The GPU pass with and without the pool fold, alternated so that clocks and heat fall on both alike.
      const passMsNoPoolFold: number[] = [];
      for (let i = 0; i < 30; i++) { passMs.push(await passGpuMs(fused, inputs)); passMsNoPoolFold.push(await passGpuMs(noPoolFold, inputs)); }
      // The split runs' GPU time: K passes of the sub-batch executor each (src/runtime/profile.ts passGpuMs).
      const gpuPassMsSplit: Record<string, number> = {};
      for (const [k, s] of splitSessions) {
        const ms: number[] = [];
        for (let i = 0; i < 10; i++) ms.push(await passGpuMs(s, inputs));
        gpuPassMsSplit[k] = median(ms);
      }
      const passMs16: number[] = [];
      if (half.length) for (let i = 0; i < 30; i++) passMs16.push(await passGpuMs(half[0][1], inputs));
      const rows = contestants.map(([c, s], i) => ({
        variant: c.name, medianMs: median(times[i]), dispatches: s.stats().dispatchesPerRun, subBatches: s.stats().subBatches,
        // Medians over the timed runs, part by part.
        host: Object.fromEntries(['uploadMs', 'encodeMs', 'submitMs', 'waitMs', 'readMs'].map((k) => [k, median(splits[i].slice(warmup).map((h) => h[k as 'uploadMs']))])),
      }));
      const tput = batch === 1 && concurrency > 1 ? await throughput(fused, inputs, batch, concurrency, Math.max(runs, 4 * concurrency)) : undefined;
      // The same requests batched on the fly (src/pipeline/batching.ts), where the batch-`concurrency` file exists.
      let batched: Awaited<ReturnType<typeof throughput>> | undefined;
      let batchRunMs: number | undefined;
      let batchStats: ReturnType<RequestBatcher['stats']> | undefined;
      const batcherOne = { calls: 0, ms: 0 }, batcherMany = { calls: 0, ms: 0 };
      const manyPath = onnxDir ? join(onnxDir, `${name}-b${concurrency}.onnx`) : '';
      if (tput && existsSync(manyPath)) {
        const many = await createSession(manyPath, { hw, batch: concurrency });
        sessions.push(many);
        const batcher = new RequestBatcher(fused, many, concurrency);
        // Each session's run() as the batcher calls it: how many, and how long from call to result (ms).
        const timedRun = (s: Session, t: { calls: number; ms: number }) => {
          const run = s.run.bind(s);
          s.run = (async (...a: Parameters<Session['run']>) => {
            const t0 = performance.now();
            try { return await run(...a); } finally { t.calls++; t.ms += performance.now() - t0; }
          }) as Session['run'];
          return () => { delete (s as { run?: unknown }).run; };
        };
        const undo = [timedRun(fused, batcherOne), timedRun(many, batcherMany)];
        try {
          batched = await throughput(batcher, inputs, 1, concurrency, Math.max(runs, 4 * concurrency));
        } finally {
          for (const u of undo) u();
        }
        // The batch session alone, one run at a time: what a full batch costs end to end (its images per second bound
        // what batching can reach).
        const packed = { [x]: new Float32Array(n * concurrency).fill(0.5) };
        const [manyMs] = await timeContestants([{ name: 'batch session', run: async () => { await many.run(packed); } }], runs, warmup, undefined, 10);
        batchRunMs = median(manyMs);
        batchStats = batcher.stats();
      }
      const dispatches = fused.stats().dispatchesPerRun;
      report.push({ model: name, batch, source: onnxDir ? 'torchvision onnx' : 'zoo', dispatches, gpuPassMs: median(passMs), gpuPassMsFp16: passMs16.length ? median(passMs16) : undefined, gpuPassMsPoolNotFolded: median(passMsNoPoolFold), gpuPassMsSplit, autoSubBatches: autoK, rows, throughput: tput, batchedThroughput: batched, batchRunMs, batchStats, batcherRuns: { one: batcherOne, many: batcherMany } });
      console.log(`${name} b${batch}: GPU pass ${fmt(median(passMs))} ms${passMs16.length ? ` (fp16 ${fmt(median(passMs16))} ms)` : ''}, ${dispatches} dispatches`
        + `; pool not folded ${fmt(median(passMsNoPoolFold))} ms, ${noPoolFold.stats().dispatchesPerRun} dispatches`
        + `${splitSessions.length ? `; split: ${Object.entries(gpuPassMsSplit).map(([k, ms]) => `${k} sub-batches ${fmt(ms)} ms`).join(', ')} of GPU passes; subBatches 'auto' picks ${autoK}` : ''}`);
      for (const r of rows) {
        const h = r.host as Record<string, number>;
        console.log(`  ${r.variant.padEnd(28)} ${fmt(r.medianMs).padStart(9)} ms  (upload ${fmt(h.uploadMs)} encode ${fmt(h.encodeMs)} submit ${fmt(h.submitMs)} wait ${fmt(h.waitMs)} read ${fmt(h.readMs)}; encode per dispatch ${(1000 * h.encodeMs / r.dispatches).toFixed(1)} us)`);
      }
      if (tput) console.log(`  throughput: ${tput.imagesPerSecond.toFixed(0)} images/s with ${concurrency} in flight, ${tput.sequentialImagesPerSecond.toFixed(0)} one at a time (${tput.ratio.toFixed(2)}x)`);
      if (batched) console.log(`  batched on the fly (up to ${concurrency}): ${batched.imagesPerSecond.toFixed(0)} images/s, ${batched.sequentialImagesPerSecond.toFixed(0)} one at a time in the same rounds (${batched.ratio.toFixed(2)}x); a batch-${concurrency} run alone ${fmt(batchRunMs!)} ms (${(1000 * concurrency / batchRunMs!).toFixed(0)} images/s); ${JSON.stringify(batchStats)}; batch-1 runs ${batcherOne.calls} at ${fmt(batcherOne.ms / Math.max(1, batcherOne.calls))} ms, batch-${concurrency} runs ${batcherMany.calls} at ${fmt(batcherMany.ms / Math.max(1, batcherMany.calls))} ms from call to result`);
      gin.destroy();
      gout.destroy();
    } finally {
      for (const s of sessions) s.dispose();
    }
    writeFileSync(join(out, 'host-path.json'), JSON.stringify({ device: ctx.adapterInfo, features: describeDevice(ctx), hw: hwName, runs, warmup, concurrency, results: report }, null, 1));
  }
}
await releaseGpu();
