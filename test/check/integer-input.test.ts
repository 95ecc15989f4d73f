// check feeds seeded float32 values: a model with an integer input (Silero VAD's int64 sample rate) is refused as
// unsupported (exit 3) naming the input, before onnxruntime is fed the wrong type (it failed with an internal error).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeModel, onnx } from '../../converters/onnx/codec.js';
import { runCheck } from '../../src/check/check.js';
import { FcmError } from '../../src/errors.js';

const T = onnx.TensorProto.DataType;

test('check: an int64 input is refused with exit 3 naming it', async () => {
  const bytes = encodeModel({
    irVersion: 8, opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'g',
      input: [
        { name: 'x', type: { tensorType: { elemType: T.FLOAT, shape: { dim: [{ dimValue: 1 }, { dimValue: 2 }] } } } },
        { name: 'sr', type: { tensorType: { elemType: T.INT64, shape: { dim: [] } } } },
      ],
      output: [{ name: 'y', type: { tensorType: { elemType: T.FLOAT } } }, { name: 'srf', type: { tensorType: { elemType: T.FLOAT } } }],
      initializer: [{ name: 'one', dims: [], dataType: T.FLOAT, rawData: new Uint8Array(new Float32Array([1]).buffer) }],
      node: [
        { name: 'add', opType: 'Add', input: ['x', 'one'], output: ['y'] },
        { name: 'cast', opType: 'Cast', input: ['sr'], output: ['srf'], attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: T.FLOAT }] },
      ],
    },
  });
  await assert.rejects(runCheck(bytes, { unfused: true }, 'int-input.onnx'), (e: unknown) => {
    assert.ok(e instanceof FcmError, String(e));
    assert.equal(e.exitCode, 3, e.message);
    assert.equal(e.message, "int-input.onnx: input 'sr': is int64; check feeds seeded float32 inputs only");
    return true;
  });
});
