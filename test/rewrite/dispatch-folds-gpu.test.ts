// The dispatch folds (src/rewrite/residual-activation.ts, channel-shuffle.ts) on lavapipe: each graph runs unfolded and
// folded on the executor, and the outputs must be equal, bit for bit. Why no tolerance: the folds change no arithmetic.
// A residual activation is the same f32 function applied to the same f32 sum, in the register instead of after a
// store and a load (the kernel, its accumulation order and its tiles are chosen from the geometry, which the fold does
// not change); ChannelShuffle copies values, and a conv with a shuffled store (shuffle-conv.ts) computes with the same
// kernel and stores elsewhere. Dispatch counts are stated per graph.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import type { Graph } from '../../src/graph/ir.js';
import { fuseEpilogues } from '../../src/rewrite/epilogues.js';
import { applyPlan } from '../../src/rewrite/apply-plan.js';
import { foldPads } from '../../src/rewrite/fold-pads.js';
import { foldChannelScales } from '../../src/rewrite/channel-scale.js';
import { foldResidualActivations } from '../../src/rewrite/residual-activation.js';
import { planFor, planningInput, rewrite } from '../../src/pipeline/pipeline.js';
import { createSession } from '../../src/pipeline/session.js';
import { compileGraph } from '../../src/runtime/compile.js';
import { Executor } from '../../src/runtime/executor.js';
import { type GpuContext, acquireGpu, releaseGpu } from '../../src/runtime/device.js';
import { fp16, fp32 } from '../../src/runtime/precision.js';
import { seededInput } from '../../src/runtime/compare.js';
import { loadHw } from '../../src/planner/hw.js';
import { chooseDot } from '../../kernels/pointwise.js';
import type { Plan, PlanModule } from '../../src/planner/plan.js';
import { tinyRegNet, tinyResNet, tinyShuffleNet } from './fold-models.js';

after(releaseGpu);

const limitsOf = (ctx: GpuContext) => ({ ...ctx.kernelLimits, maxStorageBufferBindingSize: ctx.limits.maxStorageBufferBindingSize, maxBufferSize: ctx.limits.maxBufferSize });

/** The schedule of `g` with every Concat copy run: the counts below are the folds' own, not the views' (views.test.ts). */
function withoutViews<T>(f: () => T): T {
  const before = process.env.FCM_OPT_VIEWS;
  process.env.FCM_OPT_VIEWS = '0';
  try {
    return f();
  } finally {
    if (before === undefined) delete process.env.FCM_OPT_VIEWS;
    else process.env.FCM_OPT_VIEWS = before;
  }
}

/** Runs `g` as createSession would (channel scales folded) and returns its outputs and dispatches per run. */
async function runGraph(g: Graph, feeds: Record<string, Float32Array>, storage: 'f32' | 'f16' = 'f32') {
  const ctx = await acquireGpu();
  const s = await Executor.create(ctx, withoutViews(() => compileGraph(foldChannelScales(g), limitsOf(ctx), storage)), storage === 'f16' ? fp16 : fp32);
  try {
    const r = await s.run(feeds);
    return { dispatches: s.stats().dispatchesPerRun, outputs: g.outputs.map((y) => Float32Array.from(r[y].data as ArrayLike<number>)) };
  } finally {
    s.dispose();
  }
}

function feedsOf(g: Graph, seed = 5): Record<string, Float32Array> {
  return Object.fromEntries(g.inputs.map((x, k) => [x, seededInput(g.tensors.get(x)!.shape.reduce((a, b) => a * b, 1), seed + k)]));
}

/** Runs both graphs and asserts equal outputs and the dispatch counts; returns the folded count. */
async function same(before: Graph, folded: Graph, saved: number, storage: 'f32' | 'f16' = 'f32'): Promise<number> {
  const feeds = feedsOf(before);
  const a = await runGraph(before, feeds, storage), b = await runGraph(folded, feeds, storage);
  assert.equal(b.dispatches, a.dispatches - saved, `dispatches ${a.dispatches} -> ${b.dispatches}`);
  a.outputs.forEach((y, k) => {
    const z = b.outputs[k];
    assert.equal(z.length, y.length);
    let diff = 0;
    for (let i = 0; i < y.length; i++) if (!Object.is(y[i], z[i])) diff++;
    assert.equal(diff, 0, `${before.source} output ${k}: ${diff} of ${y.length} values differ`);
    assert.ok(y.some((v) => v !== 0), 'the outputs are not all zero');
  });
  return b.dispatches;
}

const imported = (g: Graph) => loadModel(exportOnnx(g), { source: `${g.name}.onnx` });

for (const [name, make, saved] of [
  ['tiny ResNet', () => tinyResNet(2), 2],
  ['tiny RegNet', () => tinyRegNet(1), 3],
  // 10 by the ChannelShuffle fold, then 3 by each shuffle folding into its branch's last conv (shuffle-conv.ts).
  ['tiny ShuffleNet (Split)', () => tinyShuffleNet(2), 13],
  ['tiny ShuffleNet (Slices)', () => tinyShuffleNet(1, { slices: true }), 13],
] as const) {
  test(`${name}: folded runs as unfolded, ${saved} dispatches fewer; the session runs the folded schedule`, async () => {
    const m = await imported(make());
    const count = await same(foldPads(fuseEpilogues(m)), rewrite(m, 'fp32', 'unfused'), saved);
    const s = await createSession(m, { plan: 'unfused' });
    try {
      assert.equal(s.stats().dispatchesPerRun, count);
    } finally {
      s.dispose();
    }
  });
}

test('tiny ShuffleNet with the planner\'s FCMs (h100.cfg): folded runs as unfolded', async () => {
  const m = await imported(tinyShuffleNet(1));
  const pin = planningInput(m, loadHw('hw_configs/h100.cfg'), false, 'fp32');
  const plan = planFor(pin);
  assert.ok(plan.modules.some((x) => x.layers.length === 2), 'the plan fuses a pair');
  // The plan fuses no branch-final conv: all three shuffles fold into their convs, as unplanned.
  await same(foldPads(applyPlan(pin.graph, plan)), rewrite(pin.graph, 'fp32', plan), 13);
});

test('f16 storage: the folds run as unfolded (where the adapter has shader-f16)', async (t) => {
  if (!(await acquireGpu()).shaderF16) { t.skip('no shader-f16 on this adapter'); return; }
  for (const g of [await imported(tinyRegNet(1)), await imported(tinyShuffleNet(1))]) {
    await same(foldPads(fuseEpilogues(g)), rewrite(g, 'fp16', 'unfused'), g.name === 'tiny_regnet' ? 3 : 13, 'f16');
  }
});

// ---- every kernel that stores a residual, with the activation after it ---------------------------------------------

/** relu(conv(x) + r) (or relu6: Clip's bounds as parameters) with r a graph input of the conv's output shape. */
function convPlusInput(hw: number, C: number, N: number, F: number, conv: { kernel?: number; stride?: number; group?: number; relu6?: boolean } = {}): Graph {
  const b = new GraphBuilder('conv_res', 41);
  const x = b.input('x', [N, C, hw, hw]);
  const c = b.conv(x, { filters: F, bias: true, kernel: conv.kernel ?? 1, stride: conv.stride, group: conv.group });
  const r = b.input('r', b.shape(c));
  const s = b.add(c, r);
  return b.build([conv.relu6 ? b.relu6(s) : b.relu(s)]);
}

// Shapes that reach each pointwise kernel with a residual (chooseDot): split-K, vec4 with global and staged weights, gemm.
const pointwiseShapes = [[8, 16, 1, 24], [64, 6, 1, 24], [128, 4, 1, 32], [128, 16, 1, 32], [49, 20, 2, 64]] as const;

test('the pointwise shapes below reach every pointwise kernel with a residual', async () => {
  const limits = (await acquireGpu()).kernelLimits;
  const kinds = new Set(pointwiseShapes.map(([hw, C, N, F]) => {
    const ch = chooseDot({ N, C, F, P: hw * hw, hasBias: true, hasRes: true, hasScale: false, act: { fn: '', key: '' } }, limits);
    return ch.kind === 'splitK' || ch.kind === 'gemm' ? ch.kind : ch.rf >= 4 ? 'vec4 staged' : 'vec4 global';
  }));
  assert.deepEqual([...kinds].sort(), ['gemm', 'splitK', 'vec4 global', 'vec4 staged']);
});

for (const [hw, C, N, F] of pointwiseShapes) {
  test(`pointwise ${N}x${C}x${hw}x${hw} -> ${F} + residual, Relu after: one dispatch, as unfolded`, async () => {
    const g = fuseEpilogues(convPlusInput(hw, C, N, F));
    await same(g, foldResidualActivations(g), 1);
  });
}

for (const [what, hw, conv] of [
  ['depthwise 3x3, vec4 rows', 16, { kernel: 3, group: 8 }],
  ['depthwise 3x3 stride 2, scalar rows', 9, { kernel: 3, stride: 2, group: 8 }],
  ['general 3x3 conv', 7, { kernel: 3 }],
  ['grouped 3x3 conv', 7, { kernel: 3, group: 2, relu6: true }],
] as const) {
  test(`${what} + residual, ${'relu6' in conv ? 'Clip(0, 6)' : 'Relu'} after: one dispatch, as unfolded`, async () => {
    const g = fuseEpilogues(convPlusInput(hw, 8, 1, 8, conv));
    const f = foldResidualActivations(g);
    if ('relu6' in conv) assert.deepEqual(f.nodes[0].attrs.activationParamsPost, [0, 6]);
    await same(g, f, 1);
  });
}

const tiles = { l1Filters: 8, l2Filters: 8, h: 4, w: 4, d: 8 };
const planOf = (modules: PlanModule[]): Plan => ({ model: 'm', hw: 'h', mode: 'optimal', modules, totals: { gma: 0, gmaUnfused: 0, saved: 0, savedPercent: 0 } });
const node = (y: string) => y.replace(/_out$/, '');

// pwpw on 1x1 maps takes the vector kernel (kernels/fused-pwpw.ts fusedPwPwVector), on 8x8 the tiled one.
for (const [kind, hw] of [['pwdw', 8], ['dwpw', 8], ['pwpw', 8], ['pwpw', 1]] as const) {
  test(`${kind} FCM on ${hw}x${hw} + residual, Relu after: one dispatch, as unfolded`, async () => {
    const b = new GraphBuilder(`fcm_${kind}`, 42);
    const x = b.input('x', [1, 8, hw, hw]);
    const first = b.conv(x, kind === 'dwpw' ? { filters: 8, kernel: 3, group: 8, bias: true } : { filters: 16, kernel: 1, bias: true });
    const mid = b.relu6(first);
    const second = kind === 'pwdw' ? b.conv(mid, { filters: 16, kernel: 3, group: 16, bias: true }) : b.conv(mid, { filters: 8, kernel: 1, bias: true });
    const r = b.input('r', b.shape(second));
    const g = b.build([b.relu(b.add(second, r))]);
    const fused = applyPlan(g, planOf([{ kind, layers: [0, 1], nodes: [node(first), node(mid), node(second)], tiles, gma: 1, gmaUnfused: 2 }]));
    assert.equal(fused.nodes.filter((n) => n.op.startsWith('Fused')).length, 1);
    await same(fused, foldResidualActivations(fused), 1);
  });
}

test('Add -> Clip of two graph inputs: one dispatch, as unfolded', async () => {
  const b = new GraphBuilder('add', 43);
  const x = b.input('x', [2, 5, 7, 3]), z = b.input('z', [2, 5, 7, 3]);
  const g = b.build([b.relu6(b.add(x, z))]);
  await same(g, foldResidualActivations(g), 1);
});
