// Shared helpers of the ONNX converter tests.
import assert from 'node:assert/strict';
import { FcmError } from '../../src/errors.js';

function check(thrown: unknown, exitCode: number, patterns: RegExp[]): void {
  assert.ok(thrown instanceof FcmError, `expected an FcmError, got ${thrown instanceof Error ? thrown.stack : String(thrown)}`);
  assert.equal(thrown.exitCode, exitCode, thrown.message);
  assert.ok(!thrown.message.includes('\n'), 'one-line message');
  for (const p of patterns) assert.match(thrown.message, p);
}

/** Asserts fn throws an FcmError with the exit code and a message matching every pattern. */
export function assertFcm(fn: () => unknown, exitCode: number, ...patterns: RegExp[]): void {
  let thrown: unknown;
  try { fn(); } catch (e) { thrown = e; }
  check(thrown, exitCode, patterns);
}

export async function assertFcmAsync(fn: () => Promise<unknown>, exitCode: number, ...patterns: RegExp[]): Promise<void> {
  let thrown: unknown;
  try { await fn(); } catch (e) { thrown = e; }
  check(thrown, exitCode, patterns);
}
