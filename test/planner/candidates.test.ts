import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Dag, DagLayer } from '../../src/planner/dag.js';
import { checkLegality, findCandidates, type Legality } from '../../src/planner/candidates.js';

// Layer makers: shapes [C, H, W]; children are filled in from parents by `dag`.
type L = Omit<DagLayer, 'id' | 'children'>;
const pw = (parents: number[], c: number, f: number, hw: number, strides = 1): L => ({
  name: 'conv', op: 'Conv', parents, activation: '0', type: 'pw', weights_shape: [f, c],
  ifms_shape: [c, hw, hw], ofms_shape: [f, Math.ceil(hw / strides), Math.ceil(hw / strides)], strides,
});
const dw = (parents: number[], c: number, hw: number, strides = 1): L => ({
  name: 'dwconv', op: 'Conv', parents, activation: '0', type: 'dw', weights_shape: [c, 3, 3],
  ifms_shape: [c, hw, hw], ofms_shape: [c, Math.ceil(hw / strides), Math.ceil(hw / strides)], strides,
});
const op = (o: string, parents: number[], extra: Partial<DagLayer> = {}): L => ({ name: o.toLowerCase(), op: o, parents, activation: '0', ifms_shape: [], ofms_shape: [], ...extra });
export function dag(layers: L[]): Dag {
  const d: Dag = layers.map((l, id) => ({ ...l, id, children: [] as number[] }) as DagLayer);
  for (const l of d) for (const p of l.parents) d[p].children.push(l.id);
  return d;
}
const rules = (r: Legality) => (r.ok ? [] : r.violations.map((v) => v.rule).sort());

test('PW -> DW, DW -> PW and PW -> PW along edges are candidates', () => {
  const d = dag([op('Input', []), pw([0], 8, 16, 8), dw([1], 16, 8), pw([2], 16, 8, 8), pw([3], 8, 4, 8)]);
  const c = findCandidates(d).map((x) => `${x.kind}:${x.first}-${x.second}`);
  assert.deepEqual(c, ['pwdw:1-2', 'dwpw:2-3', 'pwpw:3-4']);
});

test('each conv applies its own activation: a standalone activation layer between the convolutions ends the chain', () => {
  // Conv -> Relu -> Sigmoid -> DW as src/planner/to-dag.ts writes it: the Relu folded into the PW layer, the
  // Sigmoid left standalone. An FCM's first layer applies one activation, so this is no candidate.
  const relu = { ...pw([0], 8, 16, 8), activation: 'RELU' };
  const d = dag([op('Input', []), relu, op('Sigmoid', [1]), dw([2], 16, 8)]);
  assert.deepEqual(findCandidates(d), []);
  const r = checkLegality(d, 1, 3);
  assert.deepEqual(rules(r), ['not-connected']);
  assert.match(r.ok ? '' : r.violations[0].detail, /layer 2 \(Sigmoid\) may not stand between them/);
  // The same with no activation on the PW layer (a DAG file's standalone activation): still not fused.
  const e = dag([op('Input', []), pw([0], 8, 16, 8), op('Relu', [1]), dw([2], 16, 8)]);
  assert.deepEqual(findCandidates(e), []);
  assert.deepEqual(rules(checkLegality(e, 1, 3)), ['not-connected']);
  // Without the standalone layer the pair is a candidate.
  assert.deepEqual(findCandidates(dag([op('Input', []), relu, dw([1], 16, 8)])).map((c) => [c.kind, c.first, c.second, c.between]), [['pwdw', 1, 2, []]]);
});

test('a residual Add after the second conv is its epilogue; an Add after a standalone activation is not', () => {
  const d = dag([op('Input', []), pw([0], 8, 16, 8), { ...dw([1], 16, 8), activation: 'RELU6' }, op('Add', [2, 0])]);
  const c = findCandidates(d);
  assert.deepEqual(c.map((x) => [x.kind, x.first, x.second, x.between, x.epilogue]), [['pwdw', 1, 2, [], [3]]]);
  const e = dag([op('Input', []), pw([0], 8, 16, 8), dw([1], 16, 8), op('Clip', [2]), op('Add', [3, 0])]);
  assert.deepEqual(findCandidates(e).map((x) => x.epilogue), [[]]);
  // An Add of one input (both operands the conv's output) has one parent layer: no residual.
  const f = dag([op('Input', []), pw([0], 8, 16, 8), dw([1], 16, 8), op('Add', [2])]);
  assert.deepEqual(findCandidates(f).map((x) => x.epilogue), [[]]);
  // A model output's Add is not folded either: the conv's own output is returned.
  const g = dag([op('Input', []), pw([0], 8, 16, 8), { ...dw([1], 16, 8), model_output: true }, op('Add', [2, 0])]);
  assert.deepEqual(findCandidates(g).map((x) => x.epilogue), [[]]);
});

test('a second consumer of the intermediate tensor makes the pair illegal', () => {
  // conv1 feeds the DW and a side branch.
  const d = dag([op('Input', []), pw([0], 8, 16, 8), dw([1], 16, 8), op('Relu', [1]), op('Add', [2, 3])]);
  assert.deepEqual(rules(checkLegality(d, 1, 2)), ['second-consumer']);
  assert.equal(findCandidates(d).length, 0);
  // The same through a Pad: the Pad's output has two consumers.
  const zero = { padding_top: 1, padding_left: 1, padding_bottom: 1, padding_right: 1 };
  const e = dag([op('Input', []), pw([0], 8, 16, 8), op('Pad', [1], zero), dw([2], 16, 10), op('Sigmoid', [2]), op('Add', [3, 4])]);
  assert.deepEqual(rules(checkLegality(e, 1, 3)), ['second-consumer']);
  assert.equal(findCandidates(e).length, 0);
});

test('a path through another branch back into the second conv is reported as a cycle', () => {
  // 1 -> 3 directly and 1 -> 2 -> 3 (3 takes a second input computed from 1's output).
  const d = dag([op('Input', []), pw([0], 8, 16, 8), op('Sigmoid', [1]), { ...dw([1], 16, 8), parents: [1, 2] }]);
  const r = rules(checkLegality(d, 1, 3));
  assert.ok(r.includes('cycle'), `got ${r}`);
  assert.ok(r.includes('second-consumer'));
});

test('unsupported pairs: s -> dw, dw -> dw, strided PW, not connected, model output', () => {
  const s: L = { name: 'conv', parents: [0], activation: '0', type: 's', weights_shape: [16, 8, 3, 3], ifms_shape: [8, 8, 8], ofms_shape: [16, 8, 8], strides: 1 };
  const d = dag([op('Input', []), s, dw([1], 16, 8), dw([2], 16, 8), pw([3], 16, 16, 8, 2), dw([4], 16, 4)]);
  assert.deepEqual(rules(checkLegality(d, 1, 2)), ['unsupported-kind']);
  assert.deepEqual(rules(checkLegality(d, 2, 3)), ['unsupported-kind']);
  assert.deepEqual(rules(checkLegality(d, 4, 5)), ['pw-stride']);
  assert.deepEqual(rules(checkLegality(d, 0, 5)), ['not-conv-pair']);
  const e = dag([op('Input', []), pw([0], 8, 16, 8), op('Relu', [0]), dw([2], 16, 8)]);
  assert.deepEqual(rules(checkLegality(e, 1, 3)), ['not-connected']);
  const f = dag([op('Input', []), pw([0], 8, 16, 8), dw([1], 16, 8)]);
  assert.deepEqual(rules(checkLegality(f, 1, 2, new Set([1]))), ['graph-output']);
  assert.deepEqual(rules(checkLegality(f, 1, 2)), []);
});

test('list order does not matter, edges do: the next conv in the list on another branch is no candidate', () => {
  // 1 and 2 are siblings (both read 0); the FusePlanner reference would pair 1 with 2, the next conv in the list.
  const d = dag([op('Input', []), pw([0], 8, 16, 8), dw([0], 8, 8), op('Concat', [1, 2])]);
  assert.equal(findCandidates(d).length, 0);
  assert.deepEqual(rules(checkLegality(d, 1, 2)), ['not-connected']);
});

test('a zero Pad layer before a DW is folded into its padding; a non-zero Pad is not', () => {
  const padded = { ...dw([2], 16, 9, 2), ifms_shape: [16, 9, 9], ofms_shape: [16, 4, 4] };
  const d = dag([op('Input', []), pw([0], 8, 16, 8), op('Pad', [1], { padding_top: 0, padding_left: 0, padding_bottom: 1, padding_right: 1 }), padded]);
  const c = findCandidates(d);
  assert.equal(c.length, 1);
  assert.deepEqual(c[0].extraPads, [0, 0, 1, 1]);
  assert.deepEqual(c[0].between, [2]);
  const e = dag([op('Input', []), pw([0], 8, 16, 8), op('Pad', [1], { padding_top: 1, value: 3 }), padded]);
  assert.equal(findCandidates(e).length, 0);
  // One Pad only: two in a row, or a Pad the DAG writer marked as not a zero spatial one, are not folded.
  const zero = { padding_top: 0, padding_left: 0, padding_bottom: 1, padding_right: 1 };
  const twice = dag([op('Input', []), pw([0], 8, 16, 8), op('Pad', [1], zero), op('Pad', [2], zero), { ...padded, parents: [3] }]);
  assert.deepEqual(rules(checkLegality(twice, 1, 4)), ['not-connected']);
  const marked = dag([op('Input', []), pw([0], 8, 16, 8), op('Pad', [1], { ...zero, spatial_zero_pad: false }), padded]);
  assert.deepEqual(rules(checkLegality(marked, 1, 3)), ['not-connected']);
  // Before a PW a Pad is no part of an FCM.
  const beforePw = dag([op('Input', []), pw([0], 8, 16, 8), op('Pad', [1], zero), pw([2], 16, 8, 9)]);
  assert.deepEqual(rules(checkLegality(beforePw, 1, 3)), ['not-connected']);
});

test('reference DAGs: candidates follow edges, each conv first of at most one and second of at most one', () => {
  for (const name of ['mob_v1', 'xce_r', 'gprox_3']) {
    const d: Dag = JSON.parse(readFileSync(join(process.cwd(), 'test', 'planner', 'fuseplanner-reference', 'dags', `${name}.json`), 'utf8'));
    const c = findCandidates(d);
    assert.ok(c.length > 5, name);
    const firsts = new Set(c.map((x) => x.first));
    const seconds = new Set(c.map((x) => x.second));
    assert.equal(firsts.size, c.length);
    assert.equal(seconds.size, c.length);
    for (const x of c) assert.equal(checkLegality(d, x.first, x.second).ok, true);
  }
});
