// Rectangular strides ([sH, sW], as PaddleOCR's recognizers have them) through the layer DAG: the DAG writer
// keeps both axes, the loader checks each, the cost models count each, and the planner fuses such a DW.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mulberry32 } from '../../fixtures/rng.js';
import { prepareGraph } from '../../src/graph/prepare.js';
import { toDag } from '../../src/planner/to-dag.js';
import { validateDag } from '../../src/planner/dag-load.js';
import { convSpec, gmaOf } from '../../src/planner/cost.js';
import { planOptimal } from '../../src/planner/optimal.js';
import { planFusion } from '../../src/planner/index.js';
import { strideHW, type Dag, type DagLayer } from '../../src/planner/dag.js';
import { applyPlan } from '../../src/rewrite/apply-plan.js';
import { fuseEpilogues } from '../../src/rewrite/epilogues.js';
import { fcmDomain } from '../../src/graph/ir.js';
import type { HwConfig } from '../../src/planner/hw-config.js';
import { graph, f32 } from '../graph/helpers.js';
import { FcmError } from '../../src/errors.js';
import { runFloat } from '../rewrite/float-interp.js';

const hw: HwConfig = { name: 'test', sms: 4, l1BytesPerSm: 64 * 1024, shmemBytesPerSm: 64 * 1024, warpSize: 32, workgroupStorageBytes: 32 * 1024 };

/** PW 8 -> 48 (ReLU), DW 3x3 strides [2, 1] pads 1, PW 48 -> 8, on a 1x8x24x20 input: the DW halves H only. */
function rectGraph() {
  const rnd = mulberry32(0x5eed);
  const r = (s: number[]) => f32(s, () => rnd() - 0.5);
  return prepareGraph(graph({
    inputs: { x: [1, 8, 24, 20] },
    consts: { w1: r([48, 8, 1, 1]), wd: r([48, 1, 3, 3]), w2: r([8, 48, 1, 1]) },
    nodes: [
      { op: 'Conv', in: ['x', 'w1'], out: ['a'], name: 'expand' },
      { op: 'Relu', in: ['a'], out: ['ar'], name: 'expand_relu' },
      { op: 'Conv', in: ['ar', 'wd'], out: ['b'], attrs: { group: 48, strides: [2, 1], pads: [1, 1, 1, 1] }, name: 'dw' },
      { op: 'Conv', in: ['b', 'w2'], out: ['y'], name: 'project' },
    ],
    outputs: ['y'],
  }));
}

function rejects(fn: () => unknown, kind: FcmError['kind'], pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof FcmError && e.kind === kind && pattern.test(e.message));
}

const layer = (dag: Dag, name: string): DagLayer => dag.find((l) => l.name === name)!;

test('the DAG writer keeps a rectangular stride as [sH, sW] and a square one as one number; the DAG round-trips', () => {
  const dag = toDag(rectGraph());
  const dw = layer(dag, 'dw');
  assert.deepEqual([dw.type, dw.strides, dw.dilations, dw.ifms_shape, dw.ofms_shape], ['dw', [2, 1], 1, [48, 24, 20], [48, 12, 20]]);
  assert.equal(layer(dag, 'expand').strides, 1, 'square strides stay in the FusePlanner reference\'s scalar form');
  const back = validateDag(JSON.parse(JSON.stringify(dag)), 'rect.json');
  assert.deepEqual(back, dag);
  const spec = convSpec(layer(back, 'dw'), 'rect.json');
  assert.deepEqual([spec.h.s, spec.w.s, spec.h.out, spec.w.out, spec.h.p, spec.w.p], [2, 1, 12, 20, 1, 1]);
});

test('DW GMA with strides [2, 1] counts each axis with its own stride (hand-computed)', () => {
  const spec = convSpec(layer(toDag(rectGraph()), 'dw'), 'rect.json');
  // One tile: all 24x20 inputs of each of 48 channels, 12x20 outputs, 3x3 weights per channel.
  assert.equal(gmaOf('dw', [spec], 1, 12, 20).gma, 48 * 24 * 20 + 48 * 12 * 20 + 48 * 9);
  // Output rows one per tile: row o reads input rows 2o-1..2o+1 clipped to 0..23: 2 rows for o = 0, 3 for the
  // other 11; every tile reads all 20 columns (W stride 1, pads 1, kernel 3). Weights once per tile (12 tiles).
  assert.equal(gmaOf('dw', [spec], 1, 1, 20).gma, 48 * (2 + 11 * 3) * 20 + 48 * 12 * 20 + 48 * 9 * 12);
  // Output columns one per tile (20 tiles): column o reads o-1..o+1 clipped to 0..19: 2 + 18 * 3 + 2 = 58; all rows.
  assert.equal(gmaOf('dw', [spec], 1, 12, 1).gma, 48 * 24 * 58 + 48 * 12 * 20 + 48 * 9 * 20);
});

test('the loader checks each axis of a per-axis stride; a single stride keeps the FusePlanner reference\'s tolerance', () => {
  const dag = toDag(rectGraph());
  const copy = () => JSON.parse(JSON.stringify(dag)) as Record<string, unknown>[];
  const dwAt = dag.findIndex((l) => l.name === 'dw');
  // A per-axis stride whose W axis does not give the recorded output.
  const wrong = copy();
  wrong[dwAt].strides = [2, 2];
  rejects(() => validateDag(wrong, 'rect.json'), 'invalid', /layer \d+ \('dw'\): output \[12, 20\] does not follow from input \[24, 20\], kernel 3x3, stride 2, .*expected \[12, 10\]/);
  for (const bad of [[2, 0], [2], [2, 1, 1], [2, 1.5], '2']) {
    const d = copy();
    d[dwAt].strides = bad;
    rejects(() => validateDag(d, 'rect.json'), 'invalid', /field 'strides' must be a positive integer or \[H, W\]/);
  }
  const badDil = copy();
  badDil[dwAt].dilations = [1, 0];
  rejects(() => validateDag(badDil, 'rect.json'), 'invalid', /field 'dilations' must be/);
  // The single-number form that older DAGs wrote (the H stride only) still loads, and the cost model finds the W stride.
  const old = copy();
  old[dwAt].strides = 2;
  const spec = convSpec(layer(validateDag(old, 'old.json'), 'dw'), 'old.json');
  assert.deepEqual([spec.h.s, spec.w.s], [2, 1]);
  // The W stride alone (what the FusePlanner reference's extractor records: int(ifms W / ofms W)) works the same way.
  old[dwAt].strides = 1;
  const specW = convSpec(layer(validateDag(old, 'old.json'), 'dw'), 'old.json');
  assert.deepEqual([specW.h.s, specW.w.s], [2, 1]);
  // A single stride that explains neither axis is an inconsistent layer.
  old[dwAt].strides = 3;
  rejects(() => convSpec(layer(validateDag(old, 'old.json'), 'dw'), 'old.json'), 'invalid', /output \[12, 20\] does not follow from input \[24, 20\], kernel 3x3, stride 3/);
});

test('a DW with strides [2, 1] is planned: fused with its PW, and the fused graph computes what the layers do', () => {
  const g = rectGraph();
  const dag = toDag(g);
  const plan = planOptimal(dag, hw, { model: 'rect', dtypeBytes: 4 });
  const dwId = layer(dag, 'dw').id;
  const withDw = plan.modules.find((m) => m.layers.includes(dwId))!;
  assert.ok(withDw.kind === 'pwdw' || withDw.kind === 'dwpw', `the DW is fused (module ${withDw.kind} [${withDw.layers.join(', ')}])`);
  const fused = applyPlan(g, plan);
  const fcm = fused.nodes.find((n) => n.domain === fcmDomain)!;
  assert.deepEqual(fcm.attrs.strides, [2, 1]);
  const rnd = mulberry32(7);
  const x = Array.from({ length: 8 * 24 * 20 }, () => rnd() - 0.5);
  const [want] = runFloat(fuseEpilogues(g), { x });
  const [got] = runFloat(fused, { x });
  assert.equal(got.length, 8 * 12 * 20);
  // Both run in float64 with the same products, summed in another order: differences are rounding only.
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-9, `output ${i}: ${got[i]} vs ${want[i]}`);
});

test('fuseplanner mode counts a rectangular stride with its W stride, as the FusePlanner reference\'s extractor records it', () => {
  const dag = toDag(rectGraph());
  assert.deepEqual(strideHW(layer(dag, 'dw')), [2, 1]);
  const plan = planFusion(dag, { name: 'gtx', sms: 22, l1BytesPerSm: 64 * 1024, shmemBytesPerSm: 48 * 1024, warpSize: 32 }, { mode: 'fuseplanner' });
  const scalar = dag.map((l) => (l.name === 'dw' ? { ...l, strides: 1 } : l));
  const planScalar = planFusion(scalar, { name: 'gtx', sms: 22, l1BytesPerSm: 64 * 1024, shmemBytesPerSm: 48 * 1024, warpSize: 32 }, { mode: 'fuseplanner' });
  assert.deepEqual(plan.estimates, planScalar.estimates);
});
