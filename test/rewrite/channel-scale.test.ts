// foldChannelScales (src/rewrite/channel-scale.ts): the squeeze-excite Mul folded into the pointwise Conv that reads
// it: the folded kernels against onnxruntime on lavapipe (graphs before and after: channel-scale-fold.test.ts).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { seBlock } from './se-block.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import { foldChannelScales } from '../../src/rewrite/channel-scale.js';
import type { Graph } from '../../src/graph/ir.js';
import { createSession } from '../../src/pipeline/session.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { compareOutputs, seededInput } from '../../src/runtime/compare.js';
import { chooseDot } from '../../kernels/pointwise.js';
import { squeezeExcitePoolMax } from '../../src/rewrite/squeeze-excite.js';

after(releaseGpu);

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
    const s = await createSession(m, { plan: 'unfused', squeezeExcite: true });
    try {
      assert.ok(!s.graph.nodes.some((n) => n.op === 'Mul'), 'the executor still runs the Mul');
      // conv, the squeeze-excite (one SqueezeExcite dispatch, or a GlobalAveragePool and one where the map is over
      // squeezeExcitePoolMax: src/rewrite/squeeze-excite.ts), projection: the Mul is gone.
      assert.equal(s.stats().dispatchesPerRun, C * hw * hw <= squeezeExcitePoolMax ? 3 : 4);
      const y = (await s.run({ [m.inputs[0]]: x }))[m.outputs[0]];
      const c = compareOutputs(y.data, ref, y.shape);
      assert.ok(c.maxAbsError <= c.tolerance, `max abs ${c.maxAbsError} > ${c.tolerance}`);
    } finally {
      s.dispose();
    }
  });
}
