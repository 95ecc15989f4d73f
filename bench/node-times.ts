// Per-node GPU time of whole inferences, in execution order, next to the bytes each node moves: where a model's
// pass goes. Each dispatch is timed in its own compute pass inside one inference (Session.profile), so every node
// reads what the node before it wrote, as in run(): no node is timed on data left in the L2 cache by repeating it
// (layer-kernels.js times layers alone, repeated). Medians of --rounds profiles, each after --heat-runs untimed passes.
//   npm run build; node dist/bench/node-times.js FILE.onnx [FILE...] [--batch 32] [--precisions fp32,fp16]
//     [--plans auto,unfused] [--hw h100] [--rounds 5] [--heat-runs 20] [--top 60] [--keep-f32 auto|none] [--int8 auto,dequantize] [--out DIR]
// --int8: for quantized models (.tflite), the integer kernels (auto) and/or the float kernels on the dequantized graph.
// --keep-f32: fp16 sessions' SessionOptions.fp16.keepF32 (default auto: the calibrated f32 islands; none: every
// tensor f16, what the f16 kernels alone cost).
// Prints, per file x precision x plan: the pass time (timestamps around one pass, heated, and right after writing
// the feeds), the profile's sum, then each
// node: ms, MB moved (its inputs and outputs at the session's element sizes, weights included), GB/s.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../src/graph/load.js';
import { benchInputs } from '../src/bench/bench.js';
import { median } from '../src/bench/stats.js';
import { createSession } from '../src/pipeline/session.js';
import { passGpuMs } from '../src/runtime/profile.js';
import { executorOf } from '../src/runtime/executor.js';
import { describeDevice, acquireGpu, releaseGpu } from '../src/runtime/device.js';
import type { FloatPrecision } from '../src/runtime/precision.js';

const argv = process.argv.slice(2);
const arg = (name: string, d: string) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : d; };
const files = argv.filter((a, i) => !a.startsWith('--') && (i === 0 || !argv[i - 1].startsWith('--')));
const batch = Number(arg('batch', '1'));
const precisions = arg('precisions', 'fp32').split(',') as FloatPrecision[];
const plans = arg('plans', 'auto').split(',') as ('auto' | 'unfused')[];
const hw = arg('hw', 'h100'), rounds = Number(arg('rounds', '5')), heatRuns = Number(arg('heat-runs', '20'));
const topN = Number(arg('top', '60')), out = arg('out', '');
const keepF32 = arg('keep-f32', 'auto') as 'auto' | 'none';
const int8Modes = arg('int8', 'auto').split(',') as ('auto' | 'dequantize')[];
const result: Record<string, unknown> = {};

const ctx = await acquireGpu();
console.log(describeDevice(ctx));
for (const file of files) {
  const g = await loadModel(file, { batch });
  const feeds = benchInputs(g);
  const quantized = g.nodes.some((n) => n.outputs.some((t) => g.tensors.get(t)?.quant));
  for (const precision of precisions) for (const int8 of quantized ? int8Modes : ['auto' as const]) {
    for (const plan of plans) {
      const s = await createSession(g, { hw, plan, precision, subBatches: 1, fp16: { keepF32 }, int8 });
      const ex = executorOf(s);
      for (let i = 0; i < 5; i++) await s.run(feeds);
      const passes: number[] = [], cold: number[] = [];
      for (let i = 0; i < 10; i++) { cold.push(await passGpuMs(s, feeds, { heatMs: 0 })); passes.push(await passGpuMs(s)); }
      const samples: { node: string; op: string; programs: string; ms: number }[][] = [];
      for (let r = 0; r < rounds; r++) {
        samples.push((await s.profile(feeds, { heatRuns })).nodes.map((n) => ({ node: n.node, op: n.op, programs: n.programs.join('+'), ms: n.ms })));
      }
      const f32 = new Set(s.stats().f32Tensors);
      const bytesOf = (t: string) => {
        const info = ex.graph.tensors.get(t);
        if (!info) return 0;
        const n = info.shape.reduce((a, b) => a * b, 1);
        const el = info.dtype === 'float32' ? (precision === 'fp16' && !f32.has(t) ? 2 : 4) : info.dtype === 'int8' || info.dtype === 'uint8' ? 1 : 4;
        return n * el;
      };
      const nodeBytes = new Map(ex.graph.nodes.map((n) => [n.name, [...n.inputs, ...n.outputs].filter(Boolean).reduce((a, t) => a + bytesOf(t), 0)]));
      const rows = samples[0].map((r, i) => ({ ...r, ms: median(samples.map((x) => x[i]?.ms ?? 0)), bytes: nodeBytes.get(r.node) ?? 0 }));
      const sum = rows.reduce((a, r) => a + r.ms, 0), totalBytes = rows.reduce((a, r) => a + r.bytes, 0);
      const key = `${file.split('/').pop()} b${batch} ${ex.path === 'int8' ? 'int8' : precision}${quantized && ex.path !== 'int8' ? ' (dequantized)' : ''}${precision === 'fp16' ? ` keepF32 ${keepF32}` : ''} ${plan}`;
      console.log(`\n${key}: pass ${median(passes).toFixed(3)} ms heated (${median(cold).toFixed(3)} after writing the feeds), profile sum ${sum.toFixed(3)} ms over ${rows.length} nodes, ${(totalBytes / 1e6).toFixed(1)} MB moved (${(totalBytes / sum / 1e6).toFixed(0)} GB/s over the sum); f32 tensors kept: ${f32.size}`);
      const byOp = new Map<string, number>();
      for (const r of rows) byOp.set(r.programs.replace(/\(.*$/, ''), (byOp.get(r.programs.replace(/\(.*$/, '')) ?? 0) + r.ms);
      console.log(`  by program: ${[...byOp].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}`);
      for (const r of [...rows].sort((a, b) => b.ms - a.ms).slice(0, topN)) {
        console.log(`  ${(r.ms * 1000).toFixed(1).padStart(8)} us ${(r.bytes / 1e6).toFixed(2).padStart(8)} MB ${(r.bytes / r.ms / 1e6).toFixed(0).padStart(6)} GB/s  ${r.op.padEnd(10)} ${r.programs.slice(0, 60).padEnd(60)} ${r.node}`);
      }
      result[key] = { passMs: median(passes), passMsCold: median(cold), sumMs: sum, totalBytes, rows };
      s.dispose();
    }
  }
}
if (out) writeFileSync(join(out, 'node-times.json'), JSON.stringify(result, null, 1));
await releaseGpu();
process.exit(0);
