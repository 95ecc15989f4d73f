// The executor end to end on lavapipe: every fixture model, unfused and fused, against onnxruntime-node (CPU);
// what runs (dispatches per inference, nothing created on a second run); memory reuse; refusals before GPU work.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { fixtureModels } from '../../fixtures/models.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import { toDag } from '../../src/planner/to-dag.js';
import { planFusion } from '../../src/planner/index.js';
import type { HwConfig } from '../../src/planner/hw-config.js';
import type { Graph } from '../../src/graph/ir.js';
import { newAttrs } from '../../src/graph/ir.js';
import { FcmError } from '../../src/errors.js';
import { createSession, defaultFirstSubmit, defaultSubmitGrowth } from '../../src/pipeline/session.js';
import { compileGraph } from '../../src/runtime/compile.js';
import { executorOf } from '../../src/runtime/executor.js';
import { timeNodes } from '../../src/runtime/profile.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { compareOutputs, seededInput } from '../../src/runtime/compare.js';
import { defaultLimits } from '../../kernels/program.js';

after(releaseGpu);

// A description on which the planner fuses (small SMs, large shared memory), as in test/rewrite.
const hw: HwConfig = { name: 'lavapipe-like', sms: 16, l1BytesPerSm: 64 * 1024, shmemBytesPerSm: 64 * 1024, warpSize: 32, workgroupStorageBytes: 32 * 1024 };

async function reference(bytes: Uint8Array, feeds: Record<string, { data: Float32Array; shape: number[] }>) {
  // One thread, no spinning: onnxruntime's spinning workers starve lavapipe's threads for seconds.
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, extra: { session: { intra_op: { allow_spinning: '0' } } } });
  const r = await s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v.data, v.shape)])));
  await s.release();
  return r;
}

const fusedPairs = (p: ReturnType<typeof planFusion>) => p.modules.filter((m) => ['pwdw', 'dwpw', 'pwpw'].includes(m.kind)).length;
let anyFused = 0;

for (const [name, make] of Object.entries(fixtureModels)) {
  test(`${name}: unfused and fused match onnxruntime; fused runs one dispatch less per pair; second run creates nothing`, async () => {
    const bytes = exportOnnx(make());
    const g = await loadModel(bytes, { source: name });
    const feeds = Object.fromEntries(g.inputs.map((x, i) => {
      const shape = g.tensors.get(x)!.shape;
      return [x, { data: seededInput(shape.reduce((a, b) => a * b, 1), i), shape }];
    }));
    const ref = await reference(bytes, feeds);
    const plan = planFusion(toDag(g), hw, { mode: 'optimal', model: name });
    const dispatches: number[] = [];
    for (const p of ['unfused', plan] as const) {
      const s = await createSession(g, { plan: p });
      try {
        const input = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, v.data]));
        const out = await s.run(input);
        const before = s.stats();
        const again = await s.run(input);
        const afterStats = s.stats();
        assert.deepEqual({ ...afterStats, runs: 0 }, { ...before, runs: 0 }, 'a second run created GPU objects');
        // The default parts: a first of defaultFirstSubmit, each later one defaultSubmitGrowth times the one before.
        let parts = 0;
        for (let left = afterStats.dispatchesPerRun, size = defaultFirstSubmit; left > 0; parts++, size *= defaultSubmitGrowth) left -= size;
        assert.equal(afterStats.passesPerRun, parts);
        for (const y of s.outputNames) {
          const r = ref[y].data as Float32Array;
          const c = compareOutputs(out[y].data, r, out[y].shape);
          assert.ok(c.maxAbsError <= c.tolerance, `${name} ${p === 'unfused' ? 'unfused' : 'fused'} ${y}: max abs ${c.maxAbsError} > ${c.tolerance}`);
          assert.equal(c.top1, 1, 'argmax differs');
          assert.deepEqual(again[y].data, out[y].data, 'two runs differ');
          assert.deepEqual(out[y].shape, [...(ref[y].dims as number[])]);
        }
        dispatches.push(afterStats.dispatchesPerRun);
      } finally {
        s.dispose();
      }
    }
    // Each FCM replaces two convolutions' dispatches by one; epilogues never add a dispatch.
    assert.equal(dispatches[1], dispatches[0] - fusedPairs(plan));
    anyFused += fusedPairs(plan);
  });
}

test('the fixtures exercise at least one fused module', () => {
  assert.ok(anyFused > 0, 'no fixture model was fused: the fused path is untested');
});

test('unfused dispatches: one per non-alias node after epilogue folding', async () => {
  const g = await loadModel(exportOnnx(fixtureModels.mobilenetv2_stack()), { source: 'm' });
  const s = await createSession(g, { plan: 'unfused' });
  try {
    // 10 convolutions (stem + 3 blocks x 3), activations and the two residual Adds folded into them.
    assert.equal(s.stats().dispatchesPerRun, 10);
    assert.ok(s.stats().activationBytes < s.stats().activationBytesUnshared, 'lifetime planning reused no buffer');
  } finally {
    s.dispose();
  }
});

test('submitEvery: the inference is submitted in parts of that many dispatches, with identical results', async () => {
  const g = await loadModel(exportOnnx(fixtureModels.mobilenetv2_stack()), { source: 'm' });
  const x = seededInput(g.tensors.get(g.inputs[0])!.shape.reduce((a, b) => a * b, 1), 7);
  const outs: Float32Array[] = [];
  for (const [every, passes] of [[0, 1], [1, 10], [3, 4], [10, 1], [64, 1]] as const) {
    const s = await createSession(g, { plan: 'unfused', submitEvery: every });
    try {
      const y = await s.run({ [g.inputs[0]]: x });
      assert.equal(s.stats().dispatchesPerRun, 10);
      assert.equal(s.stats().passesPerRun, passes, `submitEvery ${every}`);
      outs.push(y[g.outputs[0]].data);
    } finally {
      s.dispose();
    }
  }
  for (const o of outs.slice(1)) assert.deepEqual(o, outs[0], 'a split submission changed the result');
  await assert.rejects(createSession(g, { plan: 'unfused', submitEvery: -1 }), (e: unknown) => e instanceof FcmError && /submitEvery/.test(e.message));
});

test('encodeAhead: runs on command buffers encoded during the run before give what runs encoded in themselves give', async () => {
  const g = await loadModel(exportOnnx(fixtureModels.mobilenetv2_stack()), { source: 'm' });
  const x = g.inputs[0], y = g.outputs[0];
  const n = g.tensors.get(x)!.shape.reduce((a, b) => a * b, 1);
  const ahead = await createSession(g, { plan: 'unfused', submitEvery: 3 });
  const live = await createSession(g, { plan: 'unfused', submitEvery: 3, encodeAhead: false });
  try {
    const a = ahead.stats(), l = live.stats();
    assert.equal(a.encodedAhead, true);
    assert.equal(l.encodedAhead, false);
    // 10 dispatches in parts of 3: 4 passes and 4 submits either way; ahead, the feeds' and outputs' copies ride
    // along in command buffers of their own.
    assert.deepEqual([a.passesPerRun, a.submitsPerRun, a.commandBuffersPerRun], [4, 4, 6]);
    assert.deepEqual([l.passesPerRun, l.submitsPerRun, l.commandBuffersPerRun], [4, 4, 4]);
    // Each run must read its own feeds: a part encoded before the feeds were written still sees them (queue order),
    // and a stale or skipped part shows as the previous run's result.
    const seen: Float32Array[] = [];
    for (const seed of [1, 2, 3]) {
      const feeds = { [x]: seededInput(n, seed) };
      const ra = await ahead.run(feeds);
      const rl = await live.run(feeds);
      assert.deepEqual(ra[y].data, rl[y].data, `seed ${seed}`);
      for (const prev of seen) assert.notDeepEqual(ra[y].data, prev, `seed ${seed} repeats an earlier run's result`);
      seen.push(ra[y].data);
    }
    // Outputs left on the GPU, and runs in flight.
    const gy = await ahead.run({ [x]: seededInput(n, 4) }, { outputLocation: 'gpu' });
    const back = await live.run({ [x]: seededInput(n, 4) });
    const rb = executorOf(ahead).ctx.device.createBuffer({ size: gy[y].byteLength, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = executorOf(ahead).ctx.device.createCommandEncoder();
    enc.copyBufferToBuffer(gy[y].buffer, 0, rb, 0, gy[y].byteLength);
    executorOf(ahead).ctx.device.queue.submit([enc.finish()]);
    await rb.mapAsync(GPUMapMode.READ);
    assert.deepEqual(new Float32Array(rb.getMappedRange().slice(0)), back[y].data);
    rb.destroy();
    gy[y].buffer.destroy();
    const many = await Promise.all([5, 6, 7].map((seed) => ahead.run({ [x]: seededInput(n, seed) })));
    for (const [i, seed] of [5, 6, 7].entries()) assert.deepEqual(many[i][y].data, (await live.run({ [x]: seededInput(n, seed) }))[y].data);
  } finally {
    ahead.dispose();
    live.dispose();
  }
});

function opaqueGraph(): Graph {
  const t = (name: string, shape: number[]) => ({ name, dtype: 'float32' as const, shape });
  const tensors = new Map([
    ['x', t('x', [1, 4, 8, 8])], ['a', t('a', [1, 4, 8, 8])], ['b', t('b', [1, 4, 8, 8])], ['c', t('c', [1, 4, 8, 8])], ['d', t('d', [1, 4, 8, 8])],
  ]);
  return {
    name: 'opaque', source: 'opaque.onnx', inputs: ['x'], outputs: ['d'], tensors,
    nodes: [
      { name: 'r1', op: 'Relu', domain: '', inputs: ['x'], outputs: ['a'], attrs: newAttrs() },
      { name: 'resize1', op: 'Resize', domain: '', inputs: ['a'], outputs: ['b'], attrs: newAttrs() },
      { name: 'resize2', op: 'Resize', domain: '', inputs: ['b'], outputs: ['c'], attrs: newAttrs() },
      { name: 'custom', op: 'Frob', domain: 'com.example', inputs: ['c'], outputs: ['d'], attrs: newAttrs() },
    ],
  };
}

test('unsupported ops: one error listing each op type and its first node, before any GPU work', () => {
  // compileGraph is pure: it never sees a device, so the refusal precedes any buffer or pipeline.
  assert.throws(() => compileGraph(opaqueGraph(), { ...defaultLimits, maxStorageBufferBindingSize: 1 << 27, maxBufferSize: 1 << 28 }), (e: unknown) => {
    assert.ok(e instanceof FcmError && e.kind === 'unsupported' && e.exitCode === 3);
    assert.match(e.message, /opaque\.onnx: the executor cannot run 2 op types/);
    assert.match(e.message, /Resize \(2 nodes, first 'resize1'/);
    assert.match(e.message, /com\.example\.Frob \(1 node, first 'custom'/);
    return true;
  });
});

test('createSession refuses the same graph with exit 3', async () => {
  await assert.rejects(createSession(opaqueGraph(), { plan: 'unfused' }), (e: unknown) => e instanceof FcmError && e.exitCode === 3);
});

test('a tensor over the adapter binding limit is refused, naming it', () => {
  const g = opaqueGraph();
  g.nodes = [g.nodes[0]];
  g.outputs = ['a'];
  assert.throws(() => compileGraph(g, { ...defaultLimits, maxStorageBufferBindingSize: 1000, maxBufferSize: 1 << 28 }),
    (e: unknown) => e instanceof FcmError && e.kind === 'limit' && /tensor '(x|a)'.*maxStorageBufferBindingSize of 1000/.test(e.message));
});

test('run() checks its feeds; profile() reports every node; dispose() is final', async () => {
  const g = opaqueGraph();
  g.nodes = [g.nodes[0]];
  g.outputs = ['a'];
  const s = await createSession(g, { plan: 'unfused' });
  await assert.rejects(s.run({ x: new Float32Array(3) }), /input 'x' has 3 values, the model takes \[1,4,8,8\]/);
  await assert.rejects(s.run({ y: new Float32Array(256) } as never), /'y' is not an input/);
  const x = seededInput(256, 3);
  const out = await s.run({ x });
  assert.deepEqual(Array.from(out.a.data), Array.from(x, (v) => Math.max(v, 0)));
  const p = await s.profile();
  assert.deepEqual(p.nodes.map((n) => n.node), ['r1']);
  assert.ok(p.nodes[0].ms >= 0 && ['timestamp', 'wall'].includes(p.method));
  // Heated: untimed inferences ahead of the timed passes change neither the report nor what a run computes.
  const ph = await s.profile({ x }, { heatRuns: 3 });
  assert.deepEqual(ph.nodes.map((n) => n.node), ['r1']);
  assert.equal(ph.method, p.method);
  assert.deepEqual(Array.from((await s.run({ x })).a.data), Array.from(x, (v) => Math.max(v, 0)));
  s.dispose();
  await assert.rejects(s.run({ x }), /disposed/);
});

test('timeNodes() times each group of nodes in one pass: one entry per group, 0 for none, unknown nodes refused', async () => {
  const t = (name: string) => ({ name, dtype: 'float32' as const, shape: [1, 4, 8, 8] });
  const g: Graph = {
    name: 'chain', source: 'chain.onnx', inputs: ['x'], outputs: ['b'],
    tensors: new Map([['x', t('x')], ['a', t('a')], ['b', t('b')]]),
    nodes: [
      { name: 'r1', op: 'Relu', domain: '', inputs: ['x'], outputs: ['a'], attrs: newAttrs() },
      { name: 's1', op: 'Sigmoid', domain: '', inputs: ['a'], outputs: ['b'], attrs: newAttrs() },
    ],
  };
  const s = await createSession(g, { plan: 'unfused' });
  const x = seededInput(256, 5);
  const before = Array.from((await s.run({ x })).b.data);
  const ms = await timeNodes(s, [['r1'], ['r1', 's1'], []], { iters: 3, heatMs: 1 });
  assert.equal(ms.length, 3);
  assert.ok(ms[0] > 0 && ms[1] > 0 && Number.isFinite(ms[1]), `times ${ms}`);
  assert.equal(ms[2], 0);
  // Its timestamp queries are the session's: timing again (as many groups or fewer) allocates nothing.
  const created = s.stats().buffersCreated;
  assert.equal((await timeNodes(s, [['s1'], ['r1']], { iters: 2, heatMs: 0 })).length, 2);
  assert.equal(s.stats().buffersCreated, created);
  await assert.rejects(timeNodes(s, [['nope']]), /chain\.onnx: timeNodes: node 'nope' runs no kernel/);
  // Repeating the dispatches leaves what a run computes unchanged.
  assert.deepEqual(Array.from((await s.run({ x })).b.data), before);
  s.dispose();
});

test('an output aliased through Reshape/Flatten reads the producer buffer', async () => {
  const t = (name: string, shape: number[]) => ({ name, dtype: 'float32' as const, shape });
  const g: Graph = {
    name: 'alias', source: 'alias.onnx', inputs: ['x'], outputs: ['f', 'y'],
    tensors: new Map([['x', t('x', [2, 3, 2, 2])], ['y', t('y', [2, 3, 2, 2])], ['f', t('f', [2, 12])]]),
    nodes: [
      { name: 'sig', op: 'Sigmoid', domain: '', inputs: ['x'], outputs: ['y'], attrs: newAttrs() },
      { name: 'flat', op: 'Flatten', domain: '', inputs: ['y'], outputs: ['f'], attrs: newAttrs({ axis: 1 }) },
    ],
  };
  const s = await createSession(g, { plan: 'unfused' });
  try {
    const x = seededInput(24, 9);
    const out = await s.run({ x });
    assert.equal(s.stats().dispatchesPerRun, 1);
    assert.deepEqual(out.f.shape, [2, 12]);
    assert.deepEqual(out.f.data, out.y.data);
  } finally {
    s.dispose();
  }
});
