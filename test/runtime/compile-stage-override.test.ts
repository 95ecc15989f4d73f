// FCM_OPT_PWDW_XSTAGE (src/runtime/compile.ts): 1 in the environment stages x in the PW-DW modules where it fits
// (kernels/fused-pwdw.ts xStage), 0 or unset leaves them as the rule makes them; other nodes are untouched. No GPU:
// compileGraph works from the limits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { exportOnnx } from '../../converters/onnx/export.js';
import { mobileNetV2 } from '../../fixtures/zoo.js';
import { prepareForRun } from '../../src/pipeline/pipeline.js';
import { compileGraph } from '../../src/runtime/compile.js';
import { defaultLimits } from '../../kernels/program.js';

test('FCM_OPT_PWDW_XSTAGE sets the PW-DW modules\' staging for A/B runs, and only theirs', async () => {
  const path = join(tmpdir(), `fcm-xstage-${process.pid}.onnx`);
  writeFileSync(path, exportOnnx(mobileNetV2(1)));
  const g = await prepareForRun(path, { hw: 'h100' });
  const limits = { ...defaultLimits, maxStorageBufferBindingSize: 1 << 27, maxBufferSize: 1 << 28 };
  const keys = (v: string | undefined) => {
    const before = process.env.FCM_OPT_PWDW_XSTAGE;
    if (v === undefined) delete process.env.FCM_OPT_PWDW_XSTAGE; else process.env.FCM_OPT_PWDW_XSTAGE = v;
    try {
      return compileGraph(g, limits).steps.map((s) => ({ op: s.node.op, key: s.program.cacheKey }));
    } finally {
      if (before === undefined) delete process.env.FCM_OPT_PWDW_XSTAGE; else process.env.FCM_OPT_PWDW_XSTAGE = before;
    }
  };
  const plain = keys(undefined), off = keys('0'), on = keys('1');
  const pwdw = (ks: typeof plain) => ks.filter((k) => k.op === 'FusedPwDw');
  assert.ok(pwdw(plain).length >= 10, `MobileNetV2 plans PW-DW modules: ${pwdw(plain).length}`);
  assert.deepEqual(off, plain);
  assert.ok(pwdw(plain).every((k) => !/XS\|/.test(k.key)));
  // The late, small-map modules fit their x chunks; every module either stages or is the program it was.
  const staged = pwdw(on).filter((k) => /XS\|/.test(k.key));
  assert.ok(staged.length >= 6, `modules staging x: ${staged.length} of ${pwdw(on).length}`);
  pwdw(on).forEach((k, i) => assert.equal(k.key.replace('XS|', '|'), pwdw(plain)[i].key));
  assert.deepEqual(on.filter((k) => k.op !== 'FusedPwDw'), plain.filter((k) => k.op !== 'FusedPwDw'));
});
