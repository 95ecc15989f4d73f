// The GPU benchmark, one process, on the zoo models (fixtures/zoo.ts, generated here: no model files):
//   e2e      `fcm-opt bench` (src/bench/bench.ts runBench) at batch 1: fcm-opt fused / unfused / onnxruntime
//            WebGPU / onnxruntime CPU, plus a check that the fused and unfused runs agree.
//   modules  per plan module at batch B (default 8): GPU time of the fused module and of its layers run LBL, each
//            timed alone in one pass (heated, repeated; --timing profile: median over P profiled runs, one pass per
//            dispatch); share of fused modules faster than
//            their LBL pair, median speedup; Spearman rho of the planner's estimate vs measured time.
//   bw       depthwise / pointwise kernels at a large batch: bytes moved (input + output + weights) over GPU
//            time, next to a vec4 copy kernel's bandwidth on the same device.
//
// Run (H100, see DEVELOPERS.md): npm run build; then on the device
//   source .gpu/enter.sh && node dist/bench/gpu.js --out $OUT [--models a,b] [--parts e2e,modules,bw]
//   [--runs 100] [--warmup 10] [--batch 8] [--profiles 9] [--bw-batch 32] [--hw h100] [--tune] [--heat-ms 100]
//   [--timing pass|profile] [--pass-rounds 5] [--pass-iters 20]
// Writes <out>/gpu-<part>.json and prints a summary.

import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zooModels } from '../fixtures/zoo.js';
import { exportOnnx } from '../converters/onnx/export.js';
import { loadModel } from '../src/graph/load.js';
import { runBench, joinLayers, benchInputs, sessionDrift, timeContestants, type BenchLayer } from '../src/bench/bench.js';
import { medianNodeTimes, medianProfiles, timedSession } from '../src/bench/profile.js';
import { passGpuMs } from '../src/runtime/profile.js';
import { spearman } from '../src/bench/correlation.js';
import { median } from '../src/bench/stats.js';
import { loadHw } from '../src/planner/hw.js';
import { planFusion } from '../src/planner/index.js';
import { toDag } from '../src/planner/to-dag.js';
import { applyPlan } from '../src/rewrite/apply-plan.js';
import { createSession } from '../src/pipeline/session.js';
import type { Session } from '../src/runtime/executor.js';
import { acquireGpu, releaseGpu } from '../src/runtime/device.js';
import { tunePlan } from '../src/tune/tune.js';
import { batchOf } from '../src/graph/util.js';
import type { Graph } from '../src/graph/ir.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
}

const out = arg('out', process.env.OUT ?? join(tmpdir(), 'fcm-gpu-bench'));
const models = arg('models', Object.keys(zooModels).join(',')).split(',');
const parts = new Set(arg('parts', 'e2e,modules,bw').split(','));
const runs = Number(arg('runs', '100'));
const warmup = Number(arg('warmup', '10'));
const batch = Number(arg('batch', '8'));
const profiles = Number(arg('profiles', '9'));
const bwBatch = Number(arg('bw-batch', '32'));
// --heat-ms: untimed work ahead of each profile or each session's node timing (src/bench/profile.ts); 0 times a GPU
// that idled before.
const heatMs = Number(arg('heat-ms', '100'));
// --timing pass|profile: how the per-module figures are taken (timeModules below).
const timing = arg('timing', 'pass');
if (timing !== 'pass' && timing !== 'profile') throw new Error(`--timing takes pass or profile, got ${timing}`);
const passRounds = Number(arg('pass-rounds', '5'));
const passIters = Number(arg('pass-iters', '20'));
const hwName = arg('hw', 'h100');
// --tune: every plan below is first tuned on this GPU (src/tune/tune.ts) for its batch.
const tune = process.argv.includes('--tune');
async function planFor(g: Graph, name: string) {
  const hw = loadHw(hwName);
  if (!tune) return planFusion(toDag(g), hw, { mode: 'optimal', model: name, dtypeBytes: 4, batch: batchOf(g) });
  const r = await tunePlan(g, hw, { model: name });
  console.log(`  ${name}: tuned: ${r.rows.length} fused modules timed, ${r.plan.modules.filter((m) => m.tuned).length} kept, ${r.excluded.length} left unfused`);
  return r.plan;
}
mkdirSync(out, { recursive: true });
const save = (name: string, data: unknown) => writeFileSync(join(out, `gpu-${name}.json`), JSON.stringify(data, null, 1));
const fmt = (v: number | undefined, d = 3) => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(d));

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) { d = Math.max(d, Math.abs(a[i] - b[i])); m = Math.max(m, Math.abs(b[i])); }
  return d / Math.max(m, 1e-30);
}

const fusedKinds = new Set(['pwdw', 'dwpw', 'pwpw']);

/** The zoo graph as the CLI sees it: exported to ONNX and imported back (activation patterns recognized). */
async function imported(name: string, batch: number): Promise<{ g: Graph; path: string }> {
  const path = join(tmpdir(), `${name}-b${batch}.onnx`);
  writeFileSync(path, exportOnnx(zooModels[name](batch)));
  return { g: await loadModel(path, { batch }), path };
}

async function e2e(name: string) {
  const { g, path } = await imported(name, 1);
  const hw = loadHw(hwName);
  // Fused and unfused must compute the same thing before their times mean anything.
  const plan = await planFor(g, name);
  const inputs = benchInputs(g);
  const sf = await createSession(g, { hw, plan });
  const su = await createSession(g, { hw, plan: 'unfused' });
  const yf = await sf.run(inputs), yu = await su.run(inputs);
  const diff = Math.max(...g.outputs.map((y) => maxRelDiff(yf[y].data, yu[y].data)));
  const dispatches = { fused: sf.stats().dispatchesPerRun, unfused: su.stats().dispatchesPerRun };
  // GPU time of the whole single-pass inference (median of 30), to tell GPU work from host overhead.
  const passMs = async (s: Session) => { const t: number[] = []; for (let i = 0; i < 30; i++) t.push(await passGpuMs(s)); return median(t); };
  const pass = { fused: await passMs(sf), unfused: await passMs(su) };
  // Fused against unfused alone (no onnxruntime in between), timed as runBench times: blocks of 10 runs in a row,
  // alternating which of the two goes first.
  const alone = await timeContestants([
    { name: 'fused', run: async () => { await sf.run(inputs); } },
    { name: 'unfused', run: async () => { await su.run(inputs); } },
  ], runs, warmup, undefined, 10);
  const aloneMs = { fused: median(alone[0]), unfused: median(alone[1]) };
  sf.dispose(); su.dispose();
  const report = await runBench(path, { hw: hwName, runs, warmup, plan });
  const mods = report.layers.filter((l) => l.module !== null && l.estUs !== undefined && l.fusedGpuMs !== undefined);
  const rho = mods.length > 2 ? spearman(mods.map((l) => l.estUs!), mods.map((l) => l.fusedGpuMs!)) : NaN;
  const r = report.results;
  console.log(`${name} b1: ${r.map((x) => `${x.name} ${fmt(x.medianMs)}`).join(' | ')}; dispatches ${dispatches.fused}/${dispatches.unfused}; fused-vs-unfused max rel diff ${diff.toExponential(2)}; rho(b1) ${fmt(rho, 2)}`);
  console.log(`  one-pass GPU time: fused ${fmt(pass.fused)} ms, unfused ${fmt(pass.unfused)} ms; ` +
    `fused vs unfused alone (median of ${runs}): ${fmt(aloneMs.fused)} vs ${fmt(aloneMs.unfused)} ms`);
  return { model: name, fusedVsUnfusedMaxRelDiff: diff, dispatches, passGpuMs: pass, aloneMs, spearmanB1: rho, report };
}

async function modules(name: string, batchSize: number) {
  const { g } = await imported(name, batchSize);
  const hw = loadHw(hwName);
  const plan = await planFor(g, name);
  const inputs = benchInputs(g);
  // Kernels at batch B itself, not at a sub-batch (SessionOptions.subBatches).
  const sf = await createSession(g, { hw, plan, subBatches: 1 });
  const su = await createSession(g, { hw, plan: 'unfused', subBatches: 1 });
  // --timing pass: each node's kernels alone in one heated pass (src/bench/profile.ts medianNodeTimes).
  const [pf, pu] = timing === 'pass'
    ? await medianNodeTimes([timedSession(sf), timedSession(su)], inputs, passRounds, passIters, heatMs)
    : await medianProfiles([sf, su], inputs, profiles, 30, heatMs);
  sf.dispose(); su.dispose();
  const layers: BenchLayer[] = joinLayers(plan, applyPlan(g, plan), pf, pu);
  const fusedRows = layers.filter((l) => fusedKinds.has(l.kind) && l.fusedGpuMs && l.unfusedGpuMs);
  const speedups = fusedRows.map((l) => l.unfusedGpuMs! / l.fusedGpuMs!);
  const mods = layers.filter((l) => l.module !== null && l.estUs !== undefined && l.fusedGpuMs !== undefined);
  const rho = mods.length > 2 ? spearman(mods.map((l) => l.estUs!), mods.map((l) => l.fusedGpuMs!)) : NaN;
  const sum = (k: 'fusedGpuMs' | 'unfusedGpuMs') => layers.reduce((a, l) => a + (l[k] ?? 0), 0);
  const res = {
    model: name, batch: g.tensors.get(g.inputs[0])!.shape[0], timing, heatMs, fusedModules: fusedRows.length,
    fusedFaster: speedups.filter((s) => s > 1).length, medianSpeedup: speedups.length ? median(speedups) : NaN,
    spearman: rho, gpuSumFusedMs: sum('fusedGpuMs'), gpuSumUnfusedMs: sum('unfusedGpuMs'), drift: sessionDrift(layers, fusedKinds), layers,
  };
  console.log(`${name} b${res.batch} modules: ${res.fusedFaster}/${res.fusedModules} fused faster, median speedup ${fmt(res.medianSpeedup, 2)}x, ` +
    `rho ${fmt(rho, 2)}, GPU sum fused ${fmt(res.gpuSumFusedMs)} unfused ${fmt(res.gpuSumUnfusedMs)} ms, drift ${fmt(res.drift)}` +
    `${Math.abs(res.drift - 1) > 0.05 ? ' (the sessions ran at different speeds: do not read these speedups)' : ''}`);
  return res;
}

/** GB/s of a vec4 copy kernel over `bytes` (median of 9 timed passes of 10 dispatches). */
async function copyBandwidth(bytes: number): Promise<number> {
  const ctx = await acquireGpu();
  const d = ctx.device;
  const n4 = bytes / 16;
  const src = d.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE });
  const dst = d.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE });
  const module = d.createShaderModule({ code: `
@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> b: array<vec4<f32>>;
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = g.x + g.y * nw.x * 256u;
  if (i < ${n4}u) { b[i] = a[i]; }
}` });
  const pipeline = d.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const bg = d.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: src } }, { binding: 1, resource: { buffer: dst } }] });
  const wgs = Math.ceil(n4 / 256), x = Math.min(wgs, 65535), y = Math.ceil(wgs / x);
  const qs = d.createQuerySet({ type: 'timestamp', count: 2 });
  const rb = d.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const rd = d.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const once = async (): Promise<number> => {
    const enc = d.createCommandEncoder();
    const pass = enc.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
    pass.setPipeline(pipeline); pass.setBindGroup(0, bg);
    for (let r = 0; r < 10; r++) pass.dispatchWorkgroups(x, y);
    pass.end();
    enc.resolveQuerySet(qs, 0, 2, rb, 0);
    enc.copyBufferToBuffer(rb, 0, rd, 0, 16);
    d.queue.submit([enc.finish()]);
    await rd.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(rd.getMappedRange().slice(0));
    rd.unmap();
    return Number(t[1] - t[0]) / 1e9 / 10;
  };
  // Untimed passes first, for about 300 ms: an idle GPU runs at a fraction of its clock (see bandwidth()).
  for (const t0 = performance.now(); performance.now() - t0 < 300;) await once();
  const times: number[] = [];
  for (let k = 0; k < 9; k++) times.push(await once());
  for (const b of [src, dst, rb, rd]) b.destroy();
  qs.destroy();
  return (2 * bytes) / median(times) / 1e9;
}

async function bandwidth(name: string) {
  const { g } = await imported(name, bwBatch);
  const hw = loadHw(hwName);
  const inputs = benchInputs(g);
  const s = await createSession(g, { hw, plan: 'unfused', subBatches: 1 });
  await s.run(inputs);
  // Clocks up first: an idle GPU runs at a fraction of its clock, and these profiles follow host-side setup.
  for (const t0 = performance.now(); performance.now() - t0 < 300;) await s.run(inputs);
  const [prof] = await medianProfiles([s], inputs, 5, 30, heatMs);
  const sg = s.graph;
  s.dispose();
  const bytesOf = (t: string) => 4 * (sg.tensors.get(t)?.shape ?? []).reduce((a, b) => a * b, 1);
  const rows: { node: string; kind: string; shape: string; mb: number; ms: number; gbps: number }[] = [];
  for (const e of prof) {
    const n = sg.nodes.find((x) => x.name === e.node);
    if (!n || n.op !== 'Conv' || e.gpuMs <= 0) continue;
    const ws = sg.tensors.get(n.inputs[1])!.shape;
    const xs = sg.tensors.get(n.inputs[0])!.shape;
    const group = Number(n.attrs.group ?? 1);
    const kind = group > 1 && group === xs[1] ? 'dw' : ws[2] === 1 && ws[3] === 1 && group === 1 ? 'pw' : 'conv';
    if (kind === 'conv') continue;
    const bytes = n.inputs.filter((x) => x).reduce((a, x) => a + bytesOf(x), 0) + bytesOf(n.outputs[0]);
    rows.push({ node: n.name, kind, shape: `${xs.join('x')}->${sg.tensors.get(n.outputs[0])!.shape.join('x')}`, mb: bytes / 1e6, ms: e.gpuMs, gbps: bytes / (e.gpuMs * 1e-3) / 1e9 });
  }
  const copy = await copyBandwidth(256 * 2 ** 20);
  const agg = (k: string) => {
    const r = rows.filter((x) => x.kind === k);
    const mb = r.reduce((a, x) => a + x.mb, 0), ms = r.reduce((a, x) => a + x.ms, 0);
    return { layers: r.length, mb, ms, gbps: mb / ms, best: Math.max(...r.map((x) => x.gbps)), medianGbps: median(r.map((x) => x.gbps)) };
  };
  const res = { model: name, batch: bwBatch, copyGbps: copy, dw: agg('dw'), pw: agg('pw'), rows };
  console.log(`${name} b${bwBatch} bandwidth: copy ${fmt(copy, 0)} GB/s; dw all ${fmt(res.dw.gbps, 0)} (median ${fmt(res.dw.medianGbps, 0)}, best ${fmt(res.dw.best, 0)}); ` +
    `pw all ${fmt(res.pw.gbps, 0)} (median ${fmt(res.pw.medianGbps, 0)}, best ${fmt(res.pw.best, 0)}) GB/s`);
  return res;
}

/** Median wall time of run() on a one-dispatch graph (Relu of 1000 floats): the fixed host cost per inference. */
async function fixedOverhead(): Promise<number> {
  const g: Graph = {
    name: 'relu', source: 'relu.onnx', inputs: ['x'], outputs: ['y'],
    tensors: new Map([['x', { name: 'x', dtype: 'float32', shape: [1, 1000] }], ['y', { name: 'y', dtype: 'float32', shape: [1, 1000] }]]),
    nodes: [{ name: 'relu', op: 'Relu', domain: '', inputs: ['x'], outputs: ['y'], attrs: {} }],
  };
  const s = await createSession(g, { plan: 'unfused' });
  const x = new Float32Array(1000);
  const t: number[] = [];
  for (let i = 0; i < 210; i++) { const t0 = performance.now(); await s.run({ x }); if (i >= 10) t.push(performance.now() - t0); }
  s.dispose();
  return median(t);
}

async function main() {
  const ctx = await acquireGpu();
  const overhead = await fixedOverhead();
  console.log(`fixed host cost of one run() (one Relu dispatch, 4 KB in and out): ${fmt(overhead)} ms`);
  save('overhead', { runMsOneDispatch: overhead });
  console.log(`device: ${ctx.adapterInfo.vendor} ${ctx.adapterInfo.architecture} ${ctx.adapterInfo.device} (${ctx.adapterInfo.description}); ${new Date().toISOString()}`);
  const results: Record<string, unknown[]> = { e2e: [], modules: [], bw: [] };
  for (const m of models) {
    if (!zooModels[m]) throw new Error(`unknown model ${m} (have ${Object.keys(zooModels).join(', ')})`);
    if (parts.has('e2e')) { results.e2e.push(await e2e(m)); save('e2e', results.e2e); }
    if (parts.has('modules')) { results.modules.push(await modules(m, batch)); save('modules', results.modules); }
    if (parts.has('modules1')) { results.modules.push(await modules(m, 1)); save('modules', results.modules); }
  }
  if (parts.has('bw')) { results.bw.push(await bandwidth('mobilenet_v2')); save('bw', results.bw); }
  await releaseGpu();
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
