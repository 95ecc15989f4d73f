// TF.js Layers (Keras) import: MobileNetV1/V2-style nets built in code as model.json + shard and as the same
// network in a TFLite file must give the same layer DAG, layer by layer, and the same outputs when run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildKerasMobileNetV1, buildKerasMobileNetV2, writeKerasModel } from '../../fixtures/keras-builder.js';
import { loadModel } from '../../src/graph/load.js';
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
      void readFileSync;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
