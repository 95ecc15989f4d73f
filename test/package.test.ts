// The package as users get it: `npm pack`, then a plain `npm install` of the tarball into an empty folder (no
// environment variables, no .npmrc: onnxruntime-node is an optional peer and is not installed), then the
// installed binary and types. Needs the npm registry for the dependencies (as `npm ci` does) and a WebGPU
// adapter (lavapipe) for `run`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { encodeNpy, parseNpy } from '../src/npy.js';

const exec = promisify(execFile);
const root = resolve('.');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';

/** Runs a command; resolves with its exit code and output instead of throwing on a non-zero exit. */
async function sh(cmd: string, args: string[], cwd: string, timeout = 300_000): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await exec(cmd, args, { cwd, timeout, maxBuffer: 1 << 26, env: { ...process.env, npm_config_onnxruntime_node_install: undefined } });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, out: x.stdout ?? '', err: `${x.stderr ?? ''}${typeof x.code === 'string' ? x.code : ''}` };
  }
}

test('npm pack gives a tarball under 2 MB that installs with plain npm and runs --version, plan, run; check without onnxruntime is exit 3; the types compile', { timeout: 900_000 }, async () => {
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  const dir = mkdtempSync(join(tmpdir(), 'fcm-package-'));
  // The tests run from a build (npm test builds first): pack that build as it is.
  const pack = await sh(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], root);
  assert.equal(pack.code, 0, pack.err);
  const [info] = JSON.parse(pack.out) as [{ filename: string; size: number; files: { path: string }[] }];
  const tarball = join(dir, info.filename);
  assert.ok(statSync(tarball).size < 2 * 1024 * 1024, `tarball ${statSync(tarball).size} bytes`);
  const paths = info.files.map((f) => f.path);
  assert.ok(paths.includes('bin/fcm-opt.js') && paths.includes('dist/src/index.js') && paths.includes('dist/src/index.d.ts'));
  assert.ok(paths.includes('models/mobilenetv2-x0.35-c100.onnx') && paths.includes('hw_configs/h100.cfg'));
  for (const p of paths) assert.doesNotMatch(p, /^(test|fixtures|src|dist\/test|dist\/fixtures|dist\/bench|dist\/src\/fuzz)\/|\.map$/, `${p} should not ship`);

  const app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  const install = await sh(npm, ['install', tarball, '--no-audit', '--no-fund'], app);
  assert.equal(install.code, 0, install.err);
  assert.ok(!readdirSync(join(app, 'node_modules')).includes('onnxruntime-node'), 'the optional peer is not installed');

  const v = await sh(npx, ['--no-install', 'fcm-opt', '--version'], app);
  assert.equal(v.code, 0, v.err);
  assert.equal(v.out.trim(), version);

  const model = join(app, 'node_modules/fcm-opt/models/mobilenetv2-x0.35-c100.onnx');
  const plan = await sh(npx, ['--no-install', 'fcm-opt', 'plan', model, '--hw', 'h100', '--json'], app);
  assert.equal(plan.code, 0, plan.err);
  const modules = (JSON.parse(plan.out) as { modules: { kind: string }[] }).modules;
  assert.ok(modules.some((m) => m.kind.length > 1), 'MobileNetV2 on h100 has fused modules');

  const input = join(app, 'x.npy'), output = join(app, 'y.npy');
  const x = Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.sin(i));
  writeFileSync(input, encodeNpy({ shape: [1, 3, 224, 224], data: x }));
  const run = await sh(npx, ['--no-install', 'fcm-opt', 'run', model, '--hw', 'lavapipe', '--input', input, '--output', output], app);
  assert.equal(run.code, 0, run.err);
  const y = parseNpy(readFileSync(output), output);
  assert.deepEqual(y.shape, [1, 100]);
  assert.ok(Array.from(y.data).every(Number.isFinite));

  const check = await sh(npx, ['--no-install', 'fcm-opt', 'check', model, '--hw', 'h100'], app);
  assert.equal(check.code, 3, check.err);
  assert.match(check.err, /^fcm-opt: check \(the onnxruntime reference\): needs onnxruntime-node, an optional peer dependency that is not installed \(npm install onnxruntime-node@1\.30\)\n$/);

  // A consumer's TypeScript with skipLibCheck false and no ambient types of its own.
  writeFileSync(join(app, 'use.ts'), "import { createSession } from 'fcm-opt';\nexport const s: Promise<unknown> = createSession('m.onnx');\n");
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, noEmit: true, types: [] }, files: ['use.ts'] }));
  const tsc = await sh(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], app);
  assert.equal(tsc.code, 0, tsc.out + tsc.err);
});
