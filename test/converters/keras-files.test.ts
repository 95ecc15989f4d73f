// Keras 3 .keras (zip: config.json + model.weights.h5) and legacy Keras 2 .h5 (HDF5 with model_config): the
// MobileNetV2-style fixture written in both (HDF5 through h5wasm) imports to the same layer DAG and the same
// outputs (onnxruntime CPU on the ONNX export) as its TF.js Layers model.json, whose import the TFLite twin checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildKerasMobileNetV2, writeKeras3, writeKerasH5, writeKerasModel } from '../../fixtures/keras-builder.js';
import { detectFormat, loadModel } from '../../src/graph/load.js';
import { toDag } from '../../src/planner/to-dag.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { runOrt } from '../../src/cli/check.js';
import { seededInput } from '../../src/runtime/compare.js';
import type { Graph } from '../../src/graph/ir.js';
import type { FcmError } from '../../src/errors.js';

async function outputs(g: Graph): Promise<Float32Array> {
  const shape = g.tensors.get(g.inputs[0])!.shape;
  const x = seededInput(shape.reduce((a, b) => a * b, 1), 3);
  const r = await runOrt(exportOnnx(g), { [g.inputs[0]]: { data: x, shape } }, g.outputs, g.source);
  return r.get(g.outputs[0])!;
}

test('.keras and .h5 import like model.json: same DAG, same outputs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-keras-files-'));
  try {
    const built = buildKerasMobileNetV2().finish('input_1', 'predictions');
    const json = writeKerasModel(join(dir, 'tfjs'), built);
    const k3 = join(dir, 'model.keras'), h5 = join(dir, 'model.h5');
    await writeKeras3(k3, built);
    await writeKerasH5(h5, built);
    assert.equal(detectFormat(k3), 'keras');
    assert.equal(detectFormat('model.bin', readFileSync(k3)), 'keras', 'a zip is told by its bytes');
    assert.equal(detectFormat('model.bin', readFileSync(h5)), 'keras', 'HDF5 is told by its bytes');
    const base = await loadModel(json);
    const ref = await outputs(base);
    const strip = (g: Graph) => toDag(g).map(({ name: _n, nodes: _d, ...rest }) => rest);
    for (const path of [k3, h5]) {
      const g = await loadModel(path);
      assert.deepEqual(strip(g), strip(base), path);
      const y = await outputs(g);
      // The same float32 weights and the same graph: onnxruntime gives the same numbers.
      assert.deepEqual(Array.from(y), Array.from(ref), path);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a .keras file without model.weights.h5 is exit 2; an HDF5 file without model_config is exit 3', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-keras-files-'));
  try {
    const { zipStored } = await import('../../fixtures/keras-builder.js');
    const { writeFileSync } = await import('node:fs');
    const k3 = join(dir, 'bad.keras');
    writeFileSync(k3, zipStored([['config.json', new TextEncoder().encode('{}')]]));
    await assert.rejects(loadModel(k3), (e: FcmError) => e.exitCode === 2 && /model\.weights\.h5/.test(e.message));
    const h5wasm = (await import('h5wasm/node')).default;
    await h5wasm.ready;
    const h5 = join(dir, 'weights-only.h5');
    const f = new h5wasm.File(h5, 'w');
    f.create_group('conv1');
    f.close();
    await assert.rejects(loadModel(h5), (e: FcmError) => e.exitCode === 3 && /model_config/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
