// TFLite_Detection_PostProcess in a quantized model (fixtures/tflite-ssd.ts ssdPostProcessInt8, as TensorFlow's
// quantized SSD exports end): the integer executor runs the heads on its integer kernels, LOGISTIC and the op on the
// host; the op reads its 8-bit inputs dequantized (box encodings, scores and the uint8 anchors, a constant), as
// TFLite's detection_postprocess.cc does. The op's own arithmetic is tested in detection-postprocess.test.ts; here,
// that the integer path feeds it the integer reference's values, and that `check` compares those 8-bit inputs in LSB.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { ssdPostProcessInt8 } from '../../fixtures/tflite-ssd.js';
import { loadModel } from '../../src/graph/load.js';
import { createInt8Session } from '../../src/pipeline/session.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { detectionParams, detectionPostProcess } from '../../src/runtime/detection-postprocess.js';
import { runInt8Reference } from '../../src/quant/run-reference.js';
import { dequantize } from '../../src/quant/reference.js';
import { runCheck } from '../../src/check/check.js';
import { FcmError } from '../../src/errors.js';

after(releaseGpu);

const q = (g: Awaited<ReturnType<typeof loadModel>>, name: string) => {
  const t = g.tensors.get(name)!;
  return { scale: t.quant!.scale[0], zeroPoint: t.quant!.zeroPoint[0] ?? 0 };
};

test('int8 SSD: the detections come from the integer reference\'s box encodings and scores, dequantized', async () => {
  const g = await loadModel(ssdPostProcessInt8(), { source: 'ssd-int8.tflite' });
  const taps = ['raw_boxes', 'raw_scores'];
  const x = Int8Array.from({ length: 3 * 64 }, (_, i) => ((i * 73 + 11) % 255) - 127);
  const s = await createInt8Session({ ...g, outputs: [...g.outputs, ...taps] }, { plan: 'unfused' });
  try {
    const out = await s.run({ [g.inputs[0]]: x });
    assert.ok(s.stats().hostNodes.some((n) => n.startsWith('tflite_detection_postprocess')), s.stats().hostNodes.join(', '));
    const ref = runInt8Reference({ ...g, outputs: taps }, { [g.inputs[0]]: x });
    taps.forEach((y, k) => assert.deepEqual(Array.from(out[y].raw!), Array.from(ref.outputs[k].data), `${y}: integer kernels equal the reference`));
    const post = g.nodes.find((n) => n.op === 'tflite_detection_postprocess')!;
    const anchors = g.tensors.get(post.inputs[2])!;
    assert.equal(anchors.dtype, 'uint8');
    const want = detectionPostProcess(detectionParams(g, post),
      dequantize(ref.outputs[0].data, q(g, 'raw_boxes')), dequantize(ref.outputs[1].data, q(g, 'raw_scores')),
      dequantize(anchors.data as Uint8Array, q(g, anchors.name)), 64, 4, 3);
    const [yb, yc, ys, yn] = post.outputs;
    assert.ok(want.count > 0);
    assert.deepEqual(Array.from(out[yb].data), Array.from(want.boxes));
    assert.deepEqual(Array.from(out[yc].data), Array.from(want.classes));
    assert.deepEqual(Array.from(out[ys].data), Array.from(want.scores));
    assert.deepEqual(Array.from(out[yn].data), [want.count]);
  } finally {
    s.dispose();
  }
});

test('int8 SSD: check compares the 8-bit inputs of the host op in LSB (float outputs have no LSB)', async () => {
  const r = await runCheck(ssdPostProcessInt8(), { unfused: true }, 'ssd-int8.tflite');
  assert.equal(r.path, 'int8-dequantized');
  assert.ok(Array.isArray(r.int8Kernels), String(r.int8Kernels));
  assert.deepEqual(r.int8Kernels.map((c) => c.name), ['raw_boxes', 'raw_scores']);
  for (const c of r.int8Kernels) assert.equal(c.maxLsb, 0, `${c.name}: the integer kernels are bit-exact with the reference`);
  assert.ok(Array.isArray(r.int8Reference), String(r.int8Reference));
  assert.ok(r.ok);
});

test('int8 SSD: a LOGISTIC output grid other than TFLite\'s 1/256 is refused, naming the node', async () => {
  const g = await loadModel(ssdPostProcessInt8(41, { logisticScale: 1 / 128 }), { source: 'ssd-int8-bad.tflite' });
  assert.throws(() => runInt8Reference({ ...g, outputs: ['raw_scores'] }, { [g.inputs[0]]: new Int8Array(192) }),
    (e: unknown) => e instanceof FcmError && e.kind === 'unsupported' && /logistic/.test(e.message) && /1\/256/.test(e.message));
});
