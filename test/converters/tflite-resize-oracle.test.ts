// The TFLite import of RESIZE_BILINEAR, RESIZE_NEAREST_NEIGHBOR (legacy, align_corners, half_pixel_centers) and
// TRANSPOSE_CONV (SAME, VALID, bias) as ONNX Resize and ConvTranspose, run by the float kernels on lavapipe, against
// what the TFLite interpreter (LiteRT.js, recorded by scripts/record-tflite-oracle.mjs) computed on the same model
// and inputs: the mapping's coordinate modes and weight layout are checked against TFLite itself, not against
// onnxruntime running our own mapping.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../../src/graph/load.js';
import { createSession } from '../../src/pipeline/session.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { irInput, loadRecord, toNhwc } from '../quant/tflite-oracle-records.js';

after(releaseGpu);

test('resize and transposed convolution match the TFLite interpreter on every output', async () => {
  const rec = loadRecord('resize-transpose-conv');
  const g = await loadModel(rec.model.bytes(), { source: 'resize-transpose-conv.tflite' });
  assert.deepEqual([...new Set(g.nodes.map((n) => n.op))].filter((op) => op === 'Resize' || op === 'ConvTranspose').sort(), ['ConvTranspose', 'Resize']);
  const s = await createSession(g, { plan: 'unfused' });
  try {
    for (let i = 0; i < rec.model.seeds.length; i++) {
      const out = await s.run({ [g.inputs[0]]: irInput(rec.model.inputs(rec.model.seeds[i])) as Float32Array });
      rec.raw.outputDetails.forEach((d, k) => {
        const y = out[s.outputNames[k]];
        const got = toNhwc(y.data as Float32Array, y.shape);
        const want = rec.outputs.xnnpack[i][k] as Float32Array;
        assert.equal(got.length, want.length, d.name);
        let max = 0, maxRef = 0;
        for (let j = 0; j < want.length; j++) { max = Math.max(max, Math.abs(got[j] - want[j])); maxRef = Math.max(maxRef, Math.abs(want[j])); }
        // Nearest copies input values: exact. Bilinear blends 4 values in [-2, 2] with weights summing to 1 and
        // the transposed convolutions sum <= 27 products (values <= 2, weights <= 0.5): float32 rounding in either
        // implementation's order is a few 2^-24 of the magnitudes (~1e-6), an off-by-one coordinate or a
        // transposed kernel O(0.1..1). 1e-5 of max(1, max |ref|) separates the two.
        const tol = d.name.startsWith('nearest') ? 0 : 1e-5 * Math.max(1, maxRef);
        assert.ok(max <= tol, `${d.name}, input ${i}: max |ours - TFLite| ${max} > ${tol}`);
      });
    }
  } finally {
    s.dispose();
  }
});
