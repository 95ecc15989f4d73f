import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DagLayer } from '../../src/planner/dag.js';
import type { HwConfig } from '../../src/planner/hw-config.js';
import { FcmError } from '../../src/errors.js';
import { loadHw } from '../../src/planner/hw.js';
import {
  convSpec, costFcm, costLayer, gmaOf, haloExtent, readIndices, rooflineUs, tileAxis, type Axis, type CostContext,
} from '../../src/planner/cost.js';

const hw: HwConfig = { name: 'test', sms: 4, l1BytesPerSm: 96 * 1024, shmemBytesPerSm: 64 * 1024, warpSize: 32 };
const ctx: CostContext = { hw, dtypeBytes: 4, objective: 'gma' };
const layer = (l: Partial<DagLayer>): DagLayer => ({ id: 0, name: 'l', parents: [], children: [], activation: '0', ifms_shape: [], ofms_shape: [], ...l });
const pwL = (c: number, f: number, hw: number, id = 0) => layer({ id, type: 'pw', weights_shape: [f, c], ifms_shape: [c, hw, hw], ofms_shape: [f, hw, hw], strides: 1 });
const dwL = (c: number, hw: number, s = 1, id = 1, pads?: number[]) =>
  layer({ id, type: 'dw', weights_shape: [c, 3, 3], ifms_shape: [c, hw, hw], ofms_shape: [c, Math.ceil(hw / s), Math.ceil(hw / s)], strides: s, ...(pads ? { pads } : {}) });

test('readIndices: a 3x3 stride-2 window with padding 1 reads the halo, clipped at the border', () => {
  const a: Axis = { in: 8, out: 4, k: 3, s: 2, d: 1, p: 1 };
  assert.deepEqual(readIndices([0, 1], a), [0, 1, 2, 3]);
  assert.deepEqual(readIndices([3], a), [5, 6, 7]);
  // Dilation 2 skips rows.
  assert.deepEqual(readIndices([2], { in: 10, out: 10, k: 3, s: 1, d: 2, p: 2 }), [0, 2, 4]);
  // A strided 1x1 conv reads every other row only.
  assert.deepEqual(readIndices([0, 1, 2], { in: 6, out: 3, k: 1, s: 2, d: 1, p: 0 }), [0, 2, 4]);
});

test('tileAxis: whole tile counts (ceil) and the halo summed over tiles', () => {
  // 7 outputs in tiles of 2: 4 tiles (the FusePlanner reference would count 3.5).
  const a: Axis = { in: 7, out: 7, k: 3, s: 1, d: 1, p: 1 };
  const t = tileAxis(2, [a]);
  assert.equal(t.tiles, 4);
  // Tiles [0,1] [2,3] [4,5] [6] read rows 0-2, 1-4, 3-6, 5-6: 3 + 4 + 4 + 2.
  assert.equal(t.sum[0], 13);
  assert.equal(t.max[0], 4);
});

test('LBL DW GMA by hand: input with halos, output, weights per (channel, tile)', () => {
  const s = convSpec(dwL(2, 4), 'x');
  assert.deepEqual([s.h.p, s.w.p, s.padsDerived], [1, 1, true]);
  // Tile 2x2: rows read per tile 3 + 3 = 6, likewise columns: 2 * 6 * 6 input, 2 * 16 output, 2 * 9 * 4 weights.
  assert.equal(gmaOf('dw', [s], 1, 2, 2).gma, 72 + 32 + 72);
});

test('LBL PW GMA equals the FusePlanner reference pw_gma when tiles divide the layer evenly', () => {
  const s = convSpec(pwL(8, 16, 8), 'x');
  // pw_gma: weight tiles * ifms + ofms + weights * spatial tiles = 4 * 512 + 1024 + 128 * 8.
  assert.equal(gmaOf('pw', [s], 4, 2, 4).gma, 4 * 512 + 1024 + 128 * 8);
});

test('each layer its own stride and padding: the DW stride is the DW layer\'s, recorded pads are used', () => {
  const pw = convSpec(pwL(4, 8, 8), 'x');
  const dw2 = convSpec(dwL(8, 8, 2, 1, [0, 0, 1, 1]), 'x');
  assert.deepEqual([dw2.h.s, dw2.h.p, dw2.h.out], [2, 0, 4]);
  const r = gmaOf('pwdw', [pw, dw2], 8, 4, 4);
  // One tile of 4x4 outputs reads mid rows 0..7 (k3 s2, no leading pad), all 8 rows and columns of the input.
  assert.equal(r.gma, 1 * 4 * 64 + 8 * 16 + (32 + 72) * 1);
  // Inconsistent recorded pads are an error naming the layer.
  assert.throws(() => convSpec(dwL(8, 8, 2, 1, [3, 3, 3, 3]), 'model.json'), (e: unknown) => e instanceof FcmError && /layer 1/.test(e.message));
});

test('FusePlanner reference DAGs record stride 1 for some strided 1x1 convs: the stride follows from the shapes', () => {
  const l = layer({ type: 'pw', weights_shape: [16, 8], ifms_shape: [8, 109, 109], ofms_shape: [16, 55, 55], strides: 1 });
  const s = convSpec(l, 'x');
  assert.equal(s.h.s, 2);
});

test('PW-DW recomputes the halo (redundant flops), DW-PW recomputes the DW per filter tile', () => {
  const pw = convSpec(pwL(4, 8, 8), 'x');
  const dw = convSpec(dwL(8, 8), 'x');
  const a = gmaOf('pwdw', [pw, dw], 8, 2, 2);
  // 4 tiles per axis of 2 rows read 3+4+4+3 = 14 mid rows instead of 8.
  assert.equal(a.redundantFlops, 2 * 4 * 8 * (14 * 14 - 64));
  const one = gmaOf('pwdw', [pw, dw], 8, 8, 8);
  assert.equal(one.redundantFlops, 0);
  const dw1 = convSpec(dwL(8, 8, 1, 0), 'x');
  const pw2 = convSpec(pwL(8, 16, 8, 1), 'x');
  const b = gmaOf('dwpw', [dw1, pw2], 4, 8, 8);
  // 4 filter tiles: the DW runs 4 times.
  assert.equal(b.redundantFlops, 3 * 2 * 8 * 9 * 64);
  assert.equal(b.workgroups, 4);
});

test('tile search: tiles fit min(shared memory, workgroup storage) in bytes; nothing fits is an error', () => {
  const l = convSpec(pwL(256, 64, 16), 'x');
  const big = costLayer(l, ctx, 'x');
  const small = costLayer(l, { ...ctx, hw: { ...hw, workgroupStorageBytes: 2048 } }, 'x');
  // 2 KiB = 512 fp32 elements: a depth step of 256 channels no longer fits with the weights.
  const mem = (t: typeof small.tiles) => (t.d! * t.h! * t.w! + t.l1Filters! * t.d!) * 4;
  assert.ok(mem(small.tiles) <= 2048, JSON.stringify(small.tiles));
  assert.ok(small.gma >= big.gma);
  // int8 fits four times as much.
  const int8 = costLayer(l, { ...ctx, dtypeBytes: 1, hw: { ...hw, workgroupStorageBytes: 2048 } }, 'x');
  assert.ok(int8.tiles.d! * int8.tiles.h! * int8.tiles.w! + int8.tiles.l1Filters! * int8.tiles.d! <= 2048);
  assert.ok(int8.gma <= small.gma);
  assert.throws(() => costLayer(convSpec(dwL(8, 8), 'x'), { ...ctx, hw: { ...hw, workgroupStorageBytes: 16 } }, 'm.json'), FcmError);
});

test('time objective: roofline per module plus the dispatch overhead, FCMs cost one dispatch', () => {
  const thw: HwConfig = { ...hw, dramGBps: 100, fp32Gflops: 1000, dispatchOverheadUs: 5 };
  const tctx: CostContext = { hw: thw, dtypeBytes: 4, objective: 'time' };
  const pw = convSpec(pwL(32, 64, 16), 'x');
  const dw = convSpec(dwL(64, 16, 1, 1), 'x');
  const a = costLayer(pw, tctx, 'x');
  assert.equal(a.timeUs, rooflineUs(a.gma, a.flops, a.workgroups, 1, tctx));
  // bytes / (GB/s * 1e3) us: memory-bound here.
  assert.ok(Math.abs(rooflineUs(1000, 0, 4, 1, tctx) - (4000 / 1e5 + 5)) < 1e-12);
  // Fewer workgroups than SMs: the GPU is not full.
  assert.ok(Math.abs(rooflineUs(1000, 0, 2, 1, tctx) - (2 * 4000 / 1e5 + 5)) < 1e-12);
  const f = costFcm('pwdw', pw, dw, tctx)!;
  assert.equal(f.dispatches, 1);
  assert.ok(f.timeUs! < a.timeUs! + costLayer(dw, tctx, 'x').timeUs!);
  // An FCM kind's time factor scales its roofline term, not the dispatch; layers and other kinds keep theirs.
  const slow: CostContext = { ...tctx, hw: { ...thw, pwdwTimeFactor: 3 } };
  assert.ok(Math.abs(rooflineUs(1000, 0, 4, 1, slow, 'pwdw') - (3 * 4000 / 1e5 + 5)) < 1e-12);
  assert.ok(Math.abs(rooflineUs(1000, 0, 4, 1, slow, 'dwpw') - (4000 / 1e5 + 5)) < 1e-12);
  assert.ok(Math.abs(rooflineUs(1000, 0, 4, 1, slow, 'pw') - (4000 / 1e5 + 5)) < 1e-12);
  // parallelOutputs: below it the throughput term scales by sqrt(outputs / parallelOutputs); at or above it, no change.
  const par: CostContext = { ...tctx, hw: { ...thw, parallelOutputs: 400 } };
  assert.ok(Math.abs(rooflineUs(0, 1e6, 4, 1, par, 'pw', 100) - (1e6 / 1e6 / 0.5 + 5)) < 1e-9);
  assert.ok(Math.abs(rooflineUs(0, 1e6, 4, 1, par, 'pw', 400) - (1e6 / 1e6 + 5)) < 1e-9);
  assert.ok(Math.abs(rooflineUs(0, 1e6, 4, 1, { ...par, batch: 4 }, 'pw', 100) - (4 * 1e6 / 1e6 + 5)) < 1e-9, 'batch 4 x 100 outputs saturate');
  // FCMs keep the plain throughput: their parallelism is the tiles' halo, not the last layer's outputs.
  for (const kind of ['pwdw', 'dwpw', 'pwpw'] as const) assert.ok(Math.abs(rooflineUs(0, 1e6, 4, 1, par, kind, 100) - (1e6 / 1e6 + 5)) < 1e-9, kind);
  assert.equal(costLayer(pw, tctx, 'x').outputs, 64 * 16 * 16);
  const fs = costFcm('pwdw', pw, dw, slow)!;
  assert.ok(Math.abs(fs.timeUs! - (3 * (f.timeUs! - 5) + 5)) < 1e-9, `${fs.timeUs} vs ${f.timeUs}`);
});

test('standard and FC layers get an estimate so totals cover the conv part', () => {
  const s = convSpec(layer({ type: 's', weights_shape: [16, 3, 3, 3], ifms_shape: [3, 32, 32], ofms_shape: [16, 16, 16], strides: 2 }), 'x');
  const c = costLayer(s, ctx, 'x');
  assert.ok(c.gma >= 3 * 32 * 32 + 16 * 16 * 16 + 16 * 27);
  const fc = convSpec(layer({ type: 'fc', weights_shape: [10, 64] }), 'x');
  const f = costLayer(fc, ctx, 'x');
  assert.ok(f.gma >= 640 + 64 + 10);
});

// The executor's PW-DW kernel allocates the depthwise receptive field of its tile, padding included, and halves
// tiles above 512 of those positions (kernels/fused-pwdw.ts): with pwdwMaxHalo the planner searches below it, so
// a full-width 28x28 tile (30 columns with the padding, though only 28 are read) counts 30, not 28.
test('pwdwMaxHalo: PW-DW tiles are searched within the kernel\'s halo, counted with its padding', () => {
  assert.equal(haloExtent(16, { in: 28, out: 28, k: 3, s: 1, d: 1, p: 1 }), 18);
  assert.equal(haloExtent(64, { in: 28, out: 28, k: 3, s: 1, d: 1, p: 1 }), 30);
  assert.equal(haloExtent(8, { in: 112, out: 56, k: 3, s: 2, d: 1, p: 1 }), 17);
  const pw = convSpec(pwL(32, 192, 28), 'x');
  const dw = convSpec(dwL(192, 28), 'x');
  const h100 = loadHw('h100');
  const halo = (t: { h?: number; w?: number }) => haloExtent(t.h!, dw.h) * haloExtent(t.w!, dw.w);
  const at = (hw: HwConfig) => costFcm('pwdw', pw, dw, { hw, dtypeBytes: 4, objective: 'time', batch: 8 })!;
  const free = at({ ...h100, pwdwMaxHalo: undefined });
  assert.ok(halo(free.tiles) > 512, `without the limit the search takes a large tile (${JSON.stringify(free.tiles)})`);
  const capped = at(h100);
  assert.equal(h100.pwdwMaxHalo, 512);
  assert.ok(halo(capped.tiles) <= 512, JSON.stringify(capped.tiles));
  assert.ok(capped.timeUs! >= free.timeUs!, 'a constrained search finds no faster tile');
  // 16 x 28 reads 17 x 28 = 476 rows and columns of x but allocates 18 x 30 = 540: not a candidate.
  assert.ok(!(capped.tiles.h === 16 && capped.tiles.w! >= 28));
});
