// The integer FCMs (kernels/int8/fused.ts) equal the two reference layers (src/quant/reference.ts conv, the first
// layer's output requantized to the intermediate's 8-bit grid) bit for bit: int8 per-channel and uint8, odd sizes,
// stride 2, extreme zero points, Relu6 / Relu clamps, small planner tiles (several tiles and blocks), dot4 and the
// unpacking fallback.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AttrValue, Tensor } from '../../../src/graph/ir.js';
import { type FusedActivation, type QArray, type QType, activationRange, conv } from '../../../src/quant/reference.js';
import { type Int8FusedArgs, int8FusedDwPw, int8FusedPwDw, int8FusedPwPw } from '../../../kernels/int8/fused.js';
import { act, assertEqualQ, biasT, makeRng, node, randInt, run, weights } from './cases.js';
import { closeInt8Device, deviceLimits, hasDot4 } from './harness.js';
import { sampleSweep, sweepSeed } from '../../sweep.js';

after(closeInt8Device);

type Kind = 'pwdw' | 'dwpw' | 'pwpw';
interface Case {
  kind: Kind; t: QType; seed: number; stride: number; k: number; extreme?: boolean; tiles: Record<string, number>; noBias?: boolean;
  /** Sizes instead of random ones. */
  dims?: { C: number; H: number; W: number; M: number };
  /** Output scale factor: deep reductions need a coarser output grid than the small cases, or most outputs clamp. */
  yScale?: number;
}

const qp = (t: Tensor) => ({ scale: t.quant!.scale[0], zeroPoint: t.quant!.zeroPoint[0] });

function layerRef(t: QType, x: QArray, xT: Tensor, w: Tensor, b: Tensor | undefined, yT: Tensor, group: number, k: number, s: number, pad: number, a: FusedActivation) {
  return conv({
    type: t, x, xShape: xT.shape, xq: qp(xT), w: w.data as QArray, wShape: w.shape, wScales: w.quant!.scale, wZeroPoint: t === 'uint8' ? w.quant!.zeroPoint[0] : 0,
    bias: b?.data as Int32Array | undefined, yShape: yT.shape, yq: qp(yT), strides: [s, s], pads: [pad, pad, pad, pad], dilations: [1, 1], group, act: activationRange(a, qp(yT), t),
  });
}

function build(c: Case) {
  const r = makeRng(c.seed);
  const [qmin, qmax] = c.t === 'int8' ? [-128, 127] : [0, 255];
  const z = (i: number) => (c.extreme ? (i % 2 ? qmax : qmin) : randInt(r, qmin, qmax));
  const N = 1, C = c.dims?.C ?? randInt(r, 3, 13), H = c.dims?.H ?? randInt(r, 5, 11), W = c.dims?.W ?? randInt(r, 5, 11);
  const M = c.kind === 'dwpw' ? C : c.dims?.M ?? randInt(r, 3, 14);
  const F = c.kind === 'pwpw' ? randInt(r, 2, 11) : c.kind === 'dwpw' ? randInt(r, 3, 14) : M;
  const k = c.kind === 'pwpw' ? 1 : c.k, s = c.kind === 'pwpw' ? 1 : c.stride, pad = (k - 1) >> 1;
  const out = (h: number) => Math.floor((h + 2 * pad - k) / s) + 1;
  const x = act(r, 'x', c.t, [N, C, H, W], 0.02 + r() * 0.1, z(0));
  const midShape = c.kind === 'dwpw' ? [N, C, out(H), out(W)] : [N, M, H, W];
  const mid = act(r, 'mid', c.t, midShape, 0.05 + r() * 0.2, z(1), false);
  const yShape = c.kind === 'pwdw' ? [N, M, out(H), out(W)] : c.kind === 'dwpw' ? [N, F, out(H), out(W)] : [N, F, H, W];
  const y = act(r, 'y', c.t, yShape, (0.05 + r() * 0.3) * (c.yScale ?? 1), z(2), false);
  const w1 = weights(r, c.t, c.kind === 'dwpw' ? [C, 1, k, k] : [M, C, 1, 1]);
  const w2 = weights(r, c.t, c.kind === 'pwdw' ? [M, 1, k, k] : [F, midShape[1], 1, 1]);
  const b1 = c.noBias ? undefined : biasT(r, midShape[1], 'b1'), b2 = biasT(r, yShape[1], 'b2');
  const op = c.kind === 'pwdw' ? 'FusedPwDw' : c.kind === 'dwpw' ? 'FusedDwPw' : 'FusedPwPw';
  const geo: Record<string, AttrValue> = c.kind === 'pwpw' ? {} : { kernel: [k, k], strides: [s, s], pads: [pad, pad, pad, pad], dilations: [1, 1] };
  const n = node(op, ['x', 'w1', b1 ? 'b1' : '', 'w2', 'b2', ''], {
    ...geo, activation1: 'Clip', activationParams1: [0, 6], activation2: 'Relu', ...c.tiles,
  }, 'ai.fcm.opt');
  const l1 = c.kind === 'dwpw'
    ? layerRef(c.t, x.data as QArray, x, w1, b1, mid, C, k, s, pad, 'RELU6')
    : layerRef(c.t, x.data as QArray, x, w1, b1, mid, 1, 1, 1, 0, 'RELU6');
  const want = c.kind === 'pwdw'
    ? layerRef(c.t, l1, mid, w2, b2, y, M, k, s, pad, 'RELU')
    : layerRef(c.t, l1, mid, w2, b2, y, 1, 1, 1, 0, 'RELU');
  const desc = `${op} ${c.t} x[${x.shape}] mid[${midShape}] y[${yShape}] k${k} s${s} zp ${qp(x).zeroPoint}/${qp(mid).zeroPoint}/${qp(y).zeroPoint} tiles ${JSON.stringify(c.tiles)}`;
  return { n, inputs: [x, w1, b1, w2, b2, undefined], mid, y, want, desc, kind: c.kind };
}

const cases: Case[] = [];
let seed = 100;
for (const t of ['int8', 'uint8'] as QType[]) {
  for (const kind of ['pwdw', 'dwpw', 'pwpw'] as Kind[]) {
    cases.push({ kind, t, seed: seed++, stride: 1, k: 3, tiles: { tileFilters1: 4, tileFilters2: 4, tileH: 3, tileW: 4 } });
    cases.push({ kind, t, seed: seed++, stride: 2, k: 3, extreme: true, tiles: { tileFilters1: 8, tileFilters2: 5, tileH: 2, tileW: 3 }, noBias: true });
    cases.push({ kind, t, seed: seed++, stride: 2, k: 5, tiles: { tileFilters1: 64, tileFilters2: 64, tileH: 16, tileW: 16 } });
  }
  // Several channel chunks (45 channels: 12 words; DW-PW: see the 768-byte runs below) and, in PW-DW, two halo
  // positions per thread (18x18 > 256).
  for (const kind of ['pwdw', 'dwpw'] as Kind[]) {
    cases.push({ kind, t, seed: seed++, stride: 1, k: 3, dims: { C: 45, H: 20, W: 19, M: 21 }, tiles: { tileFilters1: 8, tileFilters2: 8, tileH: 16, tileW: 16 } });
  }
  // DW-PW with K split inside the workgroup (18 channel words in one chunk; 2 chunks of 8), rows not on words (9x9)
  // and on words (8x8).
  cases.push({ kind: 'dwpw', t, seed: seed++, stride: 1, k: 3, dims: { C: 72, H: 9, W: 9, M: 0 }, tiles: { tileFilters1: 256, tileFilters2: 16, tileH: 2, tileW: 4 } });
  cases.push({ kind: 'dwpw', t, seed: seed++, stride: 1, k: 3, dims: { C: 64, H: 8, W: 8, M: 0 }, tiles: { tileFilters1: 32, tileFilters2: 8, tileH: 1, tileW: 8 } });
}

// dot4 and the unpacking fallback: each case with one or both (a seeded sample within each type and kind,
// test/sweep.ts, so each FCM meets both on several shapes); FCM_OPT_FULL_SWEEPS=1 runs every case with both.
const dot4Of = new Map<Case, boolean[]>();
for (const group of new Set(cases.map((c) => `${c.t} ${c.kind}`))) {
  const members = cases.filter((c) => `${c.t} ${c.kind}` === group);
  const pick = sampleSweep(2, members.length, Math.ceil(members.length / 2), sweepSeed(members[0].seed));
  members.forEach((c, i) => dot4Of.set(c, [true, false].filter((_, o) => pick[o].includes(i))));
}

const fns = { pwdw: int8FusedPwDw, dwpw: int8FusedDwPw, pwpw: int8FusedPwPw };
for (const c of cases) {
  const m = build(c);
  for (const dot4 of dot4Of.get(c)!) {
    test(`${dot4 ? 'dot4' : 'fallback'} ${m.desc}`, async (tc) => {
      if (dot4 && !(await hasDot4())) { tc.skip('no packed_4x8_integer_dot_product'); return; }
      const a: Int8FusedArgs = { node: m.n, inputs: m.inputs, outputs: [m.y], limits: await deviceLimits(), dot4, intermediate: m.mid };
      assertEqualQ(await run(fns[m.kind](a), a), m.want, m.desc);
      if (m.kind === 'dwpw' && m.inputs[0]!.shape[1] >= 64) {
        // 768 bytes of workgroup memory: the channels go in several chunks (the last one partial), no K split.
        const small = { ...a, limits: { ...a.limits, maxComputeWorkgroupStorageSize: 768 } };
        const p = int8FusedDwPw(small);
        assert.ok(p.workgroupStorageBytes <= 768, `${p.workgroupStorageBytes} bytes`);
        assertEqualQ(await run(p, small), m.want, `${m.desc} (768 bytes)`);
      }
    });
  }
}

// DW-PW with 32 K-groups (64 channel words at 7x7 and at most 4 filter quads: 128 threads or fewer), so the partial
// sums meet in five tree rounds; both types, dot4 and the fallback. (Outside `cases`: the dot4 sample stays as it was.)
// The coarser output grids keep most outputs that Relu leaves off the clamps (int8's zero point here is 99).
for (const t of ['int8', 'uint8'] as QType[]) {
  const m = build({ kind: 'dwpw', t, seed: t === 'int8' ? 300 : 301, stride: 1, k: 3, dims: { C: 256, H: 7, W: 7, M: 0 }, yScale: t === 'int8' ? 64 : 16, tiles: { tileFilters1: 512, tileFilters2: 32, tileH: 1, tileW: 2 } });
  test(`32 K-groups ${m.desc}`, async () => {
    for (const dot4 of (await hasDot4()) ? [true, false] : [false]) {
      const a: Int8FusedArgs = { node: m.n, inputs: m.inputs, outputs: [m.y], limits: await deviceLimits(), dot4, intermediate: m.mid };
      const p = int8FusedDwPw(a);
      assert.ok(p.wgsl.includes('const KS: u32 = 32u;'), 'the case must split K 32 ways');
      assertEqualQ(await run(p, a), m.want, `${m.desc} dot4=${dot4}`);
    }
  });
}

// The DW-PW kernel's workgroups for MobileNetV1's 14x14 and 7x7 modules with the planner's tiles, on an H100's
// limits (kernels are pure functions: no GPU needed). 14x14 512->512, 2 positions x 256 filters: 98 workgroups
// would leave SMs idle, so the filter block is halved once (196 workgroups of 32 tasks x 8 K-groups); 7x7
// 1024->1024, 2 x 128 filters: 104 workgroups stay (halving would drop below 32 tasks).
test('DW-PW workgroups: filter blocks halved only for an SM each, at 256 threads', () => {
  const limits = { maxComputeWorkgroupStorageSize: 49152, maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 1024, maxComputeWorkgroupsPerDimension: 65535 };
  for (const [C, HW, tiles, groups] of [[512, 14, { tileFilters1: 128, tileFilters2: 256, tileH: 1, tileW: 2 }, 196], [1024, 7, { tileFilters1: 256, tileFilters2: 128, tileH: 1, tileW: 2 }, 104]] as const) {
    const r = makeRng(C);
    const x = act(r, 'x', 'int8', [1, C, HW, HW], 0.05, -3), mid = act(r, 'mid', 'int8', [1, C, HW, HW], 0.1, -128, false);
    const y = act(r, 'y', 'int8', [1, C, HW, HW], 0.1, -128, false);
    const n = node('FusedDwPw', ['x', 'w1', 'b1', 'w2', 'b2', ''], { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], ...tiles }, 'ai.fcm.opt');
    const p = int8FusedDwPw({ node: n, inputs: [x, weights(r, 'int8', [C, 1, 3, 3]), biasT(r, C), weights(r, 'int8', [C, C, 1, 1]), biasT(r, C), undefined], outputs: [y], limits, dot4: true, intermediate: mid });
    assert.deepEqual(p.workgroupSize, [256, 1, 1], `${HW}x${HW}`);
    assert.equal(p.dispatch[0] * p.dispatch[1] * p.dispatch[2], groups, `${HW}x${HW}`);
  }
});
