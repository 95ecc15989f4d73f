// TFLite DEPTH_TO_SPACE (MediaPipe's pose and sparse face detectors upsample with it) imports as Reshape ->
// Transpose -> Reshape on the IR's NCHW tensors; the result must follow TFLite's definition, element by element.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { importTflite } from '../../converters/tflite/import.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { runOrt } from '../../src/check/check.js';
import { FcmError } from '../../src/errors.js';
import { BuiltinOperator as Op, TensorType, TfliteBuilder, type OptionsWriter } from '../../fixtures/tflite-builder.js';
import type { BuiltinOptions } from '../../converters/tflite/schema_generated.js';

/** DepthToSpaceOptions { block_size } (TFLite's union member 94), which the trimmed schema has no class for. */
const depthToSpaceOptions = (blockSize: number): OptionsWriter => ({
  type: 94 as BuiltinOptions,
  write: (b) => { b.startObject(1); b.addFieldInt32(0, blockSize, 0); return b.endObject(); },
});

function model(x: number[], y: number[], blockSize: number): Uint8Array {
  const b = new TfliteBuilder();
  const xi = b.tensor({ name: 'x', type: TensorType.FLOAT32, shape: x });
  const yi = b.tensor({ name: 'y', type: TensorType.FLOAT32, shape: y });
  b.op(Op.DEPTH_TO_SPACE, [xi], [yi], depthToSpaceOptions(blockSize));
  b.inputs = [xi];
  b.outputs = [yi];
  return b.finish();
}

test('DEPTH_TO_SPACE: out[n, h*bs + i, w*bs + j, c] = in[n, h, w, (i*bs + j)*C\' + c]', async () => {
  const [N, H, W, C, bs] = [2, 2, 3, 12, 2];
  const co = C / (bs * bs);
  const g = await importTflite(model([N, H, W, C], [N, H * bs, W * bs, co], bs));
  assert.deepEqual(g.nodes.map((n) => n.op), ['Reshape', 'Transpose', 'Reshape']);
  assert.deepEqual(g.tensors.get(g.outputs[0])!.shape, [N, co, H * bs, W * bs]);
  // Input values name their NHWC position, so every output element says where it came from.
  const nhwc = (n: number, h: number, w: number, c: number) => ((n * H + h) * W + w) * C + c;
  const x = new Float32Array(N * C * H * W);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) x[((n * C + c) * H + h) * W + w] = nhwc(n, h, w, c);
  const out = await runOrt(exportOnnx(g), { [g.inputs[0]]: { data: x, shape: [N, C, H, W] } }, g.outputs, 'd2s');
  const y = out.get(g.outputs[0])!;
  const OH = H * bs, OW = W * bs;
  for (let n = 0; n < N; n++) for (let c = 0; c < co; c++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
    const [h, i, w, j] = [Math.floor(oh / bs), oh % bs, Math.floor(ow / bs), ow % bs];
    assert.equal(y[((n * co + c) * OH + oh) * OW + ow], nhwc(n, h, w, (i * bs + j) * co + c), `n ${n} c ${c} h ${oh} w ${ow}`);
  }
});

test('DEPTH_TO_SPACE: a block size that does not divide the channels, or a wrong output shape, is refused', async () => {
  const refused = async (bytes: Uint8Array, pattern: RegExp) => assert.rejects(importTflite(bytes), (e: unknown) => e instanceof FcmError && e.kind === 'invalid' && pattern.test(e.message));
  await refused(model([1, 2, 2, 6], [1, 4, 4, 1], 2), /operator 0 \(depth_to_space\): block size 2 does not divide 6 channels/);
  await refused(model([1, 2, 2, 8], [1, 4, 4, 1], 0), /block size 0 does not divide/);
  await refused(model([1, 2, 2, 8], [1, 4, 2, 2], 2), /output \[1, 4, 2, 2\] should be \[1, 4, 4, 2\]/);
});
