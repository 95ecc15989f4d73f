// f32 islands in fp16 sessions (src/runtime/f16-islands.ts): the rule on given values, the calibration graph's
// probes, and sessions on lavapipe: a fixture with an amplifying depthwise conv misses the f16 tolerance in pure
// fp16 and meets it with the islands 'auto' chooses, while a MobileNet-style stack gets none.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { amplifyingDepthwise, mobileNetV2Stack, offsetSum } from '../../fixtures/models.js';
import { type Graph, newAttrs } from '../../src/graph/ir.js';
import { calibrationGraph, chooseF32Tensors, islandThreshold, largestErrors, relativeError } from '../../src/runtime/f16-islands.js';
import { calibrationFeeds, calibrationInputs, createSession, heldOutInputs } from '../../src/pipeline/session.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { compareOutputs, seededInput } from '../../src/runtime/compare.js';
import type { HwConfig } from '../../src/planner/hw-config.js';

after(releaseGpu);

test('relativeError: max |probe - ref| / max |ref|; 0 when equal, infinite when only the reference is 0 or the probe NaN', () => {
  assert.equal(relativeError([1, -4, 2], [1, -4, 2]), 0);
  assert.ok(Math.abs(relativeError([1, -4, 2], [1.1, -4, 2.2]) - 0.05) < 1e-12);
  assert.equal(relativeError([0, 0], [0, 0]), 0);
  assert.equal(relativeError([0, 0], [0, 1e-9]), Infinity);
  assert.equal(relativeError([1, 2], [1, NaN]), Infinity);
  // A non-finite reference value is skipped.
  assert.equal(relativeError([Infinity, 2], [0, 2]), 0);
});

/** x -> Relu -> r; r -> Conv(w) -> y (a probe each), and a Reshape (alias, no probe). */
function smallGraph(): Graph {
  const t = (name: string, shape: number[], data?: Float32Array) => [name, { name, dtype: 'float32' as const, shape, ...(data ? { data } : {}) }] as const;
  return {
    name: 'g', source: 'g', inputs: ['x'], outputs: ['z'],
    tensors: new Map([t('x', [1, 2, 1, 1]), t('r', [1, 2, 1, 1]), t('w', [2, 2, 1, 1], Float32Array.of(1, 2, 3, 4)), t('y', [1, 2, 1, 1]), t('z', [2])]),
    nodes: [
      { name: 'relu', op: 'Relu', domain: '', inputs: ['x'], outputs: ['r'], attrs: newAttrs() },
      { name: 'conv', op: 'Conv', domain: '', inputs: ['r', 'w'], outputs: ['y'], attrs: newAttrs({ kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 }) },
      { name: 'flat', op: 'Reshape', domain: '', inputs: ['y'], outputs: ['z'], attrs: newAttrs() },
    ],
  };
}

test('calibrationGraph: a probe per kernel node reading rounded copies (activations by a Mul by 1, constants copied)', () => {
  const g = smallGraph();
  const c = calibrationGraph(g);
  assert.deepEqual(c.probes.map((p) => [p.node, p.inputs, p.outputs]), [['relu', ['x'], [['r', 'r#probe']]], ['conv', ['r', 'w'], [['y', 'y#probe']]]]);
  assert.deepEqual(c.halfTensors, ['x#f16', 'r#f16', 'w#f16']);
  const byName = new Map(c.graph.nodes.map((n) => [n.name, n]));
  assert.deepEqual(byName.get('x#f16')?.inputs, ['x', '#f16#one']);
  assert.deepEqual(c.graph.tensors.get('#f16#one')?.shape, [], 'a scalar: it broadcasts to any shape, a scalar one included');
  assert.equal(byName.get('x#f16')?.op, 'Mul');
  assert.deepEqual(byName.get('conv#probe')?.inputs, ['r#f16', 'w#f16']);
  assert.deepEqual(c.graph.tensors.get('w#f16')?.data, g.tensors.get('w')!.data);
  assert.equal(byName.has('flat#probe'), false, 'aliases are not probed');
  assert.deepEqual(c.graph.outputs, ['z', 'r', 'r#probe', 'y', 'y#probe']);
  // Every node comes after the nodes making its inputs.
  const made = new Set([...g.inputs, ...[...c.graph.tensors.values()].filter((t) => t.data).map((t) => t.name)]);
  for (const n of c.graph.nodes) {
    for (const x of n.inputs) assert.ok(made.has(x), `${n.name} reads ${x} before it is made`);
    n.outputs.forEach((y) => made.add(y));
  }
});

test('calibrationGraph: model tensors named like its own (x#f16, y#probe, #f16#one) keep their names; its own take others', () => {
  // x -> Relu -> 'x#f16' -> Mul by the constant '#f16#one' -> 'x#f16#probe', and a Relu of 'x#f16' into 'r#probe'.
  const shape = [1, 4];
  const names = ['x', 'x#f16', '#f16#one', 'x#f16#probe', 'r', 'r#probe'];
  const g: Graph = {
    name: 'names', source: 'names.onnx', inputs: ['x'], outputs: ['x#f16#probe', 'r#probe'],
    tensors: new Map(names.map((t) => [t, { name: t, dtype: 'float32' as const, shape: t === '#f16#one' ? [1] : shape, ...(t === '#f16#one' ? { data: Float32Array.of(3) } : {}) }])),
    nodes: [
      { name: 'relu', op: 'Relu', domain: '', inputs: ['x'], outputs: ['x#f16'], attrs: newAttrs() },
      { name: 'mul', op: 'Mul', domain: '', inputs: ['x#f16', '#f16#one'], outputs: ['x#f16#probe'], attrs: newAttrs() },
      { name: 'relu2', op: 'Relu', domain: '', inputs: ['x#f16'], outputs: ['r'], attrs: newAttrs() },
      { name: 'neg', op: 'Neg', domain: '', inputs: ['r'], outputs: ['r#probe'], attrs: newAttrs() },
    ],
  };
  const c = calibrationGraph(g);
  // The model's tensors are unchanged; the calibration's own are new names, all distinct.
  for (const t of names) assert.deepEqual(c.graph.tensors.get(t), g.tensors.get(t), t);
  const own = [...c.graph.tensors.keys()].filter((t) => !g.tensors.has(t));
  assert.equal(own.length, new Set(own).size);
  for (const p of c.probes) for (const [y, q] of p.outputs) assert.ok(!g.tensors.has(q) && y !== q, `${p.node}: probe output ${q}`);
  assert.ok(c.halfTensors.every((t) => !g.tensors.has(t)), c.halfTensors.join(', '));
  // The rounding copies multiply by a 1 of their own, not by the model's 3.
  const copies = c.graph.nodes.filter((n) => c.halfTensors.includes(n.outputs[0]) && n.op === 'Mul');
  assert.ok(copies.length >= 2);
  for (const n of copies) assert.deepEqual(c.graph.tensors.get(n.inputs[1])?.data, new Float32Array([1]), n.name);
});

test("an fp16 'auto' session of a model with such names runs and matches fp32", async () => {
  const shape = [1, 4, 8, 8];
  const n = shape.reduce((a, b) => a * b, 1);
  const g: Graph = {
    name: 'names', source: 'names.onnx', inputs: ['x'], outputs: ['y#probe'],
    tensors: new Map([
      ['x', { name: 'x', dtype: 'float32', shape }],
      ['x#f16', { name: 'x#f16', dtype: 'float32', shape }],
      ['#f16#one', { name: '#f16#one', dtype: 'float32', shape: [1], data: Float32Array.of(0.5) }],
      ['y#probe', { name: 'y#probe', dtype: 'float32', shape }],
    ]),
    nodes: [
      { name: 'relu', op: 'Relu', domain: '', inputs: ['x'], outputs: ['x#f16'], attrs: newAttrs() },
      { name: 'mul', op: 'Mul', domain: '', inputs: ['x#f16', '#f16#one'], outputs: ['y#probe'], attrs: newAttrs() },
    ],
  };
  const x = seededInput(n, 3);
  const s16 = await createSession(g, { plan: 'unfused', precision: 'fp16' });
  const y = (await s16.run({ x }))['y#probe'].data;
  s16.dispose();
  // relu(x) * 0.5 rounded to f16: within 2^-11 of each value.
  for (let i = 0; i < n; i++) {
    const want = Math.max(0, x[i]) * 0.5;
    assert.ok(Math.abs(y[i] - want) <= 2 ** -11 * Math.abs(want) + 2 ** -24, `${i}: ${y[i]} against ${want}`);
  }
});

test('chooseF32Tensors keeps the float inputs of the nodes over the threshold, and of those upstream whose error they amplify over it', () => {
  const g = smallGraph();
  const c = calibrationGraph(g);
  const u = 2 ** -11;
  const values = new Map<string, Float32Array>([
    ['r', Float32Array.of(1, 2)], ['r#probe', Float32Array.of(1, 2 + 2 * u * 0.5)], // e(relu) = u/2
    ['y', Float32Array.of(10, -10)], ['y#probe', Float32Array.of(10.5, -10)], // e(conv) = 5e-2: a gain of 102
  ]);
  const r = chooseF32Tensors(g, c.probes, values);
  assert.deepEqual(r.measured.map((m) => [m.node, m.error]), [['relu', u / 2], ['conv', 0.05]]);
  // The Relu's own error, u/2, amplified 102 times by the conv: 2.5e-2, over the threshold too.
  assert.deepEqual(r.flagged.map((m) => m.node), ['relu', 'conv']);
  assert.deepEqual(r.keepF32, ['x', 'r', 'w']);
  // A conv amplifying 25 times: u/2 * 25 = 6e-3 is within the threshold; the conv's own 1.2e-2 is not.
  values.set('y#probe', Float32Array.of(10 + 10 * 25 * u, -10));
  assert.deepEqual(chooseF32Tensors(g, c.probes, values).keepF32, ['r', 'w']);
  // Just under the threshold: nothing kept.
  values.set('y#probe', Float32Array.of(10 + 10 * islandThreshold * 0.99, -10));
  assert.deepEqual(chooseF32Tensors(g, c.probes, values).keepF32, []);
  // A higher threshold given: nothing kept either.
  values.set('y#probe', Float32Array.of(10.5, -10));
  assert.deepEqual(chooseF32Tensors(g, c.probes, values, 0.1).keepF32, []);
  values.delete('y#probe');
  assert.throws(() => chooseF32Tensors(g, c.probes, values), /lacks 'y#probe'/);
});

const hw: HwConfig = { name: 'lavapipe-like', sms: 16, l1BytesPerSm: 64 * 1024, shmemBytesPerSm: 64 * 1024, warpSize: 32, workgroupStorageBytes: 32 * 1024 };

test('an amplifying depthwise conv: pure fp16 misses the f16 tolerance, the islands auto chooses meet it', async () => {
  const g = amplifyingDepthwise();
  const x = g.inputs[0], y = g.outputs[0];
  const data = seededInput(g.tensors.get(x)!.shape.reduce((a, b) => a * b, 1), 0);
  const dwNode = g.nodes.find((n) => n.op === 'Conv' && n.attrs.group === 8)!;
  for (const plan of ['unfused', 'auto'] as const) {
    const s32 = await createSession(g, { plan, hw });
    // inputs 'f16': the islands alone (by default the input, read by one node, stays f32 too).
    const pure = await createSession(g, { plan, hw, precision: 'fp16', fp16: { keepF32: 'none', inputs: 'f16' } });
    const mixed = await createSession(g, { plan, hw, precision: 'fp16', fp16: { inputs: 'f16' } });
    try {
      const ref = (await s32.run({ [x]: data }))[y].data;
      const p = compareOutputs((await pure.run({ [x]: data }))[y].data, ref, [1, ref.length], undefined, undefined, 'fp16');
      const m = compareOutputs((await mixed.run({ [x]: data }))[y].data, ref, [1, ref.length], undefined, undefined, 'fp16');
      assert.ok(!p.ok, `${plan}: pure fp16 passes (${JSON.stringify(p)}): the fixture does not amplify`);
      assert.ok(m.ok, `${plan}: with islands ${JSON.stringify(m)}`);
      assert.deepEqual(pure.stats().f32Tensors, []);
      // The depthwise conv's input activation, weights and bias; nothing else.
      assert.deepEqual(mixed.stats().f32Tensors.sort(), [...dwNode.inputs].sort());
      // The rest stays f16: the activation bytes are well under fp32's.
      assert.ok(mixed.stats().activationBytes < s32.stats().activationBytes, 'activations mostly f16');
    } finally {
      s32.dispose();
      pure.dispose();
      mixed.dispose();
    }
  }
});

test('no islands where f16 does not need them: a MobileNet-style stack stays all f16 but its input; names given are kept', async () => {
  const g = mobileNetV2Stack();
  const s = await createSession(g, { plan: 'unfused', precision: 'fp16' });
  try {
    assert.deepEqual(s.stats().f32Tensors, [g.inputs[0]]);
  } finally {
    s.dispose();
  }
  const conv = g.nodes.find((n) => n.op === 'Conv')!;
  const given = await createSession(g, { plan: 'unfused', precision: 'fp16', fp16: { keepF32: [conv.inputs[1]] } });
  try {
    assert.deepEqual(given.stats().f32Tensors.sort(), [conv.inputs[1], g.inputs[0]].sort());
    const data = seededInput(g.tensors.get(g.inputs[0])!.shape.reduce((a, b) => a * b, 1), 0);
    await given.run({ [g.inputs[0]]: data });
  } finally {
    given.dispose();
  }
  await assert.rejects(createSession(g, { plan: 'unfused', precision: 'fp16', fp16: { keepF32: ['nope'] } }), /keepF32 names 'nope'/);
});

test('largestErrors: each node at its largest error over the runs (an infinite one included)', () => {
  const run = (a: number, b: number) => [{ node: 'p', op: 'Relu', error: a, inputs: ['x'] }, { node: 'q', op: 'Conv', error: b, inputs: ['r', 'w'] }];
  assert.deepEqual(largestErrors([run(1e-3, 5e-2), run(4e-3, 1e-4), run(2e-3, Infinity)]).map((m) => [m.node, m.error, m.inputs]),
    [['p', 4e-3, ['x']], ['q', Infinity, ['r', 'w']]]);
  assert.deepEqual(largestErrors([]), []);
  assert.throws(() => largestErrors([run(0, 0), run(0, 0).reverse()]), /runs differ at node/);
});

test('calibration inputs: seeded values in [-1, 1) and in [0, 1), none of them check\'s seed (0)', () => {
  const g = offsetSum();
  const n = g.tensors.get('x')!.shape.reduce((a, b) => a * b, 1);
  const [signed, unit] = calibrationInputs.map((c) => calibrationFeeds(g, c).x);
  assert.deepEqual(signed, seededInput(n, calibrationInputs[0].seed));
  assert.ok(unit.every((v) => v >= 0 && v < 1) && unit.some((v) => v > 0.99) && unit.some((v) => v < 0.01), 'unit: [0, 1) and spanning it');
  assert.ok(signed.some((v) => v < -0.99), 'signed: reaching -1');
  assert.ok(![...calibrationInputs, ...heldOutInputs].some((c) => c.seed === 0));
  assert.equal(new Set([...calibrationInputs, ...heldOutInputs].map((c) => c.seed)).size, 6, "the held-out inputs are none of the calibration inputs");
});

test('islands chosen on inputs of different statistics: a sum that overflows f16 on non-negative inputs only stays f32', async () => {
  // A choice made on zero-mean inputs alone sees no error there, keeps nothing f32, and then fails on non-negative
  // inputs (the rule before: one calibration input in [-1, 1), checked on it alone). Calibrating on [0, 1) too keeps
  // the sum f32.
  const g = offsetSum();
  const x = g.inputs[0], y = g.outputs[0];
  const n = g.tensors.get(x)!.shape.reduce((a, b) => a * b, 1);
  const sum = g.nodes[0].outputs[0];
  const signed = seededInput(n, 0), unit = seededInput(n, 0).map((v) => (v + 1) / 2);
  const s32 = await createSession(g, { plan: 'unfused' });
  const pure = await createSession(g, { plan: 'unfused', precision: 'fp16', fp16: { keepF32: 'none' } });
  const signedOnly = await createSession(g, { plan: 'unfused', precision: 'fp16', fp16: { calibration: calibrationFeeds(g, calibrationInputs[0]) } });
  const auto = await createSession(g, { plan: 'unfused', precision: 'fp16' });
  try {
    const check = async (s: typeof s32, data: Float32Array) => {
      const ref = (await s32.run({ [x]: data }))[y].data;
      return compareOutputs((await s.run({ [x]: data }))[y].data, ref, [1, ref.length], undefined, undefined, 'fp16');
    };
    // The fixture: pure f16 passes on signed inputs and overflows on non-negative ones.
    assert.ok((await check(pure, signed)).ok, 'pure f16 on a signed input');
    const over = await check(pure, unit);
    assert.ok(!over.ok && over.maxAbsError === Infinity, `pure f16 on a non-negative input overflows: ${JSON.stringify(over)}`);
    // Calibrated on signed feeds alone, nothing is flagged; the held-out inputs (non-negative ones among them) then
    // overflow at every threshold, and every float tensor stays f32.
    assert.deepEqual([...signedOnly.stats().f32Tensors].sort(), [...g.tensors.values()].filter((t) => t.dtype === 'float32').map((t) => t.name).sort());
    assert.ok((await check(signedOnly, unit)).ok);
    // 'auto': the sum (and the nodes around it) f32; both inputs within the f16 tolerance.
    assert.ok(auto.stats().f32Tensors.includes(sum), `kept: ${auto.stats().f32Tensors.join(', ')}`);
    for (const [what, data] of [['signed', signed], ['non-negative', unit]] as const) {
      const c = await check(auto, data);
      assert.ok(c.ok, `auto on a ${what} input: ${JSON.stringify(c)}`);
    }
  } finally {
    s32.dispose();
    pure.dispose();
    signedOnly.dispose();
    auto.dispose();
  }
});
