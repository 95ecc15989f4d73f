// The cost models' geometry and layer reading, checked against brute force and hand-derived values: the input
// indices a set of outputs reads, the tiling of one axis through a chain of layers, the tile sizes tried, layer
// reading from the DAG (padding from every field that can carry it, stride and padding derived from the shapes,
// bad layers rejected with the layer named), the time model's parts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DagLayer } from '../../src/planner/dag.js';
import type { HwConfig } from '../../src/planner/hw-config.js';
import { mulberry32 } from '../../fixtures/ir-builder.js';
import { FcmError } from '../../src/errors.js';
import {
  convSpec, costLayer, haloExtent, hasTimeModel, maxTilesPerAxis, readIndices, rooflineUs, tileAxis, tileMemoryLimit, tileSizes,
  type Axis, type CostContext,
} from '../../src/planner/cost.js';

type Rand = () => number;
const int = (r: Rand, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

/** Input indices in [0, a.in) that outputs `outs` read, by walking every kernel tap. */
function bruteReads(outs: Iterable<number>, a: Axis): number[] {
  const seen = new Set<number>();
  for (const o of outs) for (let j = 0; j < a.k; j++) {
    const i = o * a.s - a.p + j * a.d;
    if (i >= 0 && i < a.in) seen.add(i);
  }
  return [...seen].sort((x, y) => x - y);
}

function randomAxis(r: Rand, n: number): Axis | undefined {
  const k = int(r, 1, 4), s = int(r, 1, 4), d = int(r, 1, 3), p = int(r, 0, k + 1), p1 = int(r, 0, k + 1);
  const out = Math.floor((n + p + p1 - (k - 1) * d - 1) / s) + 1;
  return out >= 1 ? { in: n, out, k, s, d, p } : undefined;
}

test('readIndices equals the indices every kernel tap reads, for random geometries and output sets (gaps included)', () => {
  const r = mulberry32(3);
  let checked = 0;
  while (checked < 3000) {
    const a = randomAxis(r, int(r, 1, 14));
    if (!a) continue;
    const outs = [...Array(a.out).keys()].filter(() => r() < 0.5);
    assert.deepEqual(readIndices(outs, a), bruteReads(outs, a), `${JSON.stringify(a)} outputs ${outs}`);
    checked++;
  }
  assert.deepEqual(readIndices([], { in: 4, out: 4, k: 3, s: 1, d: 1, p: 1 }), []);
  // Outputs that read only padding read nothing.
  assert.deepEqual(readIndices([0], { in: 2, out: 4, k: 1, s: 1, d: 1, p: 1 }), []);
});

test('tileAxis equals a tile-by-tile count through chains of one and two layers, for every tile size', () => {
  const r = mulberry32(5);
  let checked = 0;
  while (checked < 1500) {
    const first = randomAxis(r, int(r, 1, 16));
    if (!first) continue;
    const second = r() < 0.5 ? randomAxis(r, first.out) : undefined;
    const axes = second ? [second, first] : [first];
    for (let t = 1; t <= axes[0].out + 1; t++) {
      const tiles = Math.ceil(axes[0].out / t);
      const sum = axes.map(() => 0), max = axes.map(() => 0);
      for (let i = 0; i < tiles; i++) {
        let set = [...Array(Math.min(t, axes[0].out - i * t)).keys()].map((x) => x + i * t);
        axes.forEach((a, level) => {
          set = bruteReads(set, a);
          sum[level] += set.length;
          max[level] = Math.max(max[level], set.length);
        });
      }
      assert.deepEqual(tileAxis(t, axes), { tiles, sum, max }, `t ${t}: ${JSON.stringify(axes)}`);
      checked++;
    }
  }
});

test('tileAxis depends on every field of every layer of the chain (no two chains share a result)', () => {
  // Written one after the other without a separator, these two chains' fields read alike: 1,1,1,1,1,1 + 11,... and
  // 1,1,1,1,1,11 + 1,...: each must still get its own count.
  const a: Axis[] = [{ in: 11, out: 11, k: 1, s: 1, d: 1, p: 0 }, { in: 1, out: 11, k: 1, s: 1, d: 1, p: 1 }];
  const b: Axis[] = [{ in: 1, out: 1, k: 1, s: 1, d: 1, p: 0 }, { in: 11, out: 1, k: 1, s: 1, d: 1, p: 0 }];
  const ta = tileAxis(4, a), tb = tileAxis(4, b);
  assert.deepEqual(ta, { tiles: 3, sum: [11, 1], max: [4, 1] });
  assert.deepEqual(tb, { tiles: 1, sum: [1, 1], max: [1, 1] });
});

test('tileSizes: powers of two below the dimension and the dimension, at most maxTilesPerAxis tiles each', () => {
  assert.deepEqual(tileSizes(1), [1]);
  assert.deepEqual(tileSizes(8), [1, 2, 4, 8]);
  assert.deepEqual(tileSizes(7), [1, 2, 4, 7]);
  assert.equal(maxTilesPerAxis, 4096);
  // 8192 in tiles of 2 gives exactly 4096 tiles: allowed; tiles of 1 would give 8192.
  assert.deepEqual(tileSizes(8192).slice(0, 2), [2, 4]);
  assert.deepEqual(tileSizes(10000).slice(0, 2), [4, 8]);
});

test('haloExtent: the depthwise receptive field of a tile, dilation and padding included', () => {
  assert.equal(haloExtent(4, { in: 20, out: 20, k: 3, s: 1, d: 2, p: 2 }), 8);
  assert.equal(haloExtent(2, { in: 9, out: 3, k: 3, s: 3, d: 3, p: 0 }), 10);
});

// ---------------------------------------------------------------------------------------------------------
// Reading layers

const layer = (l: Partial<DagLayer>): DagLayer => ({ id: 7, name: 'conv7', parents: [], children: [], activation: '0', ifms_shape: [], ofms_shape: [], ...l });
const dw = (hw: [number, number], out: [number, number], extra: Partial<DagLayer> = {}, k = 3) =>
  layer({ type: 'dw', weights_shape: [4, k, k], ifms_shape: [4, ...hw], ofms_shape: [4, ...out], ...extra });

const rejects = (l: DagLayer, what: RegExp) => assert.throws(() => convSpec(l, 'net.json'), (e: unknown) => {
  assert.ok(e instanceof FcmError, String(e));
  assert.equal(e.exitCode, 2);
  assert.match(e.message, /net\.json: layer 7 \('conv7'\)/);
  assert.match(e.message, what);
  return true;
});

test('convSpec rejects what is not a readable conv layer, naming the file and the layer', () => {
  rejects(layer({ type: undefined, op: 'Add' }), /is not a conv layer/);
  rejects(layer({ type: 'dw' }), /'dw' layer has no weights_shape/);
  rejects(layer({ type: 'pw', weights_shape: [4, 4], ifms_shape: [4, 8], ofms_shape: [4, 8, 8] }), /'ifms_shape' must be \[C, H, W\]/);
  rejects(layer({ type: 'pw', weights_shape: [4, 4], ofms_shape: [4, 8, 8], ifms_shape: undefined }), /'ifms_shape' must be \[C, H, W\]/);
  rejects(layer({ type: 'pw', weights_shape: [4, 4], ifms_shape: [4, 8, 8], ofms_shape: [4, 8, 8, 1] }), /'ofms_shape' must be \[C, H, W\]/);
  // Recorded pads that do not give the recorded output, on one axis only.
  rejects(dw([8, 8], [8, 8], { pads: [1, 0, 1, 0] }), /output \[8, 8\] does not follow from input \[8, 8\], kernel 3x3, stride 1, dilation 1, pads \[1, 0, 1, 0\]/);
  rejects(dw([8, 8], [8, 8], { pads: [0, 1, 0, 1] }), /does not follow/);
});

test('convSpec reads padding from pads, from TFLite padding_* fields, or derives it SAME-like', () => {
  const recorded = convSpec(dw([8, 8], [8, 8], { pads: [1, 1, 1, 1] }), 'x');
  assert.deepEqual([recorded.h.p, recorded.w.p, recorded.padsDerived], [1, 1, false]);
  // padding_* fields: each defaults to 0; the leading pad is what the axes keep.
  const tfl = convSpec(dw([8, 8], [6, 8], { padding_left: 1, padding_right: 1 }), 'x');
  assert.deepEqual([tfl.h.p, tfl.w.p, tfl.padsDerived], [0, 1, false]);
  const top = convSpec(dw([8, 8], [8, 6], { padding_top: 2 }), 'x');
  assert.deepEqual([top.h.p, top.w.p], [2, 0]);
  // pads of another length are no padding record: derived from the shapes.
  const odd = convSpec(dw([8, 8], [8, 8], { pads: [1, 1] }), 'x');
  assert.deepEqual([odd.h.p, odd.padsDerived], [1, true]);
  // Derived with dilation 2: a 3x3 kernel spans 5, so SAME needs 2 on each side.
  const dil = convSpec(dw([9, 9], [9, 9], { dilations: 2 }), 'x');
  assert.deepEqual([dil.h.p, dil.w.p, dil.h.d, dil.h.s], [2, 2, 2, 1]);
  // Recorded pads with dilation: 9 + 2 + 2 - 4 = 9 outputs.
  assert.equal(convSpec(dw([9, 9], [9, 9], { dilations: 2, pads: [2, 2, 2, 2] }), 'x').h.out, 9);
  // A VALID dilated conv needs no padding and keeps its stride 1: 9 - 4 = 5 outputs.
  const valid = convSpec(dw([9, 9], [5, 5], { dilations: 2 }), 'x');
  assert.deepEqual([valid.h.s, valid.h.p, valid.w.p], [1, 0, 0]);
  // The odd padding row goes at the end (SAME): 8 -> 4 with stride 2 and a 3x3 kernel pads 0 before, 1 after.
  const s2 = convSpec(dw([8, 8], [4, 4], { strides: 2 }), 'x');
  assert.deepEqual([s2.h.p, s2.h.s, s2.padsDerived], [0, 2, true]);
});

test('convSpec keeps a recorded stride that explains the shapes, and derives it only when none does', () => {
  // VALID stride 2: 8 -> 3 (stride 3 with SAME padding would give 3 as well; the recorded 2 stands).
  assert.equal(convSpec(dw([8, 8], [3, 3], { strides: 2 }), 'x').h.s, 2);
  // A 1x1 conv recorded with stride 1 from 5x5 to 1x1: the smallest SAME stride is 5.
  const pw = layer({ type: 'pw', weights_shape: [4, 4], ifms_shape: [4, 5, 5], ofms_shape: [4, 1, 1], strides: 1 });
  assert.equal(convSpec(pw, 'x').h.s, 5);
  // Non-square: 2x8 -> 1x2 needs stride 4 on both axes (stride 2 fits the height only).
  const wide = layer({ type: 'pw', weights_shape: [4, 4], ifms_shape: [4, 2, 8], ofms_shape: [4, 1, 2], strides: 1 });
  const ws = convSpec(wide, 'x');
  assert.deepEqual([ws.h.s, ws.w.s, ws.h.out, ws.w.out], [4, 4, 1, 2]);
});

test('convSpec: a folded Pad adds to the padding and the input is the unpadded size', () => {
  const s = convSpec(dw([10, 10], [4, 4], { strides: 2, pads: [0, 0, 0, 0] }), 'x', [1, 1, 0, 0], [9, 9]);
  assert.deepEqual([s.h.in, s.h.p, s.w.in, s.w.p], [9, 1, 9, 1]);
});

test('convSpec reads standard, grouped and fully-connected layers', () => {
  const g = convSpec(layer({ type: 's', weights_shape: [8, 2, 3, 5], ifms_shape: [4, 6, 6], ofms_shape: [8, 6, 6], pads: [1, 2, 1, 2] }), 'x');
  assert.deepEqual([g.c, g.f, g.cPerFilter, g.h.k, g.w.k, g.weights], [4, 8, 2, 3, 5, 240]);
  // FC [F, C] applied to the rows an ONNX DAG records as [C, H, W]: H * W rows, one column.
  const fc = convSpec(layer({ type: 'fc', weights_shape: [10, 64], ifms_shape: [64, 3, 2] }), 'x');
  assert.deepEqual([fc.c, fc.f, fc.cPerFilter, fc.h.in, fc.h.out, fc.w.in, fc.weights, fc.padsDerived], [64, 10, 64, 6, 6, 1, 640, false]);
  const one = convSpec(layer({ type: 'fc', weights_shape: [10, 64], ifms_shape: [1, 64] }), 'x');
  assert.deepEqual([one.h.in, one.w.in], [1, 1]);
  const none = convSpec(layer({ type: 'fc', weights_shape: [10, 64], ifms_shape: undefined }), 'x');
  assert.equal(none.h.in, 1);
});

// ---------------------------------------------------------------------------------------------------------
// Hardware limits and the time model

const base: HwConfig = { name: 't', sms: 4, l1BytesPerSm: 1024, shmemBytesPerSm: 512, warpSize: 32 };

test('hasTimeModel needs positive bandwidth and throughput and a dispatch overhead (0 allowed)', () => {
  const full = { ...base, dramGBps: 100, fp32Gflops: 1000, dispatchOverheadUs: 0 };
  assert.equal(hasTimeModel(full), true);
  assert.equal(hasTimeModel(base), false);
  assert.equal(hasTimeModel({ ...full, dramGBps: 0 }), false);
  assert.equal(hasTimeModel({ ...full, dramGBps: undefined }), false);
  assert.equal(hasTimeModel({ ...full, fp32Gflops: 0 }), false);
  assert.equal(hasTimeModel({ ...full, fp32Gflops: undefined }), false);
  assert.equal(hasTimeModel({ ...full, dispatchOverheadUs: undefined }), false);
});

test('tileMemoryLimit: the SM\'s shared memory, or WebGPU\'s workgroup storage when smaller', () => {
  assert.equal(tileMemoryLimit(base), 512);
  assert.equal(tileMemoryLimit({ ...base, workgroupStorageBytes: 256 }), 256);
  assert.equal(tileMemoryLimit({ ...base, workgroupStorageBytes: 4096 }), 512);
});

test('rooflineUs by hand: each FCM kind its own time factor, utilization below one workgroup per SM, batch', () => {
  const hw: HwConfig = { ...base, dramGBps: 2, fp32Gflops: 4, dispatchOverheadUs: 1, pwdwTimeFactor: 2, dwpwTimeFactor: 3, pwpwTimeFactor: 5 };
  const ctx: CostContext = { hw, dtypeBytes: 1, objective: 'time' };
  // 4000 elements of 1 byte at 2 GB/s = 2 us; 4000 flops at 4 GFLOP/s = 1 us: memory-bound, 2 us.
  assert.equal(rooflineUs(4000, 4000, 4, 1, ctx), 3);
  assert.equal(rooflineUs(4000, 4000, 4, 1, ctx, 'pw'), 3);
  assert.equal(rooflineUs(4000, 4000, 4, 1, ctx, 'pwdw'), 2 * 2 + 1);
  assert.equal(rooflineUs(4000, 4000, 4, 1, ctx, 'dwpw'), 3 * 2 + 1);
  assert.equal(rooflineUs(4000, 4000, 4, 1, ctx, 'pwpw'), 5 * 2 + 1);
  // Compute-bound: 16000 flops = 4 us; 1 workgroup on 4 SMs: a quarter of the GPU, 16 us; two dispatches.
  assert.equal(rooflineUs(4000, 16000, 1, 2, ctx), 16 + 2);
  // Batch 2: twice the bytes and flops, twice the workgroups, one dispatch overhead.
  assert.equal(rooflineUs(4000, 16000, 1, 1, { ...ctx, batch: 2 }), 8 / 0.5 + 1);
  // Without factors, FCMs keep the plain roofline.
  const plain: CostContext = { ...ctx, hw: { ...base, dramGBps: 2, fp32Gflops: 4, dispatchOverheadUs: 1 } };
  for (const kind of ['pwdw', 'dwpw', 'pwpw'] as const) assert.equal(rooflineUs(4000, 4000, 4, 1, plain, kind), 3);
  // The integer factor: on FCMs planned with 1-byte elements, on top of the kind's; not on layers, not on 2- or 4-byte.
  const i8: CostContext = { ...ctx, hw: { ...hw, int8TimeFactor: 1.5 } };
  assert.equal(rooflineUs(4000, 4000, 4, 1, i8, 'pwdw'), 1.5 * 2 * 2 + 1);
  assert.equal(rooflineUs(4000, 4000, 4, 1, i8, 'pw'), 3);
  assert.equal(rooflineUs(2000, 4000, 4, 1, { ...i8, dtypeBytes: 2 }, 'pwdw'), 2 * 2 + 1);
});

test('a layer no tile of which fits is an error naming the layer and the limit', () => {
  const l = convSpec(dw([8, 8], [8, 8], { pads: [1, 1, 1, 1] }), 'x');
  assert.throws(() => costLayer(l, { hw: { ...base, shmemBytesPerSm: 32 }, dtypeBytes: 4, objective: 'gma' }, 'net.json'),
    /^FcmError: net\.json: layer 7 \('conv7'\): no tile of this dw layer fits 32 bytes of shared memory$|net\.json: layer 7 \('conv7'\).*no tile of this dw layer fits 32 bytes of shared memory/);
});
