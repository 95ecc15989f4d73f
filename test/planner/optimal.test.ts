import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Dag, DagLayer } from '../../src/planner/dag.js';
import type { HwConfig } from '../../src/planner/hw-config.js';
import { mulberry32 } from '../../fixtures/ir-builder.js';
import { checkLegality, isConvLayer } from '../../src/planner/candidates.js';
import { convSpec, costFcm, layerFlops } from '../../src/planner/cost.js';
import { evaluateDag, maxRedundantFraction, planOptimal, selectDisjointPairs, type WeightedPair } from '../../src/planner/optimal.js';

const hw: HwConfig = { name: 'test', sms: 8, l1BytesPerSm: 96 * 1024, shmemBytesPerSm: 64 * 1024, warpSize: 32 };
const hwTime: HwConfig = { ...hw, name: 'test-time', dramGBps: 200, fp32Gflops: 5000, dispatchOverheadUs: 4 };

/** Best total weight of disjoint pairs by enumerating every subset. */
function bruteForce(pairs: readonly WeightedPair[]): number {
  let best = 0;
  for (let mask = 0; mask < 1 << pairs.length; mask++) {
    const used = new Set<number>();
    let w = 0;
    let ok = true;
    for (let i = 0; i < pairs.length && ok; i++) {
      if (!(mask & (1 << i))) continue;
      const p = pairs[i];
      if (used.has(p.first) || used.has(p.second)) ok = false;
      used.add(p.first);
      used.add(p.second);
      w += p.weight;
    }
    if (ok) best = Math.max(best, w);
  }
  return best;
}

const weightOf = (pairs: readonly WeightedPair[], idx: number[]) => idx.reduce((s, i) => s + pairs[i].weight, 0);
function assertDisjoint(pairs: readonly WeightedPair[], idx: number[]) {
  const used = new Set<number>();
  for (const i of idx) {
    assert.ok(!used.has(pairs[i].first) && !used.has(pairs[i].second), 'pairs overlap');
    used.add(pairs[i].first);
    used.add(pairs[i].second);
  }
}

test('selectDisjointPairs on chains and in-trees (the DP) equals brute force', () => {
  const rand = mulberry32(7);
  for (let round = 0; round < 300; round++) {
    // Each vertex points to at most one later vertex: an in-forest, as candidates are.
    const n = 2 + Math.floor(rand() * 12);
    const pairs: WeightedPair[] = [];
    for (let v = 0; v < n - 1; v++) {
      if (rand() < 0.8) {
        const to = rand() < 0.7 ? v + 1 : v + 1 + Math.floor(rand() * (n - 1 - v));
        pairs.push({ first: v, second: to, weight: Math.floor(rand() * 20) - 3 });
      }
    }
    const got = selectDisjointPairs(pairs);
    assertDisjoint(pairs, got);
    assert.equal(weightOf(pairs, got), bruteForce(pairs.filter((p) => p.weight > 0)), `round ${round}: ${JSON.stringify(pairs)}`);
  }
});

test('selectDisjointPairs on general pair graphs (the exact fallback) equals brute force', () => {
  const rand = mulberry32(11);
  for (let round = 0; round < 200; round++) {
    const n = 3 + Math.floor(rand() * 7);
    const m = 1 + Math.floor(rand() * 12);
    const pairs: WeightedPair[] = [];
    for (let k = 0; k < m; k++) {
      const a = Math.floor(rand() * n);
      const b = Math.floor(rand() * n);
      if (a !== b) pairs.push({ first: a, second: b, weight: 1 + Math.floor(rand() * 30) });
    }
    const got = selectDisjointPairs(pairs);
    assertDisjoint(pairs, got);
    assert.equal(weightOf(pairs, got), bruteForce(pairs), `round ${round}`);
  }
});

// Random small DAGs: conv layers (PW, DW), activations, residual Adds and branches, all 8x8 spatially.
function randomDag(seed: number, size: number): Dag {
  const rand = mulberry32(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
  const layers: Omit<DagLayer, 'children'>[] = [];
  const channels: number[] = [];
  const add = (l: Omit<DagLayer, 'id' | 'children'>, c: number) => {
    layers.push({ ...l, id: layers.length } as Omit<DagLayer, 'children'>);
    channels.push(c);
  };
  add({ name: 'input', op: 'Input', parents: [], activation: '0', ifms_shape: [], ofms_shape: [] }, 8);
  while (layers.length < size) {
    const p = rand() < 0.65 ? layers.length - 1 : Math.floor(rand() * layers.length);
    const c = channels[p];
    const r = rand();
    if (r < 0.4) {
      const f = pick([4, 8, 16]);
      add({ name: 'pw', op: 'Conv', parents: [p], activation: '0', type: 'pw', weights_shape: [f, c], ifms_shape: [c, 8, 8], ofms_shape: [f, 8, 8], strides: 1 }, f);
    } else if (r < 0.75) {
      add({ name: 'dw', op: 'Conv', parents: [p], activation: '0', type: 'dw', weights_shape: [c, 3, 3], ifms_shape: [c, 8, 8], ofms_shape: [c, 8, 8], strides: 1 }, c);
    } else if (r < 0.88) {
      add({ name: 'relu', op: 'Relu', parents: [p], activation: '0', ifms_shape: [c, 8, 8], ofms_shape: [c, 8, 8] }, c);
    } else {
      const others = channels.map((cc, i) => (cc === c && i !== p ? i : -1)).filter((i) => i >= 0);
      if (others.length === 0) continue;
      add({ name: 'add', op: 'Add', parents: [p, pick(others)], activation: '0', ifms_shape: [c, 8, 8], ofms_shape: [c, 8, 8] }, c);
    }
  }
  const dag: Dag = layers.map((l) => ({ ...l, children: [] as number[] }) as DagLayer);
  for (const l of dag) for (const q of l.parents) dag[q].children.push(l.id);
  return dag;
}

/** The best saving over all sets of disjoint legal pairs, candidates found by testing every conv pair. */
function bruteForcePlan(dag: Dag, h: HwConfig): { pairs: WeightedPair[]; best: number } {
  const ev = evaluateDag(dag, h, {});
  const convs = dag.filter(isConvLayer).map((l) => l.id);
  const pairs: WeightedPair[] = [];
  for (const a of convs) {
    for (const b of convs) {
      const r = checkLegality(dag, a, b);
      if (!r.ok) continue;
      const sa = convSpec(dag[a], 't');
      const sb = convSpec(dag[b], 't');
      const cost = costFcm(r.kind, sa, sb, ev.ctx);
      if (!cost) continue;
      const la = ev.lone.get(a)!;
      const lb = ev.lone.get(b)!;
      let w: number;
      if (ev.ctx.objective === 'time') w = la.timeUs! + lb.timeUs! - cost.timeUs!;
      else {
        w = la.gma + lb.gma - cost.gma;
        if (cost.redundantFlops > maxRedundantFraction * (layerFlops(sa) + layerFlops(sb))) continue;
      }
      if (w > 0) pairs.push({ first: a, second: b, weight: w });
    }
  }
  return { pairs, best: bruteForce(pairs) };
}

test('planOptimal on random small DAGs saves exactly the brute-force best (GMA and time objectives)', () => {
  let fusedSomewhere = 0;
  for (let seed = 1; seed <= 60; seed++) {
    const dag = randomDag(seed, 6 + (seed % 9));
    for (const h of [hw, hwTime]) {
      const plan = planOptimal(dag, h, { model: `random-${seed}` });
      const { pairs, best } = bruteForcePlan(dag, h);
      assert.ok(pairs.length <= 16, 'keep brute force small');
      // Every conv layer in exactly one module.
      const seen = plan.modules.flatMap((m) => m.layers).sort((a, b) => a - b);
      assert.deepEqual(seen, dag.filter(isConvLayer).map((l) => l.id), `seed ${seed}`);
      const fused = plan.modules.filter((m) => m.layers.length === 2);
      fusedSomewhere += fused.length;
      if (h === hw) {
        assert.ok(Math.abs(plan.totals.saved - best) <= 1e-9 * Math.max(1, best), `seed ${seed}: saved ${plan.totals.saved}, brute force ${best}`);
      } else {
        const saved = plan.totals.timeUsUnfused! - plan.totals.timeUs!;
        assert.ok(Math.abs(saved - best) <= 1e-9 * Math.max(1, best), `seed ${seed} (time): saved ${saved}, brute force ${best}`);
      }
    }
  }
  assert.ok(fusedSomewhere > 30, `the random DAGs must exercise fusion (${fusedSomewhere} fused pairs)`);
});

test('overlapping candidates: the optimal choice beats taking pairs greedily in list order', () => {
  // pw(1) -> dw(2) -> pw(3) -> dw(4): pairs 1-2, 2-3, 3-4 overlap; greedy takes 2-3 (8), optimal 1-2 + 3-4 (10).
  const pairs: WeightedPair[] = [{ first: 1, second: 2, weight: 5 }, { first: 2, second: 3, weight: 8 }, { first: 3, second: 4, weight: 5 }];
  assert.deepEqual(selectDisjointPairs(pairs), [0, 2]);
});

test('plan data: modules carry tiles, costs, time when available, IR node names when the DAG has them', () => {
  const dag: Dag = [
    { id: 0, name: 'x', op: 'Input', parents: [], children: [1], activation: '0', ifms_shape: [], ofms_shape: [] },
    // As src/planner/to-dag.ts writes a PW conv whose Relu it folded: one layer, both node names.
    { id: 1, name: 'c1', op: 'Conv', parents: [0], children: [2], activation: 'RELU', type: 'pw', weights_shape: [64, 16], ifms_shape: [16, 32, 32], ofms_shape: [64, 32, 32], strides: 1, nodes: ['c1', 'r1'], pads: [0, 0, 0, 0], dilations: 1 },
    { id: 2, name: 'c2', op: 'Conv', parents: [1], children: [], activation: '0', type: 'dw', weights_shape: [64, 3, 3], ifms_shape: [64, 32, 32], ofms_shape: [64, 32, 32], strides: 1, nodes: ['c2'], pads: [1, 1, 1, 1], dilations: 1 },
  ];
  const p = planOptimal(dag, hw, { model: 'hand.json' });
  assert.equal(p.mode, 'optimal');
  assert.equal(p.modules.length, 1);
  const m = p.modules[0];
  assert.equal(m.kind, 'pwdw');
  assert.deepEqual(m.layers, [1, 2]);
  assert.deepEqual(m.nodes, ['c1', 'r1', 'c2']);
  assert.ok(m.gma < m.gmaUnfused);
  for (const k of ['l1Filters', 'l2Filters', 'h', 'w', 'd'] as const) assert.ok(Number.isInteger(m.tiles[k]) && m.tiles[k]! >= 1, k);
  assert.equal(p.totals.saved, m.gmaUnfused - m.gma);
  assert.equal(m.timeUs, undefined);
  const t = planOptimal(dag, hwTime, {});
  assert.ok(t.modules.every((x) => x.timeUs! > 0 && x.timeUsUnfused! > 0));
  assert.ok(t.totals.timeUs! <= t.totals.timeUsUnfused!);
  // The objective can be forced.
  assert.equal(planOptimal(dag, hwTime, { objective: 'gma' }).totals.timeUs, undefined);
});

test('reference DAGs: every conv layer planned once, savings positive, disjoint modules', () => {
  for (const name of ['mob_v1', 'xce_r', 'gprox_3']) {
    const dag: Dag = JSON.parse(readFileSync(join(process.cwd(), 'test', 'planner', 'fuseplanner-reference', 'dags', `${name}.json`), 'utf8'));
    const gtx: HwConfig = { name: 'gtx1660', sms: 22, l1BytesPerSm: 96 * 1024, shmemBytesPerSm: 64 * 1024, warpSize: 32 };
    const p = planOptimal(dag, gtx, { model: name });
    const layers = p.modules.flatMap((m) => m.layers);
    assert.equal(new Set(layers).size, layers.length, name);
    assert.equal(layers.length, dag.filter(isConvLayer).length, name);
    assert.ok(p.totals.saved > 0 && p.totals.savedPercent > 3, `${name}: ${p.totals.savedPercent}%`);
    for (const m of p.modules) assert.ok(m.gma <= m.gmaUnfused);
  }
});
