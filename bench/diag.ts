// Where the time goes, on the device, in one process (fp32 and int8 diagnosis):
//   profiles  per-node GPU time (median of 5 profiled runs) at batch 1 of each zoo model's fused plan, and of the
//             FusePlanner reference's int8 MobileNetV1 and an int8 MobileNetV2 on the integer kernels and dequantized on the float kernels: the slowest
//             nodes with their programs.
//   interfere fcm-opt fused MobileNetV2 timed alone, then interleaved with onnxruntime CPU (default options, and
//             with its intra-op threads not spinning), then with onnxruntime WebGPU.
//   submit    fused run() time of each zoo model for several SessionOptions.submitEvery values, in blocks.
//   npm run build; node dist/bench/diag.js [--parts profiles,interfere,submit] [--models a,b] [--int8-models mob_v1,mobilenet_v2] [--hw h100] [--out DIR]
// Profiles follow ~1 s of back-to-back runs: a GPU left idle (compiling, reading back) clocks down.
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zooModels } from '../fixtures/zoo.js';
import { exportOnnx } from '../converters/onnx/export.js';
import { loadModel } from '../src/graph/load.js';
import { buildMobileNetV2Int8, buildSeedMobileNetV1 } from '../fixtures/tflite-builder.js';
import { benchInputs } from '../src/bench/bench.js';
import { median } from '../src/bench/stats.js';
import { loadHw } from '../src/planner/hw.js';
import { planFusion } from '../src/planner/index.js';
import { toDag } from '../src/planner/to-dag.js';
import { createInt8Session, createSession } from '../src/pipeline/session.js';
import { passGpuMs } from '../src/runtime/profile.js';
import { releaseGpu } from '../src/runtime/device.js';

const arg = (name: string, d: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] : d; };
const parts = new Set(arg('parts', 'submit,profiles').split(','));
const hwName = arg('hw', 'h100'), out = arg('out', '');
const models = arg('models', Object.keys(zooModels).join(',')).split(',').filter(Boolean);
const result: Record<string, unknown> = {};
const warm = async (run: () => Promise<unknown>, ms = 1000) => { const t0 = performance.now(); while (performance.now() - t0 < ms) await run(); };

type Row = { node: string; op: string; programs: string; ms: number };
function top(rows: Row[], label: string, n = 12) {
  const total = rows.reduce((a, r) => a + r.ms, 0);
  console.log(`${label}: ${rows.length} nodes, GPU sum ${total.toFixed(3)} ms`);
  for (const r of [...rows].sort((a, b) => b.ms - a.ms).slice(0, n)) {
    console.log(`  ${r.ms.toFixed(4).padStart(8)} ${r.op.padEnd(12)} ${r.node.slice(0, 40).padEnd(40)} ${r.programs}`);
  }
  return { total, rows };
}

function medianRows(samples: Row[][]): Row[] {
  return samples[0].map((r, i) => ({ ...r, ms: median(samples.map((s) => s[i]?.ms ?? 0)) }));
}

async function imported(name: string) {
  const path = join(tmpdir(), `${name}-diag.onnx`);
  writeFileSync(path, exportOnnx(zooModels[name](1)));
  return { g: await loadModel(path, { batch: 1 }), path };
}

if (parts.has('submit')) {
  const hw = loadHw(hwName);
  const everies = arg('every', '0,6,12,24').split(',').map(Number);
  for (const name of models) {
    const { g } = await imported(name);
    const plan = planFusion(toDag(g), hw, { mode: 'optimal', model: name, dtypeBytes: 4 });
    const x = benchInputs(g);
    const ss = await Promise.all(everies.map((e) => createSession(g, { hw, plan, submitEvery: e })));
    const uu = await createSession(g, { hw, plan: 'unfused' });
    for (const s of [...ss, uu]) await s.run(x);
    const t = ss.map(() => [] as number[]), tu: number[] = [];
    await warm(() => ss[0].run(x));
    for (let round = 0; round < 10; round++) {
      for (let k = 0; k <= ss.length; k++) {
        const s = k < ss.length ? ss[k] : uu;
        for (let j = 0; j < 10; j++) { const t0 = performance.now(); await s.run(x); (k < ss.length ? t[k] : tu).push(performance.now() - t0); }
      }
    }
    const row = Object.fromEntries(everies.map((e, k) => [`fused every ${e}`, median(t[k])]));
    row['unfused every 12'] = median(tu);
    const pass: number[] = [];
    for (let i = 0; i < 20; i++) pass.push(await passGpuMs(ss[0]));
    row['one-pass GPU fused'] = median(pass);
    console.log(`${name} run() ms (median of 100, blocks of 10): ${Object.entries(row).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(' | ')}`);
    result[`submit-${name}`] = row;
    for (const s of [...ss, uu]) s.dispose();
  }
}

if (parts.has('profiles')) {
  const hw = loadHw(hwName);
  for (const name of models) {
    const { g } = await imported(name);
    const plan = planFusion(toDag(g), hw, { mode: 'optimal', model: name, dtypeBytes: 4 });
    const s = await createSession(g, { hw, plan });
    const x = benchInputs(g);
    await warm(() => s.run(x));
    const samples: Row[][] = [];
    for (let i = 0; i < 5; i++) samples.push((await s.profile(x)).nodes.map((n) => ({ node: n.node, op: n.op, programs: n.programs.join('+'), ms: n.ms })));
    result[`profile-${name}`] = top(medianRows(samples), `${name} fused b1`);
    s.dispose();
  }
  // The integer models (--int8-models): the FusePlanner reference's MobileNetV1 and an int8 MobileNetV2, on the integer
  // kernels and dequantized on the float kernels, fused and unfused.
  for (const m of arg('int8-models', 'mob_v1,mobilenet_v2').split(',').filter(Boolean)) {
    const g8 = await loadModel(m === 'mob_v1' ? buildSeedMobileNetV1() : buildMobileNetV2Int8(), { source: `${m}_int8.tflite` });
    const n = g8.tensors.get(g8.inputs[0])!.shape.reduce((a, b) => a * b, 1);
    const x8 = { [g8.inputs[0]]: Float32Array.from({ length: n }, (_, i) => Math.sin(i)) };
    for (const plan of ['auto', 'unfused'] as const) {
      const i8 = await createInt8Session(g8, { plan, hw: hwName });
      await warm(() => i8.run(x8));
      const samples: Row[][] = [];
      for (let i = 0; i < 5; i++) samples.push((await i8.profile(x8)).steps.map((st) => ({ node: st.node, op: st.op, programs: st.where, ms: st.ms })));
      result[`${m}-int8-${plan}`] = top(medianRows(samples), `${m} int8 ${plan}`);
      i8.dispose();
      const f = await createSession(g8, { plan, hw: hwName, int8: 'dequantize' });
      await warm(() => f.run(x8));
      const fs: Row[][] = [];
      for (let i = 0; i < 5; i++) fs.push((await f.profile(x8)).nodes.map((q) => ({ node: q.node, op: q.op, programs: q.programs.join('+'), ms: q.ms })));
      result[`${m}-fp32-${plan}`] = top(medianRows(fs), `${m} fp32 ${plan}`);
      f.dispose();
    }
  }
}

if (parts.has('interfere')) {
  const { g, path } = await imported('mobilenet_v2');
  const hw = loadHw(hwName);
  const plan = planFusion(toDag(g), hw, { mode: 'optimal', model: 'mobilenet_v2', dtypeBytes: 4 });
  const s = await createSession(g, { hw, plan });
  const x = benchInputs(g);
  const time = async (f: () => Promise<unknown>, n: number) => { const t: number[] = []; for (let i = 0; i < n; i++) { const t0 = performance.now(); await f(); t.push(performance.now() - t0); } return t; };
  const fused = () => s.run(x);
  const pass: number[] = [];
  for (let i = 0; i < 30; i++) pass.push(await passGpuMs(s));
  await time(fused, 20);
  const rows: Record<string, number> = { passGpu: median(pass), alone: median(await time(fused, 100)) };
  const ort = (await import('onnxruntime-node')) as unknown as {
    InferenceSession: { create(p: string, o: object): Promise<{ run(f: object): Promise<unknown>; release(): Promise<void> }> };
    Tensor: new (t: string, d: Float32Array, s: number[]) => unknown;
  };
  const feeds = () => ({ [g.inputs[0]]: new ort.Tensor('float32', x[g.inputs[0]], g.tensors.get(g.inputs[0])!.shape) });
  const variants: [string, object][] = [
    ['cpu default', { executionProviders: ['cpu'] }],
    ['cpu no spin', { executionProviders: ['cpu'], extra: { session: { intra_op: { allow_spinning: '0' } } } }],
    ['webgpu', { executionProviders: ['webgpu'] }],
  ];
  for (const [label, opts] of variants) {
    const o = await ort.InferenceSession.create(path, { ...opts, logSeverityLevel: 3 });
    const ours: number[] = [], theirs: number[] = [];
    for (let i = 0; i < 110; i++) {
      const t0 = performance.now(); await o.run(feeds()); const t1 = performance.now();
      await fused(); const t2 = performance.now();
      if (i >= 10) { theirs.push(t1 - t0); ours.push(t2 - t1); }
    }
    rows[`fused after ${label}`] = median(ours);
    rows[`ort ${label}`] = median(theirs);
    await o.release();
    rows[`fused alone after releasing ${label}`] = median(await time(fused, 100));
  }
  console.log('interference (MobileNetV2 fused, ms):');
  for (const [k, v] of Object.entries(rows)) console.log(`  ${k.padEnd(40)} ${v.toFixed(3)}`);
  result.interfere = rows;
  s.dispose();
}
if (out) writeFileSync(join(out, 'diag.json'), JSON.stringify(result, null, 1));
await releaseGpu();
process.exit(0);
