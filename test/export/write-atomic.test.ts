import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FcmError } from '../../src/errors.js';
import { writeAtomicFrom, writeFileAtomic } from '../../src/export/write-atomic.js';

const fresh = () => mkdtempSync(join(tmpdir(), 'fcm-atomic-'));

async function rejectsFcm(p: Promise<unknown>, code: number, re: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof FcmError, String(e));
    assert.equal(e.exitCode, code);
    assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'));
    return true;
  });
}

test('writes the bytes and leaves no temporary file', async () => {
  const dir = fresh();
  const out = join(dir, 'out.onnx');
  await writeFileAtomic(out, new Uint8Array([1, 2, 3]));
  assert.deepEqual([...readFileSync(out)], [1, 2, 3]);
  await writeFileAtomic(out, 'again');
  assert.equal(readFileSync(out, 'utf8'), 'again');
  assert.deepEqual(readdirSync(dir), ['out.onnx']);
});

test('refuses the input path, also through a symlink or another spelling', async () => {
  const dir = fresh();
  const model = join(dir, 'model.onnx');
  writeFileSync(model, 'original');
  symlinkSync(model, join(dir, 'link.onnx'));
  await rejectsFcm(writeFileAtomic(model, 'x', { notSameAs: model, what: '-o' }), 2, /-o .*model\.onnx: is the input file/);
  await rejectsFcm(writeFileAtomic(join(dir, '.', 'link.onnx'), 'x', { notSameAs: model }), 2, /is the input file/);
  await rejectsFcm(writeAtomicFrom(join(dir, 'sub', '..', 'model.onnx'), () => 'x', { notSameAs: model }), 2, /is the input file/);
  assert.equal(readFileSync(model, 'utf8'), 'original');
  assert.deepEqual(readdirSync(dir).sort(), ['link.onnx', 'model.onnx']);
});

test('a missing folder or a folder as target is a clear error and leaves nothing', async () => {
  const dir = fresh();
  await rejectsFcm(writeFileAtomic(join(dir, 'nope', 'out.onnx'), 'x'), 2, /nope.*cannot create the output file \(ENOENT\)/);
  mkdirSync(join(dir, 'folder'));
  await rejectsFcm(writeFileAtomic(join(dir, 'folder'), 'x'), 2, /is a folder/);
  assert.deepEqual(readdirSync(dir), ['folder']);
  assert.deepEqual(readdirSync(join(dir, 'folder')), []);
});

test('a failing producer leaves no output and keeps an existing file unchanged', async () => {
  const dir = fresh();
  const out = join(dir, 'out.onnx');
  await assert.rejects(writeAtomicFrom(out, () => { throw new Error('export failed'); }), /export failed/);
  assert.deepEqual(readdirSync(dir), []);
  writeFileSync(out, 'previous');
  await assert.rejects(writeAtomicFrom(out, async () => { throw new FcmError('unsupported', 'nope'); }), /nope/);
  assert.equal(readFileSync(out, 'utf8'), 'previous');
  assert.deepEqual(readdirSync(dir), ['out.onnx']);
});

test('a write error removes the temporary file', async () => {
  const dir = fresh();
  // A value fs cannot write (not a string or buffer) fails after the temp file is opened.
  await rejectsFcm(writeFileAtomic(join(dir, 'out.bin'), 42 as unknown as string), 2, /cannot write the output file/);
  assert.deepEqual(readdirSync(dir), []);
});

test('removes stale temporary files of dead writers to the same target, keeps live ones and others', async () => {
  const dir = fresh();
  const out = join(dir, 'out.onnx');
  // A pid that certainly existed and is gone now: a child that has exited.
  const { spawnSync } = await import('node:child_process');
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  const stale = `.out.onnx.${dead}.0123456789ab.tmp`;
  const live = `.out.onnx.${process.ppid}.aaaaaaaaaaaa.tmp`;
  const otherTarget = `.other.onnx.${dead}.0123456789ab.tmp`;
  const notOurs = `.out.onnx.${dead}.notatemp`;
  const groupPid = `.out.onnx.0.0123456789ab.tmp`;
  for (const f of [stale, live, otherTarget, notOurs, groupPid]) writeFileSync(join(dir, f), 'partial');
  await writeFileAtomic(out, 'new');
  assert.equal(readFileSync(out, 'utf8'), 'new');
  assert.deepEqual(readdirSync(dir).sort(), [groupPid, live, notOurs, otherTarget, 'out.onnx'].sort());
});
