// onnxruntime against itself: how far a model's outputs move when only the float32 rounding order changes. The
// model (ONNX, or a TFLite/Keras model's ONNX export, as `check` uses it) runs on the CPU with graph optimizations
// off and on (fused Conv+Add, other blockings: other accumulation orders), on the seeded inputs of `check`, and each
// output is compared with check's rule (src/runtime/compare.ts). Where onnxruntime's two runs differ by as much as
// fcm-opt differs from it, an over-tolerance check says the model amplifies rounding, not that a kernel is wrong.
//
//   npm run build && node scripts/ort-spread.mjs MODEL [--input-shape NAME:1x3x224x224 ...] [--json]

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(pathToFileURL(join(root, 'dist', p)).href);
const { loadModel } = await dist('src/graph/load.js');
const { tfliteReference } = await dist('src/check/tflite.js');
const { seededInput, compareOutputs } = await dist('src/runtime/compare.js');
const { loadOnnxruntime } = await dist('src/onnxruntime.js');

const args = process.argv.slice(2);
const path = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--input-shape');
if (!path) throw new Error('usage: node scripts/ort-spread.mjs MODEL [--input-shape NAME:DIMS ...] [--json]');
const inputShapes = {};
args.forEach((a, i) => {
  if (a !== '--input-shape') return;
  const [name, dims] = args[i + 1].split(/[:=]/);
  inputShapes[name] = dims.split('x').map(Number);
});
const g = await loadModel(path, { inputShapes });
const bytes = path.toLowerCase().endsWith('.onnx') ? readFileSync(path) : tfliteReference(g).onnx;
const ort = await loadOnnxruntime('the onnxruntime spread');
const feeds = {};
g.inputs.forEach((x, i) => {
  const s = g.tensors.get(x).shape;
  feeds[x] = new ort.Tensor('float32', seededInput(s.reduce((a, b) => a * b, 1), i), s);
});
const runs = {};
for (const level of ['disabled', 'all']) {
  const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: level, intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 });
  runs[level] = await s.run(feeds);
  await s.release();
}
const outputs = Object.keys(runs.disabled).filter((y) => runs.disabled[y].type === 'float32').map((y) => {
  const c = compareOutputs(runs.all[y].data, runs.disabled[y].data, runs.all[y].dims);
  return { name: y, maxAbsError: c.maxAbsError, tolerance: c.tolerance, ok: c.ok };
});
if (args.includes('--json')) console.log(JSON.stringify({ model: path, outputs }));
else for (const o of outputs) console.log(`${o.name}: onnxruntime optimizations off vs on: max abs ${o.maxAbsError.toExponential(2)} (tolerance ${o.tolerance.toExponential(2)}) ${o.ok ? 'within' : 'OVER'}`);
