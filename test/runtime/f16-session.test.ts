// fp16 sessions end to end on lavapipe (which offers shader-f16): a MobileNet-style fixture fused and unfused in
// fp16 against onnxruntime's fp32 result and against our own fp32 session; what halves (weight and activation
// bytes); the planner's element size; the refusal on a device without shader-f16; the --precision flag of the CLI.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mobileNetV2Stack } from '../../fixtures/models.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import type { HwConfig } from '../../src/planner/hw-config.js';
import { FcmError } from '../../src/errors.js';
import { createSession } from '../../src/pipeline/session.js';
import { planFor, planningInput } from '../../src/pipeline/pipeline.js';
import { openGpu, releaseGpu } from '../../src/runtime/device.js';
import { compareOutputs, f16Bounds, f16Tolerance, seededInput } from '../../src/runtime/compare.js';
import { runOrt } from '../../src/check/check.js';
import { readNpy, writeNpy } from '../../src/npy.js';
import { cli } from '../cli/run-cli.js';

after(releaseGpu);

// A description on which the planner fuses (small SMs, large shared memory), as in session.test.ts.
const hw: HwConfig = { name: 'lavapipe-like', sms: 16, l1BytesPerSm: 64 * 1024, shmemBytesPerSm: 64 * 1024, warpSize: 32, workgroupStorageBytes: 32 * 1024 };

const bytes = exportOnnx(mobileNetV2Stack());

test('MobileNet-style stack in fp16, fused and unfused: within the f16 bounds of onnxruntime fp32 and of our fp32', async () => {
  const g = await loadModel(bytes, { source: 'mobilenetv2_stack' });
  const x = g.inputs[0], y = g.outputs[0];
  const shape = [...g.tensors.get(x)!.shape];
  const data = seededInput(shape.reduce((a, b) => a * b, 1), 0);
  const ref = (await runOrt(bytes, { [x]: { data, shape } }, [y], 'mobilenetv2_stack')).get(y)!;
  for (const plan of ['unfused', 'auto'] as const) {
    const s32 = await createSession(g, { plan, hw });
    const s16 = await createSession(g, { plan, hw, precision: 'fp16' });
    try {
      assert.equal(s16.path, 'fp16');
      const o32 = (await s32.run({ [x]: data }))[y];
      const o16 = (await s16.run({ [x]: data }))[y];
      assert.equal(o16.dtype, 'float32');
      assert.ok(o16.data instanceof Float32Array);
      const vsOrt = compareOutputs(o16.data, ref, o16.shape, undefined, undefined, 'fp16');
      assert.ok(vsOrt.ok, `${plan}: fp16 vs onnxruntime ${JSON.stringify(vsOrt)}`);
      // Measured on this fixture: 1.4e-3 of max |reference|, cosine 0.9999995 (TESTING.md). The bounds hold it with room,
      // while fp16 is visibly not fp32: the error is far over the fp32 tolerance (f16 storage is in effect).
      assert.ok(vsOrt.cosine >= f16Bounds.cosine);
      assert.ok(!compareOutputs(o16.data, ref, o16.shape).ok, `${plan}: the fp16 result passes the fp32 tolerance: were the tensors f16?`);
      assert.ok(compareOutputs(o16.data, o32.data, o16.shape, undefined, undefined, 'fp16').ok, `${plan}: fp16 vs our fp32`);
      const st32 = s32.stats(), st16 = s16.stats();
      assert.equal(st16.dispatchesPerRun, st32.dispatchesPerRun);
      assert.equal(st16.fusedModules, st32.fusedModules);
      // The input (read by one node) stays f32: its reader takes the float32 feed as it comes, no pass rounds it.
      assert.deepEqual(st16.inputQuantizers, []);
      assert.deepEqual(st16.f32Tensors, [x]);
      assert.deepEqual(st32.inputQuantizers, []);
      if (plan === 'auto') assert.ok(st16.fusedModules > 0, 'the fused plan fuses');
      // Half the bytes (each buffer a whole number of 4-byte words: at most 2 bytes more per tensor).
      assert.ok(st16.weightBytes <= st32.weightBytes / 2 + 4 * 64 && st16.weightBytes >= st32.weightBytes / 2, `weights ${st16.weightBytes} vs ${st32.weightBytes}`);
      const inBytes = 4 * shape.reduce((a, b) => a * b, 1);
      assert.ok(st16.activationBytes - inBytes / 2 <= (st32.activationBytes - inBytes) / 2 + inBytes / 2 + 64, `activations ${st16.activationBytes} vs ${st32.activationBytes}`);
      assert.ok(st16.activationBytes <= st32.activationBytes / 2 + inBytes / 2 + 64, `activations ${st16.activationBytes} vs ${st32.activationBytes}`);
      // A second run creates nothing and gives the same result.
      const again = (await s16.run({ [x]: data }))[y];
      assert.deepEqual(again.data, o16.data);
      assert.equal(s16.stats().pipelinesCreated, st16.pipelinesCreated);
      // inputs 'f16': the feed is rounded to f16 on the GPU (one feed dispatch), not on the host; the same dispatches
      // otherwise, within the same bounds.
      const h16 = await createSession(g, { plan, hw, precision: 'fp16', fp16: { inputs: 'f16' } });
      try {
        assert.deepEqual(h16.stats().inputQuantizers, [x]);
        assert.deepEqual(h16.stats().f32Tensors, []);
        assert.equal(h16.stats().dispatchesPerRun, st16.dispatchesPerRun);
        const oh = (await h16.run({ [x]: data }))[y];
        assert.ok(compareOutputs(oh.data, ref, oh.shape, undefined, undefined, 'fp16').ok, `${plan}: fp16 with an f16 input vs onnxruntime`);
      } finally {
        h16.dispose();
      }
      await assert.rejects(createSession(g, { plan, hw, precision: 'fp16', fp16: { inputs: 'f8' as never } }), /fp16 inputs must be 'f32' or 'f16', got 'f8'/);
    } finally {
      s32.dispose();
      s16.dispose();
    }
  }
});

test('the f16 comparison: 3e-2 of max |reference|, cosine, top-1 with near ties only', () => {
  const ref = Float32Array.of(0.1, 2, -4, 1.9);
  assert.equal(f16Tolerance(ref), 3e-2 * 4 + 2 ** -24);
  // Within the error bound, argmax unchanged.
  assert.ok(compareOutputs(Float32Array.of(0.1, 2.1, -4, 1.9), ref, [1, 4], undefined, undefined, 'fp16').ok);
  // Over it.
  assert.ok(!compareOutputs(Float32Array.of(0.1, 2.2, -4, 1.9), ref, [1, 4], undefined, undefined, 'fp16').ok);
  // Classes 1 and 3 are 0.1 apart in the reference, within the tolerance 0.12: a flip is a near tie.
  const tie = compareOutputs(Float32Array.of(0.1, 1.95, -4, 1.96), ref, [1, 4], undefined, undefined, 'fp16');
  assert.ok(tie.ok && tie.top1 === 0 && tie.top1Ties === 1, JSON.stringify(tie));
  // Not a tie under the fp32 rule.
  assert.ok(!compareOutputs(Float32Array.of(0.1, 1.95, -4, 1.96), ref, [1, 4]).ok);
  // An output the right size but pointing elsewhere fails on the cosine alone.
  const ref2 = Float32Array.from({ length: 100 }, (_, i) => Math.sin(i));
  const off = Float32Array.from(ref2, (v, i) => v + (i % 2 ? 0.029 : -0.029));
  const c = compareOutputs(off, ref2, [1, 100], undefined, undefined, 'fp16');
  assert.ok(c.maxAbsError <= c.tolerance && c.cosine < f16Bounds.cosine && !c.ok, JSON.stringify(c));
});

test('fp16 plans count 2-byte elements in GMA time and keep f32 tiles in workgroup memory', async () => {
  const g = await loadModel(bytes, { source: 'mobilenetv2_stack' });
  const h100: HwConfig = { ...hw, dramGBps: 3000, fp32Gflops: 50000, dispatchOverheadUs: 2 };
  const p32 = planningInput(g, h100, false), p16 = planningInput(g, h100, false, 'fp16');
  assert.equal(p32.dtypeBytes, 4);
  assert.equal(p16.dtypeBytes, 2);
  assert.equal(p16.tileBytes, 4);
  const a = planFor(p32), b = planFor(p16);
  // Same layers, same GMA counted in elements; time from bytes: no more than the fp32 estimate.
  assert.equal(b.totals.gmaUnfused, a.totals.gmaUnfused);
  assert.ok(b.totals.timeUsUnfused! < a.totals.timeUsUnfused!, `${b.totals.timeUsUnfused} vs ${a.totals.timeUsUnfused}`);
});

test('fp16 on a device without shader-f16 is refused with exit 3, naming the feature; fp32 runs there', async () => {
  const ctx = await openGpu({ withoutFeatures: ['shader-f16'] });
  try {
    assert.equal(ctx.shaderF16, false);
    const g = await loadModel(bytes, { source: 'mobilenetv2_stack' });
    await assert.rejects(createSession(g, { precision: 'fp16', device: ctx, plan: 'unfused' }), (e: unknown) => {
      assert.ok(e instanceof FcmError);
      assert.equal(e.exitCode, 3);
      assert.match(e.message, /shader-f16/);
      assert.match(e.message, /--precision fp32/);
      return true;
    });
    const s = await createSession(g, { device: ctx, plan: 'unfused' });
    try {
      const x = g.inputs[0];
      await s.run({ [x]: seededInput(3 * 32 * 32, 0) });
      assert.equal(s.path, 'fp32');
    } finally {
      s.dispose();
    }
  } finally {
    ctx.device.destroy();
  }
});

test('CLI: run and check take --precision fp16; other values are refused with exit 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-f16-'));
  const model = join(dir, 'stack.onnx');
  writeFileSync(model, bytes);
  const input = join(dir, 'x.npy'), out16 = join(dir, 'y16.npy'), out32 = join(dir, 'y32.npy');
  await writeNpy(input, { data: seededInput(3 * 32 * 32, 1), shape: [1, 3, 32, 32] });
  for (const [p, out] of [['fp16', out16], ['fp32', out32]] as const) {
    const r = await cli('run', model, '--hw', 'lavapipe', '--precision', p, '--input', input, '--output', out);
    assert.equal(r.code, 0, r.err);
  }
  const y16 = await readNpy(out16), y32 = await readNpy(out32);
  assert.deepEqual(y16.shape, y32.shape);
  const c = compareOutputs(y16.data, y32.data, y16.shape, undefined, undefined, 'fp16');
  assert.ok(c.ok && c.maxAbsError > 0, JSON.stringify(c));
  const chk = await cli('check', model, '--hw', 'lavapipe', '--precision', 'fp16');
  assert.equal(chk.code, 0, chk.err);
  assert.match(chk.out, /fp16/);
  assert.match(chk.out, /rel to range/);
  assert.match(chk.out, /check PASSED/);
  const bad = await cli('run', model, '--precision', 'fp8', '--input', input, '--output', join(dir, 'no.npy'));
  assert.equal(bad.code, 2);
  assert.match(bad.err, /fp8/);
  assert.ok(!existsSync(join(dir, 'no.npy')));
  const plan = await cli('plan', model, '--hw', 'h100', '--precision', 'fp16', '--json');
  assert.equal(plan.code, 0, plan.err);
});
