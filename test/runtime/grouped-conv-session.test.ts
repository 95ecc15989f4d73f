// A RegNet-like graph (test/rewrite/fold-models.ts tinyRegNet: 1x1 -> 3x3 grouped in groups of 8 channels -> 1x1,
// relu(shortcut + f), stride 1 and 2, 2 and 4 groups) end to end on lavapipe against onnxruntime-node (CPU), in fp32
// and fp16 storage: its grouped convs run on the grouped kernel (kernels/grouped-conv.ts), one dispatch each.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import { createSession } from '../../src/pipeline/session.js';
import { prepareForRun } from '../../src/pipeline/pipeline.js';
import { compileGraph } from '../../src/runtime/compile.js';
import { acquireGpu, releaseGpu } from '../../src/runtime/device.js';
import { compareOutputs, f16Bounds, seededInput } from '../../src/runtime/compare.js';
import { runOrt } from '../../src/check/check.js';
import { tinyRegNet } from '../rewrite/fold-models.js';

after(releaseGpu);

test('tiny RegNet (batch 2): grouped convs on the grouped kernel; fp32 and fp16 sessions match onnxruntime', async (t) => {
  const bytes = exportOnnx(tinyRegNet(2));
  const g = await loadModel(bytes, { source: 'tiny_regnet.onnx' });
  const x = g.inputs[0], y = g.outputs[0];
  const shape = [...g.tensors.get(x)!.shape];
  const data = seededInput(shape.reduce((a, b) => a * b, 1), 3);
  const ref = (await runOrt(bytes, { [x]: { data, shape } }, [y], 'tiny_regnet')).get(y)!;

  // What the session runs: three grouped convs (2, 2 and 4 groups of 8 channels), one program each: the grouped
  // kernel for stride 1, the general one for stride 2 (kernels/grouped-conv.ts usesGroupedKernel).
  const ctx = await acquireGpu();
  const limits = { ...ctx.kernelLimits, maxStorageBufferBindingSize: ctx.limits.maxStorageBufferBindingSize, maxBufferSize: ctx.limits.maxBufferSize };
  const steps = compileGraph(await prepareForRun(g, { plan: 'unfused' }), limits).steps;
  const groupedSteps = steps.filter((s) => s.node.op === 'Conv' && Number(s.node.attrs.group ?? 1) > 1 && Number(s.node.attrs.group) < g.tensors.get(s.node.inputs[0])!.shape[1]);
  assert.deepEqual(groupedSteps.map((s) => Number(s.node.attrs.group)), [2, 2, 4]);
  const strideOne = (s: (typeof steps)[number]) => (s.node.attrs.strides as number[] | undefined ?? [1, 1]).every((v) => v === 1);
  for (const s of groupedSteps) assert.ok(s.program.cacheKey.startsWith(strideOne(s) ? 'grouped|' : 'conv2d|'), `${s.node.name}: ${s.program.cacheKey}`);
  // Both routes are taken.
  assert.ok(groupedSteps.some(strideOne) && groupedSteps.some((s) => !strideOne(s)));

  const s32 = await createSession(g, { plan: 'unfused' });
  try {
    const o = (await s32.run({ [x]: data }))[y];
    const c = compareOutputs(o.data, ref, o.shape);
    assert.ok(c.ok, `fp32 vs onnxruntime: ${JSON.stringify(c)}`);
  } finally {
    s32.dispose();
  }
  if (!ctx.shaderF16) { t.skip('no shader-f16 on this adapter'); return; }
  const s16 = await createSession(g, { plan: 'unfused', precision: 'fp16' });
  try {
    const o = (await s16.run({ [x]: data }))[y];
    // compareOutputs' f16 bounds (src/runtime/compare.ts: f16 storage of every tensor, f32 sums).
    const c = compareOutputs(o.data, ref, o.shape, undefined, undefined, 'fp16');
    assert.ok(c.ok && c.cosine >= f16Bounds.cosine, `fp16 vs onnxruntime: ${JSON.stringify(c)}`);
  } finally {
    s16.dispose();
  }
});
