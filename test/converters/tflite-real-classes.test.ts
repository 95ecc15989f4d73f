// TFLite constructs of real packaged models (COVERAGE.md), on small seeded fixtures (fixtures/real-model-classes.ts):
// float16 and int8 weights behind DEQUANTIZE, rectangular depthwise strides.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadModel } from '../../src/graph/load.js';
import { importTflite } from '../../converters/tflite/import.js';
import type { Graph } from '../../src/graph/ir.js';
import { dequantizeConstantTo, fp16Depthwise, halfBits, halfExactValues, int8WeightOnly, leakyRelu, rectStrideDw, stridedSliceOfConstant } from '../../fixtures/real-model-classes.js';
import { halfValues } from '../../src/graph/util.js';

const convs = (g: Graph) => g.nodes.filter((n) => n.op === 'Conv');
const weights = (g: Graph, i: number) => {
  const t = g.tensors.get(convs(g)[i].inputs[1])!;
  return { dtype: t.dtype, shape: t.shape, values: Array.from(t.data as Float32Array) };
};

describe('TFLite DEQUANTIZE of constant weights', () => {
  it('folds into its output only when the output has the input\'s shape', async () => {
    const g = await loadModel(dequantizeConstantTo([2, 1, 1, 3]), { source: 'deq.tflite' });
    assert.deepEqual(Array.from(g.tensors.get('y')!.data as Float32Array), [0.5, 1, 1.5, 2, 2.5, 3]);
    await assert.rejects(loadModel(dequantizeConstantTo([1, 10]), { source: 'deq.tflite' }),
      (e: Error) => e.name === 'FcmError' && /deq\.tflite: operator 0 \(dequantize\): output shape \[1, 10\] differs from input shape \[2, 1, 1, 3\]/.test(e.message));
  });
  it('float16 weights decode exactly (half bits round trip)', () => {
    const v = halfExactValues(64, 3);
    assert.deepEqual(Array.from(halfValues('float16', Uint16Array.from(v, halfBits))), Array.from(v));
    assert.deepEqual(Array.from(halfValues('float16', Uint16Array.of(0x3c00, 0xc000, 0x0001, 0x7c00))), [1, -2, 2 ** -24, Infinity]);
  });

  it('float16 weights feeding DEPTHWISE_CONV_2D and CONV_2D become float32 constants: the graph of the float32 model', async () => {
    const g16 = await loadModel(fp16Depthwise(5, 'float16'), { source: 'fp16.tflite' });
    const g32 = await loadModel(fp16Depthwise(5, 'float32'), { source: 'fp32.tflite' });
    assert.deepEqual(g16.nodes.map((n) => n.op), g32.nodes.map((n) => n.op));
    assert.deepEqual(g16.nodes.map((n) => n.op), ['Conv', 'Clip', 'Conv']);
    assert.equal(convs(g16)[0].attrs.group, 4);
    for (const i of [0, 1]) {
      const a = weights(g16, i), b = weights(g32, i);
      assert.equal(a.dtype, 'float32');
      assert.deepEqual(a.shape, b.shape);
      assert.deepEqual(a.values, b.values);
    }
    // No Cast left reading a float16 tensor.
    assert.ok([...g16.tensors.values()].every((t) => t.dtype !== 'float16'));
  });

  it('per-channel int8 weights dequantize as (q - zero point) * scale of their filter', async () => {
    const { bytes, expected } = int8WeightOnly();
    const g = await importTflite(bytes, { source: 'int8w.tflite' });
    assert.deepEqual(g.nodes.map((n) => n.op), ['Conv']);
    const w = g.tensors.get(g.nodes[0].inputs[1])!;
    assert.equal(w.dtype, 'float32');
    assert.equal(w.quant, undefined);
    assert.deepEqual(w.shape, [2, 3, 1, 1]);
    assert.deepEqual(Array.from(w.data as Float32Array), Array.from(expected));
  });
});

describe('TFLite rectangular strides', () => {
  for (const [sh, sw] of [[2, 1], [1, 2]] as const) {
    it(`a depthwise convolution with strides [${sh}, ${sw}] keeps both, and its output shape`, async () => {
      const g = await loadModel(rectStrideDw(sh, sw), { source: 'rect.tflite' });
      const conv = convs(g)[0];
      assert.deepEqual(conv.attrs.strides, [sh, sw]);
      assert.deepEqual(g.tensors.get(conv.outputs[0])!.shape, [1, 4, Math.ceil(8 / sh), Math.ceil(6 / sw)]);
    });
  }
});

describe('TFLite ops mapped to IR ops', () => {
  it('LEAKY_RELU becomes LeakyRelu with the file\'s alpha', async () => {
    const g = await loadModel(leakyRelu(0.25), { source: 'leaky.tflite' });
    assert.deepEqual(g.nodes.map((n) => [n.op, n.attrs.alpha]), [['LeakyRelu', 0.25]]);
  });

  /** NHWC reference: the values of c[0..1, h, w, ch] (c holds 0..23 over [1, 4, 3, 2]) that STRIDED_SLICE keeps. */
  const at = (h: number, w: number, ch: number) => (h * 3 + w) * 2 + ch;
  const cases: Array<{ what: string; args: Parameters<typeof stridedSliceOfConstant>; nchw: number[]; values: number[] }> = [
    {
      what: 'rank 4, strides [1, 2, 1, 1], begin mask on W',
      args: [[0, 1, 2, 1], [1, 4, 3, 2], [1, 2, 1, 1], { begin: 1 << 2 }, [1, 2, 3, 1]],
      nchw: [1, 1, 2, 3],
      // rows h = 1, 3; all w; ch = 1; NCHW order: c, h, w.
      values: [1, 3].flatMap((h) => [0, 1, 2].map((w) => at(h, w, 1))),
    },
    {
      what: 'rank 4 shrinking the channel axis to rank 3, end mask on H',
      args: [[0, 2, 0, 0], [1, 0, 2, 1], [1, 1, 1, 1], { end: 1 << 1, shrink: 1 << 3 }, [1, 2, 2]],
      nchw: [1, 2, 2],
      values: [2, 3].flatMap((h) => [0, 1].map((w) => at(h, w, 0))),
    },
  ];
  for (const c of cases) {
    it(`STRIDED_SLICE as Slice: ${c.what}`, async () => {
      const g = await loadModel(stridedSliceOfConstant(...c.args), { source: 'slice.tflite' });
      // The slice of the constant folds; what is left adds it to the input.
      assert.deepEqual(g.nodes.map((n) => n.op), ['Add']);
      const s = g.tensors.get(g.nodes[0].inputs[1])!;
      assert.deepEqual(s.shape, c.nchw);
      assert.deepEqual(Array.from(s.data as Float32Array), c.values);
    });
  }
});
