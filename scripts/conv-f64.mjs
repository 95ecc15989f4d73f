// Every Conv of a model recomputed in float64 from each side's own input: fcm-opt's (the executed graph, unfused,
// through its session's extra outputs) and onnxruntime's (CPU, the tensors exposed as outputs of the ONNX model or of
// a TFLite/Keras model's ONNX export, as `check --per-layer` does). The error of each side's Conv output against that
// float64 result, divided by sum |terms| * 2^-24 (the rounding a float32 sum of those terms may carry), says whether a
// kernel computes a wrong result (a large ratio on our side only) or both sides round alike and the drift between
// them comes from earlier layers. Seeded inputs as `check` uses them.
//
//   npm run build && node scripts/conv-f64.mjs MODEL ALL|NODE,NODE...
import { loadModel } from '../dist/src/graph/load.js';
import { tfliteReference } from '../dist/src/check/tflite.js';
import { prepareForRun } from '../dist/src/pipeline/pipeline.js';
import { createSession } from '../dist/src/pipeline/session.js';
import { runOrt } from '../dist/src/check/check.js';
import { seededInput } from '../dist/src/runtime/compare.js';
import { decodeModel, encodeModel, onnx } from '../dist/converters/onnx/codec.js';
const activation = (name, p, v) => {
  switch (name) {
    case undefined: return v;
    case 'Relu': return Math.max(v, 0);
    case 'Clip': return Math.min(Math.max(v, p[0]), p[1]);
    case 'Sigmoid': return 1 / (1 + Math.exp(-v));
    case 'Tanh': return Math.tanh(v);
    case 'LeakyRelu': return v >= 0 ? v : v * p[0];
    case 'HardSigmoid': return Math.min(1, Math.max(0, p[0] * v + p[1]));
    case 'HardSwish': return v * Math.min(1, Math.max(0, v / 6 + 0.5));
    case 'SiLU': return v / (1 + Math.exp(-v));
    default: throw new Error(`activation ${name} is not modelled here`);
  }
};
const [path, nodeNames] = [process.argv[2], process.argv[3].split(',')];
const quiet = nodeNames[0] === 'ALL'; const summary = [];
const imported = await loadModel(path);
const isTfl = !path.toLowerCase().endsWith('.onnx');
const tfl = isTfl ? tfliteReference(imported) : null;
const g = await prepareForRun(tfl ? tfl.floatGraph : imported, { plan: 'unfused' });
const bytes = tfl ? tfl.onnx : (await import('node:fs')).readFileSync(path);
const feeds = {}; g.inputs.forEach((x, i) => { const s = g.tensors.get(x).shape; feeds[x] = { data: seededInput(s.reduce((a, b) => a * b, 1), i), shape: s }; });
const nodes = nodeNames[0] === 'ALL' ? g.nodes.filter((n) => n.op === 'Conv') : nodeNames.map((nm) => g.nodes.find((n) => n.name === nm));
const want = [...new Set(nodes.flatMap((n) => [n.inputs[0], n.inputs[3], n.outputs[0]]).filter((x) => x && !g.tensors.get(x).data))];
const proto = decodeModel(bytes, path);
const onnxNames = new Set(proto.graph.node.flatMap((n) => n.output));
const ex = new Set(proto.graph.output.map((o) => o.name)); for (const x of want) if (onnxNames.has(x) && !ex.has(x)) proto.graph.output.push(new onnx.ValueInfoProto({ name: x }));
const ref = await runOrt(encodeModel(proto), feeds, [...g.outputs, ...want.filter((x) => onnxNames.has(x))], path);
const s = await createSession(g, { plan: 'unfused', extraOutputs: want });
const ours = await s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, v.data])));
for (const n of nodes) {
  const a = n.attrs; const [x, w, b, res] = n.inputs;
  const X = g.tensors.get(x).shape, W = g.tensors.get(w), Y = g.tensors.get(n.outputs[0]).shape;
  const [N, C, H, Wd] = X, [F, Cg, KH, KW] = W.shape, [, , OH, OW] = Y;
  const [sh, sw] = a.strides, [pt, pl] = a.pads, [dh, dw] = a.dilations ?? [1, 1], group = a.group;
  const bias = b ? g.tensors.get(b).data : null;
  if (!quiet) console.log(n.name, n.op, 'x', X, 'w', W.shape, 'group', group, 'act', a.activation, a.activationParams, 'res', !!res, 'act after res', a.activationPost ?? '');
  const conv = (xv, rv) => {
    const out = new Float64Array(F * OH * OW), mag = new Float64Array(F * OH * OW);
    const fpg = F / group;
    for (let f = 0; f < F; f++) { const gI = Math.floor(f / fpg);
      for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
        let acc = bias ? bias[f] : 0, m = Math.abs(acc);
        for (let c = 0; c < Cg; c++) for (let ky = 0; ky < KH; ky++) for (let kx = 0; kx < KW; kx++) {
          const iy = oy * sh - pt + ky * dh, ix = ox * sw - pl + kx * dw;
          if (iy < 0 || ix < 0 || iy >= H || ix >= Wd) continue;
          const t = W.data[((f * Cg + c) * KH + ky) * KW + kx] * xv[((gI * Cg + c) * H + iy) * Wd + ix];
          acc += t; m += Math.abs(t);
        }
        const i = (f * OH + oy) * OW + ox;
        acc = activation(a.activation, a.activationParams ?? [], acc);
        if (rv) acc += rv[i];
        acc = activation(a.activationPost, a.activationParamsPost ?? [], acc); // after the residual (folded Add's activation)
        out[i] = acc; mag[i] = m;
      } }
    return { out, mag };
  };
  for (const [who, get] of [['ours', (t) => ours[t]?.data], ['ort', (t) => ref.get(t)]]) {
    const xv = get(x), yv = get(n.outputs[0]), rv = res ? get(res) : null;
    if (!xv || !yv) { if (!quiet) console.log(' ', who, 'has no value for its input or output'); continue; }
    const { out, mag } = conv(xv, rv);
    let maxErr = 0, maxRatio = 0, at = 0, maxMag = 0, maxAbs = 0;
    for (let i = 0; i < out.length; i++) { const e = Math.abs(yv[i] - out[i]); if (e > maxErr) { maxErr = e; at = i; } maxRatio = Math.max(maxRatio, e / (mag[i] * 2 ** -24 + 1e-30)); maxMag = Math.max(maxMag, mag[i]); maxAbs = Math.max(maxAbs, Math.abs(out[i])); }
    summary.push([n.name, who, maxRatio, maxErr]);
    if (!quiet) console.log(' ', who, 'vs f64 on its own input: max abs err', maxErr.toExponential(3), 'at', at, 'value', out[at].toFixed(4), 'sum|terms|', mag[at].toFixed(1), 'err/(sum|terms|*2^-24) max', maxRatio.toFixed(2), 'max|y|', maxAbs.toFixed(2), 'max sum|terms|', maxMag.toFixed(1));
  }
  // input difference between sides
  const xo = ours[x]?.data, xr = ref.get(x);
  if (xo && xr && !quiet) { let e = 0, m = 0; for (let i = 0; i < xo.length; i++) { e = Math.max(e, Math.abs(xo[i] - xr[i])); m = Math.max(m, Math.abs(xr[i])); } console.log('  input diff ours vs ort', e.toExponential(3), 'max|x|', m.toFixed(3)); }
}
s.dispose();
const by = {}; for (const [nm, who, r] of summary) (by[nm] ??= {})[who] = r;
const rows = Object.entries(by); rows.sort((a, b) => b[1].ours - a[1].ours);
console.log('convs', rows.length, 'worst ours/ort ratio (err / (sum|terms| * 2^-24)):'); for (const [nm, r] of rows.slice(0, 8)) console.log(' ', nm, r.ours?.toFixed(2), r.ort?.toFixed(2));
console.log('max ort ratio', Math.max(...rows.map((r) => r[1].ort ?? 0)).toFixed(2));
process.exit(0);
