// foldTransposesIntoConvs (src/rewrite/channels-last-store.ts) on the graph, no GPU: a small detector's nodes and
// dispatches before and after, each rule's refusal, and the float-only scope. The executor's runs are in
// channels-last-store-gpu.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { type Graph, consumers, fcmDomain, producers } from '../../src/graph/ir.js';
import { rewrite } from '../../src/pipeline/pipeline.js';
import { foldChannelScales } from '../../src/rewrite/channel-scale.js';
import { channelsLastMatch, foldTransposesIntoConvs } from '../../src/rewrite/channels-last-store.js';
import { compileGraph } from '../../src/runtime/compile.js';
import { inferShapes } from '../../src/graph/shape.js';
import { defaultLimits } from '../../kernels/program.js';
import { tinyDetector } from './fold-models.js';

const ops = (g: Graph) => g.nodes.map((n) => n.op);
const count = (g: Graph, op: string) => g.nodes.filter((n) => n.op === op).length;
const lastConvs = (g: Graph) => g.nodes.filter((n) => n.op === 'Conv' && n.attrs.channelsLast === 1);
const topological = (g: Graph) => {
  const made = new Set([...g.inputs, ...[...g.tensors.values()].filter((t) => t.data).map((t) => t.name)]);
  return g.nodes.every((n) => { const ok = n.inputs.every((x) => !x || made.has(x)); n.outputs.forEach((y) => made.add(y)); return ok; });
};
const limits = { ...defaultLimits, maxStorageBufferBindingSize: 1 << 30, maxBufferSize: 1 << 30 };
const dispatches = (g: Graph) => compileGraph(foldChannelScales(g), limits).steps.length;

for (const batch of [1, 2]) {
  test(`tiny detector at batch ${batch}: the 4 head Transposes fold into their convs, 4 dispatches fewer`, () => {
    const g0 = tinyDetector(batch);
    const off = rewrite(g0, 'fp32', 'unfused', { channelsLast: false });
    const on = rewrite(g0, 'fp32', 'unfused', { channelsLast: true });
    assert.deepEqual(on, foldTransposesIntoConvs(off));
    assert.equal(count(off, 'Transpose'), 4);
    assert.equal(count(on, 'Transpose'), 0);
    const made = producers(off);
    const transposes = off.nodes.filter((n) => n.op === 'Transpose');
    const convs = lastConvs(on);
    assert.equal(convs.length, 4);
    transposes.forEach((t, k) => {
      const old = off.nodes[made.get(t.inputs[0])!];
      const c = convs[k];
      // The old conv's inputs and attributes, the Transpose's output; the conv's own output is gone.
      assert.deepEqual(c.inputs, old.inputs);
      assert.deepEqual(c.outputs, t.outputs);
      assert.equal(c.name, old.name);
      assert.deepEqual({ ...c.attrs }, { ...old.attrs, channelsLast: 1 });
      assert.ok(!on.tensors.has(t.inputs[0]));
      assert.ok(on.nodes.every((n) => !n.inputs.includes(t.inputs[0])));
    });
    assert.equal(on.nodes.length, off.nodes.length - 4);
    assert.deepEqual(on.outputs, off.outputs);
    assert.ok(topological(on));
    assert.equal(dispatches(on), dispatches(off) - 4);
    // Shape inference knows the store: the folded graph's shapes are the ones it carries.
    const inferred = inferShapes(on);
    for (const c of convs) assert.deepEqual(inferred.tensors.get(c.outputs[0])!.shape, on.tensors.get(c.outputs[0])!.shape);
  });
}

test('integer graphs: the rewrite makes no channels-last conv', () => {
  // src/pipeline/pipeline.ts folds them on float graphs only (the integer registry refuses the attribute).
  assert.equal(lastConvs(rewrite(tinyDetector(1), 'int8', 'unfused')).length, 0);
});

/** x [1, 8, 4, 4] -> Conv 1x1 (or `conv`) to 6 -> Transpose (perm) and what `more` adds. */
function headCase(o: { kernel?: number; perm?: number[]; residual?: boolean; more?: (b: GraphBuilder, c: string) => string[] } = {}): Graph {
  const b = new GraphBuilder('head', 9);
  const x = b.input('x', [1, 8, 4, 4]);
  const r = o.residual ? b.conv(x, { filters: 6, kernel: 3, bias: true }) : undefined;
  const c = b.conv(x, { filters: 6, kernel: o.kernel ?? 1, bias: true });
  // The residual epilogue (src/graph/ir.ts): input 3, the output's shape.
  if (r) b.nodes[b.nodes.length - 1].inputs.push(r);
  const perm = o.perm ?? [0, 2, 3, 1];
  const s = b.shape(c);
  return b.build([b.node('Transpose', [c], perm.map((p) => s[p]), { perm }), ...(o.more?.(b, c) ?? [])]);
}

const why = (g: Graph) => {
  const i = g.nodes.findIndex((n) => n.op === 'Transpose');
  const readers = new Map([...consumers(g)].map(([k, v]) => [k, [...new Set(v)]]));
  return channelsLastMatch(g, i, producers(g), readers);
};

test('the rule folds a plain pointwise Conv read only by the Transpose', () => {
  const g = headCase();
  const f = foldTransposesIntoConvs(g);
  assert.deepEqual(ops(f), ['Conv']);
  assert.deepEqual(f.nodes[0].outputs, g.outputs);
  assert.deepEqual(f.nodes[0].inputs, g.nodes[0].inputs);
  assert.equal(f.nodes[0].attrs.channelsLast, 1);
  assert.deepEqual(f.tensors.get(g.outputs[0])!.shape, [1, 4, 4, 6]);
  assert.ok(!f.tensors.has(g.nodes[0].outputs[0]));
});

/** headCase with its 1x1 conv as an FCM node of kind `op` (the planner fused it before this pass runs), inputs as
 *  the FCM's [x, w1, b1, w2, b2, residual?] (only the rule reads them here). */
function asFcm(op: string, residual = false): Graph {
  const g = headCase();
  const n = g.nodes[0];
  n.op = op;
  n.domain = fcmDomain;
  n.inputs = [n.inputs[0], n.inputs[1], '', n.inputs[1], n.inputs[2], ...(residual ? [n.inputs[0]] : [])];
  return g;
}

test('a DW-PW FCM (its second layer the pointwise conv) takes the store too', () => {
  const g = asFcm('FusedDwPw');
  const f = foldTransposesIntoConvs(g);
  assert.deepEqual(ops(f), ['FusedDwPw']);
  assert.equal(f.nodes[0].domain, fcmDomain);
  assert.deepEqual(f.nodes[0].inputs, g.nodes[0].inputs);
  assert.deepEqual(f.nodes[0].outputs, g.outputs);
  assert.equal(f.nodes[0].attrs.channelsLast, 1);
});

test('what stays: another reader, a graph output, another perm, a 3x3 conv, a residual, other FCMs, a stored conv', () => {
  const twice = foldTransposesIntoConvs(headCase());
  const cases: [string, Graph, RegExp][] = [
    ['second reader', headCase({ more: (b, c) => [b.relu(c)] }), /another reader/],
    ['graph output', headCase({ more: (_, c) => [c] }), /graph output/],
    ['perm [0,3,1,2]', headCase({ perm: [0, 3, 1, 2] }), /perm/],
    ['perm [0,2,1,3]', headCase({ perm: [0, 2, 1, 3] }), /perm/],
    ['3x3 conv', headCase({ kernel: 3 }), /no plain pointwise Conv/],
    ['residual', headCase({ residual: true }), /no plain pointwise Conv/],
    ['a PW-PW FCM computes the input', asFcm('FusedPwPw'), /no plain pointwise Conv/],
    ['a PW-DW FCM computes the input', asFcm('FusedPwDw'), /no plain pointwise Conv/],
    ['a DW-PW FCM with a residual', asFcm('FusedDwPw', true), /no plain pointwise Conv/],
  ];
  for (const [what, g, reason] of cases) {
    assert.equal(foldTransposesIntoConvs(g), g, what);
    const r = why(g);
    assert.equal(typeof r, 'string', what);
    assert.match(r as string, reason, what);
  }
  // A folded graph has nothing left to fold.
  assert.equal(foldTransposesIntoConvs(twice), twice);
  // The tiny detector's refusals: a 3x3 head, a head conv with a second reader, a Transpose to [0, 3, 1, 2].
  const r = foldTransposesIntoConvs(rewrite(tinyDetector(1, { refusals: true }), 'fp32', 'unfused', { channelsLast: false }));
  assert.equal(count(r, 'Transpose'), 3);
  assert.equal(lastConvs(r).length, 4);
});

test('flat-store producers fold too: a pool, an element-wise op, a Slice; other ops keep their Transpose', () => {
  const b = new GraphBuilder('flat', 4);
  const x = b.input('x', [1, 8, 4, 4]);
  const nhwc = (t: string) => { const [n, c, h, w] = b.shape(t); return b.node('Transpose', [t], [n, h, w, c], { perm: [0, 2, 3, 1] }); };
  const pool = b.node('AveragePool', [x], [1, 8, 2, 2], { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0] });
  const sig = b.node('Sigmoid', [x], [1, 8, 4, 4]);
  const slice = b.node('Slice', [x], [1, 4, 4, 4], { starts: [0], ends: [4], axes: [1], steps: [1] });
  const soft = b.node('Softmax', [x], [1, 8, 4, 4], { axis: 1 });
  const g = b.build([nhwc(pool), nhwc(sig), nhwc(slice), nhwc(soft)]);
  const f = foldTransposesIntoConvs(g);
  // Each producer takes its Transpose's place (the Transposes came after all four producers).
  assert.deepEqual(ops(f), ['Softmax', 'AveragePool', 'Sigmoid', 'Slice', 'Transpose']);
  assert.deepEqual(f.nodes.slice(1, 4).map((n) => n.attrs.channelsLast), [1, 1, 1]);
  assert.deepEqual(f.nodes.slice(1, 4).map((n) => n.outputs[0]), g.outputs.slice(0, 3));
  const i = g.nodes.findIndex((n) => n.op === 'Transpose' && n.inputs[0] === soft);
  const readers = new Map([...consumers(g)].map(([k, v]) => [k, [...new Set(v)]]));
  assert.match(channelsLastMatch(g, i, producers(g), readers) as string, /element-wise/);
  // The Slice is one block of x (channels 0-3 at batch 1): as a plain Slice it is read in place (src/runtime/
  // views.ts), stored channels-last it is a dispatch of its own.
  const steps = (h: Graph) => compileGraph(h, { ...limits, minStorageBufferOffsetAlignment: 16 }).steps.map((s) => s.node.op);
  const b2 = new GraphBuilder('slice', 5);
  const x2 = b2.input('x', [1, 8, 4, 4]);
  const plainSlice = b2.build([b2.node('Transpose', [b2.node('Slice', [x2], [1, 4, 4, 4], { starts: [0], ends: [4], axes: [1], steps: [1] })], [1, 4, 4, 4], { perm: [0, 2, 3, 1] })]);
  assert.deepEqual(steps(plainSlice), ['Transpose']);
  assert.deepEqual(steps(foldTransposesIntoConvs(plainSlice)), ['Slice']);
});

test('rewriting a rewritten graph changes nothing (a check session rewrites the graph it is given again)', async () => {
  const { loadModel } = await import('../../src/graph/load.js');
  const { exportOnnx } = await import('../../converters/onnx/export.js');
  const { tinyPyramid } = await import('./fold-models.js');
  const cases: [string, Graph][] = [
    ['tiny detector with refusals', tinyDetector(1, { refusals: true })],
    ['tiny pyramid with refusals', await loadModel(exportOnnx(tinyPyramid(1, { refusals: true })), { source: 'p.onnx' })],
  ];
  {
    // A channels-last conv read by an Add of an NHWC tensor: the Add must not become the conv's residual.
    const b = new GraphBuilder('cl_add', 6);
    const x = b.input('x', [1, 8, 4, 4]), r = b.input('r', [1, 4, 4, 6]);
    const c = b.conv(x, { filters: 6, kernel: 1, bias: true });
    cases.push(['Add after a channels-last conv', b.build([b.add(b.node('Transpose', [c], [1, 4, 4, 6], { perm: [0, 2, 3, 1] }), r)])]);
  }
  {
    // ... nor a Sigmoid its activation (its per-layer tensor would vanish).
    const b = new GraphBuilder('cl_sigmoid', 7);
    const c = b.conv(b.input('x', [1, 8, 4, 4]), { filters: 6, kernel: 1, bias: true });
    cases.push(['Sigmoid after a channels-last conv', b.build([b.node('Sigmoid', [b.node('Transpose', [c], [1, 4, 4, 6], { perm: [0, 2, 3, 1] })], [1, 4, 4, 6])])]);
  }
  {
    // A channels-last Mul by a per-channel scale (C = H = W, so the shapes alone would let it pass) is no channel
    // scale of the conv after it.
    const b = new GraphBuilder('cl_mul', 8);
    const x = b.input('x', [1, 4, 4, 4]);
    const m = b.node('Mul', [x, b.random('s', [1, 4, 1, 1], 1)], [1, 4, 4, 4]);
    cases.push(['channels-last Mul before a conv', b.build([b.conv(b.node('Transpose', [m], [1, 4, 4, 4], { perm: [0, 2, 3, 1] }), { filters: 3, kernel: 1, bias: true })])]);
  }
  for (const [what, g] of cases) {
    const once = foldChannelScales(rewrite(g, 'fp32', 'unfused'));
    const twice = foldChannelScales(rewrite(once, 'fp32', 'unfused'));
    assert.deepEqual(twice, once, what);
    assert.ok(once.nodes.some((n) => n.attrs.channelsLast !== undefined || n.attrs.residualResize !== undefined), `${what}: a fold applied`);
  }
});
