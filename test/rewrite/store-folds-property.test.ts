// Property test of the channels-last store and the resized residual (src/rewrite/channels-last-store.ts,
// resized-residual.ts) on random graphs: seeded stems over odd and even maps, then heads (a 1x1 conv, a pool, an
// element-wise op or a channel Slice, its output turned channels-last, sometimes read again so that the fold must
// refuse) and top-down steps (a coarser map
// resized to the finer one's size, nearest or linear under every coordinate_transformation_mode the kernel takes,
// by scales or by sizes, added to a 1x1 lateral conv), at batch 1 to 3. Each graph runs with both folds and without
// them: the channels-last store moves values only (bit for bit), the resized residual computes the same
// interpolation in another kernel (float32 rounding); the dispatches differ by the folds the graph says; and
// onnxruntime agrees within the fp32 tolerance (fp16 sessions, every third graph: the f16 tolerance).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { GraphBuilder, mulberry32 } from '../../fixtures/ir-builder.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import type { Graph } from '../../src/graph/ir.js';
import { createSession } from '../../src/pipeline/session.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { compareOutputs, seededInput } from '../../src/runtime/compare.js';
import { maxAbsDiff } from '../kernels/reference.js';

after(releaseGpu);

interface Drawn { g: Graph; heads: number; pyramids: number }

/** A random graph of `seed` and the folds it admits. */
function randomGraph(seed: number): Drawn {
  const rand = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
  const b = new GraphBuilder(`store_folds_${seed}`, seed);
  const batch = int(1, 3);
  let y = b.relu(b.conv(b.input('x', [batch, int(1, 4), int(5, 12), int(5, 12)]), { filters: int(2, 8), kernel: 3, bias: true }));
  const maps = [y];
  for (let i = int(1, 2); i > 0; i--) maps.push(y = b.relu(b.conv(y, { filters: int(2, 10), kernel: 3, stride: 2, bias: true })));
  const outputs: string[] = [];
  let heads = 0, pyramids = 0;
  for (let i = int(1, 3); i > 0; i--) {
    const m = pick(maps);
    const [mn, mc, mh, mw] = b.shape(m);
    // The head's last op: a 1x1 conv, or one of the flat-store kernels (kernels/registry.ts channelsLastFlat): a pool,
    // an element-wise op, a broadcast Mul, a channel Slice with step 2 (never a view, so always a dispatch).
    let c: string;
    switch (pick(['conv', 'conv', 'pool', 'unary', 'binary', 'slice'] as const)) {
      case 'conv': c = b.conv(m, { filters: int(1, 13), kernel: 1, bias: true }); break;
      case 'pool': {
        // A window within the map (a larger one is an invalid model), padded by less than its size.
        const k = int(1, Math.min(3, mh, mw)), s = int(1, 2), pad = k > 1 ? int(0, 1) : 0;
        const op = pick(['MaxPool', 'AveragePool']);
        const oh = Math.floor((mh + 2 * pad - k) / s) + 1, ow = Math.floor((mw + 2 * pad - k) / s) + 1;
        c = b.node(op, [m], [mn, mc, oh, ow], { kernel: [k, k], strides: [s, s], pads: [pad, pad, pad, pad], ...(op === 'MaxPool' ? { dilations: [1, 1] } : {}), ceilMode: 0 });
        break;
      }
      case 'unary': c = b.node(pick(['Sigmoid', 'Tanh', 'Neg', 'Abs']), [m], [mn, mc, mh, mw]); break;
      case 'binary': c = b.node('Mul', [m, b.random('scale', [1, mc, 1, 1], 1)], [mn, mc, mh, mw]); break;
      case 'slice': {
        const start = int(0, mc - 1);
        c = b.node('Slice', [m], [mn, Math.ceil((mc - start) / 2), mh, mw], { starts: [start], ends: [mc], axes: [1], steps: [2] });
        break;
      }
    }
    const [n, f, h, w] = b.shape(c);
    const t = b.node('Transpose', [c], [n, h, w, f], { perm: [0, 2, 3, 1] });
    outputs.push(rand() < 0.5 ? b.node('Reshape', [t], [n, h * w, f], { shape: [n, h * w, f] }) : t);
    // A second reader keeps the Transpose (the conv's NCHW output is needed as such).
    if (rand() < 0.25) outputs.push(b.relu(c));
    else heads++;
  }
  for (let i = int(1, 2); i > 0 && maps.length > 1; i--) {
    const k = int(0, maps.length - 2);
    const fine = maps[k], coarse = maps[int(k + 1, maps.length - 1)];
    const [n, cc] = b.shape(coarse), [, , H, W] = b.shape(fine);
    const mode = pick(['linear', 'nearest'] as const);
    const attrs: Record<string, string> = { mode, coordinate_transformation_mode: pick(['half_pixel', 'pytorch_half_pixel', 'asymmetric', 'align_corners', ...(mode === 'nearest' ? ['tf_half_pixel_for_nn'] : [])]) };
    if (mode === 'nearest') attrs.nearest_mode = pick(['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil']);
    // Sizes always give the fine map's size; scales only where it is the coarse one's times an integer.
    const [, , h, w] = b.shape(coarse);
    const byScales = H % h === 0 && W % w === 0 && rand() < 0.5;
    const r = byScales
      ? b.node('Resize', [coarse, '', b.constant('scales', [4], Float32Array.of(1, 1, H / h, W / w))], [n, cc, H, W], attrs)
      : b.node('Resize', [coarse, '', '', b.int64s('sizes', [n, cc, H, W])], [n, cc, H, W], attrs);
    outputs.push(b.add(b.conv(fine, { filters: cc, kernel: 1, bias: true }), r));
    pyramids++;
  }
  return { g: b.build(outputs), heads, pyramids };
}

async function reference(g: Graph, bytes: Uint8Array, feed: Float32Array) {
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, extra: { session: { intra_op: { allow_spinning: '0' } } } });
  const x = g.inputs[0];
  const r = await s.run({ [x]: new ort.Tensor('float32', feed, g.tensors.get(x)!.shape) });
  await s.release();
  return r;
}

async function run(g: Graph, feed: Float32Array, on: boolean, precision: 'fp32' | 'fp16') {
  const s = await createSession(g, { plan: 'unfused', precision, channelsLast: on, resizedResidual: on });
  try {
    const r = await s.run({ [g.inputs[0]]: feed });
    return { outs: g.outputs.map((y) => Float32Array.from(r[y].data)), dispatches: s.stats().dispatchesPerRun };
  } finally {
    s.dispose();
  }
}

test('random detection heads and pyramids (fp32, some fp16): the folds keep the values and agree with onnxruntime', async () => {
  let heads = 0, pyramids = 0;
  for (let seed = 1; seed <= 24; seed++) {
    const d = randomGraph(seed);
    const bytes = exportOnnx(d.g);
    const g = await loadModel(bytes, { source: `store_folds_${seed}.onnx` });
    const feed = seededInput(g.tensors.get(g.inputs[0])!.shape.reduce((a, b) => a * b, 1), seed);
    const ref = await reference(g, bytes, feed);
    for (const precision of seed % 3 ? ['fp32'] as const : ['fp32', 'fp16'] as const) {
      const on = await run(g, feed, true, precision), off = await run(g, feed, false, precision);
      const at = `seed ${seed} ${precision}`;
      assert.equal(on.dispatches, off.dispatches - d.heads - d.pyramids, `${at}: dispatches ${off.dispatches} -> ${on.dispatches} (${d.heads} heads, ${d.pyramids} pyramid steps)`);
      g.outputs.forEach((y, k) => {
        if (precision === 'fp32') {
          // The Adds of the pyramid steps read an interpolation computed in another kernel: float32 rounding of a
          // few terms, 1e-5 of the output's size; the heads' values are moved only.
          const { maxDiff, maxRef } = maxAbsDiff(on.outs[k], off.outs[k]);
          const isHead = (ref[y].dims as number[]).length === 3 || g.nodes.find((n) => n.outputs.includes(y))?.op === 'Transpose';
          assert.ok(isHead ? maxDiff === 0 : maxDiff <= 1e-5 * Math.max(1, maxRef), `${at} output ${y}: folded and unfolded differ by ${maxDiff}`);
        }
        for (const [what, r] of [['folded', on], ['unfolded', off]] as const) {
          const c = compareOutputs(r.outs[k], ref[y].data as Float32Array, ref[y].dims as number[], undefined, undefined, precision);
          assert.ok(c.ok, `${at} ${what} output ${y}: ${JSON.stringify(c)}`);
        }
      });
      if (precision === 'fp32') { heads += d.heads; pyramids += d.pyramids; }
    }
  }
  // The generator reaches both rules many times.
  assert.ok(heads >= 20 && pyramids >= 15, `heads ${heads}, pyramid steps ${pyramids}`);
});
