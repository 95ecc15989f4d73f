// The executor's host path (src/runtime/transfer.ts): every upload path gives the same outputs as queue.writeBuffer,
// bit for bit, run after run with distinct inputs (a staging buffer written in the wrong place, or copied before it
// was written, would give a previous run's output); runs in flight give the outputs of sequential runs; run()
// creates no GPU objects on the ring path; read-back copies only the outputs asked for; stats split the host time.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { fixtureModels } from '../../fixtures/models.js';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { buildMobileNetStyle } from '../../fixtures/tflite-builder.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import { createInt8Session, createSession } from '../../src/pipeline/session.js';
import { type Session, executorOf } from '../../src/runtime/executor.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { seededInput } from '../../src/runtime/compare.js';
import { uploadPaths } from '../../src/runtime/transfer.js';
import { FcmError } from '../../src/errors.js';

after(releaseGpu);

const inputs = Array.from({ length: 6 }, (_, i) => seededInput(3 * 32 * 32, 40 + i));
const model = () => loadModel(exportOnnx(fixtureModels.mobilenetv2_stack()), { source: 'mobilenetv2_stack' });

async function sequential(s: Session, xs: Float32Array[]): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const x of xs) out.push((await s.run({ input: x }))[s.outputNames[0]].data);
  return out;
}

test('every upload path gives the outputs of writeBuffer, run after run and with runs in flight', async () => {
  const g = await model();
  const ref = await createSession(g, { plan: 'unfused', upload: 'write-buffer', maxInFlight: 1 });
  let expected: Float32Array[];
  try {
    expected = await sequential(ref, inputs);
    assert.notDeepEqual(expected[0], expected[1]);
  } finally {
    ref.dispose();
  }
  for (const upload of uploadPaths) {
    for (const maxInFlight of [1, 3]) {
      const s = await createSession(g, { plan: 'unfused', upload, maxInFlight });
      try {
        assert.equal(s.stats().upload, upload);
        assert.equal(s.stats().maxInFlight, maxInFlight);
        const seq = await sequential(s, inputs);
        seq.forEach((y, i) => assert.deepEqual(y, expected[i], `${upload}, in flight ${maxInFlight}: sequential run ${i}`));
        const before = s.stats().buffersCreated;
        // More runs than read-back sets and ring buffers: later runs wait for free ones.
        const conc = await Promise.all([...inputs, ...inputs].map((x) => s.run({ input: x })));
        conc.forEach((r, i) => assert.deepEqual(r[s.outputNames[0]].data, expected[i % inputs.length], `${upload}, in flight ${maxInFlight}: concurrent run ${i}`));
        // Results are copies: later runs leave them alone.
        assert.deepEqual(conc[0][s.outputNames[0]].data, expected[0]);
        assert.equal(s.stats().buffersCreated, before, 'run() creates no session buffers');
        const h = s.hostTimes();
        assert.equal(h.runs, 3 * inputs.length);
        for (const k of ['uploadMs', 'encodeMs', 'submitMs', 'waitMs', 'readMs'] as const) assert.ok(h[k] >= 0 && Number.isFinite(h[k]), `${k} = ${h[k]}`);
        assert.ok(h.waitMs > 0, 'runs waited for their outputs');
      } finally {
        s.dispose();
      }
    }
  }
});

test('a failed run does not leave a ring buffer or read-back set taken', async () => {
  const s = await createSession(await model(), { plan: 'unfused', upload: 'staging-ring', maxInFlight: 1 });
  try {
    const good = (await s.run({ input: inputs[0] }))[s.outputNames[0]].data;
    await assert.rejects(s.run({ input: inputs[1].subarray(1) }), FcmError);
    // A destroyed GPU feed fails on the GPU (exit 5); a run fed GPU buffers takes no staging buffer.
    const G = GPUBufferUsage;
    const ctxDevice = (await import('../../src/runtime/device.js')).acquireGpu;
    const dev = (await ctxDevice()).device;
    const b = dev.createBuffer({ size: 4 * inputs[0].length, usage: G.COPY_SRC | G.COPY_DST });
    b.destroy();
    await assert.rejects(s.run({ input: b }), (e: unknown) => e instanceof FcmError && e.kind === 'gpu');
    // A destroyed output buffer fails on the GPU (exit 5) after the host feed's staging buffer was taken.
    const y = s.outputNames[0];
    const o = dev.createBuffer({ size: good.byteLength, usage: G.STORAGE | G.COPY_SRC | G.COPY_DST });
    o.destroy();
    await assert.rejects(s.run({ input: inputs[1] }, { outputLocation: 'gpu', outputBuffers: { [y]: o } }), (e: unknown) => e instanceof FcmError && e.kind === 'gpu');
    for (let i = 0; i < 4; i++) assert.deepEqual((await s.run({ input: inputs[0] }))[s.outputNames[0]].data, good);
  } finally {
    s.dispose();
  }
});

test('a run fed GPU buffers takes no staging memory (no ring buffer re-mapped); host-fed runs around it read their own feeds', async () => {
  const g = await model();
  const ref = await createSession(g, { plan: 'unfused', upload: 'write-buffer', maxInFlight: 1 });
  const s = await createSession(g, { plan: 'unfused', upload: 'staging-ring', maxInFlight: 3 });
  const G = GPUBufferUsage;
  const dev = executorOf(s).ctx.device;
  const gin = dev.createBuffer({ size: 4 * inputs[0].length, usage: G.STORAGE | G.COPY_SRC | G.COPY_DST });
  dev.queue.writeBuffer(gin, 0, inputs[1]);
  const proto = GPUBuffer.prototype;
  const mapAsync = proto.mapAsync;
  let ringMaps = 0;
  proto.mapAsync = function (this: GPUBuffer, ...args: Parameters<GPUBuffer['mapAsync']>) {
    if (this.label.startsWith('upload ring')) ringMaps++;
    return mapAsync.apply(this, args);
  };
  try {
    const expected = await sequential(ref, inputs.slice(0, 4));
    const y = s.outputNames[0];
    ringMaps = 0;
    assert.deepEqual((await s.run({ input: inputs[0] }))[y].data, expected[0]);
    assert.equal(ringMaps, 1, 'a host-fed run maps its ring buffer again after its submit');
    ringMaps = 0;
    assert.deepEqual((await s.run({ input: gin }))[y].data, expected[1]);
    assert.equal(ringMaps, 0, 'a run fed GPU buffers takes no ring buffer');
    // In flight together, host-fed and GPU-fed runs in turn.
    const many = await Promise.all([s.run({ input: inputs[2] }), s.run({ input: gin }), s.run({ input: inputs[3] }), s.run({ input: gin })]);
    assert.deepEqual(many.map((r) => r[y].data), [expected[2], expected[1], expected[3], expected[1]]);
  } finally {
    proto.mapAsync = mapAsync;
    gin.destroy();
    ref.dispose();
    s.dispose();
  }
});

test('run options: only the outputs asked for come back; bad options are refused', async () => {
  // Two outputs: a feature map and a pooled vector.
  const b = new GraphBuilder('two_outputs', 11);
  const x = b.input('input', [1, 3, 16, 16]);
  const f = b.relu(b.conv(x, { filters: 8, kernel: 3, stride: 2, bias: true }));
  const p = b.globalAveragePool(f);
  const g = await loadModel(exportOnnx(b.build([f, p])), { source: 'two_outputs' });
  const s = await createSession(g, { plan: 'unfused' });
  try {
    const xin = seededInput(3 * 16 * 16, 3);
    const all = await s.run({ input: xin });
    assert.deepEqual(Object.keys(all).sort(), [...s.outputNames].sort());
    const [yf, yp] = s.outputNames;
    const one = await s.run({ input: xin }, { outputs: [yp] });
    assert.deepEqual(Object.keys(one), [yp]);
    assert.deepEqual(one[yp].data, all[yp].data);
    const other = await s.run({ input: xin }, { outputs: [yf] });
    assert.deepEqual(Object.keys(other), [yf]);
    assert.deepEqual(other[yf].data, all[yf].data);
    const both = await s.run({ input: xin }, { outputs: [yp, yf] });
    assert.deepEqual(both[yf].data, all[yf].data);
    assert.deepEqual(both[yp].data, all[yp].data);
    // Into the caller's arrays, reused: the result's data is that array, refilled by the next run.
    const mine = new Float32Array(all[yp].data.length);
    const r1 = await s.run({ input: xin }, { outputs: [yp], outputArrays: { [yp]: mine } });
    assert.equal(r1[yp].data, mine);
    assert.deepEqual(mine, all[yp].data);
    const x2 = seededInput(3 * 16 * 16, 4);
    const other2 = (await s.run({ input: x2 }))[yp].data;
    assert.notDeepEqual(other2, all[yp].data);
    await s.run({ input: x2 }, { outputArrays: { [yp]: mine } });
    assert.deepEqual(mine, other2);
    await assert.rejects(s.run({ input: xin }, { outputArrays: { [yp]: new Float32Array(3) } }), /must be a Float32Array of 8 values/);
    await assert.rejects(s.run({ input: xin }, { outputs: [yf], outputArrays: { [yp]: mine } }), /not an output asked for/);
    await assert.rejects(s.run({ input: xin }, { outputLocation: 'gpu', outputArrays: { [yp]: mine } }), /outputArrays needs/);
    await assert.rejects(s.run({ input: xin }, { outputs: ['nope'] }), /'nope' is not an output/);
    await assert.rejects(s.run({ input: xin }, { outputs: [] }), /non-empty array/);
    await assert.rejects(s.run({ input: xin }, { outputs: [yp, yp] }), /twice/);
    await assert.rejects(s.run({ input: xin }, { outputLocation: 'disk' as 'host' }), /outputLocation/);
    await assert.rejects(s.run({ input: xin }, { outputBuffers: {} }), /outputBuffers needs/);
  } finally {
    s.dispose();
  }
});

test('bad transfer options are refused when the session is made', async () => {
  const g = await model();
  await assert.rejects(createSession(g, { plan: 'unfused', upload: 'pigeon' as 'write-buffer' }), /upload path must be one of/);
  await assert.rejects(createSession(g, { plan: 'unfused', maxInFlight: 0 }), /maxInFlight must be a whole number >= 1/);
});

test('integer sessions with host steps: runs in flight equal sequential runs on every upload path', async () => {
  const g = await loadModel(buildMobileNetStyle({ int8: true, size: 24, seed: 5, classes: 12 }), { source: 'mnet24.tflite' });
  const n = g.tensors.get(g.inputs[0])!.shape.reduce((a, c) => a * c, 1);
  const xs = Array.from({ length: 4 }, (_, i) => Float32Array.from(seededInput(n, 70 + i), (v) => 3 * v));
  let expected: Float32Array[] | undefined;
  for (const upload of uploadPaths) {
    const s = await createInt8Session(g, { plan: 'unfused', upload, maxInFlight: 2 });
    try {
      assert.equal(s.path, 'int8');
      assert.ok(s.stats().hostNodes.length > 0, 'the fixture has host steps between dispatches');
      const out = (r: Awaited<ReturnType<Session['run']>>) => r[s.outputNames[0]].data;
      const seq: Float32Array[] = [];
      for (const x of xs) seq.push(out(await s.run({ [g.inputs[0]]: x })));
      expected ??= seq;
      seq.forEach((y, i) => assert.deepEqual(y, expected![i], `${upload}: run ${i}`));
      const conc = await Promise.all([...xs, ...xs].map((x) => s.run({ [g.inputs[0]]: x })));
      conc.forEach((r, i) => assert.deepEqual(out(r), expected![i % xs.length], `${upload}: concurrent run ${i}`));
    } finally {
      s.dispose();
    }
  }
});
