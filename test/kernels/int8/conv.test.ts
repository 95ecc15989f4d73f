// Integer convolutions (kernels/int8/conv.ts direct, pointwise.ts word and split-K kernels with dot4 and its unpacking fallback)
// bit-exact against src/quant/reference.ts conv on random shapes, per-channel scales, extreme zero points, odd
// sizes, strides 2, dilations, fused Relu / Relu6 clamps; int8 and uint8.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { type FusedActivation, type QType, activationRange, conv } from '../../../src/quant/reference.js';
import type { AttrValue, Tensor } from '../../../src/graph/ir.js';
import { int8Conv } from '../../../kernels/int8/conv.js';
import { int8Depthwise, int8DepthwiseAligned, int8DepthwisePerOutput } from '../../../kernels/int8/depthwise.js';
import { int8Pointwise, int8PointwiseSplitK, int8PointwiseWords } from '../../../kernels/int8/pointwise.js';
import { FcmError } from '../../../src/errors.js';
import { int8KernelFor } from '../../../kernels/registry.js';
import { act, args, assertEqualQ, biasT, makeRng, node, randInt, run, weights } from './cases.js';
import { closeInt8Device, hasDot4 } from './harness.js';
import { sampleSweep, sweepSeed } from '../../sweep.js';

after(closeInt8Device);

type Kind = 'dw' | 'std' | 'group' | 'pw';
interface Case { kind: Kind; t: QType; seed: number; act: FusedActivation; zx?: number; zo?: number; stride?: number; bias?: boolean }

const actAttrs = (a: FusedActivation): Record<string, AttrValue> => (a === 'RELU' ? { activation: 'Relu' } : a === 'RELU6' ? { activation: 'Clip', activationParams: [0, 6] } : {});

function makeCase(c: Case) {
  const r = makeRng(c.seed);
  const [qmin, qmax] = c.t === 'int8' ? [-128, 127] : [0, 255];
  const C = c.kind === 'dw' ? randInt(r, 3, 9) : c.kind === 'group' ? 6 : randInt(r, 1, 19);
  const group = c.kind === 'dw' ? C : c.kind === 'group' ? 3 : 1;
  const F = c.kind === 'dw' ? C : c.kind === 'group' ? 9 : randInt(r, 1, 21);
  const k = c.kind === 'pw' ? 1 : c.kind === 'std' ? 3 : randInt(r, 2, 5);
  const s = c.kind === 'pw' ? 1 : (c.stride ?? randInt(r, 1, 2));
  const dil = c.kind === 'dw' && k === 3 && c.seed % 3 === 0 ? 2 : 1;
  const H = randInt(r, k * dil, 13), W = randInt(r, k * dil, 11), N = c.seed % 4 === 0 ? 2 : 1;
  const pads = c.kind === 'pw' ? [0, 0, 0, 0] : [randInt(r, 0, k - 1), randInt(r, 0, k - 1), randInt(r, 0, k - 1), randInt(r, 0, k - 1)];
  const HO = Math.floor((H + pads[0] + pads[2] - (k - 1) * dil - 1) / s) + 1, WO = Math.floor((W + pads[1] + pads[3] - (k - 1) * dil - 1) / s) + 1;
  const zx = c.zx ?? randInt(r, qmin, qmax), zo = c.zo ?? randInt(r, qmin, qmax);
  const x = act(r, 'x', c.t, [N, C, H, W], 0.01 + r() * 0.1, zx);
  const wt = weights(r, c.t, [F, C / group, k, k]);
  const b = c.bias === false ? undefined : biasT(r, F);
  const y: Tensor = act(r, 'y', c.t, [N, F, HO, WO], 0.02 + r() * 0.2, zo, false);
  const n = node('Conv', ['x', 'w', b ? 'b' : ''], { kernel: [k, k], strides: [s, s], pads, dilations: [dil, dil], group, ...actAttrs(c.act) });
  const want = conv({
    type: c.t, x: x.data as Int8Array, xShape: x.shape, xq: { scale: x.quant!.scale[0], zeroPoint: zx },
    w: wt.data as Int8Array, wShape: wt.shape, wScales: wt.quant!.scale, wZeroPoint: c.t === 'uint8' ? wt.quant!.zeroPoint[0] : 0,
    bias: b?.data as Int32Array | undefined, yShape: y.shape, yq: { scale: y.quant!.scale[0], zeroPoint: zo },
    strides: [s, s], pads, dilations: [dil, dil], group, act: activationRange(c.act, { scale: y.quant!.scale[0], zeroPoint: zo }, c.t),
  });
  return { n, inputs: [x, wt, b], y, want, desc: `${c.t} ${c.kind} x[${x.shape}] w[${wt.shape}] s${s} d${dil} p[${pads}] zx${zx} zo${zo} ${c.act}` };
}

const cases: Case[] = [];
let seed = 1;
for (const t of ['int8', 'uint8'] as QType[]) {
  const [qmin, qmax] = t === 'int8' ? [-128, 127] : [0, 255];
  for (const kind of ['dw', 'std', 'group', 'pw'] as Kind[]) {
    cases.push({ kind, t, seed: seed++, act: 'RELU6' });
    cases.push({ kind, t, seed: seed++, act: 'NONE', zx: qmin, zo: qmax, stride: 2, bias: false });
    cases.push({ kind, t, seed: seed++, act: 'RELU', zx: qmax, zo: qmin, stride: 2 });
  }
  // More depthwise shapes for the rows-of-taps kernel: kernels 2-5 (5: the per-tap form), dilation 2 (per-tap),
  // asymmetric pads up to k - 1 on the left (the shifted row load), two images, zero points 0 and extreme.
  for (let i = 0; i < 8; i++) cases.push({ kind: 'dw', t, seed: 100 + seed++, act: i % 2 ? 'RELU6' : 'NONE', zx: i % 3 === 0 ? 0 : undefined, stride: 1 + (i % 2) });
}

// dot4 and the unpacking fallback compute the same sums from the same indexing: each case runs with one or both
// (a seeded sample within each type and kind, test/sweep.ts, so every kernel meets both on several shapes);
// FCM_OPT_FULL_SWEEPS=1 runs every case with both.
const dot4Of = new Map<Case, boolean[]>();
for (const group of new Set(cases.map((c) => `${c.t} ${c.kind}`))) {
  const members = cases.filter((c) => `${c.t} ${c.kind}` === group);
  const pick = sampleSweep(2, members.length, Math.ceil(members.length / 2), sweepSeed(members[0].seed));
  members.forEach((c, i) => dot4Of.set(c, [false, true].filter((_, o) => pick[o].includes(i))));
}

for (const c of cases) {
  const m = makeCase(c);
  // int8Conv, and int8Depthwise for depthwise cases: kernel rows of up to 4 taps (dilation 1 along W) take the
  // rows-of-taps form (dot4 per row and input channel), others the per-tap loop.
  const kernels = [['direct', int8Conv], ...(c.kind === 'dw' ? [['depthwise', int8Depthwise] as const] : [])] as const;
  for (const [label, kernel] of kernels) {
    for (const dot4 of dot4Of.get(c)!) {
      test(`${label} ${dot4 ? 'dot4' : 'fallback'} ${m.desc}`, async (tc) => {
        if (dot4 && !(await hasDot4())) { tc.skip('no packed_4x8_integer_dot_product'); return; }
        const a = await args(m.n, m.inputs, [m.y], dot4);
        const p = kernel(a);
        const k = m.inputs[1]!.shape[3], dil = (m.n.attrs.dilations as number[])[1];
        assert.equal(p.name.includes(' rows'), k <= 4 && dil === 1, p.name);
        assertEqualQ(await run(p, a), m.want, m.desc);
      });
    }
  }
  if (c.kind === 'pw') {
    for (const dot4 of dot4Of.get(c)!) {
      for (const [label, kernel] of [['split-K', int8PointwiseSplitK], ['words', int8PointwiseWords]] as const) {
        test(`${label} pointwise ${dot4 ? 'dot4' : 'fallback'} ${m.desc}`, async (tc) => {
          if (dot4 && !(await hasDot4())) { tc.skip('no packed_4x8_integer_dot_product'); return; }
          const a = await args(m.n, m.inputs, [m.y], dot4);
          const p = kernel(a);
          assert.equal(p.wgsl.includes('dot4I8Packed') || p.wgsl.includes('dot4U8Packed'), dot4);
          assertEqualQ(await run(p, a), m.want, m.desc);
        });
      }
    }
  }
}

// The aligned-rows kernel (kernels/int8/conv-common.ts alignedRowsConv: rows of whole words in and out, weights without
// a zero point), depthwise and standard / grouped: bit-exact with the reference and with the per-output forms, over
// kernels of 2-4 taps a row, strides 1-3, left padding 0-3 (windows at every byte offset), right and bottom padding
// past the image (words of the zero point), dilation along H, two images, zero points at both ends and 0, int8 and
// uint8 (with weights of zero point 0), and a flipped input (the folded input QUANTIZE). Each shape with dot4 or the
// fallback.
test('aligned rows: whole-word rows, windows cut from shared words, padding as the zero point', async () => {
  let made = 0;
  const pick = sampleSweep(2, 18, 9, sweepSeed(91));
  for (let i = 0; made < 18; i++) {
    const r = makeRng(500 + i);
    const kind = (['dw', 'std', 'group'] as const)[made % 3];
    const t: QType = i % 3 === 2 ? 'uint8' : 'int8';
    const [qmin, qmax] = t === 'int8' ? [-128, 127] : [0, 255];
    const k = randInt(r, 2, 4), s = 1 + (i % 3), dh = i % 4 === 3 ? 2 : 1;
    const W = 4 * randInt(r, 2, 5), H = randInt(r, k * dh, 9), N = i % 2 ? 2 : 1;
    const C = kind === 'group' ? 6 : randInt(r, 1, 7), group = kind === 'dw' ? C : kind === 'group' ? 3 : 1;
    const F = kind === 'dw' ? C : kind === 'group' ? 9 : randInt(r, 1, 9);
    const pl = randInt(r, 0, Math.min(3, k - 1)), pt = randInt(r, 0, k - 1), pb = randInt(r, 0, k - 1);
    // The right padding that makes whole output words, if one of 0..k-1 does.
    const pr = [0, 1, 2, 3].find((p) => p <= k - 1 && (Math.floor((W + pl + p - k) / s) + 1) % 4 === 0);
    if (pr === undefined) continue;
    const HO = Math.floor((H + pt + pb - (k - 1) * dh - 1) / s) + 1, WO = Math.floor((W + pl + pr - k) / s) + 1;
    const zx = [qmin, qmax, 0, randInt(r, qmin, qmax)][i % 4], zo = randInt(r, qmin, qmax);
    const x = act(r, 'x', t, [N, C, H, W], 0.02 + r() * 0.05, zx);
    const wt0 = weights(r, t, [F, C / group, k, k]);
    const wt = t === 'uint8' ? { ...wt0, quant: { ...wt0.quant!, zeroPoint: [0] } } : wt0;
    const b = biasT(r, F);
    const y = act(r, 'y', t, [N, F, HO, WO], 0.05 + r() * 0.2, zo, false);
    const pads = [pt, pl, pb, pr];
    const n = node('Conv', ['x', 'w', 'b'], { kernel: [k, k], strides: [s, s], pads, dilations: [dh, 1], group, ...(i % 2 ? { activation: 'Clip', activationParams: [0, 6] } : {}) });
    const want = conv({
      type: t, x: x.data as Int8Array, xShape: x.shape, xq: { scale: x.quant!.scale[0], zeroPoint: zx }, w: wt.data as Int8Array, wShape: wt.shape,
      wScales: wt.quant!.scale, wZeroPoint: 0, bias: b.data as Int32Array, yShape: y.shape, yq: { scale: y.quant!.scale[0], zeroPoint: zo },
      strides: [s, s], pads, dilations: [dh, 1], group,
      act: activationRange(i % 2 ? 'RELU6' : 'NONE', { scale: y.quant!.scale[0], zeroPoint: zo }, t),
    });
    const desc = `${t} ${kind} x[${x.shape}] w[${wt.shape}] s${s} dh${dh} p[${pads}] zx${zx} -> ${HO}x${WO}`;
    for (const dot4 of (await hasDot4()) ? [true, false].filter((_, o) => pick[o].includes(made)) : [false]) {
      const a = await args(n, [x, wt, b], [y], dot4);
      assert.match(int8Conv(a).name, /aligned rows/, desc);
      assertEqualQ(await run(int8Conv(a), a), want, `aligned ${desc} dot4=${dot4}`);
      if (kind === 'dw') {
        assert.match(int8Depthwise(a).name, /aligned rows/, desc);
        assertEqualQ(await run(int8DepthwisePerOutput(a), a), want, `per output ${desc} dot4=${dot4}`);
      } else {
        // The flipped input: the buffer holds the other type's bytes, read with their top bits flipped.
        const fa = { ...a, flippedInput: true };
        const p = int8Conv(fa);
        assert.ok(p.inputFlipped && /aligned rows.*flipped/.test(p.name), p.name);
        const other = t === 'int8' ? Uint8Array.from(x.data as Int8Array, (v) => (v & 0xff) ^ 0x80) : Int8Array.from(x.data as Uint8Array, (v) => ((v ^ 0x80) << 24) >> 24);
        assertEqualQ(await run(p, { ...fa, inputs: [{ ...x, data: other }, wt, b] }), want, `flipped ${desc} dot4=${dot4}`);
      }
    }
    made++;
  }
  // Rows of a ragged length, or weights with a zero point, keep the per-output forms.
  const r = makeRng(7);
  const x = act(r, 'x', 'int8', [1, 4, 7, 7], 0.05, 3), wt = weights(r, 'int8', [4, 1, 3, 3]), y = act(r, 'y', 'int8', [1, 4, 7, 7], 0.1, 0, false);
  const n = node('Conv', ['x', 'w', ''], { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 4 });
  const a = await args(n, [x, wt, undefined], [y], false);
  assert.doesNotMatch(int8Depthwise(a).name, /aligned/);
  assert.doesNotMatch(int8Conv(a).name, /aligned/);
  assert.throws(() => int8DepthwiseAligned(a), (e: unknown) => e instanceof FcmError && /whole words/.test(e.message));
  const xu = act(r, 'x', 'uint8', [1, 4, 8, 8], 0.05, 3), wu = weights(r, 'uint8', [4, 1, 3, 3]), yu = act(r, 'y', 'uint8', [1, 4, 8, 8], 0.1, 0, false);
  const au = await args(n, [xu, { ...wu, quant: { ...wu.quant!, zeroPoint: [17] } }, undefined], [yu], false);
  assert.doesNotMatch(int8Depthwise(au).name, /aligned/, 'weights with a zero point');
});

// Split-K covers: 1x1 maps with whole words of channels (classifier-like, many threads per output) and without,
// positions-major maps (>= 16 positions) with several threads per output, uint8's weight zero point, outputs not
// a multiple of 4, several images.
// Each shape with dot4 or the fallback (seeded, 5 shapes each); FCM_OPT_FULL_SWEEPS=1: both.
test('split-K and word pointwise: larger channels and positions, several tiles, 1x1 spatial', async () => {
  const pick = sampleSweep(2, 10, 5, sweepSeed(70));
  let shape = -1;
  // Word kernel: aligned rows (8x8, 4x4), unaligned (9x7, 7x7, 5x5, 1x3), K split 2-8 ways, F not a multiple of 4.
  for (const [C, F, H, W, t, N] of [[70, 45, 9, 7, 'int8', 1], [33, 66, 1, 1, 'uint8', 1], [64, 32, 8, 8, 'int8', 1],
    [256, 250, 1, 1, 'int8', 2], [128, 61, 1, 1, 'uint8', 1], [200, 40, 7, 7, 'int8', 1], [96, 13, 5, 5, 'uint8', 2],
    [130, 3, 4, 4, 'uint8', 1], [37, 9, 1, 3, 'int8', 3], [128, 64, 9, 7, 'uint8', 1]] as const) {
    shape++;
    const r = makeRng(C * F);
    const x = act(r, 'x', t, [N, C, H, W], 0.05, t === 'int8' ? -3 : 131);
    const wt = weights(r, t, [F, C, 1, 1]);
    const b = biasT(r, F);
    const y = act(r, 'y', t, [N, F, H, W], 0.3, t === 'int8' ? 5 : 120, false);
    const n = node('Conv', ['x', 'w', 'b'], { kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 });
    const want = conv({
      type: t, x: x.data as Int8Array, xShape: x.shape, xq: { scale: 0.05, zeroPoint: x.quant!.zeroPoint[0] }, w: wt.data as Int8Array, wShape: wt.shape,
      wScales: wt.quant!.scale, wZeroPoint: t === 'uint8' ? wt.quant!.zeroPoint[0] : 0, bias: b.data as Int32Array, yShape: y.shape,
      yq: { scale: 0.3, zeroPoint: y.quant!.zeroPoint[0] }, strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, act: t === 'int8' ? [-128, 127] : [0, 255],
    });
    for (const dot4 of (await hasDot4()) ? [true, false].filter((_, o) => pick[o].includes(shape)) : [false]) {
      const a = await args(n, [x, wt, b], [y], dot4);
      for (const kernel of [int8PointwiseSplitK, int8PointwiseWords]) {
        const p = kernel(a);
        assertEqualQ(await run(p, a), want, `${p.name} ${t} ${N}x${C}->${F} ${H}x${W} dot4=${dot4}`);
      }
      // WebGPU's default 16 KiB of workgroup memory: the word kernel splits K fewer ways (uint8's byte sums make
      // 8 K-groups need 17.5 KiB), same values.
      const a16 = { ...a, limits: { ...a.limits, maxComputeWorkgroupStorageSize: 16384 } };
      const p16 = int8PointwiseWords(a16);
      assert.ok(p16.workgroupStorageBytes <= 16384, `${p16.name}: ${p16.workgroupStorageBytes} bytes`);
      assertEqualQ(await run(p16, a16), want, `${p16.name} (16 KiB) ${t} ${N}x${C}->${F} ${H}x${W} dot4=${dot4}`);
      // Maps of fewer than 4 positions (no whole word of a row) go to split-K.
      assert.match(int8Pointwise(a).name, H * W < 4 ? /split-K/ : /words/);
    }
  }
});

test('refuses float tensors, asymmetric int8 weights and activations other than Relu/Clip', async () => {
  const r = makeRng(9);
  const x = act(r, 'x', 'int8', [1, 4, 5, 5], 0.1, 0);
  const wt = weights(r, 'int8', [4, 1, 3, 3]);
  const y = act(r, 'y', 'int8', [1, 4, 5, 5], 0.1, 0, false);
  const base = { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 4 };
  const n = node('Conv', ['x', 'w', ''], { ...base, activation: 'Sigmoid' });
  await assert.rejects(async () => int8Conv(await args(n, [x, wt, undefined], [y], false)), (e: unknown) => e instanceof FcmError && /Sigmoid/.test(e.message));
  const wAsym = { ...wt, quant: { ...wt.quant!, zeroPoint: wt.quant!.zeroPoint.map(() => 3) } };
  await assert.rejects(async () => int8Conv(await args(node('Conv', ['x', 'w', ''], base), [x, wAsym, undefined], [y], false)), /symmetric/);
  const xf: Tensor = { name: 'x', dtype: 'float32', shape: x.shape };
  await assert.rejects(async () => int8Conv(await args(node('Conv', ['x', 'w', ''], base), [xf, wt, undefined], [y], false)), /float32/);
});

// A folded input QUANTIZE (src/runtime/compile.ts; flippedInput): the buffer holds the input on the other 8-bit
// type's grid (zero point 128 away), e.g. the uint8 model input before its QUANTIZE to int8. The direct kernel, in
// both its forms (rows of taps, per tap), reads each byte with its top bit flipped and equals the convolution of
// the requantized input; the registry refuses the flag for kernels that would ignore it (pointwise, depthwise).
test('direct convolution of a flipped input (the input QUANTIZE between the 8-bit types folded in)', async () => {
  // 3x3 standard and grouped (rows of taps), and depthwise of both types with 5 taps or dilation 2 (per tap).
  const perTap = (c: Case) => { const m = makeCase(c); return m.inputs[1]!.shape[3] > 4 || (m.n.attrs.dilations as number[])[1] === 2; };
  const cs = [...cases.filter((c) => c.kind === 'std' || c.kind === 'group').slice(0, 4),
    ...(['int8', 'uint8'] as const).map((t) => cases.find((c) => c.kind === 'dw' && c.t === t && perTap(c))!)];
  for (const c of cs) {
    const m = makeCase(c);
    for (const dot4 of (await hasDot4()) ? [true, false] : [false]) {
      const a = { ...(await args(m.n, m.inputs, [m.y], dot4)), flippedInput: true };
      // A depthwise Conv: the registry picks the depthwise kernel, which refuses (the schedule keeps the QUANTIZE).
      if (c.kind === 'dw') assert.throws(() => int8KernelFor(a), (e: unknown) => e instanceof FcmError && /folded input QUANTIZE/.test(e.message));
      const p = c.kind === 'dw' ? int8Conv(a) : int8KernelFor(a);
      assert.ok(p.inputFlipped && p.name.includes('flipped'), p.name);
      assert.equal(p.name.includes(' rows'), c.kind !== 'dw', p.name);
      // The bound buffer: the input's bytes with the top bit flipped (as the other type's values).
      const x = m.inputs[0]!;
      const other = x.dtype === 'int8' ? Uint8Array.from(x.data as Int8Array, (v) => (v & 0xff) ^ 0x80) : Int8Array.from(x.data as Uint8Array, (v) => ((v ^ 0x80) << 24) >> 24);
      assertEqualQ(await run(p, { ...a, inputs: [{ ...x, data: other }, ...m.inputs.slice(1)] }), m.want, `flipped ${m.desc} dot4=${dot4}`);
      assert.notDeepEqual(Array.from(await run(p, a)), Array.from(m.want), 'the kernel reads the flipped bytes');
    }
  }
  const pw = makeCase(cases.find((c) => c.kind === 'pw')!);
  assert.throws(() => int8KernelFor({ ...{ node: pw.n, inputs: pw.inputs, outputs: [pw.y], limits: { maxComputeWorkgroupStorageSize: 16384, maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupSizeX: 256, maxComputeWorkgroupsPerDimension: 65535 }, dot4: false }, flippedInput: true }),
    (e: unknown) => e instanceof FcmError && e.kind === 'unsupported' && /folded input QUANTIZE/.test(e.message));
});
