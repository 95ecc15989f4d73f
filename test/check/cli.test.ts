// `fcm-opt check` and `fcm-opt run` on TFLite files (fixtures written to a temp folder).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { buildMobileNetStyle } from '../../fixtures/tflite-builder.js';
import { formatCheck, runCheck } from '../../src/cli/check.js';
import { readNpy, writeNpy } from '../../src/npy.js';
import { createSession } from '../../src/pipeline/session.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { seededInput } from '../../src/runtime/compare.js';

after(releaseGpu);

const dir = mkdtempSync(join(tmpdir(), 'fcm-check-tflite-'));
const float = join(dir, 'mobilenet-style.tflite');
writeFileSync(float, buildMobileNetStyle({ int8: false }));
const int8 = join(dir, 'mobilenet-style-int8.tflite');
writeFileSync(int8, buildMobileNetStyle({ int8: true }));

// Only stderr is captured (node:test's reporter uses stdout); check's report is tested through runCheck/formatCheck.
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

test('check on a float .tflite: float kernels vs onnxruntime on the ONNX export, fused and unfused', async () => {
  for (const unfused of [false, true]) {
    const r = await runCheck(float, { hw: 'lavapipe', unfused });
    assert.equal(r.ok, true, formatCheck(r));
    assert.deepEqual([r.format, r.path, r.reference], ['tflite', 'float', 'onnx-export']);
    assert.equal(r.int8Reference, undefined);
    const text = formatCheck(r);
    assert.match(text, /float TFLite model: run with float kernels/);
    assert.match(text, /NCHW/);
    assert.match(text, /check PASSED\n$/);
  }
});

test('check on an int8 .tflite checks the dequantized float path and the integer kernels against the integer reference', async () => {
  const r = await runCheck(int8, { hw: 'lavapipe', perLayer: true });
  assert.equal(r.ok, true, formatCheck(r));
  assert.equal(r.path, 'int8-dequantized');
  assert.ok(r.layers && r.layers.length >= 10 && r.layers.every((l) => l.ok), 'every intermediate matches onnxruntime');
  assert.ok(Array.isArray(r.int8Reference) && r.int8Reference.length === 1);
  const [c] = r.int8Reference;
  assert.equal(c.scale, 1 / 256);
  assert.equal(c.top1, 1);
  // Bound and reasoning: test/converters/tflite-run.test.ts.
  assert.ok(c.maxLsb <= 3 && c.meanLsb <= 0.5, JSON.stringify(c));
  const text = formatCheck(r);
  assert.match(text, /int8 model: checked twice: dequantized float kernels against onnxruntime, integer kernels/);
  assert.match(text, /vs TFLite integer reference: output: max \d+\.\d\d LSB, mean/);
  // The integer kernels are bit-exact with TFLite's arithmetic (test/runtime/int8-session.test.ts).
  assert.ok(Array.isArray(r.int8Kernels) && r.int8Kernels.length === 1, String(r.int8Kernels));
  assert.equal(r.int8Kernels[0].maxLsb, 0);
  assert.match(text, /integer kernels vs TFLite integer reference: output: max 0\.00 LSB/);
});

test('check --per-layer on a .tflite names the node fcm-opt gets wrong', async () => {
  let broken = '';
  const r = await runCheck(float, {
    unfused: true, perLayer: true,
    transformGraph: (g) => {
      const n = g.nodes.filter((m) => m.op === 'Conv')[2];
      broken = n.name;
      const b = g.tensors.get(n.inputs[2])!;
      const data = Float32Array.from(b.data as Float32Array, (v) => v + 0.5);
      const tensors = new Map(g.tensors);
      tensors.set(b.name, { ...b, data });
      return { ...g, tensors };
    },
  });
  assert.equal(r.ok, false);
  assert.equal(r.firstBadNode, broken);
});

test('run on .tflite files: NCHW .npy in, first output out, same as a session; a bad file writes nothing', async () => {
  for (const model of [float, int8]) {
    const input = join(dir, 'in.npy'), output = join(dir, 'out.npy');
    const x = seededInput(3 * 16 * 16, 9);
    await writeNpy(input, { data: x, shape: [1, 3, 16, 16] });
    const r = await cli(['run', model, '--unfused', '--input', input, '--output', output]);
    assert.equal(r.code, 0, r.err);
    const y = await readNpy(output);
    assert.deepEqual(y.shape, [1, 10]);
    const s = await createSession(model, { plan: 'unfused' });
    try {
      const want = (await s.run({ [s.inputNames[0]]: x }))[s.outputNames[0]].data;
      assert.deepEqual(Array.from(y.data), Array.from(want));
    } finally {
      s.dispose();
    }
    // NHWC input is refused with the shape the model takes.
    await writeNpy(input, { data: x, shape: [1, 16, 16, 3] });
    const bad = await cli(['run', model, '--input', input, '--output', join(dir, 'nhwc.npy')]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /input '.*' of the model is \[1,3,16,16\]/);
    assert.ok(!existsSync(join(dir, 'nhwc.npy')));
  }
  const truncated = join(dir, 'truncated.tflite');
  writeFileSync(truncated, buildMobileNetStyle({ int8: false }).subarray(0, 100));
  const t = await cli(['check', truncated]);
  assert.equal(t.code, 2, t.err);
  assert.match(t.err, /^fcm-opt: .*truncated\.tflite: /);
});

test('check --save-inputs then --load-inputs gives the same report; --atol/--rtol judge per element, PASSED/FAILED per output', async () => {
  const saved = join(dir, 'inputs.npz');
  const { parseNpz, encodeNpz } = await import('../../src/npz.js');
  const { readFileSync } = await import('node:fs');
  const r1 = await runCheck(float, { hw: 'lavapipe', unfused: true, seed: 3, onInputs: (f) => { writeFileSync(saved, encodeNpz(new Map(Object.entries(f)))); } });
  const loaded = Object.fromEntries(parseNpz(readFileSync(saved), saved));
  assert.deepEqual(Object.keys(loaded), ['input']);
  const x = loaded.input;
  assert.deepEqual(Array.from(x.data), Array.from(seededInput(x.data.length, 3)), 'the seeded input of seed 3');
  const r2 = await runCheck(float, { hw: 'lavapipe', unfused: true, inputs: loaded });
  assert.deepEqual(r2.outputs.map((o) => o.maxAbsError), r1.outputs.map((o) => o.maxAbsError), 'same input, same errors');
  // A bound below the error fails, one above passes; the report says which rule and how many elements.
  const err = r1.outputs[0].maxAbsError;
  assert.ok(err > 0, 'float orders differ somewhere');
  const tight = await runCheck(float, { hw: 'lavapipe', unfused: true, inputs: loaded, atol: err / 4, rtol: 0 });
  assert.equal(tight.ok, false);
  assert.ok(tight.outputs[0].overCount! >= 1);
  assert.match(formatCheck(tight), new RegExp(`\\(atol ${(err / 4).toExponential(3).replace('.', '\\.')}, rtol 0\\.000e\\+0: \\d+ elements? over\\).* FAILED\\ncheck FAILED\\n$`));
  const loose = await runCheck(float, { hw: 'lavapipe', unfused: true, inputs: loaded, atol: err, rtol: 0 });
  assert.equal(loose.ok, true);
  assert.match(formatCheck(loose), /: 0 elements over\).* PASSED\ncheck PASSED\n$/);
  // Through the CLI: the same options, and the refusals.
  const cliSaved = join(dir, 'cli-inputs.npz');
  assert.equal((await cli(['check', float, '--hw', 'lavapipe', '--unfused', '--save-inputs', cliSaved, '--atol', '1', '--json'])).code, 0);
  assert.deepEqual(Array.from(parseNpz(readFileSync(cliSaved), cliSaved).get('input')!.data), Array.from(seededInput(x.data.length, 0)));
  const failing = await cli(['check', float, '--hw', 'lavapipe', '--unfused', '--load-inputs', saved, '--atol', String(err / 4), '--json']);
  assert.equal(failing.code, 1);
  assert.match(failing.err, /output '.*' differs from onnxruntime: max abs .* \(atol .*: \d+ elements? over\)/);
  const both = await cli(['check', float, '--tolerance', '1e-3', '--atol', '1']);
  assert.equal(both.code, 2);
  assert.match(both.err, /--tolerance: give either --tolerance or --atol\/--rtol/);
  const badName = join(dir, 'bad-names.npz');
  writeFileSync(badName, encodeNpz(new Map([['nope', x]])));
  const wrong = await cli(['check', float, '--hw', 'lavapipe', '--load-inputs', badName]);
  assert.equal(wrong.code, 2);
  assert.match(wrong.err, /given input 'nope': the model's inputs are 'input'/);
});
