// foldTransposesIntoConvs (src/rewrite/channels-last-store.ts) on lavapipe: sessions of a small detector
// (fold-models.ts: two feature maps, a box and a score head on each, concatenated) with the fold and without, fp32
// and fp16, at batch 1 and 2, against each other and against onnxruntime (CPU), as test/runtime/session.test.ts
// checks models. Folded and unfolded must agree bit for bit: the conv keeps its kernel and tiles (chosen from its
// geometry, which the fold does not change) and only stores elsewhere; the Transpose it replaces is a copy.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import { createSession } from '../../src/pipeline/session.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { compareOutputs, seededInput } from '../../src/runtime/compare.js';
import { tinyDetector } from './fold-models.js';

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
    test(`tiny detector, ${precision}, batch ${batch}: 4 dispatches fewer folded, the same outputs as unfolded, within tolerance of onnxruntime`, async () => {
      const bytes = exportOnnx(tinyDetector(batch));
      const g = await loadModel(bytes, { source: 'tiny_detector.onnx' });
      const feeds = Object.fromEntries(g.inputs.map((x, i) => {
        const shape = g.tensors.get(x)!.shape;
        return [x, { data: seededInput(shape.reduce((a, b) => a * b, 1), 21 + i), shape }];
      }));
      const input = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, v.data]));
      const ref = await reference(bytes, feeds);
      const runs = [];
      for (const channelsLast of [false, true]) {
        const s = await createSession(g, { plan: 'unfused', precision, channelsLast });
        try {
          runs.push({ out: await s.run(input), dispatches: s.stats().dispatchesPerRun, names: s.outputNames });
        } finally {
          s.dispose();
        }
      }
      const [off, on] = runs;
      assert.equal(on.dispatches, off.dispatches - 4, `dispatches ${off.dispatches} -> ${on.dispatches}`);
      assert.equal(on.names.length, 2);
      for (const y of on.names) {
        assert.deepEqual(on.out[y].data, off.out[y].data, `${y}: folded and unfolded differ`);
        const c = compareOutputs(on.out[y].data, ref[y].data as Float32Array, on.out[y].shape, undefined, undefined, precision);
        assert.ok(c.ok, `${y}: max abs ${c.maxAbsError} > ${c.tolerance} (cosine ${c.cosine}, top-1 ${c.top1})`);
      }
    });
  }
}
