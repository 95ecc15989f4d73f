// A quantized (int8 TFLite) model written as ONNX in QDQ form (converters/onnx/export-qdq.ts): onnxruntime runs
// it, and its outputs match fcm-opt's integer executor. One layer at a time the two differ by rounding only
// (onnxruntime requantizes with a float multiplier and rounds half to even; TFLite's integer arithmetic, which
// fcm-opt follows bit for bit, uses a 31-bit fixed-point multiplier and rounds half away from zero): at most 1 LSB
// of the output scale. Through several layers those 1-LSB differences are amplified by the following layers'
// weights, so whole networks are checked for top-1 agreement, and the fused modules' function bodies for exact
// agreement with the same graph written unfused.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ActivationFunctionType as A, BuiltinOperator, NetWriter, Padding, TensorType, buildMobileNetStyle, opt } from '../../fixtures/tflite-builder.js';
import { loadModel } from '../../src/graph/load.js';
import { qdqGraph } from '../../converters/onnx/export-qdq.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { decodeModel } from '../../converters/onnx/codec.js';
import { createInt8Session } from '../../src/pipeline/session.js';
import { prepareInt8Graph } from '../../src/pipeline/pipeline.js';
import { loadHw } from '../../src/planner/hw.js';
import { seededInput } from '../../src/runtime/compare.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { fcmDomain, type Graph } from '../../src/graph/ir.js';
import { fcmOpt } from '../cli/spawn-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'fcm-qdq-'));
after(async () => { rmSync(dir, { recursive: true, force: true }); await releaseGpu(); });

/** float input [1, h, w, c] -> QUANTIZE -> one layer (int8 output: a graph output as it is, no DEQUANTIZE). */
function oneLayer(kind: string, seed: number): Uint8Array {
  const net = new NetWriter(seed, true, { scale: [0.05], zeroPoint: [-3] }, true);
  const flat = kind === 'fully_connected' || kind === 'softmax';
  const input = net.activation('input', flat ? [1, 24] : [1, 9, 9, 8], undefined, TensorType.FLOAT32);
  const x = net.unary(BuiltinOperator.QUANTIZE, 'x', input, { scale: [0.02], zeroPoint: [1] });
  let y: string;
  switch (kind) {
    case 'conv 3x3/2 relu6': y = net.conv('conv', x, 12, 3, 2, Padding.SAME, A.RELU6); break;
    case 'depthwise 3x3 relu6': y = net.dw('dw', x, 3, 1, Padding.SAME, A.RELU6); break;
    case 'pointwise': y = net.conv('pw', x, 16, 1, 1, Padding.SAME, A.NONE); break;
    case 'pad + depthwise 3x3/2 valid': y = net.dw('dw', net.pad('pad', x, 0, 1, 0, 1), 3, 2, Padding.VALID, A.RELU); break;
    case 'add': {
      const x2 = net.unary(BuiltinOperator.QUANTIZE, 'x2', input, { scale: [0.03], zeroPoint: [-5] });
      net.activation('add', [...net.shapeOf(x)], { scale: [0.04], zeroPoint: [2] });
      y = net.op(BuiltinOperator.ADD, [x, x2], 'add', opt.add());
      break;
    }
    case 'mean': y = net.mean('mean', x, true, { scale: [0.01], zeroPoint: [-7] }); break;
    case 'hard_swish': y = net.unary(BuiltinOperator.HARD_SWISH, 'hswish', x, { scale: [0.015], zeroPoint: [-100] }); break;
    case 'fully_connected': y = net.fullyConnected('fc', x, 10, true, { scale: [0.1], zeroPoint: [0] }); break;
    case 'softmax': y = net.unary(BuiltinOperator.SOFTMAX, 'probs', x, { scale: [1 / 256], zeroPoint: [-128] }, opt.softmax()); break;
    default: throw new Error(kind);
  }
  return net.finish([input], [y]);
}

async function ortRun(bytes: Uint8Array, g: Graph, feeds: Record<string, Float32Array>): Promise<Record<string, ort.Tensor>> {
  const s = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  try {
    return await s.run(Object.fromEntries(g.inputs.map((x) => [x, new ort.Tensor('float32', feeds[x], g.tensors.get(x)!.shape)])));
  } finally {
    await s.release();
  }
}

/** onnxruntime's output in real values: an 8-bit output dequantized with its tensor's quantization. */
function real(g: Graph, y: string, t: ort.Tensor): Float64Array {
  const q = g.tensors.get(y)!.quant;
  const d = t.data as ArrayLike<number>;
  return Float64Array.from(d, (v) => (q ? q.scale[0] * (v - (q.zeroPoint[0] ?? 0)) : v));
}

const kinds = ['conv 3x3/2 relu6', 'depthwise 3x3 relu6', 'pointwise', 'pad + depthwise 3x3/2 valid', 'add', 'mean', 'hard_swish', 'fully_connected', 'softmax'];

test('one quantized layer of each kind: onnxruntime on the QDQ file within 1 LSB of fcm-opt\'s integer executor', async (t) => {
  for (const kind of kinds) {
    const g = await loadModel(oneLayer(kind, 11), { source: `${kind}.tflite` });
    const q = qdqGraph(g);
    // The export has the Q/DQ nodes and keeps the output 8-bit.
    assert.ok(q.nodes.some((n) => n.op === 'QuantizeLinear') && q.nodes.some((n) => n.op === 'DequantizeLinear'), kind);
    const bytes = exportOnnx(q);
    const y = g.outputs[0];
    const out = decodeModel(bytes, kind).graph!.output![0];
    assert.equal(out.type!.tensorType!.elemType, 3, `${kind}: the output stays int8 (ONNX INT8 = 3)`);
    const session = await createInt8Session(g, { plan: 'unfused' });
    try {
      let lsbs = 0, nonzero = 0;
      for (const seed of [1, 2, 3]) {
        const x = g.inputs[0];
        const feeds = { [x]: seededInput(g.tensors.get(x)!.shape.reduce((a, b) => a * b, 1), seed) };
        const ref = real(g, y, (await ortRun(bytes, g, feeds))[y]);
        const ours = (await session.run(feeds))[y].data;
        const scale = g.tensors.get(y)!.quant!.scale[0];
        for (let i = 0; i < ref.length; i++) {
          const d = Math.abs(ref[i] - ours[i]) / scale;
          // 1 LSB, plus float32 rounding of the real values compared (relative 1e-6 of |value| / scale < 1e-3 LSB here).
          assert.ok(d <= 1 + 1e-3, `${kind}, seed ${seed}, element ${i}: ${ref[i]} vs ${ours[i]} (${d.toFixed(3)} LSB)`);
          lsbs = Math.max(lsbs, d);
          if (ours[i] !== 0) nonzero++;
        }
      }
      // The layer's output is not all zeros (the comparison would say little).
      assert.ok(nonzero > 0, `${kind}: outputs are all zero`);
      t.diagnostic(`${kind}: largest difference ${lsbs.toFixed(3)} LSB`);
    } finally {
      session.dispose();
    }
  }
});

test('fcm-opt MODEL.tflite -o OUT.onnx on an int8 model: QDQ with fused modules; onnxruntime runs it as the unfused QDQ graph, top-1 as fcm-opt', async () => {
  assert.ok(existsSync(resolve('dist/src/cli/main.js')), 'bin/fcm-opt.js runs the built CLI: npm run build first');
  for (const [name, bytes] of [['mnet16', buildMobileNetStyle({ int8: true })], ['mnet24', buildMobileNetStyle({ int8: true, size: 24, seed: 5, classes: 12 })]] as const) {
    const model = join(dir, `${name}.tflite`), out = join(dir, `${name}.onnx`), planFile = join(dir, `${name}.plan.json`);
    writeFileSync(model, bytes);
    const r = await fcmOpt([model, '--hw', 'h100', '-o', out, '--plan', planFile]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`wrote .*${name}\\.onnx .*[1-9]\\d* FCMs?\\)`));
    const file = readFileSync(out);
    const proto = decodeModel(file, out);
    const fused = proto.graph!.node!.filter((n) => n.domain === fcmDomain);
    assert.ok(fused.length > 0, 'fused modules written');
    assert.ok(fused.every((n) => /_qdq$/.test(n.overload ?? '') && n.input!.length === 8), 'each takes the intermediate\'s scale and zero point');
    assert.ok(proto.functions!.every((f) => f.node!.some((b) => b.opType === 'QuantizeLinear')), 'function bodies requantize the intermediate');

    const g = await loadModel(bytes, { source: `${name}.tflite` });
    const plan = JSON.parse(readFileSync(planFile, 'utf8'));
    // The same integer graph without fused modules, written in QDQ form: what the fused file must compute.
    const unfused = exportOnnx(qdqGraph(prepareInt8Graph(g, 'unfused', () => loadHw('h100'))));
    const session = await createInt8Session(g, { plan });
    try {
      for (const seed of [0, 1, 2, 3]) {
        const x = g.inputs[0];
        const feeds = { [x]: seededInput(g.tensors.get(x)!.shape.reduce((a, b) => a * b, 1), seed) };
        const y = g.outputs[0];
        const a = (await ortRun(file, g, feeds))[y].data as Float32Array;
        const b = (await ortRun(unfused, g, feeds))[y].data as Float32Array;
        // onnxruntime inlines the functions: the fused file is the unfused graph, the same ops in the same order.
        assert.deepEqual(Array.from(a), Array.from(b), `${name} seed ${seed}: fused file vs unfused QDQ`);
        const ours = (await session.run(feeds))[y].data;
        const top = (v: ArrayLike<number>) => Array.from(v).indexOf(Math.max(...Array.from(v)));
        assert.equal(top(a), top(ours), `${name} seed ${seed}: top-1 (onnxruntime ${Array.from(a).join(',')}; fcm-opt ${Array.from(ours).join(',')})`);
      }
    } finally {
      session.dispose();
    }
  }
});
