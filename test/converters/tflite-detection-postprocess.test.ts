// TFLite_Detection_PostProcess (SSD exports; the corpus's ssd-mobilenet-v2-uint8 has it): its four outputs take the
// shapes TFLite's Prepare gives them from the options (older converters store []), so shape inference goes past it
// and the layers before it plan; its flexbuffer options become attributes. No GPU kernel takes it: the float executor runs it as a host step (src/runtime/host-float.ts;
// its results: test/runtime/detection-postprocess.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ssdPostProcess } from '../../fixtures/tflite-ssd.js';
import { loadModel } from '../../src/graph/load.js';
import { toDag } from '../../src/planner/to-dag.js';
import { planOptimal } from '../../src/planner/optimal.js';
import { kernelFor } from '../../kernels/registry.js';
import { FcmError } from '../../src/errors.js';
import type { HwConfig } from '../../src/planner/hw-config.js';

const hw: HwConfig = { name: 'test', sms: 8, l1BytesPerSm: 96 * 1024, shmemBytesPerSm: 64 * 1024, warpSize: 32 };

test('TFLite_Detection_PostProcess: its outputs keep the file\'s shapes; the convolutions before it plan', async () => {
  const g = await loadModel(ssdPostProcess(), { source: 'ssd.tflite' });
  const post = g.nodes.find((n) => n.op === 'tflite_detection_postprocess');
  assert.ok(post, g.nodes.map((n) => n.op).join(', '));
  assert.equal(post.domain, 'tflite.custom');
  assert.deepEqual(post.outputs.map((y) => g.tensors.get(y)!.shape), [[1, 10, 4], [1, 10], [1, 10], [1]]);
  assert.deepEqual(g.outputs, post.outputs);
  assert.deepEqual(
    ['max_detections', 'max_classes_per_detection', 'detections_per_class', 'use_regular_nms', 'num_classes', 'y_scale', 'h_scale'].map((k) => post.attrs[k]),
    [10, 1, 100, 0, 2, 10, 5]);
  assert.ok(Math.abs((post.attrs.nms_iou_threshold as number) - 0.5) < 1e-7);
  const dag = toDag(g);
  assert.equal(dag.filter((l) => l.type === 'pw').length, 2);
  const plan = planOptimal(dag, hw, { model: 'ssd.tflite', dtypeBytes: 4 });
  assert.equal(plan.modules.filter((m) => m.kind === 'pw').length, 2);
  // No GPU kernel takes it (compile.ts makes it a host step instead).
  const shape = (x: string) => g.tensors.get(x)?.shape;
  const limits = { maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupSizeX: 256, maxComputeWorkgroupsPerDimension: 65535 };
  assert.throws(() => kernelFor(post, post.inputs.map(shape), post.outputs.map((y) => shape(y) ?? []), limits as never),
    (e: unknown) => e instanceof FcmError && e.kind === 'unsupported' && /tflite_detection_postprocess/.test(e.message));
});

test('TFLite_Detection_PostProcess: outputs stored with shape [] (older converters) are sized from the options', async () => {
  for (const [maxDetections, perDetection] of [[10, 1], [7, 3]]) {
    const g = await loadModel(ssdPostProcess(31, { unsizedOutputs: true, maxDetections, maxClassesPerDetection: perDetection, numClasses: 3 }), { source: 'ssd-unsized.tflite' });
    const post = g.nodes.find((n) => n.op === 'tflite_detection_postprocess')!;
    const n = maxDetections * perDetection;
    assert.deepEqual(post.outputs.map((y) => g.tensors.get(y)!.shape), [[1, n, 4], [1, n], [1, n], [1]]);
    assert.ok(post.outputs.every((y) => !g.tensors.get(y)!.shapeUnknown));
  }
});

test('TFLite_Detection_PostProcess without options and with unsized outputs: a one-line error, not a guess', async () => {
  await assert.rejects(loadModel(ssdPostProcess(31, { unsizedOutputs: true, noOptions: true }), { source: 'ssd-bare.tflite' }),
    (e: unknown) => e instanceof FcmError && /ssd-bare\.tflite/.test(e.message) && /shapes/.test(e.message));
});
