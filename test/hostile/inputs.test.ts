// Files that are not files, and files too large for the budget, for every file the CLI reads (src/input-file.ts):
// a model (.onnx, .tflite, no extension), a layer DAG (.json), --hw and --input. Each is refused with one line naming
// the file, before reading: a FIFO blocked forever, a device (a symlink to /dev/zero) read without end, a sparse
// file was read whole whatever --max-memory said, and EACCES was an internal error.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportOnnx } from '../../converters/onnx/export.js';
import { fixtureModels } from '../../fixtures/models.js';
import { writeNpy } from '../../src/npy.js';
import { readInputFile, readInputFileSync } from '../../src/input-file.js';
import { FcmError } from '../../src/errors.js';
import { assertRefused, fcmOpt, isRoot } from './harness.js';

const dir = mkdtempSync(join(tmpdir(), 'fcm-hostile-in-'));
const p = (f: string) => join(dir, f);
const head = p('head.onnx');
const x = p('x.npy');
const hw = p('h100.cfg');

before(async () => {
  writeFileSync(head, exportOnnx(fixtureModels.classifier_head()));
  await writeNpy(x, { data: new Float32Array(3 * 32 * 32).fill(0.5), shape: [1, 3, 32, 32] });
  copyFileSync('hw_configs/h100.cfg', hw);
  for (const f of ['fifo.tflite', 'fifo.json', 'fifo', 'fifo.cfg', 'fifo.npy', 'fifo.onnx']) execFileSync('mkfifo', [p(f)]);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('a FIFO as model (.onnx, .tflite, no extension), layer DAG, --hw or --input: exit 2 naming it, no hang', async () => {
  const fifo = /is a FIFO \(named pipe\), not a regular file$/;
  assertRefused(await fcmOpt(['plan', p('fifo.tflite'), '--hw', 'h100']), 2, new RegExp(`fifo\\.tflite: ${fifo.source}`));
  assertRefused(await fcmOpt(['plan', p('fifo.onnx'), '--hw', 'h100']), 2, new RegExp(`fifo\\.onnx: ${fifo.source}`));
  assertRefused(await fcmOpt(['plan', p('fifo.json'), '--hw', 'h100']), 2, new RegExp(`fifo\\.json: ${fifo.source}`));
  assertRefused(await fcmOpt(['dag', p('fifo')]), 2, new RegExp(`fifo: ${fifo.source}`));
  assertRefused(await fcmOpt(['plan', head, '--hw', p('fifo.cfg')]), 2, new RegExp(`fifo\\.cfg: ${fifo.source}`));
  const y = p('y-fifo.npy');
  assertRefused(await fcmOpt(['run', head, '--input', p('fifo.npy'), '--output', y]), 2, new RegExp(`fifo\\.npy: ${fifo.source}`), { absent: [y], dir });
});

test('a character device (through a symlink) as model, DAG, --hw or --input: exit 2, never read', async (t) => {
  // A device of our own (a copy of /dev/null: reading it would end at once, so a regression fails on the message,
  // not by reading without end); without root, a symlink to /dev/null.
  const dev = p('null-dev');
  if (isRoot) execFileSync('mknod', [dev, 'c', '1', '3']);
  else symlinkSync('/dev/null', dev);
  for (const f of ['dev.tflite', 'dev.json', 'dev.cfg', 'dev.npy', 'devmodel']) symlinkSync(dev, p(f));
  const chr = /is a character device, not a regular file$/;
  assertRefused(await fcmOpt(['plan', p('dev.tflite'), '--hw', 'h100', '--max-memory', '100M']), 2, new RegExp(`dev\\.tflite: ${chr.source}`));
  assertRefused(await fcmOpt(['plan', p('dev.json'), '--hw', 'h100']), 2, new RegExp(`dev\\.json: ${chr.source}`));
  assertRefused(await fcmOpt(['dag', p('devmodel')]), 2, new RegExp(`devmodel: ${chr.source}`));
  assertRefused(await fcmOpt(['plan', head, '--hw', p('dev.cfg')]), 2, new RegExp(`dev\\.cfg: ${chr.source}`));
  assertRefused(await fcmOpt(['run', head, '--input', p('dev.npy'), '--output', p('y-dev.npy')]), 2, new RegExp(`dev\\.npy: ${chr.source}`), { absent: [p('y-dev.npy')], dir });
  t.diagnostic(isRoot ? 'device made with mknod' : 'symlink to /dev/null (not root)');
});

test('a folder as model or --hw: exit 2', async () => {
  mkdirSync(p('folder.onnx'));
  assertRefused(await fcmOpt(['plan', p('folder.onnx'), '--hw', 'h100']), 2, /folder\.onnx: is a folder, not a regular file$/);
  assertRefused(await fcmOpt(['dag', dir]), 2, /is a folder, not a regular file$/);
  assertRefused(await fcmOpt(['plan', head, '--hw', dir]), 2, /is a folder, not a regular file$/);
});

test('files over --max-memory are refused before reading (sparse files: no disk, no memory)', async () => {
  // 1.5 GB .tflite under a 100 MiB budget: was read whole (3 GB RSS) and then called not a TFLite file.
  const tfl = p('sparse.tflite');
  writeFileSync(tfl, '');
  truncateSync(tfl, 1500 * 2 ** 20);
  assertRefused(await fcmOpt(['plan', tfl, '--hw', 'h100', '--max-memory', '100M']), 4, /sparse\.tflite: the file has 1572864000 bytes, over the memory budget of 104857600 bytes \(--max-memory\)$/);
  // 3 GiB under the default 4 GiB budget: over what a flatbuffer can address (was exit 2, "greater than 2 GiB").
  truncateSync(tfl, 3 * 2 ** 30);
  assertRefused(await fcmOpt(['plan', tfl, '--hw', 'h100']), 4, /sparse\.tflite: the file has 3221225472 bytes, over the largest TFLite \(flatbuffer\) file of 2147483647 bytes$/);
  const onnx = p('sparse.onnx');
  writeFileSync(onnx, '');
  truncateSync(onnx, 200 * 2 ** 20);
  assertRefused(await fcmOpt(['plan', onnx, '--hw', 'h100', '--max-memory', '100M']), 4, /sparse\.onnx: the file has 209715200 bytes, over the memory budget/);
  const noext = p('sparse-model');
  writeFileSync(noext, '');
  truncateSync(noext, 200 * 2 ** 20);
  assertRefused(await fcmOpt(['dag', noext, '--max-memory', '100M']), 4, /sparse-model: the file has 209715200 bytes, over the memory budget/);
  const dag = p('sparse.json');
  writeFileSync(dag, '');
  truncateSync(dag, 200 * 2 ** 20);
  assertRefused(await fcmOpt(['plan', dag, '--hw', 'h100', '--max-memory', '100M']), 4, /sparse\.json: the file has 209715200 bytes, over the memory budget/);
  const npy = p('sparse.npy');
  writeFileSync(npy, '');
  truncateSync(npy, 200 * 2 ** 20);
  assertRefused(await fcmOpt(['run', head, '--input', npy, '--output', p('y-big.npy'), '--max-memory', '100M']), 4, /sparse\.npy: the file has 209715200 bytes, over the memory budget/, { absent: [p('y-big.npy')], dir });
  // --hw files have a fixed limit (a real one is a few hundred bytes).
  const cfg = p('sparse.cfg');
  writeFileSync(cfg, '');
  truncateSync(cfg, 5 * 2 ** 20);
  assertRefused(await fcmOpt(['plan', head, '--hw', cfg]), 4, /sparse\.cfg: the file has 5242880 bytes, over the limit for a hardware description of 4194304 bytes$/);
  for (const f of [tfl, onnx, noext, dag, npy, cfg]) rmSync(f);
});

test('an unreadable model or --hw file (EACCES): exit 2 naming the path, not an internal error', async () => {
  const m = p('noread.onnx');
  const c = p('noread.cfg');
  copyFileSync(head, m);
  copyFileSync(hw, c);
  chmodSync(m, 0o000);
  chmodSync(c, 0o000);
  // root reads anything: run the CLI as 'nobody' then (the folder must be searchable for it).
  const as = isRoot ? { uid: 65534, gid: 65534 } : {};
  if (isRoot) chmodSync(dir, 0o755);
  assertRefused(await fcmOpt(['plan', m, '--hw', 'h100'], as), 2, /noread\.onnx: cannot read \(EACCES: permission denied\)$/);
  assertRefused(await fcmOpt(['plan', head, '--hw', c], as), 2, /noread\.cfg: cannot read \(EACCES: permission denied\)$/);
  assertRefused(await fcmOpt(['dag', m], as), 2, /noread\.onnx: cannot read \(EACCES: permission denied\)$/);
  chmodSync(dir, 0o700);
});

test('the gate itself: regular files read whole; others refused with the FcmError kind of their exit code', async () => {
  const f = p('small.bin');
  writeFileSync(f, Uint8Array.of(1, 2, 3));
  assert.deepEqual([...await readInputFile(f, { maxBytes: 3 })], [1, 2, 3]);
  assert.deepEqual([...readInputFileSync(f, { maxBytes: 3 })], [1, 2, 3]);
  const kind = (k: string, re: RegExp) => (e: unknown) => e instanceof FcmError && e.kind === k && re.test(e.message);
  await assert.rejects(readInputFile(f, { maxBytes: 2 }), kind('limit', /small\.bin: the file has 3 bytes, over the memory budget of 2 bytes/));
  assert.throws(() => readInputFileSync(f, { maxBytes: 2, limitName: 'the test limit' }), kind('limit', /over the test limit of 2 bytes$/));
  await assert.rejects(readInputFile(p('fifo'), { maxBytes: 100 }), kind('invalid', /is a FIFO/));
  assert.throws(() => readInputFileSync(p('fifo'), { maxBytes: 100 }), kind('invalid', /is a FIFO/));
  await assert.rejects(readInputFile(p('none'), { maxBytes: 100 }), kind('invalid', /none: cannot read \(ENOENT: no such file\)$/));
  symlinkSync(p('loop2'), p('loop1'));
  symlinkSync(p('loop1'), p('loop2'));
  assert.throws(() => readInputFileSync(p('loop1'), { maxBytes: 100 }), kind('invalid', /loop1: cannot read \(ELOOP: too many levels of symbolic links\)$/));
});
