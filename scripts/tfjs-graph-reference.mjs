// TF.js graph models against TensorFlow.js itself: the model run by @tensorflow/tfjs-converter on the CPU backend
// (pure JavaScript, float32) and by fcm-opt (the built dist/, unfused and fused for h100, on this machine's WebGPU
// adapter), on the same seeded input; every output's max |difference| and that relative to max |reference|. This checks
// the importer's reading of the graph (layouts, padding, fused ops), which `check` cannot: check compares with
// onnxruntime on the ONNX export of the imported graph.
//
// TensorFlow.js is no dependency of fcm-opt; install the three packages into a folder of your own and name it:
//   npm install --prefix /tmp/tfjs @tensorflow/tfjs-core@4.22.0 @tensorflow/tfjs-converter@4.22.0 @tensorflow/tfjs-backend-cpu@4.22.0
//   npm run build && node scripts/tfjs-graph-reference.mjs --tfjs /tmp/tfjs MODEL.json [MODEL.json ...]
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const at = args.indexOf('--tfjs');
if (at < 0 || !args[at + 1]) {
  console.error('usage: node scripts/tfjs-graph-reference.mjs --tfjs FOLDER MODEL.json [...]');
  process.exit(2);
}
const tfjsDir = args[at + 1];
const models = args.filter((_, i) => i !== at && i !== at + 1);
const req = createRequire(join(tfjsDir, 'node_modules', 'x.js'));
const tf = req('@tensorflow/tfjs-core');
req('@tensorflow/tfjs-backend-cpu');
const converter = req('@tensorflow/tfjs-converter');
await tf.setBackend('cpu');
const fcm = await import(pathToFileURL(join(root, 'dist', 'src', 'index.js')).href);

/** An IOHandler reading model.json and its shards from the file system. */
function fileHandler(path) {
  return {
    load: async () => {
      const doc = JSON.parse(readFileSync(path, 'utf8'));
      const specs = [], parts = [];
      for (const g of doc.weightsManifest) {
        specs.push(...g.weights);
        for (const p of g.paths) parts.push(readFileSync(join(dirname(path), p)));
      }
      const all = Buffer.concat(parts);
      return { modelTopology: doc.modelTopology, weightSpecs: specs, weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.length), format: doc.format, generatedBy: doc.generatedBy, convertedBy: doc.convertedBy, signature: doc.signature, userDefinedMetadata: doc.userDefinedMetadata };
    },
  };
}

const nchw = (data, s) => {
  // NHWC [n, h, w, c] -> NCHW
  const [n, h, w, c] = s, out = new Float32Array(data.length);
  for (let a = 0; a < n; a++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) out[((a * c + k) * h + y) * w + x] = data[((a * h + y) * w + x) * c + k];
  return out;
};
const nhwc = (data, s) => {
  // NCHW [n, c, h, w] -> NHWC
  const [n, c, h, w] = s, out = new Float32Array(data.length);
  for (let a = 0; a < n; a++) for (let k = 0; k < c; k++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[((a * h + y) * w + x) * c + k] = data[((a * c + k) * h + y) * w + x];
  return out;
};

for (const path of models) {
  const g = await fcm.loadModel(path);
  const inputs = Object.fromEntries(g.inputs.map((name, i) => {
    const shape = g.tensors.get(name).shape;
    return [name, { shape, data: Float32Array.from(fcm.seededInput(shape.reduce((a, b) => a * b, 1), i), (v) => v * 0.5 + 0.5) }];
  }));
  const model = await converter.loadGraphModel(fileHandler(path));
  const feeds = Object.fromEntries(Object.entries(inputs).map(([name, x]) => {
    const s = x.shape.length === 4 ? [x.shape[0], x.shape[2], x.shape[3], x.shape[1]] : x.shape;
    return [`${name}:0`, tf.tensor(x.shape.length === 4 ? nhwc(x.data, x.shape) : x.data, s)];
  }));
  const names = model.outputs.map((o) => o.name);
  let ref = await model.executeAsync(feeds, names);
  if (!Array.isArray(ref)) ref = [ref];
  const refs = await Promise.all(ref.map(async (t) => ({ shape: t.shape, data: Float32Array.from(await t.data()) })));
  const hw = fcm.loadHw('h100');
  for (const plan of ['unfused', 'auto']) {
    const s = await fcm.createSession(path, { hw, plan });
    const out = await s.run(Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.data])));
    const rows = g.outputs.map((name, i) => {
      const r = refs[i];
      const got = out[name];
      const data = got.data ?? got;
      const mine = r.shape.length === 4 ? nhwc(data, [r.shape[0], r.shape[3], r.shape[1], r.shape[2]]) : data;
      let max = 0, ref = 0;
      for (let k = 0; k < r.data.length; k++) { max = Math.max(max, Math.abs(mine[k] - r.data[k])); ref = Math.max(ref, Math.abs(r.data[k])); }
      return `${name} [${r.shape.join('x')}] max |diff| ${max.toExponential(2)} (${(max / Math.max(ref, 1e-30)).toExponential(2)} of max |reference| ${ref.toExponential(2)})`;
    });
    console.log(`${path} ${plan}: ${rows.join('; ')}`);
    s.dispose();
  }
}
await fcm.releaseGpu();
void nchw;
