// foldSqueezeExcites (src/rewrite/squeeze-excite.ts) and its kernel (kernels/squeeze-excite.ts) on lavapipe: small
// squeeze-excite blocks run unfolded and folded on the executor, each against onnxruntime, with the dispatches per
// run of both. Not bit for bit: the kernel sums the pool and the matrix-vector products in another order than the
// pool and pointwise kernels, so both are held to compareOutputs' tolerance against onnxruntime (graphs before and
// after: squeeze-excite-rules.test.ts).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { type SeGate, type SeInner, seBlock } from './se-block.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import type { Graph } from '../../src/graph/ir.js';
import { fuseEpilogues } from '../../src/rewrite/epilogues.js';
import { foldPads } from '../../src/rewrite/fold-pads.js';
import { foldChannelScales } from '../../src/rewrite/channel-scale.js';
import { type SqueezeExciteMatch, foldSqueezeExcites } from '../../src/rewrite/squeeze-excite.js';
import { createSession } from '../../src/pipeline/session.js';
import { compileGraph } from '../../src/runtime/compile.js';
import { Executor } from '../../src/runtime/executor.js';
import { type GpuContext, acquireGpu, releaseGpu } from '../../src/runtime/device.js';
import { fp32 } from '../../src/runtime/precision.js';
import { compareOutputs, seededInput } from '../../src/runtime/compare.js';

after(releaseGpu);

const limitsOf = (ctx: GpuContext) => ({ ...ctx.kernelLimits, maxStorageBufferBindingSize: ctx.limits.maxStorageBufferBindingSize, maxBufferSize: ctx.limits.maxBufferSize });

async function reference(g: Graph, x: Float32Array) {
  const s = await ort.InferenceSession.create(exportOnnx(g), { intraOpNumThreads: 1, interOpNumThreads: 1, extra: { session: { intra_op: { allow_spinning: '0' } } } });
  const r = await s.run({ [g.inputs[0]]: new ort.Tensor('float32', x, g.tensors.get(g.inputs[0])!.shape) });
  await s.release();
  return r[g.outputs[0]].data as Float32Array;
}

/** Runs `g` as createSession would (channel scales folded): its first output and dispatches per run. */
async function run(g: Graph, x: Float32Array) {
  const ctx = await acquireGpu();
  const s = await Executor.create(ctx, compileGraph(foldChannelScales(g), limitsOf(ctx)), fp32);
  try {
    const r = await s.run({ [g.inputs[0]]: x });
    return { dispatches: s.stats().dispatchesPerRun, y: r[g.outputs[0]] };
  } finally {
    s.dispose();
  }
}

type Choice = (m: SqueezeExciteMatch) => 'pool' | 'convs' | 'none';
const pool: Choice = () => 'pool';
const convs: Choice = () => 'convs';

// [map, channels, hidden, batch, inside, gate, choice, dispatches saved]. C = 300 takes two batches of rows of 256
// lanes; 5x5 and 9x9 maps rows whose length no lane count divides; batch 2 two workgroups.
const cases: [number, number, number, number, SeInner, SeGate, Choice, number][] = [
  [8, 16, 4, 1, 'relu', 'hsigmoid', pool, 2],
  [5, 40, 10, 2, 'silu', 'sigmoid', pool, 2],
  [9, 300, 75, 1, 'hswish', 'hsigmoid', pool, 2],
  [6, 24, 6, 2, 'relu', 'sigmoid', convs, 1],
];

for (const [hw, C, R, N, inner, gate, choice, saved] of cases) {
  const how = choice === pool ? 'pool + both convs' : 'both convs';
  test(`SqueezeExcite (${how}) runs as onnxruntime: ${N}x${C}x${hw}x${hw}, ${R} hidden, ${inner}/${gate}; ${saved} dispatches fewer`, async () => {
    const { g } = seBlock({ hw, channels: C, squeeze: R, batch: N, inner, gate, proj: 8 });
    const m = await loadModel(exportOnnx(g), { source: 'se.onnx' });
    const x = seededInput(m.tensors.get(m.inputs[0])!.shape.reduce((a, b) => a * b, 1), 13);
    const ref = await reference(m, x);
    const before = foldPads(fuseEpilogues(m));
    const after = foldSqueezeExcites(before, choice);
    assert.equal(after.nodes.filter((n) => n.op === 'SqueezeExcite').length, 1);
    const a = await run(before, x), b = await run(after, x);
    assert.equal(b.dispatches, a.dispatches - saved, `dispatches ${a.dispatches} -> ${b.dispatches}`);
    for (const [what, r] of [['unfolded', a], ['folded', b]] as const) {
      const c = compareOutputs(r.y.data, ref, r.y.shape);
      assert.ok(c.maxAbsError <= c.tolerance, `${what}: max abs ${c.maxAbsError} > ${c.tolerance}`);
    }
    assert.ok(ref.some((v) => v !== 0));
  });
}

test('the session runs the fold when asked: conv, SqueezeExcite, projection (the Mul a channel scale) = 3 dispatches', async () => {
  const m = await loadModel(exportOnnx(seBlock().g), { source: 'se.onnx' });
  const s = await createSession(m, { plan: 'unfused', squeezeExcite: true });
  const d = await createSession(m, { plan: 'unfused' });
  try {
    assert.deepEqual(s.graph.nodes.map((n) => n.op), ['Conv', 'SqueezeExcite', 'Conv']);
    assert.equal(s.stats().dispatchesPerRun, 3);
    // Off by default: one workgroup per image lost to the separate kernels on an H100 (src/rewrite/squeeze-excite.ts).
    assert.ok(!d.graph.nodes.some((n) => n.op === 'SqueezeExcite'));
  } finally {
    s.dispose();
    d.dispose();
  }
});

test('fp16 storage: the SqueezeExcite program in its f16 form runs as onnxruntime within the f16 tolerance', async () => {
  const m = await loadModel(exportOnnx(seBlock({ hw: 5, channels: 40, squeeze: 10, inner: 'silu', gate: 'sigmoid' }).g), { source: 'se.onnx' });
  const x = seededInput(m.tensors.get(m.inputs[0])!.shape.reduce((a, b) => a * b, 1), 17);
  const ref = await reference(m, x);
  const s = await createSession(m, { plan: 'unfused', precision: 'fp16', squeezeExcite: true });
  try {
    assert.ok(s.graph.nodes.some((n) => n.op === 'SqueezeExcite'));
    const y = (await s.run({ [m.inputs[0]]: x }))[m.outputs[0]];
    const c = compareOutputs(y.data, ref, y.shape, undefined, undefined, 'fp16');
    assert.ok(c.maxAbsError <= c.tolerance, `max abs ${c.maxAbsError} > ${c.tolerance}`);
  } finally {
    s.dispose();
  }
});
