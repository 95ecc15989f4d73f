// Grouped convolution benchmark: every grouped conv layer shape of the zoo's regnet_x_400mf (3x3, 16-channel groups,
// 32..400 channels, stride 1 and 2), timed alone on the GPU with the general kernel (kernels/conv2d.ts, which ran
// them before) and the grouped kernel (kernels/grouped-conv.ts) at its rule's tiles and at other tiles, in fp32 and
// fp16 storage, at each batch. Before timing, each layer's grouped kernel (rule tiles) is checked against the general
// one on the same data (max abs difference printed; fp16: both store halves). Per batch, the model's grouped-conv
// time is each shape's time x its layer count.
//
// Run: npm run build && node dist/bench/grouped-conv.js [--batches 1,32] [--precisions f32,f16] [--iters 20]
//      [--heat-ms 20] [--rounds 5] [--auto-only] [--out DIR]   (on the GPU machine: DEVELOPERS.md, `source .gpu/enter.sh` first)
// GPU time per dispatch: timestamps around one pass of `iters` repetitions, median of 5 passes (fcm-kernels.ts
// timeSteps), heated; the contestants of a layer timed in rounds, each round in another order, median over rounds.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportOnnx } from '../converters/onnx/export.js';
import { loadModel } from '../src/graph/load.js';
import { regNetX400mf } from '../fixtures/zoo.js';
import { type ConvGeom, convGeom, geomKey } from '../kernels/conv-common.js';
import { conv2d } from '../kernels/conv2d.js';
import { type GroupedTiles, groupedConvProgram, groupedStorage, groupedThreads, groupedTiles, isGrouped } from '../kernels/grouped-conv.js';
import { withStorage } from '../kernels/f16.js';
import { fromHalf, toHalf } from '../src/runtime/half.js';
import type { KernelLimits, KernelProgram } from '../kernels/program.js';
import { threadCap } from '../kernels/shader.js';
import { closeDevice, getDevice, limitsOf, prepare, release, runProgram } from '../test/kernels/fused-harness.js';
import { timeSteps } from './fcm-kernels.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const batches = arg('batches', '1,32').split(',').map(Number);
const precisions = arg('precisions', 'f32,f16').split(',') as ('f32' | 'f16')[];
const iters = Number(arg('iters', '20'));
const heatMs = Number(arg('heat-ms', '20'));
const rounds = Number(arg('rounds', '5'));
const autoOnly = process.argv.includes('--auto-only');
const outDir = arg('out', '');
const median = (a: number[]) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };

/** The binary16 words of `v`, two to a float32 slot (the harness writes Float32Array bytes as they are). */
function halfWords(v: Float32Array): Float32Array {
  const h = toHalf(v);
  const out = new Float32Array(Math.ceil(h.length / 2));
  new Uint16Array(out.buffer, 0, h.length).set(h);
  return out;
}

/** Tiles around the rule's: spatial tiles of 1..8 rows x 4..16 columns, 1 to 4 outputs x 4 or 8 filters per thread, half a group. */
function variants(g: ConvGeom, limits: KernelLimits): GroupedTiles[] {
  const FG = g.F / g.group, CG = g.C / g.group;
  const out: GroupedTiles[] = [];
  const add = (t: Omit<GroupedTiles, 'bc'>) => {
    const tt = { ...t, th: Math.min(t.th, g.HO), tw: Math.min(t.tw, g.WO), tf: Math.min(t.tf, FG) };
    if (tt.tf % tt.rf !== 0 || groupedThreads(tt) > threadCap(limits) || groupedThreads(tt) < 16) return;
    let steps = 1;
    while (steps < CG && groupedStorage(g, { ...tt, bc: Math.ceil(CG / steps) }) > limits.maxComputeWorkgroupStorageSize) steps++;
    out.push({ ...tt, bc: Math.ceil(CG / steps) });
  };
  for (const [th, tw] of [[8, 8], [4, 8], [2, 8], [1, 8], [4, 4], [8, 16]]) {
    for (const [rp, rf] of [[2, 4], [1, 4], [4, 4], [2, 8], [1, 8], [4, 8]]) add({ th, tw, tf: FG, rp, rf });
  }
  add({ th: 4, tw: 8, tf: Math.max(4, FG / 2), rp: 2, rf: 4 });
  add({ th: 8, tw: 8, tf: Math.max(4, FG / 2), rp: 1, rf: 4 });
  return out;
}

interface Row { batch: number; precision: string; shape: string; layers: number; gflop: number; maxDiff: number; us: Record<string, number> }

async function main() {
  const device = await getDevice();
  const limits = limitsOf(device);
  const rows: Row[] = [];
  const tileName = (t: GroupedTiles) => `${t.th}x${t.tw} tf${t.tf} rp${t.rp} rf${t.rf} bc${t.bc}`;
  for (const batch of batches) {
    const model = await loadModel(exportOnnx(regNetX400mf(batch)), { source: 'regnet_x_400mf.onnx', batch });
    // Unique grouped layer shapes, with how many layers of the model have each.
    const layers = new Map<string, { geom: ConvGeom; args: Parameters<typeof conv2d>[0]; count: number }>();
    for (const node of model.nodes) {
      if (node.op !== 'Conv') continue;
      const shapeOf = (t: string) => (t ? model.tensors.get(t)?.shape : undefined);
      const args = { node, inputShapes: node.inputs.map(shapeOf), outputShapes: node.outputs.map((t) => shapeOf(t) ?? []), limits };
      const geom = convGeom(args);
      if (!isGrouped(geom)) continue;
      const key = geomKey(geom);
      const seen = layers.get(key);
      if (seen) seen.count++;
      else layers.set(key, { geom, args, count: 1 });
    }
    for (const precision of precisions) {
      if (precision === 'f16' && !device.features.has('shader-f16')) { console.log('f16: no shader-f16 on this device, skipped'); continue; }
      for (const { geom: g, args, count } of layers.values()) {
        const rule = groupedTiles(g, limits);
        const contestants: [string, KernelProgram][] = [['old conv2d', conv2d(args, g)], [`rule ${tileName(rule)}`, groupedConvProgram(g, rule, limits, 'bench')]];
        if (!autoOnly) {
          const keys = new Set(contestants.map(([, p]) => p.cacheKey));
          for (const t of variants(g, limits)) {
            const p = groupedConvProgram(g, t, limits, 'bench');
            if (keys.has(p.cacheKey)) continue;
            keys.add(p.cacheKey);
            contestants.push([tileName(t), p]);
          }
        }
        const progs = contestants.map(([name, p]) => [name, withStorage(p, precision)] as const);
        const sizes = [g.N * g.C * g.H * g.W, g.F * (g.C / g.group) * g.kh * g.kw, g.F, g.N * g.F * g.HO * g.WO];
        // Check: the rule's program against the general kernel on the same data (f16: the data as halves).
        const data = progs[0][1].inputs.map((k, i) => Float32Array.from({ length: sizes[k] }, (_, j) => Math.sin(j * 0.37 + i) * 0.5));
        const outOf = async (p: KernelProgram) => (precision === 'f32'
          ? runProgram(device, p, data, sizes[3])
          : fromHalf(new Uint16Array((await runProgram(device, p, data.map(halfWords), sizes[3])).buffer, 0, sizes[3])));
        const a = await outOf(progs[0][1]), b = await outOf(progs[1][1]);
        const maxDiff = a.reduce((m, v, j) => Math.max(m, Math.abs(v - b[j])), 0);
        const prepared = [];
        for (const [, p] of progs) prepared.push(await prepare(device, p, p.inputs.map((k) => new Float32Array(sizes[k]).fill(0.01)), sizes[3]));
        const samples: number[][] = progs.map(() => []);
        for (let r = 0; r < rounds; r++) {
          // Each round starts at another contestant: a position in the round is no advantage.
          for (let v0 = 0; v0 < progs.length; v0++) {
            const v = (v0 + r) % progs.length;
            samples[v].push(await timeSteps(device, [{ program: progs[v][1], prepared: prepared[v] }], iters, heatMs));
          }
        }
        prepared.forEach(release);
        const us: Record<string, number> = {};
        progs.forEach(([name], v) => { us[name] = median(samples[v]); });
        const gflop = 2 * sizes[3] * (g.C / g.group) * g.kh * g.kw / 1e9;
        const shape = `${g.N}x${g.C}x${g.H}x${g.W}->${g.F}x${g.HO}x${g.WO} k${g.kh}s${g.sh} g${g.group}`;
        rows.push({ batch, precision, shape, layers: count, gflop, maxDiff, us });
        const old = us['old conv2d'], ruleUs = us[progs[1][0]];
        const best = Object.entries(us).sort((a, b) => a[1] - b[1])[0];
        console.log(`b${batch} ${precision} ${shape} x${count}: old ${old.toFixed(1)} us, rule ${ruleUs.toFixed(1)} us (${(old / ruleUs).toFixed(2)}x, ` +
          `${(gflop / ruleUs * 1e3).toFixed(2)} TFLOPS) [${progs[1][0]}]; best ${best[0]} ${best[1].toFixed(1)} us; max |rule - old| ${maxDiff.toExponential(2)}`);
        if (!autoOnly) console.log(`    ${Object.entries(us).map(([k, v]) => `${k}: ${v.toFixed(1)}`).join(', ')}`);
      }
      const r = rows.filter((x) => x.batch === batch && x.precision === precision);
      const sum = (f: (x: Row) => number) => r.reduce((a, x) => a + x.layers * f(x), 0);
      const oldUs = sum((x) => x.us['old conv2d']);
      const ruleUs = sum((x) => x.us[Object.keys(x.us)[1]]);
      const bestUs = sum((x) => Math.min(...Object.values(x.us).slice(1)));
      console.log(`== regnet_x_400mf b${batch} ${precision}: ${sum(() => 1)} grouped convs (${r.length} shapes): old ${oldUs.toFixed(0)} us, ` +
        `rule ${ruleUs.toFixed(0)} us (${(oldUs / ruleUs).toFixed(2)}x), best grouped tile per shape ${bestUs.toFixed(0)} us (${(oldUs / bestUs).toFixed(2)}x)`);
    }
  }
  if (outDir) { mkdirSync(outDir, { recursive: true }); writeFileSync(join(outDir, 'grouped-conv.json'), JSON.stringify({ limits, rows }, null, 1)); }
  await closeDevice();
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
