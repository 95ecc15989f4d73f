// A brute-force oracle for the cost models' tile search, sharing no code with cost.ts. For seeded random tiny
// layers and modules (every kind; strides, dilation, asymmetric padding, non-square maps, grouped convolutions)
// and seeded random GPU descriptions (few or many SMs, tiny shared memory and L1, WebGPU workgroup storage, fp32 or
// int8, the GMA and the time objective), it walks every tile choice's loop nest element by element: what each
// workgroup reads and writes in global memory (GMA), the multiply-adds it performs (flops), and what it holds on
// chip (the tile memory the shared-memory limit applies to). Then it applies the search's contract (cost.ts
// `search`): tiles are powers of two below each dimension and the dimension itself; a tile is kept with the largest
// depth step (all input channels, or a power of two below) whose tile memory fits min(shared memory, workgroup
// storage) and, with the output tile, max(L1, that); the GMA objective takes the lowest GMA among tiles with at
// least one workgroup per SM (then the most workgroups), or the most workgroups when none has that many (then the
// lowest GMA); the time objective takes the lowest roofline time (then GMA, then the most workgroups).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DagLayer } from '../../src/planner/dag.js';
import type { HwConfig } from '../../src/planner/hw-config.js';
import { mulberry32 } from '../../fixtures/ir-builder.js';
import { FcmError } from '../../src/errors.js';
import { convSpec, costFcm, costLayer, type CostContext, type ModuleCost } from '../../src/planner/cost.js';

type Kind = 'dw' | 'pw' | 's' | 'pwdw' | 'dwpw' | 'pwpw';

/** One layer of the oracle: channels, filters, groups and its geometry per axis. */
interface L {
  type: 'dw' | 'pw' | 's';
  c: number;
  f: number;
  groups: number;
  kh: number;
  kw: number;
  s: number;
  d: number;
  pads: [number, number, number, number];
  inH: number;
  inW: number;
  outH: number;
  outW: number;
}

const outSize = (n: number, k: number, s: number, d: number, p0: number, p1: number) => Math.floor((n + p0 + p1 - (k - 1) * d - 1) / s) + 1;

/** The input positions (y * inW + x) layer `l` reads to compute the output positions `outs`. */
function reads(l: L, outs: Iterable<number>, outW: number): Set<number> {
  const seen = new Set<number>();
  for (const o of outs) {
    const r = Math.floor(o / outW), c = o % outW;
    for (let i = 0; i < l.kh; i++) {
      for (let j = 0; j < l.kw; j++) {
        const y = r * l.s - l.pads[0] + i * l.d, x = c * l.s - l.pads[1] + j * l.d;
        if (y >= 0 && y < l.inH && x >= 0 && x < l.inW) seen.add(y * l.inW + x);
      }
    }
  }
  return seen;
}

/** What one tile choice costs, counted over its loop nest. */
interface Walk { gma: number; flops: number; workgroups: number; mem: (d: number) => number; depth: number; outTile: number }

const range = (a: number, b: number) => Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);

function walk(kind: Kind, layers: L[], tf: number, th: number, tw: number): Walk {
  const last = layers[layers.length - 1];
  const filters = kind === 'dw' ? 1 : kind === 'pwdw' ? last.c : last.f;
  let gma = 0, flops = 0, workgroups = 0, max0 = 0, max1 = 0;
  for (let f0 = 0; f0 < filters; f0 += tf) {
    const nf = Math.min(tf, filters - f0);
    for (let r0 = 0; r0 < last.outH; r0 += th) {
      for (let c0 = 0; c0 < last.outW; c0 += tw) {
        const tile: number[] = [];
        for (const r of range(r0, Math.min(r0 + th, last.outH))) for (const c of range(c0, Math.min(c0 + tw, last.outW))) tile.push(r * last.outW + c);
        const lvl0 = reads(last, tile, last.outW); // the last layer's input positions
        const lvl1 = layers.length === 2 ? reads(layers[0], lvl0, layers[0].outW) : new Set<number>();
        max0 = Math.max(max0, lvl0.size);
        max1 = Math.max(max1, lvl1.size);
        const kk = last.kh * last.kw;
        workgroups += kind === 'dw' ? last.c : 1;
        if (kind === 'dw') {
          // One channel per workgroup: its input halo, its k x k weights, its outputs, for every channel.
          gma += last.c * (lvl0.size + kk + tile.length);
          flops += last.c * 2 * kk * tile.length;
        } else if (kind === 'pw' || kind === 's') {
          // The channels of the groups these nf filters belong to, over the input halo; their weights; their outputs.
          const fpg = last.f / last.groups, cpg = last.c / last.groups;
          const groups = new Set(range(f0, f0 + nf).map((f) => Math.floor(f / fpg)));
          gma += groups.size * cpg * lvl0.size + nf * cpg * kk + nf * tile.length;
          flops += 2 * nf * cpg * kk * tile.length;
        } else if (kind === 'pwdw') {
          // PW input (all C channels) over the halo of the DW tile's halo; PW and DW weights of nf channels; outputs.
          const [pw, dw] = layers;
          const dkk = dw.kh * dw.kw;
          gma += pw.c * lvl1.size + nf * pw.c + nf * dkk + nf * tile.length;
          flops += 2 * pw.c * nf * lvl0.size + 2 * dkk * nf * tile.length;
        } else if (kind === 'dwpw') {
          // DW input and weights of all C channels (again for every filter tile), PW weights of nf filters, outputs.
          const [dw, pw] = layers;
          const dkk = dw.kh * dw.kw;
          gma += dw.c * lvl1.size + dw.c * dkk + nf * pw.c + nf * tile.length;
          flops += 2 * dkk * dw.c * lvl0.size + 2 * pw.c * nf * tile.length;
        } else {
          // PW-PW: the first PW's input and all its weights (again for every filter tile), nf filters of the second.
          const [p1, p2] = layers;
          gma += p1.c * lvl1.size + p1.f * p1.c + nf * p2.c + nf * tile.length;
          flops += 2 * p1.c * p1.f * lvl0.size + 2 * p2.c * nf * tile.length;
        }
      }
    }
  }
  // On chip, per depth step d (input channels loaded at a time), as the kernels hold them.
  const kk = last.kh * last.kw;
  let mem: (d: number) => number;
  let depth: number;
  if (kind === 'dw') {
    mem = () => max0 + kk; // one channel's input halo and its weights
    depth = 1;
  } else if (kind === 'pw' || kind === 's') {
    const fpg = last.f / last.groups, cpg = last.c / last.groups;
    depth = Math.min(last.c, Math.ceil(tf / fpg) * cpg);
    mem = (d) => max0 * d + tf * kk * Math.min(d, cpg); // d input channels of the halo, the tf filters' weights for them
  } else if (kind === 'pwdw') {
    const [pw, dw] = layers;
    const dkk = dw.kh * dw.kw;
    depth = pw.c;
    mem = (d) => tf * max0 + tf * dkk + d * (max1 + tf); // intermediate halo and DW weights; d input channels and PW weights
  } else if (kind === 'dwpw') {
    const [dw, pw] = layers;
    const dkk = dw.kh * dw.kw;
    depth = dw.c;
    mem = (d) => dw.c * max0 + d * (max1 + dkk + tf); // the DW output tile of all channels; per channel its halo, DW and PW weights
    void pw;
  } else {
    const [p1] = layers;
    depth = p1.c;
    mem = (d) => p1.f * max0 + d * (max1 + p1.f) + tf * Math.min(d, p1.f); // intermediate tile; per channel its input and first weights
  }
  return { gma, flops, workgroups, mem, depth, outTile: tf * th * tw };
}

const sizes = (n: number) => [...range(0, 12).map((i) => 2 ** i).filter((t) => t < n), n];

interface Best { key: number[]; tf: number; th: number; tw: number; d: number; w: Walk; timeUs?: number }

/** The contract of the search, by brute force; undefined when no tile fits. Ties: every tile with the best key. */
function oracle(kind: Kind, layers: L[], ctx: CostContext): { best?: Best; ties: Best[] } {
  const hw = ctx.hw, batch = ctx.batch ?? 1;
  const tileMem = hw.workgroupStorageBytes !== undefined ? Math.min(hw.shmemBytesPerSm, hw.workgroupStorageBytes) : hw.shmemBytesPerSm;
  const smem = tileMem / ctx.dtypeBytes;
  const l1 = Math.max(hw.l1BytesPerSm, tileMem) / ctx.dtypeBytes;
  const last = layers[layers.length - 1];
  const filters = kind === 'dw' ? 1 : kind === 'pwdw' ? last.c : last.f;
  const outputs = last.f * last.outH * last.outW;
  let all: Best[] = [];
  for (const tf of sizes(filters)) {
    for (const th of sizes(last.outH)) {
      for (const tw of sizes(last.outW)) {
        if (kind === 'pwdw' && hw.pwdwMaxHalo) {
          const ext = (t: number, k: number, out: number) => (Math.min(t, out) - 1) * last.s + (k - 1) * last.d + 1;
          if (ext(th, last.kh, last.outH) * ext(tw, last.kw, last.outW) > hw.pwdwMaxHalo) continue;
        }
        const w = walk(kind, layers, tf, th, tw);
        const fits = (d: number) => w.mem(d) <= smem && w.mem(d) + w.outTile <= l1;
        const steps = [w.depth, ...range(0, 20).map((i) => 2 ** i).filter((d) => d < w.depth).reverse()];
        const d = steps.find(fits);
        if (d === undefined) continue;
        let key: number[];
        let timeUs: number | undefined;
        if (ctx.objective === 'time') {
          const fcm = kind === 'pwdw' || kind === 'dwpw' || kind === 'pwpw';
          const factor = (kind === 'pwdw' ? hw.pwdwTimeFactor : kind === 'dwpw' ? hw.dwpwTimeFactor : kind === 'pwpw' ? hw.pwpwTimeFactor : 1) ?? 1;
          const par = !fcm && hw.parallelOutputs ? Math.min(1, Math.sqrt((batch * outputs) / hw.parallelOutputs)) : 1;
          const mem = (batch * w.gma * ctx.dtypeBytes) / (hw.dramGBps! * 1e3);
          const comp = (batch * w.flops) / (hw.fp32Gflops! * 1e3 * par);
          // Floors: the kernel's least time; a PW-DW or DW-PW module's walk over its depth in one thread.
          const chain = (kind === 'pwdw' || kind === 'dwpw') && hw.fcmChannelNs ? (hw.fcmChannelNs * w.depth) / 1e3 : 0;
          timeUs = Math.max((factor * Math.max(mem, comp)) / Math.min(1, (batch * w.workgroups) / hw.sms), hw.kernelFloorUs ?? 0, chain) + hw.dispatchOverheadUs!;
          key = [timeUs, w.gma, -w.workgroups];
        } else {
          key = w.workgroups >= hw.sms ? [0, w.gma, -w.workgroups] : [1, -w.workgroups, w.gma];
        }
        all.push({ key, tf, th, tw, d, w, timeUs });
      }
    }
  }
  if (all.length === 0) return { ties: [] };
  const cmp = (a: number[], b: number[]) => { for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i]; return 0; };
  all = all.sort((a, b) => cmp(a.key, b.key));
  return { best: all[0], ties: all.filter((x) => cmp(x.key, all[0].key) === 0) };
}

// ---------------------------------------------------------------------------------------------------------
// Random layers and GPUs

type Rand = () => number;
const int = (r: Rand, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const pick = <T>(r: Rand, xs: readonly T[]) => xs[Math.floor(r() * xs.length)];

function layer(r: Rand, type: 'dw' | 'pw' | 's', c: number, f: number, inH: number, inW: number): L | undefined {
  const k = type === 'pw' ? 1 : pick(r, [1, 2, 3, 3]);
  const s = pick(r, [1, 1, 2, 3]);
  const d = type === 'pw' ? 1 : pick(r, [1, 1, 2]);
  const pads: [number, number, number, number] = type === 'pw' ? [0, 0, 0, 0] : [int(r, 0, k), int(r, 0, k), int(r, 0, k), int(r, 0, k)];
  const groups = type === 's' ? pick(r, [1, 1, 2]) : type === 'dw' ? c : 1;
  const outH = outSize(inH, k, s, d, pads[0], pads[2]);
  const outW = outSize(inW, k, s, d, pads[1], pads[3]);
  if (outH < 1 || outW < 1) return undefined;
  // Grouped: filters per group a power of two, so that every filter tile covers whole groups or lies in one (the
  // model counts ceil(tf / filters per group) groups per tile, exact only then).
  const filters = type === 'dw' ? c : type === 's' ? groups * pick(r, [1, 2, 4]) : f;
  return { type, c, f: filters, groups, kh: k, kw: k, s, d, pads, inH, inW, outH, outW };
}

const dagLayer = (l: L, id: number): DagLayer => ({
  id, name: `${l.type}${id}`, parents: [], children: [], activation: '0', type: l.type,
  weights_shape: l.type === 'dw' ? [l.c, l.kh, l.kw] : l.type === 'pw' ? [l.f, l.c] : [l.f, l.c / l.groups, l.kh, l.kw],
  ifms_shape: [l.c, l.inH, l.inW], ofms_shape: [l.f, l.outH, l.outW], strides: l.s, dilations: l.d, pads: l.pads,
});

function randomModule(r: Rand): { kind: Kind; layers: L[] } {
  for (;;) {
    const kind = pick(r, ['dw', 'pw', 's', 'pwdw', 'dwpw', 'pwpw'] as const);
    const inH = int(r, 1, 9), inW = int(r, 1, 9);
    const c = int(r, 1, 4), m = int(r, 1, 6), f = int(r, 1, 5);
    if (kind === 'dw' || kind === 'pw' || kind === 's') {
      const l = layer(r, kind, kind === 's' ? 2 * c : c, f, inH, inW);
      if (l) return { kind, layers: [l] };
      continue;
    }
    const types = kind === 'pwdw' ? ['pw', 'dw'] as const : kind === 'dwpw' ? ['dw', 'pw'] as const : ['pw', 'pw'] as const;
    const a = layer(r, types[0], kind === 'dwpw' ? m : c, m, inH, inW);
    if (!a) continue;
    const b = layer(r, types[1], a.f, f, a.outH, a.outW);
    if (b) return { kind, layers: [a, b] };
  }
}

function randomCtx(r: Rand): CostContext {
  const timed = r() < 0.4;
  const hw: HwConfig = {
    name: 'tiny', sms: pick(r, [1, 2, 3, 4, 6, 8, 12, 16, 1000]), warpSize: 32,
    shmemBytesPerSm: pick(r, [32, 64, 128, 256, 512, 4096]), l1BytesPerSm: pick(r, [16, 64, 200, 512, 100000]),
  };
  if (r() < 0.3) hw.workgroupStorageBytes = pick(r, [48, 96, 300]);
  if (timed) {
    Object.assign(hw, { dramGBps: pick(r, [0.001, 1, 100]), fp32Gflops: pick(r, [0.01, 1, 1000]), dispatchOverheadUs: pick(r, [0, 3]) });
    if (r() < 0.5) Object.assign(hw, { pwdwTimeFactor: 1.5, dwpwTimeFactor: 2.5, pwpwTimeFactor: 3.5 });
    if (r() < 0.4) hw.parallelOutputs = pick(r, [10, 1000]);
    if (r() < 0.3) hw.pwdwMaxHalo = pick(r, [4, 12]);
    if (r() < 0.4) Object.assign(hw, { kernelFloorUs: pick(r, [0.5, 5]), fcmChannelNs: pick(r, [10, 1000]) });
  }
  const ctx: CostContext = { hw, dtypeBytes: pick(r, [4, 4, 1]), objective: timed ? 'time' : 'gma' };
  if (timed && r() < 0.4) ctx.batch = pick(r, [2, 5]);
  return ctx;
}

function run(kind: Kind, layers: L[], ctx: CostContext): ModuleCost | undefined {
  const specs = layers.map((l, i) => convSpec(dagLayer(l, i), 'oracle'));
  if (kind === 'pwdw' || kind === 'dwpw' || kind === 'pwpw') return costFcm(kind, specs[0], specs[1], ctx);
  try {
    return costLayer(specs[0], ctx, 'oracle');
  } catch (e) {
    if (e instanceof FcmError && /no tile of this/.test(e.message)) return undefined;
    throw e;
  }
}

test('the tile search returns the brute-force best tile of every kind, with its GMA, flops, workgroups, depth step and time', () => {
  const r = mulberry32(404);
  const seen = { kinds: new Set<string>(), none: 0, unoccupied: 0, stepped: 0, timed: 0 };
  for (let round = 0; round < 700; round++) {
    const { kind, layers } = randomModule(r);
    const ctx = randomCtx(r);
    const what = `round ${round}: ${kind} ${JSON.stringify(layers)} ${JSON.stringify(ctx)}`;
    const got = run(kind, layers, ctx);
    const { best, ties } = oracle(kind, layers, ctx);
    if (!best) {
      assert.equal(got, undefined, what);
      seen.none++;
      continue;
    }
    assert.ok(got, `${what}: the oracle found a tile`);
    seen.kinds.add(kind);
    const mine = ties.find((t) => t.tf === (kind === 'dw' ? 1 : kind === 'dwpw' ? got.tiles.l2Filters : kind === 'pwpw' ? got.tiles.l2Filters : got.tiles.l1Filters) && t.th === got.tiles.h && t.tw === got.tiles.w);
    assert.ok(mine, `${what}: tiles ${JSON.stringify(got.tiles)} are not among the best (${ties.map((t) => `${t.tf}x${t.th}x${t.tw}`).join(' ')})`);
    assert.equal(got.kind, kind);
    assert.equal(got.gma, mine.w.gma, what);
    assert.equal(got.flops, mine.w.flops, what);
    assert.equal(got.workgroups, mine.w.workgroups, what);
    assert.equal(got.tiles.d, mine.d, `${what}: depth step`);
    assert.equal(got.dispatches, 1);
    const last = layers[layers.length - 1];
    assert.equal(got.outputs, last.f * last.outH * last.outW);
    const lbl = layers.reduce((s, l) => s + 2 * l.f * (l.c / l.groups) * l.kh * l.kw * l.outH * l.outW, 0);
    assert.equal(got.redundantFlops, mine.w.flops - lbl, `${what}: redundant flops`);
    // What each kind's tiles name: the first layer's filters per tile (all of them where the second layer's
    // tile needs every channel), the second's filters per tile for FCMs.
    if (kind === 'dw') assert.equal(got.tiles.l1Filters, 1);
    if (kind === 'pwdw') assert.deepEqual([got.tiles.l1Filters, got.tiles.l2Filters], [mine.tf, mine.tf]);
    if (kind === 'dwpw') assert.equal(got.tiles.l1Filters, layers[0].c);
    if (kind === 'pwpw') assert.equal(got.tiles.l1Filters, layers[0].f);
    if (ctx.objective === 'time') {
      seen.timed++;
      assert.ok(Math.abs(got.timeUs! - mine.timeUs!) <= 1e-9 * mine.timeUs!, `${what}: time ${got.timeUs} vs ${mine.timeUs}`);
    } else {
      assert.equal(got.timeUs, undefined);
      if (best.key[0] === 1) seen.unoccupied++;
    }
    if (mine.d < mine.w.depth) seen.stepped++;
  }
  // The random cases must reach every kind and every branch of the contract.
  assert.equal(seen.kinds.size, 6, [...seen.kinds].join());
  for (const [k, v] of Object.entries(seen)) if (typeof v === 'number') assert.ok(v >= 10, `${k}: ${v}`);
});
