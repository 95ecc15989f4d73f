// Real Keras models saved as TF.js Layers (nsfwjs's MobileNetV2 with uint8-quantized weights and InceptionV3, and
// UpscalerJS's 2x super-resolution network, fetched by scripts/fetch-models.mjs from the pinned npm packages): they
// import, plan, and the MobileNetV2 and the upscaler pass `check` (fcm-opt on lavapipe against onnxruntime CPU on
// the ONNX export of the imported graph). About 20 s.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadModel } from '../../src/graph/load.js';
import { toDag } from '../../src/planner/to-dag.js';
import { planFusion } from '../../src/planner/index.js';
import { loadHw } from '../../src/planner/hw.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { runCheck } from '../../src/cli/check.js';

const { ensureModel } = (await import(pathToFileURL(join(process.cwd(), 'scripts/fetch-models.mjs')).href)) as {
  ensureModel: (name: string) => Promise<string>;
};

after(releaseGpu);

test('nsfwjs MobileNetV2 (TF.js Layers): imports, plans with fused modules, passes check', async () => {
  const path = await ensureModel('nsfw-mobilenet-v2');
  const g = await loadModel(path);
  assert.deepEqual(g.tensors.get(g.inputs[0])!.shape, [1, 3, 224, 224], 'input is NCHW in the IR');
  assert.deepEqual(g.tensors.get(g.outputs[0])!.shape, [1, 5]);
  const dag = toDag(g);
  assert.equal(dag.filter((l) => l.type === 'dw').length, 17, 'MobileNetV2 has 17 depthwise layers');
  const plan = planFusion(dag, loadHw('lavapipe'), { mode: 'optimal', model: path });
  assert.ok(plan.modules.filter((m) => m.layers.length > 1).length >= 10, 'most DW/PW pairs fuse');
  const r = await runCheck(path);
  assert.equal(r.reference, 'onnx-export');
  assert.ok(r.ok, `check: ${JSON.stringify(r.outputs)}`);
});

test('nsfwjs InceptionV3 (TF.js Layers): imports and plans (no depthwise layers: nothing fused)', async () => {
  const path = await ensureModel('nsfw-inception-v3');
  const g = await loadModel(path);
  assert.deepEqual(g.tensors.get(g.inputs[0])!.shape, [1, 3, 299, 299]);
  const dag = toDag(g);
  assert.equal(dag.filter((l) => l.type === 'dw').length, 0);
  assert.equal(dag.filter((l) => l.op === 'Concat').length, 15, 'InceptionV3 has 15 Concatenate layers (mixed0-10 and four inside mixed9, mixed10)');
  planFusion(dag, loadHw('lavapipe'), { mode: 'optimal', model: path });
});

test('UpscalerJS 2x super-resolution (TF.js Layers, UpSampling2D head): imports, plans, passes check', async (t) => {
  let path: string;
  try {
    path = await ensureModel('upscaler-esrgan-x2');
  } catch (e) {
    t.skip(`model not available (scripts/fetch-models.mjs needs the network once): ${(e as Error).message}`);
    return;
  }
  // The file leaves the spatial dims open; 16x16 keeps the check cheap on lavapipe.
  const inputShapes = { LR: [1, 3, 16, 16] };
  const g = await loadModel(path, { inputShapes });
  assert.deepEqual(g.tensors.get(g.outputs[0])!.shape, [1, 3, 32, 32], 'twice the input size');
  const count = (op: string) => g.nodes.filter((n) => n.op === op).length;
  assert.deepEqual([count('Conv'), count('Concat'), count('Add'), count('Resize')], [12, 3, 3, 1], 'Conv2D x12, Concatenate x3, Add x3, UpSampling2D');
  planFusion(toDag(g), loadHw('lavapipe'), { mode: 'optimal', model: path });
  const r = await runCheck(path, { inputShapes });
  assert.equal(r.reference, 'onnx-export');
  assert.ok(r.ok, `check: ${JSON.stringify(r.outputs)}`);
});
