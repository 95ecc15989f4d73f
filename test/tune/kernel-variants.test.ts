// --tune's pointwise kernel variants (src/tune/tune.ts tuneKernels): with injected per-node times, which variant each
// layer keeps and what the plan records; a plan's kernel choices through JSON and the optimized model's metadata
// (same programs), a choice the device cannot take (the rule's kernel, a note in the stats); and on lavapipe,
// every variant's outputs against the rule's, fp32 and fp16.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import type { Graph } from '../../src/graph/ir.js';
import { loadHw } from '../../src/planner/hw.js';
import type { Plan } from '../../src/planner/plan.js';
import { planToJson, formatPlan } from '../../src/planner/format.js';
import { toDag } from '../../src/planner/to-dag.js';
import { createSession } from '../../src/pipeline/session.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { type Session, executorOf } from '../../src/runtime/executor.js';
import { SubBatchSession } from '../../src/runtime/sub-batch.js';
import { seededInput } from '../../src/runtime/compare.js';
import { applyPlan } from '../../src/rewrite/apply-plan.js';
import { exportOptimized } from '../../src/export/optimized.js';
import { readOptimized } from '../../src/export/read-optimized.js';
import { kernelMargin, tuneKernels, tunePlan } from '../../src/tune/tune.js';
import { medianModuleTimes, timedSession } from '../../src/bench/profile.js';
import type { ProfileEntry } from '../../src/bench/runtime.js';

after(releaseGpu);

/**
 * Three pointwise layers on a 32x32 map (16 -> 64 -> 64 -> 32, ReLU6 between), with a depthwise layer after the first:
 * enough positions for the gemm kernel's tiles, so every layer has two or more variants.
 */
function pointwiseStack(): Graph {
  const b = new GraphBuilder('pointwise_stack', 7);
  const x = b.input('input', [1, 16, 32, 32]);
  let y = b.relu6(b.conv(x, { filters: 64, bias: true }));
  y = b.relu6(b.conv(y, { filters: 64, kernel: 3, group: 64, bias: true }));
  y = b.relu6(b.conv(y, { filters: 64, bias: true }));
  y = b.conv(y, { filters: 32, bias: true });
  return b.build([y]);
}

const hw = loadHw('lavapipe');
const executorIn = (s: Session) => executorOf(s instanceof SubBatchSession ? s.inner : s);
const variantsOf = (s: Session) => executorIn(s).compiled.kernelVariants ?? new Map<string, { variant: string; variants: string[] }>();

test('tunePlan: each pointwise layer keeps a variant only where it beats the rule\'s by the margin, with its times in the plan', async () => {
  const g = pointwiseStack();
  // Fused modules 1 ms (slower than their layers: every pair is left unfused). Pointwise layers: the rule's kernel 10
  // us; the first layer's other variants 6 us (kept), the second's 9.8 (2% faster: within the margin), the third's 12.
  let layers: string[] = [];
  const measure = async (ss: readonly Session[]): Promise<ProfileEntry[][]> => ss.map((s) => {
    const vs = variantsOf(s);
    if (!layers.length && vs.size) layers = [...vs.keys()];
    return s.graph.nodes.map((n) => {
      if (n.domain !== '') return { node: n.name, op: n.op, gpuMs: 1 };
      const v = vs.get(n.name);
      if (!v) return { node: n.name, op: n.op, gpuMs: 0.004 };
      if (v.variant === v.variants[0]) return { node: n.name, op: n.op, gpuMs: 0.010 };
      return { node: n.name, op: n.op, gpuMs: [0.006, 0.0098, 0.012][layers.indexOf(n.name)] };
    });
  });
  const r = await tunePlan(g, hw, { measure, rounds: 1, variants: [{ name: 'planner', apply: (t) => t }] });
  assert.equal(r.plan.modules.filter((m) => m.layers.length > 1).length, 0, 'every module left unfused');
  assert.equal(layers.length, 3, `pointwise layers: ${layers}`);
  assert.equal(r.kernelRows.length, 3);
  const [first, second, third] = layers.map((n) => r.kernelRows.find((k) => k.node === n)!);
  for (const row of [first, second, third]) {
    assert.equal(row.ruleUs, 10);
    assert.equal(row.noise, 0);
    assert.ok(Object.keys(row.us).length >= 2, `${row.node} timed with ${Object.keys(row.us)}`);
  }
  const chosen = Object.keys(first.us).find((k) => k !== first.rule)!;
  assert.equal(first.chosen, chosen);
  assert.equal(first.us[chosen], 6);
  assert.equal(second.chosen, undefined, `9.8 us is within ${kernelMargin * 100}% of 10`);
  assert.equal(third.chosen, undefined);
  assert.deepEqual(r.plan.kernels, { [first.node]: { variant: chosen, tuned: { us: 6, ruleUs: 10, rule: first.rule } } });
  assert.match(formatPlan(r.plan, toDag(g)), new RegExp(`kernel choices \\(1 pointwise layer;[^\\n]*\\n  ${first.node}: ${chosen} 6\\.0 us \\(rule ${first.rule} 10\\.0 us\\)`));
  // Without the kernel step: no choices.
  const off = await tunePlan(g, hw, { measure, rounds: 1, variants: [{ name: 'planner', apply: (t) => t }], kernels: false });
  assert.equal(off.plan.kernels, undefined);
  assert.deepEqual(off.kernelRows, []);
});

test('tuneKernels: where the rule\'s two sessions differ by more than the margin, that spread is the margin', async () => {
  const g = pointwiseStack();
  const unfusedPlan: Plan = { model: 'm', hw: hw.name, mode: 'optimal', modules: [], totals: { gma: 0, gmaUnfused: 0, saved: 0, savedPercent: 0 } };
  // The rule's kernels: 10 us in session 0, 12 in session 1 (spread 2 / 11 = 18%). Every other variant 9.5 us on the
  // first layer (14% under the rule's 11: past 5%, not past 18%) and 8.5 on the others (23% under: kept).
  let first = '';
  const measure = async (ss: readonly Session[]): Promise<ProfileEntry[][]> => ss.map((s, i) => s.graph.nodes.map((n) => {
    const v = variantsOf(s).get(n.name);
    if (v && !first) first = n.name;
    const us = !v ? 4 : v.variant === v.variants[0] ? (i === 0 ? 10 : 12) : n.name === first ? 9.5 : 8.5;
    return { node: n.name, op: n.op, gpuMs: us / 1000 };
  }));
  const lines: string[] = [];
  const r = await tuneKernels(g, hw, unfusedPlan, { feeds: { [g.inputs[0]]: seededInput(16 * 32 * 32, 1) }, measure, precision: 'fp32', log: (l) => lines.push(l), margin: kernelMargin });
  assert.equal(r.rows.length, 3);
  for (const row of r.rows) {
    assert.equal(row.ruleUs, 11);
    assert.ok(Math.abs(row.noise - 2 / 11) < 1e-12);
    assert.equal(row.chosen === undefined, row.node === first, row.node);
  }
  assert.ok(lines.some((l) => l.includes('rule against itself: median 18.2%, max 18.2%; margin 18.2%')), lines.join('\n'));
});

test('tunePlan in fp16 chooses among the f16 kernels\' variants', async () => {
  const g = pointwiseStack();
  // The last variant of every layer is the fastest.
  const measure = async (ss: readonly Session[]): Promise<ProfileEntry[][]> => ss.map((s) => s.graph.nodes.map((n) => {
    const v = variantsOf(s).get(n.name);
    const us = n.domain !== '' ? 1000 : !v ? 4 : v.variant === v.variants[v.variants.length - 1] ? 5 : 10;
    return { node: n.name, op: n.op, gpuMs: us / 1000 };
  }));
  const r = await tunePlan(g, hw, { measure, rounds: 1, variants: [{ name: 'planner', apply: (t) => t }], precision: 'fp16' });
  assert.equal(r.kernelRows.length, 3);
  for (const row of r.kernelRows) {
    const last = Object.keys(row.us).at(-1)!;
    assert.equal(row.chosen, last);
    assert.deepEqual(r.plan.kernels![row.node], { variant: last, tuned: { us: 5, ruleUs: 10, rule: row.rule } });
  }
});

test('tunePlan passes its fp16 options to every session it times', async () => {
  const g = pointwiseStack();
  const kept = g.outputs[0];
  const seen: string[][] = [];
  const measure = async (ss: readonly Session[]): Promise<ProfileEntry[][]> => ss.map((s) => {
    seen.push(s.stats().f32Tensors);
    // Fused modules lose, so that the pointwise layers stay and their kernel variants are timed too.
    return s.graph.nodes.map((n) => ({ node: n.name, op: n.op, gpuMs: n.domain !== '' ? 1 : 0.01 }));
  });
  const r = await tunePlan(g, hw, { measure, rounds: 1, variants: [{ name: 'planner', apply: (t) => t }], precision: 'fp16', fp16: { keepF32: [kept] } });
  assert.equal(r.kernelRows.length, 3);
  assert.ok(seen.length >= 5, `${seen.length} sessions timed`);
  for (const f of seen) assert.ok(f.includes(kept), `a tuning session did not keep ${kept} f32: [${f.join(', ')}]`);
});

/** Every pointwise layer's k-th variant (a layer with fewer keeps the rule's). */
function planWithVariant(base: Plan, variants: Map<string, { variants: string[] }>, k: number): Plan {
  return { ...base, kernels: Object.fromEntries([...variants].filter(([, v]) => v.variants.length > k).map(([n, v]) => [n, { variant: v.variants[k] }])) };
}

test('a plan\'s kernel choices survive JSON and the optimized model\'s metadata, and give the same programs', async () => {
  const g = pointwiseStack();
  const unfusedPlan: Plan = { model: 'm', hw: hw.name, mode: 'optimal', modules: [], totals: { gma: 0, gmaUnfused: 0, saved: 0, savedPercent: 0 } };
  const rule = await createSession(g, { hw, plan: unfusedPlan });
  const vs = variantsOf(rule);
  const plan = planWithVariant(unfusedPlan, vs, 1);
  plan.kernels![[...vs.keys()][0]].tuned = { us: 1.5, ruleUs: 2.5, rule: [...vs.values()][0].variant };
  const loaded = JSON.parse(planToJson(plan)) as Plan;
  assert.deepEqual(loaded, plan);
  const o = await readOptimized(exportOptimized(applyPlan(g, plan), plan));
  assert.deepEqual(o.plan.kernels, plan.kernels, 'the optimized model records the choices');
  const keys = (s: Session) => executorIn(s).compiled.steps.map((st) => `${st.node.name}:${st.program.cacheKey}`);
  const a = await createSession(g, { hw, plan });
  const b = await createSession(g, { hw, plan: loaded });
  try {
    assert.deepEqual(keys(b), keys(a));
    assert.equal(a.stats().kernelFallbacks.length, 0);
    const multi = [...vs].filter(([, v]) => v.variants.length > 1);
    assert.equal(multi.length, 3, 'every pointwise layer has a second variant');
    for (const [n, v] of multi) assert.equal(variantsOf(a).get(n)!.variant, v.variants[1], n);
    const changed = keys(a).filter((k, i) => k !== keys(rule)[i]);
    assert.equal(changed.length, multi.length, `one program changed per layer: ${changed}`);
  } finally {
    for (const s of [rule, a, b]) s.dispose();
  }
});

test('a loaded plan whose choice this device cannot take runs the rule\'s kernel and says so', async () => {
  const g = pointwiseStack();
  const unfusedPlan: Plan = { model: 'm', hw: hw.name, mode: 'optimal', modules: [], totals: { gma: 0, gmaUnfused: 0, saved: 0, savedPercent: 0 } };
  const rule = await createSession(g, { hw, plan: unfusedPlan });
  const [node] = [...variantsOf(rule).keys()];
  // Subgroup matrices (an H100's 32 x 32 staged tiles) in fp32 on lavapipe, and a node this graph lacks.
  const plan: Plan = { ...unfusedPlan, kernels: { [node]: { variant: 'smx:SG2x2T1x1BK32' }, nowhere: { variant: 'vec4:RF4T64' } } };
  const s = await createSession(g, { hw, plan });
  try {
    assert.deepEqual(executorIn(s).compiled.steps.map((st) => st.program.cacheKey), executorIn(rule).compiled.steps.map((st) => st.program.cacheKey));
    const notes = s.stats().kernelFallbacks;
    assert.equal(notes.length, 1);
    assert.match(notes[0], new RegExp(`node '${node}': kernel variant 'smx:SG2x2T1x1BK32' is not one this layer can run`));
    const x = { [g.inputs[0]]: seededInput(16 * 32 * 32, 5) };
    assert.deepEqual((await s.run(x))[g.outputs[0]].data, (await rule.run(x))[g.outputs[0]].data);
  } finally {
    s.dispose();
    rule.dispose();
  }
});

// Another kernel sums the same products in another order. fp32: the layers' sums of <= 64 products differ by a few
// ulps (~1e-6 relative); through three layers 2e-5 of max |output| leaves a margin and still fails a wrong index or
// a dropped channel (errors of the outputs' own size). fp16: every layer's output is rounded to f16 (2^-11 relative),
// and a sum that lands near a rounding boundary rounds one ulp apart; three layers: 4e-3 of max |output| (2^-8).
const tolerance = { fp32: 2e-5, fp16: 4e-3 } as const;

test('every pointwise variant computes the rule\'s outputs within the fp32 and fp16 bounds', async () => {
  const g = pointwiseStack();
  const x = { [g.inputs[0]]: seededInput(16 * 32 * 32, 9) };
  const unfusedPlan: Plan = { model: 'm', hw: hw.name, mode: 'optimal', modules: [], totals: { gma: 0, gmaUnfused: 0, saved: 0, savedPercent: 0 } };
  for (const precision of ['fp32', 'fp16'] as const) {
    const opts = { hw, precision, fp16: { keepF32: 'none' as const } };
    const rule = await createSession(g, { ...opts, plan: unfusedPlan });
    try {
      const vs = variantsOf(rule);
      const ref = (await rule.run(x))[g.outputs[0]].data;
      const max = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      assert.ok(max > 0.1, `outputs of some size: ${max}`);
      const count = Math.max(...[...vs.values()].map((v) => v.variants.length));
      assert.ok(count >= 2, 'a second variant to compare');
      for (let k = 1; k < count; k++) {
        const s = await createSession(g, { ...opts, plan: planWithVariant(unfusedPlan, vs, k) });
        try {
          for (const [n, v] of vs) if (v.variants.length > k) assert.equal(variantsOf(s).get(n)!.variant, v.variants[k]);
          const out = (await s.run(x))[g.outputs[0]].data;
          let err = 0;
          for (let i = 0; i < ref.length; i++) err = Math.max(err, Math.abs(out[i] - ref[i]));
          assert.ok(err <= tolerance[precision] * max, `${precision} variant ${k}: ${err} > ${tolerance[precision]} x ${max}`);
        } finally {
          s.dispose();
        }
      }
    } finally {
      rule.dispose();
    }
  }
});

test('tuneKernels with the real measurement (lavapipe): every layer timed with every variant, a choice only past the margin', async () => {
  const g = pointwiseStack();
  const unfusedPlan: Plan = { model: 'm', hw: hw.name, mode: 'optimal', modules: [], totals: { gma: 0, gmaUnfused: 0, saved: 0, savedPercent: 0 } };
  // What tunePlan measures by default (per-node times in one heated pass per session, interleaved), one round each.
  const measure = async (ss: readonly Session[], feeds: Record<string, Float32Array>) => (await medianModuleTimes(ss.map(timedSession), feeds, 1, { iters: 1 })).times;
  const feeds = { [g.inputs[0]]: seededInput(16 * 32 * 32, 2) };
  const lines: string[] = [];
  const r = await tuneKernels(g, hw, unfusedPlan, { feeds, measure, precision: 'fp32', log: (l) => lines.push(l), margin: kernelMargin });
  assert.equal(r.rows.length, 3, lines.join('\n'));
  const spread = lines.find((l) => l.includes('rule against itself'));
  assert.match(spread ?? '', /rule against itself: median [\d.]+%, max [\d.]+%; margin [\d.]+%/);
  const margin = Number(/margin ([\d.]+)%/.exec(spread!)![1]) / 100;
  assert.ok(margin >= kernelMargin);
  const s = await createSession(g, { hw, plan: r.plan });
  try {
    for (const row of r.rows) {
      const v = variantsOf(s).get(row.node)!;
      assert.deepEqual(Object.keys(row.us).sort(), [...v.variants].sort(), `${row.node}: every variant timed`);
      assert.ok(Object.values(row.us).every((us) => us > 0) && row.noise >= 0);
      if (row.chosen) {
        assert.ok(row.us[row.chosen] < row.ruleUs * (1 - margin + 1e-3));
        assert.deepEqual(r.plan.kernels![row.node], { variant: row.chosen, tuned: { us: row.us[row.chosen], ruleUs: row.ruleUs, rule: row.rule } });
      } else assert.equal(r.plan.kernels?.[row.node], undefined);
      // The session made from the tuned plan runs what the plan chose.
      assert.equal(v.variant, row.chosen ?? row.rule);
    }
    assert.equal(s.stats().kernelFallbacks.length, 0);
  } finally {
    s.dispose();
  }
});
