// Limits before allocation (exit 4) and zero divisors: hostile models built in code, each
// refused with an FcmError of the right exit code naming the tensor or node, before any large allocation.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadModel } from '../../src/graph/load.js';
import { encodeModel, estimateDecodedBytes, onnx } from '../../converters/onnx/codec.js';
import { importOnnx, maxElements } from '../../converters/onnx/import.js';
import { importTflite } from '../../converters/tflite/import.js';
import { BuiltinOperator, Padding, TensorType, TfliteBuilder, ActivationFunctionType, bytesOf, opt } from '../../fixtures/tflite-builder.js';
import { FcmError } from '../../src/errors.js';
import { validateDag } from '../../src/planner/dag-load.js';
import { parseHwCfg } from '../../src/planner/hw.js';

const AT = onnx.AttributeProto.AttributeType;
const F = onnx.TensorProto.DataType.FLOAT;
type P<T> = T extends { $Properties: infer X } ? X : never;
void (null as unknown as P<unknown>);

function vi(name: string, dims: number[], elemType = F): onnx.ValueInfoProto.$Properties {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } };
}
function floats(name: string, dims: number[], n = dims.reduce((a, b) => a * b, 1)): onnx.TensorProto.$Properties {
  return { name, dataType: F, dims, rawData: new Uint8Array(new Float32Array(n).fill(0.5).buffer) };
}
function model(graph: onnx.GraphProto.$Properties, opset = 17): Uint8Array {
  return encodeModel({ irVersion: 8, opsetImport: [{ domain: '', version: opset }], graph });
}
/** x[1,4,8,8] -> Conv(w[4,1 or 4,3,3]) -> y, with `attrs` on the Conv. */
function convModel(attrs: onnx.AttributeProto.$Properties[], wShape = [4, 4, 3, 3]): Uint8Array {
  return model({
    name: 'g',
    node: [{ name: 'conv0', opType: 'Conv', input: ['x', 'w'], output: ['y'], attribute: [{ name: 'kernel_shape', type: AT.INTS, ints: [3, 3] }, ...attrs] }],
    initializer: [floats('w', wShape)],
    input: [vi('x', [1, 4, 8, 8])],
    output: [{ name: 'y' }],
  });
}

async function refused(p: Promise<unknown>, exitCode: number, ...patterns: RegExp[]): Promise<FcmError> {
  let thrown: unknown;
  try { await p; } catch (e) { thrown = e; }
  assert.ok(thrown instanceof FcmError, `expected an FcmError, got ${thrown instanceof Error ? thrown.stack : String(thrown)}`);
  assert.equal(thrown.exitCode, exitCode, thrown.message);
  assert.ok(!thrown.message.includes('\n'), 'one-line message');
  for (const re of patterns) assert.match(thrown.message, re);
  return thrown;
}

test('ONNX: an input of 2^32 elements is over the limit (exit 4), naming the input', async () => {
  const bytes = model({ name: 'g', node: [{ opType: 'Relu', input: ['x'], output: ['y'] }], input: [vi('x', [1, 1, 65536, 65536])], output: [{ name: 'y' }] });
  await refused(importOnnx(bytes), 4, /graph input 'x'/, /exceeds the limit of 2147483647/);
});

test('ONNX: an initializer whose element count passes 2^31 is refused before its data is looked at (exit 4)', async () => {
  const bytes = model({
    name: 'g', node: [{ opType: 'Add', input: ['x', 'big'], output: ['y'] }],
    initializer: [{ name: 'big', dataType: F, dims: [maxElements + 1], rawData: new Uint8Array(4) }],
    input: [vi('x', [1])], output: [{ name: 'y' }],
  });
  await refused(importOnnx(bytes), 4, /initializer 'big'/);
});

test('ONNX: negative and non-safe dims are invalid (exit 2)', async () => {
  const neg = model({ name: 'g', node: [{ opType: 'Add', input: ['x', 'c'], output: ['y'] }], initializer: [floats('c', [-1, 3], 3)], input: [vi('x', [1])], output: [{ name: 'y' }] });
  await refused(importOnnx(neg), 2, /initializer 'c'/, /negative dimension -1/);
  const huge = model({ name: 'g', node: [{ opType: 'Add', input: ['x', 'c'], output: ['y'] }], initializer: [{ name: 'c', dataType: F, dims: [2 ** 60], rawData: new Uint8Array(4) }], input: [vi('x', [1])], output: [{ name: 'y' }] });
  await refused(importOnnx(huge), 2, /initializer 'c'/, /safe range/);
  const negInput = model({ name: 'g', node: [{ opType: 'Relu', input: ['x'], output: ['y'] }], input: [vi('x', [1, -3])], output: [{ name: 'y' }] });
  await refused(importOnnx(negInput), 2, /graph input 'x'/, /negative/);
});

test('ONNX: a declared (value_info) shape past 2^31 elements is over the limit (exit 4)', async () => {
  const bytes = model({
    name: 'g', node: [{ opType: 'Relu', input: ['x'], output: ['t'] }, { opType: 'Relu', input: ['t'], output: ['y'] }],
    input: [vi('x', [1, 4])], valueInfo: [vi('t', [65536, 65536])], output: [{ name: 'y' }],
  });
  await refused(importOnnx(bytes), 4, /tensor 't'/);
});

test('ONNX: a tensor whose declared size exceeds its data or its external file is invalid (exit 2)', async () => {
  const short = model({ name: 'g', node: [{ opType: 'Add', input: ['x', 'c'], output: ['y'] }], initializer: [{ name: 'c', dataType: F, dims: [1000], rawData: new Uint8Array(40) }], input: [vi('x', [1000])], output: [{ name: 'y' }] });
  await refused(importOnnx(short), 2, /initializer 'c'/, /40 bytes of raw_data/, /4000 bytes/);
  const dir = mkdtempSync(join(tmpdir(), 'fcm-limits-'));
  try {
    writeFileSync(join(dir, 'w.bin'), new Uint8Array(64));
    const ext = (location: string, offset: string, length: string) => model({
      name: 'g', node: [{ opType: 'Add', input: ['x', 'c'], output: ['y'] }],
      initializer: [{ name: 'c', dataType: F, dims: [16], dataLocation: onnx.TensorProto.DataLocation.EXTERNAL, externalData: [{ key: 'location', value: location }, { key: 'offset', value: offset }, { key: 'length', value: length }] }],
      input: [vi('x', [16])], output: [{ name: 'y' }],
    });
    writeFileSync(join(dir, 'past.onnx'), ext('w.bin', '32', '64'));
    await refused(importOnnx(join(dir, 'past.onnx')), 2, /initializer 'c'/, /outside 'w.bin'/);
    writeFileSync(join(dir, 'dotdot.onnx'), ext('../w.bin', '0', '64'));
    await refused(importOnnx(join(dir, 'dotdot.onnx')), 2, /'\.\.'/);
    writeFileSync(join(dir, 'abs.onnx'), ext(join(dir, 'w.bin'), '0', '64'));
    await refused(importOnnx(join(dir, 'abs.onnx')), 2, /absolute path/);
    symlinkSync('/etc/hostname', join(dir, 'link.bin'));
    writeFileSync(join(dir, 'link.onnx'), ext('link.bin', '0', '64'));
    await refused(importOnnx(join(dir, 'link.onnx')), 2, /outside the folder|does not exist/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A Pad node carrying an attribute list of `count` ints. */
function hugeAttrModel(count: number): Uint8Array {
  return model({
    name: 'g', node: [{ name: 'pad0', opType: 'Transpose', input: ['x'], output: ['y'], attribute: [{ name: 'perm', type: AT.INTS, ints: new Array<number>(count).fill(1) }] }],
    input: [vi('x', [1, 4])], output: [{ name: 'y' }],
  });
}

test('ONNX: an attribute of 3 million ints is refused by the memory budget before decoding (exit 4)', async () => {
  const bytes = hugeAttrModel(3_000_000);
  // ~6 MB on disk, ~190 MB once protobufjs makes a Long per value: the estimate sees it from the wire format.
  assert.ok(bytes.length < 8e6);
  assert.ok(estimateDecodedBytes(bytes) > 150e6, `estimate ${estimateDecodedBytes(bytes)}`);
  await refused(importOnnx(bytes, { maxMemory: 64 * 2 ** 20 }), 4, /decoding the model/, /memory budget of 67108864/);
  // Under the default budget it decodes and the importer or shape inference refuses the list (no crash).
  await refused(loadModel(bytes, { source: 'huge.onnx' }), 2, /huge\.onnx/);
});

test('ONNX: the memory budget covers the file itself (--max-memory)', async () => {
  const bytes = model({ name: 'g', node: [{ opType: 'Add', input: ['x', 'c'], output: ['y'] }], initializer: [floats('c', [300_000])], input: [vi('x', [300_000])], output: [{ name: 'y' }] });
  await refused(importOnnx(bytes, { maxMemory: 2 ** 20 }), 4, /memory budget of 1048576/);
  const dir = mkdtempSync(join(tmpdir(), 'fcm-limits-'));
  try {
    writeFileSync(join(dir, 'm.onnx'), bytes);
    await refused(importOnnx(join(dir, 'm.onnx'), { maxMemory: 2 ** 20 }), 4, /over the memory budget of 1048576/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Protobuf wire format by hand: protobufjs' own encoder refuses to nest this deep, so hostile files need it. */
function varint(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) { out.push((v & 0x7f) | 0x80); v = Math.floor(v / 128); }
  out.push(v);
  return out;
}
function field(no: number, payload: Uint8Array | string): Uint8Array {
  const p = typeof payload === 'string' ? new TextEncoder().encode(payload) : payload;
  return cat(Uint8Array.from([...varint((no << 3) | 2), ...varint(p.length)]), p);
}
function cat(...parts: Uint8Array[]): Uint8Array {
  // Copied with set(), not spread: the 5,000-level model below is rebuilt once per level.
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

test('ONNX: subgraphs nested 5,000 deep are refused (exit 4), not a stack overflow', async () => {
  // GraphProto.node = 1, NodeProto.op_type = 4 / attribute = 5, AttributeProto.name = 1 / type = 20 / g = 6.
  let graph = field(1, cat(field(4, 'Relu'), field(1, 'x'), field(2, 'y')));
  for (let i = 0; i < 5000; i++) {
    const attr = cat(field(1, 'then_branch'), Uint8Array.from([...varint((20 << 3) | 0), 5]), field(6, graph));
    graph = field(1, cat(field(4, 'If'), field(1, 'c'), field(2, `y${i}`), field(5, attr)));
  }
  const bytes = cat(Uint8Array.from([...varint(1 << 3), 8]), field(8, Uint8Array.from([...varint(2 << 3), 17])), field(7, graph));
  assert.ok(bytes.length > 100_000);
  await refused(importOnnx(bytes, { source: 'deep.onnx' }), 4, /deep\.onnx/, /nested deeper than/);
});

test('ONNX: zero stride, dilation, group and kernel are refused naming the node (exit 2)', async () => {
  const cases: [onnx.AttributeProto.$Properties, RegExp][] = [
    [{ name: 'strides', type: AT.INTS, ints: [0, 1] }, /stride 0/],
    [{ name: 'dilations', type: AT.INTS, ints: [1, 0] }, /dilation 0/],
    [{ name: 'group', type: AT.INT, i: 0 }, /group 0/],
    [{ name: 'group', type: AT.INT, i: -2 }, /group -2/],
  ];
  for (const [attr, re] of cases) await refused(importOnnx(convModel([attr])), 2, /node 'conv0' \(Conv\)/, re);
  const zeroKernel = model({
    name: 'g', node: [{ name: 'conv0', opType: 'Conv', input: ['x', 'w'], output: ['y'], attribute: [{ name: 'kernel_shape', type: AT.INTS, ints: [0, 3] }] }],
    initializer: [floats('w', [4, 4, 1, 3])], input: [vi('x', [1, 4, 8, 8])], output: [{ name: 'y' }],
  });
  await refused(importOnnx(zeroKernel), 2, /node 'conv0'/, /kernel size 0/);
});

test('ONNX: a zero quantization scale is refused naming the node, through the whole load', async () => {
  const bytes = model({
    name: 'g',
    node: [{ name: 'q0', opType: 'QuantizeLinear', input: ['x', 's', 'z'], output: ['y'] }],
    initializer: [{ name: 's', dataType: F, dims: [], rawData: new Uint8Array(4) }, { name: 'z', dataType: onnx.TensorProto.DataType.UINT8, dims: [], rawData: new Uint8Array(1) }],
    input: [vi('x', [1, 4])], output: [{ name: 'y' }],
  }, 13);
  await refused(loadModel(bytes, { source: 'q.onnx' }), 2, /q\.onnx/, /'q0'/, /scale/);
});

// ---- TFLite --------------------------------------------------------------------------------------

/** input [1,8,8,4] -> CONV_2D or DEPTHWISE_CONV_2D with the given options -> output. */
function tfliteConv(kind: 'conv' | 'dw', options: ReturnType<typeof opt.conv>, channels = 4): Uint8Array {
  const b = new TfliteBuilder();
  const c = channels;
  const w = kind === 'conv'
    ? b.tensor({ name: 'w', type: TensorType.FLOAT32, shape: [c, 3, 3, c], data: bytesOf(new Float32Array(c * 9 * c)) })
    : b.tensor({ name: 'w', type: TensorType.FLOAT32, shape: [1, 3, 3, c], data: bytesOf(new Float32Array(9 * c)) });
  const x = b.tensor({ name: 'x', type: TensorType.FLOAT32, shape: [1, 8, 8, c] });
  const y = b.tensor({ name: 'y', type: TensorType.FLOAT32, shape: [1, 8, 8, c] });
  b.op(kind === 'conv' ? BuiltinOperator.CONV_2D : BuiltinOperator.DEPTHWISE_CONV_2D, [x, w], [y], options);
  b.inputs = [x];
  b.outputs = [y];
  return b.finish();
}

test('TFLite: zero stride and dilation are refused naming the operator (exit 2)', async () => {
  const A = ActivationFunctionType.NONE;
  await refused(importTflite(tfliteConv('conv', opt.conv(Padding.SAME, 0, A)), { source: 's.tflite' }), 2, /s\.tflite/, /conv_2d/i, /strides/);
  await refused(importTflite(tfliteConv('conv', opt.conv(Padding.SAME, 1, A, 0)), { source: 'd.tflite' }), 2, /dilations/);
  await refused(importTflite(tfliteConv('dw', opt.dw(Padding.SAME, 0, A)), { source: 'dw.tflite' }), 2, /depthwise/i, /strides/);
});

test('TFLite: a depthwise convolution over zero channels does not reach the planner with group 0', async () => {
  const bytes = tfliteConv('dw', opt.dw(Padding.SAME, 1, ActivationFunctionType.NONE, 0), 0);
  let thrown: unknown;
  try { await loadModel(bytes, { source: 'zero.tflite' }); } catch (e) { thrown = e; }
  assert.ok(thrown instanceof FcmError, `expected an FcmError, got ${thrown instanceof Error ? thrown.stack : String(thrown)}`);
  assert.match(thrown.message, /zero\.tflite/);
});

test('TFLite: a zero quantization scale is refused (exit 2)', async () => {
  const b = new TfliteBuilder();
  const x = b.tensor({ name: 'x', type: TensorType.INT8, shape: [1, 4], quant: { scale: [0], zeroPoint: [0] } });
  const y = b.tensor({ name: 'y', type: TensorType.INT8, shape: [1, 4], quant: { scale: [0.5], zeroPoint: [0] } });
  b.op(BuiltinOperator.RELU, [x], [y]);
  b.inputs = [x];
  b.outputs = [y];
  await refused(importTflite(b.finish(), { source: 'q.tflite' }), 2, /q\.tflite/, /scale 0/);
});

test('TFLite: a tensor whose shape passes the memory budget is over the limit (exit 4)', async () => {
  const b = new TfliteBuilder();
  const x = b.tensor({ name: 'x', type: TensorType.FLOAT32, shape: [1, 65536, 65536, 4] });
  const y = b.tensor({ name: 'y', type: TensorType.FLOAT32, shape: [1, 65536, 65536, 4] });
  b.op(BuiltinOperator.RELU, [x], [y]);
  b.inputs = [x];
  b.outputs = [y];
  await refused(importTflite(b.finish(), { source: 'big.tflite' }), 4, /big\.tflite/);
});

// ---- Planner inputs --------------------------------------------------------------------------------

test('hardware descriptions and DAGs: zero divisors are refused (exit 2)', () => {
  assert.throws(() => parseHwCfg('sms::0\nl1::128\nshmem::100\nwarp_size::32\n', 'z.cfg'), (e: unknown) => e instanceof FcmError && e.exitCode === 2 && /z\.cfg:1/.test(e.message));
  assert.throws(() => parseHwCfg('sms::4\nl1::128\nshmem::100\nwarp_size::0\n', 'z.cfg'), (e: unknown) => e instanceof FcmError && e.exitCode === 2 && /warp_size/.test(e.message));
  const layer = { id: 0, name: 'dw', parents: [], children: [], activation: '0', type: 'dw', ifms_shape: [8, 8, 8], ofms_shape: [8, 8, 8], weights_shape: [8, 3, 3], strides: 0 };
  assert.throws(() => validateDag([layer], 'z.json'), (e: unknown) => e instanceof FcmError && e.exitCode === 2 && /z\.json/.test(e.message));
});
