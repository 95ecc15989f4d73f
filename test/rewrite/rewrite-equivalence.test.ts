// The rewrite must not change the function: every pass (fuseEpilogues, foldPads, foldChannelScales, applyPlan
// with every candidate the planner finds, and their compositions) is run on seeded random graphs
// (random-graphs.ts) and the graph before and after are evaluated by a float64 interpreter (float-interp.ts)
// on seeded inputs. The same graphs check that the planner (on the DAG) and the rewrite (on the graph) agree on
// which pairs fuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toDag } from '../../src/planner/to-dag.js';
import { checkLegality, findCandidates, type Candidate } from '../../src/planner/candidates.js';
import { planOptimal } from '../../src/planner/optimal.js';
import { applyPlan } from '../../src/rewrite/apply-plan.js';
import { fuseEpilogues } from '../../src/rewrite/epilogues.js';
import { foldPads } from '../../src/rewrite/fold-pads.js';
import { foldChannelScales } from '../../src/rewrite/channel-scale.js';
import { FcmError } from '../../src/errors.js';
import { fcmDomain, type Graph } from '../../src/graph/ir.js';
import type { Dag } from '../../src/planner/dag.js';
import type { HwConfig } from '../../src/planner/hw-config.js';
import type { Plan, PlanModule } from '../../src/planner/plan.js';
import { runFloat } from './float-interp.js';
import { randomGraph, randomInputs } from './random-graphs.js';

const SEEDS = 80;
const tiles = { l1Filters: 4, l2Filters: 4, h: 2, w: 2, d: 4 };
const plan = (modules: PlanModule[]): Plan => ({ model: 'm', hw: 'h', mode: 'optimal', modules, totals: { gma: 0, gmaUnfused: 0, saved: 0, savedPercent: 0 } });
const nodesOf = (dag: Dag, layers: number[]) => layers.flatMap((id) => dag[id].nodes ?? []);
const moduleOf = (dag: Dag, c: Candidate): PlanModule => ({ kind: c.kind, layers: [c.first, c.second], nodes: nodesOf(dag, [c.first, ...c.between, c.second, ...c.epilogue]), tiles, gma: 1, gmaUnfused: 2 });
const count = (g: Graph, op: string) => g.nodes.filter((n) => n.op === op).length;
const describe = (g: Graph) => g.nodes.map((n) => `${n.op}${n.attrs.activation ? `{${n.attrs.activation}}` : ''}`).join(' ');

/** Candidates that share no layer, first come first served: a plan applyPlan must accept as a whole. */
function disjoint(cs: Candidate[]): Candidate[] {
  const used = new Set<number>();
  return cs.filter((c) => {
    const layers = [c.first, ...c.between, c.second];
    if (layers.some((l) => used.has(l))) return false;
    layers.forEach((l) => used.add(l));
    return true;
  });
}

// The interpreter computes the same products in the same order before and after a rewrite; a folded zero Pad
// drops taps that added exact zeros. The results agree to the last bit except for summation order, which the
// rewrite does not change: 1e-12 relative is far below any change a wrong fold makes (inputs and weights are O(1)).
function assertSame(before: Float64Array[], after: Float64Array[], what: string) {
  assert.equal(after.length, before.length, `${what}: output count`);
  before.forEach((ref, k) => {
    assert.equal(after[k].length, ref.length, `${what}: output ${k} size`);
    for (let i = 0; i < ref.length; i++) {
      const d = Math.abs(after[k][i] - ref[i]);
      if (!(d <= 1e-12 * Math.max(1, Math.abs(ref[i])))) assert.fail(`${what}: output ${k}[${i}] ${after[k][i]} != ${ref[i]}`);
    }
  });
}

test('seeded random graphs: fuseEpilogues, foldPads, foldChannelScales and applyPlan keep the function', () => {
  const totals = { activations: 0, residuals: 0, pads: 0, scales: 0, fused: 0, fusedPads: 0 };
  const hw: HwConfig = { name: 'small', sms: 16, l1BytesPerSm: 64 * 1024, shmemBytesPerSm: 64 * 1024, warpSize: 32, workgroupStorageBytes: 32 * 1024 };
  for (let seed = 1; seed <= SEEDS; seed++) {
    const g = randomGraph(seed);
    const feeds = randomInputs(g, 1000 + seed);
    const ref = runFloat(g, feeds);
    const what = (stage: string) => `seed ${seed} ${stage} (${describe(g)})`;
    const check = (stage: string, out: Graph) => {
      assert.deepEqual(out.outputs, g.outputs, what(stage));
      assertSame(ref, runFloat(out, feeds), what(stage));
      return out;
    };

    const e = check('fuseEpilogues', fuseEpilogues(g));
    totals.activations += e.nodes.filter((n) => n.op === 'Conv' && n.attrs.activation !== undefined).length;
    totals.residuals += e.nodes.filter((n) => n.op === 'Conv' && (n.inputs[3] ?? '') !== '').length;
    const p = check('foldPads', foldPads(g));
    totals.pads += count(g, 'Pad') - count(p, 'Pad');
    check('foldChannelScales', foldChannelScales(g));
    const s = check('foldChannelScales(fuseEpilogues)', foldChannelScales(e));
    totals.scales += count(e, 'Mul') - count(s, 'Mul');
    check('foldPads(foldChannelScales(fuseEpilogues))', foldPads(s));

    const dag = toDag(g);
    const modules = disjoint(findCandidates(dag)).map((c) => moduleOf(dag, c));
    const a = check('applyPlan(candidates)', applyPlan(g, plan(modules)));
    assert.equal(a.nodes.filter((n) => n.domain === fcmDomain).length, modules.length, what('FCM count'));
    totals.fused += modules.length;
    totals.fusedPads += count(e, 'Pad') - count(a, 'Pad');
    check('foldChannelScales(foldPads(applyPlan))', foldChannelScales(foldPads(a)));
    check('applyPlan(planOptimal)', applyPlan(g, planOptimal(dag, hw, { model: g.name, dtypeBytes: 4 })));
  }
  // Every fold happens often enough for the property to mean something.
  for (const [k, v] of Object.entries(totals)) assert.ok(v >= 8, `${k}: ${v} folds over ${SEEDS} graphs`);
});

test('seeded random graphs: a pair is legal to the planner exactly when applyPlan accepts it', () => {
  let legal = 0, illegal = 0;
  for (let seed = 1; seed <= SEEDS; seed++) {
    const g = randomGraph(seed);
    const dag = toDag(g);
    const convs = dag.filter((l) => l.type !== undefined).map((l) => l.id);
    for (const a of convs) {
      for (const b of convs) {
        if (b <= a) continue;
        const kind = `${dag[a].type}${dag[b].type}`;
        if (kind !== 'pwdw' && kind !== 'dwpw' && kind !== 'pwpw') continue;
        const ok = checkLegality(dag, a, b).ok;
        let refused: string | undefined;
        try {
          applyPlan(g, plan([{ kind, layers: [a, b], nodes: nodesOf(dag, [a, b]), tiles, gma: 1, gmaUnfused: 2 }]));
        } catch (err) {
          if (!(err instanceof FcmError)) throw err;
          refused = err.message;
        }
        assert.equal(refused === undefined, ok, `seed ${seed} (${describe(g)}): layers ${a}-${b} (${kind}) legal ${ok}, rewrite: ${refused ?? 'accepted'}`);
        if (ok) legal++;
        else illegal++;
      }
    }
  }
  assert.ok(legal >= 30 && illegal >= 100, `legal ${legal}, illegal ${illegal}`);
});
