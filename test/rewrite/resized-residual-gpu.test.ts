// foldResizesIntoResiduals (src/rewrite/resized-residual.ts) on lavapipe: sessions of a small feature-pyramid decoder
// (fold-models.ts: two top-down steps, linear and nearest) with the fold and without, fp32 and fp16, at batch 1 and 2,
// against onnxruntime (CPU) and each other. fp32: the same arithmetic in another kernel (the interpolation the
// Resize stored, now computed where it is added), so the two agree to float32 rounding; fp16: the folded run skips
// the rounding of the upsampled map to f16, so both are held to onnxruntime's tolerance only.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import { createSession } from '../../src/pipeline/session.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { compareOutputs, seededInput } from '../../src/runtime/compare.js';
import { maxAbsDiff } from '../kernels/reference.js';
import { tinyPyramid } from './fold-models.js';

after(releaseGpu);

async function reference(bytes: Uint8Array, feeds: Record<string, { data: Float32Array; shape: number[] }>) {
  // One thread, no spinning: onnxruntime's spinning workers starve lavapipe's threads for seconds.
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, extra: { session: { intra_op: { allow_spinning: '0' } } } });
  const r = await s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v.data, v.shape)])));
  await s.release();
  return r;
}

for (const precision of ['fp32', 'fp16'] as const) {
  for (const batch of [1, 2]) {
    test(`tiny pyramid, ${precision}, batch ${batch}: 2 dispatches fewer folded, within tolerance of onnxruntime and of the unfolded run`, async () => {
      const bytes = exportOnnx(tinyPyramid(batch));
      const g = await loadModel(bytes, { source: 'tiny_pyramid.onnx' });
      const feeds = Object.fromEntries(g.inputs.map((x, i) => {
        const shape = g.tensors.get(x)!.shape;
        return [x, { data: seededInput(shape.reduce((a, b) => a * b, 1), 31 + i), shape }];
      }));
      const input = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, v.data]));
      const ref = await reference(bytes, feeds);
      const runs = [];
      for (const resizedResidual of [false, true]) {
        const s = await createSession(g, { plan: 'unfused', precision, resizedResidual });
        try {
          runs.push({ out: await s.run(input), dispatches: s.stats().dispatchesPerRun, names: s.outputNames });
        } finally {
          s.dispose();
        }
      }
      const [off, on] = runs;
      assert.equal(on.dispatches, off.dispatches - 2, `dispatches ${off.dispatches} -> ${on.dispatches}`);
      for (const y of on.names) {
        for (const [what, r] of [['folded', on], ['unfolded', off]] as const) {
          const c = compareOutputs(r.out[y].data, ref[y].data as Float32Array, r.out[y].shape, undefined, undefined, precision);
          assert.ok(c.ok, `${y} ${what}: max abs ${c.maxAbsError} > ${c.tolerance} (cosine ${c.cosine}, top-1 ${c.top1})`);
        }
        if (precision === 'fp16') continue;
        // float32 rounding of a 3x3 conv's sums over 16 channels (144 terms) of values that differ by rounding: 1e-5
        // of the largest output.
        const { maxDiff, maxRef } = maxAbsDiff(on.out[y].data, off.out[y].data);
        assert.ok(maxDiff <= 1e-5 * Math.max(1, maxRef), `${y}: folded and unfolded differ by ${maxDiff} (max ${maxRef})`);
      }
    });
  }
}
