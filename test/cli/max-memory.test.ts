// `--max-memory <bytes|4G|512M>` (a limit checked before allocation): every command that imports a model
// takes it (src/cli/options.ts maxMemoryOption) and passes it to ImportOptions.maxMemory; a budget smaller
// than the model is refused with exit 4 before the model is decoded (and before any GPU work).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseMaxMemory } from '../../src/cli/options.js';
import { FcmError } from '../../src/errors.js';
import { writeNpy } from '../../src/npy.js';
import { cli } from './run-cli.js';

const bundled = resolve('fixtures/bundled/mobilenetv2-slim.onnx');


test('parseMaxMemory: bytes and binary units; anything else is exit 2', () => {
  assert.equal(parseMaxMemory('4G'), 4 * 2 ** 30);
  assert.equal(parseMaxMemory('512M'), 512 * 2 ** 20);
  assert.equal(parseMaxMemory('512mib'), 512 * 2 ** 20);
  assert.equal(parseMaxMemory('1.5K'), 1536);
  assert.equal(parseMaxMemory('1048576'), 2 ** 20);
  assert.equal(parseMaxMemory(' 2 GB '), 2 * 2 ** 30);
  for (const bad of ['0', '-1', '', 'abc', '4X', '1e9', '0.1', 'G', '99999999999T']) {
    assert.throws(() => parseMaxMemory(bad), (e: unknown) => e instanceof FcmError && e.exitCode === 2 && /--max-memory/.test(e.message), bad);
  }
});

test('a budget smaller than the bundled model: exit 4 from every command that imports it', async (t) => {
  const size = statSync(bundled).size;
  assert.ok(size > 2 ** 20, 'the bundled model is over 1 MiB');
  const dir = mkdtempSync(join(tmpdir(), 'fcm-maxmem-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const input = join(dir, 'x.npy');
  await writeNpy(input, { data: new Float32Array(3 * 224 * 224), shape: [1, 3, 224, 224] });
  const runs: Array<[string, string[]]> = [
    ['plan', ['plan', bundled, '--hw', 'rtxa4000', '--max-memory', '1M']],
    ['default', [bundled, '--hw', 'rtxa4000', '--max-memory', '1M', '-o', join(dir, 'out.onnx')]],
    ['dag', ['dag', bundled, '--max-memory', '1M', '-o', join(dir, 'dag.json')]],
    ['run', ['run', bundled, '--input', input, '--output', join(dir, 'y.npy'), '--max-memory', '1M']],
    ['check', ['check', bundled, '--max-memory', '1M']],
    ['bench', ['bench', bundled, '--hw', 'rtxa4000', '--max-memory', '1M']],
    ['report', ['report', bundled, '--hw', 'rtxa4000', '-o', join(dir, 'r.html'), '--max-memory', '1M']],
  ];
  for (const [name, args] of runs) {
    const r = await cli(...args);
    assert.equal(r.code, 4, `${name}: ${r.err}`);
    assert.match(r.err, /mobilenetv2-slim\.onnx.*(budget|max-memory|memory)/i, name);
    assert.equal(r.err.trim().split('\n').length, 1, `${name}: one line, no stack trace`);
  }
  // Nothing was written.
  for (const f of ['out.onnx', 'dag.json', 'y.npy', 'r.html']) assert.throws(() => statSync(join(dir, f)), f);
});

test('the default budget (4 GiB) and an ample explicit one plan the bundled model; a bad value is exit 2', async () => {
  for (const extra of [[], ['--max-memory', '256M']]) {
    const r = await cli('plan', bundled, '--hw', 'rtxa4000', ...extra);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /fused modules/);
  }
  const bad = await cli('dag', bundled, '--max-memory', 'lots');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--max-memory/);
});
