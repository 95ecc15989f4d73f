// Layer kernel benchmark: every pointwise and depthwise layer of a zoo model, timed alone on the GPU with each
// kernel variant it can take (kernels/pointwise.ts dotProgram choices and gemm tiles, kernels/depthwise.ts row
// widths), at several batches. It is what chooseDot's and depthwiseRowOutputs' rules are read from, and the
// bandwidth figure per kernel. Three reference kernels end it: a vec4 copy (the bandwidth), fp32 FMA chains (the
// throughput) and an empty dispatch (the floor under every layer), and each kind's layers are summed against their
// roofline, max(bytes / copy, FLOPs / FMA peak).
//
// Run: npm run build && node dist/bench/layer-kernels.js [--models mobilenet_v2] [--batches 1,8,32] [--iters 20]
//      [--heat-ms 20] [--rounds 3] [--out DIR] [--auto-only] [--dw-variants] [--px2] [--un]   (on the GPU machine: DEVELOPERS.md, `source .gpu/enter.sh` first)
//      --models '' times the two reference kernels only.
// GPU time per dispatch: timestamps around one pass of `iters` repetitions, median of 5 passes (fcm-kernels.ts).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportOnnx } from '../converters/onnx/export.js';
import { loadModel } from '../src/graph/load.js';
import { zooModels } from '../fixtures/zoo.js';
import { convGeom, convBindings, isDepthwise, isPointwise, geomKey, type ConvGeom } from '../kernels/conv-common.js';
import { type DotChoice, type DotGeom, type GemmTiles, chooseDot, dotProgram, gemmStorage } from '../kernels/pointwise.js';
import { depthwiseRowOutputs, depthwiseRows } from '../kernels/depthwise.js';
import type { KernelProgram } from '../kernels/program.js';
import { closeDevice, getDevice, limitsOf, prepare, release } from '../test/kernels/fused-harness.js';
import { timeSteps } from './fcm-kernels.js';
import { threadCap } from '../kernels/shader.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

// --models '': only the copy and FMA reference kernels.
const models = arg('models', 'mobilenet_v2').split(',').filter((m) => m);
const batches = arg('batches', '1,8,32').split(',').map(Number);
const iters = Number(arg('iters', '20'));
const outDir = arg('out', '');
const heatMs = Number(arg('heat-ms', '20'));
const rounds = Number(arg('rounds', '3'));
const autoOnly = process.argv.includes('--auto-only');
const median = (a: number[]) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };

const gemmPx2Variants: [number, number, number][] = [[8, 8, 8], [16, 8, 8], [8, 16, 8], [16, 16, 8], [16, 16, 4], [8, 8, 4]];
const gemmVariants: [number, number, number][] = [[16, 16, 4], [16, 8, 4], [32, 8, 4], [8, 16, 4], [4, 16, 4], [16, 8, 8], [8, 8, 8], [16, 4, 8], [32, 4, 8], [8, 4, 8]];

interface Row { model: string; batch: number; layer: string; kind: 'pw' | 'dw'; shape: string; mb: number; gflop: number; auto: string; us: Record<string, number> }

async function main() {
  const device = await getDevice();
  const limits = limitsOf(device);
  const rows: Row[] = [];
  for (const model of models) {
    for (const batch of batches) {
      const g = await loadModel(exportOnnx(zooModels[model](batch)), { source: `${model}.onnx`, batch });
      const seen = new Set<string>();
      for (const node of g.nodes) {
        if (node.op !== 'Conv') continue;
        const shapeOf = (t: string) => (t ? g.tensors.get(t)?.shape : undefined);
        const geom = convGeom({ node, inputShapes: node.inputs.map(shapeOf), outputShapes: node.outputs.map((t) => shapeOf(t) ?? []), limits });
        const pw = isPointwise(geom), dw = isDepthwise(geom);
        if (!pw && !dw) continue;
        const key = geomKey(geom);
        if (seen.has(key)) continue;
        seen.add(key);
        const all = pw ? pwVariants(geom, limits) : dwVariants(geom, limits);
        // --auto-only: the kernels the executor picks (the bandwidth figure), not the variants.
        // --dw-variants: depthwise layers with all their variants even with --auto-only.
        const variants = autoOnly && !(dw && process.argv.includes('--dw-variants')) ? all.slice(0, 1) : all;
        const b = convBindings(geom);
        const sizes = [geom.N * geom.C * geom.H * geom.W, geom.F * (geom.C / geom.group) * geom.kh * geom.kw, geom.F, geom.N * geom.F * geom.HO * geom.WO];
        const prepared = [];
        for (const [, program] of variants) {
          prepared.push(await prepare(device, program, b.inputs.map((k) => new Float32Array(sizes[k]).fill(0.01)), sizes[3]));
        }
        // Rounds over all the variants, each heated first: a variant's median is not its position in the list.
        const samples: number[][] = variants.map(() => []);
        for (let r = 0; r < rounds; r++) {
          for (let v = 0; v < variants.length; v++) {
            samples[v].push(await timeSteps(device, [{ program: variants[v][1], prepared: prepared[v] }], iters, heatMs));
          }
        }
        prepared.forEach(release);
        const us: Record<string, number> = {};
        variants.forEach(([name], v) => { us[name] = median(samples[v]); });
        const bytes = 4 * (sizes[0] + sizes[1] + (geom.hasBias ? sizes[2] : 0) + sizes[3]);
        const gflop = 2 * sizes[3] * (geom.C / geom.group) * geom.kh * geom.kw / 1e9;
        const row: Row = {
          model, batch, layer: node.name, kind: pw ? 'pw' : 'dw',
          shape: `${geom.N}x${geom.C}x${geom.H}x${geom.W}->${geom.F}x${geom.HO}x${geom.WO} k${geom.kh}s${geom.sh}`,
          mb: bytes / 1e6, gflop, auto: variants[0][0].replace(/^auto /, ''), us,
        };
        rows.push(row);
        const best = Object.entries(us).sort((a, b2) => a[1] - b2[1])[0];
        console.log(`${model} b${batch} ${row.kind} ${row.shape}: auto ${us[variants[0][0]].toFixed(1)} us (${(bytes / us[variants[0][0]] / 1e3).toFixed(0)} GB/s, ` +
          `${(gflop / us[variants[0][0]] * 1e3).toFixed(1)} TFLOPS) best ${best[0]} ${best[1].toFixed(1)}; ` +
          Object.entries(us).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', '));
      }
      for (const kind of ['pw', 'dw'] as const) {
        const r = rows.filter((x) => x.model === model && x.batch === batch && x.kind === kind);
        const sum = (f: (x: Row) => number) => r.reduce((a, x) => a + f(x), 0);
        const autoUs = sum((x) => x.us[Object.keys(x.us)[0]]), bestUs = sum((x) => Math.min(...Object.values(x.us)));
        const oldUs = sum((x) => x.us[Object.keys(x.us).find((k) => k.startsWith('old') || k === 'rw1') ?? Object.keys(x.us)[0]]);
        console.log(`== ${model} b${batch} ${kind}: ${r.length} unique layers, auto ${autoUs.toFixed(0)} us (${(sum((x) => x.mb) / autoUs * 1e3).toFixed(0)} GB/s), ` +
          `previous kernel variant (old or rw1) ${oldUs.toFixed(0)} us, best variant per layer ${bestUs.toFixed(0)} us (${(sum((x) => x.mb) / bestUs * 1e3).toFixed(0)} GB/s)`);
      }
    }
  }
  const copyGbps = await copyBandwidth(device);
  console.log(`copy kernel (vec4, heated): ${copyGbps.toFixed(0)} GB/s`);
  const fmaTflops = await fmaPeak(device);
  console.log(`fp32 FMA kernel (heated): ${fmaTflops.toPrecision(3)} TFLOPS`);
  const floorUs = await dispatchFloor(device);
  console.log(`empty dispatch (1 workgroup, timed as the layers are): ${floorUs.toFixed(2)} us`);
  // The roofline of each layer from the two references: max(bytes / copy, FLOPs / FMA peak). A layer whose 60% of
  // copy bandwidth would need more than the FMA peak cannot reach it in fp32.
  const roofUs = (x: Row) => Math.max(x.mb / copyGbps, x.gflop / fmaTflops) * 1e3;
  for (const model of models) {
    for (const batch of batches) {
      for (const kind of ['pw', 'dw'] as const) {
        const r = rows.filter((x) => x.model === model && x.batch === batch && x.kind === kind);
        const autoUs = r.reduce((a, x) => a + x.us[Object.keys(x.us)[0]], 0), roof = r.reduce((a, x) => a + roofUs(x), 0);
        const over = r.filter((x) => x.gflop / (x.mb / (0.6 * copyGbps)) > fmaTflops).length;
        console.log(`roofline ${model} b${batch} ${kind}: ${roof.toFixed(0)} us, auto ${autoUs.toFixed(0)} us = ${(100 * roof / autoUs).toFixed(0)}% of it; ` +
          `${over} of ${r.length} layers need more than ${fmaTflops.toPrecision(3)} TFLOPS for 60% of copy; ` +
          `${r.length} x the empty dispatch = ${(r.length * floorUs).toFixed(0)} us of the ${autoUs.toFixed(0)}`);
      }
    }
  }
  if (outDir) { mkdirSync(outDir, { recursive: true }); writeFileSync(join(outDir, 'layer-kernels.json'), JSON.stringify({ copyGbps, fmaTflops, floorUs, rows }, null, 1)); }
  await closeDevice();
}

/** GB/s (bytes read + written) of a vec4 copy of 256 MiB (less where bindings are smaller), heated and timed like the layers: the bandwidth reference. */
async function copyBandwidth(device: GPUDevice): Promise<number> {
  const n4 = Math.min(2 ** 24, device.limits.maxStorageBufferBindingSize / 32), wgs = n4 / 256;
  const program: KernelProgram = {
    name: 'copy', cacheKey: 'copy', workgroupSize: [256, 1, 1], dispatch: [Math.min(wgs, 65535), Math.ceil(wgs / 65535), 1],
    inputs: [0], outputs: 1, workgroupStorageBytes: 0,
    wgsl: `
@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let i = g.x + g.y * ${Math.min(wgs, 65535) * 256}u;
  if (i < ${n4}u) { out[i] = a[i]; }
}`,
  };
  const prepared = await prepare(device, program, [new Float32Array(4 * n4)], 4 * n4);
  const us: number[] = [];
  for (let r = 0; r < rounds; r++) us.push(await timeSteps(device, [{ program, prepared }], iters, heatMs));
  release(prepared);
  return (2 * 16 * n4) / median(us) / 1e3;
}

/**
 * TFLOP/s of a kernel that only does fp32 FMAs (16 independent vec4 chains per thread, 2^20 threads): what WGSL
 * through Dawn reaches of the chip's fp32 peak, the ceiling of a compute-bound pointwise layer.
 */
async function fmaPeak(device: GPUDevice): Promise<number> {
  const threads = 2 ** 20, steps = 256, chains = 16, wgs = threads / 256;
  const body = Array.from({ length: chains }, (_, j) => `    a${j} = fma(a${j}, m, c);`).join('\n');
  const program: KernelProgram = {
    name: 'fma', cacheKey: 'fma', workgroupSize: [256, 1, 1], dispatch: [wgs, 1, 1],
    inputs: [0], outputs: 1, workgroupStorageBytes: 0,
    wgsl: `
@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let m = a[0];
  let c = a[1];
${Array.from({ length: chains }, (_, j) => `  var a${j} = vec4<f32>(f32(g.x + ${j}u));`).join('\n')}
  for (var s = 0u; s < ${steps}u; s++) {
${body}
  }
  out[g.x] = ${Array.from({ length: chains }, (_, j) => `a${j}`).join(' + ')};
}`,
  };
  // m = 1 - 2^-20, c = 2^-20: the chains stay finite and cannot be folded away.
  const input = new Float32Array(8);
  input.fill(1 - 2 ** -20, 0, 4);
  input.fill(2 ** -20, 4, 8);
  const prepared = await prepare(device, program, [input], 4 * threads);
  const us: number[] = [];
  for (let r = 0; r < rounds; r++) us.push(await timeSteps(device, [{ program, prepared }], iters, heatMs));
  release(prepared);
  return (threads * steps * chains * 4 * 2) / median(us) / 1e6;
}

/**
 * GPU time of a dispatch that does almost nothing (one workgroup of 64 threads copying 64 floats), timed as the layers
 * are: the floor under every layer's figure (the barrier and launch between dependent dispatches in one pass).
 */
async function dispatchFloor(device: GPUDevice): Promise<number> {
  const program: KernelProgram = {
    name: 'empty', cacheKey: 'empty', workgroupSize: [64, 1, 1], dispatch: [1, 1, 1], inputs: [0], outputs: 1, workgroupStorageBytes: 0,
    wgsl: `
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(local_invocation_index) i: u32) { out[i] = a[i]; }`,
  };
  const prepared = await prepare(device, program, [new Float32Array(64)], 64);
  const us: number[] = [];
  for (let r = 0; r < rounds; r++) us.push(await timeSteps(device, [{ program, prepared }], iters, heatMs));
  release(prepared);
  return median(us);
}

function pwVariants(g: ConvGeom, limits: ReturnType<typeof limitsOf>): [string, KernelProgram][] {
  const dot: DotGeom = { N: g.N, C: g.C, F: g.F, P: g.H * g.W, hasBias: g.hasBias, hasRes: g.hasRes, hasScale: g.hasScale, act: g.act };
  const b = convBindings(g);
  const name = (c: DotChoice) => (c.kind === 'gemm' ? `gemm ${c.tiles.tx}x${c.tiles.ty}r${c.tiles.rf}${c.tiles.ks ? `k${c.tiles.ks}` : ''}${c.tiles.px ? `p${c.tiles.px}` : ''}${c.tiles.bk ? `b${c.tiles.bk}` : ''}${c.tiles.un ? 'U' : ''}` : c.kind === 'vec4' ? `vec4 r${c.rf}` : `splitK ${c.ks}`);
  const choices: [string, DotChoice][] = [];
  const auto = chooseDot(dot, limits);
  choices.push([`auto ${name(auto)}`, auto]);
  const fits = (t: GemmTiles) => t.tx * t.ty * (t.ks ?? 1) <= threadCap(limits) && gemmStorage(t) <= limits.maxComputeWorkgroupStorageSize;
  // --un: the gemm's unrolled WGSL (un) on the auto tiles and larger thread tiles.
  if (process.argv.includes('--un')) {
    const base: GemmTiles[] = [...(auto.kind === 'gemm' ? [auto.tiles] : []), { tx: 16, ty: 16, rf: 4 }, { tx: 16, ty: 8, rf: 8 }, { tx: 8, ty: 8, rf: 8 },
      { tx: 8, ty: 8, rf: 8, px: 2 }, { tx: 16, ty: 8, rf: 8, px: 2 }, { tx: 8, ty: 16, rf: 4, px: 2 }, { tx: 16, ty: 16, rf: 4, px: 2 }, { tx: 8, ty: 8, rf: 4, ks: 2 }, { tx: 8, ty: 8, rf: 8, ks: 2 }, { tx: 8, ty: 8, rf: 8, px: 2, ks: 2 },
      { tx: 8, ty: 8, rf: 8, ks: 4 }, { tx: 8, ty: 8, rf: 8, px: 2, ks: 4 }, { tx: 16, ty: 8, rf: 8, ks: 2 }];
    for (const t of base) {
      const c: DotChoice = { kind: 'gemm', tiles: { ...t, un: true } };
      if (fits(c.tiles) && !choices.some(([n]) => n === name(c))) choices.push([name(c), c]);
    }
    return choices.map(([n, c]) => [n, dotProgram(dot, c, b.names, b.inputs, limits, n, 'Conv(pw)', 'pointwise')]);
  }
  const noGemm = chooseDot(dot, limits, { gemm: false });
  choices.push([`old ${name(noGemm)}`, noGemm]);
  for (const [tx, ty, rf] of gemmVariants) {
    if (tx * ty > 256) continue;
    const c: DotChoice = { kind: 'gemm', tiles: { tx, ty, rf } };
    choices.push([name(c), c]);
  }
  // 8 positions per thread (px 2): 64 accumulators, 4 staged loads per 64 FMAs (--px2: slower everywhere, s9/px2/).
  for (const [tx, ty, rf] of process.argv.includes('--px2') ? gemmPx2Variants : []) {
    const tiles = { tx, ty, rf, px: 2 };
    if (tx * ty > threadCap(limits) || gemmStorage(tiles) > limits.maxComputeWorkgroupStorageSize) continue;
    const c: DotChoice = { kind: 'gemm', tiles };
    choices.push([name(c), c]);
  }
  // 32 or 64 channels per staging step (bk), on the auto rule's tiles and common ones.
  for (const t of [...(auto.kind === 'gemm' ? [auto.tiles] : []), { tx: 8, ty: 8, rf: 4 }, { tx: 16, ty: 8, rf: 4 }, { tx: 16, ty: 16, rf: 4 }, { tx: 8, ty: 8, rf: 8 }]) {
    for (const o of [{ bk: 32 }, { bk: 64 }]) {
      const tiles: GemmTiles = { ...t, ...o };
      if (tiles.tx * tiles.ty * (tiles.ks ?? 1) > threadCap(limits) || gemmStorage(tiles) > limits.maxComputeWorkgroupStorageSize) continue;
      const c: DotChoice = { kind: 'gemm', tiles };
      if (!choices.some(([n]) => n === name(c))) choices.push([name(c), c]);
    }
  }
  // K slices on the tiles of the auto rule and on a few narrower ones.
  const base = auto.kind === 'gemm' ? auto.tiles : { tx: 4, ty: 16, rf: 4 };
  const seen = new Set(choices.map(([n]) => n));
  for (const t of [base, { tx: 4, ty: 16, rf: 4 }, { tx: 8, ty: 8, rf: 4 }, { tx: 4, ty: 8, rf: 4 }, { tx: 8, ty: 4, rf: 8 }]) {
    for (const ks of [2, 4, 8]) {
      const tiles = { tx: t.tx, ty: t.ty, rf: t.rf, ks };
      if (seen.has(name({ kind: 'gemm', tiles }))) continue;
      seen.add(name({ kind: 'gemm', tiles }));
      if (tiles.tx * tiles.ty * ks > threadCap(limits) || 16 * 16 * (t.tx + t.ty * t.rf / 4) * ks + 16 * t.tx * t.ty * t.rf > limits.maxComputeWorkgroupStorageSize) continue;
      const c: DotChoice = { kind: 'gemm', tiles };
      choices.push([name(c), c]);
    }
  }
  return choices.map(([n, c]) => [n, dotProgram(dot, c, b.names, b.inputs, limits, n, 'Conv(pw)', 'pointwise')]);
}

function dwVariants(g: ConvGeom, limits: ReturnType<typeof limitsOf>): [string, KernelProgram][] {
  const auto = depthwiseRowOutputs(g);
  return [[`auto rw${auto}`, depthwiseRows(g, auto, limits, 'dw')], ...[1, 2, 4].map((rw) => [`rw${rw}`, depthwiseRows(g, rw, limits, 'dw')] as [string, KernelProgram])];
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
