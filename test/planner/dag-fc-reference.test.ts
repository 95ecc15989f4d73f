// fc layers as the FusePlanner reference's extractor writes them: `type: 'fc'`, the shapes as the file has them
// ([N, C] -> [N, F]) and no weights_shape. Its planner accepts them (it estimates no fc layer); ours derives [F, C].
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildMobileNetStyle } from '../../fixtures/tflite-builder.js';
import { tfliteDagFromFile } from '../../converters/tflite/dag.js';
import { loadDag, validateDag } from '../../src/planner/dag-load.js';
import { fcWeightsShape, type Dag } from '../../src/planner/dag.js';
import { convSpec } from '../../src/planner/cost.js';
import { planFusion } from '../../src/planner/index.js';
import type { HwConfig } from '../../src/planner/hw-config.js';
import { FcmError } from '../../src/errors.js';

const hw: HwConfig = { name: 'test', sms: 8, l1BytesPerSm: 96 * 1024, shmemBytesPerSm: 64 * 1024, warpSize: 32 };

/** The DAG of a seeded MobileNet-style TFLite model (ending MEAN, RESHAPE, FULLY_CONNECTED 10 classes), with and
 *  without the fc layers' weights_shape. */
async function dags(): Promise<{ full: Dag; reference: Dag }> {
  const full = await tfliteDagFromFile(buildMobileNetStyle({ int8: true, seed: 3, classes: 10 }));
  const reference = JSON.parse(JSON.stringify(full)) as Dag;
  for (const l of reference) if (l.type === 'fc') delete l.weights_shape;
  return { full, reference };
}

test('an fc layer without weights_shape loads from a file and plans like one with it', async () => {
  const { full, reference } = await dags();
  const fcs = full.filter((l) => l.type === 'fc');
  assert.equal(fcs.length, 1);
  const fc = fcs[0];
  assert.equal(fc.ifms_shape!.length, 2, 'the file\'s [N, C] shape, as the reference writes it');
  const dir = mkdtempSync(join(tmpdir(), 'fcm-fc-'));
  const path = join(dir, 'model_dag.json');
  writeFileSync(path, JSON.stringify(reference));
  const loaded = loadDag(path);
  const ref = loaded[fc.id];
  assert.equal(ref.weights_shape, undefined);
  // [F, C] from the shapes: F the output's last dimension, C the input's.
  assert.deepEqual(fcWeightsShape(ref), fc.weights_shape);
  assert.deepEqual(fcWeightsShape(ref), [10, fc.ifms_shape![1]]);
  assert.deepEqual(convSpec(ref, path), convSpec(fc, path));
  for (const mode of ['optimal', 'fuseplanner'] as const) {
    const a = planFusion(loaded, hw, { mode, model: 'm' });
    const b = planFusion(full, hw, { mode, model: 'm' });
    assert.deepEqual(a.modules, b.modules, mode);
    assert.ok(a.modules.some((m) => m.kind === 'fc' && m.layers[0] === fc.id), `${mode}: the fc layer is a module`);
  }
});

test('fcm-opt\'s own [C, rows, 1] form gives [F, C] from the first dimensions', () => {
  assert.deepEqual(fcWeightsShape({ id: 0, name: 'g', parents: [], children: [], activation: '0', type: 'fc', ifms_shape: [12, 5, 1], ofms_shape: [7, 5, 1] }), [7, 12]);
});

test('an fc layer with neither weights_shape nor shapes is refused, naming the layer', () => {
  const layer = { id: 0, name: 'fully_connected', parents: [], children: [], activation: '0', type: 'fc', strides: 1 };
  assert.throws(() => validateDag([layer], 'm.json'), (e: unknown) => e instanceof FcmError && e.kind === 'invalid'
    && e.message === "m.json: layer 0 ('fully_connected'): 'fc' layer has no 'weights_shape' and no 'ifms_shape' and 'ofms_shape' to derive it from");
  assert.throws(() => validateDag([{ ...layer, ifms_shape: [1, 0], ofms_shape: [1, 10] }], 'm.json'), (e: unknown) => e instanceof FcmError && /derived from its shapes have a non-positive dimension/.test(e.message));
});
