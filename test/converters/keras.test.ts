// TF.js Layers (Keras) import: MobileNetV1/V2-style nets built in code as model.json + shard and as the same
// network in a TFLite file must give the same layer DAG, layer by layer, and the same outputs when run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildKerasMobileNetV1, buildKerasMobileNetV2, writeKerasModel } from '../../fixtures/keras-builder.js';
import { loadModel } from '../../src/graph/load.js';
import { importKeras } from '../../converters/keras/import.js';
import type { FcmError } from '../../src/errors.js';
import { toDag } from '../../src/planner/to-dag.js';
import type { Dag } from '../../src/planner/dag.js';

/** The DAG without node names (the two files name their layers differently). */
function shapeOnly(d: Dag): unknown[] {
  return d.map((l) => {
    const { name: _n, nodes: _nodes, ...rest } = l as unknown as Record<string, unknown>;
    return rest;
  });
}

for (const [label, build] of [['MobileNetV1', buildKerasMobileNetV1], ['MobileNetV2', buildKerasMobileNetV2]] as const) {
  test(`keras ${label}: same layer DAG as its TFLite file`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fcm-keras-'));
    try {
      const built = build().finish('input_1', 'predictions');
      const path = writeKerasModel(dir, built);
      const gk = await loadModel(path);
      const gt = await loadModel(built.tflite, { source: 'model.tflite' });
      const dk = toDag(gk), dt = toDag(gt);
      assert.deepEqual(shapeOnly(dk), shapeOnly(dt));
      assert.ok(dk.some((l) => l.type === 'dw') && dk.some((l) => l.type === 'pw'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('keras: uint8 and uint16 quantized kernels dequantize to within half a step of the float weights', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-keras-'));
  try {
    const gf = await importKeras(writeKerasModel(join(dir, 'f'), buildKerasMobileNetV1().finish('input_1', 'predictions')));
    for (const q of ['uint8', 'uint16'] as const) {
      const built = buildKerasMobileNetV1().finish('input_1', 'predictions', { quantize: q });
      const manifest = (JSON.parse(built.modelJson) as { weightsManifest: { weights: { name: string; quantization?: { scale: number } }[] }[] }).weightsManifest[0].weights;
      const gq = await importKeras(writeKerasModel(join(dir, q), built));
      let checked = 0;
      for (const w of manifest) {
        if (!w.quantization) continue;
        const a = gf.tensors.get(w.name)!.data as Float32Array, b = gq.tensors.get(w.name)!.data as Float32Array;
        assert.equal(a.length, b.length);
        // Rounding to the nearest level: at most half a step, plus float32 rounding of min + scale * q.
        const bound = w.quantization.scale / 2 + 1e-6;
        for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= bound, `${q} ${w.name}[${i}]: ${a[i]} vs ${b[i]}`);
        checked++;
      }
      assert.ok(checked >= 7, `${q}: ${checked} quantized kernels checked`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('keras: an unsupported layer is named with exit 3; a missing weight with exit 2', async () => {
  const built = buildKerasMobileNetV1().finish('input_1', 'predictions');
  const doc = JSON.parse(built.modelJson);
  const layers = doc.modelTopology.model_config.config.layers;
  layers[3] = { ...layers[3], class_name: 'LayerNormalization' };
  const shard = async () => built.shard;
  await assert.rejects(importKeras(new TextEncoder().encode(JSON.stringify(doc)), { loadShard: shard }),
    (e: FcmError) => e.exitCode === 3 && /layer 'conv1_relu' \(LayerNormalization\)/.test(e.message));
  const doc2 = JSON.parse(built.modelJson);
  doc2.weightsManifest[0].weights = doc2.weightsManifest[0].weights.filter((w: { name: string }) => w.name !== 'conv_pw_2/kernel');
  await assert.rejects(importKeras(new TextEncoder().encode(JSON.stringify(doc2)), { loadShard: shard }),
    (e: FcmError) => e.exitCode === 2 && /conv_pw_2/.test(e.message));
});

test('keras: shards are read through the input gate: over the memory budget is exit 4, outside the folder exit 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-keras-'));
  try {
    const built = buildKerasMobileNetV1().finish('input_1', 'predictions');
    const path = writeKerasModel(dir, built);
    // Enough for model.json, not for model.json plus its shard.
    const budget = Buffer.byteLength(built.modelJson) + built.shard.length - 1;
    await assert.rejects(importKeras(path, { maxMemory: budget }), (e: FcmError) => e.exitCode === 4 && /group1-shard1of1\.bin/.test(e.message));
    await importKeras(path, { maxMemory: budget + 1 });
    const doc = JSON.parse(built.modelJson);
    doc.weightsManifest[0].paths = ['../group1-shard1of1.bin'];
    const escaped = join(dir, 'escaped.json');
    writeFileSync(escaped, JSON.stringify(doc));
    await assert.rejects(importKeras(escaped), (e: FcmError) => e.exitCode === 2 && /outside the model's folder/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
