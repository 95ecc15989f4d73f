// The optimal planner's contract beyond its savings (optimal.test.ts checks those against brute force): what it
// refuses, its defaults, the options it honours, the plan's fields, and the pair selection on graphs that are not
// in-forests or whose pairs tie or must never be chosen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Dag, DagLayer } from '../../src/planner/dag.js';
import type { HwConfig } from '../../src/planner/hw-config.js';
import { mulberry32 } from '../../fixtures/ir-builder.js';
import { FcmError } from '../../src/errors.js';
import { checkLegality, isConvLayer } from '../../src/planner/candidates.js';
import { convSpec, costFcm, layerFlops } from '../../src/planner/cost.js';
import { evaluateDag, maxRedundantFraction, pairKey, planOptimal, selectDisjointPairs, type WeightedPair } from '../../src/planner/optimal.js';

const hw: HwConfig = { name: 'test-gpu', sms: 8, l1BytesPerSm: 96 * 1024, shmemBytesPerSm: 64 * 1024, warpSize: 32 };
const hwTime: HwConfig = { ...hw, name: 'test-time', dramGBps: 200, fp32Gflops: 5000, dispatchOverheadUs: 4 };

const input: DagLayer = { id: 0, name: 'x', op: 'Input', parents: [], children: [1], activation: '0', ifms_shape: [], ofms_shape: [] };
/** x -> pw1 (16 -> 64) -> dw2 -> pw3 (64 -> 24), 32x32: PW-DW and DW-PW candidates that overlap on dw2. */
function chain(extra: Partial<DagLayer> = {}): Dag {
  const pw = (id: number, c: number, f: number): DagLayer => ({ id, name: `pw${id}`, op: 'Conv', parents: [id - 1], children: id < 3 ? [id + 1] : [], activation: '0', type: 'pw', weights_shape: [f, c], ifms_shape: [c, 32, 32], ofms_shape: [f, 32, 32], strides: 1, pads: [0, 0, 0, 0], dilations: 1, ...extra });
  return [
    input,
    pw(1, 16, 64),
    { id: 2, name: 'dw2', op: 'Conv', parents: [1], children: [3], activation: '0', type: 'dw', weights_shape: [64, 3, 3], ifms_shape: [64, 32, 32], ofms_shape: [64, 32, 32], strides: 1, pads: [1, 1, 1, 1], dilations: 1, ...extra },
    pw(3, 64, 24),
  ];
}

const rejects = (f: () => unknown, what: RegExp) => assert.throws(f, (e: unknown) => e instanceof FcmError && e.exitCode === 2 && what.test(e.message));

test('evaluateDag refuses a non-positive data width, a time objective the hardware cannot support, a bad batch', () => {
  const d = chain();
  rejects(() => evaluateDag(d, hw, { model: 'net.onnx', dtypeBytes: 0 }), /^net\.onnx: data width 0 bytes is not positive/);
  rejects(() => evaluateDag(d, hw, { model: 'net.onnx', dtypeBytes: NaN }), /data width NaN bytes/);
  rejects(() => evaluateDag(d, hw, { objective: 'time' }), /^test-gpu: the time objective needs dramGBps, fp32Gflops and dispatchOverheadUs/);
  for (const batch of [0, -1, 1.5, NaN, 2 ** 60]) rejects(() => evaluateDag(d, hw, { model: 'net.onnx', batch }), new RegExp(`^net\\.onnx: batch ${batch} is not a whole number >= 1`));
  assert.equal(evaluateDag(d, hw, { batch: 1 }).ctx.batch, 1);
  // Messages name 'model' when no file is given.
  rejects(() => evaluateDag(d, hw, { batch: 0 }), /^model: batch 0/);
});

test('evaluateDag defaults: int8 (1 byte) when the DAG carries quantization scales, the time objective when the hardware allows it', () => {
  assert.equal(evaluateDag(chain(), hw).ctx.dtypeBytes, 4);
  assert.equal(evaluateDag(chain({ ifms_scales: 0.02 }), hw).ctx.dtypeBytes, 1);
  assert.equal(evaluateDag(chain({ ifms_scales: 0.02 }), hw, { dtypeBytes: 2 }).ctx.dtypeBytes, 2);
  assert.equal(evaluateDag(chain(), hw).ctx.objective, 'gma');
  assert.equal(evaluateDag(chain(), hwTime).ctx.objective, 'time');
  assert.equal(evaluateDag(chain(), hwTime, { objective: 'auto' }).ctx.objective, 'time');
  assert.equal(evaluateDag(chain(), hwTime, { objective: 'gma' }).ctx.objective, 'gma');
  assert.equal(evaluateDag(chain(), hwTime, { objective: 'time' }).ctx.objective, 'time');
});

test('evaluateDag: excluded pairs and pairs no tile of which fits are no candidates', () => {
  const all = evaluateDag(chain(), hw).candidates.map((c) => pairKey(c.first, c.second));
  assert.deepEqual(all.sort(), ['1:2', '2:3']);
  assert.equal(pairKey(1, 2), '1:2');
  const ex = evaluateDag(chain(), hw, { exclude: new Set(['1:2']) }).candidates.map((c) => pairKey(c.first, c.second));
  assert.deepEqual(ex, ['2:3']);
  // 72 bytes (18 fp32) of workgroup storage: every layer has a tile that fits (a 1x1 DW tile holds 9 inputs and 9
  // weights), no FCM of these layers does (a 1x1 PW-DW tile of one channel holds 9 + 9 + 2).
  const small: HwConfig = { ...hw, workgroupStorageBytes: 72 };
  const ev = evaluateDag(chain(), small);
  assert.equal(ev.lone.size, 3);
  assert.deepEqual(ev.candidates, []);
  assert.equal(costFcm('pwdw', convSpec(chain()[1], 'x'), convSpec(chain()[2], 'x'), ev.ctx), undefined);
  assert.deepEqual(planOptimal(chain(), small).modules.map((m) => m.kind), ['pw', 'dw', 'pw']);
});

// Random chains of PW and DW layers with varied widths: some legal pairs save, some do not, some recompute too much.
function randomChain(seed: number): Dag {
  const r = mulberry32(seed);
  const dag: DagLayer[] = [{ ...input }];
  let c = [3, 8, 16][Math.floor(r() * 3)];
  const hw0 = [4, 8, 16][Math.floor(r() * 3)];
  for (let id = 1; id <= 6; id++) {
    const dw = r() < 0.4;
    const f = dw ? c : [4, 16, 64, 256][Math.floor(r() * 4)];
    dag.push({
      id, name: `l${id}`, op: 'Conv', parents: [id - 1], children: id < 6 ? [id + 1] : [], activation: '0', type: dw ? 'dw' : 'pw',
      weights_shape: dw ? [c, 3, 3] : [f, c], ifms_shape: [c, hw0, hw0], ofms_shape: [f, hw0, hw0], strides: 1, dilations: 1,
      pads: dw ? [1, 1, 1, 1] : [0, 0, 0, 0],
    });
    c = f;
  }
  dag[0].children = [1];
  return dag;
}

test('candidates are exactly the legal pairs that save and (GMA objective) recompute at most their layers\' flops', () => {
  const refused = { saving: 0, recompute: 0 };
  const small: HwConfig = { ...hw, shmemBytesPerSm: 4096 };
  for (let seed = 1; seed <= 20; seed++) {
    const dag = randomChain(seed);
    for (const h of [small, { ...small, dramGBps: 100, fp32Gflops: 100, dispatchOverheadUs: 0 }]) {
      const ev = evaluateDag(dag, h);
      const got = new Map(ev.candidates.map((c) => [pairKey(c.first, c.second), c.saving]));
      const convs = dag.filter(isConvLayer).map((l) => l.id);
      for (const a of convs) {
        for (const b of convs) {
          const legal = checkLegality(dag, a, b);
          if (!legal.ok) continue;
          const sa = convSpec(dag[a], 't'), sb = convSpec(dag[b], 't');
          const cost = costFcm(legal.kind, sa, sb, ev.ctx)!;
          const la = ev.lone.get(a)!, lb = ev.lone.get(b)!;
          const saving = ev.ctx.objective === 'time' ? la.timeUs! + lb.timeUs! - cost.timeUs! : la.gma + lb.gma - cost.gma;
          const recomputes = ev.ctx.objective === 'gma' && cost.redundantFlops > maxRedundantFraction * (layerFlops(sa) + layerFlops(sb));
          const want = saving > 0 && !recomputes;
          assert.equal(got.has(pairKey(a, b)), want, `seed ${seed} ${ev.ctx.objective} ${a}:${b}: saving ${saving}, recomputes ${recomputes}`);
          if (want) assert.equal(got.get(pairKey(a, b)), saving);
          if (saving <= 0) refused.saving++;
          else if (recomputes) refused.recompute++;
        }
      }
    }
  }
  assert.ok(refused.saving >= 5 && refused.recompute >= 1, JSON.stringify(refused));
});

test('plan fields: the model name (default "model"), no node names where the DAG has none, the saved percentage', () => {
  const p = planOptimal(chain(), hw);
  assert.equal(p.model, 'model');
  assert.equal(p.hw, 'test-gpu');
  for (const m of p.modules) assert.ok(!('nodes' in m), JSON.stringify(m));
  for (const m of p.modules) assert.ok(!('timeUs' in m) && !('timeUsUnfused' in m));
  assert.ok(!('timeUs' in p.totals));
  assert.equal(p.totals.savedPercent, (100 * (p.totals.gmaUnfused - p.totals.gma)) / p.totals.gmaUnfused);
  assert.ok(p.totals.savedPercent > 0);
  // Node names must all be strings; a layer without them leaves its module without.
  const named = chain();
  named[1].nodes = ['a'];
  named[2].nodes = ['b', 7 as unknown as string];
  named[3].nodes = ['c'];
  const q = planOptimal(named, hw);
  const byFirst = new Map(q.modules.map((m) => [m.layers[0], m]));
  for (const m of q.modules) if (m.layers.includes(2)) assert.ok(!('nodes' in m), JSON.stringify(m));
  if (byFirst.get(3)) assert.deepEqual(byFirst.get(3)!.nodes, ['c']);
  // No conv layer: nothing planned, 0 % saved (not NaN).
  const empty = planOptimal([{ ...input, children: [] }], hw);
  assert.deepEqual(empty.modules, []);
  assert.deepEqual(empty.totals, { gma: 0, gmaUnfused: 0, saved: 0, savedPercent: 0 });
  // Time objective: every module and the totals carry both times.
  const t = planOptimal(chain(), hwTime);
  const lone = t.modules.filter((m) => m.layers.length === 1);
  for (const m of lone) assert.equal(m.timeUs, m.timeUsUnfused);
  assert.equal(t.totals.timeUs, t.modules.reduce((s, m) => s + m.timeUs!, 0));
});

// ---------------------------------------------------------------------------------------------------------
// Pair selection

function bruteForce(pairs: readonly WeightedPair[]): number {
  let best = 0;
  for (let mask = 0; mask < 1 << pairs.length; mask++) {
    const used = new Set<number>();
    let w = 0, ok = true;
    for (let i = 0; i < pairs.length && ok; i++) {
      if (!(mask & (1 << i))) continue;
      const p = pairs[i];
      if (used.has(p.first) || used.has(p.second) || p.first === p.second) ok = false;
      used.add(p.first);
      used.add(p.second);
      w += p.weight;
    }
    if (ok) best = Math.max(best, w);
  }
  return best;
}

function check(pairs: WeightedPair[], what: string) {
  const got = selectDisjointPairs(pairs);
  assert.deepEqual(got, [...got].sort((a, b) => a - b), `${what}: ascending`);
  const used = new Set<number>();
  for (const i of got) {
    const p = pairs[i];
    assert.ok(p.weight > 0 && p.first !== p.second, `${what}: pair ${i} must not be chosen`);
    assert.ok(!used.has(p.first) && !used.has(p.second), `${what}: overlap`);
    used.add(p.first);
    used.add(p.second);
  }
  assert.equal(got.reduce((s, i) => s + pairs[i].weight, 0), bruteForce(pairs.filter((p) => p.weight > 0)), what);
}

test('selectDisjointPairs: directed cycles, self pairs and non-positive pairs', () => {
  // Out-degree one everywhere, but a cycle: 0 -> 1 -> 2 -> 0. Best: the single heaviest pair.
  const cycle = [{ first: 0, second: 1, weight: 5 }, { first: 1, second: 2, weight: 6 }, { first: 2, second: 0, weight: 7 }];
  assert.deepEqual(selectDisjointPairs(cycle), [2]);
  // A cycle behind a tail: 5 -> 0 -> 1 -> 2 -> 0.
  const tail = [{ first: 5, second: 0, weight: 4 }, { first: 0, second: 1, weight: 3 }, { first: 1, second: 2, weight: 3 }, { first: 2, second: 0, weight: 3 }];
  assert.deepEqual(selectDisjointPairs(tail), [0, 2]);
  // A self pair is never a module, however heavy.
  assert.deepEqual(selectDisjointPairs([{ first: 3, second: 3, weight: 100 }, { first: 3, second: 4, weight: 1 }]), [1]);
  assert.deepEqual(selectDisjointPairs([{ first: 3, second: 3, weight: 100 }]), []);
  assert.deepEqual(selectDisjointPairs([{ first: 1, second: 2, weight: 0 }, { first: 2, second: 3, weight: -4 }]), []);
  assert.deepEqual(selectDisjointPairs([]), []);
  const r = mulberry32(17);
  for (let round = 0; round < 400; round++) {
    const n = 2 + Math.floor(r() * 8);
    const pairs: WeightedPair[] = [];
    const m = 1 + Math.floor(r() * 11);
    const forest = r() < 0.5;
    for (let k = 0; k < m; k++) {
      // Half the rounds: out-degree one (each vertex points anywhere, cycles and self pairs included).
      const a = forest ? k % n : Math.floor(r() * n);
      if (forest && pairs.some((p) => p.first === a)) continue;
      pairs.push({ first: a, second: Math.floor(r() * n), weight: Math.floor(r() * 12) - 3 });
    }
    check(pairs, `round ${round}: ${JSON.stringify(pairs)}`);
  }
});

test('selectDisjointPairs on in-trees with wide branching (many children per vertex) equals brute force', () => {
  const r = mulberry32(23);
  for (let round = 0; round < 300; round++) {
    const n = 3 + Math.floor(r() * 11);
    const pairs: WeightedPair[] = [];
    // Each vertex v > 0 points to a random earlier vertex: roots with many children, long and short branches.
    for (let v = 1; v < n; v++) if (r() < 0.9) pairs.push({ first: v, second: Math.floor(r() * v), weight: 1 + Math.floor(r() * 9) });
    check(pairs, `round ${round}: ${JSON.stringify(pairs)}`);
  }
});

test('selectDisjointPairs on a long chain (thousands of layers) picks every other pair', () => {
  const pairs: WeightedPair[] = Array.from({ length: 3000 }, (_, i) => ({ first: i, second: i + 1, weight: i % 2 === 0 ? 2 : 1 }));
  const got = selectDisjointPairs(pairs);
  assert.equal(got.length, 1500);
  assert.ok(got.every((i) => i % 2 === 0));
});
