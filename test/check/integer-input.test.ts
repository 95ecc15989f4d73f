// check feeds seeded values: an int32/int64 input (Silero VAD's int64 sample rate) gets them rounded, as integers to
// onnxruntime and as float32 to fcm-opt (exact up to 2^24); an input of another type (bool here) is refused as
// unsupported (exit 3) naming the input, before onnxruntime is fed the wrong type.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { encodeModel, onnx } from '../../converters/onnx/codec.js';
import { runCheck } from '../../src/check/check.js';
import { FcmError } from '../../src/errors.js';
import { releaseGpu } from '../../src/runtime/device.js';

after(releaseGpu);

const T = onnx.TensorProto.DataType;

/** y = x + 1, and srf = Cast(sr) to float: the integer input's value read back. */
function model(srType: number): Uint8Array {
  return encodeModel({
    irVersion: 8, opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'g',
      input: [
        { name: 'x', type: { tensorType: { elemType: T.FLOAT, shape: { dim: [{ dimValue: 1 }, { dimValue: 2 }] } } } },
        { name: 'sr', type: { tensorType: { elemType: srType, shape: { dim: [{ dimValue: 4 }] } } } },
      ],
      output: [{ name: 'y', type: { tensorType: { elemType: T.FLOAT } } }, { name: 'srf', type: { tensorType: { elemType: T.FLOAT } } }],
      initializer: [{ name: 'one', dims: [], dataType: T.FLOAT, rawData: new Uint8Array(new Float32Array([1]).buffer) }],
      node: [
        { name: 'add', opType: 'Add', input: ['x', 'one'], output: ['y'] },
        { name: 'cast', opType: 'Cast', input: ['sr'], output: ['srf'], attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: T.FLOAT }] },
      ],
    },
  });
}

test('check: an int64 input takes the seeded values rounded, the same on both sides', async () => {
  const r = await runCheck(model(T.INT64), { unfused: true }, 'int-input.onnx');
  const srf = r.outputs.find((o) => o.name === 'srf')!;
  assert.equal(srf.maxAbsError, 0);
  assert.ok(r.ok);
});

test('check: a bool input is refused with exit 3 naming it', async () => {
  await assert.rejects(runCheck(model(T.BOOL), { unfused: true }, 'bool-input.onnx'), (e: unknown) => {
    assert.ok(e instanceof FcmError, String(e));
    assert.equal(e.exitCode, 3, e.message);
    assert.equal(e.message, "bool-input.onnx: input 'sr': is bool; check feeds seeded float32 or integer inputs only");
    return true;
  });
});
