// Runs test files one at a time and prints, per file, its CPU time (user + sys, with every child process), wall
// time, and the compute pipelines it created (all, and distinct WGSL). Each file gets an empty Mesa shader cache
// unless --warm is given (then the user's cache), so the CPU figure includes every LLVM compile lavapipe makes.
//   node scripts/test-cost.mjs [--warm] [--log DIR] dist/test/a.test.js ...
// As `npm test` runs them: GALLIVM_PERF=nopt LP_NATIVE_VECTOR_WIDTH=128 node scripts/test-cost.mjs ...
// (the environment passes through to each file).
// Lines: file, user s, sys s, wall s, pipelines, distinct WGSL, failed tests (tab-separated); each file's test output
// goes to its .out next to the pipeline log in --log DIR. Not part of the product.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const warm = args.includes('--warm');
const li = args.indexOf('--log');
const logDir = li >= 0 ? args[li + 1] : mkdtempSync(join(tmpdir(), 'pipeline-log-'));
mkdirSync(logDir, { recursive: true });
const files = args.filter((a, i) => a.endsWith('.js') && (li < 0 || i !== li + 1));
const preload = join(dirname(fileURLToPath(import.meta.url)), 'pipeline-log.mjs');

for (const f of files) {
  const log = join(logDir, f.replace(/[/\\]/g, '_') + '.log');
  rmSync(log, { force: true });
  const cache = warm ? undefined : mkdtempSync(join(tmpdir(), 'mesa-cold-'));
  const env = { ...process.env, XDG_RUNTIME_DIR: '/tmp', FCM_OPT_PIPELINE_LOG: resolve(log), FCM_OPT_PIPELINE_WGSL: resolve(logDir, 'wgsl'),
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${preload}`.trim() };
  if (cache) env.MESA_SHADER_CACHE_DIR = cache;
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S %e', 'nice', '-n', '10', 'node', '--test', f], { env, encoding: 'utf8', maxBuffer: 1 << 28 });
  writeFileSync(log.replace(/\.log$/, '.out'), r.stdout + r.stderr);
  const times = (r.stderr.trim().split('\n').pop() ?? '').split(' ');
  const lines = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter((l) => l && !l.startsWith('exit\t')) : [];
  const distinct = new Set(lines.map((l) => l.split('\t')[0])).size;
  const failed = /^# fail (\d+)/m.exec(r.stdout)?.[1] ?? '?';
  console.log([f, ...times, lines.length, distinct, `fail=${failed}`].join('\t'));
  if (cache) rmSync(cache, { recursive: true, force: true });
}
