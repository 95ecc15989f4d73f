// Keras (TF.js Layers) fixtures on the WebGPU executor (lavapipe here): the imported model.json runs unfused and
// with a fused plan, and its outputs match onnxruntime CPU running the ONNX export of the same network imported
// from its TFLite file (batch norms folded by the fixture in float64, so an independent path to the same values).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildKerasMobileNetV1, buildKerasMobileNetV2, writeKerasModel } from '../../fixtures/keras-builder.js';
import { loadModel } from '../../src/graph/load.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { toDag } from '../../src/planner/to-dag.js';
import { planFusion } from '../../src/planner/index.js';
import { loadHw } from '../../src/planner/hw.js';
import { createSession } from '../../src/pipeline/session.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { compareOutputs, seededInput } from '../../src/runtime/compare.js';
import { fcmDomain } from '../../src/graph/ir.js';
import { runOrt } from '../../src/cli/check.js';

after(releaseGpu);

for (const [label, build] of [['MobileNetV1', buildKerasMobileNetV1], ['MobileNetV2', buildKerasMobileNetV2]] as const) {
  test(`keras ${label} runs fused and unfused and matches onnxruntime on the TFLite twin`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fcm-keras-run-'));
    try {
      const built = build().finish('input_1', 'predictions');
      const gk = await loadModel(writeKerasModel(dir, built));
      const gt = await loadModel(built.tflite, { source: 'twin.tflite' });
      const shape = gk.tensors.get(gk.inputs[0])!.shape;
      assert.deepEqual(shape, [1, 3, 16, 16], 'rank-4 input is NCHW in the IR');
      const x = seededInput(shape.reduce((a, b) => a * b, 1), 7);
      const ref = await runOrt(exportOnnx(gt), { [gt.inputs[0]]: { data: x, shape } }, gt.outputs, gt.source);
      const expected = ref.get(gt.outputs[0])!;
      const plan = planFusion(toDag(gk), loadHw('lavapipe'), { mode: 'optimal', model: gk.source });
      const fused = plan.modules.filter((m) => m.layers.length > 1).length;
      assert.ok(fused >= 1, 'the planner fuses at least one pair');
      for (const mode of ['unfused', 'fused'] as const) {
        const s = await createSession(gk, { plan: mode === 'unfused' ? 'unfused' : plan });
        try {
          assert.equal(s.graph.nodes.filter((n) => n.domain === fcmDomain).length, mode === 'unfused' ? 0 : fused);
          const out = (await s.run({ [gk.inputs[0]]: x }))[gk.outputs[0]];
          const c = compareOutputs(out.data, expected, out.shape);
          assert.ok(c.ok, `${mode}: max abs ${c.maxAbsError} > ${c.tolerance} or top-1 ${c.top1}`);
          assert.ok(c.cosine > 0.99999, `${mode}: cosine ${c.cosine}`);
        } finally {
          s.dispose();
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
