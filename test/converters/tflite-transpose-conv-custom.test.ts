// MediaPipe's custom Convolution2DTransposeBias imports as the same ONNX ConvTranspose as TFLite's builtin
// TRANSPOSE_CONV with the same weights, bias, padding and strides (the builtin's import is checked against the
// TFLite interpreter in tflite-resize-oracle.test.ts). Its custom options are the raw struct
// TfLiteTransposeConvParams { padding (1 same, 2 valid), stride_width, stride_height }.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BuiltinOperator, Padding, TensorType, TfliteBuilder, rng } from '../../fixtures/tflite-builder.js';
import { loadModel } from '../../src/graph/load.js';
import { FcmError } from '../../src/errors.js';

function model(padding: Padding, k: [number, number], sh: number, sw: number, out: [number, number], customPadding = padding === Padding.SAME ? 1 : 2): Uint8Array {
  const b = new TfliteBuilder();
  const r = rng(5);
  const rand = (n: number) => Array.from({ length: n }, () => r() * 2 - 1);
  const x = b.tensor({ name: 'x', type: TensorType.FLOAT32, shape: [1, 5, 7, 3] });
  const w = b.constF32('w', [4, k[0], k[1], 3], rand(4 * k[0] * k[1] * 3));
  const bias = b.constF32('bias', [4], rand(4));
  const shape = b.constI32('output_shape', [4], [1, out[0], out[1], 4]);
  const yBuiltin = b.tensor({ name: 'builtin', type: TensorType.FLOAT32, shape: [1, out[0], out[1], 4] });
  const yCustom = b.tensor({ name: 'custom', type: TensorType.FLOAT32, shape: [1, out[0], out[1], 4] });
  b.op(BuiltinOperator.TRANSPOSE_CONV, [shape, w, x, bias], [yBuiltin], {
    type: 49 as never, // TransposeConvOptions { padding, stride_w, stride_h }
    write: (fb) => { fb.startObject(3); fb.addFieldInt8(0, padding, 0); fb.addFieldInt32(1, sw, 0); fb.addFieldInt32(2, sh, 0); return fb.endObject(); },
  });
  b.customOp('Convolution2DTransposeBias', [x, w, bias], [yCustom], new Uint8Array(Int32Array.of(customPadding, sw, sh).buffer));
  b.inputs = [x];
  b.outputs = [yBuiltin, yCustom];
  return b.finish();
}

for (const [label, padding, k, sh, sw, out] of [
  ['SAME 3x3, strides h1 w2', Padding.SAME, [3, 3], 1, 2, [5, 14]],
  ['VALID 2x3, strides h2 w2', Padding.VALID, [2, 3], 2, 2, [10, 15]],
] as const) {
  test(`Convolution2DTransposeBias imports as TRANSPOSE_CONV does: ${label}`, async () => {
    const g = await loadModel(model(padding, [...k], sh, sw, [...out]), { source: 'transpose-conv.tflite' });
    const convs = g.nodes.filter((n) => n.op === 'ConvTranspose');
    assert.equal(convs.length, 2);
    const [a, c] = convs;
    assert.deepEqual({ ...c.attrs }, { ...a.attrs });
    assert.deepEqual(c.attrs.strides, [sh, sw]);
    for (const i of [1, 2]) {
      const ta = g.tensors.get(a.inputs[i])!, tc = g.tensors.get(c.inputs[i])!;
      assert.deepEqual(tc.shape, ta.shape);
      assert.ok(tc.data && ta.data && Array.from(tc.data as Float32Array).every((v, j) => v === (ta.data as Float32Array)[j]), `input ${i} differs`);
    }
    // ONNX weights [I, O, KH, KW]: 3 input channels to 4 outputs.
    assert.deepEqual(g.tensors.get(c.inputs[1])!.shape, [3, 4, k[0], k[1]]);
  });
}

test('Convolution2DTransposeBias with a padding that is neither same nor valid is invalid (exit 2)', async () => {
  await assert.rejects(loadModel(model(Padding.SAME, [3, 3], 1, 2, [5, 14], 0), { source: 'bad.tflite' }), (e: unknown) => e instanceof FcmError && e.kind === 'invalid' && /padding 0/.test(e.message));
});
