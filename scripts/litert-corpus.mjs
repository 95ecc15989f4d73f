// A quantized model of the corpus (corpus/models.json) through a real TFLite interpreter and fcm-opt's integer
// executor on the same 8-bit inputs: LiteRT.js (npm @litertjs/core, pinned, in headless Chromium; accelerator
// 'wasm', the XNNPACK delegate, see scripts/record-tflite-oracle.mjs) against createInt8Session, unfused and
// planned for h100, and the integer reference (src/quant/run-reference.ts).
//
// Compared: every 8-bit graph output in LSB; and where a model ends in TFLite_Detection_PostProcess, whose outputs
// are float, the op's 8-bit inputs (box encodings, class scores) in LSB, read from the interpreter by listing them as
// extra outputs of the model's subgraph, plus the detections themselves (boxes, classes, scores, count). The
// interpreter gets a patched copy of the file (patchModel): the extra outputs, and the shapes of outputs stored as [].
//
//   npm run build && node scripts/litert-corpus.mjs ssd-mobilenet-v2-uint8 [--seeds 1,2,3] [--json FILE]
//   node scripts/litert-corpus.mjs ssd-mobilenet-v2-uint8 --layers --seeds 1
//
// --layers: every 8-bit tensor an op computes is an extra output too, and each op is recomputed by the integer
// reference from the interpreter's own values of its inputs: the difference per layer, with nothing carried over
// from the layers before (end to end, 1-LSB differences of each layer add up through the network).
//
// Inputs: uniform 8-bit values from a fixed-seed generator (one set per seed), NHWC as the file takes them.

import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => pathToFileURL(join(root, 'dist', p)).href;
const { ensureModel, models } = await import(pathToFileURL(join(root, 'scripts', 'fetch-models.mjs')).href);
const { runLiteRt, liteRtPackages } = await import(dist('src/bench/litert.js'));
const { loadModel, createInt8Session, releaseGpu } = await import(dist('src/index.js'));
const { runInt8Reference } = await import(dist('src/quant/run-reference.js'));
const S = await import(dist('converters/tflite/schema_generated.js'));
const flatbuffers = await import('flatbuffers');

function args(argv) {
  const o = { name: null, seeds: [1, 2, 3], json: null, taps: true, layers: false };
  for (let i = 2; i < argv.length; i++) {
    if (argv[i] === '--seeds') o.seeds = argv[++i].split(',').map(Number);
    else if (argv[i] === '--json') o.json = argv[++i];
    else if (argv[i] === '--no-taps') o.taps = false;
    else if (argv[i] === '--layers') o.layers = true;
    else if (!o.name) o.name = argv[i];
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!o.name) throw new Error(`name a model of the corpus (${Object.keys(models).join(', ')})`);
  return o;
}

/** The file's subgraph 0, the 8-bit non-constant inputs of its TFLite_Detection_PostProcess ops ("taps"). */
function detectionTaps(bytes) {
  const m = S.Model.getRootAsModel(new flatbuffers.ByteBuffer(bytes));
  const g = m.subgraphs(0);
  const taps = [];
  for (let i = 0; i < g.operatorsLength(); i++) {
    const op = g.operators(i);
    const oc = m.operatorCodes(op.opcodeIndex());
    if (oc.customCode() !== 'TFLite_Detection_PostProcess') continue;
    for (let k = 0; k < op.inputsLength(); k++) {
      const t = g.tensors(op.inputs(k));
      const constant = (m.buffers(t.buffer())?.dataLength() ?? 0) > 0;
      if (!constant && (t.type() === S.TensorType.UINT8 || t.type() === S.TensorType.INT8)) taps.push({ index: op.inputs(k), name: t.name() });
    }
  }
  return { m, g, taps };
}

/**
 * A copy of the file whose subgraph 0 also outputs `extra` (tensor indices) and whose tensors `shapes` (index ->
 * shape) get those shapes: new vectors appended at the end, the fields repointed. A uoffset is relative to where it
 * is stored; appending keeps it positive, as flatbuffers requires. (Outputs stored with shape [], as TFLite_Detection_
 * PostProcess's are in files of older converters, make LiteRT.js size its output buffers from [] and write past them.)
 */
function patchModel(bytes, extra, shapes) {
  const bb = new flatbuffers.ByteBuffer(bytes);
  const g = S.Model.getRootAsModel(bb).subgraphs(0);
  const outs = [...Array(g.outputsLength()).keys()].map((i) => g.outputs(i));
  const all = [...outs, ...extra.filter((x) => !outs.includes(x))];
  const vectors = [];
  // SubGraph field 2 (outputs): vtable slot 4 + 2 * 2; Tensor field 0 (shape): slot 4.
  const fieldAt = (pos, slot) => {
    const o = bb.__offset(pos, slot);
    if (!o) throw new Error('the field to repoint is absent');
    return pos + o;
  };
  vectors.push({ field: fieldAt(g.bb_pos, 8), values: all });
  for (const [index, shape] of shapes) vectors.push({ field: fieldAt(g.tensors(index).bb_pos, 4), values: shape });
  let end = Math.ceil(bytes.length / 4) * 4;
  const size = end + vectors.reduce((a, v) => a + 4 + 4 * v.values.length, 0);
  const out = new Uint8Array(size);
  out.set(bytes);
  const view = new DataView(out.buffer);
  for (const v of vectors) {
    view.setUint32(end, v.values.length, true);
    v.values.forEach((x, i) => view.setInt32(end + 4 + 4 * i, x, true));
    view.setUint32(v.field, end - v.field, true);
    end += 4 + 4 * v.values.length;
  }
  return { bytes: out, outputs: all };
}

/** Uniform bytes from a 32-bit LCG (Numerical Recipes), `seed` fixed. */
function seededBytes(n, seed, signed) {
  const out = signed ? new Int8Array(n) : new Uint8Array(n);
  let s = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = signed ? (s >>> 24) - 128 : s >>> 24;
  }
  return out;
}

const nhwcToNchw = (x, [n, h, w, c]) => {
  const y = new x.constructor(x.length);
  for (let b = 0; b < n; b++) for (let i = 0; i < h * w; i++) for (let ch = 0; ch < c; ch++) y[(b * c + ch) * h * w + i] = x[(b * h * w + i) * c + ch];
  return y;
};
const nchwToNhwc = (x, [n, c, h, w]) => {
  const y = new x.constructor(x.length);
  for (let b = 0; b < n; b++) for (let ch = 0; ch < c; ch++) for (let i = 0; i < h * w; i++) y[(b * h * w + i) * c + ch] = x[(b * c + ch) * h * w + i];
  return y;
};

/** Values that differ, and the largest difference, in units of `unit` (1 for raw 8-bit values). */
function lsbDiff(got, want, unit = 1) {
  if (got.length !== want.length) throw new Error(`lengths differ: ${got.length} vs ${want.length}`);
  let differ = 0, max = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]) / unit;
    if (d > 0) { differ++; max = Math.max(max, d); }
  }
  return { n: want.length, differ, max };
}

const o = args(process.argv);
const path = await ensureModel(o.name);
const bytes = new Uint8Array(await readFile(path));
const { g: sg, taps } = detectionTaps(bytes);
if (!o.taps) taps.length = 0;
/** The tensors a summary reports: graph outputs and the host op's 8-bit inputs (not the --layers taps). */
const primary = [...Array(sg.outputsLength()).keys()].map((i) => sg.tensors(sg.outputs(i)).name()).concat(taps.map((t) => t.name));
/** Per op of the file with an 8-bit output: its non-constant inputs and that output (tensor names). */
const layerOps = [];
if (o.layers) {
  const mm = S.Model.getRootAsModel(new flatbuffers.ByteBuffer(bytes));
  const isConst = (t) => (mm.buffers(t.buffer())?.dataLength() ?? 0) > 0;
  const eight = (t) => t.type() === S.TensorType.UINT8 || t.type() === S.TensorType.INT8;
  for (let i = 0; i < sg.operatorsLength(); i++) {
    const op = sg.operators(i);
    if (op.outputsLength() !== 1) continue;
    const y = sg.tensors(op.outputs(0));
    if (!eight(y)) continue;
    const ins = [...Array(op.inputsLength()).keys()].map((k) => op.inputs(k)).filter((k) => k >= 0 && !isConst(sg.tensors(k)));
    layerOps.push({ op: i, output: y.name(), inputs: ins.map((k) => sg.tensors(k).name()) });
    if (!taps.some((t) => t.index === op.outputs(0))) taps.push({ index: op.outputs(0), name: y.name() });
  }
}
// fcm-opt's importer sizes outputs the file leaves unsized (TFLite_Detection_PostProcess's, from its options).
const graph = await loadModel(bytes, { source: `${o.name}.tflite` });
const unsized = new Map();
for (let i = 0; i < sg.outputsLength(); i++) {
  const t = sg.tensors(sg.outputs(i));
  const ir = graph.tensors.get(t.name());
  if (t.shapeLength() === 0 && ir && ir.shape.length > 0 && ir.shape.length < 4) unsized.set(sg.outputs(i), ir.shape);
}
const patched = patchModel(bytes, taps.map((t) => t.index), unsized);
const inT = sg.tensors(sg.inputs(0));
const inShape = [...inT.shapeArray()];
const inDtype = inT.type() === S.TensorType.INT8 ? 'int8' : inT.type() === S.TensorType.UINT8 ? 'uint8' : null;
if (!inDtype || sg.inputsLength() !== 1) throw new Error(`${o.name}: this script takes models with one 8-bit input`);
const inputs = o.seeds.map((seed) => ({ seed, data: seededBytes(inShape.reduce((a, b) => a * b, 1), seed, inDtype === 'int8') }));

// The interpreter.
const blobs = { [`/model/${o.name}.tflite`]: patched.bytes };
for (const x of inputs) blobs[`/input/${x.seed}.bin`] = new Uint8Array(x.data.buffer);
const lite = await runLiteRt({
  runs: [{ name: o.name, model: `/model/${o.name}.tflite`, accelerator: 'wasm', inputs: inputs.map((x) => ({ url: `/input/${x.seed}.bin`, dtype: inDtype, shape: inShape })) }],
}, blobs);
const run = lite.runs[0];
const liteOut = (i, name) => {
  const k = run.outputDetails.findIndex((d) => d.name === name);
  if (k < 0) throw new Error(`LiteRT.js did not return '${name}' (it returned ${run.outputDetails.map((d) => d.name).join(', ')})`);
  return run.results[i].outputs[k];
};

// fcm-opt: the graph as imported, with the taps as extra outputs (IR names are the file's tensor names).
const tapNames = taps.map((t) => t.name);
for (const t of tapNames) if (!graph.tensors.has(t)) throw new Error(`tensor '${t}' is not in the imported graph`);
const compared = [...graph.outputs, ...tapNames.filter((t) => !graph.outputs.includes(t))];
const g = { ...graph, outputs: compared };
const eightBitNames = compared.filter((y) => ['uint8', 'int8'].includes(g.tensors.get(y).dtype));
const report = {
  model: o.name, package: models[o.name].package, interpreter: `${liteRtPackages.core.spec}, accelerator 'wasm' (XNNPACK), ${lite.userAgent}`,
  seeds: o.seeds, fullyAccelerated: run.fullyAccelerated, primary, executors: {},
};
try {
  const sessions = { unfused: await createInt8Session(g, { plan: 'unfused' }), fused: await createInt8Session(g, { plan: 'auto', hw: 'h100' }) };
  for (const [label, s] of Object.entries({ reference: null, ...sessions })) {
    const rows = {};
    for (let i = 0; i < inputs.length; i++) {
      const x = inShape.length === 4 ? nhwcToNchw(inputs[i].data, inShape) : inputs[i].data;
      const ours = {};
      if (s) {
        const r = await s.run({ [g.inputs[0]]: x });
        for (const y of compared) ours[y] = { data: r[y].raw ?? r[y].data, shape: r[y].shape };
      } else {
        // The reference stops in front of the host op (it has no integer form): its 8-bit tensors only.
        const r = runInt8Reference({ ...g, outputs: eightBitNames }, { [g.inputs[0]]: x });
        eightBitNames.forEach((y, k) => { ours[y] = { data: r.outputs[k].data, shape: r.outputs[k].shape }; });
      }
      for (const y of s ? compared : eightBitNames) {
        const want = liteOut(i, y);
        const t = g.tensors.get(y);
        const got = ours[y].shape.length === 4 ? nchwToNhwc(ours[y].data, ours[y].shape) : ours[y].data;
        const eightBit = t.dtype === 'uint8' || t.dtype === 'int8';
        const d = lsbDiff(got, want.data);
        const row = rows[y] ?? (rows[y] = { unit: eightBit ? 'LSB' : 'abs', n: 0, differ: 0, max: 0 });
        row.n += d.n; row.differ += d.differ; row.max = Math.max(row.max, d.max);
      }
    }
    report.executors[label] = rows;
  }
  for (const s of Object.values(sessions)) s.dispose();
} finally {
  await releaseGpu();
}
if (o.layers) {
  // Each op from the interpreter's inputs (seed 0 of the list), against the interpreter's output.
  const toIr = (name, data) => {
    const t = graph.tensors.get(name);
    return t.shape.length === 4 ? nhwcToNchw(data, [t.shape[0], t.shape[2], t.shape[3], t.shape[1]]) : data;
  };
  const lite8 = (name) => {
    if (name === graph.inputs[0]) return inputs[0].data;
    const d = liteOut(0, name);
    return d.dtype === 'int8' ? Int8Array.from(d.data) : Uint8Array.from(d.data);
  };
  /** The IR nodes that compute `output` from `inputs` (the op's IR form: layout changes, fused activations). */
  const between = (ins, output) => {
    const need = new Set([output]);
    const keep = [];
    for (let i = graph.nodes.length - 1; i >= 0; i--) {
      const n = graph.nodes[i];
      if (!n.outputs.some((y) => need.has(y))) continue;
      keep.push(i);
      for (const x of n.inputs) if (x && !ins.includes(x)) need.add(x);
    }
    return keep.reverse().map((i) => graph.nodes[i]);
  };
  const layers = [];
  for (const l of layerOps) {
    const feeds = Object.fromEntries(l.inputs.map((x) => [x, toIr(x, lite8(x))]));
    const r = runInt8Reference({ ...graph, inputs: l.inputs, outputs: [l.output], nodes: between(l.inputs, l.output) }, feeds);
    const t = graph.tensors.get(l.output);
    const got = t.shape.length === 4 ? nchwToNhwc(r.outputs[0].data, t.shape) : r.outputs[0].data;
    const d = lsbDiff(got, lite8(l.output));
    const producer = graph.nodes.find((n) => n.outputs.includes(l.output));
    layers.push({ op: l.op, output: l.output, irOp: producer?.op, ...d });
  }
  report.layers = layers;
  const worst = layers.reduce((a, b) => (b.max > a.max ? b : a), layers[0]);
  const over = layers.filter((x) => x.max > 1);
  console.log(`${o.name} layer by layer (integer reference from LiteRT.js's inputs, seed ${o.seeds[0]}): ${layers.length} ops, ` +
    `${layers.filter((x) => x.differ > 0).length} with any difference, ${over.length} over 1 LSB; worst ${worst.output} (${worst.irOp}): ${worst.differ} of ${worst.n} differ, max ${worst.max} LSB`);
  for (const x of over) console.log(`  over 1 LSB: op ${x.op} ${x.output} (${x.irOp}): ${x.differ} of ${x.n}, max ${x.max}`);
}
for (const [label, rows] of Object.entries(report.executors)) {
  for (const [y, r] of Object.entries(rows)) {
    if (!primary.includes(y)) continue;
    console.log(`${o.name} ${label} vs LiteRT.js: ${y}: ${r.differ} of ${r.n} values differ, max ${r.unit === 'LSB' ? `${r.max} LSB` : `|diff| ${r.max.toExponential(2)}`}`);
  }
}
if (o.json) writeFileSync(o.json, `${JSON.stringify(report, null, 1)}\n`);
