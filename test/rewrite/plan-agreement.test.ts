// The planner (on the layer DAG) and the rewrite (on the graph) must agree on what fuses: every module the
// planner proposes is one applyPlan builds, and a pair the rewrite would build is one the planner finds legal.
// Both apply src/planner/fusion-rules.ts; these tests check it end to end, on hand-made chains and on seeded
// random chains of convolutions, activations, Pads and residual Adds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder, mulberry32 } from '../../fixtures/ir-builder.js';
import { prepareGraph } from '../../src/graph/prepare.js';
import { toDag } from '../../src/planner/to-dag.js';
import { checkLegality, findCandidates, isConvLayer } from '../../src/planner/candidates.js';
import { planOptimal } from '../../src/planner/optimal.js';
import { applyPlan } from '../../src/rewrite/apply-plan.js';
import { FcmError } from '../../src/errors.js';
import { fcmDomain, type Graph } from '../../src/graph/ir.js';
import type { Dag } from '../../src/planner/dag.js';
import type { HwConfig } from '../../src/planner/hw-config.js';
import type { Plan, PlanModule } from '../../src/planner/plan.js';

const hw: HwConfig = { name: 'lavapipe-like', sms: 16, l1BytesPerSm: 64 * 1024, shmemBytesPerSm: 64 * 1024, warpSize: 32, workgroupStorageBytes: 32 * 1024 };
const hwTime: HwConfig = { ...hw, dramGBps: 2400, fp32Gflops: 67000, dispatchOverheadUs: 6 };
const tiles = { l1Filters: 4, l2Filters: 4, h: 2, w: 2, d: 4 };
const plan = (modules: PlanModule[]): Plan => ({ model: 'm', hw: 'h', mode: 'optimal', modules, totals: { gma: 0, gmaUnfused: 0, saved: 0, savedPercent: 0 } });
const kindOf = (dag: Dag, a: number, b: number) => `${dag[a].type}${dag[b].type}` as PlanModule['kind'];
const nodesOf = (dag: Dag, layers: number[]) => layers.flatMap((id) => dag[id].nodes ?? []);
const fused = (g: Graph) => g.nodes.filter((n) => n.domain === fcmDomain).map((n) => n.op);
const rejects = (g: Graph, m: PlanModule): string | undefined => {
  try {
    applyPlan(g, plan([m]));
    return undefined;
  } catch (e) {
    if (!(e instanceof FcmError)) throw e;
    return e.message;
  }
};

/** x -> PW -> Relu -> Sigmoid -> DW -> Relu -> PW: two activations between the PW and the DW. */
function reluSigmoid() {
  const b = new GraphBuilder('relu-sigmoid', 11);
  const x = b.input('x', [1, 8, 8, 8]);
  const p1 = b.conv(x, { filters: 16, kernel: 1 });
  const r = b.relu(p1);
  const s = b.node('Sigmoid', [r], b.shape(r));
  const d = b.conv(s, { filters: 16, kernel: 3, group: 16 });
  const p2 = b.conv(b.relu(d), { filters: 8, kernel: 1 });
  return { g: prepareGraph(b.build([p2])), names: [p1, r, s, d, p2].map((y) => y.replace(/_out$/, '')) };
}

test('Conv1x1 -> Relu -> Sigmoid -> DW: the planner does not propose the PW-DW pair, and its plan applies', () => {
  const { g, names } = reluSigmoid();
  const dag = toDag(g);
  // The DAG holds the Relu in the PW layer and the Sigmoid as a layer of its own.
  const layer = (name: string) => dag.find((l) => l.nodes?.includes(name))!;
  assert.deepEqual([layer(names[0]).id, layer(names[0]).activation], [layer(names[1]).id, 'RELU']);
  assert.equal(layer(names[2]).op, 'Sigmoid');
  assert.deepEqual(findCandidates(dag).map((c) => c.kind), ['dwpw']);
  const legality = checkLegality(dag, layer(names[0]).id, layer(names[3]).id);
  assert.equal(legality.ok, false);
  for (const h of [hw, hwTime]) {
    const p = planOptimal(dag, h, { model: 'relu-sigmoid', dtypeBytes: 4 });
    assert.ok(!p.modules.some((m) => m.kind === 'pwdw'), h.name);
    const out = applyPlan(g, p);
    assert.deepEqual(fused(out), p.modules.filter((m) => m.layers.length === 2).map(() => 'FusedDwPw'), h.name);
  }
  // A plan that fuses the pair anyway is refused with exit 2, naming the Sigmoid.
  const forced: PlanModule = { kind: 'pwdw', layers: [1, 3], nodes: names.slice(0, 4), tiles, gma: 1, gmaUnfused: 2 };
  assert.throws(() => applyPlan(g, plan([forced])), (e: unknown) => e instanceof FcmError && e.exitCode === 2 && /consumers \['sigmoid_\d+'\]/.test(e.message));
});

test('activation and Pad orders between PW and DW: Relu -> Pad fuses; Pad -> Relu, a fused-activation conv -> Relu, a Clip of computed bounds do not', () => {
  const build = (seed: number, between: (b: GraphBuilder, y: string) => string, convActivation = false) => {
    const b = new GraphBuilder(`order-${seed}`, seed);
    const x = b.input('x', [1, 4, 6, 6]);
    b.input('bound', []);
    const p = b.conv(x, { filters: 8, kernel: 1 });
    if (convActivation) b.nodes[b.nodes.length - 1].attrs.activation = 'Relu';
    const y = between(b, p);
    const d = b.conv(y, { filters: 8, kernel: 3, group: 8, pad: 0 });
    return prepareGraph(b.build([d]));
  };
  const pad = (b: GraphBuilder, y: string) => { const [n, c, h, w] = b.shape(y); return b.node('Pad', [y], [n, c, h + 2, w + 2], { pads: [0, 0, 1, 1, 0, 0, 1, 1], mode: 'constant', value: 0 }); };
  const cases: [string, (b: GraphBuilder, y: string) => string, boolean, boolean][] = [
    ['Relu -> Pad', (b, y) => pad(b, b.relu(y)), false, true],
    ['Pad -> Relu', (b, y) => b.relu(pad(b, y)), false, false],
    ['Pad -> Pad', (b, y) => pad(b, pad(b, y)), false, false],
    ['Conv{Relu} -> Relu -> Pad', (b, y) => pad(b, b.relu(y)), true, false],
    ['Clip(computed max) -> Pad', (b, y) => pad(b, b.node('Clip', [y, '', 'bound'], b.shape(y))), false, false],
  ];
  cases.forEach(([name, between, convActivation, fuses], k) => {
    const g = build(20 + k, between, convActivation);
    const dag = toDag(g);
    const convs = dag.filter(isConvLayer).map((l) => l.id);
    assert.equal(convs.length, 2, name);
    assert.equal(findCandidates(dag).length, fuses ? 1 : 0, name);
    const m: PlanModule = { kind: 'pwdw', layers: convs, nodes: nodesOf(dag, convs), tiles, gma: 1, gmaUnfused: 2 };
    const refused = rejects(g, m);
    assert.equal(refused === undefined, fuses, `${name}: ${refused}`);
    if (fuses) assert.deepEqual(applyPlan(g, plan([m])).nodes.map((n) => [n.op, n.attrs.pads, n.attrs.activation1]), [['FusedPwDw', [1, 1, 1, 1], 'Relu']], name);
  });
});

/** A random chain of convolutions, activations, Pads and residual Adds, with side outputs and side readers. */
function randomChain(seed: number): Graph {
  const rand = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const b = new GraphBuilder(`chain-${seed}`, seed);
  let y = b.input('x', [1, pick([1, 4, 8]), 6, 6]);
  const bound = b.input('bound', []);
  const seen: string[] = [y];
  const outputs: string[] = [];
  const steps = 4 + Math.floor(rand() * 6);
  for (let s = 0; s < steps; s++) {
    const [n, c, h, w] = b.shape(y);
    const r = rand();
    if (r < 0.3) {
      const stride = rand() < 0.15 && h > 2 ? 2 : 1;
      y = b.conv(y, { filters: pick([1, 4, 8]), kernel: 1, stride, pad: rand() < 0.1 ? 1 : 0, bias: rand() < 0.5 });
    } else if (r < 0.55) {
      y = b.conv(y, { filters: c, kernel: 3, group: c, stride: rand() < 0.3 && h > 3 ? 2 : 1, pad: h < 4 ? 1 : pick([0, 1]) });
    } else if (r < 0.75) {
      const op = pick(['Relu', 'Clip', 'Sigmoid', 'HardSwish', 'LeakyRelu', 'Tanh', 'ClipComputed']);
      if (op === 'Clip') y = b.node('Clip', [y], b.shape(y), { min: 0, max: 6 });
      else if (op === 'ClipComputed') y = b.node('Clip', [y, '', bound], b.shape(y));
      else y = b.node(op, [y], b.shape(y));
    } else if (r < 0.88) {
      const [t, l, bo, ri] = [pick([0, 1]), pick([0, 1]), pick([0, 1]), pick([0, 1])];
      const channels = rand() < 0.15 ? 1 : 0;
      const attrs = { pads: [0, channels, t, l, 0, channels, bo, ri], mode: rand() < 0.1 ? 'reflect' : 'constant', value: rand() < 0.1 ? 1 : 0 };
      y = b.node('Pad', [y], [n, c + 2 * channels, h + t + bo, w + l + ri], attrs);
    } else {
      const same = seen.filter((t) => t !== y && b.shape(t).join() === b.shape(y).join());
      if (same.length === 0) continue;
      y = b.add(y, pick(same));
    }
    seen.push(y);
    if (rand() < 0.08) outputs.push(y);
    else if (rand() < 0.06) outputs.push(b.node('Sigmoid', [y], b.shape(y)));
  }
  return prepareGraph(b.build([y, ...outputs.filter((t) => t !== y)]));
}

test('seeded random chains: every candidate and every plan applies; a pair the rewrite accepts is legal to the planner', () => {
  let candidates = 0, accepted = 0, pairs = 0;
  for (let seed = 1; seed <= 300; seed++) {
    const g = randomChain(seed);
    const dag = toDag(g);
    const ops = g.nodes.map((n) => `${n.op}${n.attrs.activation ? `{${n.attrs.activation}}` : ''}`).join(' ');
    for (const c of findCandidates(dag)) {
      candidates++;
      const m: PlanModule = { kind: c.kind, layers: [c.first, c.second], nodes: nodesOf(dag, [c.first, ...c.between, c.second, ...c.epilogue]), tiles, gma: 1, gmaUnfused: 2 };
      const refused = rejects(g, m);
      assert.equal(refused, undefined, `seed ${seed} (${ops}): candidate ${c.kind} ${c.first}-${c.second} refused: ${refused}`);
    }
    const convs = dag.filter((l) => l.type === 'pw' || l.type === 'dw').map((l) => l.id);
    for (const a of convs) {
      for (const b of convs) {
        if (b <= a) continue;
        const kind = kindOf(dag, a, b);
        if (kind !== 'pwdw' && kind !== 'dwpw' && kind !== 'pwpw') continue;
        pairs++;
        const legal = checkLegality(dag, a, b).ok;
        const refused = rejects(g, { kind, layers: [a, b], nodes: nodesOf(dag, [a, b]), tiles, gma: 1, gmaUnfused: 2 });
        if (refused === undefined) accepted++;
        assert.equal(refused === undefined, legal, `seed ${seed} (${ops}): layers ${a}-${b} (${kind}) legal ${legal}, rewrite: ${refused ?? 'accepted'}`);
      }
    }
    for (const h of [hw, hwTime]) {
      const p = planOptimal(dag, h, { model: g.name, dtypeBytes: 4 });
      const out = applyPlan(g, p);
      assert.equal(fused(out).length, p.modules.filter((m) => m.layers.length === 2).length, `seed ${seed}`);
      assert.deepEqual(out.outputs, g.outputs);
    }
  }
  // The generator reaches both outcomes often enough for the property to mean something.
  assert.ok(candidates >= 100 && accepted >= 100 && pairs - accepted >= 300, `candidates ${candidates}, accepted ${accepted} of ${pairs} pairs`);
});
