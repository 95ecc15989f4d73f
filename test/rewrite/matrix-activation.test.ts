// foldMatrixActivations (src/rewrite/epilogues.ts): an activation after a Gemm or MatMul becomes the kernel's epilogue.
// On the graph (positive and negative cases), then on lavapipe: folded and unfolded run bit for bit alike. Why no
// tolerance: the kernel applies the same f32 activation function to the same f32 value, in the register instead of
// after a store and a load.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import type { Graph } from '../../src/graph/ir.js';
import { foldMatrixActivations } from '../../src/rewrite/epilogues.js';
import { compileGraph } from '../../src/runtime/compile.js';
import { Executor } from '../../src/runtime/executor.js';
import { type GpuContext, acquireGpu, releaseGpu } from '../../src/runtime/device.js';
import { fp32 } from '../../src/runtime/precision.js';
import { seededInput } from '../../src/runtime/compare.js';

after(releaseGpu);

const ops = (g: Graph) => g.nodes.map((n) => n.op);

/** MobileNetV3's head on a small map: GAP -> Flatten -> Gemm -> act -> Gemm (+ a second reader of the hidden layer). */
function head(act: 'HardSwish' | 'Relu' | 'Sigmoid', opts: { secondReader?: boolean; hiddenOut?: boolean } = {}) {
  const b = new GraphBuilder('head', 3);
  const x = b.input('input', [2, 24, 3, 3]);
  const h = b.gemm(b.flatten(b.globalAveragePool(x)), 40);
  const a = b.node(act, [h], b.shape(h));
  const outs = [b.gemm(a, 10)];
  if (opts.secondReader) outs.push(b.relu(h));
  if (opts.hiddenOut) outs.push(h);
  return b.build(outs);
}

test('Gemm -> activation becomes Gemm{activation}, which takes the activation\'s output name; MatMul too', () => {
  const g = head('HardSwish');
  const f = foldMatrixActivations(g);
  assert.deepEqual(ops(f), ['GlobalAveragePool', 'Flatten', 'Gemm', 'Gemm']);
  assert.equal(f.nodes[2].attrs.activation, 'HardSwish');
  assert.deepEqual(f.nodes[2].outputs, g.nodes[3].outputs);
  assert.equal(f.tensors.has(g.nodes[2].outputs[0]), false);
  assert.deepEqual(ops(g), ['GlobalAveragePool', 'Flatten', 'Gemm', 'HardSwish', 'Gemm'], 'the input graph is untouched');
  const b = new GraphBuilder('mm', 3);
  const x = b.input('input', [4, 6]);
  const w = b.random('w', [6, 5], 0.5);
  const y = b.relu(b.node('MatMul', [x, w], [4, 5]));
  assert.deepEqual(ops(foldMatrixActivations(b.build([y]))), ['MatMul']);
});

test('no fold: a second reader of the product, the product a graph output, an op the epilogues do not take', () => {
  for (const [g, why] of [[head('HardSwish', { secondReader: true }), 'second reader'], [head('Relu', { hiddenOut: true }), 'graph output']] as const) {
    assert.equal(foldMatrixActivations(g), g, why);
  }
  const b = new GraphBuilder('neg', 3);
  const x = b.input('input', [2, 6]);
  const h = b.gemm(x, 4);
  assert.equal(foldMatrixActivations(b.build([b.node('Softmax', [h], [2, 4], { axis: 1 })])).nodes.length, 2, 'Softmax');
});

const limitsOf = (ctx: GpuContext) => ({ ...ctx.kernelLimits, maxStorageBufferBindingSize: ctx.limits.maxStorageBufferBindingSize, maxBufferSize: ctx.limits.maxBufferSize });

async function run(g: Graph, x: Float32Array) {
  const ctx = await acquireGpu();
  const s = await Executor.create(ctx, compileGraph(g, limitsOf(ctx)), fp32);
  try {
    const r = await s.run({ [g.inputs[0]]: x });
    return { dispatches: s.stats().dispatchesPerRun, y: Float32Array.from(r[g.outputs[0]].data as ArrayLike<number>) };
  } finally {
    s.dispose();
  }
}

for (const act of ['HardSwish', 'Sigmoid'] as const) {
  test(`${act} folded into the Gemm runs bit for bit as unfolded, one dispatch fewer`, async () => {
    const g = head(act);
    const x = seededInput(2 * 24 * 9, 5);
    const a = await run(g, x), b = await run(foldMatrixActivations(g), x);
    assert.equal(b.dispatches, a.dispatches - 1);
    assert.equal(a.y.length, 20);
    assert.ok(a.y.some((v) => v !== 0));
    a.y.forEach((v, i) => assert.ok(Object.is(v, b.y[i]), `output ${i}: ${v} vs ${b.y[i]}`));
  });
}
