// `fcm-opt run` and `fcm-opt check` through the CLI entry (src/cli/main.ts), on small fixture models.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { fixtureModels } from '../../fixtures/models.js';
import { readNpy, writeNpy } from '../../src/npy.js';
import { formatCheck, runCheck } from '../../src/cli/check.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { seededInput } from '../../src/runtime/compare.js';

after(releaseGpu);

const dir = mkdtempSync(join(tmpdir(), 'fcm-cli-'));
const model = join(dir, 'head.onnx');
writeFileSync(model, exportOnnx(fixtureModels.classifier_head()));
const se = join(dir, 'se.onnx');
writeFileSync(se, exportOnnx(fixtureModels.squeeze_excite()));

// Only stderr is captured: node:test's reporter talks to its parent over stdout, so commands that print to
// stdout (check) are tested through runCheck/formatCheck, the functions the command prints.
async function cli(args: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const w2 = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => { err += s; return true; }) as typeof process.stderr.write;
  process.exitCode = undefined;
  try {
    const code = await main(['node', 'fcm-opt', ...args]);
    return { code, err };
  } finally {
    process.stderr.write = w2;
    process.exitCode = undefined;
  }
}

test('run writes the first output as .npy; a wrong input shape fails without writing', async () => {
  const input = join(dir, 'in.npy');
  await writeNpy(input, { data: seededInput(3 * 32 * 32, 1), shape: [1, 3, 32, 32] });
  const r = await cli(['run', model, '--unfused', '--input', input, '--output', join(dir, 'out.npy')]);
  assert.equal(r.code, 0, r.err);
  const y = await readNpy(join(dir, 'out.npy'));
  assert.deepEqual(y.shape, [1, 10]);
  assert.ok(y.data.some((v) => v !== 0));
  await writeNpy(input, { data: new Float32Array(3 * 16 * 16), shape: [1, 3, 16, 16] });
  const bad = await cli(['run', model, '--input', input, '--output', join(dir, 'bad.npy')]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /^fcm-opt: .*in\.npy: has shape \(1, 3, 16, 16\), input 'input' of the model is \[1,3,32,32\]\n$/);
  assert.ok(!existsSync(join(dir, 'bad.npy')));
  assert.ok(!readdirSync(dir).some((f) => f.endsWith('.tmp')));
});

test('check passes against onnxruntime, fused and unfused', async () => {
  const rep = await runCheck(se, { hw: 'rtxa4000' });
  assert.equal(rep.ok, true, formatCheck(rep));
  assert.equal(rep.plan, 'auto');
  assert.equal(rep.outputs.length, 1);
  assert.ok(rep.outputs[0].cosine > 0.9999);
  assert.ok(rep.outputs[0].maxAbsError <= rep.outputs[0].tolerance);
  const u = await runCheck(model, { unfused: true });
  assert.equal(u.plan, 'unfused');
  assert.match(formatCheck(u), /top-1 100\.0%.*PASSED\ncheck PASSED\n$/s);
});

test('check --per-layer compares intermediates and names the first node that goes wrong', async () => {
  const rep = await runCheck(se, { unfused: true, perLayer: true });
  assert.ok(rep.layers && rep.layers.length >= 3, `${rep.layers?.length} layers compared`);
  assert.equal(rep.firstBadNode, undefined);
  assert.ok(rep.layers.every((l) => l.maxAbsError <= l.tolerance));
  // Break fcm-opt's side only: the first convolution of the squeeze-excite branch gets a wrong bias.
  let broken = '';
  const bad = await runCheck(se, {
    unfused: true, perLayer: true,
    transformGraph: (g) => {
      const convs = g.nodes.filter((n) => n.op === 'Conv');
      const n = convs[1];
      broken = n.name;
      const b = g.tensors.get(n.inputs[2])!;
      const data = Float32Array.from(b.data as Float32Array, (v) => v + 0.5);
      g.tensors.set(b.name, { ...b, data });
      return g;
    },
  });
  assert.equal(bad.ok, false);
  assert.equal(bad.firstBadNode, broken);
  assert.match(formatCheck(bad), new RegExp(`first node over tolerance: ${broken}\\ncheck FAILED`));
});

test('check refuses a missing file with a clear error (TFLite files are checked: test/check/cli.test.ts)', async () => {
  const t = await cli(['check', join(dir, 'm.tflite')]);
  assert.equal(t.code, 2);
  assert.match(t.err, /m\.tflite: cannot read/);
  const m = await cli(['check', join(dir, 'missing.onnx')]);
  assert.equal(m.code, 2);
  assert.match(m.err, /missing\.onnx/);
});
