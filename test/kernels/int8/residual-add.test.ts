// A residual Add folded into the integer kernel that computes one of its operands (Int8KernelArgs.residual; the
// pointwise word kernel and the DW-PW FCM take it) equals the two reference ops, the convolution stored on its own
// grid then TFLite's ADD (src/quant/reference.ts addSub), bit for bit: int8 per-channel and uint8, rows on words and
// not (P % 4), two images, the conv on either side of the Add, an Add with Relu, extreme zero points, dot4 and the
// unpacking fallback. Kernels that cannot take it are refused by the registry, so the schedule keeps the Add.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Tensor } from '../../../src/graph/ir.js';
import { type QArray, type QType, activationRange, addSub, conv } from '../../../src/quant/reference.js';
import { int8PointwiseWords } from '../../../kernels/int8/pointwise.js';
import { int8FusedDwPw } from '../../../kernels/int8/fused.js';
import { int8KernelFor } from '../../../kernels/registry.js';
import { FcmError } from '../../../src/errors.js';
import { act, assertEqualQ, biasT, makeRng, node, randInt, run, weights } from './cases.js';
import { closeInt8Device, deviceLimits, hasDot4 } from './harness.js';

after(closeInt8Device);

interface Case { kind: 'pw' | 'dwpw'; t: QType; seed: number; H: number; W: number; N?: number; convSecond?: boolean; relu?: boolean; extreme?: boolean }

const qp = (t: Tensor) => ({ scale: t.quant!.scale[0], zeroPoint: t.quant!.zeroPoint[0] });

function build(c: Case) {
  const r = makeRng(c.seed);
  const [qmin, qmax] = c.t === 'int8' ? [-128, 127] : [0, 255];
  const z = (i: number) => (c.extreme ? (i % 2 ? qmax : qmin) : randInt(r, qmin, qmax));
  const N = c.N ?? 1, C = randInt(r, 5, 19), F = randInt(r, 5, 13), { H, W } = c;
  const x = act(r, 'x', c.t, [N, C, H, W], 0.02 + r() * 0.1, z(0));
  const own = act(r, 'own', c.t, [N, F, H, W], 0.05 + r() * 0.2, z(1), false);
  const res = act(r, 'r', c.t, [N, F, H, W], 0.05 + r() * 0.2, z(2));
  const sum = act(r, 'sum', c.t, [N, F, H, W], 0.05 + r() * 0.3, z(3), false);
  const b2 = biasT(r, F, 'b2');
  let convOut: QArray, n, inputs: (Tensor | undefined)[], index: number;
  if (c.kind === 'pw') {
    const w = weights(r, c.t, [F, C, 1, 1]);
    n = node('Conv', ['x', 'w', 'b2', 'r'], { kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, activation: 'Clip', activationParams: [0, 6] });
    inputs = [x, w, b2, res];
    index = 3;
    convOut = conv({
      type: c.t, x: x.data as QArray, xShape: x.shape, xq: qp(x), w: w.data as QArray, wShape: w.shape, wScales: w.quant!.scale,
      wZeroPoint: c.t === 'uint8' ? w.quant!.zeroPoint[0] : 0, bias: b2.data as Int32Array, yShape: own.shape, yq: qp(own),
      strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, act: activationRange('RELU6', qp(own), c.t),
    });
  } else {
    // DW-PW: a 3x3 stride-1 depthwise layer (Relu6) then the pointwise layer, as the FCM tests build them.
    const mid = act(r, 'mid', c.t, [N, C, H, W], 0.05 + r() * 0.2, z(4), false);
    const w1 = weights(r, c.t, [C, 1, 3, 3]), b1 = biasT(r, C, 'b1'), w2 = weights(r, c.t, [F, C, 1, 1]);
    n = node('FusedDwPw', ['x', 'w1', 'b1', 'w2', 'b2', 'r'], {
      kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], activation1: 'Clip', activationParams1: [0, 6],
      tileFilters1: 16, tileFilters2: 8, tileH: 2, tileW: 4,
    }, 'ai.fcm.opt');
    inputs = [x, w1, b1, w2, b2, res];
    index = 5;
    const ref = (t: Tensor, xs: QArray, wt: Tensor, b: Tensor, y: Tensor, group: number, k: number, a: 'RELU6' | 'NONE') => conv({
      type: c.t, x: xs, xShape: t.shape, xq: qp(t), w: wt.data as QArray, wShape: wt.shape, wScales: wt.quant!.scale,
      wZeroPoint: c.t === 'uint8' ? wt.quant!.zeroPoint[0] : 0, bias: b.data as Int32Array, yShape: y.shape, yq: qp(y),
      strides: [1, 1], pads: k === 3 ? [1, 1, 1, 1] : [0, 0, 0, 0], dilations: [1, 1], group, act: activationRange(a, qp(y), c.t),
    });
    convOut = ref(mid, ref(x, x.data as QArray, w1, b1, mid, C, 3, 'RELU6'), w2, b2, own, 1, 1, 'NONE');
    Object.assign(n.attrs, { intermediateScale: qp(mid).scale, intermediateZeroPoint: qp(mid).zeroPoint });
    inputs.push(mid);
  }
  const add = node('Add', c.convSecond ? ['r', 'y'] : ['y', 'r'], c.relu ? { activation: 'Relu' } : {});
  const side = { type: c.t, yShape: sum.shape, yq: qp(sum), act: activationRange(c.relu ? 'RELU' : 'NONE', qp(sum), c.t) };
  const convSide = { v: convOut, shape: own.shape, q: qp(own) }, resSide = { v: res.data as QArray, shape: res.shape, q: qp(res) };
  const [a, b] = c.convSecond ? [resSide, convSide] : [convSide, resSide];
  const want = addSub({ ...side, a: a.v, aShape: a.shape, aq: a.q, b: b.v, bShape: b.shape, bq: b.q });
  const desc = `${c.kind} + Add ${c.t} x[${x.shape}] -> [${own.shape}]${c.convSecond ? ' (conv second)' : ''}${c.relu ? ' Relu' : ''}${c.extreme ? ' extreme zero points' : ''}`;
  return { n, inputs, own, sum, add, index, want, desc };
}

const cases: Case[] = [];
let seed = 700;
for (const t of ['int8', 'uint8'] as QType[]) {
  for (const kind of ['pw', 'dwpw'] as const) {
    cases.push({ kind, t, seed: seed++, H: 4, W: 6 });
    cases.push({ kind, t, seed: seed++, H: 5, W: 5, convSecond: true, relu: true });
    cases.push({ kind, t, seed: seed++, H: 7, W: 3, N: 2, extreme: true });
  }
}

for (const c of cases) {
  const m = build(c);
  for (const dot4 of [true, false]) {
    test(`${dot4 ? 'dot4' : 'fallback'} ${m.desc}`, async (tc) => {
      if (dot4 && !(await hasDot4())) { tc.skip('no packed_4x8_integer_dot_product'); return; }
      const inputs = m.inputs.slice(0, m.index + 1);
      const intermediate = m.inputs[m.index + 1];
      const a = {
        node: m.n, inputs, outputs: [m.own], limits: await deviceLimits(), dot4,
        residual: { index: m.index, sum: m.sum, attrs: m.add.attrs }, ...(intermediate ? { intermediate } : {}),
      };
      const p = c.kind === 'pw' ? int8PointwiseWords(a) : int8FusedDwPw({ ...a, intermediate: intermediate! });
      assert.deepEqual(p.inputs, [0, m.index], 'the residual is bound after the input');
      assertEqualQ(await run(p, a), m.want, m.desc);
    });
  }
}

test('kernels that take no residual are refused with one (the schedule then keeps the Add)', async () => {
  const r = makeRng(9);
  const limits = await deviceLimits();
  const x = act(r, 'x', 'int8', [1, 8, 6, 6], 0.05, 1), res = act(r, 'r', 'int8', [1, 8, 6, 6], 0.1, 2);
  const own = act(r, 'own', 'int8', [1, 8, 6, 6], 0.1, -3, false), sum = act(r, 'sum', 'int8', [1, 8, 6, 6], 0.1, 0, false);
  const residual = { index: 3, sum, attrs: {} };
  // A depthwise Conv: its kernel has no residual epilogue.
  const dw = node('Conv', ['x', 'w', 'b', 'r'], { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 8 });
  assert.throws(() => int8KernelFor({ node: dw, inputs: [x, weights(r, 'int8', [8, 1, 3, 3]), biasT(r, 8), res], outputs: [own], limits, dot4: false, residual }),
    (e: unknown) => e instanceof FcmError && e.kind === 'unsupported' && /takes no folded residual Add/.test(e.message));
  // A 1x1 map: the pointwise split-K kernel, without one.
  const x1 = act(r, 'x', 'int8', [1, 8, 1, 1], 0.05, 1), r1 = act(r, 'r', 'int8', [1, 8, 1, 1], 0.1, 2);
  const o1 = act(r, 'own', 'int8', [1, 8, 1, 1], 0.1, -3, false), s1 = act(r, 'sum', 'int8', [1, 8, 1, 1], 0.1, 0, false);
  const pw = node('Conv', ['x', 'w', 'b', 'r'], { kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 });
  assert.throws(() => int8KernelFor({ node: pw, inputs: [x1, weights(r, 'int8', [8, 8, 1, 1]), biasT(r, 8), r1], outputs: [o1], limits, dot4: false, residual: { index: 3, sum: s1, attrs: {} } }),
    (e: unknown) => e instanceof FcmError && e.kind === 'unsupported' && /split-K/.test(e.message));
});
