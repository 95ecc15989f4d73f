// GPU check of the integer pointwise kernel on subgroup matrices (kernels/int8/pointwise-subgroup-matrix.ts): every
// pointwise layer shape of the int8 MobileNetV2 (fixtures/tflite-builder.ts buildMobileNetV2Int8, its real weights and
// quantization, the unfused int8 graph) at each batch, run by
//   present   the kernel the int8 schedule runs today (kernels/int8/pointwise.ts int8Pointwise: the word kernel with
//             chooseWordTile's tile, split-K for 1x1 maps),
//   words     the word kernel with each other register tile (WordTile: RF filters x PW position words),
//   smx       the subgroup-matrix kernel with the tiles chooseInt8SmxTiles picks ('auto'; '-' where it leaves the layer
//             to the present kernel) and every other tile variant that fits,
// checking every output bit-exact against the present kernel's (and, at batch 1, the present kernel against the host
// reference, src/quant/reference.ts conv), timing each on the GPU (timestamp queries: one pass of `iters` dispatches
// after a heat, median of `rounds` interleaved rounds) with its effective bandwidth. Then, unless --no-e2e, int8
// MobileNetV2 sessions (createInt8Session, unfused and fused) with and without subgroup matrices: outputs compared
// and run() wall times.
//
// Usage (on the GPU machine, DEVELOPERS.md):
//   source .gpu/enter.sh && node dist/bench/int8-subgroup-matrix.js --out $OUT
//   options: --batches 1,32  --iters 50  --rounds 3  --heat-ms 30  --budget-s 200  --timeout-s 30 (per GPU wait)
//            --model mobilenet_v2 | mob_v1 (the FusePlanner reference's int8 MobileNetV1, bench/int8.ts's default)
//            --max-shapes N  --no-variants  --no-e2e  --e2e-runs 30
//            --self-test: on a device without integer subgroup matrices, run the kernels' emulated form (plain WGSL
//            at the same offsets) instead of skipping: the harness and the kernel's indexing checked on lavapipe
//            (sessions only with --e2e: they run without subgroup matrices there).
// Exit 0: every checked output bit-exact (last line `int8 subgroup-matrix check: PASS ...`), or the device has no
// i8 -> i32 M16 K32 subgroup matrices (`... SKIPPED ...`). Exit 1: some output differs or a kernel failed (`FAIL`,
// each named above). Exit 5: no adapter, or the GPU stopped answering. Output: the log, and with --out
// int8-subgroup-matrix.json and int8-subgroup-matrix.txt there.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Graph, Tensor } from '../src/graph/ir.js';
import { loadModel } from '../src/graph/load.js';
import { graphForRun } from '../src/pipeline/pipeline.js';
import { buildMobileNetV2Int8, buildSeedMobileNetV1 } from '../fixtures/tflite-builder.js';
import { convGeom, isPointwise } from '../kernels/conv-common.js';
import type { KernelLimits } from '../kernels/program.js';
import { type Int8KernelArgs, type Int8Program, pack8, shapeArgs } from '../kernels/int8/common.js';
import { int8Pointwise, int8PointwiseWords, wordTileKey, wordTileVariants } from '../kernels/int8/pointwise.js';
import {
  type Int8SmxSupport, type Int8SmxTiles, chooseInt8SmxTiles, int8PointwiseSubgroupMatrix, int8SmxFits, int8SmxTileKey, int8SmxTileVariants,
  int8SubgroupMatrixSupport,
} from '../kernels/int8/pointwise-subgroup-matrix.js';
import { type QArray, type QType, activationRange, conv } from '../src/quant/reference.js';
import { type GpuContext, acquireGpu, probeDot4, releaseGpu, subgroupMatrixFeature } from '../src/runtime/device.js';
import { createInt8Session } from '../src/pipeline/session.js';
import { checkInt8SubgroupMatrix } from '../src/runtime/int8-subgroup-matrix-check.js';
import { compileInt8 } from '../src/runtime/compile.js';

/** The schedule's limits of this device (as src/pipeline/session.ts limitsOf). */
const compileLimits = () => ({
  ...ctx.kernelLimits, maxStorageBufferBindingSize: ctx.limits.maxStorageBufferBindingSize, maxBufferSize: ctx.limits.maxBufferSize,
  maxStorageBuffersPerShaderStage: ctx.limits.maxStorageBuffersPerShaderStage, maxBindingsPerBindGroup: ctx.limits.maxBindingsPerBindGroup,
});

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}
const batches = arg('batches', '1,32').split(',').map(Number);
const iters = Number(arg('iters', '50'));
const rounds = Number(arg('rounds', '3'));
const heatMs = Number(arg('heat-ms', '30'));
const budgetS = Number(arg('budget-s', '200'));
const outDir = arg('out', '');
const variants = !process.argv.includes('--no-variants');
const e2e = !process.argv.includes('--no-e2e');
const selfTest = process.argv.includes('--self-test');
const timeoutMs = 1000 * Number(arg('timeout-s', '30'));
const maxShapes = Number(arg('max-shapes', '1000'));
const e2eRuns = Number(arg('e2e-runs', '30'));
const modelName = arg('model', 'mobilenet_v2');
if (modelName !== 'mobilenet_v2' && modelName !== 'mob_v1') throw new Error(`--model: mobilenet_v2 or mob_v1, not ${modelName}`);
/** The model's .tflite bytes: the int8 MobileNetV2, or the FusePlanner reference's int8 MobileNetV1 (bench/int8.ts's models). */
const modelBytes = () => (modelName === 'mob_v1' ? buildSeedMobileNetV1() : buildMobileNetV2Int8());
const modelLabel = modelName === 'mob_v1' ? 'MobileNetV1' : 'MobileNetV2';

const start = performance.now();
const elapsedS = () => (performance.now() - start) / 1000;
const lines: string[] = [];
const log = (s: string) => { lines.push(s); console.log(s); };
const results: Record<string, unknown>[] = [];
const e2eResults: Record<string, unknown>[] = [];

function writeOut(): void {
  if (!outDir) return;
  try {
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, 'int8-subgroup-matrix.txt'), lines.join('\n') + '\n');
    writeFileSync(join(outDir, 'int8-subgroup-matrix.json'), JSON.stringify({ layers: results, e2e: e2eResults }, null, 1));
  } catch (e) {
    console.log(`could not write ${outDir}: ${(e as Error).message}`);
  }
}

const watchdog = setTimeout(() => {
  log(`int8 subgroup-matrix check: FAIL: watchdog: still running ${(budgetS + 25).toFixed(0)} s after the start (the GPU stopped answering?)`);
  writeOut();
  process.exit(5);
}, (budgetS + 25) * 1000);

class GpuHang extends Error {}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new GpuHang(`${what}: no answer after ${ms / 1000} s`)), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

// ---- GPU helpers (as bench/subgroup-matrix.ts) ----------------------------------------------------------------------

let ctx: GpuContext;
const G = () => ctx.device;

function buffer(bytes: number, usage: number, label: string): GPUBuffer {
  return G().createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage, label });
}

function upload(words: Uint32Array, label: string): GPUBuffer {
  const b = buffer(words.byteLength, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC, label);
  G().queue.writeBuffer(b, 0, words);
  return b;
}

async function scoped<T>(what: string, f: () => Promise<T> | T): Promise<T> {
  const d = G();
  d.pushErrorScope('validation');
  d.pushErrorScope('internal');
  d.pushErrorScope('out-of-memory');
  let value: T | undefined, thrown: unknown;
  try { value = await f(); } catch (e) { thrown = e; }
  const errs = [await d.popErrorScope(), await d.popErrorScope(), await d.popErrorScope()].filter((e) => e);
  if (thrown) throw thrown;
  if (errs.length) throw new Error(`${what}: ${errs.map((e) => e!.message.split('\n')[0]).join('; ')}`);
  return value as T;
}

const pipelineCache = new Map<string, GPUComputePipeline>();

async function pipelineOf(p: Int8Program): Promise<GPUComputePipeline> {
  const hit = pipelineCache.get(p.wgsl);
  if (hit) return hit;
  const pl = await scoped(`compiling ${p.name} (${p.cacheKey})`, async () => {
    const module = G().createShaderModule({ code: p.wgsl, label: p.cacheKey });
    const info = await withTimeout(module.getCompilationInfo(), 2 * timeoutMs, `compilation info of ${p.cacheKey}`);
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length) throw new Error(`WGSL of ${p.cacheKey}: ${errors.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join('; ')}`);
    return withTimeout(G().createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: p.cacheKey }), 2 * timeoutMs, `pipeline of ${p.cacheKey}`);
  });
  pipelineCache.set(p.wgsl, pl);
  return pl;
}

interface Runnable { program: Int8Program; pipeline: GPUComputePipeline; bindGroup: GPUBindGroup; out: GPUBuffer; owned: GPUBuffer[] }

/** The program bound to x, its own constants and `out`. */
async function runnable(p: Int8Program, x: GPUBuffer, out: GPUBuffer): Promise<Runnable> {
  const pipeline = await pipelineOf(p);
  const owned = p.constants.map((c) => upload(c.data, `${p.cacheKey} ${c.name}`));
  const bindGroup = await scoped(`bind group of ${p.cacheKey}`, () => G().createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [x, ...owned, out].map((b, binding) => ({ binding, resource: { buffer: b } })),
  }));
  return { program: p, pipeline, bindGroup, out, owned };
}

function encode(pass: GPUComputePassEncoder, r: Runnable, n: number): void {
  pass.setPipeline(r.pipeline);
  pass.setBindGroup(0, r.bindGroup);
  for (let i = 0; i < n; i++) pass.dispatchWorkgroups(...r.program.dispatch);
}

async function readBack(src: GPUBuffer, bytes: number): Promise<Uint8Array> {
  const size = Math.ceil(bytes / 4) * 4;
  const rb = buffer(size, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'read-back');
  try {
    const enc = G().createCommandEncoder();
    enc.copyBufferToBuffer(src, 0, rb, 0, size);
    G().queue.submit([enc.finish()]);
    await withTimeout(rb.mapAsync(GPUMapMode.READ, 0, size), timeoutMs, 'mapAsync of a read-back');
    const copy = new Uint8Array(rb.getMappedRange(0, size).slice(0, bytes));
    rb.unmap();
    return copy;
  } finally {
    rb.destroy();
  }
}

/** One dispatch of `r` (its output first filled with 0xa5 bytes, which no kernel writes everywhere), read back. */
async function runOnce(r: Runnable, bytes: number): Promise<Uint8Array> {
  G().queue.writeBuffer(r.out, 0, new Uint32Array(Math.ceil(bytes / 4)).fill(0xa5a5a5a5));
  await scoped(`running ${r.program.cacheKey}`, async () => {
    const enc = G().createCommandEncoder();
    const pass = enc.beginComputePass();
    encode(pass, r, 1);
    pass.end();
    G().queue.submit([enc.finish()]);
    await withTimeout(G().queue.onSubmittedWorkDone(), timeoutMs, `running ${r.program.cacheKey}`);
  });
  return readBack(r.out, bytes);
}

let query: { set: GPUQuerySet; resolve: GPUBuffer; read: GPUBuffer } | undefined;

/** GPU time (us) of one dispatch of `r`: one pass of `iters` dispatches (timestamps, else wall time). */
async function timeOnce(r: Runnable): Promise<number> {
  const d = G();
  if (!ctx.timestamps) {
    const enc = d.createCommandEncoder();
    const pass = enc.beginComputePass();
    encode(pass, r, iters);
    pass.end();
    const t0 = performance.now();
    d.queue.submit([enc.finish()]);
    await withTimeout(d.queue.onSubmittedWorkDone(), timeoutMs, `timing ${r.program.cacheKey}`);
    return (performance.now() - t0) * 1000 / iters;
  }
  query ??= {
    set: d.createQuerySet({ type: 'timestamp', count: 2 }),
    resolve: buffer(16, GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC, 'timestamps'),
    read: buffer(16, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'timestamps read'),
  };
  const enc = d.createCommandEncoder();
  const pass = enc.beginComputePass({ timestampWrites: { querySet: query.set, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
  encode(pass, r, iters);
  pass.end();
  enc.resolveQuerySet(query.set, 0, 2, query.resolve, 0);
  enc.copyBufferToBuffer(query.resolve, 0, query.read, 0, 16);
  d.queue.submit([enc.finish()]);
  await withTimeout(query.read.mapAsync(GPUMapMode.READ, 0, 16), timeoutMs, `timing ${r.program.cacheKey}`);
  const ts = new BigUint64Array(query.read.getMappedRange(0, 16).slice(0));
  query.read.unmap();
  return ts[1] > ts[0] ? Number(ts[1] - ts[0]) / 1000 / iters : NaN;
}

async function heat(r: Runnable): Promise<void> {
  for (const t0 = performance.now(); performance.now() - t0 < heatMs;) {
    const enc = G().createCommandEncoder();
    const pass = enc.beginComputePass();
    encode(pass, r, iters);
    pass.end();
    G().queue.submit([enc.finish()]);
    await withTimeout(G().queue.onSubmittedWorkDone(), timeoutMs, 'heating');
  }
}

/** Median GPU time (us) of each runnable, in `rounds` interleaved rounds after one heat. */
async function timeAll(rs: Runnable[]): Promise<number[]> {
  if (!rs.length) return [];
  await heat(rs[0]);
  const samples: number[][] = rs.map(() => []);
  for (let k = 0; k < rounds; k++) for (let i = 0; i < rs.length; i++) samples[i].push(await timeOnce(rs[i]));
  return samples.map((s) => { const t = [...s].sort((a, b) => a - b); return t[t.length >> 1]; });
}

// ---- the layers ---------------------------------------------------------------------------------------------------

function rng(seed: number): () => number {
  let s = (seed * 2654435761) >>> 0 || 1;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 4294967296; };
}

interface Layer { batch: number; name: string; args: Int8KernelArgs; C: number; F: number; H: number; W: number; t: QType }

let graph: Graph | undefined;

/** The model's pointwise layers (one per shape and activation) at `batch`, with random inputs. */
async function layersOf(batch: number, limits: KernelLimits, dot4: boolean): Promise<Layer[]> {
  graph ??= graphForRun(await loadModel(modelBytes(), { source: `${modelName}_int8.tflite` }), 'int8', 'unfused', () => { throw new Error('no plan needed'); });
  const g = graph;
  const out: Layer[] = [];
  const seen = new Set<string>();
  for (const node of g.nodes) {
    if (node.op !== 'Conv' || node.domain !== '') continue;
    const inputs = node.inputs.map((t) => (t ? g.tensors.get(t) : undefined));
    const y = g.tensors.get(node.outputs[0]);
    if (!inputs[0] || !y || !inputs[1]?.data) continue;
    const base: Int8KernelArgs = { node: { ...node, inputs: node.inputs.slice(0, 3) }, inputs: inputs.slice(0, 3), outputs: [y], limits, dot4 };
    const geo = convGeom(shapeArgs(base));
    if (!isPointwise(geo)) continue;
    const key = `${geo.C}x${geo.H}x${geo.W}->${geo.F} ${JSON.stringify(node.attrs.activation ?? '')}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const t = inputs[0].dtype as QType;
    const r = rng(17 + out.length);
    const n = batch * geo.C * geo.H * geo.W;
    const data = t === 'int8' ? new Int8Array(n) : new Uint8Array(n);
    for (let i = 0; i < n; i++) data[i] = Math.floor(r() * 256) - (t === 'int8' ? 128 : 0);
    const x: Tensor = { ...inputs[0], shape: [batch, geo.C, geo.H, geo.W], data };
    const yb: Tensor = { ...y, shape: [batch, geo.F, geo.H, geo.W] };
    out.push({ batch, name: node.name, args: { ...base, inputs: [x, ...inputs.slice(1, 3)], outputs: [yb] }, C: geo.C, F: geo.F, H: geo.H, W: geo.W, t });
  }
  return out;
}

/** The host reference of a layer's output (TFLite's integer arithmetic). */
function reference(L: Layer): QArray {
  const [x, w, b] = L.args.inputs;
  const y = L.args.outputs[0];
  const yq = { scale: y.quant!.scale[0], zeroPoint: y.quant!.zeroPoint[0] ?? 0 };
  const act = L.args.node.attrs.activation === 'Relu' ? 'RELU' : L.args.node.attrs.activation === 'Clip' ? 'RELU6' : 'NONE';
  return conv({
    type: L.t, x: x!.data as QArray, xShape: x!.shape, xq: { scale: x!.quant!.scale[0], zeroPoint: x!.quant!.zeroPoint[0] ?? 0 },
    w: w!.data as QArray, wShape: w!.shape, wScales: w!.quant!.scale, wZeroPoint: L.t === 'uint8' ? w!.quant!.zeroPoint[0] : 0,
    bias: b?.data as Int32Array | undefined, yShape: y.shape, yq, strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1,
    act: activationRange(act, yq, L.t),
  });
}

const fmtUs = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : x < 100 ? x.toFixed(1) : x.toFixed(0));

let emulate = false;
let failures = 0;
let checked = 0;

function firstDiff(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

async function runLayer(L: Layer, support: Int8SmxSupport): Promise<void> {
  const a = L.args, limits = a.limits;
  const P = L.H * L.W, outN = L.batch * L.F * P;
  // uint8 weights with a zero point take the column sums (int8 weights are symmetric).
  const sums = L.t === 'uint8' && (a.inputs[1]!.quant?.zeroPoint[0] ?? 0) !== 0;
  const shape = `b${L.batch} ${L.name} [${L.batch},${L.C},${L.H},${L.W}] -> ${L.F} ${L.t}`;
  const auto = chooseInt8SmxTiles({ N: L.batch, P, F: L.F, C: L.C }, L.t, support, limits, sums);
  const row: Record<string, unknown> = { batch: L.batch, layer: L.name, N: L.batch, C: L.C, F: L.F, H: L.H, W: L.W, type: L.t, auto: auto ? int8SmxTileKey(auto) : null };
  results.push(row);
  const bufs: GPUBuffer[] = [];
  const keep = (x: GPUBuffer) => { bufs.push(x); return x; };
  try {
    const x = keep(upload(pack8(a.inputs[0]!.data as QArray), 'x'));
    const out = keep(buffer(outN, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, 'out'));
    const programs: { label: string; p: Int8Program }[] = [];
    const present = int8Pointwise(a);
    programs.push({ label: 'present', p: present });
    row.present = present.cacheKey;
    if (variants && P >= 4) {
      for (const t of wordTileVariants) {
        if (L.F < t.rf || present.cacheKey.includes(wordTileKey(t))) continue;
        programs.push({ label: `words ${wordTileKey(t)}`, p: int8PointwiseWords(a, t) });
      }
    }
    const nb = support.n[L.t];
    const tiles: Int8SmxTiles[] = nb ? (variants ? int8SmxTileVariants(nb) : auto ? [auto] : []) : [];
    for (const t of tiles.filter((v) => int8SmxFits(v, support.subgroupSize, limits, sums, emulate))) {
      const label = `smx ${int8SmxTileKey(t)}${auto && int8SmxTileKey(auto) === int8SmxTileKey(t) ? ' (auto)' : ''}`;
      try {
        programs.push({ label, p: int8PointwiseSubgroupMatrix(a, t, support.subgroupSize, emulate) });
      } catch (e) {
        failures++;
        log(`  ${shape}: ${label}: ERROR ${(e as Error).message.split('\n')[0]}`);
      }
    }
    const contestants: { label: string; r: Runnable; ok?: boolean; us?: number; bad?: string }[] = [];
    for (const { label, p } of programs) {
      try {
        const r = await runnable(p, x, out);
        for (const c of r.owned) keep(c);
        contestants.push({ label, r });
      } catch (e) {
        if (e instanceof GpuHang) throw e;
        failures++;
        log(`  ${shape}: ${label}: ERROR ${(e as Error).message.split('\n')[0]}`);
      }
    }
    const presentOut = await runOnce(contestants[0].r, outN);
    if (L.batch === 1) {
      const ref = new Uint8Array(reference(L).buffer);
      const d = firstDiff(presentOut, ref);
      checked++;
      if (d >= 0) { failures++; log(`  ${shape}: the present kernel differs from the host reference at ${d} (${presentOut[d]} vs ${ref[d]})`); }
    }
    for (const c of contestants.slice(1)) {
      const got = await runOnce(c.r, outN);
      const d = firstDiff(got, presentOut);
      c.ok = d < 0;
      checked++;
      if (!c.ok) { failures++; c.bad = `byte ${d}: ${got[d]} vs ${presentOut[d]}`; }
    }
    const times = await timeAll(contestants.map((c) => c.r));
    contestants.forEach((c, i) => { c.us = times[i]; });
    const bytes = L.batch * L.C * P + L.F * L.C + 16 * L.F + outN;
    const gbs = (us?: number) => (us && Number.isFinite(us) ? `${(bytes / us / 1e3).toFixed(0)} GB/s ${(2 * L.batch * L.F * L.C * P / us / 1e6).toFixed(1)} TOP/s` : '');
    log(`${shape}: chooser: ${auto ? int8SmxTileKey(auto) : 'present kernel'}`);
    for (const c of contestants) {
      log(`    ${c.label.padEnd(30)} ${fmtUs(c.us).padStart(7)} us  ${gbs(c.us).padEnd(26)} ${c.label === 'present' ? c.r.program.cacheKey.split('|').slice(-4).join('|') : c.ok ? 'bit-exact' : `DIFFERS (${c.bad})`}`);
    }
    row.contestants = contestants.map((c) => ({ label: c.label, key: c.r.program.cacheKey, us: c.us, ok: c.ok ?? true, bad: c.bad }));
    row.bytes = bytes;
  } finally {
    for (const b of bufs) b.destroy();
  }
}

/** int8 MobileNetV2 sessions with and without subgroup matrices: outputs (bit-exact) and run() wall time. */
async function endToEnd(plan: 'unfused' | 'auto', support: Int8SmxSupport): Promise<void> {
  const model = await loadModel(modelBytes(), { source: `${modelName}_int8.tflite` });
  const on = await createInt8Session(model, { plan, hw: 'h100', subgroupMatrix: true });
  const off = await createInt8Session(model, { plan, hw: 'h100', subgroupMatrix: false });
  try {
    const name = on.inputNames[0];
    const r = rng(7);
    const x = new Float32Array(on.inputShapes[name].reduce((a, c) => a * c, 1));
    for (let i = 0; i < x.length; i++) x[i] = 2 * r() - 1;
    // Dispatches on subgroup matrices: those of the unfused schedule (the fused one also has FCMs).
    const smxDispatches = plan === 'unfused' && support
      ? compileInt8(graphForRun(model, 'int8', 'unfused', () => { throw new Error('no plan needed'); }), compileLimits(), true, support).steps.filter((s) => s.program.cacheKey.startsWith('int8-pointwise-smx')).length
      : undefined;
    const outs: ArrayLike<number>[] = [];
    for (const s of [on, off]) outs.push((await withTimeout(s.run({ [name]: x }), 2 * timeoutMs, 'session run'))[s.outputNames[0]].data);
    const same = outs[0].length === outs[1].length && Array.from(outs[0]).every((v, i) => v === outs[1][i]);
    const wall: Record<string, number[]> = { on: [], off: [] };
    for (let k = 0; k < e2eRuns; k++) {
      for (const [label, s] of (k % 2 ? [['off', off], ['on', on]] : [['on', on], ['off', off]]) as [string, typeof on][]) {
        const t0 = performance.now();
        await withTimeout(s.run({ [name]: x }), 2 * timeoutMs, 'session run');
        wall[label].push(performance.now() - t0);
      }
    }
    const med = (v: number[]) => [...v].sort((p, q) => p - q)[v.length >> 1];
    if (!same) failures++;
    log(`e2e int8 ${modelLabel} ${plan} batch 1: run() median ${med(wall.on).toFixed(3)} ms with subgroupMatrix on, ${med(wall.off).toFixed(3)} ms off` +
      `${smxDispatches !== undefined ? ` (${smxDispatches} dispatches on subgroup matrices where the device passes its check)` : ''}; outputs ${same ? 'identical' : 'DIFFER'}`);
    e2eResults.push({ plan, msWith: med(wall.on), msWithout: med(wall.off), identical: same });
  } finally {
    on.dispose(); off.dispose();
  }
}

async function main(): Promise<number> {
  try {
    ctx = await acquireGpu();
  } catch (e) {
    log(`int8 subgroup-matrix check: FAIL: no WebGPU device (${(e as Error).message.split('\n')[0]})`);
    return 5;
  }
  const a = ctx.adapterInfo;
  log(`device: ${[a.vendor, a.architecture, a.device].filter((s) => s).join(' ')} (${a.description}); subgroup size ${a.subgroupMinSize ?? '?'}-${a.subgroupMaxSize ?? '?'}; timestamps ${ctx.timestamps}`);
  log(`features: subgroups ${ctx.device.features.has('subgroups')}, ${subgroupMatrixFeature} ${ctx.device.features.has(subgroupMatrixFeature)}`);
  log(`adapter subgroup-matrix configs: ${a.subgroupMatrixConfigs?.map((c) => `${c.componentType}->${c.resultComponentType} M${c.M}N${c.N}K${c.K}`).join(', ') || 'none'}`);
  const real = int8SubgroupMatrixSupport(ctx.device.features, a);
  emulate = selfTest && !real;
  const support: Int8SmxSupport | undefined = real ?? (selfTest ? { subgroupSize: 32, n: { int8: 16, uint8: 16 } } : undefined);
  if (emulate) log('self-test: the subgroup-matrix programs run emulated (no integer subgroup matrices on this device)');
  if (!support) {
    log('int8 subgroup-matrix check: SKIPPED: this device has no i8 -> i32 (or u8 -> u32) M16 K32 subgroup matrices at a fixed subgroup size; nothing to check');
    return 0;
  }
  log(`support: subgroup size ${support.subgroupSize}, blocks ${Object.entries(support.n).map(([t, n]) => `${t} 16x${n}x32`).join(', ')}`);
  if (!emulate) {
    let why = '';
    const ok = await withTimeout(checkInt8SubgroupMatrix(ctx, { onFailure: (w) => { why = w; }, timeoutMs, allVariants: true }), 4 * timeoutMs, 'the device check');
    log(`device check (src/runtime/int8-subgroup-matrix-check.ts on every tile variant; int8 sessions run it on the chooser's): ${ok ? 'passed: int8 sessions use the kernel' : `FAILED: ${why}`}`);
    if (!ok) failures++;
  }
  const limits = ctx.kernelLimits;
  const dot4 = await probeDot4(ctx.device);
  log(`limits: workgroup storage ${limits.maxComputeWorkgroupStorageSize} B, ${limits.maxComputeInvocationsPerWorkgroup} invocations; dot4 ${dot4}; iters ${iters}, rounds ${rounds}, heat ${heatMs} ms, budget ${budgetS} s`);
  G().addEventListener?.('uncapturederror', (ev) => log(`uncaptured GPU error: ${(ev as GPUUncapturedErrorEvent).error.message.split('\n')[0]}`));
  let skipped = 0;
  for (const batch of batches) {
    const layers = await layersOf(batch, limits, dot4);
    log(`-- int8 ${modelLabel} batch ${batch}: ${layers.length} pointwise layer shapes${layers.length > maxShapes ? ` (the first ${maxShapes}: --max-shapes)` : ''}`);
    for (const L of layers.slice(0, maxShapes)) {
      if (elapsedS() > budgetS * (e2e ? 0.8 : 1)) { skipped++; continue; }
      try {
        await runLayer(L, support);
      } catch (e) {
        if (e instanceof GpuHang) throw e;
        failures++;
        log(`  b${batch} ${L.name}: ERROR ${(e as Error).message.split('\n')[0]}`);
      }
      if (ctx.lost) throw new GpuHang(`the device was lost (${ctx.lost})`);
    }
  }
  if (skipped) log(`skipped ${skipped} layer shapes: over the time budget (--budget-s ${budgetS})`);
  summarize();
  // The self-test's sessions have no subgroup matrices (the emulated form is the schedule's only with --e2e asked).
  if (e2e && (!emulate || process.argv.includes('--e2e'))) {
    for (const plan of ['unfused', 'auto'] as const) {
      if (elapsedS() > budgetS) { log(`e2e ${plan}: skipped (time budget)`); continue; }
      try {
        await endToEnd(plan, support);
      } catch (e) {
        if (e instanceof GpuHang) throw e;
        failures++;
        log(`e2e ${plan}: ERROR ${(e as Error).message.split('\n')[0]}`);
      }
    }
  }
  const verdict = failures === 0 && checked > 0 ? 'PASS' : 'FAIL';
  log(`int8 subgroup-matrix check: ${verdict} (${checked} outputs checked bit for bit, ${failures} failures${skipped ? `, ${skipped} shapes skipped` : ''}; ${elapsedS().toFixed(0)} s)`);
  return verdict === 'PASS' ? 0 : 1;
}

/** Per batch: the layers' summed GPU time with the present kernel, with the chooser's pick, and the best of all. */
function summarize(): void {
  for (const batch of batches) {
    const rows = results.filter((r) => r.batch === batch && Array.isArray(r.contestants));
    if (!rows.length) continue;
    let present = 0, chosen = 0, best = 0, bestWords = 0, onSmx = 0;
    for (const r of rows) {
      const cs = r.contestants as { label: string; us?: number; ok: boolean }[];
      const p = cs.find((c) => c.label === 'present')?.us ?? NaN;
      const auto = cs.find((c) => c.label.endsWith('(auto)'))?.us;
      present += p;
      chosen += auto ?? p;
      best += Math.min(p, ...cs.filter((c) => c.ok).map((c) => c.us ?? Infinity));
      bestWords += Math.min(p, ...cs.filter((c) => c.ok && c.label.startsWith('words')).map((c) => c.us ?? Infinity));
      if (auto !== undefined) onSmx++;
    }
    log(`batch ${batch}: ${rows.length} shapes (each once), summed GPU time: present ${present.toFixed(0)} us, with the smx chooser ${chosen.toFixed(0)} us ` +
      `(${onSmx} shapes on subgroup matrices; ${(present / chosen).toFixed(2)}x), best word tile ${bestWords.toFixed(0)} us, best of all ${best.toFixed(0)} us`);
  }
}

main().then(async (code) => {
  writeOut();
  clearTimeout(watchdog);
  await releaseGpu();
  process.exit(code);
}, async (e) => {
  log(`int8 subgroup-matrix check: FAIL: ${e instanceof GpuHang ? 'the GPU stopped answering: ' : ''}${e instanceof Error ? e.message : String(e)}`);
  if (!(e instanceof GpuHang) && e instanceof Error && e.stack) console.log(e.stack);
  writeOut();
  process.exit(5);
});
