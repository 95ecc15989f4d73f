// The PointwiseMean fold (src/rewrite/pointwise-mean.ts) in sessions on lavapipe: a small MobileNet-style tail (stem,
// depthwise, projection, a pointwise head with its activation, the pool, the classifier) made with the fold (the
// default) and with FCM_OPT_FOLD_POOL=0, at batch 1 and 3, with GlobalAveragePool and with ReduceMean (keepdims 0).
// Dispatches: one fewer. Outputs: not bit for bit, since the kernel adds the head's products and positions in another
// order than the pointwise and pool kernels. Both sessions are held to compareOutputs' tolerance against onnxruntime
// (1e-4 of max(1, max |ref|), as every accuracy test), and to each other within 2 (C + P + K) 2^-24 of
// max(1, max |y|): each side's f32 rounding of the head's C-term dot products, P-term mean and the classifier's
// K-term sums is at most about (C + P + K) 2^-24 of the magnitudes summed, and the activations' slopes are at most 1
// (Clip) or 1.5 (HardSwish near 3, far above these pre-activations' range), which the factor 2 covers; a position or
// a channel dropped or counted twice moves the output by O(1/P) of it, over 100x the bound.
// f16 storage (kernels/f16.ts): the folded graph's f16 run against onnxruntime's fp32 under the f16 bounds.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import type { Graph } from '../../src/graph/ir.js';
import { createSession } from '../../src/pipeline/session.js';
import { rewrite } from '../../src/pipeline/pipeline.js';
import { foldChannelScales } from '../../src/rewrite/channel-scale.js';
import { compileGraph } from '../../src/runtime/compile.js';
import { Executor } from '../../src/runtime/executor.js';
import { type GpuContext, acquireGpu, releaseGpu } from '../../src/runtime/device.js';
import { fp16 } from '../../src/runtime/precision.js';
import { compareOutputs, seededInput } from '../../src/runtime/compare.js';

after(releaseGpu);

const C = 24, K = 96, HW = 5;

/** [N, 8, 9, 9] -> 3x3 s2 + relu6 -> dw 3x3 + relu6 -> pw 24 -> pw 96 + act (the head) -> pool -> [flatten] -> Gemm 10. */
function tail(N: number, pool: 'gap' | 'mean', act: 'relu6' | 'hswish'): Graph {
  const b = new GraphBuilder('pm_tail', 17 + N);
  let y = b.relu6(b.conv(b.input('x', [N, 8, 9, 9]), { filters: 16, kernel: 3, stride: 2, bias: true }));
  y = b.relu6(b.conv(y, { filters: 16, kernel: 3, group: 16, bias: true }));
  y = b.conv(y, { filters: C, kernel: 1, pad: 0, bias: true });
  y = b.conv(y, { filters: K, kernel: 1, pad: 0, bias: true });
  y = act === 'relu6' ? b.relu6(y) : b.node('HardSwish', [y], b.shape(y));
  const p = pool === 'gap' ? b.flatten(b.globalAveragePool(y)) : b.node('ReduceMean', [y], [N, K], { axes: [2, 3], keepdims: 0 });
  return b.build([b.gemm(p, 10)]);
}

async function reference(g: Graph, x: Float32Array): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(exportOnnx(g), { intraOpNumThreads: 1, interOpNumThreads: 1, extra: { session: { intra_op: { allow_spinning: '0' } } } });
  const r = await s.run({ [g.inputs[0]]: new ort.Tensor('float32', x, g.tensors.get(g.inputs[0])!.shape) });
  await s.release();
  return r[g.outputs[0]].data as Float32Array;
}

/** A session of `m` (unfused plan) with the fold on or off through the environment switch; its output and counts. */
async function runSession(m: Graph, x: Float32Array, fold: boolean) {
  const before = process.env.FCM_OPT_FOLD_POOL;
  if (fold) delete process.env.FCM_OPT_FOLD_POOL; else process.env.FCM_OPT_FOLD_POOL = '0';
  let s;
  try {
    s = await createSession(m, { plan: 'unfused' });
  } finally {
    if (before === undefined) delete process.env.FCM_OPT_FOLD_POOL; else process.env.FCM_OPT_FOLD_POOL = before;
  }
  try {
    const r = await s.run({ [m.inputs[0]]: x });
    return { y: Float32Array.from(r[m.outputs[0]].data as ArrayLike<number>), dispatches: s.stats().dispatchesPerRun, folded: s.graph.nodes.filter((n) => n.op === 'PointwiseMean').length };
  } finally {
    s.dispose();
  }
}

for (const [N, pool, act] of [[1, 'gap', 'relu6'], [3, 'mean', 'hswish']] as const) {
  test(`session: batch ${N}, ${pool === 'gap' ? 'GlobalAveragePool' : 'ReduceMean keepdims 0'}, ${act} head: folded as unfolded within rounding, one dispatch fewer`, async () => {
    const m = await loadModel(exportOnnx(tail(N, pool, act)), { source: 'pm_tail.onnx' });
    const x = seededInput(N * 8 * 81, 29);
    const ref = await reference(m, x);
    const on = await runSession(m, x, true), off = await runSession(m, x, false);
    assert.equal(on.folded, 1);
    assert.equal(off.folded, 0);
    assert.equal(on.dispatches, off.dispatches - 1, `dispatches ${off.dispatches} -> ${on.dispatches}`);
    for (const [what, r] of [['folded', on], ['unfolded', off]] as const) {
      const c = compareOutputs(r.y, ref, [N, 10]);
      assert.ok(c.ok && c.maxAbsError <= c.tolerance, `${what}: max abs ${c.maxAbsError} > ${c.tolerance}`);
    }
    let maxY = 1, diff = 0;
    for (let i = 0; i < off.y.length; i++) { maxY = Math.max(maxY, Math.abs(off.y[i])); diff = Math.max(diff, Math.abs(on.y[i] - off.y[i])); }
    const tol = 2 * (C + HW * HW + K) * 2 ** -24 * maxY;
    assert.ok(diff <= tol, `folded - unfolded: ${diff} > ${tol}`);
    assert.ok(ref.some((v) => v !== 0));
  });
}

const limitsOf = (ctx: GpuContext) => ({ ...ctx.kernelLimits, maxStorageBufferBindingSize: ctx.limits.maxStorageBufferBindingSize, maxBufferSize: ctx.limits.maxBufferSize });

test('f16 storage: the folded graph (PointwiseMean in f16) runs as onnxruntime within the f16 bounds', async (t) => {
  const ctx = await acquireGpu();
  if (!ctx.shaderF16) { t.skip('no shader-f16 on this adapter'); return; }
  const m = await loadModel(exportOnnx(tail(3, 'gap', 'hswish')), { source: 'pm_tail.onnx' });
  const g = foldChannelScales(rewrite(m, 'fp16', 'unfused', { foldPool: true }));
  assert.equal(g.nodes.filter((n) => n.op === 'PointwiseMean').length, 1);
  const x = seededInput(3 * 8 * 81, 31);
  const s = await Executor.create(ctx, compileGraph(g, limitsOf(ctx), 'f16'), fp16);
  try {
    const y = (await s.run({ [g.inputs[0]]: x }))[g.outputs[0]];
    const c = compareOutputs(Float32Array.from(y.data as ArrayLike<number>), await reference(m, x), [3, 10], undefined, undefined, 'fp16');
    assert.ok(c.ok, `f16: max abs ${c.maxAbsError} > ${c.tolerance}`);
  } finally {
    s.dispose();
  }
});

test('SessionOptions.foldPool decides over the environment switch', async () => {
  const m = await loadModel(exportOnnx(tail(1, 'gap', 'relu6')), { source: 'pm_tail.onnx' });
  const before = process.env.FCM_OPT_FOLD_POOL;
  try {
    for (const [env, option, folded] of [['0', true, 1], [undefined, false, 0]] as const) {
      if (env === undefined) delete process.env.FCM_OPT_FOLD_POOL; else process.env.FCM_OPT_FOLD_POOL = env;
      const s = await createSession(m, { plan: 'unfused', foldPool: option });
      try {
        assert.equal(s.graph.nodes.filter((n) => n.op === 'PointwiseMean').length, folded, `env ${env}, foldPool ${option}`);
      } finally {
        s.dispose();
      }
    }
  } finally {
    if (before === undefined) delete process.env.FCM_OPT_FOLD_POOL; else process.env.FCM_OPT_FOLD_POOL = before;
  }
});
