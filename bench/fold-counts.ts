// Dispatches per run of each zoo model with and without the folds of src/rewrite/residual-activation.ts and
// channel-shuffle.ts ("before" / "folds"), and with every fold ("all": shuffle-conv.ts, squeeze-excite.ts, the
// Gemm / MatMul activations of epilogues.ts and pointwise-mean.ts too, the executor's graph), for the unfused plan (epilogues only) and the planner's plan on --hw: the schedule the session
// would run (compileGraph of the executor's graph, channel scales folded as createSession does), so no GPU is needed.
// The session's stats().dispatchesPerRun is the same count (test/rewrite/dispatch-folds.test.ts checks it on small
// models). --kernels MODEL prints that model's programs by name, with and without the folds.
//
// Run: npx tsc -p tsconfig.json && node dist/bench/fold-counts.js [--hw hw_configs/h100.cfg] [--kernels regnet_x_400mf]

import { exportOnnx } from '../converters/onnx/export.js';
import { loadModel } from '../src/graph/load.js';
import { zooFoldModels, zooModels } from '../fixtures/zoo.js';
import { type Graph, fcmDomain } from '../src/graph/ir.js';
import { loadHw } from '../src/planner/hw.js';
import { planFor, planningInput, rewrite } from '../src/pipeline/pipeline.js';
import { fuseEpilogues } from '../src/rewrite/epilogues.js';
import { applyPlan } from '../src/rewrite/apply-plan.js';
import { foldPads } from '../src/rewrite/fold-pads.js';
import { foldChannelScales } from '../src/rewrite/channel-scale.js';
import { foldResidualActivations } from '../src/rewrite/residual-activation.js';
import { foldChannelShuffles } from '../src/rewrite/channel-shuffle.js';
import { compileGraph } from '../src/runtime/compile.js';
import { defaultLimits } from '../kernels/program.js';
import type { Plan } from '../src/planner/plan.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const limits = { ...defaultLimits, maxComputeWorkgroupStorageSize: 32768, maxStorageBufferBindingSize: 1 << 30, maxBufferSize: 1 << 30 };
const programs = (g: Graph) => compileGraph(foldChannelScales(g), limits).steps.map((s) => s.program.name);
/** The executor's graph before the folds: rewrite() as it was. */
const unfolded = (g: Graph, plan: 'unfused' | Plan) => (plan === 'unfused' ? foldPads(fuseEpilogues(g)) : foldPads(applyPlan(g, plan)));
/** The residual-activation and channel-shuffle folds only. */
const withoutSe = (g: Graph, plan: 'unfused' | Plan) => foldChannelShuffles(foldResidualActivations(unfolded(g, plan)));

async function main() {
  const hw = loadHw(arg('hw', 'hw_configs/h100.cfg'));
  const show = arg('kernels', '');
  const all = { ...zooModels, ...zooFoldModels };
  console.log('| model | unfused before | unfused folds | unfused all | fused before | fused folds | fused all | FCMs | SqueezeExcite |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const [name, make] of Object.entries(all)) {
    const g = await loadModel(exportOnnx(make(1)), { source: `${name}.onnx` });
    const pin = planningInput(g, hw, false, 'fp32');
    const plan = planFor(pin, { model: name });
    const rows = {
      ub: programs(unfolded(pin.graph, 'unfused')), uf: programs(withoutSe(pin.graph, 'unfused')), ua: programs(rewrite(pin.graph, 'fp32', 'unfused', { squeezeExcite: true })),
      fb: programs(unfolded(pin.graph, plan)), ff: programs(withoutSe(pin.graph, plan)), fa: programs(rewrite(pin.graph, 'fp32', plan, { squeezeExcite: true })),
    };
    const fused = rewrite(pin.graph, 'fp32', plan, { squeezeExcite: true }).nodes;
    const fcms = fused.filter((n) => n.domain === fcmDomain).length;
    const se = fused.filter((n) => n.op === 'SqueezeExcite').length;
    console.log(`| ${name} | ${rows.ub.length} | ${rows.uf.length} | ${rows.ua.length} | ${rows.fb.length} | ${rows.ff.length} | ${rows.fa.length} | ${fcms} | ${se} |`);
    if (name === show) {
      for (const [k, list] of Object.entries(rows)) {
        const hist = new Map<string, number>();
        for (const p of list) hist.set(p, (hist.get(p) ?? 0) + 1);
        console.log(`  ${k}: ${[...hist.entries()].sort((a, b) => b[1] - a[1]).map(([p, c]) => `${p} x${c}`).join(', ')}`);
      }
      for (const m of plan.modules) console.log(`  module ${m.kind} ${(m.nodes ?? []).join(' + ')} gma ${m.gma} vs ${m.gmaUnfused}`);
    }
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
