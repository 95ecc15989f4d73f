// kernels/conv-transpose.ts against a float64 scatter reference (each input pixel adds its weighted window to
// the output, the definition), with strides, dilations, groups, asymmetric pads, output_padding, bias, and pads
// derived from auto_pad and from output_shape.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeDevice } from './fused-harness.js';
import { randomF32 } from './reference.js';
import { numelOf } from './reference-ops.js';
import { assertClose, runLayer } from './layer-harness.js';

after(closeDevice);

interface Case { x: number[]; w: number[]; group?: number; s?: number[]; d?: number[]; pads?: number[]; op?: number[]; bias?: boolean; out: number[]; attrs?: Record<string, unknown> }

/** Scatter form: out[n, g*MG + m, iy*sh - pt + ky*dh, ix*sw - pl + kx*dw] += x[n, c, iy, ix] * w[c, m, ky, kx]. */
function convTransposeRef(c: Case, x: Float32Array, wt: Float32Array, bias: Float32Array | undefined, pads: number[]): Float64Array {
  const [N, C, H, W] = c.x, [, MG, KH, KW] = c.w, group = c.group ?? 1, [sh, sw] = c.s ?? [1, 1], [dh, dw] = c.d ?? [1, 1];
  const [, M, HO, WO] = c.out, CG = C / group;
  const out = new Float64Array(numelOf(c.out));
  for (let n = 0; n < N; n++) for (let m = 0; m < M; m++) for (let i = 0; i < HO * WO; i++) out[(n * M + m) * HO * WO + i] = bias ? bias[m] : 0;
  for (let n = 0; n < N; n++) for (let ci = 0; ci < C; ci++) for (let iy = 0; iy < H; iy++) for (let ix = 0; ix < W; ix++) {
    const g = Math.floor(ci / CG);
    for (let m = 0; m < MG; m++) for (let ky = 0; ky < KH; ky++) for (let kx = 0; kx < KW; kx++) {
      const oy = iy * sh - pads[0] + ky * dh, ox = ix * sw - pads[1] + kx * dw;
      if (oy < 0 || oy >= HO || ox < 0 || ox >= WO) continue;
      out[((n * M + g * MG + m) * HO + oy) * WO + ox] += x[((n * C + ci) * H + iy) * W + ix] * wt[((ci * MG + m) * KH + ky) * KW + kx];
    }
  }
  return out;
}

const cases: [string, Case, number[]][] = [
  ['3x3 s2 pads 1 output_padding 1', { x: [1, 3, 5, 4], w: [3, 2, 3, 3], s: [2, 2], pads: [1, 1, 1, 1], op: [1, 1], out: [1, 2, 10, 8], bias: true }, [1, 1, 1, 1]],
  ['2x2 s2, 2 groups, batch 2', { x: [2, 4, 3, 5], w: [4, 3, 2, 2], group: 2, s: [2, 2], out: [2, 6, 6, 10], bias: true }, [0, 0, 0, 0]],
  ['3x2 s3 dilation 2, asymmetric pads', { x: [1, 2, 4, 3], w: [2, 3, 3, 2], s: [3, 2], d: [2, 1], pads: [0, 2, 1, 0], out: [1, 3, 13, 4] }, [0, 2, 1, 0]],
  ['2x2 s2, 16 channels to 1 (segmentation head)', { x: [1, 16, 7, 6], w: [16, 1, 2, 2], s: [2, 2], out: [1, 1, 14, 12], bias: true }, [0, 0, 0, 0]],
  ['3x3 s2 auto_pad SAME_UPPER', { x: [1, 2, 5, 5], w: [2, 1, 3, 3], s: [2, 2], out: [1, 1, 10, 10], attrs: { auto_pad: 'SAME_UPPER' } }, [0, 0, 1, 1]],
  ['3x3 s2 output_shape 9x10', { x: [1, 2, 5, 5], w: [2, 1, 3, 3], s: [2, 2], out: [1, 1, 9, 10], attrs: { output_shape: [9, 10] } }, [1, 1, 1, 0]],
];

let seed = 1500;
for (const [label, c, pads] of cases) {
  test(`ConvTranspose ${label}: [${c.x}] * [${c.w}] -> [${c.out}]`, async () => {
    const x = { data: randomF32(numelOf(c.x), seed++), shape: c.x };
    const wt = { data: randomF32(numelOf(c.w), seed++), shape: c.w };
    const M = c.out[1];
    const bias = c.bias ? { data: randomF32(M, seed++), shape: [M] } : null;
    const attrs: Record<string, unknown> = { kernel_shape: c.w.slice(2), strides: c.s ?? [1, 1], group: c.group ?? 1, ...c.attrs };
    if (c.d) attrs.dilations = c.d;
    if (c.pads) attrs.pads = c.pads;
    if (c.op) attrs.output_padding = c.op;
    const [got] = await runLayer({ op: 'ConvTranspose', attrs, inputs: bias ? [x, wt, bias] : [x, wt], outputShapes: [c.out] });
    // Sums of <= 16 * 9 products of values in [-1, 1] in float32: rounding ~1e-6, far under assertClose's 1e-4.
    assertClose(got, convTransposeRef(c, x.data, wt.data, bias?.data, pads), label);
  });
}

test('ConvTranspose refuses an output shape its attributes do not give, and 1-D input', async () => {
  const x = { data: randomF32(50, 1), shape: [1, 2, 5, 5] }, wt = { data: randomF32(18, 2), shape: [2, 1, 3, 3] };
  await assert.rejects(runLayer({ op: 'ConvTranspose', attrs: { strides: [2, 2] }, inputs: [x, wt], outputShapes: [[1, 1, 10, 10]] }), /does not match/);
  await assert.rejects(runLayer({ op: 'ConvTranspose', inputs: [{ data: randomF32(10, 3), shape: [1, 2, 5] }, { data: randomF32(6, 4), shape: [2, 1, 3] }], outputShapes: [[1, 1, 7]] }), /2-D/);
});

test('pads from auto_pad and output_shape are onnxruntime\'s: one weight at tap (0, 0) shows where input (1, 1) lands', async () => {
  const ort = await import('onnxruntime-node');
  const { GraphBuilder } = await import('../../fixtures/ir-builder.js');
  const { exportOnnx } = await import('../../converters/onnx/export.js');
  const { convTranspose } = await import('../../kernels/conv-transpose.js');
  const { defaultLimits } = await import('../../kernels/program.js');
  for (const attrs of [{ auto_pad: 'SAME_UPPER' }, { auto_pad: 'SAME_LOWER' }, { output_shape: [9, 10] }, { output_shape: [9, 10], auto_pad: 'SAME_UPPER' }] as Record<string, unknown>[]) {
    const b = new GraphBuilder('ct', 1);
    const x = b.input('x', [1, 1, 5, 5]);
    const w = b.constant('w', [1, 1, 3, 3], Float32Array.from({ length: 9 }, (_, i) => (i === 0 ? 1 : 0)));
    const out = attrs.output_shape ? (attrs.output_shape as number[]) : [10, 10];
    const all = { kernel_shape: [3, 3], strides: [2, 2], ...attrs } as never;
    const y = b.node('ConvTranspose', [x, w], [1, 1, ...out], all);
    const s = await ort.InferenceSession.create(exportOnnx(b.build([y])));
    const r = await s.run({ x: new ort.Tensor('float32', Float32Array.from({ length: 25 }, (_, i) => i + 1), [1, 1, 5, 5]) });
    await s.release();
    const W = (r[y].dims as number[])[3];
    const at = (r[y].data as Float32Array).indexOf(7); // x[1][1] = 7 lands at (2 - pad_top, 2 - pad_left)
    const p = convTranspose({ node: { name: 'ct', op: 'ConvTranspose', inputs: ['x', 'w'], attrs: all }, inputShapes: [[1, 1, 5, 5], [1, 1, 3, 3]], outputShapes: [[1, 1, ...out]], limits: defaultLimits });
    const ours = [/PT: i32 = (-?\d+)i/, /PL: i32 = (-?\d+)i/].map((re) => Number(re.exec(p.wgsl)![1]));
    assert.deepEqual(ours, [2 - Math.floor(at / W), 2 - (at % W)], JSON.stringify(attrs));
  }
});
