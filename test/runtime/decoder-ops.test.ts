// Resize, ConvTranspose, a bool mask through Cast, Pow and ReduceSum end to end: the decoder fixture
// (fixtures/models.ts decoderHead) exported to ONNX, run by fcm-opt (unfused, and planned for the H100 with its
// DW-PW pair fused) against onnxruntime-node on the same seeded input, with `check`'s tolerance (1e-4 of max
// |reference|, src/runtime/compare.ts).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { decoderHead } from '../../fixtures/models.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { runCheck } from '../../src/check/check.js';
import { releaseGpu } from '../../src/runtime/device.js';

after(releaseGpu);

for (const unfused of [true, false]) {
  test(`decoder head (Resize, ConvTranspose, mask, ReduceSum) matches onnxruntime, ${unfused ? 'unfused' : 'planned for h100'}`, async () => {
    const bytes = exportOnnx(decoderHead());
    const r = await runCheck(bytes, { unfused, hw: 'h100' }, 'decoder_head.onnx');
    assert.equal(r.outputs.length, 2);
    for (const o of r.outputs) {
      assert.ok(o.ok, `${o.name}: max abs error ${o.maxAbsError} over ${o.tolerance}`);
      assert.ok(o.maxAbsError <= o.tolerance);
    }
    assert.deepEqual(r.outputs[0].shape, [1, 8, 27, 21]);
    assert.ok(r.ok);
  });
}
