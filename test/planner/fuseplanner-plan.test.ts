// Faithful mode as a plan: the FusePlanner reference's estimates turned into modules (its chosen pairs, every other
// conv layer alone), their tiles read from the reference's fields, totals as the reference claims them, and the
// layers that sit in two chosen pairs. The estimates themselves are checked against the reference elsewhere
// (fuseplanner.test.ts, fuseplanner-crafted.test.ts); here the expected plan is derived by hand from them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import type { Dag, DagLayer } from '../../src/planner/dag.js';
import type { HwConfig } from '../../src/planner/hw-config.js';
import type { Plan } from '../../src/planner/plan.js';
import { loadDag } from '../../src/planner/dag-load.js';
import { loadHw } from '../../src/planner/hw.js';
import { buildEstimates, nextConvInListOrder } from '../../src/planner/fuseplanner/builder.js';
import { overlappingLayers, planFusePlanner } from '../../src/planner/fuseplanner/plan.js';
import type { SplittingAndFusionInfo } from '../../src/planner/fuseplanner/estimators.js';

const conv = (id: number, type: 'pw' | 'dw', c: number, f: number, hw: number, extra: Partial<DagLayer> = {}): DagLayer => ({
  id, name: `${type}${id}`, activation: '0', parents: id > 0 ? [id - 1] : [], children: [id + 1], type, strides: 1,
  ifms_shape: [c, hw, hw], ofms_shape: [type === 'dw' ? c : f, hw, hw], weights_shape: type === 'dw' ? [c, 3, 3] : [f, c], ...extra,
});

/** s0 -> pw1 -> dw2 -> pw3 -> fc4 (IR node names on the first three). */
function dag(): Dag {
  return [
    { id: 0, name: 's0', activation: '0', parents: [], children: [1], type: 's', strides: 2, ifms_shape: [3, 64, 64], ofms_shape: [16, 32, 32], weights_shape: [16, 3, 3, 3], nodes: ['stem'] },
    conv(1, 'pw', 16, 64, 32, { nodes: ['expand', 'expand_relu'] }),
    conv(2, 'dw', 64, 64, 32, { nodes: ['dw'] }),
    conv(3, 'pw', 64, 24, 32),
    { id: 4, name: 'fc4', activation: '0', parents: [3], children: [], type: 'fc', weights_shape: [10, 24], ifms_shape: [24, 1, 1], ofms_shape: [10, 1, 1] },
  ];
}
const hw: HwConfig = { ...loadHw('gtx1660'), name: 'gtx1660' };

test('the plan: chosen pairs and every other conv layer, sorted by first layer, tiles from the reference fields', () => {
  const d = dag();
  const plan = planFusePlanner(d, hw, 'tiny.json');
  const est = plan.estimates as ReturnType<typeof buildEstimates>;
  assert.deepEqual(est, JSON.parse(JSON.stringify(buildEstimates(d, hw))));
  // In this chain the reference fuses pw1-dw2 (pwdw) and dw2-pw3 (dwpw): layer 2 in both.
  assert.deepEqual(est.pwdw.fused, { 1: 2 });
  assert.deepEqual(est.dwpw.fused, { 2: 3 });
  assert.deepEqual(est.pwpw.fused, {});
  assert.deepEqual(plan.modules.map((m) => `${m.kind}:${m.layers.join('-')}`), ['s:0', 'pwdw:1-2', 'dwpw:2-3', 'fc:4']);
  assert.deepEqual([plan.model, plan.hw, plan.mode], ['tiny.json', 'gtx1660', 'fuseplanner']);
  const [stem, pwdw, dwpw, fc] = plan.modules;
  // Standard and FC layers: no estimate, no tiles, 0 accesses; IR node names where the DAG has them.
  assert.deepEqual(stem, { kind: 's', layers: [0], tiles: {}, gma: 0, gmaUnfused: 0, nodes: ['stem'] });
  assert.deepEqual(fc, { kind: 'fc', layers: [4], tiles: {}, gma: 0, gmaUnfused: 0 });
  // A fused module: h and w are the second layer's tile (l2), filters of both layers, d the first layer's depth.
  const lbl = (id: number) => est.layer_by_layer[String(id)]!.total_dm;
  const p = est.pwdw.candidates['1'];
  assert.deepEqual(pwdw, {
    kind: 'pwdw', layers: [1, 2], nodes: ['expand', 'expand_relu', 'dw'],
    tiles: { l1Filters: p.l1_tile_filters, l2Filters: p.l2_tile_filters, h: p.l2_tile_h, w: p.l2_tile_w, d: p.l1_tile_d },
    gma: p.total_dm, gmaUnfused: lbl(1) + lbl(2),
  });
  const q = est.dwpw.candidates['2'];
  assert.deepEqual(dwpw, {
    kind: 'dwpw', layers: [2, 3], nodes: ['dw'],
    tiles: { l1Filters: q.l1_tile_filters, l2Filters: q.l2_tile_filters, h: q.l2_tile_h, w: q.l2_tile_w, d: q.l1_tile_d },
    gma: q.total_dm, gmaUnfused: lbl(2) + lbl(3),
  });
  // Totals as the reference claims them: LBL accesses of its DW and PW layers, minus each chosen pair's saving
  // (layer 2's counted in both).
  const unfused = lbl(1) + lbl(2) + lbl(3);
  const saved = (lbl(1) + lbl(2) - p.total_dm) + (lbl(2) + lbl(3) - q.total_dm);
  assert.deepEqual(plan.totals, { gma: unfused - saved, gmaUnfused: unfused, saved, savedPercent: (100 * saved) / unfused });
  assert.deepEqual(overlappingLayers(plan), [2]);
});

test('lone layers: their own tile (l1), no second-layer fields; unset (-1) fields are left out', () => {
  // Many SMs: no PW tile gives each SM work, so the PW estimate stays unset (-1) but for its depth.
  const many: HwConfig = { ...hw, sms: 1_000_000 };
  const plan = planFusePlanner([conv(0, 'pw', 64, 24, 32, { children: [] })], many, 'm');
  const pw: SplittingAndFusionInfo = (plan.estimates as ReturnType<typeof buildEstimates>).layer_by_layer['0']!;
  assert.equal(pw.l1_tile_h, -1);
  assert.deepEqual(plan.modules, [{ kind: 'pw', layers: [0], tiles: { d: 64 }, gma: pw.total_dm, gmaUnfused: pw.total_dm }]);
  // A lone DW layer: its estimate's l1 tile.
  const only: Dag = [conv(0, 'dw', 8, 8, 16, { children: [], nodes: ['d'] })];
  const one = planFusePlanner(only, hw, 'one');
  const info = (one.estimates as ReturnType<typeof buildEstimates>).layer_by_layer['0']!;
  assert.deepEqual(one.modules, [{ kind: 'dw', layers: [0], nodes: ['d'], tiles: { l1Filters: 1, h: info.l1_tile_h, w: info.l1_tile_w, d: 1 }, gma: info.total_dm, gmaUnfused: info.total_dm }]);
  assert.deepEqual(one.totals, { gma: info.total_dm, gmaUnfused: info.total_dm, saved: 0, savedPercent: 0 });
  assert.deepEqual(overlappingLayers(one), []);
  // No estimated layer at all: no division by zero.
  const none = planFusePlanner([dag()[0]], hw, 'none');
  assert.deepEqual(none.totals, { gma: 0, gmaUnfused: 0, saved: 0, savedPercent: 0 });
});

test('overlappingLayers lists, sorted, the layers of more than one chosen pair', () => {
  const plan: Plan = {
    model: 'm', hw: 'h', mode: 'fuseplanner', totals: { gma: 0, gmaUnfused: 0, saved: 0, savedPercent: 0 },
    modules: [
      { kind: 'dwpw', layers: [9, 10], tiles: {}, gma: 1, gmaUnfused: 2 },
      { kind: 'pwdw', layers: [8, 9], tiles: {}, gma: 1, gmaUnfused: 2 },
      { kind: 'pw', layers: [10], tiles: {}, gma: 1, gmaUnfused: 1 },
      { kind: 'pwdw', layers: [3, 4], tiles: {}, gma: 1, gmaUnfused: 2 },
      { kind: 'dwpw', layers: [4, 5], tiles: {}, gma: 1, gmaUnfused: 2 },
      { kind: 'pwpw', layers: [5, 6], tiles: {}, gma: 1, gmaUnfused: 2 },
    ],
  };
  assert.deepEqual(overlappingLayers(plan), [4, 5, 9]);
});

test('the reference DAGs: each plan module\'s costs are its estimates, totals add up', () => {
  const refDir = resolve('test/planner/fuseplanner-reference');
  const d = loadDag(join(refDir, 'dags', 'mob_v1.json'));
  const plan = planFusePlanner(d, loadHw('gtx1660'), 'mob_v1');
  const est = plan.estimates as ReturnType<typeof buildEstimates>;
  const lbl = Object.values(est.layer_by_layer).reduce((s, e) => s + (e ? e.total_dm : 0), 0);
  assert.equal(plan.totals.gmaUnfused, lbl);
  const pairs = plan.modules.filter((m) => m.layers.length === 2);
  assert.ok(pairs.length > 5);
  assert.equal(plan.totals.saved, pairs.reduce((s, m) => s + est[m.kind as 'pwdw'].candidates[String(m.layers[0])].saved_dm, 0));
  for (let i = 1; i < plan.modules.length; i++) assert.ok(plan.modules[i - 1].layers[0] < plan.modules[i].layers[0], 'sorted by first layer');
  // The last conv layer has no next conv layer.
  const lastConv = Math.max(...d.filter((l) => l.type === 's' || l.type === 'dw' || l.type === 'pw').map((l) => l.id));
  assert.equal(nextConvInListOrder(d, lastConv), -1);
  assert.equal(nextConvInListOrder(d, d.length - 1), -1);
});
