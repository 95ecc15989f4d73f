import { buildMobileNetStyle } from '../../fixtures/tflite-builder.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { activationName, toDag } from '../../src/planner/to-dag.js';
import { loadModel } from '../../src/graph/load.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { fixtureModels } from '../../fixtures/models.js';
import type { Graph } from '../../src/graph/ir.js';
import { ortShapes } from '../../src/graph/ort-shapes.js';
import { prepareGraph } from '../../src/graph/prepare.js';
import { validateDag } from '../../src/planner/dag-load.js';
import type { Dag } from '../../src/planner/dag.js';
import { runDag } from '../../src/cli/dag.js';
import { FcmError } from '../../src/errors.js';
import { graph, f32, throwsFcm } from '../graph/helpers.js';

const count = (dag: Dag, type: string) => dag.filter((l) => l.type === type).length;

test('conv layers are typed with [C,H,W] shapes, per-type weights and absorbed activations', () => {
  const z = (s: number[]) => f32(s, () => 0.1);
  const g = prepareGraph(graph({
    inputs: { x: [1, 3, 16, 16] },
    consts: { ws: z([8, 3, 3, 3]), wdw: z([8, 1, 3, 3]), wpw: z([12, 8, 1, 1]), wg: z([12, 6, 3, 3]), fc: z([10, 12]) },
    nodes: [
      { op: 'Conv', in: ['x', 'ws'], out: ['a'], attrs: { strides: [2, 2], pads: [1, 1, 1, 1] }, name: 'stem' },
      { op: 'Clip', in: ['a'], out: ['a6'], attrs: { min: 0, max: 6 }, name: 'stem_relu6' },
      { op: 'Conv', in: ['a6', 'wdw'], out: ['b'], attrs: { group: 8, pads: [1, 1, 1, 1] }, name: 'dw' },
      { op: 'Conv', in: ['b', 'wpw'], out: ['c'], name: 'pw' },
      { op: 'Sigmoid', in: ['c'], out: ['cs'], name: 'pw_sig' },
      { op: 'Relu', in: ['cs'], out: ['cr'], name: 'standalone_relu' },
      { op: 'Conv', in: ['cr', 'wg'], out: ['d'], attrs: { group: 2, pads: [1, 1, 1, 1] }, name: 'grouped' },
      { op: 'Relu', in: ['d'], out: ['dr'], name: 'grouped_relu' },
      { op: 'Add', in: ['d', 'cs'], out: ['e'], name: 'add' },
      { op: 'GlobalAveragePool', in: ['e'], out: ['p'], name: 'gap' },
      { op: 'Flatten', in: ['p'], out: ['fl'], name: 'flat' },
      { op: 'Gemm', in: ['fl', 'fc'], out: ['y'], attrs: { transB: 1 }, name: 'fc' },
    ],
    outputs: ['y', 'dr'],
  }));
  const dag = toDag(g);
  assert.deepEqual(dag.map((l) => l.name), ['stem', 'dw', 'pw', 'standalone_relu', 'grouped', 'grouped_relu', 'add', 'gap', 'flat', 'fc']);
  assert.deepEqual(dag.map((l) => l.type ?? '-'), ['s', 'dw', 'pw', '-', 's', '-', '-', '-', '-', 'fc']);
  const [stem, dw, pw, relu, grouped, groupedRelu, add, gap, , fc] = dag;
  assert.deepEqual([stem.ifms_shape, stem.ofms_shape, stem.weights_shape, stem.strides, stem.activation], [[3, 16, 16], [8, 8, 8], [8, 3, 3, 3], 2, 'RELU6']);
  assert.deepEqual(stem.nodes, ['stem', 'stem_relu6']);
  assert.deepEqual(stem.pads, [1, 1, 1, 1]);
  assert.deepEqual([dw.weights_shape, dw.ofms_shape, dw.activation], [[8, 3, 3], [8, 8, 8], '0']);
  assert.deepEqual([pw.weights_shape, pw.ofms_shape, pw.activation], [[12, 8], [12, 8, 8], 'SIGMOID']);
  assert.equal(relu.activation, 'RELU');
  // Grouped: C per group in weights_shape. Its output has two readers, so the Relu stays a layer.
  assert.deepEqual([grouped.weights_shape, grouped.activation], [[12, 6, 3, 3], '0']);
  assert.deepEqual([groupedRelu.parents, grouped.children], [[4], [5, 6]]);
  assert.deepEqual(add.parents, [4, 2]);
  assert.deepEqual([gap.ifms_shape, gap.ofms_shape], [[1, 12, 8, 8], [1, 12, 1, 1]]);
  assert.deepEqual([fc.weights_shape, fc.ifms_shape, fc.ofms_shape], [[10, 12], [12, 1, 1], [10, 1, 1]]);
  dag.forEach((l, i) => assert.equal(l.id, i));
  for (const l of dag) for (const c of l.children) assert.ok(dag[c].parents.includes(l.id) && c > l.id);
  // The grouped 's' layer is checked against full input channels by the planner's validator (see report);
  // everything else must pass it.
  validateDag(dag.map((l) => (l.name === 'grouped' ? { ...l, weights_shape: [12, 12, 3, 3] } : l)), 'dag');
});

/** Expected per fixture: layer count, conv kinds, activations of conv layers in order. */
const expected: Record<string, { layers: number; s: number; dw: number; pw: number; fc: number; acts?: string[] }> = {
  mobilenetv2_stack: { layers: 12, s: 1, dw: 3, pw: 6, fc: 0,
    acts: ['RELU6', 'RELU6', 'RELU6', '0', 'RELU6', 'RELU6', '0', 'RELU6', 'RELU6', '0'] },
  mobilenetv1_stack: { layers: 7, s: 1, dw: 3, pw: 3, fc: 0, acts: ['HARDSWISH', 'RELU', 'RELU', 'RELU', 'RELU', 'RELU', 'RELU'] },
  squeeze_excite: { layers: 5, s: 1, dw: 0, pw: 2, fc: 0, acts: ['RELU', 'RELU', 'HARDSIGMOID'] },
  shape_reshape: { layers: 3, s: 1, dw: 0, pw: 0, fc: 1, acts: ['RELU', '0'] },
  classifier_head: { layers: 4, s: 1, dw: 0, pw: 0, fc: 1, acts: ['RELU6', '0'] },
};

async function ortCheck(bytes: Uint8Array, g: Graph) {
  // Every tensor of the prepared graph that the file has too (all of them: passes keep file names).
  const names = [...g.tensors.values()].filter((t) => !t.data && !g.inputs.includes(t.name)).map((t) => t.name);
  const ort = await ortShapes(bytes, g, names);
  for (const y of g.outputs) assert.ok(ort.has(y), `onnxruntime computed output ${y}`);
  for (const [name, s] of ort) assert.deepEqual(g.tensors.get(name)!.shape, s.shape, `shape of ${name}`);
  return ort.size;
}

for (const [name, make] of Object.entries(fixtureModels)) {
  test(`fixture ${name}: DAG kinds and counts; shapes equal onnxruntime's`, async () => {
    const bytes = exportOnnx(make());
    const g = await loadModel(bytes, { source: `${name}.onnx` });
    const dag = toDag(g);
    const e = expected[name];
    assert.ok(e, `expectations for ${name}`);
    assert.deepEqual({ layers: dag.length, s: count(dag, 's'), dw: count(dag, 'dw'), pw: count(dag, 'pw'), fc: count(dag, 'fc') },
      { layers: e.layers, s: e.s, dw: e.dw, pw: e.pw, fc: e.fc });
    if (e.acts) assert.deepEqual(dag.filter((l) => l.type).map((l) => l.activation), e.acts);
    assert.equal(g.nodes.filter((n) => n.op === 'BatchNormalization').length, 0, 'all BN folded');
    validateDag(dag, name);
    assert.ok(await ortCheck(bytes, g) >= g.outputs.length);
  });
}

/** The real PP-OCR models (scripts/fetch-models.mjs, cached under .cache/models). */
async function realModel(name: string): Promise<string | null> {
  const script = join(process.cwd(), 'scripts', 'fetch-models.mjs');
  if (!existsSync(script)) return null;
  try {
    const mod = await import(pathToFileURL(script).href) as { ensureModel(n: string): Promise<string> };
    return await mod.ensureModel(name);
  } catch {
    return null;
  }
}

for (const [model, shape, dw, pw] of [['ocr-det', [1, 3, 640, 640], 14, 42], ['ocr-cls', [1, 3, 48, 192], 11, 41]] as const) {
  test(`PP-OCR ${model}: ${dw} DW and ${pw} PW layers; shapes past Resize/ConvTranspose equal onnxruntime's`, async (t) => {
    const path = await realModel(model);
    if (!path) { t.skip('model not available (node scripts/fetch-models.mjs needs the network once)'); return; }
    const g = await loadModel(path, { inputShapes: { x: [...shape] } });
    const dag = toDag(g);
    assert.equal(count(dag, 'dw'), dw);
    assert.equal(count(dag, 'pw'), pw);
    assert.ok(g.nodes.some((n) => n.op === 'HardSwish'), 'Add/Clip/Mul/Div recognized as HardSwish');
    assert.ok(!g.nodes.some((n) => n.op === 'Clip'), 'no spelled-out HardSwish left');
    validateDag(dag, model);
    assert.ok(await ortCheck(await readFile(path), g) > 50);
  });
}

test('fcm-opt dag: -o writes the file atomically; an error leaves no file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fcm-dag-'));
  try {
    const model = join(dir, 'm.onnx');
    await writeFile(model, exportOnnx(fixtureModels.mobilenetv1_stack()));
    const out = join(dir, 'dag.json');
    const text = await runDag(model, { output: out });
    assert.deepEqual(JSON.parse(await readFile(out, 'utf8')), JSON.parse(text));
    assert.equal(count(JSON.parse(text), 'dw'), 3);
    const bad = join(dir, 'bad.onnx');
    await writeFile(bad, new Uint8Array([1, 2, 3, 4, 5]));
    const out2 = join(dir, 'bad.json');
    await assert.rejects(runDag(bad, { output: out2 }), (e: unknown) => e instanceof FcmError && e.message.includes('bad.onnx'));
    assert.deepEqual((await readdir(dir)).sort(), ['dag.json', 'm.onnx', 'bad.onnx'].sort());
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('loadModel detects TFLite by magic and prepares it; a broken TFLite file is refused naming it', async () => {
  const g = await loadModel(buildMobileNetStyle({ int8: false }), { source: 'm.bin' });
  const dag = toDag(g);
  assert.ok(dag.some((l) => l.type === 'dw') && dag.some((l) => l.type === 'pw'));
  const tfl = new Uint8Array(16);
  tfl.set([0x54, 0x46, 0x4c, 0x33], 4);
  await assert.rejects(loadModel(tfl, { source: 'm.bin' }), (e: unknown) => e instanceof FcmError && e.exitCode === 2 && /m\.bin/.test(e.message));
});

// toDag layer by layer on small graphs built as data (no importer): activation names, absorbed and pre-fused
// activations, Pad layers, quantization fields, edges, and which nodes are conv or fc layers.
const layerOf = (dag: Dag, name: string) => {
  const l = dag.find((x) => x.nodes?.includes(name));
  assert.ok(l, `a layer holds node ${name}`);
  return l;
};

test('activation names: RELU6 is Clip 0..6 only; other Clips are CLIP; fused attributes name the conv layer\'s activation', () => {
  assert.equal(activationName('Clip', 0, 6), 'RELU6');
  assert.equal(activationName('Clip', 0, 1), 'CLIP');
  assert.equal(activationName('Clip', -1, 6), 'CLIP');
  assert.equal(activationName('Clip'), 'CLIP');
  assert.equal(activationName('Relu'), 'RELU');
  assert.equal(activationName('HardSwish'), 'HARDSWISH');
  const z = (s: number[]) => f32(s, () => 0.1);
  const g = prepareGraph(graph({
    inputs: { x: [1, 4, 4, 4] },
    consts: { w1: z([4, 4, 1, 1]), w2: z([4, 4, 1, 1]), w3: z([4, 4, 1, 1]) },
    nodes: [
      { op: 'Conv', in: ['x', 'w1'], out: ['a'], attrs: { activation: 'Clip', activationParams: [0, 6] }, name: 'relu6' },
      { op: 'Conv', in: ['a', 'w2'], out: ['b'], attrs: { activation: 'Clip', activationParams: [0, 1] }, name: 'clip' },
      { op: 'Conv', in: ['b', 'w3'], out: ['c'], attrs: { activation: 'Relu' }, name: 'relu' },
      { op: 'Clip', in: ['c'], out: ['d'], attrs: { min: -1, max: 1 }, name: 'standalone' },
    ],
    outputs: ['d'],
  }));
  const dag = toDag(g);
  assert.deepEqual(dag.map((l) => [l.name, l.activation]), [['relu6', 'RELU6'], ['clip', 'CLIP'], ['relu', 'RELU'], ['standalone', 'CLIP']]);
});

test('non-conv layers: their own activation only for epilogue activations; shapes of the first non-constant input', () => {
  const g = prepareGraph(graph({
    inputs: { x: [1, 4, 4, 4] },
    consts: { k: f32([1, 4, 1, 1], () => 0.5) },
    nodes: [
      { op: 'Add', in: ['k', 'x'], out: ['a'], name: 'add' },
      { op: 'Sigmoid', in: ['a'], out: ['s'], name: 'sig' },
      { op: 'GlobalAveragePool', in: ['s'], out: ['p'], name: 'gap' },
    ],
    outputs: ['p'],
  }));
  const dag = toDag(g);
  assert.deepEqual(dag.map((l) => [l.name, l.activation, l.ifms_shape, l.ofms_shape]), [
    ['add', '0', [1, 4, 4, 4], [1, 4, 4, 4]],
    ['sig', 'SIGMOID', [1, 4, 4, 4], [1, 4, 4, 4]],
    ['gap', '0', [1, 4, 4, 4], [1, 4, 1, 1]],
  ]);
  // An opaque op named like an activation is no activation; unknown shapes and absent inputs give [].
  const h = graph({
    inputs: { x: [1, 4, 4, 4] },
    nodes: [
      { op: 'Relu', domain: 'com.other', in: ['', 'x'], out: ['r'], name: 'opaque' },
      { op: 'Relu', in: ['r'], out: ['q'], name: 'after' },
    ],
    outputs: ['q'],
  });
  const d2 = toDag(h);
  assert.deepEqual(d2.map((l) => [l.name, l.activation, l.ifms_shape, l.ofms_shape]), [['opaque', '0', [1, 4, 4, 4], []], ['after', 'RELU', [], []]]);
  assert.deepEqual(d2[1].parents, [0]);
});

test('Pad layers: zero spatial pads are marked and recorded; other pads record their spatial values, unmarked', () => {
  const pad = (attrs: Record<string, unknown>, domain = '') => {
    const g = prepareGraph(graph({
      inputs: { x: [1, 4, 4, 4] },
      nodes: [{ op: 'Pad', domain, in: ['x'], out: ['p'], attrs: attrs as never, name: 'pad' }, { op: 'Relu', in: ['p'], out: ['y'], name: 'r' }],
      outputs: ['y'],
    }));
    const l = toDag(g)[0];
    return [l.padding_top, l.padding_left, l.padding_bottom, l.padding_right, l.spatial_zero_pad];
  };
  assert.deepEqual(pad({ pads: [0, 0, 1, 2, 0, 0, 3, 4], mode: 'constant', value: 0 }), [1, 2, 3, 4, true]);
  assert.deepEqual(pad({ pads: [0, 0, 1, 2, 0, 0, 1, 0], mode: 'reflect' }), [1, 2, 1, 0, false]);
  assert.deepEqual(pad({ pads: [0, 1, 1, 0, 0, 1, 0, 1], mode: 'constant', value: 0 }), [1, 0, 0, 1, false]);
  assert.deepEqual(pad({ pads: [0, 0, 1, 1, 0, 0, 1, 1], mode: 'constant', value: 2 }), [1, 1, 1, 1, false]);
  // An opaque op called Pad is no Pad layer.
  const opaque = toDag(graph({
    inputs: { x: [1, 4, 4, 4] },
    nodes: [{ op: 'Pad', domain: 'com.other', in: ['x'], out: ['p'], attrs: { pads: [0, 0, 1, 1, 0, 0, 1, 1] }, name: 'pad' }],
    outputs: ['p'],
  }))[0];
  assert.deepEqual([opaque.padding_top, opaque.padding_right, opaque.spatial_zero_pad], [undefined, undefined, undefined]);
  // Not a 4-D Pad: no spatial values to record.
  const g3 = graph({
    inputs: { x: [4, 4, 4] },
    nodes: [{ op: 'Pad', in: ['x'], out: ['p'], attrs: { pads: [0, 1, 1, 0, 1, 1], mode: 'reflect' }, name: 'pad3' }],
    outputs: ['p'],
  });
  const l3 = toDag(g3)[0];
  assert.deepEqual([l3.padding_top, l3.padding_left, l3.spatial_zero_pad], [undefined, undefined, false]);
});

test('quantization: per-tensor scales and zero points of the input and output; none for per-channel ones', () => {
  const g = graph({
    inputs: { x: [1, 4, 4, 4] },
    nodes: [{ op: 'Relu', in: ['x'], out: ['y'], name: 'r' }, { op: 'Relu', in: ['y'], out: ['z'], name: 's' }],
    outputs: ['z'],
  });
  g.tensors.set('x', { name: 'x', dtype: 'int8', shape: [1, 4, 4, 4], quant: { scale: [0.5], zeroPoint: [3] } });
  g.tensors.set('y', { name: 'y', dtype: 'int8', shape: [1, 4, 4, 4], quant: { scale: [0.25], zeroPoint: [-2] } });
  g.tensors.set('z', { name: 'z', dtype: 'int8', shape: [1, 4, 4, 4], quant: { scale: [0.1, 0.2], zeroPoint: [0, 0], axis: 1 } });
  const [r, s] = toDag(g);
  assert.deepEqual([r.ifms_scales, r.ifms_zero_points, r.ofms_scales, r.ofms_zero_points], [0.5, 3, 0.25, -2]);
  assert.deepEqual([s.ifms_scales, s.ifms_zero_points, s.ofms_scales, s.ofms_zero_points], [0.25, -2, undefined, undefined]);
  g.tensors.set('y', { name: 'y', dtype: 'int8', shape: [1, 4, 4, 4], quant: { scale: [0.1, 0.2], zeroPoint: [0, 0], axis: 1 } });
  const [r2, s2] = toDag(g);
  assert.deepEqual([r2.ofms_scales, s2.ifms_scales], [undefined, undefined]);
});

test('edges: one per pair of layers, however often a layer reads another; a node with any returned output is a model output', () => {
  const z = (s: number[]) => f32(s, () => 0.1);
  const g = prepareGraph(graph({
    inputs: { x: [1, 4, 4, 4] },
    consts: { w: z([4, 4, 1, 1]) },
    nodes: [
      { op: 'Conv', in: ['x', 'w'], out: ['c'], name: 'conv' },
      { op: 'Add', in: ['c', 'c'], out: ['a'], name: 'twice' },
      { op: 'Split', in: ['a'], out: ['s0', 's1'], attrs: { axis: 1, split: [2, 2] }, name: 'split' },
      { op: 'Relu', in: ['s0'], out: ['r'], name: 'r' },
    ],
    outputs: ['r', 's1'],
  }));
  const dag = toDag(g);
  assert.deepEqual(dag.map((l) => [l.name, l.parents, l.children, l.model_output ?? false]), [
    ['conv', [], [1], false], ['twice', [0], [2], false], ['split', [1], [3], true], ['r', [2], [], true],
  ]);
  // An absorbed activation's edge to its own conv is no edge; a dead conv has no children.
  const h = prepareGraph(graph({
    inputs: { x: [1, 4, 4, 4] },
    consts: { w: z([4, 4, 1, 1]), w2: z([4, 4, 1, 1]) },
    nodes: [
      { op: 'Conv', in: ['x', 'w'], out: ['c'], name: 'conv' },
      { op: 'Relu', in: ['c'], out: ['r'], name: 'relu' },
      { op: 'Conv', in: ['r', 'w2'], out: ['dead'], name: 'dead' },
      { op: 'Sigmoid', in: ['r'], out: ['y'], name: 'sig' },
    ],
    outputs: ['y'],
  }));
  const d2 = toDag(h);
  assert.deepEqual(d2.map((l) => [l.name, l.nodes, l.parents, l.children]), [
    ['conv', ['conv', 'relu'], [], [1, 2]], ['dead', ['dead'], [0], []], ['sig', ['sig'], [0], []],
  ]);
});

test('conv and fc layers: defaults of absent attributes, 1-D convolutions, unknown shapes, Gemm and MatMul weights', () => {
  const z = (s: number[]) => f32(s, () => 0.1);
  const bare = graph({ inputs: { x: [1, 4, 6, 6] }, consts: { w: z([8, 4, 1, 1]) }, nodes: [{ op: 'Conv', in: ['x', 'w'], out: ['y'], name: 'c' }], outputs: ['y'] });
  bare.tensors.set('y', { name: 'y', dtype: 'float32', shape: [1, 8, 6, 6] });
  const [c] = toDag(bare);
  assert.deepEqual([c.type, c.strides, c.pads, c.dilations, c.weights_shape], ['pw', 1, [0, 0, 0, 0], 1, [8, 4]]);
  // A padded 1x1 convolution writes a larger map than it reads: a standard layer (the fuzz input of seed 28, whose
  // 1x1 conv padded to 18x65559 made the fuseplanner mode's overlapping pairs claim more than the model's GMA).
  const padded = graph({ inputs: { x: [1, 4, 6, 6] }, consts: { w: z([8, 4, 1, 1]) }, nodes: [{ op: 'Conv', in: ['x', 'w'], out: ['y'], attrs: { pads: [1, 0, 1, 0] }, name: 'c' }], outputs: ['y'] });
  padded.tensors.set('y', { name: 'y', dtype: 'float32', shape: [1, 8, 8, 6] });
  const [p] = toDag(padded);
  assert.deepEqual([p.type, p.pads, p.weights_shape, p.ofms_shape], ['s', [1, 0, 1, 0], [8, 4, 1, 1], [8, 8, 6]]);
  validateDag(toDag(padded), 'padded');
  // A 1-D convolution is no FusePlanner layer.
  const oneD = prepareGraph(graph({ inputs: { x: [1, 4, 6] }, consts: { w: z([8, 4, 3]) }, nodes: [{ op: 'Conv', in: ['x', 'w'], out: ['y'], attrs: { pads: [1, 1] }, name: 'c1' }], outputs: ['y'] }));
  assert.equal(toDag(oneD)[0].type, undefined);
  // Unknown shapes of a conv or fc layer are refused, naming the node.
  for (const unknown of ['x', 'y']) {
    const g = graph({ inputs: { x: [1, 4, 6, 6] }, consts: { w: z([8, 4, 1, 1]) }, nodes: [{ op: 'Conv', in: ['x', 'w'], out: ['y'], name: 'c' }], outputs: ['y'] });
    g.tensors.set('y', { name: 'y', dtype: 'float32', shape: [1, 8, 6, 6] });
    g.tensors.set(unknown, { ...g.tensors.get(unknown)!, shapeUnknown: true });
    throwsFcm(() => toDag(g), 'unsupported', "test.onnx: node 'c' (Conv)", 'shape of this convolution is unknown');
    const m = graph({ inputs: { x: [1, 4] }, consts: { w: z([4, 3]) }, nodes: [{ op: 'MatMul', in: ['x', 'w'], out: ['y'], name: 'mm' }], outputs: ['y'] });
    m.tensors.set('y', { name: 'y', dtype: 'float32', shape: [1, 3] });
    m.tensors.set(unknown, { ...m.tensors.get(unknown)!, shapeUnknown: true });
    throwsFcm(() => toDag(m), 'unsupported', "test.onnx: node 'mm' (MatMul)", 'shape of this layer is unknown');
  }
  // A conv without its weight or output tensor is no conv layer.
  const noW = graph({ inputs: { x: [1, 4, 6, 6] }, nodes: [{ op: 'Conv', in: ['x', 'missing'], out: ['y'], name: 'c' }], outputs: ['y'] });
  assert.equal(toDag(noW)[0].type, undefined);
  const noY = graph({ inputs: { x: [1, 4, 6, 6] }, consts: { w: z([8, 4, 1, 1]) }, nodes: [{ op: 'Conv', in: ['x', 'w'], out: ['y'], name: 'c' }], outputs: ['y'] });
  noY.tensors.delete('y');
  assert.equal(toDag(noY)[0].type, undefined);

  // fc: [F, C] from Gemm(transB) weights [F, C], from MatMul and plain Gemm weights [C, F]; rows from the middle dims.
  const fc = (op: string, x: number[], w: number[], attrs: Record<string, number> = {}, domain = '') => {
    const y = op === 'Gemm' && attrs.transB ? [...x.slice(0, -1), w[0]] : [...x.slice(0, -1), w[w.length - 1]];
    const g = graph({ inputs: { x }, consts: { w: z(w) }, nodes: [{ op, domain, in: ['x', 'w'], out: ['y'], attrs, name: 'fc' }], outputs: ['y'] });
    g.tensors.set('y', { name: 'y', dtype: 'float32', shape: y });
    const l = toDag(g)[0];
    return l.type === undefined ? undefined : [l.type, l.weights_shape, l.ifms_shape, l.ofms_shape];
  };
  assert.deepEqual(fc('Gemm', [1, 16], [10, 16], { transB: 1 }), ['fc', [10, 16], [16, 1, 1], [10, 1, 1]]);
  assert.deepEqual(fc('Gemm', [1, 16], [16, 10]), ['fc', [10, 16], [16, 1, 1], [10, 1, 1]]);
  assert.deepEqual(fc('MatMul', [1, 16], [16, 10]), ['fc', [10, 16], [16, 1, 1], [10, 1, 1]]);
  assert.deepEqual(fc('MatMul', [1, 7, 16], [16, 10]), ['fc', [10, 16], [16, 7, 1], [10, 7, 1]]);
  assert.deepEqual(fc('MatMul', [2, 3, 5, 16], [16, 10]), ['fc', [10, 16], [16, 15, 1], [10, 15, 1]]);
  assert.equal(fc('Gemm', [16, 1], [16, 10], { transA: 1 }), undefined, 'transA');
  assert.equal(fc('MatMul', [1, 16], [16, 10], {}, 'com.other'), undefined, 'another domain');
  assert.equal(fc('Conv', [1, 16], [16, 10]), undefined, 'a 2-D Conv weight');
  assert.equal(fc('MatMul', [1, 2, 16], [2, 16, 10]), undefined, '3-D weights');
  const computed = graph({ inputs: { x: [1, 16], w: [16, 10] }, nodes: [{ op: 'MatMul', in: ['x', 'w'], out: ['y'], name: 'fc' }], outputs: ['y'] });
  computed.tensors.set('y', { name: 'y', dtype: 'float32', shape: [1, 10] });
  assert.equal(toDag(computed)[0].type, undefined, 'computed weights');
});
