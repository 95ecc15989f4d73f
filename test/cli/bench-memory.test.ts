// `fcm-opt bench --max-memory` charges the whole command, not only the import: fcm-opt's sessions (their GPU
// buffers) and onnxruntime's sessions. A model that imports in a few MiB but whose activations are large is
// refused with exit 4 at the step that goes over, named in the one stderr line.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { encodeModel, onnx } from '../../converters/onnx/codec.js';
import { fcmOpt, ownLines } from './spawn-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'fcm-bench-memory-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const model = join(dir, 'wide.onnx');

/** x [1,4,512,512] (4 MiB) -> 1x1 Conv to 64 channels (64 MiB a tensor) -> 12 1x1 Convs 64->64 -> 1x1 Conv to 1 -> y.
 *  The file is under 0.3 MiB; fcm-opt's memory plan reuses two 64 MiB buffers (about 260 MiB with both sessions'
 *  estimates), onnxruntime is charged every activation (13 x 64 MiB: about 850 MiB). */
function wideModel(layers: number): Uint8Array {
  const F = onnx.TensorProto.DataType.FLOAT;
  const w = (name: string, o: number, i: number) => ({ name, dims: [o, i, 1, 1], dataType: F, rawData: new Uint8Array(Float32Array.from({ length: o * i }, (_, k) => ((k * 7) % 5 - 2) / 8).buffer) });
  const init = [w('w0', 64, 4), ...Array.from({ length: layers }, (_, k) => w(`w${k + 1}`, 64, 64)), w('wl', 1, 64)];
  const node = [{ name: 'c0', opType: 'Conv', input: ['x', 'w0'], output: ['t0'] },
    ...Array.from({ length: layers }, (_, k) => ({ name: `c${k + 1}`, opType: 'Conv', input: [`t${k}`, `w${k + 1}`], output: [`t${k + 1}`] })),
    { name: 'cl', opType: 'Conv', input: [`t${layers}`, 'wl'], output: ['y'] }];
  return encodeModel({
    irVersion: 8, opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'g', initializer: init, node,
      input: [{ name: 'x', type: { tensorType: { elemType: F, shape: { dim: [{ dimValue: 1 }, { dimValue: 4 }, { dimValue: 512 }, { dimValue: 512 }] } } } }],
      output: [{ name: 'y', type: { tensorType: { elemType: F } } }],
    },
  });
}

before(() => {
  assert.ok(existsSync(resolve('dist/src/cli/main.js')), 'bin/fcm-opt.js runs the built CLI: npm run build first');
  writeFileSync(model, wideModel(12));
});

const bench = (budget: string, ...extra: string[]) => fcmOpt(['bench', model, '--hw', 'h100', '--runs', '1', '--warmup', '0', '--json', '--max-memory', budget, ...extra]);

function assertOver(r: { code: number | null; out: string; err: string }, step: RegExp): void {
  assert.equal(r.code, 4, r.err);
  assert.equal(r.out, '', 'no report');
  const lines = ownLines(r.err);
  assert.equal(lines.length, 1, r.err);
  assert.match(lines[0], step);
}

// The budgets sit between what a fresh process holds after the import (about 140-160 MiB with Node, Dawn and
// lavapipe loaded) and that plus each step's estimate, with 90 MiB or more either side.
test('bench --max-memory 250M: the import fits, fcm-opt\'s session buffers do not (exit 4 naming them)', async () => {
  assertOver(await bench('250M'), /wide\.onnx: the session's GPU buffers: about \d+\.\d MiB more on top of \d+\.\d MiB in use, over the memory budget of 250\.0 MiB \(--max-memory\)/);
});

test('bench --max-memory 600M: fcm-opt\'s sessions fit, onnxruntime\'s session does not (exit 4 naming it)', async () => {
  assertOver(await bench('600M'), /wide\.onnx: onnxruntime's webgpu session: about \d+\.\d MiB more on top of \d+\.\d MiB in use, over the memory budget of 600\.0 MiB \(--max-memory\)/);
});

test('--tune --max-memory 250M: the tuner\'s sessions are charged too (exit 4 before any tuning run)', async () => {
  const over = /wide\.onnx: the session's GPU buffers: about \d+\.\d MiB more on top of \d+\.\d MiB in use, over the memory budget of 250\.0 MiB \(--max-memory\)/;
  assertOver(await bench('250M', '--tune'), over);
  // plan --tune prints a line per tuning step on stderr; over the budget there is only the error (and no plan).
  assertOver(await fcmOpt(['plan', model, '--hw', 'h100', '--tune', '--max-memory', '250M']), over);
});
