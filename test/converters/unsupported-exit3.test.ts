// The rule for valid files with ops fcm-opt cannot run: exit 3 (unsupported) naming the op and the node, never
// exit 2 (invalid), which would call a valid file broken. Checked through the CLI on a TFLite file (float16
// weights behind DEQUANTIZE feeding a depthwise conv, then an op without a kernel) and an ONNX file (a Conv,
// then an op the IR does not know).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { exportOnnx } from '../../converters/onnx/export.js';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { fp16WithUnsupportedOp } from '../../fixtures/real-model-classes.js';
import { writeNpy } from '../../src/npy.js';
import { cli } from '../cli/run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'fcm-exit3-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function onnxWithUnknownOp(): Uint8Array {
  const b = new GraphBuilder('erf', 3);
  const x = b.input('x', [1, 4, 6, 6]);
  const c = b.conv(x, { filters: 4, kernel: 3, group: 4 });
  const y = b.node('Erf', [c], [1, 4, 6, 6]);
  return exportOnnx(b.build([y]));
}

const models = [
  { file: 'fp16-l2norm.tflite', bytes: fp16WithUnsupportedOp, op: /L2_NORMALIZATION/, node: /l2_normalization_2/, shape: [1, 4, 6, 6] },
  { file: 'erf.onnx', bytes: onnxWithUnknownOp, op: /Erf/, node: /Erf/, shape: [1, 4, 6, 6] },
];

describe('an op fcm-opt cannot run exits 3 naming the op and the node', () => {
  for (const m of models) {
    it(`${m.file}: plan works, run and check exit 3`, async () => {
      const path = join(dir, m.file);
      writeFileSync(path, m.bytes());
      const input = join(dir, `${m.file}.in.npy`);
      await writeNpy(input, { shape: m.shape, data: new Float32Array(m.shape.reduce((a, b) => a * b, 1)).fill(0.5) });
      const plan = await cli('plan', path, '--hw', 'h100');
      assert.equal(plan.code, 0, plan.err);
      for (const args of [['run', path, '--input', input, '--output', join(dir, 'out.npy')], ['check', path, '--hw', 'h100']]) {
        const r = await cli(...args);
        assert.equal(r.code, 3, `${args[0]}: ${r.err}`);
        assert.match(r.err, m.op, r.err);
        assert.match(r.err, m.node, r.err);
        assert.equal(r.err.trim().split('\n').length, 1, 'one line');
      }
    });
  }
});
