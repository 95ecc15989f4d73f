// RELIABILITY.md, "Running": wrong inputs get a clear FcmError naming the input (exit 2); NaN and Inf propagate as in
// onnxruntime; GPU faults (lost device, validation error, out of memory) fail with exit 5 and a message, and a
// new session afterwards works; sizes over the adapter's limits are refused before GPU work (exit 4).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { fixtureModels } from '../../fixtures/models.js';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import { FcmError } from '../../src/errors.js';
import { createSession } from '../../src/pipeline/session.js';
import { prepareForRun } from '../../src/pipeline/pipeline.js';
import type { Session } from '../../src/runtime/executor.js';
import { compileGraph } from '../../src/runtime/compile.js';
import { acquireGpu, releaseGpu } from '../../src/runtime/device.js';
import { seededInput } from '../../src/runtime/compare.js';
import { main } from '../../src/cli/main.js';
import { writeNpy } from '../../src/npy.js';
import { runCheck } from '../../src/cli/check.js';

after(releaseGpu);

const head = () => fixtureModels.classifier_head();
const x0 = seededInput(3 * 32 * 32, 1);

const fcm = (code: number, re: RegExp) => (e: unknown) => {
  assert.ok(e instanceof FcmError, `not an FcmError: ${(e as Error)?.stack ?? e}`);
  assert.equal(e.exitCode, code, e.message);
  assert.match(e.message, re);
  return true;
};

/** A session that must work: the device is usable after whatever fault came before. */
async function works(): Promise<void> {
  const s = await createSession(head(), { plan: 'unfused' });
  try {
    const y = (await s.run({ input: x0 }))[s.outputNames[0]].data;
    assert.equal(y.length, 10);
    assert.ok(y.every(Number.isFinite) && y.some((v) => v !== 0));
  } finally {
    s.dispose();
  }
}

test('library API: a missing, extra, wrongly sized or non-float32 input is exit 2 naming the input', async () => {
  const s = await createSession(head(), { plan: 'unfused' });
  try {
    await assert.rejects(s.run({}), fcm(2, /input 'input' must be a Float32Array of 3072 values \[1,3,32,32\]/));
    await assert.rejects(s.run({ input: x0, extra: x0 }), fcm(2, /'extra' is not an input of the model \(inputs: input\)/));
    await assert.rejects(s.run({ inputs: x0 }), fcm(2, /'inputs' is not an input/));
    await assert.rejects(s.run({ input: x0.subarray(1) }), fcm(2, /input 'input' has 3071 values, the model takes \[1,3,32,32\] = 3072/));
    await assert.rejects(s.run({ input: new Int32Array(3072) as unknown as Float32Array }), fcm(2, /input 'input' must be a Float32Array/));
    await assert.rejects(s.run({ input: new Float64Array(3072) as unknown as Float32Array }), fcm(2, /input 'input' must be a Float32Array/));
    await assert.rejects(s.run(null as unknown as Record<string, Float32Array>), fcm(2, /run\(\) takes an object/));
    // Refusals touch nothing: the session still runs.
    assert.equal((await s.run({ input: x0 }))[s.outputNames[0]].data.length, 10);
  } finally {
    s.dispose();
  }
  await assert.rejects(createSession(head(), { plan: 'unfused', extraOutputs: ['nope'] }), fcm(2, /tensor 'nope' asked for as an output does not exist/));
});

// Only stderr is captured: node:test's reporter uses stdout.
async function cli(args: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const w2 = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => { err += s; return true; }) as typeof process.stderr.write;
  process.exitCode = undefined;
  try {
    return { code: await main(['node', 'fcm-opt', ...args]), err };
  } finally {
    process.stderr.write = w2;
    process.exitCode = undefined;
  }
}

test('fcm-opt run: wrong rank, shape or dtype of the .npy is exit 2 naming the file and the input', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-faults-'));
  const model = join(dir, 'head.onnx');
  writeFileSync(model, exportOnnx(head()));
  const input = join(dir, 'in.npy');
  await writeNpy(input, { data: new Float32Array(3072), shape: [3, 32, 32] });
  let r = await cli(['run', model, '--unfused', '--input', input, '--output', join(dir, 'o.npy')]);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /in\.npy: has shape \(3, 32, 32\), input 'input' of the model is \[1,3,32,32\]/);
  // An int32 .npy: same header as float32 but descr '<i4'.
  const f = Buffer.from(await import('node:fs').then((m) => m.readFileSync(input)));
  const i4 = Buffer.from(f.toString('latin1').replace("'<f4'", "'<i4'").replace('(3, 32, 32)', '(1, 3, 32, 32)'), 'latin1');
  writeFileSync(input, i4);
  r = await cli(['run', model, '--unfused', '--input', input, '--output', join(dir, 'o.npy')]);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /in\.npy: dtype '<i4' .*the model's input is float32/);
  assert.doesNotMatch(r.err, /\n\s+at /, 'a stack trace was printed');
});

test('fcm-opt check: an --input-shape that contradicts the model is a clear error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-faults-'));
  const model = join(dir, 'head.onnx');
  writeFileSync(model, exportOnnx(head()));
  await assert.rejects(runCheck(model, { unfused: true, inputShapes: { input: [1, 3, 16, 16] } }), (e: unknown) => {
    assert.ok(e instanceof FcmError, String(e));
    assert.ok(e.exitCode === 2, e.message);
    assert.match(e.message, /'input'/);
    return true;
  });
  await assert.rejects(runCheck(model, { unfused: true, inputShapes: { nope: [1, 3, 32, 32] } }), (e: unknown) => {
    assert.ok(e instanceof FcmError, String(e));
    assert.ok(e.exitCode === 2, e.message);
    assert.match(e.message, /'nope'/);
    return true;
  });
});

/** Where values are NaN, +Inf, -Inf or finite. */
const classes = (a: Float32Array) => Array.from(a, (v) => (Number.isNaN(v) ? 'nan' : v === Infinity ? '+inf' : v === -Infinity ? '-inf' : 'f'));

for (const name of ['mobilenetv2_stack', 'mobilenetv1_stack', 'squeeze_excite', 'classifier_head'] as const) {
  test(`${name}: NaN and Inf inputs propagate as in onnxruntime (unfused and fused)`, async () => {
    const bytes = exportOnnx(fixtureModels[name]());
    const g = await loadModel(bytes, { source: name });
    const ref = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, extra: { session: { intra_op: { allow_spinning: '0' } } } });
    const cases: Record<string, Float32Array> = {};
    // One +Inf only: convolutions turn it into +-Inf by the weight's sign, ReLU keeps +Inf, later layers mix.
    cases.inf = seededInput(3072, 2); cases.inf[1024 + 17 * 32 + 9] = Infinity;
    cases.nanInf = seededInput(3072, 3); cases.nanInf[5] = NaN; cases.nanInf[1024 + 300] = Infinity; cases.nanInf[2048 + 700] = -Infinity;
    try {
      for (const plan of ['unfused', 'auto'] as const) {
        const s = await createSession(g, { plan, hw: 'rtxa4000' });
        try {
          for (const [c, x] of Object.entries(cases)) {
            const want = (await ref.run({ input: new ort.Tensor('float32', x, [1, 3, 32, 32]) }))[s.outputNames[0]].data as Float32Array;
            const got = (await s.run({ input: x }))[s.outputNames[0]].data;
            const a = classes(got), b = classes(want);
            const diff = a.findIndex((v, i) => v !== b[i]);
            assert.equal(diff, -1, `${plan} ${c}: element ${diff} is ${a[diff]} (${got[diff]}), onnxruntime ${b[diff]} (${want[diff]})`);
            if (c === 'nanInf') assert.ok(b.some((v) => v !== 'f'), `${c}: the case does not reach the output`);
            // Finite elements agree as in the ordinary accuracy tests.
            for (let i = 0; i < got.length; i++) if (a[i] === 'f') assert.ok(Math.abs(got[i] - want[i]) <= 1e-3 * (1 + Math.abs(want[i])), `${plan} ${c} [${i}]: ${got[i]} vs ${want[i]}`);
          }
        } finally {
          s.dispose();
        }
      }
    } finally {
      await ref.release();
    }
  });
}

test('a lost device fails the next run with exit 5; a new session afterwards works', async () => {
  const s = await createSession(head(), { plan: 'unfused' });
  const s2 = await createSession(head(), { plan: 'unfused' });
  try {
    await s.run({ input: x0 });
    const ctx = await acquireGpu();
    // A run in flight when the device goes, then runs after it: all exit 5, none hangs.
    const inFlight = s2.run({ input: x0 });
    ctx.device.destroy();
    await assert.rejects(inFlight, fcm(5, /device was lost/));
    await assert.rejects(s.run({ input: x0 }), fcm(5, /^WebGPU: classifier_head\.onnx: run: the device was lost \(destroyed/));
    await assert.rejects(s2.run({ input: x0 }), fcm(5, /device was lost/));
    const fresh = await acquireGpu();
    assert.notEqual(fresh, ctx, 'acquireGpu handed out the lost device');
    assert.equal(fresh.lost, undefined);
  } finally {
    s.dispose();
    s2.dispose();
  }
  await works();
});

test('a device lost before acquireGpu notices is replaced, not handed out', async () => {
  const ctx = await acquireGpu();
  ctx.device.destroy();
  await ctx.device.lost;
  // The lost handler and this call race; either way the caller gets a working device.
  const next = await acquireGpu();
  assert.notEqual(next, ctx);
  await works();
});

test('a validation error while creating the session is exit 5; the device stays usable', async () => {
  const g = await loadModel(exportOnnx(head()), { source: 'head' });
  const ctx = await acquireGpu();
  const l = ctx.limits;
  const compiled = compileGraph(await prepareForRun(g, { plan: 'unfused' }), { ...ctx.kernelLimits, maxStorageBufferBindingSize: l.maxStorageBufferBindingSize, maxBufferSize: l.maxBufferSize });
  const key = compiled.steps[0].program.cacheKey;
  // A pipeline under the first program's cache key whose layout has one binding where the program binds
  // several: the session's createBindGroup fails validation.
  const module = ctx.device.createShaderModule({ code: '@group(0) @binding(0) var<storage, read_write> o: array<f32>;\n@compute @workgroup_size(1) fn main() { o[0] = 1.0; }' });
  ctx.pipelines.set(key, ctx.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } }));
  try {
    await assert.rejects(createSession(g, { plan: 'unfused' }), fcm(5, /^WebGPU: head: creating the session: validation error: /));
  } finally {
    ctx.pipelines.delete(key);
  }
  assert.equal(ctx.lost, undefined, 'a validation error lost the device');
  await works();
});

test('a validation error during a run (a buffer destroyed under the session) is exit 5; other sessions work', async () => {
  const s = await createSession(head(), { plan: 'unfused' });
  try {
    await s.run({ input: x0 });
    // The session's buffers are private: destroying one from outside stands for a fault in buffer handling.
    (s as unknown as { owned: GPUBuffer[] }).owned[0].destroy();
    await assert.rejects(s.run({ input: x0 }), fcm(5, /^WebGPU: classifier_head\.onnx: run: validation error: /));
  } finally {
    s.dispose();
  }
  await works();
});

test('an out-of-memory error is exit 5 with a message; the next session works', async () => {
  // lavapipe commits host memory lazily: 30 GiB of buffers were created here without an error, so a real
  // out-of-memory error cannot be provoked. The out-of-memory error scope is tested by making it report one.
  const ctx = await acquireGpu();
  const d = ctx.device as GPUDevice & { popErrorScope: () => Promise<GPUError | null> };
  const pop = d.popErrorScope;
  let calls = 0;
  // Scopes are popped innermost first: validation, out-of-memory, internal.
  d.popErrorScope = function (this: GPUDevice) {
    const r = pop.call(this);
    return ++calls % 3 === 2 ? r.then(() => new GPUOutOfMemoryError('Allocation failed (injected)')) : r;
  };
  let s: Session | undefined;
  try {
    await assert.rejects(createSession(head(), { plan: 'unfused' }), fcm(5, /creating the session: out of memory: Allocation failed/));
    delete (d as { popErrorScope?: unknown }).popErrorScope;
    s = await createSession(head(), { plan: 'unfused' });
    d.popErrorScope = function (this: GPUDevice) {
      const r = pop.call(this);
      return ++calls % 3 === 2 ? r.then(() => new GPUOutOfMemoryError('Allocation failed (injected)')) : r;
    };
    calls = 0;
    await assert.rejects(s.run({ input: x0 }), fcm(5, /run: out of memory: Allocation failed/));
  } finally {
    delete (d as { popErrorScope?: unknown }).popErrorScope;
    s?.dispose();
  }
  await works();
});

test('tensors over the adapter\'s binding or buffer size are exit 4 before any GPU work', async () => {
  const ctx = await acquireGpu();
  const maxBinding = ctx.limits.maxStorageBufferBindingSize;
  const b = new GraphBuilder('big', 1);
  // Channels so that one float32 tensor is 4 bytes over the binding limit.
  const x = b.input('input', [1, maxBinding / 4 + 1, 1, 1]);
  const g = b.build([b.relu(x)]);
  await assert.rejects(createSession(g, { plan: 'unfused' }), fcm(4, /tensor 'input'.*over the adapter's maxStorageBufferBindingSize/));
  const lim = { ...ctx.kernelLimits, maxStorageBufferBindingSize: 2 ** 40, maxBufferSize: ctx.limits.maxBufferSize };
  const b2 = new GraphBuilder('huge', 1);
  const x2 = b2.input('input', [1, Math.ceil(ctx.limits.maxBufferSize / 4) + 1, 1, 1]);
  assert.throws(() => compileGraph(b2.build([b2.relu(x2)]), lim), fcm(4, /over the adapter's maxBufferSize/));
  await works();
});
