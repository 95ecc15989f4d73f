import { buildMobileNetStyle } from '../../fixtures/tflite-builder.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { toDag } from '../../src/planner/to-dag.js';
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
import { graph, f32 } from '../graph/helpers.js';

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
