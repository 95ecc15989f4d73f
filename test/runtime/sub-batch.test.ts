// Sessions split into sub-batches (src/runtime/sub-batch.ts): the batch's outputs, each image's in its own slot, equal
// to the unsplit session's; the split really runs k inferences, all submitted before the first one's outputs come
// back (the host copy of one overlapping the GPU's work on the one before); GPU buffer feeds and outputs; refusals.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { buildSeedMobileNetV1 } from '../../fixtures/tflite-builder.js';
import { loadModel } from '../../src/graph/load.js';
import type { Graph } from '../../src/graph/ir.js';
import { FcmError } from '../../src/errors.js';
import { createSession, subBatchesFor } from '../../src/pipeline/session.js';
import { SubBatchSession } from '../../src/runtime/sub-batch.js';
import { executorOf, type Session } from '../../src/runtime/executor.js';
import { timeNodes } from '../../src/runtime/profile.js';
import { releaseGpu } from '../../src/runtime/device.js';
import type { HwConfig } from '../../src/planner/hw-config.js';
import { planFusion } from '../../src/planner/index.js';
import { toDag } from '../../src/planner/to-dag.js';
import { seededInput } from '../../src/runtime/compare.js';

after(releaseGpu);

// A small network (fixed seed: the same weights at every batch): conv, depthwise, pointwise, pool, classifier.
function net(batch: number, size = 16): Graph {
  const b = new GraphBuilder('tiny', 3);
  const x = b.input('input', [batch, 3, size, size]);
  let y = b.relu(b.conv(x, { filters: 8, kernel: 3, stride: 2 }));
  y = b.relu(b.conv(y, { filters: 8, kernel: 3, group: 8 }));
  y = b.conv(y, { filters: 12 });
  return b.build([b.gemm(b.flatten(b.globalAveragePool(y)), 5)]);
}

const image = 3 * 16 * 16;
/** A batch of distinct images: slot i holds seededInput(seed 100 + i), so a slot swapped or repeated changes the result. */
const batchOf = (n: number) => {
  const a = new Float32Array(n * image);
  for (let i = 0; i < n; i++) a.set(seededInput(image, 100 + i), i * image);
  return a;
};

/**
 * The split session's outputs against the unsplit one's. Each sub-batch runs the same kernels on its images, but
 * compiled for a smaller batch a kernel may be another variant (kernels/pointwise.ts chooseDot picks vec4, split-K or
 * gemm tiles from the batch's rows and thread counts), so a sum may be accumulated in another order: equal up to
 * float32 rounding of sums of at most 72 products per layer, well inside 1e-5 of the output's largest magnitude (on
 * lavapipe these models come out bit for bit equal). A swapped or repeated slot
 * differs by far more (distinct seeded images; asserted below).
 */
function assertClose(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, what);
  const scale = Math.max(...want.map(Math.abs));
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-5 * scale, `${what}[${i}]: ${got[i]} vs ${want[i]}`);
}

test('split in 2 and 4: the unsplit outputs, each image in its slot; k inferences and k times the submits per run', async () => {
  const g = net(8);
  const whole = await createSession(g, { plan: 'unfused', subBatches: 1 });
  const x = batchOf(8);
  try {
    const y = whole.outputNames[0];
    const want = (await whole.run({ input: x }))[y].data;
    // Distinct images give distinct rows (so the per-slot comparison below would see a swap).
    for (let i = 1; i < 8; i++) assert.ok(want.slice(5 * i, 5 * i + 5).some((v, j) => Math.abs(v - want[5 * (i - 1) + j]) > 1e-3), `slots ${i - 1} and ${i} alike`);
    for (const k of [2, 4]) {
      const s = await createSession(g, { plan: 'unfused', subBatches: k });
      const inner = executorOf((s as SubBatchSession).inner);
      const q = inner.ctx.device.queue;
      let submits = 0;
      const submit = q.submit.bind(q);
      q.submit = (cbs: Iterable<GPUCommandBuffer>) => { submits++; submit(cbs); };
      try {
        assert.ok(s instanceof SubBatchSession, `subBatches ${k} made no split session`);
        assert.deepEqual(s.inputShapes.input, [8, 3, 16, 16]);
        assert.deepEqual(inner.inputShapes.input, [8 / k, 3, 16, 16]);
        const r = await s.run({ input: x });
        assert.deepEqual(r[y].shape, [8, 5]);
        for (let i = 0; i < 8; i++) assertClose(r[y].data.subarray(5 * i, 5 * i + 5), want.subarray(5 * i, 5 * i + 5), `k ${k} slot ${i}`);
        const st = s.stats(), one = inner.stats();
        assert.equal(st.subBatches, k);
        assert.equal(st.runs, 1);
        assert.equal(one.runs, k, 'the executor ran k inferences');
        assert.equal(submits, k * one.submitsPerRun, 'queue.submit calls of one run');
        assert.equal(st.submitsPerRun, k * one.submitsPerRun);
        assert.equal(st.dispatchesPerRun, k * one.dispatchesPerRun);
        assert.equal(s.hostTimes().runs, 1);
        // Into the caller's arrays too; two runs in flight at once keep their own outputs.
        const into = new Float32Array(40);
        const x2 = batchOf(8).reverse();
        const [a, b] = await Promise.all([s.run({ input: x }, { outputArrays: { [y]: into } }), s.run({ input: x2 })]);
        assert.equal(a[y].data, into);
        assertClose(into, want, `k ${k} outputArrays`);
        const want2 = (await whole.run({ input: x2 }))[y].data;
        assertClose(b[y].data, want2, `k ${k} second run in flight`);
      } finally {
        delete (q as { submit?: unknown }).submit;
        s.dispose();
      }
    }
  } finally {
    whole.dispose();
  }
});

// A lavapipe-sized description on which the planner fuses (as in test/runtime/session.test.ts).
const hw: HwConfig = { name: 'lavapipe-like', sms: 16, l1BytesPerSm: 64 * 1024, shmemBytesPerSm: 64 * 1024, warpSize: 32, workgroupStorageBytes: 32 * 1024 };

test('a fused plan made at the batch applies to the sub-batch executor: the same FCMs, the unsplit outputs', async () => {
  const b = new GraphBuilder('stack', 3);
  const input = b.input('input', [8, 3, 16, 16]);
  let y = b.relu(b.conv(input, { filters: 16, kernel: 3, stride: 2 }));
  y = b.relu(b.conv(y, { filters: 32, kernel: 1 }));
  y = b.relu(b.conv(y, { filters: 32, kernel: 3, group: 32 }));
  y = b.conv(y, { filters: 24, kernel: 1 });
  const g = b.build([b.gemm(b.flatten(b.globalAveragePool(y)), 5)]);
  const plan = planFusion(toDag(g), hw, { mode: 'optimal', model: 'stack' });
  const whole = await createSession(g, { plan, subBatches: 1 });
  const s = await createSession(g, { plan, subBatches: 2 });
  try {
    assert.ok(whole.stats().fusedModules > 0, 'the plan fuses nothing: the fused path is untested');
    assert.equal(s.stats().fusedModules, whole.stats().fusedModules);
    const x = batchOf(8), out = g.outputs[0];
    assertClose((await s.run({ input: x }))[out].data, (await whole.run({ input: x }))[out].data, 'fused, split in 2');
  } finally {
    s.dispose();
    whole.dispose();
  }
});

test('an int8 model on the integer kernels, split in 2: bit for bit the unsplit outputs (integer sums are exact in any order)', async () => {
  // The FusePlanner reference's int8 MobileNetV1 cut to 2 blocks at 32x32, batch 4: every node on the integer kernels.
  const g = await loadModel(buildSeedMobileNetV1(7, 32, false, 2, 4), { source: 'mnv1-int8-b4.tflite' });
  const whole = await createSession(g, { subBatches: 1 });
  const s = await createSession(g, { subBatches: 2 });
  try {
    assert.equal(whole.path, 'int8');
    assert.equal(s.path, 'int8');
    assert.equal(s.stats().subBatches, 2);
    const x = g.inputs[0], y = g.outputs[0];
    // Four distinct images, as raw uint8 values and as floats on the input's grid.
    const raw = Uint8Array.from({ length: 4 * 32 * 32 * 3 }, (_, i) => (i * 2654435761) >>> 24);
    for (const feed of [raw, Float32Array.from(raw, (v) => 0.007843137718737125 * (v - 127))]) {
      const want = (await whole.run({ [x]: feed }))[y], got = (await s.run({ [x]: feed }))[y];
      assert.deepEqual(got.shape, [4, 1000]);
      assert.deepEqual(got.data, want.data);
      assert.deepEqual(got.raw, want.raw);
      assert.deepEqual(got.quant, want.quant);
      for (let i = 1; i < 4; i++) assert.notDeepEqual(want.raw!.subarray(1000 * i, 1000 * i + 1000), want.raw!.subarray(1000 * (i - 1), 1000 * i), `slots ${i - 1} and ${i} alike`);
    }
  } finally {
    s.dispose();
    whole.dispose();
  }
});

test('fp16, split in 2: the unsplit fp16 outputs (laid side by side on the host: fp16 sessions take no outputArrays)', async () => {
  const g = net(4);
  // keepF32 'none': both sessions all f16 (an 'auto' calibration would run each on its own batch's seeded input).
  const whole = await createSession(g, { plan: 'unfused', precision: 'fp16', fp16: { keepF32: 'none' }, subBatches: 1 });
  const s = await createSession(g, { plan: 'unfused', precision: 'fp16', fp16: { keepF32: 'none' }, subBatches: 2 });
  try {
    const x = batchOf(4), y = g.outputs[0];
    const want = (await whole.run({ input: x }))[y].data, got = (await s.run({ input: x }))[y];
    assert.deepEqual(got.shape, [4, 5]);
    // The same f16 roundings of the same values, unless a kernel at the smaller batch sums in another order: then a
    // stored f16 value may round the other way (2^-11 of it), well inside 1e-2 of the largest output after 5 layers.
    const scale = Math.max(...want.map(Math.abs));
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got.data[i] - want[i]) <= 1e-2 * scale, `[${i}]: ${got.data[i]} vs ${want[i]}`);
  } finally {
    s.dispose();
    whole.dispose();
  }
});

test('image inputs (uint8 NHWC bytes, converted on the GPU) split too; a GPU buffer feed for one is refused before any copy', async () => {
  const g = net(4);
  const imageInputs = { input: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } };
  const whole = await createSession(g, { plan: 'unfused', imageInputs, subBatches: 1 });
  const s = await createSession(g, { plan: 'unfused', imageInputs, subBatches: 2 });
  try {
    const bytes = Uint8Array.from({ length: 4 * image }, (_, i) => (i * 2654435761) >>> 24);
    const y = g.outputs[0];
    assertClose((await s.run({ input: bytes }))[y].data, (await whole.run({ input: bytes }))[y].data, 'image bytes');
    const dev = executorOf(whole).ctx.device;
    const b = dev.createBuffer({ size: 4 * 4 * image, usage: GPUBufferUsage.COPY_SRC });
    await assert.rejects(s.run({ input: b }), (e: unknown) => e instanceof FcmError && e.exitCode === 3 && /GPU buffer feeds hold float32 values/.test(e.message));
    b.destroy();
    assert.equal(s.stats().buffersCreated, (s as SubBatchSession).inner.stats().buffersCreated, 'no scratch buffer was made');
  } finally {
    s.dispose();
    whole.dispose();
  }
});

test('fp16 split sessions: a float32 GPU buffer feed and float32 outputs on the GPU, bit for bit as the same split fed and read through the host', async () => {
  const g = net(4);
  const s = await createSession(g, { plan: 'unfused', subBatches: 2, precision: 'fp16', fp16: { keepF32: 'none' } });
  const dev = executorOf((s as SubBatchSession).inner).ctx.device;
  const x = batchOf(4);
  const gin = dev.createBuffer({ size: x.byteLength, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  dev.queue.writeBuffer(gin, 0, x);
  try {
    const y = s.outputNames[0];
    const want = (await s.run({ input: x }))[y].data;
    assert.deepEqual((await s.run({ input: gin }))[y].data, want, 'GPU feed');
    const r = await s.run({ input: gin }, { outputLocation: 'gpu' });
    assert.equal(r[y].byteLength, 4 * want.length);
    const rb = dev.createBuffer({ size: r[y].byteLength, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = dev.createCommandEncoder();
    enc.copyBufferToBuffer(r[y].buffer, 0, rb, 0, r[y].byteLength);
    dev.queue.submit([enc.finish()]);
    await rb.mapAsync(GPUMapMode.READ);
    assert.deepEqual(new Float32Array(rb.getMappedRange().slice(0)), want, 'outputs on the GPU');
    rb.destroy();
    r[y].buffer.destroy();
  } finally {
    gin.destroy();
    s.dispose();
  }
});

test('every sub-run is submitted before the first one\'s outputs are mapped: nothing in run() waits for an earlier sub-run', async () => {
  const g = net(8);
  const s = await createSession(g, { plan: 'unfused', subBatches: 4 });
  const inner = executorOf((s as SubBatchSession).inner);
  const q = inner.ctx.device.queue;
  const events: string[] = [];
  const submit = q.submit.bind(q);
  q.submit = (cbs: Iterable<GPUCommandBuffer>) => { events.push('submit'); submit(cbs); };
  const mapAsync = GPUBuffer.prototype.mapAsync;
  GPUBuffer.prototype.mapAsync = function (this: GPUBuffer, mode: number, ...rest: number[]) {
    const p = mapAsync.call(this, mode, ...rest);
    return mode === GPUMapMode.READ ? p.then(() => { events.push('read-back'); return undefined; }) : p;
  } as typeof mapAsync;
  try {
    await s.run({ input: batchOf(8) });
    const perRun = inner.stats().submitsPerRun;
    const first = events.indexOf('read-back');
    assert.ok(first > 0, events.join(' '));
    assert.equal(events.slice(0, first).filter((e) => e === 'submit').length, 4 * perRun, `submits before the first read-back: ${events.join(' ')}`);
  } finally {
    GPUBuffer.prototype.mapAsync = mapAsync;
    delete (q as { submit?: unknown }).submit;
    s.dispose();
  }
});

test('GPU buffer feeds and outputs left on the GPU: the batch in one buffer each, as the unsplit session gives', async () => {
  const g = net(4);
  const whole = await createSession(g, { plan: 'unfused', subBatches: 1 });
  const s = await createSession(g, { plan: 'unfused', subBatches: 2 });
  const dev = executorOf(whole).ctx.device;
  const x = batchOf(4);
  const gin = dev.createBuffer({ size: x.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  dev.queue.writeBuffer(gin, 0, x);
  const read = async (b: GPUBuffer, bytes: number) => {
    const rb = dev.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = dev.createCommandEncoder();
    enc.copyBufferToBuffer(b, 0, rb, 0, bytes);
    dev.queue.submit([enc.finish()]);
    await rb.mapAsync(GPUMapMode.READ);
    const v = new Float32Array(rb.getMappedRange().slice(0));
    rb.destroy();
    return v;
  };
  try {
    const y = whole.outputNames[0];
    const want = (await whole.run({ input: x }))[y].data;
    // GPU feed, host outputs.
    assertClose((await s.run({ input: gin }))[y].data, want, 'GPU feed');
    // Host feed and GPU feed, outputs on the GPU (a new buffer, and the caller's).
    for (const feed of [x, gin]) {
      const r = await s.run({ input: feed }, { outputLocation: 'gpu' });
      assert.deepEqual(r[y].shape, [4, 5]);
      assert.equal(r[y].byteLength, 80);
      assertClose(await read(r[y].buffer, 80), want, 'outputs on the GPU');
      r[y].buffer.destroy();
    }
    const mine = dev.createBuffer({ size: 96, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    const r = await s.run({ input: gin }, { outputLocation: 'gpu', outputBuffers: { [y]: mine } });
    assert.equal(r[y].buffer, mine);
    assertClose((await read(mine, 96)).subarray(0, 20), want, "the caller's output buffer");
    mine.destroy();
    // Per-node GPU time: each node's sub-batch time, k times (what a run spends on it); profiles summed likewise.
    const p = await s.profile({ input: x });
    assert.ok(p.note?.includes('summed over 2 sub-batches of 2'), p.note);
    assert.equal(p.nodes.length, (await (s as SubBatchSession).inner.profile()).nodes.length);
  } finally {
    gin.destroy();
    s.dispose();
    whole.dispose();
  }
});

test('refusals: indivisible sub-batches (exit 2), a model that mixes images (exit 3), bad values, staging memory; auto', async () => {
  const g = net(6);
  const code = (re: RegExp, exit: number) => (e: unknown) => e instanceof FcmError && e.exitCode === exit && re.test(e.message) && !e.message.includes('\n');
  await assert.rejects(createSession(g, { plan: 'unfused', subBatches: 4 }), code(/subBatches 4 does not divide the batch of 6/, 2));
  for (const bad of [0, 1.5, 'many']) {
    await assert.rejects(createSession(g, { plan: 'unfused', subBatches: bad as number }), code(/subBatches must be 'auto' or a whole number >= 1/, 2), String(bad));
  }
  // A Softmax over the batch axis mixes the images: no split.
  const b = new GraphBuilder('mix', 3);
  const xin = b.input('input', [4, 6]);
  const mixed = b.build([b.node('Softmax', [xin], [4, 6], { axis: 0 })]);
  await assert.rejects(createSession(mixed, { plan: 'unfused', subBatches: 2 }), code(/Softmax.*batch axis.*cannot be split/, 3));
  assert.equal(subBatchesFor(mixed, { subBatches: 'auto' }), 1);
  // auto: small batches, and batches whose feeds are small, are not split; two halves where they are large.
  assert.equal(subBatchesFor(net(8), {}), 1);
  assert.equal(subBatchesFor(net(32), {}), 1, 'batch 32 of 3x16x16 (98 KB): the copy does not matter');
  assert.equal(subBatchesFor(net(32, 112), {}), 2, 'batch 32 of 3x112x112 (4.8 MB)');
  assert.equal(subBatchesFor(net(24, 128), {}), 2, 'batch 24 of 3x128x128 (4.7 MB)');
  assert.equal(subBatchesFor(net(21, 128), {}), 1, 'batch 21 (4.1 MB): no two equal halves');
  // stagingInputs(): refused on a split session, one line, exit 3.
  const s: Session = await createSession(net(4), { plan: 'unfused', subBatches: 2 });
  try {
    await assert.rejects(s.stagingInputs(), code(/subBatches: 1/, 3));
    await assert.rejects(s.run({ input: new Float32Array(10) }), code(/input 'input' has 10 values, the model takes \[4,3,16,16\] = 3072/, 2));
    await assert.rejects(s.run({ input: batchOf(4), other: batchOf(4) } as never), code(/'other' is not an input/, 2));
  } finally {
    s.dispose();
  }
});

// The bench's per-module times come from timeNodes: a split session is timed through its executor (no timestamp
// queries on some adapters: then exit 3, as for any session).
test('timeNodes takes a split session', async () => {
  const s = await createSession(net(4), { plan: 'unfused', subBatches: 2 });
  try {
    const nodes = executorOf((s as SubBatchSession).inner).dispatches.map((d) => [d.step.node.name]);
    await timeNodes(s, nodes.slice(0, 1), { iters: 1, heatMs: 0 }).then(
      (ms) => assert.equal(ms.length, 1),
      (e: unknown) => assert.ok(e instanceof FcmError && e.kind === 'unsupported', String(e)),
    );
  } finally {
    s.dispose();
  }
});
