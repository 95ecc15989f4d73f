// Convolution kernels (kernels/conv2d.ts, depthwise.ts, pointwise.ts) against reference.ts's conv2d over shape
// sweeps: odd sizes, stride 2, channel counts that are not multiples of 4 or of the tiles, 1x1 spatial,
// batch > 1, every epilogue activation, bias and residual present and absent.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeDevice } from './fused-harness.js';
import { activation, conv2d, randomF32 } from './reference.js';
import { type LayerCase, assertClose, programsOf, runLayer } from './layer-harness.js';

after(closeDevice);

interface ConvCase {
  n: number; c: number; h: number; w: number; f: number; k: [number, number];
  stride?: number; pads?: [number, number, number, number]; dilation?: number; group?: number;
  bias?: boolean; residual?: boolean; act?: string; params?: number[];
  /** Which kernel the registry must pick. */
  expect: 'pw' | 'dw' | 'general';
}

let seed = 1;
async function check(cc: ConvCase): Promise<void> {
  const group = cc.group ?? 1;
  const s = cc.stride ?? 1, d = cc.dilation ?? 1, pads = cc.pads ?? [0, 0, 0, 0];
  const x = randomF32(cc.n * cc.c * cc.h * cc.w, seed++);
  const wt = randomF32(cc.f * (cc.c / group) * cc.k[0] * cc.k[1], seed++);
  const b = cc.bias ? randomF32(cc.f, seed++) : undefined;
  const ref = conv2d({ data: x, shape: [cc.n, cc.c, cc.h, cc.w] }, { data: wt, shape: [cc.f, cc.c / group, cc.k[0], cc.k[1]] }, b,
    { strides: [s, s], pads, dilations: [d, d], group });
  const res = cc.residual ? randomF32(ref.data.length, seed++) : undefined;
  const f = activation(cc.act ?? '', cc.params);
  for (let i = 0; i < ref.data.length; i++) ref.data[i] = f(ref.data[i]) + (res ? res[i] : 0);
  const attrs: Record<string, unknown> = { kernel: cc.k, strides: [s, s], pads, dilations: [d, d], group };
  if (cc.act) { attrs.activation = cc.act; if (cc.params) attrs.activationParams = cc.params; }
  const lc: LayerCase = {
    op: 'Conv', attrs,
    inputs: [
      { data: x, shape: [cc.n, cc.c, cc.h, cc.w] }, { data: wt, shape: [cc.f, cc.c / group, cc.k[0], cc.k[1]] },
      b ? { data: b, shape: [cc.f] } : null, res ? { data: res, shape: [...ref.shape] } : null,
    ],
    outputShapes: [[...ref.shape]],
  };
  const [p] = await programsOf(lc);
  const kind = p.cacheKey.startsWith('pointwise') ? 'pw' : p.cacheKey.startsWith('depthwise') ? 'dw' : 'general';
  assert.equal(kind, cc.expect, `kernel chosen for ${JSON.stringify(cc)}`);
  const [got] = await runLayer(lc);
  assertClose(got, ref.data, JSON.stringify(cc));
}

const cases: ConvCase[] = [
  // pointwise: odd sizes, channels not multiples of 4 or of the tile, batch 2, residual
  { n: 2, c: 5, h: 9, w: 7, f: 7, k: [1, 1], bias: true, residual: true, act: 'Clip', params: [0, 6], expect: 'pw' },
  // pointwise 1x1 spatial (squeeze-excite), more channels than one staging chunk
  { n: 2, c: 37, h: 1, w: 1, f: 19, k: [1, 1], bias: true, act: 'HardSigmoid', params: [1 / 6, 0.5], expect: 'pw' },
  // pointwise with register tiles RF=2, RP=4 and partial tiles at both edges
  { n: 1, c: 40, h: 13, w: 11, f: 70, k: [1, 1], act: 'HardSwish', expect: 'pw' },
  { n: 1, c: 3, h: 2, w: 3, f: 600, k: [1, 1], bias: true, act: 'Sigmoid', expect: 'pw' },
  // pointwise vec4 kernel (P % 4 == 0, enough threads): one filter per thread, and 8 filters per thread
  { n: 2, c: 6, h: 64, w: 64, f: 8, k: [1, 1], bias: true, residual: true, act: 'Relu', expect: 'pw' },
  { n: 1, c: 5, h: 128, w: 128, f: 64, k: [1, 1], bias: true, act: 'HardSwish', expect: 'pw' },
  // vec4 kernel with weights staged in workgroup memory (4 filters per thread), channels past one 32-chunk
  { n: 2, c: 40, h: 64, w: 64, f: 64, k: [1, 1], bias: true, residual: true, act: 'Clip', params: [0, 6], expect: 'pw' },
  // pointwise split-K with 16 threads per output, channel-major (1x1 spatial, squeeze-excite / GEMV shape)
  { n: 2, c: 300, h: 1, w: 1, f: 19, k: [1, 1], bias: true, act: 'Relu', expect: 'pw' },
  // depthwise: K 3/5/7, stride 1/2, symmetric and asymmetric pads, dilation
  { n: 1, c: 6, h: 9, w: 9, f: 6, k: [3, 3], pads: [1, 1, 1, 1], group: 6, bias: true, act: 'Relu', expect: 'dw' },
  { n: 2, c: 5, h: 11, w: 8, f: 5, k: [3, 3], stride: 2, pads: [0, 0, 1, 1], group: 5, bias: true, residual: false, act: 'Clip', params: [0, 6], expect: 'dw' },
  { n: 1, c: 7, h: 13, w: 12, f: 7, k: [5, 5], stride: 2, pads: [2, 2, 2, 2], group: 7, act: 'SiLU', expect: 'dw' },
  { n: 1, c: 3, h: 15, w: 14, f: 3, k: [7, 7], pads: [6, 6, 6, 6], dilation: 2, group: 3, bias: true, residual: true, act: 'LeakyRelu', params: [0.1], expect: 'dw' },
  { n: 2, c: 9, h: 1, w: 1, f: 9, k: [3, 3], pads: [1, 1, 1, 1], group: 9, act: 'Tanh', expect: 'dw' },
  // general: stems (3 input channels, stride 2), grouped (RegNet-like), strided 1x1, no padding
  { n: 2, c: 3, h: 17, w: 15, f: 8, k: [3, 3], stride: 2, pads: [1, 1, 1, 1], bias: true, act: 'Clip', params: [0, 6], expect: 'general' },
  { n: 1, c: 8, h: 9, w: 10, f: 12, k: [3, 3], pads: [1, 1, 1, 1], group: 4, bias: true, residual: true, act: 'Relu', expect: 'general' },
  { n: 1, c: 6, h: 9, w: 9, f: 5, k: [1, 1], stride: 2, expect: 'general' },
  { n: 1, c: 4, h: 8, w: 7, f: 6, k: [3, 2], stride: 1, expect: 'general' },
  { n: 1, c: 4, h: 6, w: 6, f: 8, k: [3, 3], pads: [1, 1, 1, 1], group: 4, expect: 'general' },
];

for (const c of cases) test(`Conv ${c.expect} ${JSON.stringify(c)}`, async () => { await check(c); });

test('pointwise fits a small workgroup storage limit by shrinking its channel chunk', async () => {
  const { pointwise } = await import('../../kernels/pointwise.js');
  const { newAttrs } = await import('../../src/graph/ir.js');
  const node = { name: 'pw', op: 'Conv', inputs: ['x', 'w'], attrs: newAttrs({ kernel: [1, 1] }) };
  const p = pointwise({ node, inputShapes: [[1, 600, 1, 1], [600, 600, 1, 1]], outputShapes: [[1, 600, 1, 1]], limits: { maxComputeWorkgroupStorageSize: 4096, maxComputeInvocationsPerWorkgroup: 256 } });
  assert.ok(p.workgroupStorageBytes <= 4096, `${p.workgroupStorageBytes} bytes`);
});

test('a conv whose weights do not match its input is refused with the node named', async () => {
  await assert.rejects(programsOf({
    op: 'Conv', attrs: { kernel: [3, 3] },
    inputs: [{ data: new Float32Array(2 * 4 * 4), shape: [1, 2, 4, 4] }, { data: new Float32Array(4 * 3 * 9), shape: [4, 3, 3, 3] }],
    outputShapes: [[1, 4, 2, 2]],
  }), /conv_test.*weights \[4,3,3,3\] do not match 2 input channels/);
});

test('pointwise kernel choice: the cases above reach the vec4 (staged and global weights) and split-K kernels', async () => {
  const { chooseDot } = await import('../../kernels/pointwise.js');
  const limits = { maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256 };
  const g = (N: number, C: number, F: number, P: number) => ({ N, C, F, P, hasBias: true, hasRes: false, act: { fn: '', key: '' } });
  assert.deepEqual(chooseDot(g(2, 40, 64, 4096), limits), { kind: 'vec4', rf: 4, threads: 128 });
  assert.deepEqual(chooseDot(g(1, 5, 64, 16384), limits), { kind: 'vec4', rf: 8, threads: 128 });
  assert.deepEqual(chooseDot(g(2, 6, 8, 4096), limits), { kind: 'vec4', rf: 1, threads: 128 });
  assert.deepEqual(chooseDot(g(2, 300, 19, 1), limits), { kind: 'splitK', ks: 32 });
  // Odd spatial sizes cannot use vec4 loads.
  assert.equal(chooseDot(g(1, 40, 70, 143), limits).kind, 'splitK');
});
