// Layer kernel benchmark: every pointwise and depthwise layer of a zoo model, timed alone on the GPU with each
// kernel variant it can take (kernels/pointwise.ts dotProgram choices and gemm tiles, kernels/depthwise.ts row
// widths and vector loads), at several batches and in fp32 and fp16. It is what chooseDot's, depthwiseRowOutputs' and
// depthwiseHalfTiles' rules are read from, and the bandwidth figure per kernel. Reference kernels: a vec4 copy (the
// bandwidth; timed first and last, the larger figure is the reference), fp32 FMA chains (the throughput) and an
// empty dispatch (the floor under every layer); each kind's layers are summed against their roofline,
// max(bytes / copy, FLOPs / FMA peak).
//
// fp16 (--precisions fp32,fp16 or --precision fp16): the same layers with every tensor f16, as a session runs them:
// 'auto' is what the registry picks (kernels/registry.ts kernelFor with f16 storage and the device's features: the
// subgroup-matrix pointwise kernel where the adapter has it, the vector-load depthwise kernel), 'plain' the fp32
// kernel's WGSL with f16 storage (kernels/f16.ts) at the fp32 rule's choice. Bytes count 2 per element; the copy
// reference is the same vec4<f32> copy (bytes are bytes), and a vec4<f16> copy is reported beside it.
//
// Run: npm run build && node dist/bench/layer-kernels.js [--models mobilenet_v2] [--batches 1,8,32] [--iters 20]
//      [--heat-ms 20] [--rounds 3] [--out DIR] [--auto-only] [--dw-variants] [--px2] [--un] [--precisions fp32,fp16]
//      (on the GPU machine: DEVELOPERS.md, `source .gpu/enter.sh` first)
//      [--kinds pw,dw]   --models '' times the reference kernels only; --kinds dw (or pw): one kind of layer only.
//      --vec4-only: of the pointwise variants, the rule's and the vec4 ones only.
//      --auto-only: the kernels the executor picks (fp16: and the plain f16 kernel), no variants; --dw-variants:
//      depthwise layers with all their variants even with --auto-only (fp32: also the vector-load kernel).
// GPU time per dispatch: timestamps around one pass of `iters` repetitions, median of 5 passes (fcm-kernels.ts);
// median of `rounds` rounds, each round over all of a layer's variants. Ends with a compact summary.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportOnnx } from '../converters/onnx/export.js';
import { loadModel } from '../src/graph/load.js';
import { zooModels } from '../fixtures/zoo.js';
import { convGeom, convBindings, isDepthwise, isPointwise, geomKey, type ConvGeom } from '../kernels/conv-common.js';
import { type DotChoice, type DotGeom, type GemmTiles, chooseDot, dotProgram, gemmStorage } from '../kernels/pointwise.js';
import { depthwiseHalfTiles, depthwiseRowOutputs, depthwiseRows, depthwiseVecFits, depthwiseVecRows } from '../kernels/depthwise.js';
import { withStorage } from '../kernels/f16.js';
import { kernelFor } from '../kernels/registry.js';
import type { KernelLimits, KernelProgram } from '../kernels/program.js';
import { type Prepared, pipelineOf, prepare, release } from '../test/kernels/fused-harness.js';
import { acquireGpu, describeDevice, releaseGpu } from '../src/runtime/device.js';
import { toHalf } from '../src/runtime/half.js';
import { timeSteps } from './fcm-kernels.js';
import { threadCap } from '../kernels/shader.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

type Precision = 'fp32' | 'fp16';
// --models '': only the reference kernels.
const models = arg('models', 'mobilenet_v2').split(',').filter((m) => m);
const batches = arg('batches', '1,8,32').split(',').map(Number);
const iters = Number(arg('iters', '20'));
const outDir = arg('out', '');
const heatMs = Number(arg('heat-ms', '20'));
const rounds = Number(arg('rounds', '3'));
const autoOnly = process.argv.includes('--auto-only');
const dwVariantsToo = process.argv.includes('--dw-variants');
// --kinds dw: depthwise layers only (pw: pointwise only).
const kinds = arg('kinds', 'pw,dw').split(',');
const precisions = arg('precisions', arg('precision', 'fp32')).split(',').filter((p) => p) as Precision[];
for (const p of precisions) if (p !== 'fp32' && p !== 'fp16') throw new Error(`--precisions: '${p}' is neither fp32 nor fp16`);
const median = (a: number[]) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
const start = performance.now();

const gemmPx2Variants: [number, number, number][] = [[8, 8, 8], [16, 8, 8], [8, 16, 8], [16, 16, 8], [16, 16, 4], [8, 8, 4]];
const gemmVariants: [number, number, number][] = [[16, 16, 4], [16, 8, 4], [32, 8, 4], [8, 16, 4], [4, 16, 4], [16, 8, 8], [8, 8, 8], [16, 4, 8], [32, 4, 8], [8, 4, 8]];

interface Row {
  model: string; batch: number; precision: Precision; layer: string; kind: 'pw' | 'dw'; shape: string; mb: number; gflop: number;
  /** The kernel the executor runs (the first entry of us). */
  auto: string;
  /** GPU us per dispatch by variant name; the first is 'auto ...'. */
  us: Record<string, number>;
  geomW: number; geomWO: number; geomSW: number;
}

const autoUsOf = (x: Row) => x.us[Object.keys(x.us)[0]];
const bestOf = (x: Row) => Object.entries(x.us).sort((a, b) => a[1] - b[1])[0];
/** The fp16 'plain' variant (the fp32 WGSL with f16 storage at the fp32 rule's choice); the auto kernel where that is it. */
const plainUsOf = (x: Row) => x.us[Object.keys(x.us).find((k) => k.startsWith('plain')) ?? Object.keys(x.us)[0]];

async function main() {
  const ctx = await acquireGpu();
  const device = ctx.device;
  const limits = ctx.kernelLimits;
  console.log(`device: ${ctx.adapterInfo.vendor} ${ctx.adapterInfo.description || ctx.adapterInfo.device} (${describeDevice(ctx)})`);
  if (precisions.includes('fp16') && !ctx.shaderF16) throw new Error('--precisions fp16: the device has no shader-f16');
  const copyFirst = await copyBandwidth(device, 'f32');
  console.log(`copy kernel (vec4<f32>, heated): ${copyFirst.toFixed(0)} GB/s`);
  const rows: Row[] = [];
  for (const model of models) {
    for (const batch of batches) {
      const g = await loadModel(exportOnnx(zooModels[model](batch)), { source: `${model}.onnx`, batch });
      for (const precision of precisions) {
        const seen = new Set<string>();
        for (const node of g.nodes) {
          if (node.op !== 'Conv') continue;
          const shapeOf = (t: string) => (t ? g.tensors.get(t)?.shape : undefined);
          const inputShapes = node.inputs.map(shapeOf), outputShapes = node.outputs.map((t) => shapeOf(t) ?? []);
          const geom = convGeom({ node, inputShapes, outputShapes, limits });
          const pw = isPointwise(geom), dw = isDepthwise(geom);
          if ((!pw || !kinds.includes('pw')) && (!dw || !kinds.includes('dw'))) continue;
          const key = geomKey(geom);
          if (seen.has(key)) continue;
          seen.add(key);
          const withVariants = !autoOnly || (dw && dwVariantsToo);
          let variants: [string, KernelProgram][];
          if (precision === 'fp32') {
            const all = pw ? pwVariants(geom, limits) : dwVariants(geom, limits, withVariants);
            variants = withVariants ? all : all.slice(0, 1);
          } else {
            const k = kernelFor(node, inputShapes, outputShapes, limits, 'f16', { subgroupMatrix: ctx.subgroupMatrix });
            if (k.kind !== 'programs' || k.programs.length !== 1) throw new Error(`${node.name}: expected one f16 program`);
            variants = f16Variants(geom, limits, k.programs[0], withVariants);
          }
          rows.push(await timeLayer(device, model, batch, precision, node.name, geom, variants, copyFirst));
        }
        for (const kind of ['pw', 'dw'] as const) {
          const r = rows.filter((x) => x.model === model && x.batch === batch && x.precision === precision && x.kind === kind);
          if (!r.length) continue;
          const mb = r.reduce((a, x) => a + x.mb, 0);
          const autoUs = r.reduce((a, x) => a + autoUsOf(x), 0), bestUs = r.reduce((a, x) => a + bestOf(x)[1], 0);
          console.log(`== ${model} b${batch} ${precision} ${kind}: ${r.length} unique layers, auto ${autoUs.toFixed(0)} us (${(mb / autoUs * 1e3).toFixed(0)} GB/s, ` +
            `${(100 * mb / autoUs * 1e3 / copyFirst).toFixed(0)}% of copy), best variant per layer ${bestUs.toFixed(0)} us (${(mb / bestUs * 1e3).toFixed(0)} GB/s)`);
        }
      }
    }
  }
  const copyHalf = precisions.includes('fp16') ? await copyBandwidth(device, 'f16') : 0;
  const fmaTflops = await fmaPeak(device);
  const floorUs = await dispatchFloor(device);
  const copyLast = await copyBandwidth(device, 'f32');
  const copyGbps = Math.max(copyFirst, copyLast);
  if (outDir) {
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, 'layer-kernels.json'), JSON.stringify({ device: describeDevice(ctx), copyGbps, copyFirst, copyLast, copyHalf, fmaTflops, floorUs, rows }, null, 1));
  }
  summary(rows, { copyGbps, copyFirst, copyLast, copyHalf, fmaTflops, floorUs });
  await releaseGpu();
}

/** Times one layer's variants (heated, in rounds over all of them) and logs one line. */
async function timeLayer(device: GPUDevice, model: string, batch: number, precision: Precision, layer: string, geom: ConvGeom,
  variants: [string, KernelProgram][], copyGbps: number): Promise<Row> {
  const pw = isPointwise(geom);
  const bpe = precision === 'fp16' ? 2 : 4;
  // Elements of the node's inputs x, w, b, residual, channel scale (program.inputs indexes these), and of the output.
  const sizes = [geom.N * geom.C * geom.H * geom.W, geom.F * (geom.C / geom.group) * geom.kh * geom.kw, geom.F, geom.N * geom.F * geom.HO * geom.WO, geom.N * geom.C];
  const outN = sizes[3];
  const prepared: Prepared[] = [];
  for (const [, program] of variants) {
    prepared.push(precision === 'fp32'
      ? await prepare(device, program, program.inputs.map((k) => new Float32Array(sizes[k]).fill(0.01)), outN)
      : await prepareHalf(device, program, program.inputs.map((k) => sizes[k]), outN));
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
  const elements = sizes[0] + sizes[1] + (geom.hasBias ? sizes[2] : 0) + (geom.hasRes ? sizes[3] : 0) + sizes[3];
  const bytes = bpe * elements;
  const gflop = 2 * sizes[3] * (geom.C / geom.group) * geom.kh * geom.kw / 1e9;
  const row: Row = {
    model, batch, precision, layer, kind: pw ? 'pw' : 'dw',
    shape: `${geom.N}x${geom.C}x${geom.H}x${geom.W}->${geom.F}x${geom.HO}x${geom.WO} k${geom.kh}s${geom.sh}${geom.hasRes ? '+r' : ''}`,
    mb: bytes / 1e6, gflop, auto: variants[0][0].replace(/^auto /, ''), us, geomW: geom.W, geomWO: geom.WO, geomSW: geom.sw,
  };
  const a = autoUsOf(row), best = bestOf(row);
  console.log(`${model} b${batch} ${precision} ${row.kind} ${row.shape}: auto ${a.toFixed(1)} us (${(bytes / a / 1e3).toFixed(0)} GB/s, ` +
    `${(100 * bytes / a / 1e3 / copyGbps).toFixed(0)}% of copy, ${(gflop / a * 1e3).toFixed(1)} TFLOPS) best ${best[0]} ${best[1].toFixed(1)}; ` +
    Object.entries(us).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', '));
  return row;
}

/** Like the harness's prepare, with f16 buffers (every element 0.01 in binary16; the output filled with NaN bits). */
async function prepareHalf(device: GPUDevice, program: KernelProgram, inputElements: number[], outputElements: number): Promise<Prepared> {
  const make = (n: number, value: number, usage: number) => {
    const h = toHalf(new Float32Array(n).fill(value));
    const b = device.createBuffer({ size: Math.max(4, Math.ceil(h.byteLength / 4) * 4), usage, mappedAtCreation: true });
    new Uint16Array(b.getMappedRange(), 0, n).set(h);
    b.unmap();
    return b;
  };
  device.pushErrorScope('validation');
  const pipeline = await pipelineOf(device, program.wgsl, program.name);
  const buffers = inputElements.map((n) => make(n, 0.01, GPUBufferUsage.STORAGE));
  const output = make(outputElements, NaN, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [...buffers, output].map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const err = await device.popErrorScope();
  if (err) throw new Error(`${program.name} (${program.cacheKey}): ${err.message}`);
  return { pipeline, bindGroup, output, outputBytes: 2 * outputElements, buffers: [...buffers, output] };
}

/**
 * The fp16 variants of one layer: the registry's program ('auto', `registry`), the plain f16 kernel (the fp32 rule's
 * program with f16 storage) where it differs, and with `all` the other pointwise choices with f16 storage or the
 * depthwise splits (rw x vx) that fit.
 */
function f16Variants(g: ConvGeom, limits: KernelLimits, registry: KernelProgram, all: boolean): [string, KernelProgram][] {
  const pw = isPointwise(g);
  const plain = pw ? pwVariants(g, limits) : dwVariants(g, limits);
  const smx = /^pointwise-smx/.test(registry.cacheKey);
  // A plain pointwise program the registry picked is named for the fp32 variant it is the f16 form of (the fp32 rule's
  // unless an f16 rule chose another).
  const plainAuto = pw && !smx ? plain.find(([, p]) => withStorage(p, 'f16').cacheKey === registry.cacheKey) : undefined;
  const autoName = smx ? `auto smx ${registry.cacheKey.split('|')[9]}`
    : pw ? `auto ${(plainAuto?.[0] ?? `? ${registry.cacheKey}`).replace(/^(auto|old) /, '')}` : `auto rw${depthwiseHalfTiles(g).rw}v${depthwiseHalfTiles(g).vx}`;
  const out: [string, KernelProgram][] = [[autoName, registry]];
  const keys = new Set([registry.cacheKey]);
  const add = (name: string, p: KernelProgram) => { if (!keys.has(p.cacheKey)) { keys.add(p.cacheKey); out.push([name, p]); } };
  add(`plain ${plain[0][0].replace(/^auto /, '')}`, withStorage(plain[0][1], 'f16'));
  if (!all) return out;
  if (pw) {
    for (const [name, p] of plain.slice(1)) add(name, withStorage(p, 'f16'));
    return out;
  }
  // Depthwise: each row width with the widest input vector that fits (rw 4 and 8 also with the next narrower), and the
  // rule's row width and twice it with 2 output rows per invocation.
  const widest = (rw: number) => [4, 2, 1].find((vx) => depthwiseVecFits(g, { rw, vx }))!;
  for (const rw of [1, 2, 4, 8]) {
    if (rw > g.WO && rw > 1) continue;
    const fits = [4, 2, 1].filter((vx) => depthwiseVecFits(g, { rw, vx }));
    for (const vx of fits.slice(0, rw >= 4 ? 2 : 1)) add(`rw${rw}v${vx}`, withStorage(depthwiseVecRows(g, { rw, vx }, limits, 'dw'), 'f16'));
  }
  const rule = depthwiseHalfTiles(g).rw;
  for (const rw of new Set([rule, wideRw(g)])) add(`rw${rw}v${widest(rw)}h2`, withStorage(depthwiseVecRows(g, { rw, vx: widest(rw), rh: 2 }, limits, 'dw'), 'f16'));
  return out;
}

/** A wider f16 rule to weigh against depthwiseHalfTiles': twice its outputs per invocation (at most 8, and no more than the row). */
const wideRw = (g: ConvGeom) => { const rw = depthwiseHalfTiles(g).rw; return 2 * rw <= Math.min(8, g.WO) ? 2 * rw : rw; };
/** The variant names of the wider rule, one and two rows per invocation (absent: the auto kernel). */
const wideNames = (g: Pick<Row, 'geomW' | 'geomWO' | 'geomSW'>) => {
  const geom = { W: g.geomW, WO: g.geomWO, sw: g.geomSW } as ConvGeom;
  const rw = wideRw(geom), vx = [4, 2, 1].find((v) => depthwiseVecFits(geom, { rw, vx: v }))!;
  return [`rw${rw}v${vx}`, `rw${rw}v${vx}h2`];
};

/** The compact end of the output (the last lines a reader sees): device references, then per model, batch and precision, each kind's sums and its layers. */
function summary(rows: Row[], r: { copyGbps: number; copyFirst: number; copyLast: number; copyHalf: number; fmaTflops: number; floorUs: number }): void {
  const pct = (mb: number, us: number) => `${(mb / us * 1e3).toFixed(0)} GB/s ${(100 * mb / us * 1e3 / r.copyGbps).toFixed(0)}%`;
  const roofUs = (x: Row) => Math.max(x.mb / r.copyGbps, x.gflop / r.fmaTflops) * 1e3;
  console.log(`\n==== summary (${((performance.now() - start) / 1000).toFixed(0)} s) ====`);
  console.log(`copy (vec4<f32>, heated): ${r.copyFirst.toFixed(0)} GB/s first, ${r.copyLast.toFixed(0)} last; reference ${r.copyGbps.toFixed(0)} (the larger)` +
    `${r.copyHalf ? `; vec4<f16> copy ${r.copyHalf.toFixed(0)} GB/s` : ''}; fp32 FMA ${r.fmaTflops.toPrecision(3)} TFLOPS; empty dispatch ${r.floorUs.toFixed(2)} us`);
  console.log('% = of the copy reference; bytes = inputs + weights + bias + residual + output at 4 (fp32) or 2 (fp16) bytes per element');
  for (const model of models) {
    for (const batch of batches) {
      for (const precision of precisions) {
        for (const kind of ['dw', 'pw'] as const) {
          const rs = rows.filter((x) => x.model === model && x.batch === batch && x.precision === precision && x.kind === kind);
          if (!rs.length) continue;
          const mb = rs.reduce((a, x) => a + x.mb, 0);
          const autoUs = rs.reduce((a, x) => a + autoUsOf(x), 0), bestUs = rs.reduce((a, x) => a + bestOf(x)[1], 0);
          const roof = rs.reduce((a, x) => a + roofUs(x), 0);
          const sumUs = (f: (x: Row) => number) => rs.reduce((a, x) => a + f(x), 0);
          let plain = precision === 'fp16' ? `; plain f16 ${sumUs(plainUsOf).toFixed(0)} us (${pct(mb, sumUs(plainUsOf))})` : '';
          if (precision === 'fp16' && kind === 'dw' && rs.some((x) => Object.keys(x.us).length > 2)) {
            // The wider rule's sums (a layer without that variant measured counts its auto time).
            const wide = (k: number) => sumUs((x) => x.us[wideNames(x)[k]] ?? autoUsOf(x));
            plain += `; rule rw x2 ${wide(0).toFixed(0)} us (${pct(mb, wide(0))}), rw x2 h2 ${wide(1).toFixed(0)} us (${pct(mb, wide(1))})`;
          }
          console.log(`${model} b${batch} ${precision} ${kind}: ${rs.length} layers ${mb.toFixed(0)} MB: auto ${autoUs.toFixed(0)} us = ${pct(mb, autoUs)} (${(100 * roof / autoUs).toFixed(0)}% of roofline)` +
            `; best per layer ${bestUs.toFixed(0)} us (${pct(mb, bestUs)})${plain}; ${rs.length} x empty dispatch = ${(rs.length * r.floorUs).toFixed(0)} us`);
          for (const x of rs) {
            const a = autoUsOf(x), best = bestOf(x);
            console.log(`  ${x.shape.padEnd(36)} ${x.auto.padEnd(20)} ${a.toFixed(1).padStart(7)} us ${pct(x.mb, a).padStart(14)}` +
              `${precision === 'fp16' ? ` | plain ${plainUsOf(x).toFixed(1)}` : ''}${best[1] < a ? ` | best ${best[0]} ${best[1].toFixed(1)} (${pct(x.mb, best[1])})` : ''}`);
          }
        }
      }
    }
  }
}

/**
 * GB/s (bytes read + written) of a vec4 copy of 256 MiB of f32 (less where bindings are smaller), heated and timed like
 * the layers: the bandwidth reference. `f16`: the same number of vec4<f16> elements (8 bytes each, 128 MiB).
 */
async function copyBandwidth(device: GPUDevice, type: 'f32' | 'f16'): Promise<number> {
  const n4 = Math.min(2 ** 24, device.limits.maxStorageBufferBindingSize / 32), wgs = n4 / 256;
  const vecBytes = type === 'f16' ? 8 : 16;
  const program: KernelProgram = {
    name: 'copy', cacheKey: `copy-${type}`, workgroupSize: [256, 1, 1], dispatch: [Math.min(wgs, 65535), Math.ceil(wgs / 65535), 1],
    inputs: [0], outputs: 1, workgroupStorageBytes: 0,
    wgsl: `${type === 'f16' ? 'enable f16;' : ''}
@group(0) @binding(0) var<storage, read> a: array<vec4<${type}>>;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<${type}>>;
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let i = g.x + g.y * ${Math.min(wgs, 65535) * 256}u;
  if (i < ${n4}u) { out[i] = a[i]; }
}`,
  };
  // The f16 copy's buffers hold n4 vec4<f16>: 2 * n4 f32 words (zeros in either type).
  const words = type === 'f16' ? 2 * n4 : 4 * n4;
  const prepared = await prepare(device, program, [new Float32Array(words)], words);
  const us: number[] = [];
  for (let r = 0; r < rounds; r++) us.push(await timeSteps(device, [{ program, prepared }], iters, heatMs));
  release(prepared);
  return (2 * vecBytes * n4) / median(us) / 1e3;
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

function pwVariants(g: ConvGeom, limits: KernelLimits): [string, KernelProgram][] {
  const dot: DotGeom = { N: g.N, C: g.C, F: g.F, P: g.H * g.W, hasBias: g.hasBias, hasRes: g.hasRes, hasScale: g.hasScale, act: g.act };
  const b = convBindings(g);
  const name = (c: DotChoice) => (c.kind === 'gemm' ? `gemm ${c.tiles.tx}x${c.tiles.ty}r${c.tiles.rf}${c.tiles.ks ? `k${c.tiles.ks}` : ''}${c.tiles.px ? `p${c.tiles.px}` : ''}${c.tiles.bk ? `b${c.tiles.bk}` : ''}${c.tiles.un ? 'U' : ''}` : c.kind === 'vec4' ? `vec4 r${c.rf}` : `splitK ${c.ks}${(c.rf ?? 1) > 1 ? ` rf${c.rf}` : ''}${(c.rp ?? 1) > 1 ? ` rp${c.rp}` : ''}${(c.nb ?? 1) > 1 ? ` nb${c.nb}` : ''}`);
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
  // vec4 with 16 filters per thread: a load of x (and, with f16 storage, its conversion to f32) feeds twice the FMAs.
  // On the H100 it lost to 8 on MobileNetV2's three such layers at batch 32 in both precisions (BENCHMARKS.md).
  if (auto.kind === 'vec4' && dot.F % 16 === 0) choices.push(['vec4 r16', { kind: 'vec4', rf: 16, threads: auto.threads }]);
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
  const kept = process.argv.includes('--vec4-only') ? choices.filter(([n, c]) => n.startsWith('auto') || c.kind === 'vec4') : choices;
  return kept.map(([n, c]) => [n, dotProgram(dot, c, b.names, b.inputs, limits, n, 'Conv(pw)', 'pointwise')]);
}

/** fp32 depthwise: the rule's row width first, then each row width; `vec` also the vector-load kernel at the rule's row width (1 and 2 rows). */
function dwVariants(g: ConvGeom, limits: KernelLimits, vec = false): [string, KernelProgram][] {
  const auto = depthwiseRowOutputs(g);
  const out: [string, KernelProgram][] = [[`auto rw${auto}`, depthwiseRows(g, auto, limits, 'dw')], ...[1, 2, 4].map((rw) => [`rw${rw}`, depthwiseRows(g, rw, limits, 'dw')] as [string, KernelProgram])];
  const vx = [4, 2].find((v) => depthwiseVecFits(g, { rw: auto, vx: v }));
  if (vec && vx) for (const rh of [1, 2]) out.push([`rw${auto}v${vx}${rh > 1 ? `h${rh}` : ''}`, depthwiseVecRows(g, { rw: auto, vx, rh }, limits, 'dw')]);
  return out;
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
