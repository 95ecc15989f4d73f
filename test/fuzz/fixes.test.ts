// Unit tests of the fixes for crashes the fuzzer found (RELIABILITY.md, "Found and fixed" C, D, E); the
// minimized inputs themselves are replayed by test/regressions/regressions.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exportOnnx } from '../../converters/onnx/export.js';
import { importOnnx } from '../../converters/onnx/import.js';
import { importTflite } from '../../converters/tflite/import.js';
import { BuiltinOperator, TensorType, TfliteBuilder, bytesOf } from '../../fixtures/tflite-builder.js';
import { FcmError } from '../../src/errors.js';
import { foldConstants } from '../../src/graph/passes/fold-constants.js';
import { maxDagDim, validateDag } from '../../src/planner/dag-load.js';
import { maxTilesPerAxis, readIndices, tileAxis, tileSizes, type Axis } from '../../src/planner/cost.js';
import { loadHw } from '../../src/planner/hw.js';
import { planFusion } from '../../src/planner/index.js';
import { graph } from '../graph/helpers.js';
import { parseNpy } from '../../src/npy.js';

function throwsExit(fn: () => unknown, exitCode: number, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FcmError, String(e));
    assert.equal(e.exitCode, exitCode, e.message);
    assert.match(e.message, re);
    return true;
  });
}

async function rejectsExit(p: Promise<unknown>, exitCode: number, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof FcmError, String(e));
    assert.equal(e.exitCode, exitCode, e.message);
    assert.match(e.message, re);
    return true;
  });
}

/** A TFLite model whose only op is a DEQUANTIZE of a constant of `type` with zero point `zp`. */
function dequantizeModel(type: TensorType, data: Uint8Array, zp: number): Uint8Array {
  const b = new TfliteBuilder();
  const x = b.tensor({ name: 'bias', type, shape: [4], data, quant: { scale: [0.5], zeroPoint: [zp] } });
  const y = b.tensor({ name: 'y', type: TensorType.FLOAT32, shape: [4] });
  b.op(BuiltinOperator.DEQUANTIZE, [x], [y]);
  b.outputs = [y];
  return b.finish();
}

test('C: a DEQUANTIZE of an int32 tensor gets an int32 zero point (Int32Array) and the export reads back', async () => {
  const g = await importTflite(dequantizeModel(TensorType.INT32, bytesOf(Int32Array.of(-8, 0, 8, 1000)), 3), { source: 'dq.tflite' });
  const dq = g.nodes.find((n) => n.op === 'DequantizeLinear');
  assert.ok(dq, g.nodes.map((n) => n.op).join(', '));
  const zp = g.tensors.get(dq.inputs[2])!;
  assert.equal(zp.dtype, 'int32');
  assert.ok(zp.data instanceof Int32Array, zp.data?.constructor.name);
  assert.deepEqual([...zp.data], [3]);
  const back = await importOnnx(exportOnnx(g), { source: 'dq.onnx' });
  assert.deepEqual([...(back.tensors.get(dq.inputs[2])!.data as Int32Array)], [3]);
  // uint8 keeps its Uint8Array.
  const u = await importTflite(dequantizeModel(TensorType.UINT8, Uint8Array.of(0, 1, 2, 255), 128), { source: 'dq.tflite' });
  const uzp = u.tensors.get(u.nodes.find((n) => n.op === 'DequantizeLinear')!.inputs[2])!;
  assert.ok(uzp.data instanceof Uint8Array && uzp.dtype === 'uint8' && uzp.data[0] === 128);
});

test('C: a zero point outside its type, or a type ONNX cannot dequantize, is refused naming the tensor', async () => {
  await rejectsExit(importTflite(dequantizeModel(TensorType.INT8, Int8Array.of(1, 2, 3, 4) as unknown as Uint8Array, 300), { source: 'dq.tflite' }), 2, /zero point 300 of tensor 'bias' is outside the range of int8/);
  await rejectsExit(importTflite(dequantizeModel(TensorType.INT64, bytesOf(BigInt64Array.of(1n, 2n, 3n, 4n)), 0), { source: 'dq.tflite' }), 3, /'bias' has type int64/);
});

test('D: folding refuses float Gather indices and NaN for an integer tensor, naming the node (exit 2)', () => {
  const gather = graph({
    inputs: {},
    consts: { x: { shape: [1], data: BigInt64Array.of(4n), dtype: 'int64' }, idx: { shape: [1], data: Float32Array.of(-0.25) } },
    nodes: [{ op: 'Gather', in: ['x', 'idx'], out: ['y'], attrs: { axis: 0 }, name: 'gather_6' }],
    outputs: ['y'],
  });
  throwsExit(() => foldConstants(gather), 2, /node 'gather_6' \(Gather\): indices 'idx' are float32/);
  const cast = graph({
    inputs: {},
    consts: { x: { shape: [2], data: Float32Array.of(1, NaN) } },
    nodes: [{ op: 'Cast', in: ['x'], out: ['y'], attrs: { to: 'int64' }, name: 'to_int' }],
    outputs: ['y'],
  });
  throwsExit(() => foldConstants(cast), 2, /node 'to_int' \(Cast\): folding gives NaN for int64 output 'y'/);
  // The same Cast of finite values still folds.
  const ok = graph({ inputs: {}, consts: { x: { shape: [2], data: Float32Array.of(1.7, -2.2) } }, nodes: [{ op: 'Cast', in: ['x'], out: ['y'], attrs: { to: 'int64' } }], outputs: ['y'] });
  assert.deepEqual([...(foldConstants(ok).tensors.get('y')!.data as BigInt64Array)], [1n, -2n]);
});

const dwPw = (w: number, ow = w, extra: Record<string, unknown> = {}) => [
  { id: 0, name: 'dw', parents: [], children: [1], activation: '0', type: 'dw', weights_shape: [8, 3, 3], ifms_shape: [8, 14, w], ofms_shape: [8, 14, ow], strides: 1, ...extra },
  { id: 1, name: 'pw', parents: [0], children: [], activation: '0', type: 'pw', weights_shape: [8, 8], ifms_shape: [8, 14, ow], ofms_shape: [8, 14, ow], strides: 1 },
];

test('E: validateDag bounds dims (exit 4) and checks that conv outputs follow from their inputs (exit 2)', () => {
  throwsExit(() => validateDag(dwPw(14, 2 ** 31), 'm.json'), 4, /m\.json: layer 0 \('dw'\): 'ofms_shape' \[8, 14, 2147483648\] has a dimension over 16777216/);
  throwsExit(() => validateDag(dwPw(maxDagDim + 1), 'm.json'), 4, /layer 0 \('dw'\): 'ifms_shape'/);
  // Every dim allowed, too many elements: 256 * 2^12 * 2^12 = 2^32.
  const big = dwPw(2 ** 12);
  for (const l of big) { l.ifms_shape = [256, 2 ** 12, 2 ** 12]; l.ofms_shape = [256, 2 ** 12, 2 ** 12]; }
  big[0].weights_shape = [256, 3, 3];
  big[1].weights_shape = [256, 256];
  throwsExit(() => validateDag(big, 'm.json'), 4, /more than 2147483648 elements/);
  // The fuzzer's DAG: a 14-wide input cannot give a 2^20-wide output without padding.
  throwsExit(() => validateDag(dwPw(14, 2 ** 20), 'm.json'), 2, /layer 0 \('dw'\): output \[14, 1048576\] is larger than input \[14, 14\]/);
  // Recorded padding must give the recorded output exactly.
  throwsExit(() => validateDag(dwPw(14, 14, { pads: [0, 0, 0, 0] }), 'm.json'), 2, /output \[14, 14\] does not follow .* \(expected \[12, 12\]\) or any other stride/);
  assert.equal(validateDag(dwPw(14, 14, { pads: [1, 1, 1, 1] }), 'm.json').length, 2);
  // An ONNX conv with strides [2, 1]: the format records 2; W is explained by stride 1.
  const asym = dwPw(96, 96, { pads: [1, 1, 1, 1], strides: 2, ifms_shape: [8, 24, 96], ofms_shape: [8, 12, 96] });
  asym[1].ifms_shape = [8, 12, 96];
  asym[1].ofms_shape = [8, 12, 96];
  assert.equal(validateDag(asym, 'm.json').length, 2);
  assert.equal(validateDag(dwPw(14, 12), 'm.json').length, 2);
  throwsExit(() => validateDag(dwPw(14, 14, { dilations: 0 }), 'm.json'), 2, /'dilations' must be a positive integer/);
});

test('E: tiling walks border tiles only: same counts as tile by tile, bounded tile sizes', () => {
  const axes: Axis[][] = [
    [{ in: 5003, out: 5001, k: 3, s: 1, d: 2, p: 1 }],
    [{ in: 2501, out: 1250, k: 3, s: 2, d: 1, p: 0 }, { in: 5000, out: 2501, k: 1, s: 2, d: 1, p: 0 }],
    [{ in: 1000, out: 1000, k: 5, s: 1, d: 1, p: 2 }, { in: 2000, out: 1000, k: 3, s: 2, d: 3, p: 2 }],
  ];
  for (const chain of axes) {
    for (const t of [1, 3, 7, 64, 999]) {
      const out = chain[0].out;
      const tiles = Math.ceil(out / t);
      const sum = chain.map(() => 0), max = chain.map(() => 0);
      for (let i = 0; i < tiles; i++) {
        let idx = Array.from({ length: Math.min(out, (i + 1) * t) - i * t }, (_, k) => i * t + k);
        chain.forEach((a, level) => {
          idx = readIndices(idx, a);
          sum[level] += idx.length;
          max[level] = Math.max(max[level], idx.length);
        });
      }
      assert.deepEqual(tileAxis(t, chain), { tiles, sum, max }, `t ${t}, ${JSON.stringify(chain)}`);
    }
  }
  const n = maxDagDim;
  const sizes = tileSizes(n);
  assert.equal(sizes.at(-1), n);
  assert.ok(sizes.every((t) => Math.ceil(n / t) <= maxTilesPerAxis), sizes.join(', '));
  assert.deepEqual(tileSizes(224), [1, 2, 4, 8, 16, 32, 64, 128, 224]);
});

test('E: the optimal planner finishes on a consistent DAG with a 2^22-wide dilated layer', { timeout: 60_000 }, () => {
  const w = 2 ** 22;
  const dag = validateDag(dwPw(w, w, { dilations: 2 }), 'wide.json');
  const plan = planFusion(dag, loadHw('rtxa4000'), { mode: 'optimal', model: 'wide.json' });
  assert.ok(Number.isFinite(plan.totals.gma) && plan.totals.gma > 0);
});

test('J: a .npy of version 2 or 3 cut before its 4-byte header length is refused (was a RangeError from DataView)', () => {
  const head = Uint8Array.of(0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0, 0x10, 0);
  for (const bytes of [head, Uint8Array.of(...head, 0)]) throwsExit(() => parseNpy(bytes, 'cut.npy'), 2, /^cut\.npy: truncated \.npy header$/);
  // Version 1 keeps its 2-byte length: 10 bytes are enough to read it.
  throwsExit(() => parseNpy(Uint8Array.of(0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0x10, 0), 'v1.npy'), 2, /truncated \.npy header/);
});
