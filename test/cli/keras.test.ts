// The CLI on a TF.js Layers model.json (the Keras MobileNetV2-style fixture): dag, plan (with -o), run and check,
// the format told by the file's content; an unsupported layer exits 3 naming it.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildKerasMobileNetV2, writeKerasModel } from '../../fixtures/keras-builder.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { cli } from './run-cli.js';

after(releaseGpu);
const dir = mkdtempSync(join(tmpdir(), 'fcm-keras-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const model = writeKerasModel(dir, buildKerasMobileNetV2().finish('input_1', 'predictions'));

test('dag and plan read model.json as a Keras model, not as a layer DAG', async () => {
  const d = await cli('dag', model);
  assert.equal(d.code, 0, d.err);
  const dag = JSON.parse(d.out) as { type?: string }[];
  assert.equal(dag.filter((l) => l.type === 'dw').length, 3);
  const out = join(dir, 'opt.onnx');
  const p = await cli('plan', model, '--hw', 'lavapipe', '-o', out);
  assert.equal(p.code, 0, p.err);
  assert.match(p.out, /pwdw/);
  assert.ok(existsSync(out));
});

test('run and check on model.json', async () => {
  const r = await cli('run', model);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /output 'predictions' \[1x5\]/);
  const c = await cli('check', model);
  assert.equal(c.code, 0, c.err);
  assert.match(c.out, /onnxruntime CPU on the ONNX export of the imported graph/);
  assert.match(c.out, /check PASSED/);
});

test('an unsupported Keras layer exits 3 naming it', async () => {
  const doc = JSON.parse(readFileSync(model, 'utf8'));
  doc.modelTopology.model_config.config.layers[2].class_name = 'LayerNormalization';
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify(doc));
  const r = await cli('plan', bad, '--hw', 'lavapipe');
  assert.equal(r.code, 3);
  assert.match(r.err, /layer 'bn_Conv1' \(LayerNormalization\)/);
});
