// Property test of the views (src/runtime/views.ts) on random graphs: seeded chains of convolutions, Concats (of
// computed tensors, the graph input, constants, one tensor twice), channel Pads and channel Slices (some with steps),
// at batch 1 where blocks are contiguous, with intermediate tensors as extra graph outputs. The views change no value,
// so a session runs each graph with and without them (FCM_OPT_VIEWS=0) and the outputs must be equal bit for bit, over
// two runs with different inputs; the dispatches with views are the ones without minus the copies they replaced; and
// onnxruntime agrees within the fp32 tolerance (fp16 sessions, every fourth graph: the f16 tolerance).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { GraphBuilder, mulberry32 } from '../../fixtures/ir-builder.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import type { Graph } from '../../src/graph/ir.js';
import { createSession } from '../../src/pipeline/session.js';
import { executorOf } from '../../src/runtime/executor.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { compareOutputs, seededInput } from '../../src/runtime/compare.js';

after(releaseGpu);

/** A random graph of `seed`: 5 to 9 layers over [1, C, 5, 5] tensors (5x5 maps: blocks of 25 floats, often unaligned). */
function randomGraph(seed: number): Graph {
  const rand = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
  const b = new GraphBuilder(`views_${seed}`, seed);
  const hw = 5;
  const x = b.input('x', [1, int(2, 8), hw, hw]);
  const live: string[] = [x];
  const ch = (t: string) => b.shape(t)[1];
  const outputs: string[] = [];
  const layers = int(5, 9);
  for (let i = 0; i < layers; i++) {
    const t = pick(live);
    let y: string;
    switch (pick(['conv', 'conv', 'concat', 'concat', 'pad', 'slice'] as const)) {
      case 'conv':
        y = b.conv(t, { filters: int(1, 12), kernel: pick([1, 3]), bias: true });
        break;
      case 'concat': {
        const parts = Array.from({ length: int(2, 3) }, () => pick(live));
        if (rand() < 0.3) parts.splice(int(0, parts.length), 0, b.random('k', [1, int(1, 4), hw, hw], 1));
        y = b.node('Concat', parts, [1, parts.reduce((a, p) => a + ch(p), 0), hw, hw], { axis: 1 });
        break;
      }
      case 'pad': {
        const pre = int(0, 3), post = int(rand() < 0.3 ? 0 : 1, 3);
        y = b.node('Pad', [t], [1, ch(t) + pre + post, hw, hw], { mode: 'constant', pads: [0, pre, 0, 0, 0, post, 0, 0], value: pick([0, 0.5, -1]) });
        break;
      }
      case 'slice': {
        const c = ch(t);
        const start = int(0, c - 1), end = int(start + 1, c), step = rand() < 0.2 ? 2 : 1;
        y = b.node('Slice', [t], [1, Math.ceil((end - start) / step), hw, hw], { starts: [start], ends: [end], axes: [1], steps: [step] });
        break;
      }
    }
    live.push(y);
    if (rand() < 0.2) outputs.push(y);
  }
  // The last tensor through a conv, so that a view's block is read by a layer as well as copied out.
  outputs.push(b.conv(live[live.length - 1], { filters: 3, kernel: 1, bias: true }));
  return b.build([...new Set(outputs)]);
}

async function reference(g: Graph, bytes: Uint8Array, feed: Float32Array) {
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, extra: { session: { intra_op: { allow_spinning: '0' } } } });
  const x = g.inputs[0];
  const r = await s.run({ [x]: new ort.Tensor('float32', feed, g.tensors.get(x)!.shape) });
  await s.release();
  return r;
}

async function runBoth(g: Graph, feeds: Float32Array[], views: boolean, precision: 'fp32' | 'fp16') {
  const before = process.env.FCM_OPT_VIEWS;
  if (!views) process.env.FCM_OPT_VIEWS = '0';
  try {
    const s = await createSession(g, { plan: 'unfused', precision });
    try {
      const outs = [];
      for (const f of feeds) {
        const r = await s.run({ [g.inputs[0]]: f });
        outs.push(g.outputs.map((y) => Float32Array.from(r[y].data)));
      }
      const c = executorOf(s).compiled;
      return { outs, dispatches: s.stats().dispatchesPerRun, dropped: c.copiesDropped ?? 0, views: c.views?.size ?? 0, blocks: c.constantBlocks?.length ?? 0 };
    } finally {
      s.dispose();
    }
  } finally {
    if (before === undefined) delete process.env.FCM_OPT_VIEWS;
    else process.env.FCM_OPT_VIEWS = before;
  }
}

test('random Concat / Pad / Slice graphs (fp32, some fp16): views change no value, replace only copies, and agree with onnxruntime', async () => {
  let views = 0, blocks = 0, dropped = 0;
  for (let seed = 1; seed <= 40; seed++) {
    const bytes = exportOnnx(randomGraph(seed));
    const g = await loadModel(bytes, { source: `views_${seed}.onnx` });
    const n = g.tensors.get(g.inputs[0])!.shape.reduce((a, b) => a * b, 1);
    const feeds = [seededInput(n, seed), seededInput(n, seed + 1000)];
    const ref = await reference(g, bytes, feeds[1]);
    // fp16 every fourth seed: the f16 storage's block sizes (2 bytes an element) under the same rules.
    for (const precision of seed % 4 ? ['fp32'] as const : ['fp32', 'fp16'] as const) {
      const on = await runBoth(g, feeds, true, precision), off = await runBoth(g, feeds, false, precision);
      const at = `seed ${seed} ${precision}`;
      assert.equal(off.dropped, 0);
      assert.equal(on.dispatches, off.dispatches - on.dropped, `${at}: dispatches`);
      on.outs.forEach((run, r) => run.forEach((y, k) => {
        const z = off.outs[r][k];
        let diff = 0;
        for (let i = 0; i < y.length; i++) if (!Object.is(y[i], z[i])) diff++;
        assert.equal(diff, 0, `${at}, run ${r}, output ${g.outputs[k]}: ${diff} of ${y.length} values differ with views`);
      }));
      g.outputs.forEach((y, k) => {
        const c = compareOutputs(on.outs[1][k], ref[y].data as Float32Array, ref[y].dims as number[], undefined, undefined, precision);
        assert.ok(c.ok, `${at} output ${y}: ${JSON.stringify(c)}`);
      });
      views += on.views;
      blocks += on.blocks;
      dropped += on.dropped;
    }
  }
  // The generator reaches the rules: many views, constant blocks and copies replaced over the seeds.
  assert.ok(views >= 20 && blocks >= 5 && dropped >= 20, `views ${views}, constant blocks ${blocks}, copies replaced ${dropped}`);
});
