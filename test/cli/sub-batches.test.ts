// `--sub-batches auto|K` (run, bench): SessionOptions.subBatches. `run` splits as asked and gives the unsplit
// outputs; a K that does not divide the batch, or no number, is exit 2 on one line.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportOnnx } from '../../converters/onnx/export.js';
import { FcmError } from '../../src/errors.js';
import { parseSubBatches } from '../../src/cli/options.js';
import { formatBench } from '../../src/bench/format.js';
import { parseNpz } from '../../src/npz.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { graph } from '../graph/helpers.js';
import { cli } from './run-cli.js';

after(releaseGpu);

const dir = mkdtempSync(join(tmpdir(), 'fcm-sub-batches-'));
// x [4, 6] -> Sigmoid(x) * x, Softmax over the last axis: per-row work, so the batch of 4 splits.
const model = join(dir, 'rows.onnx');
writeFileSync(model, exportOnnx(graph({
  inputs: { x: [4, 6] },
  nodes: [{ op: 'Sigmoid', in: ['x'], out: ['s'] }, { op: 'Mul', in: ['s', 'x'], out: ['m'] }, { op: 'Softmax', in: ['m'], out: ['y'], attrs: { axis: -1 } }],
  outputs: ['y'],
})));

test('parseSubBatches: auto, or an integer >= 1; anything else is exit 2 naming the option', () => {
  assert.equal(parseSubBatches('auto'), 'auto');
  assert.equal(parseSubBatches('4'), 4);
  assert.equal(parseSubBatches('1'), 1);
  for (const bad of ['0', '-2', '2.5', 'two', '']) {
    assert.throws(() => parseSubBatches(bad), (e: unknown) => e instanceof FcmError && e.exitCode === 2 && /--sub-batches/.test(e.message), bad);
  }
});

test('run --sub-batches 2: reported in --json and in the summary, the outputs of --sub-batches 1', async () => {
  const out: Float32Array[] = [];
  for (const k of ['1', '2']) {
    const file = join(dir, `out${k}.npz`);
    const r = await cli('run', model, '--unfused', '--sub-batches', k, '--output', file, '--json');
    assert.equal(r.code, 0, r.err);
    assert.equal((JSON.parse(r.out) as { subBatches: number }).subBatches, Number(k));
    out.push(parseNpz(readFileSync(file), file).get('y')!.data as Float32Array);
  }
  assert.equal(out[0].length, 24);
  // The same kernels on the same rows: element-wise ops and a per-row softmax do not depend on the batch.
  assert.deepEqual(out[1], out[0]);
  const text = await cli('run', model, '--unfused', '--sub-batches', '4');
  assert.equal(text.code, 0, text.err);
  assert.match(text.out, /^ran as 4 sub-batches of 1$/m);
});

test('run --sub-batches 3 on a batch of 4, or --sub-batches x: exit 2, one line', async () => {
  const r = await cli('run', model, '--unfused', '--sub-batches', '3');
  assert.equal(r.code, 2);
  assert.match(r.err, /subBatches 3 does not divide the batch of 4/);
  assert.equal(r.err.trim().split('\n').length, 1, r.err);
  const bad = await cli('run', model, '--sub-batches', 'x');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--sub-batches: expected 'auto' or an integer >= 1, got 'x'/);
});

test('the bench report says which split the fused session ran, and how its per-module times are meant', () => {
  const report = { model: 'm.onnx', hw: 'h100', device: 'd', batch: 32, runs: 1, warmup: 0, block: 1, results: [], layers: [] };
  const split = formatBench({ ...report, subBatches: 4 });
  assert.match(split, /^m\.onnx: batch 32 \(run as 4 sub-batches of 8\), /);
  assert.match(split, /split sessions: each node's time at the sub-batch of 8, times 4/);
  const whole = formatBench({ ...report, subBatches: 1 });
  assert.match(whole, /^m\.onnx: batch 32, /);
  assert.doesNotMatch(whole, /sub-batch/);
});
