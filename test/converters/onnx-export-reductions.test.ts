// Reductions the IR keeps opaque (ReduceSum, ReduceMax, ReduceMin, ReduceProd) made by the TFLite importer hold
// their axes as an attribute; the ONNX export writes them as an input where the opset takes them so (ReduceSum
// from 13, the others from 18), so that onnxruntime (what `check` compares with) loads the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { decodeModel } from '../../converters/onnx/codec.js';

function reductions() {
  const b = new GraphBuilder('reductions', 1);
  const x = b.input('input', [2, 3, 4]);
  const outs = (['ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd'] as const).map((op) => b.node(op, [x], [2, 1, 4], { axes: [1], keepdims: 1 }));
  return b.build(outs);
}

for (const opset of [13, 17, 18]) {
  test(`opaque reductions with an axes attribute export as valid ONNX at opset ${opset} and reduce axis 1`, async () => {
    const bytes = exportOnnx(reductions(), { opset });
    const nodes = decodeModel(bytes, 'reductions.onnx').graph!.node;
    for (const n of nodes) {
      const asInput = n.opType === 'ReduceSum' ? opset >= 13 : opset >= 18;
      assert.equal(n.input.length, asInput ? 2 : 1, `${n.opType}: axes as ${asInput ? 'an input' : 'an attribute'}`);
      assert.equal(n.attribute.some((a) => a.name === 'axes'), !asInput, `${n.opType}`);
    }
    const data = Float32Array.from({ length: 24 }, (_, i) => 0.5 + ((i * 7) % 11) / 10);
    const s = await ort.InferenceSession.create(bytes);
    const r = await s.run({ input: new ort.Tensor('float32', data, [2, 3, 4]) });
    await s.release();
    const fold = (f: (a: number, v: number) => number) => Array.from({ length: 8 }, (_, k) => {
      const [n, c] = [Math.floor(k / 4), k % 4];
      return [0, 1, 2].map((j) => data[(n * 3 + j) * 4 + c]).reduce(f);
    });
    const expected = [fold((a, v) => a + v), fold((a, v) => Math.max(a, v)), fold((a, v) => Math.min(a, v)), fold((a, v) => a * v)];
    nodes.forEach((n, i) => {
      const got = Array.from(r[n.output[0]].data as Float32Array);
      expected[i].forEach((e, k) => assert.ok(Math.abs(got[k] - e) <= 1e-5 * Math.abs(e), `${n.opType}[${k}]: ${got[k]} vs ${e}`));
    });
  });
}
