// Runs bin/fcm-opt.js (the built dist/, as npm's bin does) in its own process with a time limit, and states the
// failure contract of hostile input: the documented exit code, one stderr line of fcm-opt's naming the file, no
// stack trace, no hang, and no output or temporary file left behind.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';

export const bin = resolve('bin/fcm-opt.js');

export interface Result { code: number | null; signal: NodeJS.Signals | null; out: string; err: string; ms: number }

/** A generous limit: a blocked read or a hang fails the test; nothing here needs more than a few seconds. */
export const hangLimitMs = 20_000;

export function fcmOpt(args: string[], opts: { cwd?: string; uid?: number; gid?: number } = {}): Promise<Result> {
  assert.ok(existsSync(resolve('dist/src/cli/main.js')), 'bin/fcm-opt.js runs the built CLI: npm run build first');
  return new Promise((done, fail) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: opts.cwd, uid: opts.uid, gid: opts.gid, env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '', err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), hangLimitMs);
    child.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
    child.stderr.setEncoding('utf8').on('data', (s: string) => { err += s; });
    child.on('error', fail);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, out, err, ms: Date.now() - t0 });
    });
  });
}

// Dawn and the Vulkan loader write their own diagnostics to stderr from native code; they are not fcm-opt's.
const nativeDiagnostic = (l: string) => l.trim() === '' || /^Warning: /.test(l) || /^\s+at \w+ \(\S+\.(?:cpp|cc|h):\d+\)$/.test(l);
const jsStackFrame = /^\s+at .*(?:file:\/\/|node:|\.js:\d+|\.ts:\d+)/m;

/** fcm-opt's own stderr lines. */
export const ownLines = (r: Result) => r.err.split('\n').filter((l) => !nativeDiagnostic(l));

/**
 * The contract: exit `code` (not killed by the time limit), exactly one stderr line `fcm-opt: ...` matching
 * `message`, no stack trace, none of `absent` exists, and `dir` holds no temporary file.
 */
export function assertRefused(r: Result, code: number, message: RegExp, o: { absent?: string[]; dir?: string } = {}): void {
  assert.equal(r.signal, null, `killed by ${r.signal} after ${r.ms} ms (a hang?); stderr:\n${r.err}`);
  assert.equal(r.code, code, `exit ${r.code}, stderr:\n${r.err}`);
  const own = ownLines(r);
  assert.equal(own.length, 1, `one line of fcm-opt's on stderr:\n${r.err}`);
  assert.match(own[0], /^fcm-opt: /);
  assert.match(own[0], message);
  assert.doesNotMatch(r.err, jsStackFrame, 'a stack trace without --verbose');
  for (const f of o.absent ?? []) assert.ok(!existsSync(f), `${f} was written`);
  if (o.dir) assert.deepEqual(readdirSync(o.dir).filter((f) => f.endsWith('.tmp')), [], 'a temporary file was left');
}

/** Whether this process may make device nodes (root) and run children as another user. */
export const isRoot = process.getuid?.() === 0;
