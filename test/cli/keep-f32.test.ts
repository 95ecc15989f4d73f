// `--keep-f32 auto|none|NAMES` (check, bench): the fp16 sessions' f32 islands (src/runtime/f16-islands.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FcmError } from '../../src/errors.js';
import { parseKeepF32 } from '../../src/cli/options.js';

test('parseKeepF32: auto, none, or tensor names separated by commas; nothing named is exit 2', () => {
  assert.equal(parseKeepF32('auto'), 'auto');
  assert.equal(parseKeepF32('none'), 'none');
  assert.deepEqual(parseKeepF32('a,b/c:0, d'), ['a', 'b/c:0', 'd']);
  for (const bad of ['', ',', ' , ']) {
    assert.throws(() => parseKeepF32(bad), (e: unknown) => e instanceof FcmError && e.exitCode === 2 && /--keep-f32/.test(e.message));
  }
});
