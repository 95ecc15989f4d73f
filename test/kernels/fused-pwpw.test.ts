// FusedPwPw against the two convolutions run separately (test/kernels/reference.ts), on the device (lavapipe in CI).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkCase } from './fused-run.js';
import { closeDevice } from './fused-harness.js';
import { describeCase, type FusedCase } from './fused-check.js';
import { fusedPwPw } from '../../kernels/fused-pwpw.js';
import { newAttrs } from '../../src/graph/ir.js';
import { FcmError } from '../../src/errors.js';

after(closeDevice);

const cases: FusedCase[] = [
  { kind: 'pwpw', n: 1, c: 6, h: 9, w: 7, m: 10, f: 5, bias1: true, bias2: true, act1: 'Clip', params1: [0, 6], tiles: { tileFilters1: 4, tileFilters2: 4, tileH: 4, tileW: 4 } },
  // odd sizes, channels past several staging chunks and tiles, none a multiple of 4
  { kind: 'pwpw', n: 1, c: 37, h: 5, w: 3, m: 21, f: 13, bias1: true, bias2: true, act1: 'Relu', act2: 'HardSwish', tiles: { tileFilters1: 8, tileFilters2: 6, tileH: 2, tileW: 3 } },
  // batch 2, residual; tiles larger than the tensor
  { kind: 'pwpw', n: 2, c: 7, h: 6, w: 11, m: 9, f: 7, bias1: true, bias2: true, residual: true, tiles: { tileFilters1: 64, tileFilters2: 64, tileH: 16, tileW: 16 } },
  // the planner's tile clamped to 4 KiB and 64 threads
  { kind: 'pwpw', n: 1, c: 24, h: 13, w: 13, m: 40, f: 12, bias1: true, bias2: true, act1: 'Sigmoid', tiles: { tileFilters1: 512, tileFilters2: 512, tileH: 64, tileW: 64 }, limits: { maxComputeWorkgroupStorageSize: 4096, maxComputeInvocationsPerWorkgroup: 64 } },
  // the same against the device's own limits
  { kind: 'pwpw', n: 1, c: 48, h: 14, w: 14, m: 72, f: 24, bias2: true, act2: 'SiLU', tiles: { tileFilters1: 512, tileFilters2: 512, tileH: 64, tileW: 64 } },
  // 1x1 spatial (squeeze-excite), batch 2
  { kind: 'pwpw', n: 2, c: 33, h: 1, w: 1, m: 9, f: 33, bias1: true, bias2: true, act1: 'Relu', act2: 'HardSigmoid', params2: [0.2, 0.5], tiles: { tileFilters1: 4, tileFilters2: 16, tileH: 1, tileW: 1 } },
  // 1x1 map (squeeze-excite) with several filter blocks per image (1x1 kernel: FB = 10 of 300, 30 blocks) and a residual
  { kind: 'pwpw', n: 2, c: 200, h: 1, w: 1, m: 40, f: 300, bias1: true, bias2: true, residual: true, act1: 'SiLU', act2: 'Sigmoid', tiles: { tileFilters1: 16, tileFilters2: 32, tileH: 1, tileW: 1 } },
  // 1x1 with a wide intermediate (M > threads: several rounds of first-layer products; 3965 channels: 256 threads
  // per product, 16 values each, one product per round) and a 32-thread split forced (splitK1; rounds of 8 rows).
  // Staging arrays of odd lengths just under lavapipe's 32 KiB once each is rounded up to 16 bytes, as Dawn does.
  { kind: 'pwpw', n: 1, c: 3965, h: 1, w: 1, m: 3963, f: 2, tiles: { tileFilters1: 16, tileFilters2: 2, tileH: 1, tileW: 1 } },
  { kind: 'pwpw', n: 1, c: 24, h: 1, w: 1, m: 300, f: 20, bias1: true, act1: 'Relu', tiles: { tileFilters1: 16, tileFilters2: 16, tileH: 1, tileW: 1 } },
  { kind: 'pwpw', n: 2, c: 480, h: 1, w: 1, m: 20, f: 480, bias1: true, bias2: true, act1: 'SiLU', act2: 'Sigmoid', tiles: { tileFilters1: 20, tileFilters2: 32, tileH: 1, tileW: 1, splitK1: 32 } },
  { kind: 'pwpw', n: 2, c: 480, h: 1, w: 1, m: 20, f: 480, bias1: true, bias2: true, act1: 'SiLU', act2: 'Sigmoid', tiles: { tileFilters1: 20, tileFilters2: 32, tileH: 1, tileW: 1 } },
  // 1x1 with a residual, rows not a multiple of 4 in either layer (scalar loads).
  { kind: 'pwpw', n: 2, c: 33, h: 1, w: 1, m: 9, f: 33, bias1: true, bias2: true, act1: 'Relu', act2: 'HardSigmoid', params2: [0.2, 0.5], residual: true, tiles: { tileFilters1: 4, tileFilters2: 16, tileH: 1, tileW: 1 } },
  // 1x1: vec4 first rows and scalar second ones (EfficientNet-B0's 144 -> 6 -> 144), and the reverse.
  { kind: 'pwpw', n: 3, c: 144, h: 1, w: 1, m: 6, f: 144, bias1: true, bias2: true, act1: 'SiLU', act2: 'Sigmoid', tiles: { tileFilters1: 6, tileFilters2: 32, tileH: 1, tileW: 1 } },
  { kind: 'pwpw', n: 2, c: 35, h: 1, w: 1, m: 12, f: 35, bias2: true, act2: 'HardSigmoid', tiles: { tileFilters1: 12, tileFilters2: 32, tileH: 1, tileW: 1 } },
  // 1x1, several rounds of both layers (16 vectors per thread at most: KS2 = 16 of 256 threads, 125
  // outputs per workgroup in 8 rounds), loads for the next round issued before the reduction.
  { kind: 'pwpw', n: 1, c: 64, h: 1, w: 1, m: 1000, f: 4000, bias1: true, bias2: true, act1: 'Relu', tiles: { tileFilters1: 16, tileFilters2: 32, tileH: 1, tileW: 1 } },
  // smallest tiles, no biases
  { kind: 'pwpw', n: 1, c: 3, h: 3, w: 5, m: 2, f: 3, act1: 'LeakyRelu', params1: [0.2], tiles: { tileFilters1: 1, tileFilters2: 1, tileH: 1, tileW: 1 } },
];

for (const c of cases) {
  test(`FusedPwPw ${describeCase(c)}`, async () => { await checkCase(c); });
}

test('FusedPwPw on a 1x1 map spreads one image over ~32 workgroups (FB = ceil(F / 32))', async () => {
  const c = cases.find((x) => x.h === 1 && x.f === 300)!;
  const built = await checkCase(c);
  assert.match(built.program.cacheKey, /FB10(V\d+)?\|/);
  assert.equal(built.program.dispatch[0] * built.program.dispatch[1], 2 * 30);
});

test('FusedPwPw clamps an oversized tile within the given limits', async () => {
  const built = await checkCase(cases[3]);
  assert.ok(built.program.workgroupStorageBytes <= 4096);
  assert.ok(built.program.workgroupSize[0] <= 64);
});

test('FusedPwPw refuses inconsistent shapes and strides with a clear error', () => {
  const node = { name: 'f3', op: 'FusedPwPw', inputs: ['x', 'w1', 'b1', 'w2', '', 'r'], attrs: newAttrs({}) };
  const limits = { maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256 };
  const ok = { node, inputShapes: [[1, 4, 5, 5], [8, 4, 1, 1], [8], [6, 8, 1, 1], undefined, [1, 6, 5, 5]], outputShapes: [[1, 6, 5, 5]], limits };
  assert.doesNotThrow(() => fusedPwPw(ok));
  const bad = (patch: object, re: RegExp) => assert.throws(() => fusedPwPw({ ...ok, ...patch }), (e: unknown) => e instanceof FcmError && re.test(e.message));
  bad({ inputShapes: [[1, 4, 5, 5], [8, 4, 1, 1], [8], [6, 7, 1, 1], undefined, [1, 6, 5, 5]] }, /f3.*pointwise weights 2/);
  bad({ inputShapes: [[1, 4, 5, 5], [8, 4, 1, 1], [8], [6, 8, 1, 1], undefined, [1, 6, 5, 4]] }, /residual/);
  bad({ node: { ...node, attrs: newAttrs({ strides: [2, 2] }) } }, /strides/);
  bad({ node: { ...node, attrs: newAttrs({ tileH: 0 }) } }, /tileH/);
});

test('FusedPwPw on a 1x1 map counts its workgroup arrays as Dawn does (each rounded up to 16 bytes)', () => {
  // 256 + 3967 + 3969 floats are exactly 32768 bytes summed, 32784 as Dawn allocates them: pipeline creation failed.
  const node = { name: 'se', op: 'FusedPwPw', inputs: ['x', 'w1', '', 'w2', '', ''], attrs: newAttrs() };
  const limits = { maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256 };
  const args = { node, inputShapes: [[1, 3969, 1, 1], [3967, 3969, 1, 1], undefined, [2, 3967, 1, 1], undefined, undefined], outputShapes: [[1, 2, 1, 1]], limits };
  assert.throws(() => fusedPwPw(args), (e: unknown) => e instanceof FcmError && e.kind === 'unsupported' && /se.*32784 bytes of workgroup storage/.test(e.message));
});

// A thread's slice past the end of a row adds nothing: the old code read the row's last input for it (times a zero
// weight), so an infinite last input made every product of the workgroup NaN, where the layers give a finite
// Sigmoid(inf) = 1. C = 33 and M = 9: 16 threads per product, 3 inputs each, the last ones past the row.
test('FusedPwPw on a 1x1 map: an infinite input gives the layers\' result, not NaN', async () => {
  const { buildCase } = await import('./fused-check.js');
  const { getDevice, limitsOf, runProgram } = await import('./fused-harness.js');
  const { conv2d, epilogue } = await import('./reference.js');
  const device = await getDevice();
  const c: FusedCase = { kind: 'pwpw', n: 2, c: 33, h: 1, w: 1, m: 9, f: 33, bias1: true, bias2: true, act1: 'Sigmoid', tiles: { tileFilters1: 9, tileFilters2: 32, tileH: 1, tileW: 1 } };
  const b = buildCase(c, limitsOf(device), { reference: false });
  assert.match(b.program.cacheKey, /KS16,/);
  const L = b.layers;
  L.x.data[32] = Infinity; // image 0's last channel (x is the program's input 0)
  const mid = epilogue(conv2d(L.x, L.w1, L.b1), 'Sigmoid');
  const want = conv2d(mid, L.w2, L.b2).data;
  const got = await runProgram(device, b.program, b.inputs, want.length);
  for (let i = 0; i < want.length; i++) {
    assert.ok(Number.isFinite(want[i]), `reference ${i} finite`);
    assert.ok(Math.abs(got[i] - want[i]) <= 1e-4 * Math.max(1, Math.abs(want[i])), `output ${i}: got ${got[i]}, expected ${want[i]}`);
  }
});
