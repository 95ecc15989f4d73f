// CLI conventions: --version, mistyped commands and options are errors with a suggestion (exit 2), and the
// default command still takes a model path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { cli } from './run-cli.js';

test('--version and -V print the version of package.json, exit 0', async () => {
  const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const r = await cli(flag);
    assert.equal(r.code, 0);
    assert.equal(r.out.trim(), version);
  }
});

test('a mistyped command is exit 2 with the nearest command; an unknown word lists the commands', async () => {
  const typo = await cli('pln', 'm.onnx', '--hw', 'h100');
  assert.equal(typo.code, 2);
  assert.match(typo.err, /^fcm-opt: command 'pln': is neither a command \(plan, .*\) nor a model file; did you mean 'plan'\?\n$/);
  const word = await cli('frobnicate', 'x');
  assert.equal(word.code, 2);
  assert.match(word.err, /command 'frobnicate': is neither a command \(plan, dag, bench, report, run, check\) nor a model file\n$/);
  assert.doesNotMatch(word.err, /--hw/, 'not read as a model that lacks --hw');
});

test('an unknown option is exit 2 with a suggestion', async () => {
  const r = await cli('plan', 'models/mobilenetv2-x0.35-c100.onnx', '--hw', 'h100', '--jsn');
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown option '--jsn'/);
  assert.match(r.err, /Did you mean --json\?/);
});

test('the default command takes a model path, a missing one included (then the file error, exit 2)', async () => {
  const ok = await cli('models/mobilenetv2-x0.35-c100.onnx', '--hw', 'h100', '--json');
  assert.equal(ok.code, 0, ok.err);
  assert.ok(Array.isArray((JSON.parse(ok.out) as { modules: unknown[] }).modules));
  const missing = await cli('nosuch.onnx', '--hw', 'h100');
  assert.equal(missing.code, 2);
  assert.match(missing.err, /nosuch\.onnx: cannot read/);
});

test('--hw: one option, default auto, on every command that plans', async () => {
  const texts = new Set<string>();
  for (const cmd of ['plan', 'run', 'check', 'bench', 'report']) {
    const r = await cli(cmd, '--help');
    assert.equal(r.code, 0);
    const m = /--hw <cfg>\s+([\s\S]*?\(default: "auto"\))/.exec(r.out);
    assert.ok(m, `${cmd} --help: ${r.out}`);
    texts.add(m[1].replace(/\s+/g, ' '));
  }
  assert.equal(texts.size, 1, [...texts].join('\n'));
});

test('plan without --hw plans for this machine\'s adapter (lavapipe here)', async () => {
  const r = await cli('plan', 'models/mobilenetv2-x0.35-c100.onnx', '--json');
  assert.equal(r.code, 0, r.err);
  const plan = JSON.parse(r.out) as { hw: string };
  assert.match(plan.hw, /^(lavapipe|llvmpipe)/i, 'described from the adapter');
});

test('a reader that closes the pipe early (fcm-opt dag MODEL | true) ends the command quietly, exit 0', async () => {
  const { spawn } = await import('node:child_process');
  const { bin } = await import('./spawn-cli.js');
  const r = await new Promise<{ code: number | null; err: string }>((done, fail) => {
    const child = spawn(process.execPath, [bin, 'dag', 'models/mobilenetv2-x0.35-c100.onnx'], { env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    // The reader is gone before the DAG is written: the write meets a closed pipe (EPIPE).
    child.stdout.destroy();
    child.stderr.setEncoding('utf8').on('data', (s: string) => { err += s; });
    child.on('error', fail);
    child.on('close', (code) => done({ code, err }));
  });
  assert.equal(r.code, 0);
  assert.equal(r.err, '', 'no stack trace, no message');
});
