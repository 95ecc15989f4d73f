// Pass and node timing (src/runtime/profile.ts) on the integer executor: an integer schedule without host steps is
// one list of dispatches like a float one, so it times; one that a host step splits is refused (exit 3) by name.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../../src/graph/load.js';
import { buildMobileNetStyle, buildSeedMobileNetV1 } from '../../fixtures/tflite-builder.js';
import { FcmError } from '../../src/errors.js';
import { createInt8Session } from '../../src/pipeline/session.js';
import { passGpuMs, timeNodes } from '../../src/runtime/profile.js';
import { executorOf } from '../../src/runtime/executor.js';
import { releaseGpu } from '../../src/runtime/device.js';

after(releaseGpu);

test('an integer schedule without host steps: a pass and its nodes time, and what a run computes stays the same', async () => {
  const g = await loadModel(buildSeedMobileNetV1(7, 32), { source: 'mob_v1-32.tflite' });
  const s = await createInt8Session(g, { plan: 'unfused' });
  assert.deepEqual(s.stats().hostNodes, []);
  const x = g.inputs[0], y = g.outputs[0];
  const n = g.tensors.get(x)!.shape.reduce((a, b) => a * b, 1);
  const feed = Float32Array.from({ length: n }, (_, i) => ((i * 37) % 101) / 50 - 1);
  const before = Array.from((await s.run({ [x]: feed }))[y].data);
  const ms = await passGpuMs(s, { [x]: feed }, { heatMs: 1 });
  assert.ok(ms > 0 && Number.isFinite(ms), `pass ${ms} ms`);
  const names = executorOf(s).dispatches.map((d) => d.step.node.name);
  const [first, all] = await timeNodes(s, [[names[0]], names], { iters: 2, heatMs: 0 });
  assert.ok(first > 0 && all > 0, `nodes ${first}, ${all} ms`);
  assert.deepEqual(Array.from((await s.run({ [x]: feed }))[y].data), before);
  s.dispose();
});

test('an integer schedule split by a host step is refused by name, exit 3', async () => {
  const g = await loadModel(buildMobileNetStyle({ int8: true }), { source: 'mnet-hs-int8.tflite' });
  const s = await createInt8Session(g, { plan: 'unfused' });
  assert.ok(s.stats().hostNodes.length > 0, 'a node runs on the host');
  const refused = (e: unknown) => e instanceof FcmError && e.exitCode === 3 && /^mnet-hs-int8\.tflite: .*host steps split an inference/.test(e.message);
  await assert.rejects(passGpuMs(s), refused);
  await assert.rejects(timeNodes(s, [[executorOf(s).dispatches[0].step.node.name]]), refused);
  s.dispose();
});
