import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { exportOnnx } from '../../converters/onnx/export.js';
import { importOnnx } from '../../converters/onnx/import.js';
import { GraphBuilder, mulberry32 } from '../../fixtures/ir-builder.js';
import { fixtureModels, mobileNetV2Slim } from '../../fixtures/models.js';
import { fcmDomain, newAttrs, type Graph } from '../../src/graph/ir.js';
import { assertFcm } from './onnx-helpers.js';

async function runOrt(bytes: Uint8Array, g: Graph, seed = 1): Promise<ort.InferenceSession.OnnxValueMapType> {
  const s = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  const feeds: Record<string, ort.Tensor> = {};
  const r = mulberry32(seed);
  for (const x of g.inputs) {
    const t = g.tensors.get(x)!;
    feeds[x] = new ort.Tensor('float32', Float32Array.from({ length: t.shape.reduce((a, b) => a * b, 1) }, () => r() * 2 - 1), t.shape);
  }
  return s.run(feeds);
}

test('every fixture loads in onnxruntime at opsets 10, 13, 17 with the output shapes of the graph', async () => {
  for (const [name, make] of Object.entries(fixtureModels)) {
    const g = make();
    let ref: Float32Array | null = null;
    for (const opset of [10, 13, 17]) {
      const out = await runOrt(exportOnnx(g, { opset }), g);
      for (const y of g.outputs) assert.deepEqual([...out[y].dims], g.tensors.get(y)!.shape, `${name} opset ${opset} ${y}`);
      const d = out[g.outputs[0]].data as Float32Array;
      assert.ok(d.every(Number.isFinite));
      // Same model in every opset's spelling: same numbers (same kernels in onnxruntime, so exact).
      if (ref) assert.deepEqual(d, ref, `${name} opset ${opset}`);
      ref = d;
    }
  }
});

test('import then export computes the same outputs in onnxruntime', async () => {
  for (const [name, make] of Object.entries(fixtureModels)) {
    const bytes = exportOnnx(make());
    const g = await importOnnx(bytes);
    const a = await runOrt(bytes, g);
    const b = await runOrt(exportOnnx(g), g);
    assert.deepEqual(b[g.outputs[0]].data, a[g.outputs[0]].data, name);
  }
});

test('Conv epilogues (activation, residual) export as the ONNX nodes they stand for', async () => {
  const b = new GraphBuilder('epilogue', 9);
  const x = b.input('x', [1, 8, 6, 6]);
  const c1 = b.conv(x, { filters: 8, kernel: 3, bias: true });
  const plain = b.add(b.relu6(c1), x);
  const g = b.build([plain]);
  const ref = await runOrt(exportOnnx(g), g);
  // The same computation as one Conv carrying activation Clip(0, 6) and the residual input.
  const conv = g.nodes[0];
  const fused: Graph = {
    ...g, nodes: [{ ...conv, inputs: [...conv.inputs, x], outputs: [plain], attrs: newAttrs({ ...conv.attrs, activation: 'Clip', activationParams: [0, 6] }) }],
  };
  for (const opset of [10, 17]) {
    const out = await runOrt(exportOnnx(fused, { opset }), fused);
    assert.deepEqual(out[plain].data, ref[plain].data, `opset ${opset}`);
  }
  const hs = new GraphBuilder('hs', 3);
  const hx = hs.input('x', [1, 4, 5, 5]);
  const spelled = hs.build([hs.hardSwishSpelled(hx)]);
  const want = await runOrt(exportOnnx(spelled), spelled);
  const one: Graph = { ...spelled, nodes: [{ name: 'hs', op: 'HardSwish', domain: '', inputs: [hx], outputs: spelled.outputs, attrs: newAttrs() }] };
  for (const opset of [13, 17]) {
    const got = (await runOrt(exportOnnx(one, { opset }), one))[spelled.outputs[0]].data as Float32Array;
    const w = want[spelled.outputs[0]].data as Float32Array;
    // HardSigmoid(x; 1/6, 1/2) * x vs x * Clip(x+3)/6: float32 rounding differs by a few ulps.
    for (let i = 0; i < w.length; i++) assert.ok(Math.abs(got[i] - w[i]) <= 1e-6 * Math.max(1, Math.abs(w[i])), `opset ${opset} [${i}]`);
  }
});

test('fused modules are refused for now (exit 3)', () => {
  const g = fixtureModels.squeeze_excite();
  g.nodes[0] = { ...g.nodes[0], op: 'FusedPwDw', domain: fcmDomain };
  assertFcm(() => exportOnnx(g), 3, /FusedPwDw/);
});

test('the shipped model (models/) is what fixtures/make-bundled.ts writes, under 1.5 MB, with a 100-class head', async () => {
  const bytes = readFileSync(join(process.cwd(), 'models/mobilenetv2-x0.35-c100.onnx'));
  const g = mobileNetV2Slim(0.35, 100);
  assert.ok(Buffer.from(exportOnnx(g)).equals(bytes), 'deterministic and up to date (run npx tsx fixtures/make-bundled.ts)');
  assert.ok(bytes.length < 1.5e6, `${bytes.length} bytes`);
  assert.deepEqual([...(await runOrt(bytes, g))[g.outputs[0]].dims], [1, 100]);
});

test('the bundled model is what fixtures/make-bundled.ts writes, and onnxruntime runs it', async () => {
  const path = join(process.cwd(), 'fixtures/bundled/mobilenetv2-slim.onnx');
  const bytes = readFileSync(path);
  const g = mobileNetV2Slim();
  assert.ok(Buffer.from(exportOnnx(g)).equals(bytes), 'deterministic and up to date (run npx tsx fixtures/make-bundled.ts)');
  assert.ok(bytes.length < 4e6);
  const out = await runOrt(bytes, g);
  assert.deepEqual([...out[g.outputs[0]].dims], [1, 1000]);
  const imported = await importOnnx(path);
  assert.equal(imported.nodes.filter((n) => n.op === 'Conv' && n.attrs.group !== 1).length, 17, 'MobileNetV2 has 17 depthwise convs');
});
