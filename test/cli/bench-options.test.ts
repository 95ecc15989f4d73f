// `fcm-opt bench` takes the shape options of every command that imports a model: --input-shape NAME=DIMS (or
// NAME:DIMS) and --batch, with exit 2 where they cannot apply (--input-shape on a .tflite, which fixes its shapes but
// for the batch; a --batch other than the shape's first dimension; a fixed batch dimension; a name that is no input). The sessions, onnxruntime's
// included, run the shapes given: the onnxruntime cpu row is timed, not unavailable.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { encodeModel, onnx } from '../../converters/onnx/codec.js';
import { buildSeedMobileNetV1 } from '../../fixtures/tflite-builder.js';
import { fcmOpt, ownLines } from './spawn-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'fcm-bench-options-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const F = onnx.TensorProto.DataType.FLOAT;
/** x [N, 2, H, W] (all but the channels symbolic) or [fixedBatch, 2, H, W] -> Conv 1x1 to 3 channels -> y. */
function symbolicConv(fixedBatch?: number): Uint8Array {
  return encodeModel({
    irVersion: 8, opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'g',
      input: [{ name: 'x', type: { tensorType: { elemType: F, shape: { dim: [fixedBatch ? { dimValue: fixedBatch } : { dimParam: 'N' }, { dimValue: 2 }, { dimParam: 'H' }, { dimParam: 'W' }] } } } }],
      output: [{ name: 'y', type: { tensorType: { elemType: F } } }],
      initializer: [{ name: 'w', dims: [3, 2, 1, 1], dataType: F, rawData: new Uint8Array(new Float32Array([1, 2, -1, 0.5, 0.25, 3]).buffer) }],
      node: [{ name: 'conv', opType: 'Conv', input: ['x', 'w'], output: ['y'] }],
    },
  });
}
const model = join(dir, 'symbolic.onnx');
const fixed = join(dir, 'fixed-batch.onnx');
const tflite = join(dir, 'mbv1-32.tflite');
const quick = ['--hw', 'h100', '--runs', '1', '--warmup', '0', '--json'];

before(() => {
  assert.ok(existsSync(resolve('dist/src/cli/main.js')), 'bin/fcm-opt.js runs the built CLI: npm run build first');
  writeFileSync(model, symbolicConv());
  writeFileSync(fixed, symbolicConv(1));
  writeFileSync(tflite, buildSeedMobileNetV1(7, 32));
});

/** exit 2, one line of fcm-opt's own on stderr matching `message`. */
function assertInvalid(r: { code: number | null; err: string }, message: RegExp): void {
  assert.equal(r.code, 2, r.err);
  const lines = ownLines(r.err);
  assert.equal(lines.length, 1, r.err);
  assert.match(lines[0], message);
}

test('bench --input-shape: both spellings; the batch is the shape\'s first dimension; onnxruntime runs the same shape', async () => {
  for (const [spelling, batch] of [['x=1x2x4x5', 1], ['x:2x2x4x5', 2]] as const) {
    const r = await fcmOpt(['bench', model, '--input-shape', spelling, ...quick]);
    assert.equal(r.code, 0, `${spelling}: ${r.err}`);
    const report = JSON.parse(r.out) as { batch: number; results: Array<{ name: string; medianMs?: number; unavailable?: string }> };
    assert.equal(report.batch, batch, spelling);
    const row = (name: string) => report.results.find((x) => x.name === name);
    for (const name of ['fcm-opt fused', 'fcm-opt unfused', 'onnxruntime cpu']) {
      assert.ok(row(name)?.medianMs !== undefined && row(name)!.medianMs! > 0, `${spelling}: ${name} timed: ${JSON.stringify(row(name))}`);
    }
  }
});

test('bench --batch with --input-shape: agreeing values run; a different first dimension is exit 2', async () => {
  const ok = await fcmOpt(['bench', model, '--input-shape', 'x=3x2x4x5', '--batch', '3', ...quick]);
  assert.equal(ok.code, 0, ok.err);
  assert.equal((JSON.parse(ok.out) as { batch: number }).batch, 3);
  assertInvalid(await fcmOpt(['bench', model, '--input-shape', 'x=2x2x4x5', '--batch', '3', ...quick]), /--input-shape.*first dimension of 2; --batch 3 cannot apply/);
});

test('bench: where --input-shape and --batch cannot apply, exit 2 naming why', async () => {
  // Symbolic H, W and no --input-shape.
  assertInvalid(await fcmOpt(['bench', model, ...quick]), /symbolic\.onnx.*graph input 'x' has symbolic dims H \(dim 2\), W \(dim 3\); give a static shape with --input-shape/);
  // A name that is no input of the model.
  assertInvalid(await fcmOpt(['bench', model, '--input-shape', 'image=1x2x4x5', ...quick]), /--input-shape names 'image', which is not an input of the model \(inputs: x\)/);
  // A rank other than the input's.
  assertInvalid(await fcmOpt(['bench', model, '--input-shape', 'x=1x2x4', ...quick]), /--input-shape for 'x' has rank 3, the model's input has rank 4/);
  // A fixed batch dimension.
  assertInvalid(await fcmOpt(['bench', fixed, '--batch', '2', '--input-shape', 'x=2x2x4x5', ...quick]), /fixed-batch\.onnx.*--input-shape for 'x' gives 2 for dim 0, the model fixes it to 1/);
  // A .tflite fixes its shapes but for the batch: --input-shape is refused; --batch runs its batch-1 file at that batch.
  assertInvalid(await fcmOpt(['bench', tflite, '--input-shape', 'input=1x3x32x32', '--no-litert', ...quick]), /mbv1-32\.tflite: --input-shape cannot apply: a \.tflite file fixes the shapes of its inputs/);
  const b2 = await fcmOpt(['bench', tflite, '--batch', '2', '--no-litert', ...quick]);
  assert.equal(b2.code, 0, b2.err);
  assert.equal((JSON.parse(b2.out) as { batch: number }).batch, 2);
  // Not a positive integer.
  assertInvalid(await fcmOpt(['bench', model, '--batch', '0', ...quick]), /--batch: expected a positive integer, got '0'/);
});
