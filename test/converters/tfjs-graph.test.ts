// TF.js graph models (converters/tfjs-graph/import.ts): a graph of the ops MobileNet-class graph models hold, built
// with fixed seeds (fixtures/tfjs-graph-builder.ts), imported through loadModel and run unfused and fused on the GPU
// (lavapipe here) against a float64 reference computed here in TensorFlow's NHWC order; Reshape reads NHWC memory
// order, so a layout slip shows. Refusals name the node. (Real models against TensorFlow.js itself:
// scripts/tfjs-graph-reference.mjs.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TfGraph, attr } from '../../fixtures/tfjs-graph-builder.js';
import { loadModel } from '../../src/graph/load.js';
import { createSession } from '../../src/pipeline/session.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { loadHw } from '../../src/planner/hw.js';
import { FcmError } from '../../src/errors.js';

test.after(releaseGpu);

type T = { s: number[]; d: Float64Array };
const at = (t: T, n: number, y: number, x: number, c: number) => t.d[((n * t.s[1] + y) * t.s[2] + x) * t.s[3] + c];

/** NHWC conv (groups from the filter's channels), explicit pads [top, left, bottom, right]. */
function conv(x: T, f: T, stride: number, pads: number[], depthwise = false): T {
  const [n, h, w, c] = x.s, [kh, kw, fc, fo] = f.s;
  const co = depthwise ? c * fo : fo;
  const oh = Math.floor((h + pads[0] + pads[2] - kh) / stride) + 1, ow = Math.floor((w + pads[1] + pads[3] - kw) / stride) + 1;
  const out: T = { s: [n, oh, ow, co], d: new Float64Array(n * oh * ow * co) };
  for (let b = 0; b < n; b++) for (let oy = 0; oy < oh; oy++) for (let ox = 0; ox < ow; ox++) for (let o = 0; o < co; o++) {
    let sum = 0;
    for (let ky = 0; ky < kh; ky++) for (let kx = 0; kx < kw; kx++) {
      const iy = oy * stride + ky - pads[0], ix = ox * stride + kx - pads[1];
      if (iy < 0 || ix < 0 || iy >= h || ix >= w) continue;
      if (depthwise) {
        const ch = Math.floor(o / fo), m = o % fo;
        sum += at(x, b, iy, ix, ch) * f.d[((ky * kw + kx) * fc + ch) * fo + m];
      } else for (let i = 0; i < fc; i++) sum += at(x, b, iy, ix, i) * f.d[((ky * kw + kx) * fc + i) * fo + o];
    }
    out.d[((b * oh + oy) * ow + ox) * co + o] = sum;
  }
  return out;
}
const map = (t: T, f: (v: number, c: number) => number): T => ({ s: t.s, d: t.d.map((v, i) => f(v, i % t.s[t.s.length - 1])) });
const t64 = (s: number[], d: ArrayLike<number>): T => ({ s, d: Float64Array.from(d) });

function buildGraph(): { g: TfGraph; ref: (x: Float32Array) => Record<string, Float64Array> } {
  const g = new TfGraph(3);
  const x = g.input('image', [-1, 9, 9, 4]);
  const f1 = g.constant('f1', [3, 3, 4, 8], undefined, -0.5, 0.5), b1 = g.constant('b1', [8]);
  const c1 = g.op('block/conv', '_FusedConv2D', [x, f1, b1], { strides: attr.ints([1, 2, 2, 1]), padding: attr.s('SAME'), fused_ops: attr.strs(['BiasAdd', 'Relu6']), num_args: attr.i(1), data_format: attr.s('NHWC') });
  const f2 = g.constant('f2', [3, 3, 8, 1], undefined, -0.5, 0.5), b2 = g.constant('b2', [8]), al = g.constant('alpha', [8], undefined, 0, 0.5);
  const d1 = g.op('block/dw', 'FusedDepthwiseConv2dNative', [c1, f2, b2, al], { strides: attr.ints([1, 1, 1, 1]), padding: attr.s('SAME'), fused_ops: attr.strs(['BiasAdd', 'Prelu']), num_args: attr.i(2) });
  const f3 = g.constant('f3', [1, 1, 8, 8], undefined, -0.5, 0.5), b3 = g.constant('b3', [8]);
  const c2 = g.op('block/project', 'Conv2D', [d1, f3], { strides: attr.ints([1, 1, 1, 1]), padding: attr.s('VALID') });
  const c2b = g.op('block/project/bias', 'BiasAdd', [c2, b3]);
  const sum = g.op('block/add', 'AddV2', [c2b, `${c1}:0`]);
  const lo = g.constant('zero', [], [0]), hi = g.constant('six', [], [6]);
  const clip = g.op('block/relu6/min', 'Minimum', [g.op('block/relu6/max', 'Maximum', [sum, lo]), hi]);
  const pads = g.ints('pads', [0, 0, 1, 0, 0, 1, 0, 0]);
  g.nodes.find((n) => n.name === 'pads')!.attr!.dtype = attr.type('DT_INT32');
  g.consts.find((c) => c.name === 'pads')!.shape = [4, 2];
  const padded = g.op('pad', 'Pad', [clip, pads]);
  const pool = g.op('pool', 'MaxPool', [padded], { ksize: attr.ints([1, 2, 2, 1]), strides: attr.ints([1, 2, 2, 1]), padding: attr.s('VALID') });
  const mean = g.op('gap', 'Mean', [pool, g.ints('axes', [1, 2])], { keep_dims: attr.b(false) });
  const w = g.constant('fc/w', [8, 5], undefined, -0.5, 0.5), bw = g.constant('fc/b', [5]);
  const fc = g.op('fc', '_FusedMatMul', [mean, w, bw], { fused_ops: attr.strs(['BiasAdd', 'Relu']), num_args: attr.i(1), transpose_a: attr.b(false), transpose_b: attr.b(false) });
  g.op('probs', 'Softmax', [fc]);
  g.op('flat', 'Reshape', [pool, g.ints('flat/shape', [-1, 72])]);

  const c = (name: string) => g.consts.find((k) => k.name === name)!;
  const cT = (name: string) => t64(c(name).shape, c(name).data);
  const ref = (xData: Float32Array) => {
    const xi = t64([1, 9, 9, 4], xData);
    // SAME 3x3 stride 2 over 9: output 5, total pad 2 -> [1, 1]; stride 1 over 5: [1, 1].
    const r1 = map(conv(xi, cT('f1'), 2, [1, 1, 1, 1]), (v, ch) => Math.min(Math.max(v + c('b1').data[ch], 0), 6));
    const r2 = map(conv(r1, cT('f2'), 1, [1, 1, 1, 1], true), (v, ch) => { const u = v + c('b2').data[ch]; return u >= 0 ? u : u * c('alpha').data[ch]; });
    const r3 = map(conv(r2, cT('f3'), 1, [0, 0, 0, 0]), (v, ch) => v + c('b3').data[ch]);
    const r4 = t64(r3.s, r3.d.map((v, i) => Math.min(Math.max(v + r1.d[i], 0), 6)));
    // Pad one row on top and one column on the right: 6x6; max pool 2x2 stride 2: 3x3.
    const p: T = { s: [1, 3, 3, 8], d: new Float64Array(72) };
    const padAt = (y: number, x: number, ch: number) => (y === 0 || x === 5 ? 0 : at(r4, 0, y - 1, x, ch));
    for (let y = 0; y < 3; y++) for (let x = 0; x < 3; x++) for (let ch = 0; ch < 8; ch++) {
      p.d[(y * 3 + x) * 8 + ch] = Math.max(padAt(2 * y, 2 * x, ch), padAt(2 * y + 1, 2 * x, ch), padAt(2 * y, 2 * x + 1, ch), padAt(2 * y + 1, 2 * x + 1, ch));
    }
    const m = Array.from({ length: 8 }, (_, ch) => { let s = 0; for (let k = 0; k < 9; k++) s += p.d[k * 8 + ch]; return s / 9; });
    const logits = Array.from({ length: 5 }, (_, o) => Math.max(0, m.reduce((s, v, i) => s + v * c('fc/w').data[i * 5 + o], c('fc/b').data[o])));
    const e = logits.map((v) => Math.exp(v - Math.max(...logits)));
    const z = e.reduce((a, b) => a + b, 0);
    return { probs: Float64Array.from(e, (v) => v / z), flat: p.d };
  };
  return { g, ref };
}

function writeModel(dir: string, g: TfGraph, outputs?: string[]): string {
  const { json, shard } = g.build(outputs);
  writeFileSync(join(dir, 'model.json'), json);
  writeFileSync(join(dir, 'group1-shard1of1.bin'), shard);
  return join(dir, 'model.json');
}

test('a graph of fused convs, depthwise with PReLU, residual, clip, pad, pools, mean, matmul and reshape matches float64 in NHWC', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-tfjs-graph-'));
  try {
    const { g, ref } = buildGraph();
    const path = writeModel(dir, g, ['probs', 'flat']);
    const graph = await loadModel(path);
    assert.deepEqual(graph.inputs, ['image']);
    assert.deepEqual(graph.tensors.get('image')!.shape, [1, 4, 9, 9], 'NHWC input stored NCHW, batch -1 taken as 1');
    assert.deepEqual(graph.outputs.map((o) => graph.tensors.get(o)!.shape), [[1, 5], [1, 72]]);
    const x = Float32Array.from({ length: 9 * 9 * 4 }, (_, i) => Math.sin(i * 0.37) * 2);
    // The session takes NCHW: x (NHWC) transposed.
    const xNchw = new Float32Array(x.length);
    for (let y = 0; y < 9; y++) for (let xx = 0; xx < 9; xx++) for (let ch = 0; ch < 4; ch++) xNchw[(ch * 9 + y) * 9 + xx] = x[(y * 9 + xx) * 4 + ch];
    const want = ref(x);
    for (const plan of ['unfused', 'auto'] as const) {
      const s = await createSession(path, { hw: loadHw('h100'), plan });
      try {
        const out = await s.run({ image: xNchw });
        for (const [name, r] of Object.entries(want)) {
          const got = out[graph.outputs[name === 'probs' ? 0 : 1]];
          const data = (got as { data?: Float32Array }).data ?? (got as unknown as Float32Array);
          let scale = 1;
          for (const v of r) scale = Math.max(scale, Math.abs(v));
          // float32 sums of at most 72 terms of size ~1: 1e-5 of the output's scale covers their rounding many times over.
          for (let i = 0; i < r.length; i++) assert.ok(Math.abs(data[i] - r[i]) <= 1e-5 * scale, `${plan} ${name}[${i}]: ${data[i]} against ${r[i]}`);
        }
      } finally {
        s.dispose();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('graph outputs: the signature\'s, else the values no node reads; an output is named after its node', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-tfjs-graph-'));
  try {
    const g = new TfGraph(5);
    const x = g.input('x', [1, 4, 4, 2]);
    const r = g.op('act', 'Relu', [x]);
    g.op('Identity', 'Identity', [r]);
    const graph = await loadModel(writeModel(dir, g));
    assert.deepEqual(graph.outputs, ['Identity']);
    assert.equal(graph.nodes.find((n) => n.outputs.includes('Identity'))?.op, 'Relu', 'the graph passes fold the Identity into its producer');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('refusals name the node: an op without a kernel (exit 3), an integer input, a cycle, a constant without values', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-tfjs-graph-'));
  const fails = async (g: TfGraph, kind: string, pattern: RegExp) => {
    await assert.rejects(loadModel(writeModel(dir, g)), (e) => e instanceof FcmError && e.kind === kind && pattern.test(e.message));
  };
  try {
    let g = new TfGraph();
    g.op('top', 'TopKV2', [g.input('x', [1, 8]), g.ints('k', [3])]);
    await fails(g, 'unsupported', /model\.json: node 'top' \(TopKV2\): op 'TopKV2' is not supported$/);
    g = new TfGraph();
    g.op('y', 'Relu', [g.input('ids', [1, 8], 'DT_INT32')]);
    await fails(g, 'unsupported', /node 'ids' \(Placeholder\): input of type DT_INT32/);
    g = new TfGraph();
    g.input('x', [1, 4]);
    g.op('a', 'AddV2', ['x', 'b']);
    g.op('b', 'AddV2', ['a', 'x']);
    await fails(g, 'invalid', /the graph has a cycle \(through node '(a|b)'\)/);
    g = new TfGraph();
    g.op('y', 'AddV2', [g.input('x', [1, 4]), 'w']);
    g.nodes.push({ name: 'w', op: 'Const' });
    await fails(g, 'invalid', /node 'w' \(Const\): no values in the weights manifest/);
    g = new TfGraph();
    g.op('y', 'Relu', [g.input('x', [1, 4])], { padding: { s: 'not base64!' } });
    await fails(g, 'invalid', /node 'y': attribute 'padding' holds a string that is not base64$/);
    g = new TfGraph();
    g.op('y', 'Relu', [g.input('x', [1, 4]), 'missing']);
    await fails(g, 'invalid', /node 'y' \(Relu\): input 'missing' is no node of the graph/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('DepthToSpace, Conv2DBackpropInput, Abs, Max, StridedSlice (with and without shrink) and a Reshape to a computed shape match float64', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-tfjs-graph-'));
  try {
    const g = new TfGraph(9);
    const x = g.input('x', [1, 4, 4, 8]);
    const d2s = g.op('d2s', 'DepthToSpace', [x], { block_size: attr.i(2) });
    const f = g.constant('tf', [3, 3, 3, 2], undefined, -0.5, 0.5);
    const tc = g.op('up', 'Conv2DBackpropInput', [g.ints('up/size', [1, 16, 16, 3]), f, d2s], { strides: attr.ints([1, 2, 2, 1]), padding: attr.s('SAME') });
    const mx = g.op('max', 'Max', [g.op('abs', 'Abs', [tc]), g.ints('max/axes', [1, 2])], { keep_dims: attr.b(true) });
    const ss = g.op('rows', 'StridedSlice', [tc, g.ints('rows/b', [0, 1, 0, 0]), g.ints('rows/e', [1, 15, 16, 2]), g.ints('rows/s', [1, 2, 1, 1])]);
    const ch = g.op('ch', 'StridedSlice', [tc, g.ints('ch/b', [0, 0, 0, 1]), g.ints('ch/e', [1, 16, 16, 2]), g.ints('ch/s', [1, 1, 1, 1])], { shrink_axis_mask: attr.i(8) });
    const n = g.op('n', 'StridedSlice', [g.op('shape', 'Shape', [ch]), g.ints('n/b', [0]), g.ints('n/e', [1]), g.ints('n/s', [1])], { shrink_axis_mask: attr.i(1) });
    const target = g.op('target', 'Pack', [n, g.constant('minus1', [], [-1])], { axis: attr.i(0) });
    g.op('flat', 'Reshape', [ch, target]);
    void mx; void ss;
    const path = join(dir, 'model.json');
    const { json, shard } = g.build(['max', 'rows', 'flat']);
    writeFileSync(path, json);
    writeFileSync(join(dir, 'group1-shard1of1.bin'), shard);
    const graph = await loadModel(path);
    assert.deepEqual(graph.outputs.map((o) => graph.tensors.get(o)!.shape), [[1, 3, 1, 1], [1, 2, 7, 16], [1, 256]]);

    // Reference (NHWC, float64).
    const xs = Float64Array.from({ length: 4 * 4 * 8 }, (_, i) => Math.sin(i * 0.61));
    const fd = g.consts.find((c) => c.name === 'tf')!.data;
    const d = new Float64Array(8 * 8 * 2); // out[h*2 + i, w*2 + j, c] = in[h, w, (i*2 + j)*2 + c]
    for (let h = 0; h < 4; h++) for (let w = 0; w < 4; w++) for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) for (let c = 0; c < 2; c++) {
      d[((h * 2 + i) * 8 + (w * 2 + j)) * 2 + c] = xs[(h * 4 + w) * 8 + (i * 2 + j) * 2 + c];
    }
    // SAME transposed conv 8 -> 16, stride 2, kernel 3: pads 0 before, 1 after; out[iy*2 + ky, ix*2 + kx, co] += in * f[ky, kx, co, ci].
    const t = new Float64Array(16 * 16 * 3);
    for (let iy = 0; iy < 8; iy++) for (let ix = 0; ix < 8; ix++) for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) {
      const oy = iy * 2 + ky, ox = ix * 2 + kx;
      if (oy >= 16 || ox >= 16) continue;
      for (let co = 0; co < 3; co++) for (let ci = 0; ci < 2; ci++) t[(oy * 16 + ox) * 3 + co] += d[(iy * 8 + ix) * 2 + ci] * fd[((ky * 3 + kx) * 3 + co) * 2 + ci];
    }
    const wantMax = [0, 1, 2].map((co) => { let m = 0; for (let p = 0; p < 256; p++) m = Math.max(m, Math.abs(t[p * 3 + co])); return m; });
    const wantRows: number[] = []; // NCHW [1, 2, 7, 16]: rows 1, 3, ..., 13, channels 0 and 1
    for (let c = 0; c < 2; c++) for (let r = 0; r < 7; r++) for (let col = 0; col < 16; col++) wantRows.push(t[((1 + 2 * r) * 16 + col) * 3 + c]);
    const wantFlat = Array.from({ length: 256 }, (_, p) => t[p * 3 + 1]);

    const xNchw = new Float32Array(xs.length);
    for (let h = 0; h < 4; h++) for (let w = 0; w < 4; w++) for (let c = 0; c < 8; c++) xNchw[(c * 4 + h) * 4 + w] = xs[(h * 4 + w) * 8 + c];
    const s = await createSession(path, { hw: loadHw('h100'), plan: 'unfused' });
    try {
      const out = await s.run({ x: xNchw });
      const data = (o: unknown) => ((o as { data?: Float32Array }).data ?? o) as Float32Array;
      // float32 sums of at most 8 products of size < 1: 1e-5 absolute is ample.
      for (const [name, want] of [[graph.outputs[0], wantMax], [graph.outputs[1], wantRows], [graph.outputs[2], wantFlat]] as const) {
        const got = data(out[name]);
        assert.equal(got.length, want.length, name);
        for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-5, `${name}[${i}]: ${got[i]} against ${want[i]}`);
      }
    } finally {
      s.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
