// GPU check of the f16 pointwise kernel on subgroup matrices (kernels/pointwise-subgroup-matrix.ts): every pointwise
// layer shape of MobileNetV2 (fixtures/zoo.ts) at each batch, run by
//   ref      the fp32 pointwise kernel (kernels/pointwise.ts) on the same f16-rounded inputs held as f32,
//   f16      the present f16 kernel (the fp32 kernel with f16 storage, kernels/f16.ts),
//   smx      the subgroup-matrix kernel with the tiles chooseSmxTiles picks ('auto': the default rule; 'auto+d': the
//            rule with direct variants, SmxRule), and every other variant that fits (to tune chooseSmxTiles from):
//            the staged ones (SG...) and the direct-load ones (D...; ...X: x through workgroup memory; only on layers
//            whose rows are aligned for their direct loads, P % 8 == 0 (not for X) and C % 8 == 0, unless --unaligned),
// checking each f16 output against ref (bound below), timing each on the GPU (timestamp queries: one pass of `iters`
// dispatches after a heat, median of `rounds` interleaved rounds; wall time over `iters` dispatches without them),
// and the effective bandwidth of each against a heated vec4 copy kernel. Then, unless --no-e2e, MobileNetV2 sessions
// (createSession, precision fp16, plan 'unfused' so every pointwise layer is a Conv) with and without subgroup
// matrices, and with the chooser's direct variants on: outputs compared and run() wall times.
//
// Usage (on the GPU machine, DEVELOPERS.md):
//   source .gpu/enter.sh && node dist/bench/subgroup-matrix.js --out $OUT
//   options: --batches 1,32  --iters 50  --rounds 3  --heat-ms 30  --budget-s 150  --timeout-s 30 (per GPU wait)
//            --max-shapes N  --match S (only layers whose [N,C,H,W]->F contains S)  --no-variants  --no-e2e
//            --unaligned: the direct variants on unaligned layers too (14x14, 7x7): outside Vulkan's alignment rule for
//            cooperative-matrix loads, so a driver may fault; run it apart from the main run.
// The end: per layer the best variant (GB/s, % of the copy kernel) and the rules' picks, and per batch the summed times.
//            --self-test: on a device without subgroup matrices, run the kernels' emulated form (plain WGSL at the same
//            offsets) instead of skipping: the harness and the kernel's indexing checked on lavapipe.
// Exit 0: every checked output within the bound (last line `subgroup-matrix check: PASS ...`), or the device has no
// f16 -> f32 subgroup matrices (`subgroup-matrix check: SKIPPED ...`: nothing to check; e.g. lavapipe, or
// FCM_OPT_SUBGROUP_MATRIX=0). Exit 1: some output over the bound or a kernel failed (`FAIL`, each named above).
// Exit 5: no adapter, or the GPU stopped answering (a read-back over its timeout; the watchdog ends the process
// --budget-s + 25 s after the start whatever happens). Output: the log, and with --out subgroup-matrix.json and
// subgroup-matrix.txt there.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportOnnx } from '../converters/onnx/export.js';
import { prepareForRun } from '../src/pipeline/pipeline.js';
import { zooModels } from '../fixtures/zoo.js';
import { type ConvGeom, convBindings, convGeom, geomKey, isPointwise } from '../kernels/conv-common.js';
import { type DotGeom, pointwise } from '../kernels/pointwise.js';
import { withStorage } from '../kernels/f16.js';
import type { KernelArgs, KernelLimits, KernelProgram } from '../kernels/program.js';
import {
  type SmxVariant, type SubgroupMatrixSupport, chooseSmxTiles, isDirect, pointwiseSubgroupMatrix, smxAllVariants, smxDirectAligned, smxDirectApplies,
  smxEmulationStorage, smxFits, smxStorage, smxTileKey,
} from '../kernels/pointwise-subgroup-matrix.js';
import { compileGraph } from '../src/runtime/compile.js';
import { type GpuContext, acquireGpu, releaseGpu, subgroupMatrixFeature, subgroupMatrixOffByEnv } from '../src/runtime/device.js';
import { fromHalf, toHalf } from '../src/runtime/half.js';
import { checkSubgroupMatrix } from '../src/runtime/subgroup-matrix-check.js';
import { createSession } from '../src/pipeline/session.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}
const batches = arg('batches', '1,32').split(',').map(Number);
const iters = Number(arg('iters', '50'));
const rounds = Number(arg('rounds', '3'));
const heatMs = Number(arg('heat-ms', '30'));
const budgetS = Number(arg('budget-s', '170'));
const outDir = arg('out', '');
const variants = !process.argv.includes('--no-variants');
const e2e = !process.argv.includes('--no-e2e');
const selfTest = process.argv.includes('--self-test');
const unaligned = process.argv.includes('--unaligned');
const timeoutMs = 1000 * Number(arg('timeout-s', '30'));
const maxShapes = Number(arg('max-shapes', '1000'));
const match = arg('match', '');

const start = performance.now();
const elapsedS = () => (performance.now() - start) / 1000;
const lines: string[] = [];
const log = (s: string) => { lines.push(s); console.log(s); };
const results: Record<string, unknown>[] = [];
let e2eResults: Record<string, unknown>[] = [];

function writeOut(): void {
  if (!outDir) return;
  try {
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, 'subgroup-matrix.txt'), lines.join('\n') + '\n');
    writeFileSync(join(outDir, 'subgroup-matrix.json'), JSON.stringify({ layers: results, e2e: e2eResults }, null, 1));
  } catch (e) {
    console.log(`could not write ${outDir}: ${(e as Error).message}`);
  }
}

// Whatever hangs (a driver wait, a map that never resolves), the process ends.
const watchdog = setTimeout(() => {
  log(`subgroup-matrix check: FAIL: watchdog: still running ${(budgetS + 25).toFixed(0)} s after the start (the GPU stopped answering?)`);
  writeOut();
  process.exit(5);
}, (budgetS + 25) * 1000);

class GpuHang extends Error {}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new GpuHang(`${what}: no answer after ${ms / 1000} s`)), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

// ---- GPU helpers --------------------------------------------------------------------------------------------------

let ctx: GpuContext;
const G = () => ctx.device;

function buffer(bytes: number, usage: number, label: string): GPUBuffer {
  return G().createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage, label });
}

function upload(data: Float32Array | Uint16Array, label: string): GPUBuffer {
  const b = buffer(data.byteLength, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC, label);
  // writeBuffer takes whole 4-byte words.
  const bytes = Math.ceil(data.byteLength / 4) * 4;
  if (bytes === data.byteLength) G().queue.writeBuffer(b, 0, data);
  else { const padded = new Uint8Array(bytes); padded.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)); G().queue.writeBuffer(b, 0, padded); }
  return b;
}

/** Runs `f` inside validation, internal and out-of-memory error scopes; any error is thrown. */
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

async function pipelineOf(p: KernelProgram): Promise<GPUComputePipeline> {
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

interface Runnable { program: KernelProgram; pipeline: GPUComputePipeline; bindGroup: GPUBindGroup; out: GPUBuffer }

async function runnable(p: KernelProgram, inputs: GPUBuffer[], out: GPUBuffer): Promise<Runnable> {
  const pipeline = await pipelineOf(p);
  const bindGroup = await scoped(`bind group of ${p.cacheKey}`, () => G().createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [...inputs, out].map((b, binding) => ({ binding, resource: { buffer: b } })),
  }));
  return { program: p, pipeline, bindGroup, out };
}

function encode(pass: GPUComputePassEncoder, r: Runnable, n: number): void {
  pass.setPipeline(r.pipeline);
  pass.setBindGroup(0, r.bindGroup);
  for (let i = 0; i < n; i++) pass.dispatchWorkgroups(...r.program.dispatch);
}

async function readBack(src: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
  const size = Math.ceil(bytes / 4) * 4;
  const rb = buffer(size, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'read-back');
  try {
    const enc = G().createCommandEncoder();
    enc.copyBufferToBuffer(src, 0, rb, 0, size);
    G().queue.submit([enc.finish()]);
    await withTimeout(rb.mapAsync(GPUMapMode.READ, 0, size), timeoutMs, 'mapAsync of a read-back');
    const copy = rb.getMappedRange(0, size).slice(0, bytes);
    rb.unmap();
    return copy;
  } finally {
    rb.destroy();
  }
}

/** One dispatch of `r` (its output first filled with `fill`), read back. */
async function runOnce(r: Runnable, fill: Float32Array | Uint16Array, bytes: number): Promise<ArrayBuffer> {
  G().queue.writeBuffer(r.out, 0, fill);
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

/** Heats the GPU with `r` for about heatMs. */
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

// ---- data and checks ----------------------------------------------------------------------------------------------

function rng(seed: number): () => number {
  let s = (seed * 2654435761) >>> 0 || 1;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 4294967296; };
}

/**
 * The bound an f16 output must keep to the f32 reference on the same inputs: the output's rounding to f16 (half an
 * ulp: 2^-11 relative) doubled, for the f32 sums' different order and the tensor cores' f32 accumulation, plus
 * 2^-12 of the layer's largest |ref| for sums that cancel to near zero (their absolute error is that of the terms,
 * not of the result). A wrong index or a lost tile gives errors of the order of the values themselves (~0.3 here).
 */
const withinBound = (got: number, ref: number, maxRef: number, extra: number) => Math.abs(got - ref) <= 2 ** -10 * Math.abs(ref) + 2 ** -12 * maxRef + extra;

interface Check { maxAbs: number; maxRel: number; over: number; nonFinite: number; firstBad?: string }

/**
 * `steps`: for f16 accumulators, the steps of 16 channels: each rounds the running sum to f16 (half an ulp of a
 * partial sum, whose size is bounded here by the layer's largest |ref| doubled: the inputs are uniform and the
 * partial sums random walks), so steps 2^-11 2 maxRef more.
 */
function check(got: Float32Array, ref: Float32Array, steps = 0): Check {
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) maxRef = Math.max(maxRef, Math.abs(ref[i]));
  let maxAbs = 0, over = 0, nonFinite = 0, firstBad: string | undefined;
  for (let i = 0; i < ref.length; i++) {
    const g = got[i], r = ref[i];
    if (!Number.isFinite(g)) { nonFinite++; firstBad ??= `[${i}] = ${g}, ref ${r}`; continue; }
    const e = Math.abs(g - r);
    if (e > maxAbs) maxAbs = e;
    if (!withinBound(g, r, maxRef, steps * 2 ** -10 * maxRef)) { over++; firstBad ??= `[${i}] = ${g}, ref ${r}`; }
  }
  return { maxAbs, maxRel: maxRef > 0 ? maxAbs / maxRef : 0, over, nonFinite, firstBad };
}

const checkOk = (c: Check) => c.over === 0 && c.nonFinite === 0;

// ---- the layers ---------------------------------------------------------------------------------------------------

interface Layer { batch: number; name: string; geom: ConvGeom; args: KernelArgs }

async function layersOf(batch: number, limits: KernelLimits): Promise<Layer[]> {
  // The graph the fp16 session runs unfused: activations and residual Adds folded into the Convs as epilogues.
  const g = await prepareForRun(exportOnnx(zooModels.mobilenet_v2(batch)), { precision: 'fp16', plan: 'unfused', batch });
  const out: Layer[] = [];
  const seen = new Set<string>();
  for (const node of g.nodes) {
    if (node.op !== 'Conv') continue;
    const shapeOf = (t: string) => (t ? g.tensors.get(t)?.shape : undefined);
    const args: KernelArgs = { node, inputShapes: node.inputs.map(shapeOf), outputShapes: node.outputs.map((t) => shapeOf(t) ?? []), limits };
    const geom = convGeom(args);
    if (!isPointwise(geom) || seen.has(geomKey(geom))) continue;
    seen.add(geomKey(geom));
    out.push({ batch, name: node.name, geom, args });
  }
  return out;
}

const dotOf = (g: ConvGeom): DotGeom => ({ N: g.N, C: g.C, F: g.F, P: g.H * g.W, hasBias: g.hasBias, hasRes: g.hasRes, hasScale: g.hasScale, act: g.act });

const fmtUs = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : x < 100 ? x.toFixed(1) : x.toFixed(0));
const fmtE = (x: number) => x.toExponential(1);

let copyGBs = NaN;
let emulate = false;
let failures = 0;
let checked = 0;

async function runLayer(L: Layer, support: SubgroupMatrixSupport, index: number): Promise<void> {
  const g = L.geom, dot = dotOf(g), limits = L.args.limits;
  const b = convBindings(g);
  const P = g.H * g.W;
  const sizes: Record<string, number> = { x: g.N * g.C * P, w: g.F * g.C, b: g.F, res: g.N * g.F * P, sc: g.N * g.C };
  const outN = g.N * g.F * P;
  const r = rng(1000 + index);
  const host16: Uint16Array[] = [], host32: Float32Array[] = [];
  for (const n of b.names) {
    const v = new Float32Array(sizes[n]);
    const amp = n === 'w' ? Math.sqrt(3 / g.C) : n === 'b' ? 0.5 : 1;
    for (let i = 0; i < v.length; i++) v[i] = n === 'sc' ? 0.5 + r() : amp * (2 * r() - 1);
    const h = toHalf(v);
    host16.push(h);
    host32.push(fromHalf(h));
  }
  const bufs: GPUBuffer[] = [];
  const keep = (x: GPUBuffer) => { bufs.push(x); return x; };
  try {
    const in32 = host32.map((v, i) => keep(upload(v, `${b.names[i]} f32`)));
    const in16 = host16.map((v, i) => keep(upload(v, `${b.names[i]} f16`)));
    const out32 = keep(buffer(4 * outN, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, 'out f32'));
    const out16 = keep(buffer(2 * outN, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, 'out f16'));
    // Outputs start as NaN: an element a kernel never writes fails the check.
    const nan32 = new Float32Array(Math.ceil(outN / 4) * 4).fill(NaN);
    const nan16 = new Uint16Array(Math.ceil(outN / 8) * 8).fill(0x7e00);

    const refProgram = pointwise(L.args, g);
    const present = withStorage(refProgram, 'f16');
    const auto = chooseSmxTiles(dot, support, limits);
    const autoD = chooseSmxTiles(dot, support, limits, { direct: true });
    // The self-test's emulated staged programs need 4 BF BP more bytes of workgroup memory: variants that do not fit are left out.
    const fits = (t: SmxVariant) => smxFits(t, support, limits, g.C) && (!emulate || smxStorage(t, g.C) + smxEmulationStorage(t) <= limits.maxComputeWorkgroupStorageSize)
      && (!isDirect(t) || (smxDirectApplies(dot, t) && (unaligned || smxDirectAligned(dot, t))));
    const picked = [auto, autoD].filter((t): t is SmxVariant => !!t);
    const tiles: SmxVariant[] = (variants ? smxAllVariants : picked.filter((t, i) => picked.findIndex((u) => smxTileKey(u) === smxTileKey(t)) === i)).filter(fits);
    const shape = `b${L.batch} ${L.name} [${g.N},${g.C},${g.H},${g.W}] -> ${g.F}${g.hasBias ? ' +b' : ''}${g.hasRes ? ' +res' : ''} ${g.act.key}`;
    const row: Record<string, unknown> = { batch: L.batch, layer: L.name, N: g.N, C: g.C, F: g.F, H: g.H, W: g.W, hasRes: g.hasRes, act: g.act.key, auto: auto ? smxTileKey(auto) : null, autoDirect: autoD ? smxTileKey(autoD) : null, present: refProgram.cacheKey };
    results.push(row);

    const ref = await runnable(refProgram, in32, out32);
    const refOut = new Float32Array(await runOnce(ref, nan32, 4 * outN));
    if (refOut.some((v) => !Number.isFinite(v))) throw new Error('the f32 reference left non-finite values');
    const contestants: { label: string; r: Runnable; check?: Check; us?: number; steps?: number }[] = [];
    const f16r = await runnable(present, in16, out16);
    contestants.push({ label: 'f16', r: f16r });
    for (const t of tiles) {
      const marks = [auto && smxTileKey(auto) === smxTileKey(t) ? 'auto' : '', autoD && smxTileKey(autoD) === smxTileKey(t) ? 'auto+d' : ''].filter((m) => m);
      const label = `smx ${smxTileKey(t)}${marks.length ? ` (${marks.join(',')})` : ''}`;
      try {
        const p = pointwiseSubgroupMatrix(dot, t, support, b.names, b.inputs, limits, L.name, 'Conv(pw smx)', emulate);
        contestants.push({ label, r: await runnable(p, in16, out16), steps: isDirect(t) && t.acc === 'f16' ? Math.ceil(g.C / 16) : 0 });
      } catch (e) {
        if (e instanceof GpuHang) throw e;
        failures++;
        log(`  ${shape}: ${label}: ERROR ${(e as Error).message.split('\n')[0]}`);
        row.errors = [...((row.errors as string[] | undefined) ?? []), label];
      }
    }
    for (const c of contestants) {
      c.check = check(fromHalf(new Uint16Array(await runOnce(c.r, nan16, 2 * outN))), refOut, c.steps);
      checked++;
      if (!checkOk(c.check)) failures++;
    }
    const times = await timeAll([ref, ...contestants.map((c) => c.r)]);
    contestants.forEach((c, i) => { c.us = times[i + 1]; });
    const bytes16 = 2 * (sizes.x + sizes.w + (g.hasBias ? sizes.b : 0) + (g.hasRes ? sizes.res : 0) + outN);
    const flop = 2 * g.N * g.F * g.C * P;
    const perf = (us: number | undefined, bytes: number) => (us && Number.isFinite(us) ? `${(bytes / us / 1e3).toFixed(0)} GB/s${Number.isFinite(copyGBs) ? ` (${(100 * bytes / us / 1e3 / copyGBs).toFixed(0)}% copy)` : ''} ${(flop / us / 1e6).toFixed(1)} TFLOP/s` : '');
    log(`${shape}: ref f32 ${fmtUs(times[0])} us; chooser: ${auto ? smxTileKey(auto) : 'present kernel'}, with direct variants: ${autoD ? smxTileKey(autoD) : 'present kernel'}`);
    for (const c of contestants) {
      const k = c.check!;
      log(`    ${c.label.padEnd(26)} ${fmtUs(c.us).padStart(7)} us  ${perf(c.us, bytes16).padEnd(40)} max abs ${fmtE(k.maxAbs)} rel ${fmtE(k.maxRel)} ${checkOk(k) ? 'ok' : `OVER BOUND (${k.over} over, ${k.nonFinite} non-finite; first ${k.firstBad})`}`);
    }
    row.refUs = times[0];
    row.contestants = contestants.map((c) => ({ label: c.label, key: c.r.program.cacheKey, us: c.us, maxAbs: c.check!.maxAbs, maxRel: c.check!.maxRel, over: c.check!.over, nonFinite: c.check!.nonFinite, firstBad: c.check!.firstBad }));
    row.bytesF16 = bytes16;
    row.flop = flop;
  } finally {
    for (const x of bufs) x.destroy();
  }
}

/** GB/s of a heated vec4<f32> copy of 64 MiB (the bandwidth the layers are put against). */
async function copyBandwidth(limits: KernelLimits): Promise<number> {
  const n4 = (64 << 20) / 16;
  const wg = 256;
  const groups = Math.ceil(n4 / wg);
  const dx = Math.min(groups, limits.maxComputeWorkgroupsPerDimension ?? 65535);
  const p: KernelProgram = {
    name: 'copy', cacheKey: 'copy', inputs: [0], outputs: 1, workgroupStorageBytes: 0, workgroupSize: [wg, 1, 1], dispatch: [dx, Math.ceil(groups / dx), 1],
    wgsl: `@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@compute @workgroup_size(${wg}) fn main(@builtin(workgroup_id) w: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = (w.x + w.y * ${dx}u) * ${wg}u + li;
  if (i < ${n4}u) { dst[i] = src[i]; }
}`,
  };
  const s = buffer(n4 * 16, GPUBufferUsage.STORAGE, 'copy src');
  const d = buffer(n4 * 16, GPUBufferUsage.STORAGE, 'copy dst');
  try {
    const r = await runnable(p, [s], d);
    const [us] = await timeAll([r]);
    return 2 * n4 * 16 / us / 1e3;
  } finally { s.destroy(); d.destroy(); }
}

let dctx: GpuContext | undefined;
let directChecked = false;

/** MobileNetV2 fp16 sessions with and without subgroup matrices, and with the direct rule: outputs and run() wall time. */
async function endToEnd(batch: number): Promise<void> {
  const model = exportOnnx(zooModels.mobilenet_v2(batch));
  const on = await createSession(model, { precision: 'fp16', plan: 'unfused', batch, subgroupMatrix: true });
  const off = await createSession(model, { precision: 'fp16', plan: 'unfused', batch, subgroupMatrix: false });
  // The chooser's rule with direct variants (what FCM_OPT_SUBGROUP_MATRIX=direct gives a session), its device check
  // (the direct variants the rule may pick) run once and logged; where it fails the session runs without them.
  if (!dctx) {
    dctx = ctx.subgroupMatrix ? { ...ctx, subgroupMatrix: { ...ctx.subgroupMatrix, direct: true } } : ctx;
    if (dctx.subgroupMatrix) {
      let why = '';
      const ok = await withTimeout(checkSubgroupMatrix(dctx, { onFailure: (w) => { why = w; }, timeoutMs }), 4 * timeoutMs, 'the device check with direct variants');
      log(`device check with the direct rule (FCM_OPT_SUBGROUP_MATRIX=direct): ${ok ? 'passed' : `FAILED: ${why}`}`);
      if (!ok) failures++;
      directChecked = ok;
    }
  }
  const dir = await createSession(model, { precision: 'fp16', plan: 'unfused', batch, subgroupMatrix: true, device: dctx });
  const ref = await createSession(model, { precision: 'fp32', plan: 'unfused', batch });
  try {
    const limits = { ...ctx.kernelLimits, maxStorageBufferBindingSize: ctx.limits.maxStorageBufferBindingSize, maxBufferSize: ctx.limits.maxBufferSize };
    const smxDispatches = compileGraph(on.graph, limits, 'f16', { subgroupMatrix: ctx.subgroupMatrix }).steps.filter((s) => s.program.cacheKey.startsWith('pointwise-smx')).length;
    const directDispatches = directChecked ? compileGraph(dir.graph, limits, 'f16', { subgroupMatrix: dctx.subgroupMatrix }).steps.filter((s) => s.program.cacheKey.startsWith('pointwise-smx-direct')).length : 0;
    const name = on.inputNames[0];
    const r = rng(7);
    const x = new Float32Array(on.inputShapes[name].reduce((a, c) => a * c, 1));
    for (let i = 0; i < x.length; i++) x[i] = 2 * r() - 1;
    const outs = [];
    for (const s of [on, off, ref, dir]) outs.push((await withTimeout(s.run({ [name]: x }), 2 * timeoutMs, 'session run'))[s.outputNames[0]].data);
    const diff = (a: Float32Array, c: Float32Array) => { let m = 0, mr = 0; for (let i = 0; i < a.length; i++) { m = Math.max(m, Math.abs(a[i] - c[i])); mr = Math.max(mr, Math.abs(c[i])); } return { maxAbs: m, maxRef: mr }; };
    const dOn = diff(outs[0], outs[2]), dOff = diff(outs[1], outs[2]), dDir = diff(outs[3], outs[2]);
    const wall: Record<string, number[]> = { on: [], off: [], dir: [] };
    const order = [['on', on], ['off', off], ['dir', dir]] as [string, typeof on][];
    for (let k = 0; k < 21; k++) {
      // Each session first in a third of the rounds.
      for (const [label, s] of [...order.slice(k % 3), ...order.slice(0, k % 3)]) {
        const t0 = performance.now();
        await withTimeout(s.run({ [name]: x }), 2 * timeoutMs, 'session run');
        wall[label].push(performance.now() - t0);
      }
    }
    const med = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1];
    log(`e2e MobileNetV2 fp16 unfused batch ${batch}: ${smxDispatches} of ${on.stats().dispatchesPerRun} dispatches on subgroup matrices; ` +
      `run() median ${med(wall.on).toFixed(2)} ms with, ${med(wall.off).toFixed(2)} ms without, ${med(wall.dir).toFixed(2)} ms with direct variants (${directDispatches} direct dispatches); ` +
      `logits vs fp32: max abs ${fmtE(dOn.maxAbs)} with, ${fmtE(dOff.maxAbs)} without, ${fmtE(dDir.maxAbs)} direct (max |fp32| ${dOn.maxRef.toFixed(2)})`);
    e2eResults.push({
      batch, smxDispatches, directDispatches, dispatches: on.stats().dispatchesPerRun, msWith: med(wall.on), msWithout: med(wall.off), msDirect: med(wall.dir),
      maxAbsWith: dOn.maxAbs, maxAbsWithout: dOff.maxAbs, maxAbsDirect: dDir.maxAbs, maxRef: dOn.maxRef,
    });
  } finally {
    on.dispose(); off.dispose(); ref.dispose(); dir.dispose();
  }
}

async function main(): Promise<number> {
  try {
    ctx = await acquireGpu();
  } catch (e) {
    log(`subgroup-matrix check: FAIL: no WebGPU device (${(e as Error).message.split('\n')[0]})`);
    return 5;
  }
  const a = ctx.adapterInfo;
  log(`device: ${[a.vendor, a.architecture, a.device].filter((s) => s).join(' ')} (${a.description}); subgroup size ${a.subgroupMinSize ?? '?'}-${a.subgroupMaxSize ?? '?'}; timestamps ${ctx.timestamps}`);
  log(`features: shader-f16 ${ctx.device.features.has('shader-f16')}, subgroups ${ctx.device.features.has('subgroups')}, ${subgroupMatrixFeature} ${ctx.device.features.has(subgroupMatrixFeature)}`);
  log(`adapter subgroup-matrix configs: ${a.subgroupMatrixConfigs?.map((c) => `${c.componentType}->${c.resultComponentType} M${c.M}N${c.N}K${c.K}`).join(', ') || 'none'}`);
  // --self-test: the harness on a device without the feature (lavapipe), with the subgroup-matrix programs in their
  // emulated form (plain WGSL at the same offsets: kernels/pointwise-subgroup-matrix.ts `emulate`).
  emulate = selfTest && !ctx.subgroupMatrix;
  const support = ctx.subgroupMatrix ?? (selfTest ? { subgroupSize: 32, n8: true, f16Acc: true } : undefined);
  if (emulate) log('self-test: the subgroup-matrix programs run emulated (no subgroup matrices on this device)');
  if (!support) {
    const why = subgroupMatrixOffByEnv() ? 'FCM_OPT_SUBGROUP_MATRIX=0 is set' : 'this device has no f16 -> f32 16x16x16 subgroup matrices at a fixed subgroup size';
    log(`subgroup-matrix check: SKIPPED: ${why}; nothing to check (the fp16 path runs the present kernels here)`);
    return 0;
  }
  if (!emulate) {
    let why = '';
    const ok = await withTimeout(checkSubgroupMatrix(ctx, { onFailure: (w) => { why = w; }, timeoutMs: timeoutMs }), 4 * timeoutMs, 'the device check');
    log(`device check (src/runtime/subgroup-matrix-check.ts, what sessions run first): ${ok ? 'passed: fp16 sessions use the kernel' : `FAILED: ${why}`}`);
    if (!ok) failures++;
  }
  const limits = ctx.kernelLimits;
  log(`limits: workgroup storage ${limits.maxComputeWorkgroupStorageSize} B, ${limits.maxComputeInvocationsPerWorkgroup} invocations; iters ${iters}, rounds ${rounds}, heat ${heatMs} ms, budget ${budgetS} s`);
  try {
    copyGBs = await copyBandwidth(limits);
    log(`copy kernel (vec4 f32, 64 MiB): ${copyGBs.toFixed(0)} GB/s`);
  } catch (e) {
    if (e instanceof GpuHang) throw e;
    log(`copy kernel: ERROR ${(e as Error).message}`);
  }
  G().addEventListener?.('uncapturederror', (ev) => log(`uncaptured GPU error: ${(ev as GPUUncapturedErrorEvent).error.message.split('\n')[0]}`));
  let skipped = 0, index = 0;
  for (const batch of batches) {
    const layers = (await layersOf(batch, limits)).filter((L) => `[${L.geom.N},${L.geom.C},${L.geom.H},${L.geom.W}]->${L.geom.F}`.includes(match));
    log(`-- MobileNetV2 batch ${batch}: ${layers.length} pointwise layer shapes${layers.length > maxShapes ? ` (the first ${maxShapes}: --max-shapes)` : ''}`);
    for (const L of layers.slice(0, maxShapes)) {
      index++;
      if (elapsedS() > budgetS * (e2e ? 0.8 : 1)) { skipped++; continue; }
      try {
        await runLayer(L, support, index);
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
  if (e2e) {
    for (const batch of batches) {
      if (elapsedS() > budgetS) { log(`e2e batch ${batch}: skipped (time budget)`); continue; }
      try {
        await endToEnd(batch);
      } catch (e) {
        if (e instanceof GpuHang) throw e;
        log(`e2e batch ${batch}: ERROR ${(e as Error).message.split('\n')[0]}`);
      }
    }
  }
  const verdict = failures === 0 && checked > 0 ? 'PASS' : 'FAIL';
  log(`subgroup-matrix check: ${verdict} (${checked} f16 outputs checked against the f32 reference, ${failures} failures${skipped ? `, ${skipped} shapes skipped` : ''}; ${elapsedS().toFixed(0)} s)`);
  return verdict === 'PASS' ? 0 : 1;
}

/**
 * The compact end of the log: per layer (one line) the present f16 kernel, the default rule's pick, the pick with
 * direct variants, and the fastest variant that passed its check, with GB/s and % of the copy kernel's bandwidth; per
 * batch the summed times of each and the bandwidth of the sum.
 */
function summarize(): void {
  type C = { label: string; us?: number; over: number; nonFinite: number };
  const pct = (bytes: number, us: number) => (Number.isFinite(copyGBs) && us > 0 ? `${(100 * bytes / us / 1e3 / copyGBs).toFixed(0)}%` : '-');
  const gbs = (bytes: number, us: number) => (us > 0 ? (bytes / us / 1e3).toFixed(0) : '-');
  log(`-- summary (us; GB/s and % of the copy kernel's ${copyGBs.toFixed(0)} GB/s; 'rule': chooseSmxTiles, 'rule+d': with direct variants)`);
  for (const batch of batches) {
    const rows = results.filter((r) => r.batch === batch && Array.isArray(r.contestants));
    if (!rows.length) continue;
    let present = 0, chosen = 0, chosenD = 0, best = 0, bytes = 0;
    for (const r of rows) {
      const cs = r.contestants as C[];
      const ok = cs.filter((c) => c.over === 0 && c.nonFinite === 0 && c.us !== undefined && Number.isFinite(c.us));
      const f16 = cs.find((c) => c.label === 'f16')?.us ?? NaN;
      const pick = (mark: string) => cs.find((c) => (/\(([^)]*)\)$/.exec(c.label)?.[1].split(',') ?? []).includes(mark));
      const auto = pick('auto')?.us ?? f16, autoD = pick('auto+d')?.us ?? f16;
      const top = ok.reduce<C | undefined>((m, c) => (!m || c.us! < m.us! ? c : m), undefined);
      const rb = r.bytesF16 as number;
      present += f16; chosen += auto; chosenD += autoD; best += top?.us ?? f16; bytes += rb;
      const shape = `b${batch} [${r.N},${r.C},${r.H},${r.W}]->${r.F}`.padEnd(22);
      log(`${shape} present ${fmtUs(f16).padStart(5)} | rule ${String(r.auto ?? 'present').padEnd(14)} ${fmtUs(auto).padStart(5)} | rule+d ${String(r.autoDirect ?? 'present').padEnd(14)} ${fmtUs(autoD).padStart(5)} ` +
        `| best ${(top ? top.label.replace(/^smx /, '').replace(/ \(.*\)$/, '') : '-').padEnd(14)} ${fmtUs(top?.us).padStart(5)} ${gbs(rb, top?.us ?? 0).padStart(5)} GB/s ${pct(rb, top?.us ?? 0).padStart(4)}`);
    }
    const bad = rows.flatMap((r) => (r.contestants as C[]).filter((c) => c.over > 0 || c.nonFinite > 0).map((c) => `[${r.N},${r.C},${r.H},${r.W}]->${r.F} ${c.label}`));
    const errs = rows.flatMap((r) => ((r.errors as string[] | undefined) ?? []).map((e) => `[${r.N},${r.C},${r.H},${r.W}]->${r.F} ${e}`));
    if (bad.length || errs.length) log(`batch ${batch}: over the bound: ${bad.join('; ') || 'none'}; errors: ${errs.join('; ') || 'none'}`);
    log(`batch ${batch}: ${rows.length} shapes (each once), summed: present f16 ${present.toFixed(0)} us (${pct(bytes, present)} copy), rule ${chosen.toFixed(0)} (${(present / chosen).toFixed(2)}x, ${pct(bytes, chosen)}), ` +
      `rule+d ${chosenD.toFixed(0)} (${(present / chosenD).toFixed(2)}x, ${pct(bytes, chosenD)}), best of all variants ${best.toFixed(0)} (${(present / best).toFixed(2)}x, ${pct(bytes, best)})`);
  }
}

main().then(async (code) => {
  writeOut();
  clearTimeout(watchdog);
  await releaseGpu();
  process.exit(code);
}, async (e) => {
  log(`subgroup-matrix check: FAIL: ${e instanceof GpuHang ? 'the GPU stopped answering: ' : ''}${e instanceof Error ? e.message : String(e)}`);
  if (!(e instanceof GpuHang) && e instanceof Error && e.stack) console.log(e.stack);
  writeOut();
  process.exit(5);
});
