// TFLite_Detection_PostProcess (SSD exports; no model of the corpus has it): the custom op stays opaque with the
// shapes the file gives its four outputs, so shape inference goes past it and the layers before it plan; the
// executor has no kernel or host step for it yet, and says so naming the op.
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
  const dag = toDag(g);
  assert.equal(dag.filter((l) => l.type === 'pw').length, 2);
  const plan = planOptimal(dag, hw, { model: 'ssd.tflite', dtypeBytes: 4 });
  assert.equal(plan.modules.filter((m) => m.kind === 'pw').length, 2);
  // No kernel takes it: an unsupported-op error naming it (exit 3), as createSession reports for the model.
  const shape = (x: string) => g.tensors.get(x)?.shape;
  const limits = { maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupSizeX: 256, maxComputeWorkgroupsPerDimension: 65535 };
  assert.throws(() => kernelFor(post, post.inputs.map(shape), post.outputs.map((y) => shape(y) ?? []), limits as never),
    (e: unknown) => e instanceof FcmError && e.kind === 'unsupported' && /tflite_detection_postprocess/.test(e.message));
});
