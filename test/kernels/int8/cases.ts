// Fixture helpers for the integer kernel tests: quantized IR tensors with random data (fixed seeds), Conv nodes,
// kernel args, and running a program on packed buffers back to int8 / uint8 arrays.
import assert from 'node:assert/strict';
import { newAttrs, type AttrValue, type Node, type Tensor } from '../../../src/graph/ir.js';
import { type QArray, type QType, qAlloc, qLimits } from '../../../src/quant/reference.js';
import { type Int8KernelArgs, type Int8Program, pack8, unpack8 } from '../../../kernels/int8/common.js';
import { rng } from '../../../fixtures/tflite-builder.js';
import { deviceLimits, runInt8 } from './harness.js';

export type Rand = () => number;
export const makeRng = (seed: number) => rng(seed);
export const randInt = (r: Rand, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
export const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

export function randQ(r: Rand, t: QType, n: number): QArray {
  const [lo, hi] = qLimits(t);
  const a = qAlloc(t, n);
  for (let i = 0; i < n; i++) a[i] = randInt(r, lo, hi);
  return a;
}

/** An 8-bit activation tensor with random data. */
export function act(r: Rand, name: string, t: QType, shape: number[], scale: number, zeroPoint: number, withData = true): Tensor {
  return { name, dtype: t, shape, quant: { scale: [scale], zeroPoint: [zeroPoint] }, ...(withData ? { data: randQ(r, t, numel(shape)) } : {}) };
}

/** Constant weights: int8 symmetric with per-channel scales, or uint8 per-tensor with a zero point. */
export function weights(r: Rand, t: QType, shape: number[], perChannel = true): Tensor {
  const n = shape[0];
  const scale = t === 'int8' && perChannel ? Array.from({ length: n }, () => 0.002 + r() * 0.05) : [0.003 + r() * 0.03];
  const zeroPoint = t === 'int8' ? scale.map(() => 0) : [randInt(r, 0, 255)];
  const data = randQ(r, t, numel(shape));
  // int8 symmetric weights use [-127, 127], as TFLite's quantizer does.
  if (t === 'int8') for (let i = 0; i < data.length; i++) if (data[i] === -128) data[i] = -127;
  return { name: 'w', dtype: t, shape, data, quant: { scale, zeroPoint, ...(scale.length > 1 ? { axis: 0 } : {}) } };
}

export function biasT(r: Rand, n: number, name = 'b'): Tensor {
  return { name, dtype: 'int32', shape: [n], data: Int32Array.from({ length: n }, () => randInt(r, -40000, 40000)) };
}

export function node(op: string, inputs: string[], attrs: Record<string, AttrValue>, domain = ''): Node {
  return { name: `${op.toLowerCase()}_t`, op, domain, inputs, outputs: ['y'], attrs: newAttrs(attrs) };
}

export async function args(n: Node, inputs: (Tensor | undefined)[], outputs: Tensor[], dot4: boolean): Promise<Int8KernelArgs> {
  return { node: n, inputs, outputs, limits: await deviceLimits(), dot4 };
}

/** Runs the program with the tensors named by program.inputs (their data packed) and returns output 0 unpacked. */
export async function run(p: Int8Program, a: Int8KernelArgs): Promise<QArray> {
  const ins = p.inputs.map((i) => pack8(a.inputs[i]!.data as QArray));
  const y = a.outputs[0];
  const n = numel(y.shape);
  const [out] = await runInt8(p, ins, [Math.ceil(n / 4)]);
  return unpack8(out, n, y.dtype as QType);
}

export function assertEqualQ(got: QArray, want: QArray, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let bad = 0, first = -1;
  for (let i = 0; i < got.length; i++) if (got[i] !== want[i]) { bad++; if (first < 0) first = i; }
  const list = [...got.keys()].filter((i) => got[i] !== want[i]).slice(0, 8).map((i) => `${i}: ${got[i]}/${want[i]}`).join(", ");
  assert.equal(bad, 0, `${what}: ${bad} of ${got.length} differ: ${list}`);
}
