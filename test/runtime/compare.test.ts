// src/runtime/compare.ts: the rule that decides `fcm-opt check` and every end-to-end accuracy test. Pure
// arithmetic on plain arrays (no GPU): the tolerance and its boundary, NaN and infinities, length and shape
// mismatches, the classification metrics, and how a report with several outputs reads (src/cli/check.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareOutputs, maxAbs, relTolerance, seededInput, tolerance } from '../../src/runtime/compare.js';
import { type CheckReport, formatCheck } from '../../src/cli/check.js';

/** The next double above x > 0: the smallest error over a tolerance of exactly x. */
const above = (x: number) => x * (1 + 2 ** -52);

test('tolerance: 1e-4 of max |reference|, never below 1e-4', () => {
  assert.equal(relTolerance, 1e-4);
  assert.equal(tolerance([0.5, -0.25]), 1e-4, 'outputs below 1 in magnitude: an absolute 1e-4');
  assert.equal(tolerance([]), 1e-4);
  assert.equal(tolerance([1, -8, 3]), 8e-4, 'the largest magnitude, negative included');
  assert.equal(tolerance(new Float32Array([200, 5])), 2e-2);
  assert.equal(maxAbs([-3, 2]), 3);
});

test('an error of exactly the tolerance passes, the next double above it fails', () => {
  // Differences against a reference element 0 are exact in double, so the comparison sees exactly tol.
  for (const [scale, tol] of [[1, 1e-4], [0.5, 1e-4], [8, 8e-4], [-8, 8e-4], [1000, 0.1]] as const) {
    const ref = [0, scale, scale / 2];
    const at = compareOutputs([tol, scale, scale / 2], ref, [3]);
    assert.equal(at.tolerance, tol, `scale ${scale}`);
    assert.equal(at.maxAbsError, tol);
    assert.equal(at.ok, true, `scale ${scale}: error == tolerance`);
    const over = compareOutputs([above(tol), scale, scale / 2], ref, [3]);
    assert.ok(over.maxAbsError > over.tolerance);
    assert.equal(over.ok, false, `scale ${scale}: error just over the tolerance`);
    // The sign of the error does not matter.
    assert.equal(compareOutputs([-above(tol), scale, scale / 2], ref, [3]).ok, false);
    assert.equal(compareOutputs([-tol, scale, scale / 2], ref, [3]).ok, true);
  }
});

test('a tolerance given (check --tolerance) replaces 1e-4 with the same rule and boundary', () => {
  const ref = [0, 4, -2];
  assert.equal(tolerance(ref, 1e-6), 4e-6);
  assert.equal(tolerance([0.5], 1e-6), 1e-6);
  const at = compareOutputs([4e-6, 4, -2], ref, [3], 1e-6);
  assert.deepEqual([at.tolerance, at.maxAbsError, at.ok], [4e-6, 4e-6, true]);
  assert.equal(compareOutputs([above(4e-6), 4, -2], ref, [3], 1e-6).ok, false);
  // 0: only identical outputs pass.
  assert.equal(compareOutputs([0, 4, -2], ref, [3], 0).ok, true);
  assert.equal(compareOutputs([2 ** -60, 4, -2], ref, [3], 0).ok, false);
});

test('reported metrics: max abs error anywhere, relative to max |reference|; identical outputs are exact', () => {
  const ref = seededInput(1000, 4);
  const same = compareOutputs(Float32Array.from(ref), ref, [1, 1000]);
  assert.deepEqual([same.maxAbsError, same.maxRelError, same.top1, same.top5, same.ok], [0, 0, 1, 1, true]);
  assert.ok(Math.abs(same.cosine - 1) < 1e-12);
  const ours = Float32Array.from(ref);
  ours[617] += 0.25;
  const c = compareOutputs(ours, ref, [1, 1000]);
  assert.equal(c.maxAbsError, Math.abs(ours[617] - ref[617]));
  assert.equal(c.maxRelError, c.maxAbsError / maxAbs(ref));
  assert.equal(c.ok, false);
  // An all-zero reference: the relative error is the absolute one (no division by zero). (Ours keeps the
  // reference's argmax, index 0 of the tie: a flip would fail top-1.)
  const z = compareOutputs([0, -3e-5], [0, 0], [2]);
  assert.deepEqual([z.maxAbsError, z.maxRelError, z.ok], [3e-5, 3e-5, true]);
  assert.equal(compareOutputs([0, 0], [0, 0], [2]).cosine, 1);
  assert.equal(compareOutputs([0, 0], [1, 0], [2]).cosine, 0);
  assert.equal(compareOutputs([0, -2e-4], [0, 0], [2]).ok, false);
});

test('NaN or an infinity in our output where the reference is finite fails, whatever the tolerance', () => {
  for (const bad of [NaN, Infinity, -Infinity]) {
    const c = compareOutputs([1, bad, 3], [1, 2, 3], [3]);
    assert.equal(c.ok, false, String(bad));
    assert.equal(c.maxAbsError, Infinity, String(bad));
    // Also where the reference is 0 and the other elements are exact.
    assert.equal(compareOutputs([bad, 0], [0, 0], [2]).ok, false, String(bad));
  }
});

test('non-finite reference values: matched exactly, and they do not widen the tolerance', () => {
  // The same NaN and infinities at the same places (an overflow both sides compute): the finite elements decide.
  const ref = [Infinity, -Infinity, NaN, 2, -1];
  const same = compareOutputs([Infinity, -Infinity, NaN, 2 + 2 ** -13, -1], ref, [5]);
  assert.equal(same.tolerance, 2e-4, 'the tolerance comes from the finite reference values');
  assert.equal(same.maxAbsError, 2 ** -13);
  assert.equal(same.ok, true);
  // A finite error over the tolerance of the finite values still fails: an infinity in the reference must not
  // make the tolerance infinite.
  assert.equal(compareOutputs([Infinity, -Infinity, NaN, 2.5, -1], ref, [5]).ok, false);
  // A finite value, the other infinity or a NaN where the reference has an infinity (or a NaN) fails.
  for (const ours of [[1e30, -Infinity, NaN, 2, -1], [-Infinity, -Infinity, NaN, 2, -1], [NaN, -Infinity, NaN, 2, -1], [Infinity, -Infinity, 0, 2, -1], [Infinity, -Infinity, Infinity, 2, -1]]) {
    const c = compareOutputs(ours, ref, [5]);
    assert.equal(c.ok, false, JSON.stringify(ours.map(String)));
    assert.equal(c.maxAbsError, Infinity);
  }
});

test('a length mismatch, or a shape that does not describe our output, fails', () => {
  for (const [ours, ref, shape] of [[[1, 2, 3], [1, 2], [3]], [[1, 2], [1, 2, 3], [2]], [[], [0], [0]], [[1, 2, 3, 4], [1, 2, 3, 4], [3, 2]]] as const) {
    const c = compareOutputs(ours, ref, shape);
    assert.equal(c.ok, false, `${ours.length} vs ${ref.length}, shape [${shape}]`);
    assert.equal(c.maxAbsError, Infinity);
    assert.equal(c.top1, 0);
  }
  // Empty outputs of an empty shape agree.
  assert.equal(compareOutputs([], [], [0, 10]).ok, true);
});

test('top-1 per batch row: an argmax that flips within the tolerance fails; top-5 is a fraction of the reference\'s five', () => {
  // Two rows of 8 (shape [2, 8]); row 1's two largest values differ by 5e-5 (< 1e-4) and swap in ours.
  const ref = [0.1, 0.9, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.5, 0.50005, 0, 0, 0, 0, 0, 0.1];
  const ours = [...ref];
  [ours[8], ours[9]] = [ref[9], ref[8]];
  const c = compareOutputs(ours, ref, [2, 8]);
  assert.ok(c.maxAbsError <= c.tolerance);
  assert.equal(c.top1, 0.5);
  assert.equal(c.top5, 1);
  assert.equal(c.ok, false, 'a changed classification fails the check');
  // A rank-1 output is one row.
  assert.equal(compareOutputs([0.6, 0.4], [0.4, 0.6], [2]).top1, 0);
  // Row 0's reference top five are indices 1, 7, 6, 5, 4; ours drops index 4 (0.4 -> 0) for index 3: 4 of 5.
  const o2 = [...ref];
  o2[4] = 0;
  const t5 = compareOutputs(o2, ref, [2, 8]);
  assert.equal(t5.top5, (4 / 5 + 1) / 2);
  assert.equal(t5.top1, 1);
});

test('per-output reporting: each output on its own line, the failing one marked, the check failed', () => {
  const ref = seededInput(10, 1);
  const good = compareOutputs(Float32Array.from(ref), ref, [1, 10]);
  const badData = Float32Array.from(ref);
  badData[3] += 0.01;
  const bad = compareOutputs(badData, ref, [1, 10]);
  const report: CheckReport = {
    model: 'two-heads.onnx', format: 'onnx', path: 'float', reference: 'model', plan: 'auto', device: 'test adapter',
    outputs: [{ name: 'logits', shape: [1, 10], ...good }, { name: 'boxes', shape: [1, 10], ...bad }],
    ok: good.ok && bad.ok,
  };
  assert.equal(report.ok, false);
  const lines = formatCheck(report).trimEnd().split('\n');
  assert.match(lines[0], /^two-heads\.onnx: fcm-opt \(auto, test adapter\) vs onnxruntime CPU$/);
  assert.match(lines[1], /^ {2}logits \[1x10\]: max abs 0\.000e\+0 \(tolerance 1\.000e-4\), .*  PASSED$/);
  assert.match(lines[2], /^ {2}boxes \[1x10\]: max abs 1\.000e-2 \(tolerance 1\.000e-4\), .*  FAILED$/);
  assert.equal(lines[3], 'check FAILED');
  assert.equal(formatCheck({ ...report, outputs: [report.outputs[0]], ok: true }).trimEnd().split('\n').at(-1), 'check PASSED');
});

test('elementwise criterion (check --atol/--rtol): every |a - b| <= atol + rtol * |b|, counted; it alone decides', () => {
  const ref = [1, -100, 0.001, 0];
  // Element 1 may differ by atol + rtol * 100 = 0.01 + 0.01 = 0.02; element 2 by 0.01 + 1e-7.
  const at = compareOutputs([1, -100.02, 0.011, 0.01], ref, [4], undefined, { atol: 0.01, rtol: 1e-4 });
  assert.equal(at.overCount, 0);
  assert.equal(at.ok, true, 'maxAbsError 0.02 is over the default tolerance, the elementwise rule decides');
  const over = compareOutputs([1, -100.03, 0.011, 0.0101], ref, [4], undefined, { atol: 0.01, rtol: 1e-4 });
  assert.equal(over.overCount, 2);
  assert.equal(over.ok, false);
  assert.deepEqual([over.atol, over.rtol], [0.01, 1e-4]);
  // No top-1 condition under the elementwise rule (a classifier's argmax may flip within the bound).
  const flip = compareOutputs([1, 0.999], [0.999, 1], [1, 2], undefined, { atol: 0.01, rtol: 0 });
  assert.equal(flip.top1, 0);
  assert.equal(flip.ok, true);
  // A mismatched NaN still fails, and counts.
  const nan = compareOutputs([NaN, 1], [0, 1], [2], undefined, { atol: 1, rtol: 1 });
  assert.deepEqual([nan.ok, nan.overCount], [false, 1]);
  assert.equal(compareOutputs([1, 2], [1], [2], undefined, { atol: 1, rtol: 0 }).ok, false, 'length mismatch');
});
