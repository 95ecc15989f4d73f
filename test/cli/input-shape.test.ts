// Every command that imports a model takes input shapes the same way: --input-shape NAME=DIMS or NAME:DIMS,
// repeatable. `run` took none, so a model with a symbolic dim besides the batch could not run from the CLI.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeModel, onnx } from '../../converters/onnx/codec.js';
import { encodeNpy, parseNpy } from '../../src/npy.js';
import { readFileSync } from 'node:fs';
import { releaseGpu } from '../../src/runtime/device.js';
import { cli } from './run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'fcm-input-shape-'));
after(async () => { rmSync(dir, { recursive: true, force: true }); await releaseGpu(); });

const F = onnx.TensorProto.DataType.FLOAT;
/** x [1, 2, H, W] (H, W symbolic) -> Conv 1x1 to 3 channels -> y. */
const model = join(dir, 'symbolic.onnx');
writeFileSync(model, encodeModel({
  irVersion: 8, opsetImport: [{ domain: '', version: 17 }],
  graph: {
    name: 'g',
    input: [{ name: 'x', type: { tensorType: { elemType: F, shape: { dim: [{ dimValue: 1 }, { dimValue: 2 }, { dimParam: 'H' }, { dimParam: 'W' }] } } } }],
    output: [{ name: 'y', type: { tensorType: { elemType: F } } }],
    initializer: [{ name: 'w', dims: [3, 2, 1, 1], dataType: F, rawData: new Uint8Array(new Float32Array([1, 2, -1, 0.5, 0.25, 3]).buffer) }],
    node: [{ name: 'conv', opType: 'Conv', input: ['x', 'w'], output: ['y'] }],
  },
}));
const x = join(dir, 'x.npy');
writeFileSync(x, encodeNpy({ shape: [1, 2, 4, 5], data: Float32Array.from({ length: 40 }, (_, i) => i / 8) }));

const commands: Record<string, string[]> = {
  dag: ['dag', model],
  plan: ['plan', model, '--hw', 'h100'],
  check: ['check', model, '--hw', 'h100', '--unfused'],
  run: ['run', model, '--unfused', '--input', x, '--output', join(dir, 'y.npy')],
};

for (const [name, args] of Object.entries(commands)) {
  test(`${name}: --input-shape x=1x2x4x5 and x:1x2x4x5 both work; without it, exit 2 asking for it`, async () => {
    for (const spelling of ['x=1x2x4x5', 'x:1x2x4x5']) {
      const r = await cli(...args, '--input-shape', spelling);
      assert.equal(r.code, 0, `${spelling}: ${r.err}`);
    }
    const r = await cli(...args);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /graph input 'x' has symbolic dims H \(dim 2\), W \(dim 3\); give a static shape with --input-shape/);
  });
}

test('run: the output follows from the input and --input-shape (y = conv 1x1 of x)', async () => {
  const out = join(dir, 'y2.npy');
  const r = await cli('run', model, '--unfused', '--input', x, '--output', out, '--input-shape', 'x=1x2x4x5');
  assert.equal(r.code, 0, r.err);
  const y = parseNpy(new Uint8Array(readFileSync(out)), out);
  assert.deepEqual(y.shape, [1, 3, 4, 5]);
  const xs = Float32Array.from({ length: 40 }, (_, i) => i / 8);
  const w = [[1, 2], [-1, 0.5], [0.25, 3]];
  for (let f = 0; f < 3; f++) for (let p = 0; p < 20; p++) {
    // Exact in float32: small multiples of 1/8 times small multiples of 1/4.
    assert.equal(y.data[f * 20 + p], w[f][0] * xs[p] + w[f][1] * xs[20 + p], `y[${f}, ${p}]`);
  }
});
