// The integer executor end to end on lavapipe: quantized TFLite fixtures run unfused and fused (planned with 1-byte
// elements, and a hand-made plan with a PW-DW over a Pad) with identical outputs, equal bit for bit to the integer
// reference (src/quant/run-reference.ts). Host steps (input QUANTIZE, HARD_SWISH, DEQUANTIZE) run that same
// reference, so no tolerance is needed anywhere. Dispatches are counted: each fused pair is one dispatch fewer, a
// Pad folded into a PW-DW one more.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../../src/graph/load.js';
import { NetWriter, buildMobileNetStyle, buildSeedMobileNetV1, opt } from '../../fixtures/tflite-builder.js';
import { BuiltinOperator, TensorType } from '../../converters/tflite/schema_generated.js';
import { FcmError } from '../../src/errors.js';
import { type Graph, fcmDomain } from '../../src/graph/ir.js';
import type { Plan } from '../../src/planner/plan.js';
import { runInt8Reference } from '../../src/quant/run-reference.js';
import { quantize, quantizeF32 } from '../../src/quant/reference.js';
import { defaultFirstSubmit, defaultSubmitGrowth, releaseGpu } from '../../src/runtime/device.js';
import { createInt8Session } from '../../src/pipeline/session.js';
import { executorOf } from '../../src/runtime/executor.js';
import { prepareInt8Graph } from '../../src/pipeline/pipeline.js';
import { loadHw } from '../../src/planner/hw.js';

after(releaseGpu);

function input(g: Graph, seed: number): Float32Array | Uint8Array {
  const t = g.tensors.get(g.inputs[0])!;
  const n = t.shape.reduce((a, b) => a * b, 1);
  let s = seed >>> 0 || 1;
  const next = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 2 ** 32; };
  if (t.dtype === 'uint8') return Uint8Array.from({ length: n }, () => Math.floor(next() * 256));
  return Float32Array.from({ length: n }, () => next() * 6 - 3);
}

const plan = (modules: Array<[Plan['modules'][number]['kind'], string, string]>): Plan => ({
  model: 'm', hw: 'test', mode: 'optimal', totals: { gma: 0, gmaUnfused: 0, saved: 0, savedPercent: 0 },
  modules: modules.map(([kind, a, b]) => ({ kind, layers: [], nodes: [a, b], tiles: { l1Filters: 4, l2Filters: 8, h: 2, w: 3, d: 4 }, gma: 0, gmaUnfused: 0 })),
});

/** Runs g with the given plans; every output equal to the reference's, raw and dequantized; returns the sessions' stats. */
async function runAll(g: Graph, plans: Array<'unfused' | 'auto' | Plan>, seeds: number[]) {
  const stats = [];
  const hw = loadHw('lavapipe');
  const outs: Map<number, Int8Array | Uint8Array | Float32Array>[] = [];
  for (const p of plans) {
    const s = await createInt8Session(g, { plan: p, hw });
    const got = new Map<number, Int8Array | Uint8Array | Float32Array>();
    try {
      for (const seed of seeds) {
        const x = input(g, seed);
        const ref = runInt8Reference(g, { [g.inputs[0]]: x });
        const r = await s.run({ [g.inputs[0]]: x });
        const o = r[g.outputs[0]];
        assert.deepEqual(o.shape, ref.outputs[0].shape);
        const want = ref.outputs[0].data;
        const have = o.raw ?? o.data;
        assert.equal(have.length, want.length);
        for (let i = 0; i < want.length; i++) assert.equal(have[i], want[i], `${typeof p === 'string' ? p : 'plan'}, seed ${seed}: output ${i}`);
        assert.deepEqual(Array.from(o.data), Array.from(ref.dequantized[0]));
        got.set(seed, have);
      }
      const st = s.stats();
      const again = s.stats();
      await s.run({ [g.inputs[0]]: input(g, 99) });
      // A run creates nothing on the GPU.
      assert.equal(s.stats().buffersCreated, again.buffersCreated);
      assert.equal(s.stats().bindGroupsCreated, again.bindGroupsCreated);
      stats.push(st);
    } finally {
      s.dispose();
    }
    outs.push(got);
  }
  // Fused and unfused outputs are identical (already equal to the reference; said once more for the record).
  for (const o of outs.slice(1)) for (const seed of seeds) assert.deepEqual(Array.from(o.get(seed)!), Array.from(outs[0].get(seed)!));
  return stats;
}

test('int8 MobileNet-style: unfused, planned (1-byte elements) and hand-planned PW-DW over a Pad, all bit-exact', async () => {
  const g = await loadModel(buildMobileNetStyle({ int8: true }), { source: 'mnet-int8.tflite' });
  const hand = plan([['pwdw', 'conv_2d_3', 'depthwise_conv_2d_5'], ['dwpw', 'depthwise_conv_2d_7', 'conv_2d_8']]);
  const [unfused, auto, manual] = await runAll(g, ['unfused', 'auto', hand], [1, 2]);
  // Unfused: 3x3 conv, 3 DW, 3 PW, Mean, FC, Softmax (the Relu/Clip fold into their convs, the Pad into the
  // DW after it, the residual Add into the pointwise conv computing its operand; Reshapes are aliases).
  assert.equal(unfused.dispatchesPerRun, 10);
  assert.equal(unfused.fusedModules, 0);
  assert.ok(auto.fusedModules >= 2, `the planner fused ${auto.fusedModules} pairs`);
  assert.equal(auto.dispatchesPerRun, unfused.dispatchesPerRun - auto.fusedModules);
  // The hand plan: two pairs, the Pad folded into the PW-DW (applyPlan) as it is into the DW unfused (foldPads).
  assert.equal(manual.fusedModules, 2);
  assert.equal(manual.dispatchesPerRun, unfused.dispatchesPerRun - 2);
  // No integer kernel for HARD_SWISH: it runs on the host between two command buffers; input QUANTIZE and the output
  // DEQUANTIZE are host steps at the ends. SOFTMAX, reading the FC's output on the GPU, runs on the GPU.
  for (const s of [unfused, auto, manual]) {
    assert.deepEqual(s.hostNodes, ['quantize_0', 'hard_swish_10', 'dequantize_15']);
    assert.equal(s.readBacksPerRun, 2);
    assert.ok(s.commandBuffersPerRun >= s.readBacksPerRun);
    assert.ok(s.weightBytes > 0 && s.activationBytes < s.activationBytesUnshared);
  }
});

test('the residual Add runs in the epilogue of the conv computing its operand, fused or not (one dispatch, no Add of its own)', async () => {
  const g = await loadModel(buildMobileNetStyle({ int8: true }), { source: 'mnet-int8.tflite' });
  const hand = plan([['dwpw', 'depthwise_conv_2d_7', 'conv_2d_8']]);
  for (const [p, producer] of [['unfused', 'Conv'], [hand, 'FusedDwPw']] as const) {
    const s = await createInt8Session(g, { plan: p, hw: loadHw('lavapipe') });
    try {
      const steps = executorOf(s).dispatches.map((d) => d.step);
      assert.ok(!steps.some((st) => st.node.op === 'Add'));
      const withAdd = steps.filter((st) => st.group.some((n) => n.op === 'Add'));
      assert.deepEqual(withAdd.map((st) => st.group.map((n) => n.op)), [[producer, 'Add']]);
      assert.match(withAdd[0].program.name, /\+ add/);
      // It binds the input, the residual (the other operand, pw2's output) and writes the sum.
      assert.equal(withAdd[0].nIn, 2);
      assert.equal(withAdd[0].bindings.at(-1), withAdd[0].group[1].outputs[0]);
    } finally {
      s.dispose();
    }
  }
});

test('int8 MobileNet-style at 24x24 with another seed: fused as planned equals unfused and the reference', async () => {
  const g = await loadModel(buildMobileNetStyle({ int8: true, size: 24, seed: 5, classes: 12 }), { source: 'mnet24.tflite' });
  const [unfused, auto] = await runAll(g, ['unfused', 'auto'], [7]);
  assert.ok(auto.fusedModules > 0);
  assert.equal(auto.dispatchesPerRun, unfused.dispatchesPerRun - auto.fusedModules);
});

test('raw int8 feeds stand for the input QUANTIZE; fused nodes keep the intermediate quantization', async () => {
  const g = await loadModel(buildMobileNetStyle({ int8: true }), { source: 'mnet-int8.tflite' });
  const x = input(g, 3) as Float32Array;
  const q = g.tensors.get('input_int8')!.quant!;
  const raw = quantize(x, { scale: q.scale[0], zeroPoint: q.zeroPoint[0] }, 'int8') as Int8Array;
  const s = await createInt8Session(g, { plan: 'unfused' });
  try {
    const a = await s.run({ input: x });
    const b = await s.run({ input: raw });
    assert.deepEqual(Array.from(b.output.data), Array.from(a.output.data));
    await assert.rejects(s.run({ input: new Uint8Array(raw.length) }), (e: unknown) => e instanceof FcmError && e.exitCode === 2 && /int8 values of 'input_int8'/.test(e.message));
    await assert.rejects(s.run({ input: new Float32Array(3) }), (e: unknown) => e instanceof FcmError && e.exitCode === 2 && /has 3 values/.test(e.message));
  } finally {
    s.dispose();
  }
  const fused = prepareInt8Graph(g, plan([['pwdw', 'conv_2d_3', 'depthwise_conv_2d_5']]), () => loadHw('lavapipe'));
  const node = fused.nodes.find((n) => n.domain === fcmDomain)!;
  const mid = g.tensors.get('pw1')!.quant!;
  assert.equal(node.attrs.intermediateScale, mid.scale[0]);
  assert.equal(node.attrs.intermediateZeroPoint, mid.zeroPoint[0]);
  // Without it, the integer FCM cannot requantize the intermediate: refused, naming the node.
  const bare: Graph = { ...fused, nodes: fused.nodes.map((n) => (n === node ? { ...n, attrs: Object.assign(Object.create(null), n.attrs, { intermediateScale: undefined }) } : n)) };
  await assert.rejects(createInt8Session(bare, { plan: 'unfused' }), (e: unknown) => e instanceof FcmError && e.exitCode === 3 && /intermediate quantization/.test(e.message) && e.message.includes(node.name));
});

test('a host step that reads a Reshape of a value it makes itself runs the Reshape too (QUANTIZE -> RESHAPE -> SOFTMAX)', async () => {
  // Every node lands on the host (nothing reads a dispatch's output on the GPU); the Reshape between them is an
  // alias on the GPU, which the host step must run itself: the Softmax's axis is the reshaped one.
  const net = new NetWriter(3, true, { scale: [0.05], zeroPoint: [-3] }, true);
  const x0 = net.activation('input', [1, 2, 12], undefined, TensorType.FLOAT32);
  const x = net.unary(BuiltinOperator.QUANTIZE, 'x', x0, { scale: [0.02], zeroPoint: [1] });
  net.activation('flat', [1, 24], net.quantOf(x));
  const flat = net.op(BuiltinOperator.RESHAPE, [x, net.b.constI32('flat/shape', [2], [1, 24])], 'flat', opt.reshape([1, 24]));
  const y = net.unary(BuiltinOperator.SOFTMAX, 'probs', flat, { scale: [1 / 256], zeroPoint: [-128] }, opt.softmax());
  const g = await loadModel(net.finish([x0], [y]), { source: 'reshape-softmax.tflite' });
  const [st] = await runAll(g, ['unfused'], [1, 2]);
  assert.ok(st.hostNodes.length > 0, 'the nodes run on the host');
});

test('refuses a node neither the GPU nor the host reference runs', async () => {
  const g = await loadModel(buildMobileNetStyle({ int8: true }), { source: 'mnet-int8.tflite' });
  const bad: Graph = { ...g, nodes: g.nodes.map((n) => (n.op === 'HardSwish' ? { ...n, op: 'Tanh' } : n)) };
  await assert.rejects(createInt8Session(bad, { plan: 'unfused' }), (e: unknown) => e instanceof FcmError && e.exitCode === 3 && /hard_swish_10' \(Tanh\)/.test(e.message));
});

/** The FusePlanner reference's int8 MobileNetV1 (uint8 in and out) fused as planned and unfused: bit-exact with each other and the reference. */
async function referenceMobileNetV1BitExact(g: Graph, inputSeed: number) {
  const [unfused, auto] = await runAll(g, ['unfused', 'auto'], [inputSeed]);
  // 32 nodes on the GPU, the input QUANTIZE folded into the first conv and the output QUANTIZE into the Softmax
  // (test below).
  assert.equal(unfused.dispatchesPerRun, 30);
  assert.ok(auto.fusedModules > 0, 'the plan fuses');
  assert.equal(auto.dispatchesPerRun, unfused.dispatchesPerRun - auto.fusedModules);
  // Every node runs on the GPU, the Softmax and the output QUANTIZE too: one wait for the GPU.
  for (const s of [unfused, auto]) {
    assert.deepEqual(s.hostNodes, []);
    assert.equal(s.readBacksPerRun, 1);
  }
  return [unfused, auto];
}

// The FusePlanner reference's MobileNetV1 at 224x224 takes minutes on lavapipe fused (about 3 min; 30 s unfused): run it with
// FCM_OPT_SLOW_TESTS=1 (or on a real GPU). The same check runs always at 32x32 (below): on lavapipe most of its
// time is compiling the 32 kernels of each plan, which any input size pays alike.
test('the FusePlanner reference int8 MobileNetV1 (uint8 in and out) fused and unfused, bit-exact', { skip: process.env.FCM_OPT_SLOW_TESTS ? false : 'set FCM_OPT_SLOW_TESTS=1' }, async () => {
  await referenceMobileNetV1BitExact(await loadModel(buildSeedMobileNetV1(), { source: 'mob_v1.tflite' }), 9);
});

test('the FusePlanner reference int8 MobileNetV1 at 32x32 fused and unfused, bit-exact; float feeds of its uint8 input quantized on the GPU as on the host', async () => {
  const g = await loadModel(buildSeedMobileNetV1(7, 32), { source: 'mob_v1-32.tflite' });
  // The full-size test's check (its input seed too) at 32x32.
  const [unfused, auto] = await referenceMobileNetV1BitExact(g, 9);
  const x0 = g.inputs[0], y = g.outputs[0], t = g.tensors.get(x0)!;
  for (const st of [unfused, auto]) assert.deepEqual(st.inputQuantizers, [x0]);
  const s = await createInt8Session(g, { plan: 'auto', hw: loadHw('lavapipe') });
  try {
    // Beyond the input's range [-1, 1] too: the clamps.
    const x = Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => 1.3 * Math.sin(i * 0.37));
    const xq = quantizeF32(x, { scale: t.quant!.scale[0], zeroPoint: t.quant!.zeroPoint[0] }, 'uint8');
    const ref = runInt8Reference(g, { [x0]: xq });
    const a = await s.run({ [x0]: x }), b = await s.run({ [x0]: xq });
    assert.deepEqual(Array.from(a[y].raw!), Array.from(ref.outputs[0].data));
    assert.deepEqual(Array.from(b[y].raw!), Array.from(ref.outputs[0].data));
    // The quantizer is one GPU step of a profiled float run, none of a raw one.
    const p = await s.profile({ [x0]: x });
    assert.deepEqual(p.steps.filter((st) => st.node.startsWith('quantize input')).map((st) => st.where), ['gpu']);
    assert.equal(p.steps.length, s.stats().dispatchesPerRun + 1);
    assert.equal((await s.profile({ [x0]: xq })).steps.length, s.stats().dispatchesPerRun);
  } finally {
    s.dispose();
  }
});

test('the FusePlanner reference int8 MobileNetV1 is scheduled whole on the GPU, its input and output QUANTIZE folded into their neighbours', async () => {
  const g = await loadModel(buildSeedMobileNetV1(), { source: 'mob_v1.tflite' });
  // Built, not run (a run takes long on lavapipe; the slow test above checks the values).
  const s = await createInt8Session(g, { plan: 'unfused', hw: loadHw('lavapipe') });
  try {
    const st = s.stats();
    // 13 DW, 14 PW / 3x3 convs, the Mean, the classifier conv and the Softmax; the input QUANTIZE (uint8 to int8)
    // and the output QUANTIZE (int8 to uint8), each on one scale with zero points 128 apart (an exact shift), run
    // inside the first conv and the Softmax; the 4 Pads fold into the stride-2 DWs after them (foldPads), the
    // classifier head's Reshape is an alias.
    assert.equal(st.dispatchesPerRun, 30);
    const steps = executorOf(s).dispatches.map((d) => d.step);
    assert.deepEqual(steps[0].group.map((n) => n.op), ['DequantizeLinear', 'QuantizeLinear', 'Conv']);
    assert.equal(steps[0].bindings[0], g.inputs[0]);
    assert.deepEqual(steps.at(-1)!.group.map((n) => n.op), ['Softmax', 'DequantizeLinear', 'QuantizeLinear']);
    assert.equal(steps.at(-1)!.bindings.at(-1), g.outputs[0]);
    assert.deepEqual(st.hostNodes, []);
    assert.equal(st.readBacksPerRun, 1);
    // No host step: the dispatches are encoded ahead, their parts submitted with the feeds' and outputs' copies.
    assert.equal(st.encodedAhead, true);
    // The default parts of 30 dispatches: 3, 9, then the 18 left.
    assert.deepEqual([defaultFirstSubmit, defaultSubmitGrowth], [3, 3]);
    assert.equal(st.submitsPerRun, 3);
    assert.equal(st.commandBuffersPerRun, 3 + 2);
  } finally {
    s.dispose();
  }
});

test('profile(): one GPU step per dispatch (timestamped passes of one command buffer), host steps timed on the host', async () => {
  const g = await loadModel(buildMobileNetStyle({ int8: true }), { source: 'mnet-int8.tflite' });
  const s = await createInt8Session(g, { plan: 'unfused', hw: loadHw('lavapipe') });
  try {
    const x = input(g, 5);
    const before = await s.run({ [g.inputs[0]]: x });
    const p = await s.profile({ [g.inputs[0]]: x });
    const gpu = p.steps.filter((st) => st.where === 'gpu');
    assert.equal(gpu.length, s.stats().dispatchesPerRun);
    assert.deepEqual(p.steps.filter((st) => st.where === 'host').map((st) => st.node), s.stats().hostNodes);
    assert.ok(p.steps.every((st) => st.ms >= 0 && Number.isFinite(st.ms)));
    assert.ok(p.totalMs > 0);
    // A profiled run computes the same thing: the next run's outputs are unchanged.
    const after = await s.run({ [g.inputs[0]]: x });
    for (const k of Object.keys(before)) assert.deepEqual(after[k].data, before[k].data);
  } finally {
    s.dispose();
  }
});
