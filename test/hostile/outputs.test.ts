// Output targets (src/export/write-atomic.ts, the one writer of every output file): an output that is an input (by
// path, hard link or symlink), a device, a FIFO or a folder is refused before any work, and the target is left
// as it was; a successful write leaves no temporary file; a writer ended by SIGTERM removes its temporary file.
// Found: `-o` onto a character device replaced the device node with a regular file (as root), `run --output` could
// name the model or the input and overwrote it, and its temporary file was visible, unsynced and never cleaned.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, linkSync, lstatSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportOnnx } from '../../converters/onnx/export.js';
import { fixtureModels } from '../../fixtures/models.js';
import { readNpy, writeNpy } from '../../src/npy.js';
import { checkOutputTarget } from '../../src/export/write-atomic.js';
import { FcmError } from '../../src/errors.js';
import { assertRefused, fcmOpt, isRoot, ownLines } from './harness.js';

const dir = mkdtempSync(join(tmpdir(), 'fcm-hostile-out-'));
const p = (f: string) => join(dir, f);
const head = p('head.onnx');
const x = p('x.npy');
let headBytes: Uint8Array;
let xBytes: Buffer;

before(async () => {
  headBytes = exportOnnx(fixtureModels.classifier_head());
  writeFileSync(head, headBytes);
  await writeNpy(x, { data: new Float32Array(3 * 32 * 32).fill(0.5), shape: [1, 3, 32, 32] });
  xBytes = readFileSync(x);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const unchanged = () => {
  assert.deepEqual(readFileSync(head), Buffer.from(headBytes), 'the model was changed');
  assert.deepEqual(readFileSync(x), xBytes, 'the input was changed');
};

test('a character device as -o, --dag, --plan or run --output: refused, the device node stays', async (t) => {
  if (!isRoot) {
    t.skip('making a device node needs root (the FIFO test covers non-regular targets)');
    return;
  }
  // Never /dev/*: a device of our own, a copy of /dev/null (c 1 3).
  const dev = p('null-dev');
  execFileSync('mknod', [dev, 'c', '1', '3']);
  const still = () => assert.ok(lstatSync(dev).isCharacterDevice(), 'the device node was replaced');
  const msg = /null-dev: is a character device, not a regular file; refusing to replace or write it/;
  assertRefused(await fcmOpt(['plan', head, '--hw', 'h100', '-o', dev]), 2, msg, { dir });
  still();
  assertRefused(await fcmOpt(['plan', head, '--hw', 'h100', '--dag', dev]), 2, msg, { dir });
  assertRefused(await fcmOpt(['plan', head, '--hw', 'h100', '--plan', dev]), 2, msg, { dir });
  assertRefused(await fcmOpt(['dag', head, '-o', dev]), 2, msg, { dir });
  assertRefused(await fcmOpt(['report', head, '--hw', 'h100', '-o', dev]), 2, msg, { dir });
  assertRefused(await fcmOpt(['run', head, '--input', x, '--output', dev]), 2, msg, { dir });
  // Through a symlink too.
  symlinkSync(dev, p('dev-link.onnx'));
  assertRefused(await fcmOpt(['plan', head, '--hw', 'h100', '-o', p('dev-link.onnx')]), 2, /dev-link\.onnx: is a character device/, { dir });
  still();
  assert.ok(lstatSync(p('dev-link.onnx')).isSymbolicLink());
});

test('a FIFO or a folder as output: refused at once (writing a FIFO without a reader blocks), left as it was', async () => {
  const fifo = p('out.fifo');
  execFileSync('mkfifo', [fifo]);
  assertRefused(await fcmOpt(['plan', head, '--hw', 'h100', '-o', fifo]), 2, /out\.fifo: is a FIFO \(named pipe\), not a regular file/, { dir });
  assertRefused(await fcmOpt(['dag', head, '-o', fifo]), 2, /out\.fifo: is a FIFO/, { dir });
  assertRefused(await fcmOpt(['run', head, '--input', x, '--output', fifo]), 2, /out\.fifo: is a FIFO/, { dir });
  assert.ok(lstatSync(fifo).isFIFO());
  assertRefused(await fcmOpt(['plan', head, '--hw', 'h100', '-o', dir]), 2, /is a folder, not a file path$/, { dir });
  // A missing folder is refused before the run, with the error creating the file would give.
  assertRefused(await fcmOpt(['run', head, '--input', x, '--output', p('no-folder/y.npy')]), 2, /--output .*no-folder\/y\.npy: cannot create the output file \(ENOENT\)$/, { dir });
});

test('run --output naming the model or the input (by path, hard link or symlink): refused before any work', async () => {
  const input = /is the input file '.*'; refusing to overwrite it/;
  assertRefused(await fcmOpt(['run', head, '--input', x, '--output', head]), 2, input, { dir });
  assertRefused(await fcmOpt(['run', head, '--input', x, '--output', x]), 2, input, { dir });
  linkSync(x, p('x-hard.npy'));
  assertRefused(await fcmOpt(['run', head, '--input', x, '--output', p('x-hard.npy')]), 2, /x-hard\.npy: is the input file/, { dir });
  symlinkSync(head, p('head-link.onnx'));
  assertRefused(await fcmOpt(['run', head, '--input', x, '--output', p('head-link.onnx')]), 2, /head-link\.onnx: is the input file/, { dir });
  // plan, dag and report too, and the --hw file.
  const cfg = p('my.cfg');
  copyFileSync('hw_configs/h100.cfg', cfg);
  assertRefused(await fcmOpt(['plan', head, '--hw', 'h100', '-o', head]), 2, input, { dir });
  assertRefused(await fcmOpt(['plan', head, '--hw', cfg, '--plan', cfg]), 2, /my\.cfg: is the input file/, { dir });
  assertRefused(await fcmOpt(['dag', head, '-o', p('head-link.onnx')]), 2, input, { dir });
  assertRefused(await fcmOpt(['report', head, '--hw', 'h100', '-o', head]), 2, input, { dir });
  unchanged();
  assert.equal(readFileSync(cfg, 'utf8'), readFileSync('hw_configs/h100.cfg', 'utf8'));
});

test('two outputs naming one file: refused, nothing written', async () => {
  const same = p('same.json');
  assertRefused(await fcmOpt(['plan', head, '--hw', 'h100', '--dag', same, '--plan', same]), 2, /--plan .*same\.json: is also the --dag output/, { absent: [same], dir });
});

test('a successful run writes a regular file and leaves no temporary file', async () => {
  const y = p('y.npy');
  const r = await fcmOpt(['run', head, '--unfused', '--input', x, '--output', y]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(ownLines(r), []);
  assert.ok(statSync(y).isFile());
  assert.deepEqual((await readNpy(y)).shape, [1, 10]);
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  unchanged();
});

test('checkOutputTarget: the kind of refusal (exit 2) and the canonical target otherwise', async () => {
  const isInvalid = (re: RegExp) => (e: unknown) => e instanceof FcmError && e.kind === 'invalid' && re.test(e.message);
  await assert.rejects(checkOutputTarget(x, { notSameAs: [x], what: '--output' }), isInvalid(/^--output .*x\.npy: is the input file/));
  await assert.rejects(checkOutputTarget(dir), isInvalid(/is a folder/));
  assert.equal(await checkOutputTarget(p('new.npy'), { notSameAs: [x] }), join(realpathSync(dir), 'new.npy'));
});

// The writer ended by SIGTERM in the middle of a large write: its temporary file is removed, and it dies of SIGTERM.
const self = fileURLToPath(import.meta.url);
const ts = self.endsWith('.ts');
const child = join(self, '..', '..', '..', 'src', 'fuzz', `atomic-write-child.${ts ? 'ts' : 'js'}`);

test('SIGTERM mid-write: the temporary file is removed, the previous output stays whole', async (t) => {
  const out = p('OUT.onnx');
  writeFileSync(out, 'previous');
  const temps = () => readdirSync(dir).filter((f) => f.startsWith('.OUT.onnx.'));
  const r = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; seen: boolean }>((done, fail) => {
    const c = spawn(process.execPath, [...(ts ? ['--import', 'tsx'] : []), child, out, '256', '2'], { stdio: 'ignore' });
    let seen = false;
    const poll = setInterval(() => {
      if (temps().length > 0 && !seen) {
        seen = true;
        c.kill('SIGTERM');
      }
    }, 1);
    c.on('error', fail);
    c.on('exit', (code, signal) => {
      clearInterval(poll);
      done({ code, signal, seen });
    });
  });
  assert.ok(r.seen, 'the temporary file was never seen');
  assert.deepEqual(temps(), [], 'the temporary file was left');
  // The signal arrives while the 256 MiB temporary file is written (the write takes far longer than the 1 ms poll);
  // should the write ever win the race, the output is the whole new model, never a part.
  if (r.signal === 'SIGTERM') assert.equal(readFileSync(out, 'utf8'), 'previous');
  else {
    assert.equal(r.code, 0);
    assert.ok(statSync(out).size > 256 * 2 ** 20);
    t.diagnostic('the write finished before SIGTERM arrived');
  }
});
