// foldResizesIntoResiduals (src/rewrite/resized-residual.ts) on the graph, no GPU: a small feature-pyramid decoder's
// nodes and dispatches before and after, each rule's refusal, and the float-only scope. The executor's runs are in
// resized-residual-gpu.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import { type Graph, consumers, fcmDomain, producers } from '../../src/graph/ir.js';
import { rewrite } from '../../src/pipeline/pipeline.js';
import { foldChannelScales } from '../../src/rewrite/channel-scale.js';
import { foldResizesIntoResiduals, resizedResidualMatch } from '../../src/rewrite/resized-residual.js';
import { compileGraph } from '../../src/runtime/compile.js';
import { inferShapes } from '../../src/graph/shape.js';
import { defaultLimits } from '../../kernels/program.js';
import { tinyPyramid } from './fold-models.js';

const ops = (g: Graph) => g.nodes.map((n) => n.op);
const count = (g: Graph, op: string) => g.nodes.filter((n) => n.op === op).length;
const resizedReaders = (g: Graph) => g.nodes.filter((n) => n.attrs.residualResize !== undefined);
const limits = { ...defaultLimits, maxStorageBufferBindingSize: 1 << 30, maxBufferSize: 1 << 30 };
const dispatches = (g: Graph) => compileGraph(foldChannelScales(g), limits).steps.length;
/** The graph as a model file gives it (normalize-attrs moves the constant scales into the Resize's attribute). */
const loaded = async (g: Graph) => loadModel(exportOnnx(g), { source: `${g.source ?? 'g'}.onnx` });

for (const batch of [1, 2]) {
  test(`tiny pyramid at batch ${batch}: both Resizes fold into the laterals' residuals, 2 dispatches fewer`, async () => {
    const g0 = await loaded(tinyPyramid(batch));
    const off = rewrite(g0, 'fp32', 'unfused', { resizedResidual: false });
    const on = rewrite(g0, 'fp32', 'unfused', { resizedResidual: true });
    assert.deepEqual(on, foldResizesIntoResiduals(off));
    assert.equal(count(off, 'Resize'), 2);
    assert.equal(count(on, 'Resize'), 0);
    const made = producers(off);
    const readers = resizedReaders(on);
    assert.equal(readers.length, 2);
    assert.deepEqual(readers.map((n) => [n.attrs.residualResize, n.attrs.residualResizeCtm, n.attrs.residualResizeNearest]), [['linear', 'half_pixel', undefined], ['nearest', 'asymmetric', 'floor']]);
    for (const n of readers) {
      // The reader is the lateral 1x1 Conv; its residual is the Resize's input, at half the resolution.
      assert.equal(n.op, 'Conv');
      const old = off.nodes.find((m) => m.name === n.name)!;
      const resize = off.nodes[made.get(old.inputs[3])!];
      assert.equal(resize.op, 'Resize');
      assert.deepEqual(n.inputs, [...old.inputs.slice(0, 3), resize.inputs[0], ...old.inputs.slice(4)]);
      assert.deepEqual(n.outputs, old.outputs);
      assert.ok(!on.tensors.has(resize.outputs[0]));
      const [N, F, H, W] = on.tensors.get(n.outputs[0])!.shape;
      assert.deepEqual(on.tensors.get(n.inputs[3])!.shape, [N, F, H / 2, W / 2]);
    }
    assert.equal(on.nodes.length, off.nodes.length - 2);
    assert.deepEqual(on.outputs, off.outputs);
    assert.equal(dispatches(on), dispatches(off) - 2);
    // Shape inference takes the lower-resolution residual.
    const inferred = inferShapes(on);
    for (const n of readers) assert.deepEqual(inferred.tensors.get(n.outputs[0])!.shape, on.tensors.get(n.outputs[0])!.shape);
  });
}

test('integer graphs: the rewrite reads no residual through a resize', async () => {
  assert.equal(resizedReaders(rewrite(await loaded(tinyPyramid(1)), 'int8', 'unfused')).length, 0);
});

/** x [1, 8, 4, 4] -> lateral Conv 1x1 (or `kernel`) to 6 channels + Resize(c [1, 6, 2, 2]) as its residual, and what `more` adds. */
function lateralCase(o: { kernel?: number; mode?: string; ctm?: string; scales?: number[]; sizes?: boolean; asInput?: boolean; more?: (b: GraphBuilder, r: string) => string[] } = {}): Graph {
  const b = new GraphBuilder('lateral', 9);
  const x = b.input('x', [1, 8, 4, 4]);
  const c = b.input('c', [1, 6, 2, 2]);
  const attrs: Record<string, unknown> = { mode: o.mode ?? 'linear', coordinate_transformation_mode: o.ctm ?? 'half_pixel' };
  if (!o.sizes) attrs.scales = o.scales ?? [1, 1, 2, 2];
  const r = b.node('Resize', o.sizes ? [c, '', '', b.int64s('sizes', [1, 6, 4, 4])] : [c], [1, 6, 4, 4], attrs as never);
  const y = b.conv(o.asInput ? r : x, { filters: 6, kernel: o.kernel ?? 1, bias: true });
  if (!o.asInput) b.nodes[b.nodes.length - 1].inputs.push(r);
  return b.build([y, ...(o.more?.(b, r) ?? [])]);
}

const why = (g: Graph) => {
  const i = g.nodes.findIndex((n) => n.op === 'Resize');
  const readers = new Map([...consumers(g)].map(([k, v]) => [k, [...new Set(v)]]));
  return resizedResidualMatch(g, i, readers);
};

test('the rule folds a Resize read only as a pointwise Conv\'s residual, and one given by sizes', () => {
  for (const g of [lateralCase(), lateralCase({ sizes: true })]) {
    const f = foldResizesIntoResiduals(g);
    assert.deepEqual(ops(f), ['Conv']);
    assert.equal(f.nodes[0].inputs[3], 'c');
    assert.equal(f.nodes[0].attrs.residualResize, 'linear');
  }
});

test('a DW-PW FCM\'s residual (input 5) folds too', () => {
  const g = lateralCase();
  const n = g.nodes[1];
  n.op = 'FusedDwPw';
  n.domain = fcmDomain;
  n.inputs = [n.inputs[0], n.inputs[1], '', n.inputs[1], n.inputs[2], n.inputs[3]];
  const f = foldResizesIntoResiduals(g);
  assert.deepEqual(ops(f), ['FusedDwPw']);
  assert.equal(f.nodes[0].inputs[5], 'c');
});

test('what stays: another reader, a graph output, read as an input, a 3x3 conv, other modes and scales, a reader that has one', () => {
  const pwpw = lateralCase();
  pwpw.nodes[1].op = 'FusedPwPw';
  pwpw.nodes[1].domain = fcmDomain;
  const twice = foldResizesIntoResiduals(lateralCase());
  const cases: [string, Graph, RegExp][] = [
    ['second reader', lateralCase({ more: (b, r) => [b.relu(r)] }), /another reader/],
    ['graph output', lateralCase({ more: (_, r) => [r] }), /graph output/],
    ['read as the conv\'s input', lateralCase({ asInput: true }), /other than as its residual/],
    ['3x3 conv', lateralCase({ kernel: 3 }), /not pointwise/],
    ['cubic', lateralCase({ mode: 'cubic' }), /mode cubic/],
    ['tf_crop_and_resize', lateralCase({ ctm: 'tf_crop_and_resize' }), /coordinate_transformation_mode/],
    ['scales not the lengths\' ratio', lateralCase({ scales: [1, 1, 2.2, 2.2] }), /ratio/],
    ['a PW-PW FCM', pwpw, /no Conv or FusedDwPw/],
  ];
  for (const [what, g, reason] of cases) {
    assert.equal(foldResizesIntoResiduals(g), g, what);
    const r = why(g);
    assert.equal(typeof r, 'string', what);
    assert.match(r as string, reason, what);
  }
  assert.equal(foldResizesIntoResiduals(twice), twice);
});

test('the tiny pyramid\'s refusals: a Resize read as a 3x3 conv\'s input and one that is also a graph output stay', async () => {
  const r = rewrite(await loaded(tinyPyramid(1, { refusals: true })), 'fp32', 'unfused');
  assert.equal(count(r, 'Resize'), 2);
  assert.equal(resizedReaders(r).length, 2);
});
