// The optimized model file: exportOptimized -> onnxruntime runs it with the original outputs;
// readOptimized restores the same plan and the same fused graph.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { fixtureModels } from '../../fixtures/models.js';
import { GraphBuilder, mulberry32 } from '../../fixtures/ir-builder.js';
import { prepareGraph } from '../../src/graph/prepare.js';
import { toDag } from '../../src/planner/to-dag.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { decodeModel, encodeModel, onnx } from '../../converters/onnx/codec.js';
import { planOptimal } from '../../src/planner/optimal.js';
import { applyPlan } from '../../src/rewrite/apply-plan.js';
import { fuseEpilogues } from '../../src/rewrite/epilogues.js';
import { fcmDomain, type Graph, type Node } from '../../src/graph/ir.js';
import type { HwConfig } from '../../src/planner/hw-config.js';
import type { Plan } from '../../src/planner/plan.js';
import { exportOptimized, planMetadataKey } from '../../src/export/optimized.js';
import { planFromGraph, readOptimized } from '../../src/export/read-optimized.js';
import { assertFcm, assertFcmAsync } from '../converters/onnx-helpers.js';

const hw: HwConfig = { name: 'lavapipe-like', sms: 16, l1BytesPerSm: 64 * 1024, shmemBytesPerSm: 64 * 1024, warpSize: 32, workgroupStorageBytes: 32 * 1024 };
const hwTime: HwConfig = { ...hw, name: 'lavapipe-like-time', dramGBps: 2400, fp32Gflops: 67000, dispatchOverheadUs: 6 };

/** Runs a model on onnxruntime CPU with a seeded input in [-1, 1). */
async function runOrt(bytes: Uint8Array, shape: number[], seed = 7): Promise<Map<string, Float32Array>> {
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  const r = mulberry32(seed);
  const x = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => 2 * r() - 1);
  const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, shape) });
  const m = new Map<string, Float32Array>();
  for (const name of session.outputNames) m.set(name, out[name].data as Float32Array);
  await session.release();
  return m;
}

/** The accuracy bound of the project: max |ours - ref| <= 1e-4 * max(1, max |ref|). */
function assertClose(got: Map<string, Float32Array>, want: Map<string, Float32Array>, what: string): void {
  assert.deepEqual([...got.keys()], [...want.keys()], `${what}: output names`);
  for (const [name, ref] of want) {
    const y = got.get(name)!;
    assert.equal(y.length, ref.length);
    let maxRef = 0, maxDiff = 0;
    for (let i = 0; i < ref.length; i++) {
      maxRef = Math.max(maxRef, Math.abs(ref[i]));
      maxDiff = Math.max(maxDiff, Math.abs(y[i] - ref[i]));
    }
    assert.ok(maxDiff <= 1e-4 * Math.max(1, maxRef), `${what}: output '${name}' differs by ${maxDiff} (max |ref| ${maxRef})`);
    assert.ok(maxRef > 0, `${what}: output '${name}' is all zeros (the check would be vacuous)`);
  }
}

/** A comparable form of a graph's structure: ops, domains, wiring, attributes (floats as float32). */
function structure(g: Graph): unknown[] {
  const norm = (v: unknown): unknown => (typeof v === 'number' ? Math.fround(v) : Array.isArray(v) ? v.map(norm) : v);
  return g.nodes.map((n: Node) => ({
    name: n.name, op: n.op, domain: n.domain, inputs: n.inputs, outputs: n.outputs,
    attrs: n.domain === fcmDomain ? Object.fromEntries(Object.keys(n.attrs).sort().map((k) => [k, norm(n.attrs[k])])) : undefined,
  }));
}

/**
 * A graph with one module of each kind and every kind of epilogue variant: absent first bias with a
 * present second one, asymmetric pads and stride 2, a residual on a DW-PW, parameterized activations.
 */
function epilogueVariants(): { graph: Graph; convs: string[] } {
  const b = new GraphBuilder('epilogue_variants', 11);
  const x = b.input('input', [1, 8, 9, 9]);
  let y = b.conv(x, { filters: 16, kernel: 1 });                                          // pw, no bias
  y = b.node('LeakyRelu', [y], b.shape(y), { alpha: 0.1 });
  y = b.conv(y, { filters: 16, kernel: 3, stride: 2, group: 16, bias: true });            // dw s2 -> 5x5
  y = b.hardSigmoid(y, 0.25, 0.4);
  const skip = y;
  let z = b.conv(y, { filters: 16, kernel: 5, pad: 2, group: 16 });                        // dw 5x5, no bias
  z = b.node('Sigmoid', [z], b.shape(z));
  z = b.conv(z, { filters: 16, kernel: 1, bias: true });                                  // pw
  y = b.add(z, skip);                                                                     // residual
  y = b.conv(y, { filters: 24, kernel: 1, bias: true });                                  // pw
  y = b.node('HardSwish', [y], b.shape(y));
  y = b.conv(y, { filters: 12, kernel: 1 });                                              // pw, no bias
  y = b.relu6(y);
  const graph = b.build([y]);
  return { graph, convs: graph.nodes.filter((n) => n.op === 'Conv').map((n) => n.name) };
}

function handPlan(convs: string[]): Plan {
  const module = (kind: 'pwdw' | 'dwpw' | 'pwpw', layers: number[], tiles: Plan['modules'][number]['tiles']) =>
    ({ kind, layers, nodes: layers.map((l) => convs[l]), tiles, gma: 100, gmaUnfused: 200 });
  return {
    model: 'epilogue_variants', hw: 'hand', mode: 'optimal',
    modules: [
      module('pwdw', [0, 1], { l1Filters: 8, l2Filters: 8, h: 3, w: 2, d: 8 }),
      module('dwpw', [2, 3], { l1Filters: 16, l2Filters: 4, h: 5, w: 5, d: 4 }),
      module('pwpw', [4, 5], { l1Filters: 24, l2Filters: 6, h: 2, w: 4, d: 16 }),
    ],
    totals: { gma: 300, gmaUnfused: 600, saved: 300, savedPercent: 50 },
  };
}

interface Case { name: string; original: Graph; plan: Plan; rewritten: Graph }

function cases(): Case[] {
  const out: Case[] = [];
  for (const name of ['mobilenetv2_stack', 'mobilenetv1_stack', 'squeeze_excite']) {
    for (const h of [hw, hwTime]) {
      const original = fixtureModels[name]();
      const g = prepareGraph(fixtureModels[name]());
      const plan = planOptimal(toDag(g), h, { model: name, dtypeBytes: 4 });
      // A plan that fuses nothing shows nothing here (squeeze_excite's 1x1 convs over 1x1 pixels may not pay).
      if (plan.modules.some((m) => m.layers.length === 2)) out.push({ name: `${name} on ${h.name}`, original, plan, rewritten: applyPlan(g, plan) });
    }
    assert.ok(out.some((c) => c.name.startsWith(name)), `${name}: some hardware description fuses a pair`);
  }
  const { graph, convs } = epilogueVariants();
  const plan = handPlan(convs);
  out.push({ name: 'epilogue_variants', original: graph, plan, rewritten: applyPlan(prepareGraph(epilogueVariants().graph), plan) });
  return out;
}

test('every fused module is one ai.fcm.opt node with an overload, and the model carries its functions', () => {
  const { graph, convs } = epilogueVariants();
  const plan = handPlan(convs);
  const model = decodeModel(exportOptimized(applyPlan(prepareGraph(graph), plan), plan), 'out.onnx');
  assert.equal(Number(model.irVersion), 10);
  assert.ok(model.opsetImport.some((o) => o.domain === fcmDomain && Number(o.version) === 1));
  const fused = model.graph!.node.filter((n) => n.domain === fcmDomain);
  assert.deepEqual(fused.map((n) => [n.opType, n.overload]), [
    ['FusedPwDw', 'LeakyRelu_HardSigmoid'], ['FusedDwPw', 'Sigmoid_none_residual'], ['FusedPwPw', 'HardSwish_Clip'],
  ]);
  // Absent first bias: an empty input between present ones.
  assert.deepEqual(fused[0].input.length, 5);
  assert.equal(fused[0].input[2], '');
  const attr = (n: onnx.NodeProto, k: string) => n.attribute.find((a) => a.name === k);
  assert.deepEqual(attr(fused[0], 'strides')!.ints.map(Number), [2, 2]);
  assert.equal(Number(attr(fused[0], 'group')!.i), 16);
  assert.equal(Number(attr(fused[0], 'tileH')!.i), 3);
  assert.equal(Buffer.from(attr(fused[0], 'layer1')!.s!).toString(), convs[0]);
  assert.ok(Math.abs(attr(fused[0], 'alpha1')!.f! - 0.1) < 1e-7);
  assert.deepEqual(attr(fused[2], 'activationParams2')!.floats, [0, 6]);
  assert.equal(attr(fused[2], 'kernel'), undefined, 'PW-PW has no depthwise attributes');
  const fns = model.functions.map((f) => `${f.domain}.${f.name}:${f.overload}`).sort();
  assert.deepEqual(fns, ['ai.fcm.opt.FusedDwPw:Sigmoid_none_residual', 'ai.fcm.opt.FusedPwDw:LeakyRelu_HardSigmoid', 'ai.fcm.opt.FusedPwPw:HardSwish_Clip']);
  for (const f of model.functions) {
    assert.ok(f.opsetImport.some((o) => o.domain === fcmDomain));
    assert.ok(f.opsetImport.some((o) => !o.domain && Number(o.version) === 17));
    assert.deepEqual(f.node.filter((n) => n.opType === 'Conv').length, 2);
  }
  const residual = model.functions.find((f) => f.name === 'FusedDwPw')!;
  assert.deepEqual(residual.node.map((n) => n.opType), ['Conv', 'Sigmoid', 'Conv', 'Add']);
  assert.deepEqual(residual.node[0].attribute.map((a) => `${a.name}<-${a.refAttrName}`), ['kernel_shape<-kernel', 'strides<-strides', 'pads<-pads', 'dilations<-dilations', 'group<-group']);
  assert.ok(model.metadataProps.some((p) => p.key === planMetadataKey));
});

for (const c of cases()) {
  test(`${c.name}: onnxruntime runs the optimized model with the original outputs; fcm-opt reads back the same plan and graph`, async () => {
    const fusedCount = c.plan.modules.filter((m) => ['pwdw', 'dwpw', 'pwpw'].includes(m.kind)).length;
    assert.ok(fusedCount >= 1, 'the plan fuses something (else the test shows nothing)');
    const bytes = exportOptimized(c.rewritten, c.plan);
    const shape = c.original.tensors.get(c.original.inputs[0])!.shape;
    assertClose(await runOrt(bytes, shape), await runOrt(exportOnnx(c.original), shape), c.name);

    const back = await readOptimized(bytes, { source: 'out.onnx' });
    assert.equal(back.planRecorded, true);
    assert.deepEqual(back.plan, c.plan);
    assert.deepEqual(structure(fuseEpilogues(back.graph)), structure(c.rewritten));
    assert.equal(back.graph.nodes.filter((n) => n.domain === fcmDomain).length, fusedCount);
    for (const n of back.graph.nodes.filter((x) => x.domain === fcmDomain)) assert.equal(n.inputs.length, 6);

    // Without the recorded plan, the fused modules come from the nodes alone.
    const model = decodeModel(bytes, 'out.onnx');
    model.metadataProps = [];
    const bare = await readOptimized(encodeModel(model), { source: 'bare.onnx' });
    assert.equal(bare.planRecorded, false);
    const fusedModules = c.plan.modules.filter((m) => m.kind === 'pwdw' || m.kind === 'dwpw' || m.kind === 'pwpw');
    assert.deepEqual(bare.plan.modules.map((m) => [m.kind, m.nodes]), fusedModules.map((m) => [m.kind, m.nodes!.filter((x) => c.rewritten.nodes.some((n) => n.attrs.layer1 === x || n.attrs.layer2 === x))]));
    const tiles = (p: Plan) => p.modules.map((m) => [m.kind === 'dwpw' ? m.tiles.d ?? m.tiles.l1Filters : m.tiles.l1Filters, m.tiles.l2Filters, m.tiles.h, m.tiles.w]);
    assert.deepEqual(tiles(bare.plan), tiles({ ...c.plan, modules: fusedModules }));
    // The rebuilt plan applies to the unfused graph and gives the same fused graph.
    assert.deepEqual(structure(applyPlan(prepareGraph(c.original), withNodes(bare.plan))), structure(c.rewritten));
  });
}

/** planFromGraph's modules name only the two Conv nodes; applyPlan needs nothing more. */
const withNodes = (p: Plan): Plan => p;

test('a plan that is not the graph\'s is refused (exit 2)', () => {
  const { graph, convs } = epilogueVariants();
  const plan = handPlan(convs);
  const rewritten = applyPlan(prepareGraph(graph), plan);
  assertFcm(() => exportOptimized(rewritten, { ...plan, modules: plan.modules.slice(1) }), 2, /no module of the plan fuses/);
  assertFcm(() => exportOptimized(prepareGraph(epilogueVariants().graph), plan), 2, /plan module 0 \(pwdw.*is not a fused node of the graph/);
  assertFcm(() => planFromGraph(rewritten, { ...plan, modules: plan.modules.map((m, i) => (i === 1 ? { ...m, tiles: { ...m.tiles, d: 2 } } : m)) }), 2, /tiles \[4, 4, 5, 5\] differ from the recorded plan's \[2, 4, 5, 5\]/);
  assertFcm(() => exportOptimized(rewritten, plan, { opset: 10 }), 3, /opset 11/);
});

test('a file whose functions or attributes disagree with its fused nodes is refused (exit 2)', async () => {
  const { graph, convs } = epilogueVariants();
  const plan = handPlan(convs);
  const bytes = exportOptimized(applyPlan(prepareGraph(graph), plan), plan);
  const tamper = async (edit: (m: onnx.ModelProto) => void, re: RegExp) => {
    const m = decodeModel(bytes, 'x');
    edit(m);
    await assertFcmAsync(() => readOptimized(encodeModel(m), { source: 'bad.onnx' }), 2, /bad\.onnx/, re);
  };
  const fused = (m: onnx.ModelProto, i: number) => m.graph!.node.filter((n) => n.domain === fcmDomain)[i];
  // The body onnxruntime would run is no longer what fcm-opt runs.
  await tamper((m) => { m.functions.find((f) => f.name === 'FusedPwPw')!.node[1].opType = 'Relu'; }, /function ai\.fcm\.opt\.FusedPwPw overload 'HardSwish_Clip' differs/);
  await tamper((m) => { fused(m, 0).overload = 'Relu_HardSigmoid'; }, /overload 'Relu_HardSigmoid' does not match its epilogues \(expected 'LeakyRelu_HardSigmoid'\)/);
  await tamper((m) => { m.functions = m.functions.filter((f) => f.name !== 'FusedDwPw'); }, /no function ai\.fcm\.opt\.FusedDwPw overload 'Sigmoid_none_residual'/);
  await tamper((m) => { fused(m, 0).attribute.find((a) => a.name === 'alpha1')!.f = 0.3; }, /alpha1 \(0\.3.*disagrees with activationParams1/);
  await tamper((m) => { fused(m, 0).attribute.find((a) => a.name === 'group')!.i = 8 as never; }, /group 8 is not the depthwise layer's 16 channels/);
  await tamper((m) => { fused(m, 2).attribute = fused(m, 2).attribute.filter((a) => a.name !== 'tileW'); }, /'tileW' must be a positive integer/);
  await tamper((m) => { m.metadataProps[0].value = '{'; }, /not valid JSON/);
  const m = decodeModel(bytes, 'x');
  m.graph!.node.filter((n) => n.domain === fcmDomain)[1].opType = 'FusedDwDw';
  await assertFcmAsync(() => readOptimized(encodeModel(m), { source: 'bad.onnx' }), 3, /node '.*' \(FusedDwDw\)/, /unknown/);
});
