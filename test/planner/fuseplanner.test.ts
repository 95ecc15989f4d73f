// Faithful mode reproduces the FusePlanner reference: every field of every reference estimate file (3 DAGs x
// 3 GPUs), numbers equal to 1e-9 relative (they are in fact bit-identical today), same keys, same nulls.
// JSON numbers compare as numbers: Python's 1622016.0 and 803104 have no int/float distinction in JS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadDag } from '../../src/planner/dag-load.js';
import { loadHw } from '../../src/planner/hw.js';
import { buildEstimates, nextConvInListOrder } from '../../src/planner/fuseplanner/builder.js';
import { planFusion } from '../../src/planner/index.js';
import type { Dag } from '../../src/planner/dag.js';
import { jsonDiff } from './json-diff.js';

const refDir = resolve('test/planner/fuseplanner-reference');
const files = readdirSync(join(refDir, 'estimates')).filter((f) => f.endsWith('.json')).sort();

test('the reference data is all there (3 DAGs x 3 GPUs)', () => {
  assert.equal(files.length, 9);
});

for (const file of files) {
  const [model, gpu] = file.replace(/\.json$/, '').split('__');
  test(`fuseplanner estimates match the FusePlanner reference: ${model} on ${gpu}`, () => {
    const dag = loadDag(join(refDir, 'dags', `${model}.json`));
    const hw = loadHw(gpu); // the shipped hw_configs/<gpu>.cfg
    const expected = JSON.parse(readFileSync(join(refDir, 'estimates', file), 'utf8'));
    const actual = JSON.parse(JSON.stringify(buildEstimates(dag, hw)));
    const diff = jsonDiff(actual, expected);
    assert.deepEqual(diff.slice(0, 20), [], `${diff.length} differences`);
    // The plan carries the same estimates, and one pair module per decision.
    const plan = planFusion(dag, hw, { mode: 'fuseplanner', model });
    assert.deepEqual(jsonDiff(JSON.parse(JSON.stringify(plan.estimates)), expected), []);
    const pairs = plan.modules.filter((m) => m.layers.length === 2).map((m) => `${m.kind}:${m.layers.join('-')}`).sort();
    const decided = (['pwdw', 'dwpw', 'pwpw'] as const)
      .flatMap((k) => Object.entries(expected[k].fused as Record<string, number>).map(([a, b]) => `${k}:${a}-${b}`)).sort();
    assert.deepEqual(pairs, decided);
  });
}

test('jsonDiff catches a changed number, a missing key, a null and a float off by more than 1e-9', () => {
  const ref = { a: { total_dm: 1622016, tiles: 2.5 }, b: null, c: { x: 1 } };
  assert.deepEqual(jsonDiff(ref, ref), []);
  assert.equal(jsonDiff({ ...ref, a: { total_dm: 1622017, tiles: 2.5 } }, ref).length, 1);
  assert.equal(jsonDiff({ ...ref, a: { total_dm: 1622016, tiles: 2.5 * (1 + 1e-8) } }, ref).length, 1);
  assert.equal(jsonDiff({ ...ref, a: { total_dm: 1622016, tiles: 2.5 * (1 + 1e-12) } }, ref).length, 0);
  assert.equal(jsonDiff({ a: ref.a, c: ref.c }, ref).length, 1);
  assert.equal(jsonDiff({ ...ref, b: {} }, ref).length, 1);
  assert.equal(jsonDiff({ ...ref, d: 1 }, ref).length, 1);
});

test('a changed hardware value changes the estimates (the comparison depends on hw)', () => {
  const dag = loadDag(join(refDir, 'dags', 'mob_v1.json'));
  const expected = JSON.parse(readFileSync(join(refDir, 'estimates', 'mob_v1__gtx1660.json'), 'utf8'));
  const hw = { ...loadHw('gtx1660'), sms: 40 };
  assert.notDeepEqual(jsonDiff(JSON.parse(JSON.stringify(buildEstimates(dag, hw))), expected), []);
});

// Quirks of the FusePlanner reference that faithful mode keeps (test/planner/fuseplanner-reference/README.md).
function tinyDag(): Dag {
  // pw0 -> dw1 -> pw2, plus an 'add' between that the list order skips.
  const conv = (id: number, type: 'pw' | 'dw', c: number, f: number, hw: number, strides: number, parents: number[], children: number[]) => ({
    id, name: `${type}${id}`, activation: '0', parents, children, type, strides,
    ifms_shape: [c, hw, hw], ofms_shape: [type === 'dw' ? c : f, hw / strides, hw / strides],
    weights_shape: type === 'dw' ? [c, 3, 3] : [f, c],
  });
  return [
    conv(0, 'pw', 16, 64, 56, 1, [], [1]),
    conv(1, 'dw', 64, 64, 56, 2, [0], [2]),
    conv(2, 'pw', 64, 32, 28, 1, [1], []),
  ];
}

test('quirk: the DW stride of a PW-DW FCM is read from the PW layer', () => {
  const dag = tinyDag();
  const hw = loadHw('rtxa4000');
  const a = buildEstimates(dag, hw).pwdw.candidates['0'];
  const withPwStride2 = tinyDag();
  withPwStride2[0].strides = 2;
  const b = buildEstimates(withPwStride2, hw).pwdw.candidates['0'];
  const withDwStride1 = tinyDag();
  withDwStride1[1].strides = 1;
  const c = buildEstimates(withDwStride1, hw).pwdw.candidates['0'];
  assert.notDeepEqual(a, b); // the PW stride matters
  assert.deepEqual(a, c); // the DW layer's own stride does not
});

test('quirk: kinds are decided independently, so a layer can be in two chosen pairs', () => {
  const dag = loadDag(join(refDir, 'dags', 'mob_v1.json'));
  const est = buildEstimates(dag, loadHw('gtx1660'));
  assert.equal(est.dwpw.fused['2'], 3);
  assert.equal(est.pwdw.fused['3'], 5); // layer 3 in both
});

test('quirk: the next conv layer is taken in list order, not along edges', () => {
  const dag = loadDag(join(refDir, 'dags', 'xce_r.json'));
  // Layer 6 (pw) feeds a max-pool (7); the next conv in the list, 8, is the residual 1x1 conv of layer 2.
  assert.deepEqual(dag[6].children, [7]);
  assert.deepEqual(dag[8].parents, [2]);
  assert.equal(nextConvInListOrder(dag, 6), 8);
  const est = buildEstimates(dag, loadHw('gtx1660'));
  assert.equal(est.pwpw.fused['6'], 8); // fused although 8 does not consume 6's output
});

test('the fuseplanner plan lists every conv layer: in a chosen pair or as a lone module', () => {
  const dag = loadDag(join(refDir, 'dags', 'gprox_3.json'));
  const plan = planFusion(dag, loadHw('orin'), { mode: 'fuseplanner', model: 'gprox_3' });
  const covered = new Set(plan.modules.flatMap((m) => m.layers));
  const convs = dag.filter((l) => l.type === 's' || l.type === 'dw' || l.type === 'pw').map((l) => l.id);
  assert.deepEqual([...covered].sort((a, b) => a - b), convs);
  for (const m of plan.modules) {
    if (m.layers.length === 1) assert.equal(m.kind, dag[m.layers[0]].type);
    else assert.ok(m.gma < m.gmaUnfused, `${m.kind} ${m.layers} saves`);
  }
  const lone = plan.modules.filter((m) => m.layers.length === 1).map((m) => m.layers[0]);
  const paired = new Set(plan.modules.filter((m) => m.layers.length === 2).flatMap((m) => m.layers));
  assert.ok(lone.every((id) => !paired.has(id)));
  assert.equal(plan.totals.gma, plan.totals.gmaUnfused - plan.totals.saved);
});
