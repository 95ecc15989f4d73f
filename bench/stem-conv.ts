// Stem convolution benchmark: the first convolution of each zoo model (3x3 or 7x7 over the 3 image channels, stride
// 2), timed alone on the GPU with the filter-blocked form (kernels/conv2d.ts conv2dFilterBlock, which ran them before),
// the staged form at its rule's tiles (stagedTiles) and at other tiles, in fp32 and fp16 storage, at each batch. Before
// timing, the rule's program is checked against the filter-blocked one on the same data (max abs difference printed).
//
// Run: npm run build && node dist/bench/stem-conv.js [--batches 1,32] [--precisions f32,f16] [--iters 20] [--heat-ms 20]
//      [--rounds 5] [--auto-only] [--out DIR]   (on the GPU machine: DEVELOPERS.md, `source .gpu/enter.sh` first)
// GPU time per dispatch: timestamps around one pass of `iters` repetitions, median of 5 passes (fcm-kernels.ts
// timeSteps), heated; a layer's contestants timed in rounds, each round starting at another one, median over rounds.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ConvGeom, convGeom, geomKey } from '../kernels/conv-common.js';
import { type StagedTiles, conv2dFilterBlock, conv2dStaged, filterBlock, stagedStorage, stagedTileKey, stagedTiles } from '../kernels/conv2d.js';
import { withStorage } from '../kernels/f16.js';
import { fromHalf, toHalf } from '../src/runtime/half.js';
import type { KernelLimits, KernelProgram } from '../kernels/program.js';
import { threadCap } from '../kernels/shader.js';
import { zooFoldModels, zooModels } from '../fixtures/zoo.js';
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

/** Tiles around the rule's: 4 to 32 filters x 1, 2 or 4 positions, 64 to 256 invocations a workgroup. */
function variants(g: ConvGeom, limits: KernelLimits): StagedTiles[] {
  const out: StagedTiles[] = [];
  for (const fb of [4, 8, 16, 32]) {
    if (g.F % fb !== 0 || stagedStorage(g, { fb }) > limits.maxComputeWorkgroupStorageSize) continue;
    for (const pt of [1, 2, 4]) for (const wg of [64, 128, 256]) if (wg <= threadCap(limits)) out.push({ fb, pt, wg });
  }
  return out;
}

interface Row { model: string; batch: number; precision: string; shape: string; bytes: number; maxDiff: number; us: Record<string, number> }

async function main() {
  const device = await getDevice();
  const limits = limitsOf(device);
  const rows: Row[] = [];
  const models = { ...zooModels, ...zooFoldModels };
  for (const batch of batches) {
    const seen = new Set<string>();
    for (const [name, build] of Object.entries(models)) {
      const graph = build(batch);
      const node = graph.nodes.find((n) => n.op === 'Conv');
      if (!node) continue;
      const shapeOf = (t: string) => (t ? graph.tensors.get(t)?.shape : undefined);
      const args = { node, inputShapes: node.inputs.map(shapeOf), outputShapes: node.outputs.map((t) => shapeOf(t) ?? []), limits };
      const g = convGeom(args);
      const fb = filterBlock(g), rule = stagedTiles(g, limits);
      if (fb === 1 || !rule || seen.has(geomKey(g))) continue;
      seen.add(geomKey(g));
      for (const precision of precisions) {
        if (precision === 'f16' && !device.features.has('shader-f16')) { console.log('f16: no shader-f16 on this device, skipped'); continue; }
        const contestants: [string, KernelProgram][] = [[`filter-blocked fb${fb}`, conv2dFilterBlock(args, g, fb)], [`rule ${stagedTileKey(rule)}`, conv2dStaged(args, g, rule)]];
        if (!autoOnly) {
          for (const t of variants(g, limits)) if (stagedTileKey(t) !== stagedTileKey(rule)) contestants.push([stagedTileKey(t), conv2dStaged(args, g, t)]);
        }
        const progs = contestants.map(([n, p]) => [n, withStorage(p, precision)] as const);
        const sizes = [g.N * g.C * g.H * g.W, g.F * g.C * g.kh * g.kw, g.F, g.N * g.F * g.HO * g.WO];
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
          for (let v0 = 0; v0 < progs.length; v0++) {
            const v = (v0 + r) % progs.length;
            samples[v].push(await timeSteps(device, [{ program: progs[v][1], prepared: prepared[v] }], iters, heatMs));
          }
        }
        prepared.forEach(release);
        const us: Record<string, number> = {};
        progs.forEach(([n], v) => { us[n] = median(samples[v]); });
        const bytes = (sizes[0] + sizes[3]) * (precision === 'f16' ? 2 : 4);
        const shape = `${g.N}x${g.C}x${g.H}x${g.W}->${g.F}x${g.HO}x${g.WO} k${g.kh}s${g.sh}`;
        rows.push({ model: name, batch, precision, shape, bytes, maxDiff, us });
        const old = us[progs[0][0]], ruleUs = us[progs[1][0]];
        const best = Object.entries(us).sort((x, y) => x[1] - y[1])[0];
        console.log(`${name} b${batch} ${precision} ${shape}: filter-blocked ${old.toFixed(1)} us (${(bytes / old / 1e3).toFixed(0)} GB/s), rule ${ruleUs.toFixed(1)} us `
          + `(${(bytes / ruleUs / 1e3).toFixed(0)} GB/s, ${(old / ruleUs).toFixed(2)}x) [${progs[1][0]}]; best ${best[0]} ${best[1].toFixed(1)} us; max |rule - old| ${maxDiff.toExponential(2)}`);
        if (!autoOnly) console.log(`    ${Object.entries(us).map(([k, v]) => `${k}: ${v.toFixed(1)}`).join(', ')}`);
      }
    }
  }
  if (outDir) { mkdirSync(outDir, { recursive: true }); writeFileSync(join(outDir, 'stem-conv.json'), JSON.stringify({ limits, rows }, null, 1)); }
  await closeDevice();
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
