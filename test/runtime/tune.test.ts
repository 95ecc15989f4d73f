// --tune (src/tune/tune.ts): the tuning loop's decisions with injected per-node times (deterministic: which
// modules survive, with which variant's tiles and times), and runs on lavapipe: the real profiles with the FCMs'
// times scaled down so that fusion must win (a tuned plan that keeps every module, runs them and computes the
// same outputs), and the integer kernels' real times (whatever stays is consistent with the recorded times).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { fixtureModels } from '../../fixtures/models.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import { toDag } from '../../src/planner/to-dag.js';
import { fcmDomain, newAttrs } from '../../src/graph/ir.js';
import type { HwConfig } from '../../src/planner/hw-config.js';
import { planFusion } from '../../src/planner/index.js';
import { loadHw } from '../../src/planner/hw.js';
import { planToJson } from '../../src/planner/format.js';
import { pairKey } from '../../src/planner/optimal.js';
import { createSession } from '../../src/pipeline/session.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { type TileVariant, type TuneResult, planningInput, strandedUs, tunePlan, tileVariants } from '../../src/tune/tune.js';
import { medianModuleTimes } from '../../src/bench/profile.js';
import type { Session } from '../../src/runtime/executor.js';
import { buildMobileNetStyle, buildSeedMobileNetV1 } from '../../fixtures/tflite-builder.js';
import { createInt8Session } from '../../src/pipeline/session.js';
import { compareOutputs, seededInput } from '../../src/runtime/compare.js';

after(releaseGpu);

// A description on which the planner fuses (as in test/runtime/session.test.ts).
const hw: HwConfig = { name: 'lavapipe-like', sms: 16, l1BytesPerSm: 64 * 1024, shmemBytesPerSm: 64 * 1024, warpSize: 32, workgroupStorageBytes: 32 * 1024 };
const isFused = (k: string) => k === 'pwdw' || k === 'dwpw' || k === 'pwpw';

/**
 * What any tuning result must satisfy, whatever the times: every fused module of the plan was measured and kept
 * (its row says so), carries the figures of its row's chosen variant and was faster than its LBL pair; every
 * module measured slower with every variant is excluded and not fused. Returns the fused modules.
 */
function assertConsistent(r: TuneResult) {
  const fused = r.plan.modules.filter((m) => isFused(m.kind));
  for (const m of fused) {
    const row = r.rows.find((w) => w.module === (m.nodes ?? []).join('+'));
    assert.ok(row && row.kept && row.variant, `fused module ${m.nodes} has no kept row`);
    assert.ok(m.tuned, `fused module ${m.nodes} carries no measured times`);
    assert.equal(m.tuned.variant, row.variant);
    assert.equal(m.tuned.fusedUs, row.fusedUs[row.variant]);
    assert.ok(m.tuned.fusedUs < m.tuned.lblUs, `${m.nodes}: kept at ${m.tuned.fusedUs} us against LBL ${m.tuned.lblUs} us`);
    assert.ok(!r.excluded.includes(pairKey(m.layers[0], m.layers[1])));
  }
  for (const row of r.rows.filter((w) => !w.kept)) {
    assert.ok(!fused.some((m) => (m.nodes ?? []).join('+') === row.module), `${row.module} was measured slower and stayed fused`);
  }
  assert.equal(r.excluded.length >= r.rows.filter((w) => !w.kept).length, true);
  return fused;
}

test('tunePlan: modules slower than LBL are left unfused, the fastest variant is kept, every kept module was measured', async () => {
  // The bundled MobileNetV2 (x0.35): its lavapipe plan has PW-DW and DW-PW modules.
  const g = await loadModel('fixtures/bundled/mobilenetv2-slim.onnx');
  const hw = loadHw('lavapipe');
  const initial = planFusion(toDag(g), hw, { mode: 'optimal', model: 'm' });
  const kinds = new Set(initial.modules.filter((m) => isFused(m.kind)).map((m) => m.kind));
  assert.ok(kinds.has('pwdw') && kinds.size >= 2, `fixture plan has ${[...kinds]}`);
  // Every LBL layer 10 us; every PW-DW module 6 us, every other FCM 30 us.
  const times = (s: { graph: { nodes: { name: string; op: string; domain: string }[] } }) =>
    s.graph.nodes.map((n) => {
      if (n.domain !== fcmDomain) return { node: n.name, op: n.op, gpuMs: 0.010 };
      if (n.op !== 'FusedPwDw') return { node: n.name, op: n.op, gpuMs: 0.030 };
      return { node: n.name, op: n.op, gpuMs: 0.006 };
    });
  const measure = async (ss: readonly { graph: { nodes: { name: string; op: string; domain: string }[] } }[]) => ss.map(times);
  const r = await tunePlan(g, hw, { measure: measure as never, rounds: 3, kernels: false });
  assertConsistent(r);
  for (const m of r.plan.modules.filter((m) => isFused(m.kind))) {
    assert.equal(m.kind, 'pwdw', 'a module measured slower than LBL stayed fused');
    assert.ok(m.tuned && m.tuned.fusedUs < m.tuned.lblUs, 'a kept module carries its measured times');
    assert.equal(m.tuned!.fusedUs, 6);
    assert.ok(m.tuned!.lblUs >= 20);
  }
  assert.ok(r.plan.modules.some((m) => m.kind === 'pwdw'), 'PW-DW modules (faster) were dropped');
  for (const k of r.excluded) {
    assert.ok(!r.plan.modules.some((m) => isFused(m.kind) && pairKey(m.layers[0], m.layers[1]) === k), `excluded pair ${k} is fused`);
  }
  assert.ok(r.excluded.length > 0);
  // Every fused module of the first plan was timed with every variant.
  for (const row of r.rows) assert.deepEqual(Object.keys(row.fusedUs).sort(), tileVariants.map((v) => v.name).sort());
  // A tuned plan is data like any other: it survives JSON.
  assert.deepEqual(JSON.parse(planToJson(r.plan)), JSON.parse(JSON.stringify(r.plan)));
});

test('tunePlan keeps each module\'s fastest variant, with its tiles and times; modules slower than LBL with every variant are dropped', async () => {
  // Variants that mark the tiles (tileH 1, 2, 3), so the injected times can depend on the variant a module runs.
  const marked: TileVariant[] = [1, 2, 3].map((h) => ({ name: `h${h}`, apply: (t) => ({ ...t, h }) }));
  // LBL layers 10 us each; PW-DW modules 12, 5 and 7 us with h1, h2, h3 (h2 wins, under the 20 us of its two
  // layers); every other FCM 25, 30, 21 us (slower than LBL with every variant).
  const fcmUs: Record<string, number[]> = { FusedPwDw: [12, 5, 7] };
  const times = (s: Session) => s.graph.nodes.map((n) => {
    if (n.domain !== fcmDomain) return { node: n.name, op: n.op, gpuMs: 0.010 };
    const us = (fcmUs[n.op] ?? [25, 30, 21])[(n.attrs.tileH as number) - 1];
    return { node: n.name, op: n.op, gpuMs: us / 1000 };
  });
  // The bundled MobileNetV2 (x0.35): its lavapipe plan has PW-DW and DW-PW modules.
  const g = await loadModel('fixtures/bundled/mobilenetv2-slim.onnx');
  const hwL = loadHw('lavapipe');
  const initial = planFusion(toDag(g), hwL, { mode: 'optimal', model: 'm' });
  assert.ok(initial.modules.some((m) => m.kind === 'pwdw') && initial.modules.some((m) => isFused(m.kind) && m.kind !== 'pwdw'),
    `the fixture plan has PW-DW and other FCMs: ${initial.modules.map((m) => m.kind)}`);
  const r = await tunePlan(g, hwL, { measure: async (ss) => ss.map(times), variants: marked, rounds: 3, kernels: false });
  const fused = assertConsistent(r);
  assert.ok(fused.length > 0, 'no fused module survived tuning');
  for (const m of fused) {
    assert.equal(m.kind, 'pwdw');
    assert.deepEqual(m.tuned, { fusedUs: 5, lblUs: 20, variant: 'h2' });
    assert.equal(m.tiles.h, 2, 'the kept variant\'s tiles are the plan\'s');
  }
  // Every PW-DW pair the planner proposed at any round is kept; every other pair measured is excluded.
  for (const row of r.rows) {
    assert.deepEqual(Object.keys(row.fusedUs).sort(), ['h1', 'h2', 'h3']);
    assert.equal(row.lblUs, 20);
    const [best, us] = Object.entries(row.fusedUs).sort((p, q) => p[1] - q[1])[0];
    assert.equal(row.variant, best);
    assert.equal(row.kept, us < row.lblUs, row.module);
    assert.equal(row.kept, row.kind === 'pwdw', row.module);
  }
  assert.equal(fused.length, r.rows.filter((w) => w.kept).length);
  assert.ok(r.rows.some((w) => !w.kept) && r.excluded.length > 0);
});

test('tunePlan on the device (lavapipe): the real profiles with fusion made to win; a valid tuned plan, same outputs as unfused', async () => {
  const g = await loadModel(exportOnnx(fixtureModels.mobilenetv2_stack()), { source: 'm' });
  // The real per-node profiles (what tunePlan measures by default), with the fused session's FCM times divided
  // by 1000: which module wins no longer depends on lavapipe's timing, so every planned module must be kept.
  let calls = 0;
  const measure = async (ss: readonly Session[], feeds: Record<string, Float32Array>) => {
    calls++;
    const t = (await medianModuleTimes(ss, feeds, 1, { iters: 2 })).times;
    const fcms = new Set(ss[0].graph.nodes.filter((n) => n.domain === fcmDomain).map((n) => n.name));
    assert.ok(t[0].length > 0 && t[1].length > 0, 'the sessions were profiled');
    return [t[0].map((e) => (fcms.has(e.node) ? { ...e, gpuMs: e.gpuMs / 1000 } : e)), t[1]];
  };
  const r = await tunePlan(g, hw, { measure, rounds: 2, variants: tileVariants.slice(0, 2), kernels: false });
  assert.ok(calls >= 2, 'every variant was profiled');
  const initial = planFusion(toDag(g), hw, { mode: 'optimal', model: 'm' });
  const pairs = (p: typeof initial) => p.modules.filter((m) => isFused(m.kind)).map((m) => pairKey(m.layers[0], m.layers[1])).sort();
  const fused = assertConsistent(r);
  assert.ok(fused.length > 0, 'no fused module survived tuning');
  assert.deepEqual(pairs(r.plan), pairs(initial), 'every planned module was kept');
  for (const m of fused) assert.ok(m.tuned!.lblUs > 0 && m.tuned!.fusedUs > 0, 'measured times recorded');
  const x = seededInput(g.tensors.get(g.inputs[0])!.shape.reduce((a, b) => a * b, 1), 3);
  const outs = [];
  for (const plan of [r.plan, 'unfused'] as const) {
    const s = await createSession(g, { hw, plan });
    try {
      // The tuned plan runs its FCMs, with the tuned tiles.
      assert.equal(s.graph.nodes.filter((n) => n.domain === fcmDomain).length, plan === 'unfused' ? 0 : fused.length);
      outs.push((await s.run({ [g.inputs[0]]: x }))[g.outputs[0]]);
    } finally {
      s.dispose();
    }
  }
  const c = compareOutputs(outs[0].data, outs[1].data, outs[0].shape);
  assert.ok(c.maxAbsError <= c.tolerance, `tuned vs unfused: ${c.maxAbsError} > ${c.tolerance}`);
});

test('strandedUs: a Mul only the fused session runs (its product read by an FCM) is charged to that module', () => {
  const t = (name: string) => ({ name, dtype: 'float32' as const, shape: [1, 4, 2, 2] });
  const fusedGraph = {
    name: 'g', source: 'g', inputs: ['x', 's'], outputs: ['y'],
    tensors: new Map(['x', 's', 'p', 'y'].map((n) => [n, t(n)])),
    nodes: [
      { name: 'mul', op: 'Mul', domain: '', inputs: ['x', 's'], outputs: ['p'], attrs: newAttrs() },
      { name: 'c1+c2', op: 'FusedPwPw', domain: fcmDomain, inputs: ['p', 'w1', '', 'w2', '', ''], outputs: ['y'], attrs: newAttrs({ layer1: 'c1', layer2: 'c2' }) },
    ],
  };
  const plan = {
    model: 'g', hw: 'h', mode: 'optimal' as const, totals: { gma: 0, gmaUnfused: 0, saved: 0, savedPercent: 0 },
    modules: [{ kind: 'pwpw' as const, layers: [0, 1], nodes: ['c1', 'c2'], tiles: {}, gma: 0, gmaUnfused: 0 }],
  };
  const rows = [
    { module: 0, kind: 'pwpw', nodes: ['c1', 'c2'], fusedGpuMs: 0.02, unfusedGpuMs: 0.03 },
    { module: null, kind: 'Mul', nodes: ['mul'], fusedGpuMs: 0.005 },
  ];
  assert.deepEqual([...strandedUs(plan, fusedGraph, rows)], [[0, 5]]);
  // A Mul both sessions run is nobody's extra cost.
  assert.equal(strandedUs(plan, fusedGraph, [rows[0], { ...rows[1], unfusedGpuMs: 0.005 }]).size, 0);
});

test('tunePlan on a quantized model: planned as the integer executor plans (1-byte elements), tuned on its kernels, same outputs', async () => {
  // The FusePlanner reference's MobileNetV1 at 32x32: every node has an integer kernel, so createSession runs it on them (the
  // MobileNet-style fixture's HardSwish would send it to the float kernels). Its first 4 blocks (stride 1 and stride 2
  // with its Pad, 4 DW-PW pairs, all planned fused) and the head: the tuner does the same for 4 pairs as for 13, and
  // each integer layer compiles its own pipelines (its quantization in the WGSL), about a second each on lavapipe.
  const g = await loadModel(buildSeedMobileNetV1(7, 32, false, 4), { source: 'mob_v1-32.tflite' });
  const hwL = loadHw('lavapipe');
  const pin = planningInput(g, hwL);
  assert.equal(pin.dtypeBytes, 1);
  const auto = planFusion(pin.dag, hwL, { mode: 'optimal', model: 'q', dtypeBytes: 1, batch: pin.batch });
  const pairs = (p: typeof auto) => p.modules.filter((m) => isFused(m.kind)).map((m) => pairKey(m.layers[0], m.layers[1])).sort();
  assert.ok(pairs(auto).length > 0, 'the fixture plan fuses');
  // Every FCM measured faster than its layers: the tuned plan keeps the 1-byte plan's pairs.
  const paths = new Set<string | undefined>();
  const measure = async (ss: readonly { path?: string; graph: { nodes: { name: string; op: string; domain: string }[] } }[]) => {
    for (const s of ss) paths.add(s.path);
    return ss.map((s) => s.graph.nodes.map((n) => ({ node: n.name, op: n.op, gpuMs: n.domain === fcmDomain ? 0.006 : 0.010 })));
  };
  const fake = await tunePlan(g, hwL, { measure: measure as never, rounds: 2 });
  assert.deepEqual(pairs(fake.plan), pairs(auto));
  // Every session tunePlan timed ran on the integer kernels.
  assert.deepEqual([...paths], ['int8']);
  // On the device: the integer sessions run the tuned plan, bit-exact with the unfused one.
  // Two variants, as the float test on the device: every variant bakes its own integer kernels, which software Vulkan
  // compiles one by one. The choice among all five variants is covered by the fake-measured run above, the integer
  // FCM kernels under other tiles by test/kernels/int8.
  const r = await tunePlan(g, hwL, { profiles: 1, rounds: 1, variants: tileVariants.slice(0, 2) });
  // Real lavapipe times decide here (which modules stay is not asserted); whatever stays must be consistent.
  assert.ok(r.rows.length > 0, 'the plan\'s modules were measured');
  assertConsistent(r);
  const x = Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.7) * 2);
  const [a, b] = [await createInt8Session(g, { plan: r.plan, hw: hwL }), await createInt8Session(g, { plan: 'unfused', hw: hwL })];
  try {
    const ya = await a.run({ [g.inputs[0]]: x }), yb = await b.run({ [g.inputs[0]]: x });
    const y = g.outputs[0];
    assert.deepEqual(Array.from(ya[y].raw ?? ya[y].data), Array.from(yb[y].raw ?? yb[y].data));
  } finally {
    a.dispose();
    b.dispose();
  }
});

test('planningInput: a quantized graph that createSession runs dequantized is planned as the float kernels plan', async () => {
  const g = await loadModel(buildMobileNetStyle({ int8: true }), { source: 'mnet-int8.tflite' });
  assert.equal(planningInput(g, loadHw('lavapipe'), false).dtypeBytes, 4);
  assert.equal(planningInput(g, loadHw('lavapipe'), true).dtypeBytes, 1);
});
