// foldPointwiseMeans (src/rewrite/pointwise-mean.ts) on the graph, no GPU: graphs before and after, the cases that
// must not fold, and the zoo's heads in the executor's schedule (compileGraph, as createSession compiles it) with the
// fold on and off (FCM_OPT_FOLD_POOL's switch, RewriteOptions.foldPool). Runs on lavapipe: pointwise-mean.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { zooFoldModels, zooModels } from '../../fixtures/zoo.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import type { AttrValue, Graph } from '../../src/graph/ir.js';
import { fuseEpilogues } from '../../src/rewrite/epilogues.js';
import { foldPointwiseMeans, pointwiseMeanMatches } from '../../src/rewrite/pointwise-mean.js';
import { foldChannelScales } from '../../src/rewrite/channel-scale.js';
import { planFor, planningInput, poolFoldOffByEnv, rewrite } from '../../src/pipeline/pipeline.js';
import { loadHw } from '../../src/planner/hw.js';
import { compileGraph } from '../../src/runtime/compile.js';
import { defaultLimits } from '../../kernels/program.js';

const ops = (g: Graph) => g.nodes.map((n) => n.op);
const topological = (g: Graph) => {
  const made = new Set([...g.inputs, ...[...g.tensors.values()].filter((t) => t.data).map((t) => t.name)]);
  return g.nodes.every((n) => { const ok = n.inputs.every((x) => !x || made.has(x)); n.outputs.forEach((y) => made.add(y)); return ok; });
};

type Pool = { op: 'GlobalAveragePool' } | { op: 'ReduceMean'; axes: number[]; keepdims: number };

/** x -> Conv (k x k, stride, group) + act -> pool -> Flatten -> Gemm, epilogues folded as the pipeline does. */
function head(o: { act?: 'relu6' | 'relu' | 'none'; pool?: Pool; kernel?: number; stride?: number; group?: number; pad?: number } = {}) {
  const b = new GraphBuilder('head', 7);
  const x = b.input('x', [2, 8, 5, 5]);
  let y = b.conv(x, { filters: 12, kernel: o.kernel ?? 1, stride: o.stride ?? 1, group: o.group ?? 1, pad: o.pad ?? 0, bias: true });
  const act = o.act ?? 'relu6';
  if (act === 'relu6') y = b.relu6(y); else if (act === 'relu') y = b.relu(y);
  const pool = o.pool ?? { op: 'GlobalAveragePool' };
  const [n, f, h, w] = b.shape(y);
  let p: string;
  if (pool.op === 'GlobalAveragePool') p = b.globalAveragePool(y);
  else {
    const norm = pool.axes.map((a) => (a < 0 ? a + 4 : a));
    const shape = [n, f, h, w].flatMap((d, i) => (norm.includes(i) ? (pool.keepdims ? [1] : []) : [d]));
    p = b.node('ReduceMean', [y], shape, { axes: pool.axes, keepdims: pool.keepdims });
  }
  const flat = b.shape(p).length === 2 ? p : b.flatten(p);
  return { g: fuseEpilogues(b.build([b.gemm(flat, 5)])), x, pool: p };
}

test('Conv + Clip -> GlobalAveragePool becomes one PointwiseMean with the Conv\'s activation and the pool\'s output', () => {
  const { g, x, pool } = head();
  assert.deepEqual(ops(g), ['Conv', 'GlobalAveragePool', 'Flatten', 'Gemm']);
  const conv = g.nodes[0];
  const f = foldPointwiseMeans(g);
  assert.deepEqual(ops(f), ['PointwiseMean', 'Flatten', 'Gemm']);
  const n = f.nodes[0];
  assert.equal(n.domain, '');
  assert.deepEqual(n.inputs, [x, conv.inputs[1], conv.inputs[2]]);
  assert.deepEqual(n.outputs, [pool]);
  assert.equal(n.attrs.activation, 'Clip');
  assert.deepEqual(n.attrs.activationParams, [0, 6]);
  assert.equal(f.tensors.has(conv.outputs[0]), false, 'the Conv\'s output is gone');
  assert.ok(topological(f));
  assert.deepEqual(f.outputs, g.outputs);
  // The input graph is untouched.
  assert.deepEqual(ops(g), ['Conv', 'GlobalAveragePool', 'Flatten', 'Gemm']);
  assert.ok(g.tensors.has(conv.outputs[0]));
});

test('ReduceMean over H, W folds with either keepdims and negative axes; no activation, no bias fold too', () => {
  for (const pool of [
    { op: 'ReduceMean', axes: [2, 3], keepdims: 0 },
    { op: 'ReduceMean', axes: [-1, -2], keepdims: 1 },
  ] as Pool[]) {
    const { g, pool: p } = head({ pool, act: 'none' });
    const f = foldPointwiseMeans(g);
    assert.equal(f.nodes[0].op, 'PointwiseMean', JSON.stringify(pool));
    assert.equal(f.nodes[0].attrs.activation, undefined);
    assert.deepEqual(f.nodes[0].outputs, [p]);
  }
  const b = new GraphBuilder('nobias', 3);
  const y = b.globalAveragePool(b.relu(b.conv(b.input('x', [1, 4, 3, 3]), { filters: 6, kernel: 1, pad: 0 })));
  const f = foldPointwiseMeans(fuseEpilogues(b.build([y])));
  assert.deepEqual(ops(f), ['PointwiseMean']);
  assert.equal(f.nodes[0].inputs[2], '');
  assert.equal(f.nodes[0].attrs.activation, 'Relu');
});

test('a ReduceMean through the ONNX importer (axes normalized into the attribute) folds', async () => {
  const { g } = head({ pool: { op: 'ReduceMean', axes: [2, 3], keepdims: 0 }, act: 'relu' });
  const m = await loadModel(exportOnnx(g), { source: 'head.onnx' });
  const f = foldPointwiseMeans(fuseEpilogues(m));
  assert.deepEqual(ops(f).filter((o) => o !== 'Reshape' && o !== 'Flatten'), ['PointwiseMean', 'Gemm']);
});

test('no fold: a residual, a second reader, a graph output, a channel scale, a shuffled store, a non-pointwise Conv, other pool axes', () => {
  const keep = (g: Graph, why: string) => {
    assert.equal(pointwiseMeanMatches(g).length, 0, why);
    assert.equal(foldPointwiseMeans(g), g, why);
  };
  // Residual: Conv -> Add(x) -> Relu -> pool; the epilogues put x on the Conv's 4th input.
  {
    const b = new GraphBuilder('res', 1);
    const x = b.input('x', [1, 8, 4, 4]);
    const y = b.globalAveragePool(b.relu(b.add(b.conv(x, { filters: 8, kernel: 1, pad: 0, bias: true }), x)));
    const g = fuseEpilogues(b.build([y]));
    assert.ok(g.nodes[0].inputs[3], 'the fixture has its residual on the Conv');
    keep(g, 'residual');
  }
  // Second reader: the Conv's output is also added to something else.
  {
    const b = new GraphBuilder('two', 2);
    const x = b.input('x', [1, 8, 4, 4]);
    const c = b.relu(b.conv(x, { filters: 8, kernel: 1, pad: 0, bias: true }));
    const p = b.globalAveragePool(c);
    keep(fuseEpilogues(b.build([p, b.mul(c, c)])), 'second reader');
  }
  // Graph output.
  {
    const b = new GraphBuilder('out', 3);
    const c = b.relu(b.conv(b.input('x', [1, 8, 4, 4]), { filters: 8, kernel: 1, pad: 0, bias: true }));
    keep(fuseEpilogues(b.build([b.globalAveragePool(c), c])), 'graph output');
  }
  // A channel scale (a squeeze-excite Mul folded into the Conv).
  {
    const { g } = head();
    const scaled = structuredClone(g);
    const s = 'scale';
    scaled.tensors.set(s, { name: s, dtype: 'float32', shape: [2, 8, 1, 1] });
    scaled.inputs.push(s);
    scaled.nodes[0].inputs = [...scaled.nodes[0].inputs.slice(0, 3), '', s];
    keep(scaled, 'channel scale');
  }
  // Not pointwise: 3x3, 1x1 stride 2, 1x1 grouped, 1x1 padded.
  keep(head({ kernel: 3, pad: 1 }).g, '3x3');
  keep(head({ stride: 2 }).g, 'stride 2');
  keep(head({ group: 2 }).g, 'grouped');
  keep(head({ pad: 1 }).g, 'padded 1x1');
  // The pool over other axes.
  keep(head({ pool: { op: 'ReduceMean', axes: [1, 2, 3], keepdims: 1 } }).g, 'mean over C, H, W');
  keep(head({ pool: { op: 'ReduceMean', axes: [3], keepdims: 1 } }).g, 'mean over W only');
  keep(head({ pool: { op: 'ReduceMean', axes: [1], keepdims: 1 } }).g, 'mean over C');
  // An activation after a residual: never without one, but refused as such too.
  {
    const { g } = head();
    const post = structuredClone(g);
    post.nodes[0].attrs.activationPost = 'Relu' as AttrValue;
    keep(post, 'activationPost');
  }
  // A shuffled store (src/rewrite/shuffle-conv.ts: channels stored elsewhere, a sixth input).
  {
    const { g } = head();
    const shuffled = structuredClone(g);
    const a = 'other_branch';
    shuffled.tensors.set(a, { name: a, dtype: 'float32', shape: [2, 12, 5, 5] });
    shuffled.inputs.push(a);
    shuffled.nodes[0].inputs = [...shuffled.nodes[0].inputs.slice(0, 3), '', '', a];
    shuffled.nodes[0].attrs.shuffleGroups = 2;
    keep(shuffled, 'shuffled store');
  }
});

const limits = { ...defaultLimits, maxComputeWorkgroupStorageSize: 32768, maxStorageBufferBindingSize: 1 << 30, maxBufferSize: 1 << 30 };
const dispatches = (g: Graph) => compileGraph(foldChannelScales(g), limits).steps;

test('the zoo: each head is one PointwiseMean, one dispatch fewer, planned on h100.cfg at batch 1 and 32 (off: as before)', async () => {
  assert.equal(poolFoldOffByEnv(), process.env.FCM_OPT_FOLD_POOL === '0');
  const hw = loadHw('hw_configs/h100.cfg');
  const all = { ...zooModels, ...zooFoldModels };
  // The models whose head is a pointwise Conv and a global average pool (resnet18 and regnet_x_400mf end with a
  // residual Add before the pool).
  const heads: Record<string, string> = {
    mobilenet_v2: 'Clip', mobilenet_v3_large: 'HardSwish', mnasnet1_0: 'Relu', efficientnet_b0: 'SiLU', shufflenet_v2_x1_0: 'Relu',
  };
  for (const batch of [1, 32]) {
    for (const [name, act] of Object.entries(heads)) {
      const g = await loadModel(exportOnnx(all[name as keyof typeof all](batch)), { source: `${name}.onnx` });
      const pin = planningInput(g, hw, false, 'fp32');
      const plan = planFor(pin, { model: name });
      const on = rewrite(pin.graph, 'fp32', plan, { foldPool: true });
      const off = rewrite(pin.graph, 'fp32', plan, { foldPool: false });
      const pm = on.nodes.filter((n) => n.op === 'PointwiseMean');
      assert.equal(pm.length, 1, `${name} batch ${batch}`);
      assert.equal(pm[0].attrs.activation, act, name);
      assert.equal(off.nodes.filter((n) => n.op === 'PointwiseMean').length, 0);
      const a = dispatches(off), b = dispatches(on);
      assert.equal(b.length, a.length - 1, `${name} batch ${batch}: ${a.length} -> ${b.length}`);
      const step = b.find((s) => s.node.op === 'PointwiseMean')!;
      const [N, , H, W] = on.tensors.get(pm[0].inputs[0])!.shape;
      assert.deepEqual([N, H * W], [batch, 49], name);
      assert.equal(step.program.dispatch[1], batch);
      // The graph outputs and the Gemm after the head are unchanged.
      assert.deepEqual(on.outputs, off.outputs);
    }
  }
  // resnet18: its head's pool reads a residual sum, not a pointwise Conv.
  const r = await loadModel(exportOnnx(zooFoldModels.resnet18(1)), { source: 'resnet18.onnx' });
  assert.equal(pointwiseMeanMatches(rewrite(r, 'fp32', 'unfused', { foldPool: false })).length, 0);
});
