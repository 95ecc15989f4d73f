// Runs one FCM case on the device and compares with the reference (used by the fused-*.test.ts files).

import assert from 'node:assert/strict';
import { buildCase, describeCase, type Built, type FusedCase } from './fused-check.js';
import { getDevice, limitsOf, runProgram } from './fused-harness.js';
import { maxAbsDiff } from './reference.js';

/**
 * Tolerance: 1e-4 * max(1, max|ref|). The reference is float64 from the same float32 inputs; the kernel
 * accumulates in fp32 in a different order. Each output sums at most a few hundred products of values of
 * magnitude <= ~1 here (C or M terms, then K*K or M terms); fp32 rounding (2^-24 relative per step) bounds the
 * error near n * 6e-8 * magnitude, about 1e-5 relative for n = 200: 1e-4 leaves margin without hiding an
 * indexing bug, which shifts values by O(0.1..1).
 */
export async function checkCase(c: FusedCase): Promise<Built> {
  const device = await getDevice();
  const built = buildCase(c, limitsOf(device));
  const p = built.program;
  // Clamped to the limits the kernel was given (the device's, or lower ones the case sets).
  const storageLimit = Math.min(limitsOf(device).maxComputeWorkgroupStorageSize, c.limits?.maxComputeWorkgroupStorageSize ?? Infinity);
  const threadLimit = Math.min(limitsOf(device).maxComputeInvocationsPerWorkgroup, c.limits?.maxComputeInvocationsPerWorkgroup ?? Infinity);
  assert.ok(p.workgroupStorageBytes <= storageLimit, `${p.cacheKey}: ${p.workgroupStorageBytes} bytes of workgroup memory > ${storageLimit}`);
  assert.ok(p.workgroupSize[0] * p.workgroupSize[1] * p.workgroupSize[2] <= threadLimit, `${p.cacheKey}: workgroup ${p.workgroupSize} > ${threadLimit}`);
  // The intermediate has no binding: only the node's inputs and the one output are bound.
  assert.equal(p.outputs, 1);
  assert.ok(p.inputs.every((i) => i >= 0 && i <= 5));
  const got = await runProgram(device, built.program, built.inputs, built.expected.length);
  const { maxDiff, maxRef, at } = maxAbsDiff(got, built.expected);
  const tol = 1e-4 * Math.max(1, maxRef);
  assert.ok(maxDiff <= tol,
    `${describeCase(c)} [${built.program.cacheKey}]: max |diff| ${maxDiff} > ${tol} at ${at} (got ${got[at]}, expected ${built.expected[at]})`);
  return built;
}
