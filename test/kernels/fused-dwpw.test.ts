// FusedDwPw against the two convolutions run separately (test/kernels/reference.ts), on the device (lavapipe in CI).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkCase } from './fused-run.js';
import { closeDevice } from './fused-harness.js';
import { describeCase, type FusedCase } from './fused-check.js';
import { fusedDwPw } from '../../kernels/fused-dwpw.js';
import { newAttrs } from '../../src/graph/ir.js';
import { FcmError } from '../../src/errors.js';

after(closeDevice);

const relu6 = { act1: 'Clip', params1: [0, 6] };
const cases: FusedCase[] = [
  { kind: 'dwpw', n: 1, c: 6, h: 9, w: 7, f: 5, k: 3, stride: 1, pads: [1, 1, 1, 1], bias1: true, bias2: true, ...relu6, tiles: { tileFilters1: 4, tileFilters2: 4, tileH: 4, tileW: 4 } },
  // stride 2, odd sizes, channels not multiples of 4 or of the tiles; several filter blocks and channel chunks
  { kind: 'dwpw', n: 1, c: 11, h: 9, w: 9, f: 13, k: 3, stride: 2, pads: [1, 1, 1, 1], bias1: true, bias2: true, ...relu6, tiles: { tileFilters1: 4, tileFilters2: 6, tileH: 2, tileW: 3 } },
  // K=5, batch 2, residual, HardSwish; tiles larger than the tensor
  { kind: 'dwpw', n: 2, c: 7, h: 11, w: 6, f: 7, k: 5, stride: 1, pads: [2, 2, 2, 2], bias1: true, bias2: true, act1: 'HardSwish', residual: true, tiles: { tileFilters1: 64, tileFilters2: 64, tileH: 16, tileW: 16 } },
  // K=7 stride 2, the planner's tile clamped to 4 KiB and 64 threads
  { kind: 'dwpw', n: 1, c: 10, h: 13, w: 13, f: 12, k: 7, stride: 2, pads: [3, 3, 3, 3], bias1: true, bias2: true, ...relu6, tiles: { tileFilters1: 512, tileFilters2: 512, tileH: 64, tileW: 64 }, limits: { maxComputeWorkgroupStorageSize: 4096, maxComputeInvocationsPerWorkgroup: 64 } },
  // the same against the device's own limits
  { kind: 'dwpw', n: 1, c: 40, h: 14, w: 14, f: 24, k: 7, stride: 1, pads: [3, 3, 3, 3], bias2: true, tiles: { tileFilters1: 512, tileFilters2: 512, tileH: 64, tileW: 64 } },
  // 1x1 spatial, many channels
  { kind: 'dwpw', n: 2, c: 37, h: 1, w: 1, f: 19, k: 3, stride: 1, pads: [1, 1, 1, 1], bias1: true, bias2: true, act2: 'Sigmoid', tiles: { tileFilters1: 16, tileFilters2: 8, tileH: 1, tileW: 1 } },
  // asymmetric pads, stride 2, even size
  { kind: 'dwpw', n: 1, c: 8, h: 8, w: 8, f: 6, k: 3, stride: 2, pads: [0, 0, 1, 1], bias1: true, act1: 'Relu', act2: 'Relu', tiles: { tileFilters1: 8, tileFilters2: 8, tileH: 4, tileW: 4 } },
  // dilation 2, no biases, SiLU / LeakyRelu
  { kind: 'dwpw', n: 1, c: 5, h: 10, w: 9, f: 7, k: 3, stride: 1, pads: [2, 2, 2, 2], dilation: 2, act1: 'SiLU', act2: 'LeakyRelu', params2: [0.1], tiles: { tileFilters1: 2, tileFilters2: 3, tileH: 3, tileW: 5 } },
  // smallest tiles
  { kind: 'dwpw', n: 1, c: 3, h: 5, w: 5, f: 2, k: 5, stride: 2, pads: [2, 2, 2, 2], bias1: true, ...relu6, tiles: { tileFilters1: 1, tileFilters2: 1, tileH: 1, tileW: 1 } },
  // valid padding, stride 2, K=5
  { kind: 'dwpw', n: 1, c: 9, h: 7, w: 9, f: 6, k: 5, stride: 2, bias1: true, bias2: true, act1: 'HardSigmoid', params1: [0.2, 0.5], residual: true, tiles: { tileFilters1: 3, tileFilters2: 4, tileH: 8, tileW: 2 } },
];

for (const c of cases) {
  test(`FusedDwPw ${describeCase(c)}`, async () => { await checkCase(c); });
}

test('FusedDwPw clamps an oversized tile within the given limits', async () => {
  const built = await checkCase(cases[3]);
  assert.ok(built.program.workgroupStorageBytes <= 4096);
  assert.ok(built.program.workgroupSize[0] <= 64);
});

test('FusedDwPw filter groups: threads share a small tile\'s positions (FG > 1, uneven split too), not a large one', async () => {
  const base = { kind: 'dwpw' as const, n: 1, c: 24, h: 14, w: 14, k: 3, stride: 1, pads: [1, 1, 1, 1] as [number, number, number, number], bias1: true, bias2: true, ...relu6 };
  // Batch 17 (a leftover of when the kernel split filters for parallelism; it keeps the planner's tiles now).
  // 16 positions, 8 vec4s of filters: 8 groups of one vec4 each.
  const small = await checkCase({ ...base, n: 17, f: 32, tiles: { tileFilters1: 8, tileFilters2: 32, tileH: 4, tileW: 4 } });
  assert.match(small.program.cacheKey, /FG8\|/);
  // 16 positions, 5 vec4s (18 filters) over groups: the last group's second vec4 is past FB4.
  const uneven = await checkCase({ ...base, n: 17, f: 18, tiles: { tileFilters1: 8, tileFilters2: 18, tileH: 4, tileW: 4 } });
  assert.match(uneven.program.cacheKey, /FG5\|/);
  // A tile that fills the workgroup (16 positions, 16 threads at most): one group.
  const large = await checkCase({ ...base, n: 17, f: 8, tiles: { tileFilters1: 8, tileFilters2: 8, tileH: 4, tileW: 4 },
    limits: { maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 16 } });
  assert.match(large.program.cacheKey, /FG1\|/);
  // A tile of more positions than the workgroup has threads (64 on 32): two per thread, one group, no slices.
  const larger = await checkCase({ ...base, n: 1, f: 8, tiles: { tileFilters1: 8, tileFilters2: 8, tileH: 8, tileW: 8 },
    limits: { maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 32 } });
  assert.match(larger.program.cacheKey, /RP2T32FG1\|/);
});

test('FusedDwPw channel slices (splitK1): slices sum every KS-th channel of a chunk and add up; the last one stores', async () => {
  const base = { kind: 'dwpw' as const, k: 3, pads: [1, 1, 1, 1] as [number, number, number, number], bias1: true, bias2: true, ...relu6 };
  // 2 slices over 8 groups of a 4x4 tile, 13 channels in chunks of 5 (a chunk's channels not a multiple of the
  // slices), stride 2, batch 2, residual.
  const two = await checkCase({ ...base, n: 2, c: 13, h: 14, w: 14, f: 32, stride: 2, residual: true, tiles: { tileFilters1: 5, tileFilters2: 32, tileH: 4, tileW: 4, splitK1: 2 } });
  assert.match(two.program.cacheKey, /FG8KS2\|/);
  // 4 slices, 18 filters (the last group's second vec4 past FB4), a tile past the output's edge (7x7 in tiles of 2x4).
  const four = await checkCase({ ...base, n: 1, c: 37, h: 7, w: 7, f: 18, stride: 1, act2: 'HardSwish', tiles: { tileFilters1: 37, tileFilters2: 18, tileH: 2, tileW: 4, splitK1: 4 } });
  assert.match(four.program.cacheKey, /FG5KS4\|/);
  // 8 slices of 2 positions x 4 groups: 64 threads; filters in two blocks of 16 (F past FB).
  const eight = await checkCase({ ...base, n: 1, c: 64, h: 4, w: 4, f: 20, stride: 2, tiles: { tileFilters1: 32, tileFilters2: 16, tileH: 1, tileW: 2, splitK1: 8 } });
  assert.match(eight.program.cacheKey, /FG4KS8\|/);
});

test('dwpwSlices and forced slices: within 256 threads, the thread target, 8+ channels a slice and what fits', async () => {
  const { dwpwSlices } = await import('../../kernels/fused-dwpw.js');
  // ShuffleNetV2's 28x28 -> 14x14 116-channel module at batch 1: 112 workgroups of 64 threads.
  assert.equal(dwpwSlices(112, 64, 116, 1024), 4);
  assert.equal(dwpwSlices(112, 64, 116, 128), 2);
  assert.equal(dwpwSlices(112, 64, 24, 1024), 2);
  assert.equal(dwpwSlices(3584, 64, 116, 1024), 1);
  assert.equal(dwpwSlices(112, 64, 116, 1024, (ks) => ks <= 2), 2);
  const node = { name: 'f3', op: 'FusedDwPw', inputs: ['x', 'w1', '', 'w2', '', ''], attrs: newAttrs({ kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], tileH: 4, tileW: 4, tileFilters2: 32, splitK1: 4 }) };
  const limits = { maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256 };
  const args = { node, inputShapes: [[1, 16, 8, 8], [16, 1, 3, 3], undefined, [32, 16, 1, 1], undefined, undefined], outputShapes: [[1, 32, 8, 8]], limits };
  assert.throws(() => fusedDwPw(args), (e: unknown) => e instanceof FcmError && /f3.*splitK1 4: 512 threads exceed the device's 256/.test(e.message));
  const one = { ...args, limits: { ...limits, maxComputeInvocationsPerWorkgroup: 16 }, node: { ...node, attrs: newAttrs({ ...node.attrs, splitK1: 2 }) } };
  assert.throws(() => fusedDwPw(one), (e: unknown) => e instanceof FcmError && /channel slices need filter groups/.test(e.message));
});

test('FusedDwPw refuses inconsistent shapes with a clear error', () => {
  const node = { name: 'f2', op: 'FusedDwPw', inputs: ['x', 'w1', '', 'w2', 'b2', ''], attrs: newAttrs({ kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }) };
  const limits = { maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256 };
  const ok = { node, inputShapes: [[1, 4, 5, 5], [4, 1, 3, 3], undefined, [6, 4, 1, 1], [6], undefined], outputShapes: [[1, 6, 3, 3]], limits };
  assert.doesNotThrow(() => fusedDwPw(ok));
  const bad = (patch: object, re: RegExp) => assert.throws(() => fusedDwPw({ ...ok, ...patch }), (e: unknown) => e instanceof FcmError && re.test(e.message));
  bad({ inputShapes: [[1, 4, 5, 5], [4, 1, 3, 3], undefined, [6, 5, 1, 1], [6], undefined] }, /f2.*pointwise weights/);
  bad({ inputShapes: [[1, 4, 5, 5], [4, 1, 3, 3], undefined, [6, 4, 1, 1], [5], undefined] }, /bias 2/);
  bad({ inputShapes: [[1, 4, 5, 5], [4, 1, 5, 5], undefined, [6, 4, 1, 1], [6], undefined] }, /kernel \[3,3\] does not match/);
  bad({ outputShapes: [[1, 6, 5, 5]] }, /output shape/);
});
