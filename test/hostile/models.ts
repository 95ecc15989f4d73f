// Small hostile models for the validation tests: a float TFLite net (1x1 conv, 3x3 depthwise, 1x1 conv) with one
// field made wrong, and an ONNX model with a 1-D Conv. Built in code with fixed seeds (fixtures/tflite-builder.ts,
// fixtures/ir-builder.ts).
import { ActivationFunctionType, BuiltinOperator, NetWriter, Padding, TensorType, TfliteBuilder, bytesOf, opt, type OptionsWriter } from '../../fixtures/tflite-builder.js';
import { BuiltinOptions } from '../../converters/tflite/schema_generated.js';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { exportOnnx } from '../../converters/onnx/export.js';

export type TfliteFault =
  | 'none' | 'self-input' | 'writes-constant' | 'type-200' | 'huge-zero-point' | 'activation-99'
  | 'depth-multiplier-0' | 'depth-multiplier-1000';

/** A depthwise options table with a free depth multiplier and activation (the builder's opt.dw fixes neither). */
const dwOptions = (multiplier: number, act: number): OptionsWriter => {
  const o = opt.dw(Padding.SAME, 1, act as ActivationFunctionType, multiplier);
  return { type: BuiltinOptions.DepthwiseConv2DOptions, write: o.write };
};

/**
 * input [1,8,8,4] -> CONV_2D 1x1 (8) -> DEPTHWISE_CONV_2D 3x3 -> CONV_2D 1x1 (8) -> output, float32, with `fault`:
 * an operator reading its own output, an operator writing a weight, an activation of tensor type 200, a quantized
 * activation whose zero point is 2^40, a fused activation 99, a depth multiplier of 0 or 1000.
 */
export function hostileTflite(fault: TfliteFault, weightOutput = false): Uint8Array {
  const b = new TfliteBuilder();
  let seed = 1;
  const vals = (n: number) => Array.from({ length: n }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 0.5);
  const w1 = b.constF32('pw1/weights', [8, 1, 1, 4], vals(32));
  const b1 = b.constF32('pw1/bias', [8], vals(8));
  const w2 = b.constF32('dw/weights', [1, 3, 3, 8], vals(72));
  const b2 = b.constF32('dw/bias', [8], vals(8));
  const w3 = b.constF32('pw2/weights', [8, 1, 1, 8], vals(64));
  const b3 = b.constF32('pw2/bias', [8], vals(8));
  const x = b.tensor({ name: 'input', type: TensorType.FLOAT32, shape: [1, 8, 8, 4] });
  const a1 = b.tensor({
    name: 'pw1', type: fault === 'type-200' ? (200 as TensorType) : TensorType.FLOAT32, shape: [1, 8, 8, 8],
    ...(fault === 'huge-zero-point' ? { quant: { scale: [0.1], zeroPoint: [2 ** 40] } } : {}),
  });
  const a2 = b.tensor({ name: 'dw', type: TensorType.FLOAT32, shape: [1, 8, 8, 8] });
  const y = b.tensor({ name: 'output', type: TensorType.FLOAT32, shape: [1, 8, 8, 8] });
  const act = fault === 'activation-99' ? (99 as ActivationFunctionType) : ActivationFunctionType.RELU6;
  b.op(BuiltinOperator.CONV_2D, [x, w1, b1], [fault === 'writes-constant' ? w3 : a1], opt.conv(Padding.SAME, 1, act));
  const multiplier = fault === 'depth-multiplier-0' ? 0 : fault === 'depth-multiplier-1000' ? 1000 : 1;
  b.op(BuiltinOperator.DEPTHWISE_CONV_2D, [fault === 'self-input' ? a2 : a1, w2, b2], [a2], dwOptions(multiplier, ActivationFunctionType.RELU6));
  b.op(BuiltinOperator.CONV_2D, [a2, w3, b3], [y], opt.conv(Padding.SAME, 1, ActivationFunctionType.NONE));
  b.inputs = [x];
  b.outputs = weightOutput ? [y, w3] : [y];
  return b.finish();
}

/** An ONNX model with one 1-D Conv: input [1,4,16], weights [8,4,3], pads [1,1]. */
export function conv1dOnnx(): Uint8Array {
  const g = new GraphBuilder('conv1d', 3);
  const x = g.input('input', [1, 4, 16]);
  const w = g.random('w', [8, 4, 3], 0.5);
  const y = g.node('Conv', [x, w], [1, 8, 16], { kernel: [3], pads: [1, 1], strides: [1], dilations: [1], group: 1 });
  return exportOnnx(g.build([y]));
}

export { bytesOf };

/**
 * An int8 net: float input -> QUANTIZE -> CONV_2D 1x1 (8) -> DEPTHWISE_CONV_2D 3x3 -> CONV_2D 1x1 (8) -> DEQUANTIZE,
 * per-channel int8 weights; `zeroPoint` is the first conv's output zero point (2^40 makes it hostile).
 */
export function int8Tflite(zeroPoint = -3, size = 8, weightOutput = false): Uint8Array {
  const net = new NetWriter(5, true, { scale: [0.05], zeroPoint: [-3] });
  const input = net.activation('input', [1, size, size, 4], undefined, TensorType.FLOAT32);
  let x = net.unary(BuiltinOperator.QUANTIZE, 'input_int8', input, { scale: [0.02], zeroPoint: [1] });
  x = net.conv('pw1', x, 8, 1, 1, Padding.SAME, ActivationFunctionType.RELU6, { scale: [0.05], zeroPoint: [zeroPoint] });
  x = net.dw('dw', x, 3, 1, Padding.SAME, ActivationFunctionType.RELU6);
  x = net.conv('pw2', x, 8, 1, 1, Padding.SAME, ActivationFunctionType.NONE);
  net.activation('output', [1, size, size, 8], undefined, TensorType.FLOAT32);
  x = net.op(BuiltinOperator.DEQUANTIZE, [x], 'output');
  // `weightOutput`: the last conv's int8 weights are a model output too (a constant listed as an output).
  const w = net.b.tensors.findIndex((t) => t.name === 'pw2/weights');
  // finish() maps names to indices and passes numbers (constants) through.
  return net.finish([input], weightOutput ? [x, w as unknown as string] : [x]);
}

/** input [1,2,4,4] -> Concat of `n` Relu branches along channels: one dispatch binding n inputs. */
export function wideConcatOnnx(n: number): Uint8Array {
  const g = new GraphBuilder('wide_concat', 4);
  const x = g.input('input', [1, 2, 4, 4]);
  const branches = Array.from({ length: n }, () => g.node('Relu', [x], [1, 2, 4, 4]));
  const y = g.node('Concat', branches, [1, 2 * n, 4, 4], { axis: 1 });
  return exportOnnx(g.build([y]));
}

/** A model of about 20 MB: input [1,256,8,8] -> 1x1 Conv to 2048 -> 1x1 Conv to 2048 -> 3x3 depthwise (4.7M weights). */
export function heavyOnnx(): Uint8Array {
  const g = new GraphBuilder('heavy', 6);
  let x = g.input('input', [1, 256, 8, 8]);
  x = g.conv(x, { filters: 2048, kernel: 1, bias: true });
  x = g.conv(x, { filters: 2048, kernel: 1, bias: true });
  x = g.conv(x, { filters: 2048, kernel: 3, group: 2048, bias: true });
  return exportOnnx(g.build([x]));
}
