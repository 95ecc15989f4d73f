// foldChannelScales (src/rewrite/channel-scale.ts): the squeeze-excite Mul folded into the pointwise Conv that reads
// it; graphs before and after, the negative cases, and the folded kernels against onnxruntime on lavapipe.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import { foldChannelScales } from '../../src/rewrite/channel-scale.js';
import { fuseEpilogues } from '../../src/rewrite/epilogues.js';
import { applyPlan } from '../../src/rewrite/apply-plan.js';
import { FcmError } from '../../src/errors.js';
import type { Graph } from '../../src/graph/ir.js';
import { createSession } from '../../src/runtime/session.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { compareOutputs, seededInput } from '../../src/runtime/compare.js';
import { chooseDot } from '../../kernels/pointwise.js';

after(releaseGpu);

const ops = (g: Graph) => g.nodes.map((n) => n.op);

/** conv -> relu -> SE (GAP, 1x1, relu, 1x1, HardSigmoid) -> Mul -> pointwise projection (+ extra readers). */
function seBlock(opts: { hw?: number; channels?: number; proj?: number; projKernel?: number; swap?: boolean; secondReader?: boolean; batch?: number } = {}) {
  const b = new GraphBuilder('se', 7);
  const hw = opts.hw ?? 8, C = opts.channels ?? 16, N = opts.batch ?? 1;
  const x = b.input('input', [N, 3, hw, hw]);
  const f = b.relu(b.conv(x, { filters: C, kernel: 3, bias: true }));
  let s = b.globalAveragePool(f);
  s = b.relu(b.conv(s, { filters: 4, kernel: 1, bias: true }));
  s = b.hardSigmoid(b.conv(s, { filters: C, kernel: 1, bias: true }), 1 / 6, 0.5);
  const m = opts.swap ? b.mul(s, f) : b.mul(f, s);
  // The builder takes the Mul's shape from its first operand: with the scale first, give it the product's.
  if (opts.swap) b.tensors.get(m)!.shape = [...b.tensors.get(f)!.shape];
  const y = b.conv(m, { filters: opts.proj ?? 24, kernel: opts.projKernel ?? 1, bias: true });
  const outs = [y];
  if (opts.secondReader) outs.push(b.relu(m));
  return { g: b.build(outs), m, f, s, y };
}

test('Mul(x, s) -> pointwise Conv becomes Conv(x, w, b, "", s); either operand order; input graph untouched', () => {
  for (const swap of [false, true]) {
    const { g, m, f, s } = seBlock({ swap });
    const folded = foldChannelScales(fuseEpilogues(g));
    assert.ok(!ops(folded).includes('Mul'), `swap ${swap}: the Mul stayed`);
    const proj = folded.nodes[folded.nodes.length - 1];
    assert.equal(proj.op, 'Conv');
    assert.equal(proj.inputs[0], f);
    assert.equal(proj.inputs[3], '');
    assert.equal(proj.inputs[4], s);
    assert.ok(!folded.tensors.has(m));
    assert.ok(ops(g).includes('Mul'));
  }
});

test('no fold: a second reader of the product, a non-pointwise reader, a graph output, a non-channel operand', () => {
  const keep = (g: Graph, why: string) => assert.ok(ops(foldChannelScales(fuseEpilogues(g))).includes('Mul'), why);
  keep(seBlock({ secondReader: true }).g, 'the product has two readers');
  keep(seBlock({ projKernel: 3 }).g, 'the reader is a 3x3 conv');
  const b = new GraphBuilder('se-out', 7);
  const x = b.input('input', [1, 8, 4, 4]);
  const s = b.hardSigmoid(b.conv(b.globalAveragePool(x), { filters: 8, kernel: 1, bias: true }), 1 / 6, 0.5);
  keep(b.build([b.mul(x, s)]), 'the product is a graph output');
  // x * x (same shape, not [N, C, 1, 1]) is no channel scale.
  const b2 = new GraphBuilder('sq', 7);
  const x2 = b2.input('input', [1, 8, 4, 4]);
  keep(b2.build([b2.conv(b2.mul(x2, x2), { filters: 4, kernel: 1, bias: true })]), 'x * x');
});

test('applyPlan refuses to fuse a conv that reads a channel scale, naming it (plan before folding)', () => {
  const b = new GraphBuilder('se2', 7);
  const x = b.input('input', [1, 8, 4, 4]);
  const s = b.hardSigmoid(b.conv(b.globalAveragePool(x), { filters: 8, kernel: 1, bias: true }), 1 / 6, 0.5);
  const p1 = b.conv(b.mul(x, s), { filters: 8, kernel: 1, bias: true });
  const y = b.conv(p1, { filters: 4, kernel: 1, bias: true });
  const g = b.build([y]);
  const folded = foldChannelScales(fuseEpilogues(g));
  const [c1, c2] = folded.nodes.filter((n) => n.op === 'Conv').slice(-2);
  assert.ok(c1.inputs[4], 'the first conv of the pair reads the scale');
  const plan = {
    model: 'se2', hw: 'h', mode: 'optimal' as const, totals: { gma: 0, gmaUnfused: 0, saved: 0, savedPercent: 0 },
    modules: [{ kind: 'pwpw' as const, layers: [0, 1], nodes: [c1.name, c2.name], tiles: { l1Filters: 8, l2Filters: 4, h: 2, w: 2, d: 4 }, gma: 0, gmaUnfused: 0 }],
  };
  assert.throws(() => applyPlan(folded, plan), (e: unknown) => e instanceof FcmError && e.kind === 'unsupported' && e.message.includes(c1.name) && /channel scale/.test(e.message));
  // The same plan on the graph before the fold applies.
  assert.ok(applyPlan(fuseEpilogues(g), plan).nodes.some((n) => n.op === 'FusedPwPw'));
});

async function reference(g: Graph, x: Float32Array) {
  const s = await ort.InferenceSession.create(exportOnnx(g), { intraOpNumThreads: 1, interOpNumThreads: 1, extra: { session: { intra_op: { allow_spinning: '0' } } } });
  const r = await s.run({ [g.inputs[0]]: new ort.Tensor('float32', x, g.tensors.get(g.inputs[0])!.shape) });
  await s.release();
  return r[g.outputs[0]].data as Float32Array;
}

// Shapes that reach each pointwise kernel with the scale (kernels/pointwise.ts chooseDot): split-K (small maps, 7x7
// with P % 4 != 0, batch 2 with per-image scales), vec4 with global weights (64x64, 6 channels), vec4 with weights
// staged in workgroup memory (128x128, 4 channels) and gemm (128x128 with 16 channels; 49x49 at batch 2: P % 4 != 0,
// images that share a tile).
const shapes = [[8, 16, 1, 24], [7, 40, 1, 24], [8, 12, 2, 24], [64, 6, 1, 24], [128, 4, 1, 32], [128, 16, 1, 32], [49, 20, 2, 64]] as const;

test('the squeeze-excite shapes below reach every pointwise kernel', () => {
  const limits = { maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256 };
  const kinds = new Set(shapes.map(([hw, C, N, F]) => {
    const ch = chooseDot({ N, C, F, P: hw * hw, hasBias: true, hasRes: false, hasScale: true, act: { fn: '', key: '' } }, limits);
    return ch.kind === 'splitK' || ch.kind === 'gemm' ? ch.kind : ch.rf >= 4 ? 'vec4 staged' : 'vec4 global';
  }));
  assert.deepEqual([...kinds].sort(), ['gemm', 'splitK', 'vec4 global', 'vec4 staged']);
});

for (const [hw, C, N, F] of shapes) {
  test(`folded squeeze-excite runs as onnxruntime does: ${N}x${C}x${hw}x${hw} -> ${F}, one dispatch fewer`, async () => {
    const { g } = seBlock({ hw, channels: C, batch: N, proj: F });
    const m = await loadModel(exportOnnx(g), { source: 'se.onnx' });
    const x = seededInput(m.tensors.get(m.inputs[0])!.shape.reduce((a, b) => a * b, 1), 11);
    const ref = await reference(m, x);
    const s = await createSession(m, { plan: 'unfused' });
    try {
      assert.ok(!s.graph.nodes.some((n) => n.op === 'Mul'), 'the executor still runs the Mul');
      // conv, GlobalAveragePool, two 1x1 convs, projection: the Mul is gone.
      assert.equal(s.stats().dispatchesPerRun, 5);
      const y = (await s.run({ [m.inputs[0]]: x }))[m.outputs[0]];
      const c = compareOutputs(y.data, ref, y.shape);
      assert.ok(c.maxAbsError <= c.tolerance, `max abs ${c.maxAbsError} > ${c.tolerance}`);
    } finally {
      s.dispose();
    }
  });
}
