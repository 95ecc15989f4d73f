// Minimized inputs that once crashed the fuzzer (src/fuzz), one file each, named <target>-<hash>.<ext>
// (the target from the extension: .onnx, .tflite, .cfg, .hw.json, .dag.json, .npy). Each is fed through
// the same pipeline as the fuzzer, in an isolated worker process with the 10 s limit; the only acceptable
// outcomes are success or an FcmError. A fixed input's <file>.crash.txt states the outcome of the fix:
// `expected: ok` or `expected: exit N`, and optionally `expected message: REGEX` (what the error must
// name); the test asserts exactly that. data/open/ holds inputs of crashes not fixed yet (todo tests,
// listed in RELIABILITY.md under "open"); a fix moves the file up into data/ and adds its expectation.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runIsolated } from '../../src/fuzz/engine.js';
import { targetOfFile } from '../../src/fuzz/corpus.js';
import type { Outcome } from '../../src/fuzz/protocol.js';

const dataDir = join(process.cwd(), 'test', 'regressions', 'data');

function inputs(dir: string) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).sort().flatMap((f) => {
    const target = targetOfFile(f);
    return target ? [{ file: f, target, bytes: readFileSync(join(dir, f)) }] : [];
  });
}

const describe = (o: Outcome) => (o.kind === 'crash' ? `${o.name}: ${o.message}\n${o.stack}` : JSON.stringify(o));

test('regression inputs exist (the fuzzer found crashes, fixed ones are kept)', () => {
  assert.ok(inputs(dataDir).length > 0, `no regression inputs in ${dataDir}`);
});

const fixed = inputs(dataDir);
const open = inputs(join(dataDir, 'open'));
const outcomes = (items: typeof fixed) => (items.length ? runIsolated(items) : Promise.resolve([]));
const fixedRun = outcomes(fixed);
const openRun = outcomes(open);

interface Expected { exitCode?: number; message?: RegExp }

/** The `expected:` lines of `<file>.crash.txt`; undefined when it states none. */
function expected(dir: string, file: string): Expected | undefined {
  const p = join(dir, `${file}.crash.txt`);
  if (!existsSync(p)) return undefined;
  const lines = readFileSync(p, 'utf8').split('\n');
  const value = (key: string) => lines.find((l) => l.startsWith(`${key}: `))?.slice(key.length + 2).trim();
  const outcome = value('expected');
  if (outcome === undefined) return undefined;
  const m = /^(?:ok|exit (\d+))$/.exec(outcome);
  assert.ok(m, `${p}: 'expected: ${outcome}' must be 'ok' or 'exit N'`);
  const message = value('expected message');
  return { exitCode: m[1] === undefined ? undefined : Number(m[1]), message: message === undefined ? undefined : new RegExp(message) };
}

fixed.forEach((item, i) => {
  test(`regression ${item.file}: the outcome its fix gives`, { timeout: 60_000 }, async () => {
    const o = (await fixedRun)[i];
    assert.ok(o.kind === 'ok' || o.kind === 'error', `${item.file}: ${describe(o)}`);
    const want = expected(dataDir, item.file);
    assert.ok(want, `${item.file}.crash.txt states no 'expected:' outcome`);
    if (want.exitCode === undefined) {
      assert.equal(o.kind, 'ok', `${item.file}: ${describe(o)}`);
    } else {
      assert.ok(o.kind === 'error', `${item.file}: expected exit ${want.exitCode}, got ${describe(o)}`);
      assert.equal(o.exitCode, want.exitCode, `${item.file}: ${o.message}`);
      if (want.message) assert.match(o.message, want.message);
    }
  });
});

open.forEach((item, i) => {
  test(`open crash ${item.file}: success or FcmError`, { timeout: 60_000, todo: 'open crash (RELIABILITY.md)' }, async () => {
    const o = (await openRun)[i];
    assert.ok(o.kind === 'ok' || o.kind === 'error', `${item.file}: ${describe(o)}`);
  });
});
