// GPU-resident inputs and outputs (run()'s GPUBuffer feeds and outputLocation 'gpu'): two sessions chained on the
// GPU, the first one's output fed to the second as a buffer with no host round trip, give exactly the outputs of the
// same two sessions chained through host arrays (same kernels, same values: bit for bit); outputs copied into the
// caller's buffers; what is refused.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { fixtureModels } from '../../fixtures/models.js';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import { createInt8Session, createSession } from '../../src/pipeline/session.js';
import { acquireGpu, releaseGpu } from '../../src/runtime/device.js';
import { seededInput } from '../../src/runtime/compare.js';
import { buildMobileNetStyle } from '../../fixtures/tflite-builder.js';

after(releaseGpu);

/** A second model reading the first one's [1, 24, 8, 8] output: PW, DW, PW, pool, head. */
function tail() {
  const b = new GraphBuilder('tail', 21);
  const x = b.input('features', [1, 24, 8, 8]);
  let y = b.relu6(b.batchNorm(b.conv(x, { filters: 48, kernel: 1 })));
  y = b.relu6(b.batchNorm(b.conv(y, { filters: 48, kernel: 3, stride: 2, group: 48 })));
  y = b.batchNorm(b.conv(y, { filters: 32, kernel: 1 }));
  return b.build([b.gemm(b.flatten(b.globalAveragePool(y)), 10)]);
}

async function readBuffer(buffer: GPUBuffer, bytes: number): Promise<Float32Array> {
  const d = (await acquireGpu()).device;
  const G = GPUBufferUsage;
  const r = d.createBuffer({ size: bytes, usage: G.MAP_READ | G.COPY_DST });
  const enc = d.createCommandEncoder();
  enc.copyBufferToBuffer(buffer, 0, r, 0, bytes);
  d.queue.submit([enc.finish()]);
  await r.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(r.getMappedRange().slice(0));
  r.destroy();
  return out;
}

test('two sessions chained on the GPU equal the same chain through host arrays', async () => {
  const head = await createSession(await loadModel(exportOnnx(fixtureModels.mobilenetv2_stack()), { source: 'head' }), { plan: 'auto', hw: 'rtxa4000' });
  const next = await createSession(await loadModel(exportOnnx(tail()), { source: 'tail' }), { plan: 'auto', hw: 'rtxa4000' });
  try {
    const xs = [seededInput(3 * 32 * 32, 5), seededInput(3 * 32 * 32, 6)];
    const host: Float32Array[] = [];
    for (const x of xs) {
      const mid = (await head.run({ input: x }))[head.outputNames[0]];
      assert.deepEqual(mid.shape, [1, 24, 8, 8]);
      host.push((await next.run({ features: mid.data }))[next.outputNames[0]].data);
    }
    assert.notDeepEqual(host[0], host[1]);
    // Whole chain on the GPU, the second session's output left there too; both runs in flight at once.
    const chained = await Promise.all(xs.map(async (x) => {
      const mid = (await head.run({ input: x }, { outputLocation: 'gpu' }))[head.outputNames[0]];
      assert.deepEqual(mid.shape, [1, 24, 8, 8]);
      assert.equal(mid.byteLength, 4 * 24 * 8 * 8);
      const out = (await next.run({ features: mid.buffer }, { outputLocation: 'gpu' }))[next.outputNames[0]];
      // The caller owns the buffers: destroying the feed after the run that reads it was submitted is allowed.
      mid.buffer.destroy();
      const v = await readBuffer(out.buffer, out.byteLength);
      out.buffer.destroy();
      return v;
    }));
    chained.forEach((v, i) => assert.deepEqual(v, host[i], `chain ${i}`));
    // The middle on the GPU, the end read back to the host.
    const mid = (await head.run({ input: xs[1] }, { outputLocation: 'gpu' }))[head.outputNames[0]];
    assert.deepEqual((await next.run({ features: mid.buffer }))[next.outputNames[0]].data, host[1]);
    // Into the caller's own buffer, reused: run 0 then run 1 into the same buffer.
    const G = GPUBufferUsage;
    const d = (await acquireGpu()).device;
    const mine = d.createBuffer({ size: 4 * 24 * 8 * 8 + 64, usage: G.STORAGE | G.COPY_SRC | G.COPY_DST });
    for (const i of [0, 1]) {
      const r = await head.run({ input: xs[i] }, { outputLocation: 'gpu', outputBuffers: { [head.outputNames[0]]: mine } });
      assert.equal(r[head.outputNames[0]].buffer, mine);
      assert.deepEqual((await next.run({ features: mine }))[next.outputNames[0]].data, host[i]);
    }
    // Refused: a feed without COPY_SRC, one too small, an output buffer without COPY_DST or too small.
    const noSrc = d.createBuffer({ size: 4 * 24 * 8 * 8, usage: G.STORAGE | G.COPY_DST });
    const small = d.createBuffer({ size: 16, usage: G.STORAGE | G.COPY_SRC | G.COPY_DST });
    const noDst = d.createBuffer({ size: 4 * 24 * 8 * 8, usage: G.STORAGE | G.COPY_SRC });
    await assert.rejects(next.run({ features: noSrc }), /needs usage COPY_SRC/);
    await assert.rejects(next.run({ features: small }), /has 16 bytes, the input takes \[1,24,8,8\] float32 = 6144/);
    await assert.rejects(head.run({ input: xs[0] }, { outputLocation: 'gpu', outputBuffers: { [head.outputNames[0]]: noDst } }), /needs usage COPY_DST/);
    await assert.rejects(head.run({ input: xs[0] }, { outputLocation: 'gpu', outputBuffers: { [head.outputNames[0]]: small } }), /has 16 bytes/);
    await assert.rejects(head.run({ input: xs[0] }, { outputLocation: 'gpu', outputBuffers: { other: mine } }), /not an output asked for/);
    for (const b of [mine, noSrc, small, noDst, mid.buffer]) b.destroy();
  } finally {
    head.dispose();
    next.dispose();
  }
});

test('profile() takes a GPU buffer feed as run() does', async () => {
  const s = await createSession(await loadModel(exportOnnx(tail()), { source: 'tail' }), { plan: 'unfused' });
  try {
    const d = (await acquireGpu()).device;
    const x = seededInput(24 * 8 * 8, 9);
    const b = d.createBuffer({ size: x.byteLength, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    d.queue.writeBuffer(b, 0, x);
    const p = await s.profile({ features: b });
    assert.ok(p.nodes.length > 0);
    // The buffer's values reached the input: run() from it equals run() from the host array.
    assert.deepEqual((await s.run({ features: b }))[s.outputNames[0]].data, (await s.run({ features: x }))[s.outputNames[0]].data);
    b.destroy();
  } finally {
    s.dispose();
  }
});

test('integer sessions refuse GPU buffer feeds where no program converts float32 values onto the GPU, and outputs on the GPU', async () => {
  const g = await loadModel(buildMobileNetStyle({ int8: true, size: 24, seed: 5, classes: 12 }), { source: 'mnet24.tflite' });
  const s = await createInt8Session(g, { plan: 'unfused' });
  try {
    const d = (await acquireGpu()).device;
    const b = d.createBuffer({ size: 4 * 3 * 24 * 24, usage: GPUBufferUsage.COPY_SRC });
    await assert.rejects(s.run({ [g.inputs[0]]: b }), /GPU buffer feeds hold float32 values: this int8 session has no float32 way onto the GPU/);
    const n = g.tensors.get(g.inputs[0])!.shape.reduce((a, c) => a * c, 1);
    await assert.rejects(s.run({ [g.inputs[0]]: seededInput(n, 1) }, { outputLocation: 'gpu' }), /outputs on the GPU hold float32 values/);
    b.destroy();
  } finally {
    s.dispose();
  }
});

test('fp16 sessions take GPU buffer feeds of float32 values (rounded to f16 on the GPU) and leave float32 outputs on the GPU, bit for bit as through the host', async () => {
  const g = await loadModel(exportOnnx(fixtureModels.mobilenetv2_stack()), { source: 'stack' });
  // inputs 'f16': the feed is converted (by default this input, read by one node, stays f32: test below).
  const s = await createSession(g, { plan: 'auto', hw: 'rtxa4000', precision: 'fp16', fp16: { keepF32: 'none', inputs: 'f16' } });
  try {
    const d = (await acquireGpu()).device;
    const x = g.inputs[0], y = s.outputNames[0];
    const n = g.tensors.get(x)!.shape.reduce((a, c) => a * c, 1);
    const G = GPUBufferUsage;
    const bufs = [1, 2].map((seed) => {
      const v = seededInput(n, seed);
      const b = d.createBuffer({ size: 4 * n, usage: G.COPY_SRC | G.COPY_DST });
      d.queue.writeBuffer(b, 0, v);
      return { v, b };
    });
    const host = await Promise.all(bufs.map(async ({ v }) => (await s.run({ [x]: v }))[y].data));
    assert.notDeepEqual(host[0], host[1]);
    // The same buffer twice (its copy and conversion encoded ahead), the other one, a host array between.
    for (const [i, fed] of [0, 0, 1, -1, 1, 0].entries()) {
      const got = (await s.run({ [x]: fed < 0 ? bufs[0].v : bufs[fed].b }))[y].data;
      assert.deepEqual(got, host[fed < 0 ? 0 : fed], `run ${i}`);
    }
    // profile() converts the buffer as run() does.
    const p = await s.profile({ [x]: bufs[1].b });
    assert.ok(p.steps.some((st) => st.node.startsWith('quantize input')), 'the conversion is a profiled step');
    // Outputs left on the GPU: the f16 output widened into float32 values, equal to the host read-back's widening;
    // into a new buffer, twice into the caller's (its bind group made once).
    const m = host[0].length;
    const onGpu = (await s.run({ [x]: bufs[0].b }, { outputLocation: 'gpu' }))[y];
    assert.equal(onGpu.byteLength, 4 * m);
    assert.deepEqual(await readBuffer(onGpu.buffer, 4 * m), host[0]);
    onGpu.buffer.destroy();
    const mine = d.createBuffer({ size: 4 * m, usage: G.STORAGE | G.COPY_SRC });
    for (const k of [1, 0]) {
      const r = await s.run({ [x]: bufs[k].v }, { outputLocation: 'gpu', outputBuffers: { [y]: mine } });
      assert.equal(r[y].buffer, mine);
      assert.deepEqual(await readBuffer(mine, 4 * m), host[k], `into the caller's buffer, input ${k}`);
    }
    // The widening writes the buffer as storage: a copy destination alone is refused.
    const copyOnly = d.createBuffer({ size: 4 * m, usage: G.COPY_DST | G.COPY_SRC });
    await assert.rejects(s.run({ [x]: bufs[0].v }, { outputLocation: 'gpu', outputBuffers: { [y]: copyOnly } }), /needs usage STORAGE/);
    for (const b of [mine, copyOnly, ...bufs.map((q) => q.b)]) b.destroy();
  } finally {
    s.dispose();
  }
});

// The GPU feeds' copies are encoded ahead for the next run when a run was fed GPU buffers only (executor.ts
// lastGpuFeeds): a run fed other buffers, the same buffer rewritten, or host arrays in between must each read what
// it was given. Every output is compared bit for bit with the host-fed run of the same values.
test('fp16 sessions keep an input read by one node f32: GPU buffer feeds are copied in as they are, no conversion step, bit for bit as from the host', async () => {
  const g = await loadModel(exportOnnx(fixtureModels.mobilenetv2_stack()), { source: 'stack' });
  const s = await createSession(g, { plan: 'auto', hw: 'rtxa4000', precision: 'fp16', fp16: { keepF32: 'none' } });
  const h = await createSession(g, { plan: 'auto', hw: 'rtxa4000', precision: 'fp16', fp16: { keepF32: 'none', inputs: 'f16' } });
  try {
    const d = (await acquireGpu()).device;
    const x = g.inputs[0], y = s.outputNames[0];
    assert.deepEqual(s.stats().f32Tensors, [x]);
    assert.deepEqual(s.stats().inputQuantizers, []);
    const n = g.tensors.get(x)!.shape.reduce((a, c) => a * c, 1);
    const v = seededInput(n, 3);
    const b = d.createBuffer({ size: 4 * n, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    d.queue.writeBuffer(b, 0, v);
    const host = (await s.run({ [x]: v }))[y].data;
    assert.deepEqual((await s.run({ [x]: b }))[y].data, host);
    assert.deepEqual((await s.run({ [x]: b }))[y].data, host, 'the copy encoded ahead');
    const p = await s.profile({ [x]: b });
    assert.ok(!p.steps.some((st) => st.node.startsWith('quantize input')), 'no conversion step');
    // The input read as float32 values, not rounded to f16 first: another result than the f16-input session's.
    assert.notDeepEqual(host, (await h.run({ [x]: v }))[y].data);
    b.destroy();
  } finally {
    s.dispose();
    h.dispose();
  }
});

test('GPU feeds: runs alternating buffers, a rewritten buffer and host arrays each read their own input', async () => {
  const s = await createSession(await loadModel(exportOnnx(fixtureModels.mobilenetv2_stack()), { source: 'head' }), { plan: 'auto', hw: 'rtxa4000' });
  try {
    const d = (await acquireGpu()).device;
    const G = GPUBufferUsage;
    const n = 3 * 32 * 32, y = s.outputNames[0];
    const xs = [seededInput(n, 11), seededInput(n, 12), seededInput(n, 13)];
    const want = await Promise.all(xs.map(async (x) => (await s.run({ input: x }))[y].data));
    assert.notDeepEqual(want[0], want[1]);
    const bufs = xs.slice(0, 2).map((x) => {
      const b = d.createBuffer({ size: 4 * n, usage: G.STORAGE | G.COPY_SRC | G.COPY_DST });
      d.queue.writeBuffer(b, 0, x);
      return b;
    });
    // [feed, expected input]: the same buffer several times (its copies taken ahead), then the other, then back.
    const order: [GPUBuffer | Float32Array, number][] = [[bufs[0], 0], [bufs[0], 0], [bufs[0], 0], [bufs[1], 1], [bufs[1], 1], [bufs[0], 0], [xs[2], 2], [bufs[0], 0], [bufs[0], 0]];
    for (const [i, [feed, k]] of order.entries()) {
      const got = (await s.run({ input: feed }))[y].data;
      assert.deepEqual(got, want[k], `run ${i} (input ${k})`);
    }
    // Fed the same buffer again, a run encodes nothing before its first submit (the feed's copy was encoded ahead);
    // fed a buffer new to it, one command encoder (the copy).
    const encodersBeforeSubmit = async (feed: GPUBuffer) => {
      const create = d.createCommandEncoder, submit = d.queue.submit;
      let count = 0, submitted = false;
      d.createCommandEncoder = function (this: GPUDevice, desc?: GPUCommandEncoderDescriptor) { if (!submitted) count++; return create.call(this, desc); };
      d.queue.submit = function (this: GPUQueue, b: Iterable<GPUCommandBuffer>) { submitted = true; return submit.call(this, b); };
      try {
        await s.run({ input: feed }, { outputLocation: 'gpu' });
      } finally {
        d.createCommandEncoder = create;
        d.queue.submit = submit;
      }
      await new Promise((r) => setTimeout(r, 5));
      return count;
    };
    await encodersBeforeSubmit(bufs[1]);
    await encodersBeforeSubmit(bufs[1]);
    assert.equal(await encodersBeforeSubmit(bufs[1]), 0);
    assert.equal(await encodersBeforeSubmit(bufs[0]), 1);
    // The same buffer, rewritten between runs: the run reads the new values.
    d.queue.writeBuffer(bufs[0], 0, xs[1]);
    assert.deepEqual((await s.run({ input: bufs[0] }))[y].data, want[1]);
    d.queue.writeBuffer(bufs[0], 0, xs[2]);
    assert.deepEqual((await s.run({ input: bufs[0] }))[y].data, want[2]);
    for (const b of bufs) b.destroy();
  } finally {
    s.dispose();
  }
});
