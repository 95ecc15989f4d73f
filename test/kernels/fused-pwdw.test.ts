// FusedPwDw against the two convolutions run separately (test/kernels/reference.ts), on the device (lavapipe in CI).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkCase } from './fused-run.js';
import { closeDevice } from './fused-harness.js';
import { describeCase, type FusedCase } from './fused-check.js';
import { fusedPwDw } from '../../kernels/fused-pwdw.js';
import { newAttrs } from '../../src/graph/ir.js';
import { FcmError } from '../../src/errors.js';

after(closeDevice);

const relu6 = { act1: 'Clip', params1: [0, 6] };
const cases: FusedCase[] = [
  { kind: 'pwdw', n: 1, c: 5, h: 9, w: 7, m: 6, k: 3, stride: 1, pads: [1, 1, 1, 1], bias1: true, bias2: true, ...relu6, tiles: { tileFilters1: 4, tileH: 4, tileW: 4 } },
  // stride 2, odd sizes, channels not multiples of 4 or of the tile
  { kind: 'pwdw', n: 1, c: 3, h: 9, w: 9, m: 7, k: 3, stride: 2, pads: [1, 1, 1, 1], bias1: true, bias2: true, ...relu6, tiles: { tileFilters1: 4, tileH: 2, tileW: 3 } },
  // K=5, batch 2, residual, HardSwish, tiles larger than the output (clamped to it)
  { kind: 'pwdw', n: 2, c: 6, h: 11, w: 6, m: 9, k: 5, stride: 1, pads: [2, 2, 2, 2], bias1: true, bias2: true, act1: 'HardSwish', act2: 'HardSwish', residual: true, tiles: { tileFilters1: 8, tileH: 16, tileW: 16 } },
  // K=7 stride 2; the planner's tile does not fit: clamped to 4 KiB and 64 threads
  { kind: 'pwdw', n: 1, c: 6, h: 13, w: 13, m: 10, k: 7, stride: 2, pads: [3, 3, 3, 3], bias1: true, bias2: true, ...relu6, tiles: { tileFilters1: 512, tileH: 64, tileW: 64 }, limits: { maxComputeWorkgroupStorageSize: 4096, maxComputeInvocationsPerWorkgroup: 64 } },
  // the same tile against the device's own limits (32 KiB on lavapipe)
  { kind: 'pwdw', n: 1, c: 20, h: 14, w: 14, m: 40, k: 7, stride: 1, pads: [3, 3, 3, 3], bias1: true, tiles: { tileFilters1: 512, tileH: 64, tileW: 64 } },
  // 1x1 spatial (squeeze-excite-sized), more input channels than one staging chunk
  { kind: 'pwdw', n: 2, c: 37, h: 1, w: 1, m: 19, k: 3, stride: 1, pads: [1, 1, 1, 1], bias1: true, bias2: true, act1: 'Sigmoid', tiles: { tileFilters1: 5, tileH: 1, tileW: 1 } },
  // asymmetric ('SAME'-style) pads with stride 2, even size
  { kind: 'pwdw', n: 1, c: 4, h: 8, w: 8, m: 8, k: 3, stride: 2, pads: [0, 0, 1, 1], bias2: true, act2: 'Relu', tiles: { tileFilters1: 8, tileH: 4, tileW: 4 } },
  // dilation 2, no biases, SiLU / LeakyRelu
  { kind: 'pwdw', n: 1, c: 7, h: 10, w: 9, m: 5, k: 3, stride: 1, pads: [2, 2, 2, 2], dilation: 2, act1: 'SiLU', act2: 'LeakyRelu', params2: [0.1], tiles: { tileFilters1: 2, tileH: 3, tileW: 5 } },
  // smallest tiles: one filter, one position
  { kind: 'pwdw', n: 1, c: 3, h: 5, w: 5, m: 3, k: 5, stride: 2, pads: [2, 2, 2, 2], bias1: true, ...relu6, tiles: { tileFilters1: 1, tileH: 1, tileW: 1 } },
  // no padding (valid), stride 2, K=5, output 2x3
  { kind: 'pwdw', n: 1, c: 9, h: 7, w: 9, m: 6, k: 5, stride: 2, bias1: true, bias2: true, act1: 'HardSigmoid', params1: [0.2, 0.5], tiles: { tileFilters1: 3, tileH: 8, tileW: 2 } },
];

// Depthwise outputs per invocation (dwRow): tails of a tile row (TW 7 with 3 and 4), stride 2 with 4 (the span
// reaches past the tile), dilation, the tile's last filter's last row (clamped reads), one output per invocation.
cases.push(
  { kind: 'pwdw', n: 2, c: 5, h: 9, w: 15, m: 6, k: 3, stride: 1, pads: [1, 1, 1, 1], bias1: true, bias2: true, ...relu6, residual: true, tiles: { tileFilters1: 4, tileH: 4, tileW: 7, dwRow: 3 } },
  { kind: 'pwdw', n: 1, c: 5, h: 9, w: 15, m: 6, k: 3, stride: 1, pads: [1, 1, 1, 1], bias2: true, tiles: { tileFilters1: 8, tileH: 3, tileW: 7, dwRow: 4 } },
  { kind: 'pwdw', n: 1, c: 4, h: 17, w: 17, m: 5, k: 3, stride: 2, pads: [1, 1, 1, 1], bias1: true, ...relu6, tiles: { tileFilters1: 4, tileH: 3, tileW: 5, dwRow: 4 } },
  { kind: 'pwdw', n: 1, c: 3, h: 12, w: 12, m: 4, k: 5, stride: 1, pads: [4, 4, 4, 4], dilation: 2, act2: 'Relu', tiles: { tileFilters1: 4, tileH: 4, tileW: 6, dwRow: 4 } },
  { kind: 'pwdw', n: 1, c: 6, h: 10, w: 10, m: 7, k: 3, stride: 2, pads: [1, 1, 1, 1], bias2: true, tiles: { tileFilters1: 4, tileH: 5, tileW: 5, dwRow: 1 } },
  // Several depthwise items per thread: each item's sums start from zero. The 24x24 tile with 3 halo positions per
  // thread (enough workgroups that it is not split) is what showed it: lavapipe kept the previous item's sums.
  { kind: 'pwdw', n: 17, c: 4, h: 48, w: 48, m: 16, k: 3, stride: 1, pads: [1, 1, 1, 1], bias2: true, tiles: { tileFilters1: 8, tileH: 24, tileW: 24 } },
  { kind: 'pwdw', n: 2, c: 5, h: 16, w: 16, m: 8, k: 3, stride: 2, pads: [1, 1, 1, 1], bias1: true, ...relu6, tiles: { tileFilters1: 8, tileH: 8, tileW: 8 }, limits: { maxComputeInvocationsPerWorkgroup: 32 } },
  // Workgroup arrays of odd lengths summing to exactly lavapipe's 32 KiB: Dawn rounds each up to 16 bytes.
  { kind: 'pwdw', n: 33, c: 16, h: 22, w: 34, m: 60, k: 3, stride: 1, pads: [1, 1, 1, 1], bias2: true, tiles: { tileFilters1: 30, tileH: 11, tileW: 17 } },
  // x loads one channel at a time (xUnroll 1) rather than four.
  { kind: 'pwdw', n: 1, c: 7, h: 9, w: 9, m: 6, k: 3, stride: 1, pads: [1, 1, 1, 1], bias1: true, ...relu6, tiles: { tileFilters1: 4, tileH: 4, tileW: 4, xUnroll: 1 } },
  // Several halo positions per thread (haloPerThread: 3 each on 32 threads, the last round partly past the 9x9 halo), a
  // last filter block past M (10 filters in blocks of 4 after the split for parallelism), a channel chunk past C
  // (13 channels in one chunk of 16) loaded four at a time; then one channel at a time with 2 positions per thread.
  { kind: 'pwdw', n: 2, c: 13, h: 12, w: 11, m: 10, k: 3, stride: 2, pads: [1, 1, 1, 1], bias1: true, bias2: true, act1: 'HardSwish', act2: 'Relu', tiles: { tileFilters1: 6, tileH: 6, tileW: 5, haloPerThread: 3 } },
  { kind: 'pwdw', n: 1, c: 8, h: 10, w: 10, m: 12, k: 3, stride: 1, pads: [1, 1, 1, 1], bias2: true, tiles: { tileFilters1: 12, tileH: 5, tileW: 10, haloPerThread: 5, xUnroll: 1 } },
  // Four channels at a time without the channel guard (16 = one chunk of 16), 3 positions per thread; then 37
  // channels in two chunks of 20, the second partly past C.
  { kind: 'pwdw', n: 2, c: 16, h: 12, w: 11, m: 10, k: 3, stride: 2, pads: [1, 1, 1, 1], bias1: true, bias2: true, tiles: { tileFilters1: 6, tileH: 6, tileW: 5, haloPerThread: 3 } },
  { kind: 'pwdw', n: 1, c: 37, h: 9, w: 9, m: 7, k: 3, stride: 1, pads: [1, 1, 1, 1], bias1: true, ...relu6, tiles: { tileFilters1: 7, tileH: 4, tileW: 4, xUnroll: 4 } },
);

for (const c of cases) {
  test(`FusedPwDw ${describeCase(c)}`, async () => { await checkCase(c); });
}

test('FusedPwDw clamps an oversized tile and reports what it uses', async () => {
  const built = await checkCase(cases[3]);
  assert.ok(built.program.workgroupStorageBytes <= 4096);
  assert.ok(built.program.workgroupSize[0] <= 64);
  assert.match(built.program.cacheKey, /FB\d+TH\d+TW\d+/);
});

test('FusedPwDw refuses inconsistent shapes with a clear error', () => {
  const node = { name: 'f1', op: 'FusedPwDw', inputs: ['x', 'w1', '', 'w2', '', ''], attrs: newAttrs({ kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1] }) };
  const limits = { maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256 };
  const ok = { node, inputShapes: [[1, 4, 5, 5], [8, 4, 1, 1], undefined, [8, 1, 3, 3], undefined, undefined], outputShapes: [[1, 8, 5, 5]], limits };
  assert.doesNotThrow(() => fusedPwDw(ok));
  const bad = (patch: object, re: RegExp) => assert.throws(() => fusedPwDw({ ...ok, ...patch }), (e: unknown) => e instanceof FcmError && re.test(e.message));
  bad({ inputShapes: [[1, 4, 5, 5], [8, 3, 1, 1], undefined, [8, 1, 3, 3], undefined, undefined] }, /f1.*pointwise weights/);
  bad({ inputShapes: [[1, 4, 5, 5], [8, 4, 1, 1], undefined, [8, 2, 3, 3], undefined, undefined] }, /depth multiplier/);
  bad({ outputShapes: [[1, 8, 4, 4]] }, /output shape/);
  bad({ inputShapes: [[1, 0, 5, 5], [8, 0, 1, 1], undefined, [8, 1, 3, 3], undefined, undefined] }, /f1.*input 'x' has no channels/);
  bad({ node: { ...node, attrs: newAttrs({ kernel: [3, 3], pads: [1, 1, 1, 1], activation1: 'Gelu' }) } }, /activation 'Gelu'/);
});

// Infinite inputs at the first position (channel 0) and the last (last channel) of each image: the positions a thread reads for a slot past
// the halo or in the padding (offset 0) and the image's last one. Clip bounds the intermediate, so the layers'
// result is finite everywhere; a zero weight or a masked slot times inf would show as NaN.
test('FusedPwDw: infinite inputs give the layers\' result, not NaN', async () => {
  const { buildCase } = await import('./fused-check.js');
  const { getDevice, limitsOf, runProgram } = await import('./fused-harness.js');
  const { conv2d, epilogue } = await import('./reference.js');
  const device = await getDevice();
  for (const c of [
    { kind: 'pwdw', n: 2, c: 13, h: 12, w: 11, m: 10, k: 3, stride: 2, pads: [1, 1, 1, 1], bias1: true, bias2: true, ...relu6, tiles: { tileFilters1: 6, tileH: 6, tileW: 5, haloPerThread: 3 } },
    { kind: 'pwdw', n: 1, c: 16, h: 10, w: 10, m: 6, k: 3, stride: 1, pads: [1, 1, 1, 1], bias2: true, ...relu6, tiles: { tileFilters1: 6, tileH: 5, tileW: 5, haloPerThread: 2, xUnroll: 4 } },
  ] as FusedCase[]) {
    const b = buildCase(c, limitsOf(device), { reference: false });
    const L = b.layers;
    const [N, C, H, W] = L.x.shape;
    // One channel per position (inf in several channels of one position sums to NaN in the layers too).
    for (let n = 0; n < N; n++) {
      L.x.data[n * C * H * W] = Infinity;
      L.x.data[((n + 1) * C - 1) * H * W + H * W - 1] = -Infinity;
    }
    const mid = epilogue(conv2d(L.x, L.w1, L.b1), 'Clip', [0, 6]);
    const want = conv2d(mid, L.w2, L.b2, { strides: [c.stride!, c.stride!], pads: c.pads, group: c.m }).data;
    const got = await runProgram(device, b.program, b.inputs, want.length);
    for (let i = 0; i < want.length; i++) {
      assert.ok(Number.isFinite(want[i]), `reference ${i} finite`);
      assert.ok(Math.abs(got[i] - want[i]) <= 1e-4 * Math.max(1, Math.abs(want[i])), `${describeCase(c)} output ${i}: got ${got[i]}, expected ${want[i]}`);
    }
  }
});
