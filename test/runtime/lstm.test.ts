// ONNX LSTM on the float executor's host (src/runtime/lstm.ts) and Gather with constant indices on a computed
// tensor (kernels/gather.ts), against onnxruntime CPU on the same ONNX file: forward, reverse and bidirectional, with
// biases, initial states and peepholes, and the recurrent state picked apart by Gather as Silero VAD does.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeModel, onnx } from '../../converters/onnx/codec.js';
import { loadModel } from '../../src/graph/load.js';
import { createSession } from '../../src/pipeline/session.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { runOrt } from '../../src/cli/check.js';
import { mulberry32 } from '../../fixtures/rng.js';
import { FcmError } from '../../src/errors.js';

after(releaseGpu);

const F = onnx.TensorProto.DataType.FLOAT, I64 = onnx.TensorProto.DataType.INT64;
const AT = onnx.AttributeProto.AttributeType;
const vi = (name: string, dims: number[]): onnx.ValueInfoProto.$Properties => ({ name, type: { tensorType: { elemType: F, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });
const f32 = (name: string, v: number[], dims: number[]) => ({ name, dims, dataType: F, rawData: new Uint8Array(new Float32Array(v).buffer) });
const i64 = (name: string, v: number[], dims: number[]) => ({ name, dims, dataType: I64, rawData: new Uint8Array(new BigInt64Array(v.map(BigInt)).buffer) });

const T = 3, B = 2, I = 5, H = 4;

/** x [T, B, I], h0/c0 [D, B, H] inputs -> LSTM -> Y, Y_h, Y_c, and Gather(Y_h, index D - 1, axis 0). */
function lstmModel(direction: 'forward' | 'reverse' | 'bidirectional', extra: onnx.AttributeProto.$Properties[] = [], seed = 3): Uint8Array {
  const D = direction === 'bidirectional' ? 2 : 1;
  const r = mulberry32(seed);
  const vals = (n: number) => Array.from({ length: n }, () => (r() - 0.5) * 1.2);
  return encodeModel({
    irVersion: 8, opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'g',
      input: [vi('x', [T, B, I]), vi('h0', [D, B, H]), vi('c0', [D, B, H])],
      output: [vi('y', [T, D, B, H]), vi('yh', [D, B, H]), vi('yc', [D, B, H]), vi('last', [B, H])],
      initializer: [f32('w', vals(D * 4 * H * I), [D, 4 * H, I]), f32('r', vals(D * 4 * H * H), [D, 4 * H, H]), f32('b', vals(D * 8 * H), [D, 8 * H]),
        f32('p', vals(D * 3 * H), [D, 3 * H]), i64('k', [D - 1], [])],
      node: [
        { name: 'lstm', opType: 'LSTM', input: ['x', 'w', 'r', 'b', '', 'h0', 'c0', 'p'], output: ['y', 'yh', 'yc'],
          attribute: [{ name: 'hidden_size', type: AT.INT, i: H }, { name: 'direction', type: AT.STRING, s: new TextEncoder().encode(direction) }, ...extra] },
        { name: 'pick', opType: 'Gather', input: ['yh', 'k'], output: ['last'], attribute: [{ name: 'axis', type: AT.INT, i: 0 }] },
      ],
    },
  });
}

for (const direction of ['forward', 'reverse', 'bidirectional'] as const) {
  test(`LSTM ${direction} with biases, initial states and peepholes, and a Gather of its state: as onnxruntime`, async () => {
    const bytes = lstmModel(direction);
    const g = await loadModel(bytes, { source: `lstm-${direction}.onnx` });
    assert.deepEqual(g.outputs.map((y) => g.tensors.get(y)!.shape), [[T, direction === 'bidirectional' ? 2 : 1, B, H], ...[0, 1].map(() => [direction === 'bidirectional' ? 2 : 1, B, H]), [B, H]]);
    const r = mulberry32(11);
    const feeds = Object.fromEntries(g.inputs.map((x) => {
      const shape = g.tensors.get(x)!.shape;
      return [x, { data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (r() - 0.5) * 2), shape }];
    }));
    const ref = await runOrt(bytes, feeds, g.outputs, g.source);
    const s = await createSession(g, { plan: 'unfused' });
    try {
      const out = await s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, v.data])));
      for (const y of g.outputs) {
        const want = ref.get(y)!, got = out[y].data;
        assert.equal(got.length, want.length, y);
        // Float64 sums here, float32 in onnxruntime's MLAS: a few float32 ulps of values of magnitude <= 1.
        for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 2e-6, `${y}[${i}]: ${got[i]} vs ${want[i]}`);
      }
    } finally {
      s.dispose();
    }
  });
}

test('LSTM with clip or coupled gates: refused naming the node (exit 3), not computed wrongly', async () => {
  for (const extra of [[{ name: 'clip', type: AT.FLOAT, f: 3 }], [{ name: 'input_forget', type: AT.INT, i: 1 }]]) {
    const g = await loadModel(lstmModel('forward', extra), { source: 'lstm-bad.onnx' });
    await assert.rejects(createSession(g, { plan: 'unfused' }),
      (e: unknown) => e instanceof FcmError && e.kind === 'unsupported' && /'lstm'/.test(e.message) && /clip|input_forget/.test(e.message));
  }
});
