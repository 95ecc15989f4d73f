// Planner speed: plans a generated 200-layer DAG (MobileNetV2-like inverted residual blocks) on the H100
// description in each mode and prints the median time. Goal: under 100 ms per plan.
// Run: npm run build && node dist/bench/plan.js
import { pathToFileURL } from 'node:url';
import type { Dag, DagLayer } from '../src/planner/dag.js';
import { loadHw } from '../src/planner/hw.js';
import { planFusion, planModes, type PlanMode } from '../src/planner/index.js';

/**
 * A valid layer DAG of about `layers` layers: stem conv, then blocks pw(expand) -> dw -> pw(project) with a
 * residual add when shapes allow; channels and resolution change every few blocks.
 */
export function generateDag(layers = 200): Dag {
  const dag: DagLayer[] = [];
  type NewLayer = Pick<DagLayer, 'name' | 'activation' | 'parents' | 'ifms_shape' | 'ofms_shape' | 'type' | 'weights_shape' | 'strides'>;
  const add = (l: NewLayer): number => {
    const id = dag.length;
    dag.push({ ...l, id, children: [] });
    for (const p of l.parents) dag[p].children.push(id);
    return id;
  };
  let h = 112;
  let c = 32;
  let last = add({ name: 'stem', activation: 'RELU6', parents: [], type: 's', ifms_shape: [3, 224, 224], ofms_shape: [c, h, h], weights_shape: [c, 3, 3, 3], strides: 2 });
  const widths = [16, 24, 32, 64, 96, 160, 320];
  for (let block = 0; dag.length + 4 <= layers; block++) {
    const stage = Math.min(Math.floor(block / 4), widths.length - 1);
    const out = widths[stage];
    const stride = block % 4 === 0 && h > 7 ? 2 : 1;
    const e = c * 6;
    const oh = h / stride;
    const blockIn = last;
    const pw1 = add({ name: `b${block}_expand`, activation: 'RELU6', parents: [last], type: 'pw', ifms_shape: [c, h, h], ofms_shape: [e, h, h], weights_shape: [e, c], strides: 1 });
    const dw = add({ name: `b${block}_dw`, activation: 'RELU6', parents: [pw1], type: 'dw', ifms_shape: [e, h, h], ofms_shape: [e, oh, oh], weights_shape: [e, 3, 3], strides: stride });
    const pw2 = add({ name: `b${block}_project`, activation: '0', parents: [dw], type: 'pw', ifms_shape: [e, oh, oh], ofms_shape: [out, oh, oh], weights_shape: [out, e], strides: 1 });
    last = stride === 1 && out === c
      ? add({ name: `b${block}_add`, activation: '0', parents: [blockIn, pw2], ifms_shape: [1, oh, oh, out], ofms_shape: [1, oh, oh, out] })
      : pw2;
    c = out;
    h = oh;
  }
  // Head: 1x1 convs to reach exactly `layers` layers.
  while (dag.length < layers) {
    const f = dag.length + 1 === layers ? 1280 : c;
    last = add({ name: `head${dag.length}`, activation: 'RELU6', parents: [last], type: 'pw', ifms_shape: [c, h, h], ofms_shape: [f, h, h], weights_shape: [f, c], strides: 1 });
    c = f;
  }
  return dag;
}

export interface PlanBenchResult { mode: PlanMode; layers: number; medianMs: number; modules: number }

export function benchPlan(runs = 20): PlanBenchResult[] {
  const dag = generateDag(200);
  const hw = loadHw('h100');
  const results: PlanBenchResult[] = [];
  for (const mode of planModes) {
    let plan;
    try {
      plan = planFusion(dag, hw, { mode, model: 'generated-200' }); // warm-up; also checks the mode exists
    } catch (e) {
      process.stderr.write(`plan ${mode}: skipped (${(e as Error).message})\n`);
      continue;
    }
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      planFusion(dag, hw, { mode, model: 'generated-200' });
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    results.push({ mode, layers: dag.length, medianMs: times[Math.floor(times.length / 2)], modules: plan.modules.length });
  }
  return results;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const r of benchPlan()) {
    const verdict = r.medianMs < 100 ? 'ok' : 'OVER the 100 ms goal';
    console.log(`plan ${r.mode.padEnd(11)} ${r.layers} layers, ${r.modules} modules: ${r.medianMs.toFixed(2)} ms median (${verdict})`);
  }
}
