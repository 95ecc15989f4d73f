// The CLI contract as a user meets it: `node bin/fcm-opt.js ...` in its own process (the built dist/, as npm's
// `fcm-opt` bin runs it; `npm test` builds first). Every exit code: 0 ok, 1 a check over tolerance, 2 invalid
// input, 3 unsupported, 4 over a resource limit (--max-memory), 5 GPU failure; each failure is one stderr line
// naming the file and the node or tensor, no stack trace unless --verbose, and no output file left behind.
// 70 (internal error) has no legitimate trigger (the fuzzer's corpus turns every input into an FcmError): its
// mapping is tested on reportError, the function main() ends in.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { exportOnnx } from '../../converters/onnx/export.js';
import { decodeModel, encodeModel } from '../../converters/onnx/codec.js';
import { fixtureModels } from '../../fixtures/models.js';
import { readNpy, writeNpy } from '../../src/npy.js';
import { seededInput } from '../../src/runtime/compare.js';
import { reportError } from '../../src/cli/main.js';
import { FcmError } from '../../src/errors.js';

const bin = resolve('bin/fcm-opt.js');
const dir = mkdtempSync(join(tmpdir(), 'fcm-exit-'));
const head = join(dir, 'head.onnx');
const cos = join(dir, 'cos.onnx');
const x = join(dir, 'x.npy');

before(async () => {
  assert.ok(existsSync(resolve('dist/src/cli/main.js')), 'bin/fcm-opt.js runs the built CLI: npm run build first');
  const bytes = exportOnnx(fixtureModels.classifier_head());
  writeFileSync(head, bytes);
  // The same model with its Clip replaced by Cos: valid ONNX (onnxruntime runs it) that fcm-opt has no kernel for.
  const p = decodeModel(bytes, 'head.onnx');
  const clip = p.graph!.node.find((n) => n.opType === 'Clip')!;
  assert.equal(clip.name, 'clip_7');
  clip.opType = 'Cos';
  clip.input = [clip.input[0]];
  writeFileSync(cos, encodeModel(p));
  await writeNpy(x, { data: seededInput(3 * 32 * 32, 1), shape: [1, 3, 32, 32] });
});

interface Result { code: number | null; out: string; err: string }

function fcmOpt(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, XDG_RUNTIME_DIR: '/tmp', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
    child.stderr.setEncoding('utf8').on('data', (s: string) => { err += s; });
    child.on('error', fail);
    child.on('close', (code) => done({ code, out, err }));
  });
}

// Dawn and the Vulkan loader write their own diagnostics to stderr from native code ("Warning: ..." lines,
// and after a failed vkCreateInstance a source location "    at CheckVkSuccessImpl (.../VulkanError.cpp:106)").
// They are not fcm-opt's; everything else on stderr is.
const nativeDiagnostic = (l: string) => l.trim() === '' || /^Warning: /.test(l) || /^\s+at \w+ \(\S+\.(?:cpp|cc|h):\d+\)$/.test(l);
const jsStackFrame = /^\s+at .*(?:file:\/\/|node:|\.js:\d+|\.ts:\d+)/m;

/** The failure contract: exit code, one stderr line of fcm-opt's matching `message`, no JS stack, no output. */
function assertFailure(r: Result, code: number, message: RegExp, outputs: string[] = []): void {
  assert.equal(r.code, code, `exit ${r.code}, stderr:\n${r.err}`);
  const own = r.err.split('\n').filter((l) => !nativeDiagnostic(l));
  assert.equal(own.length, 1, `one line of fcm-opt's on stderr:\n${r.err}`);
  assert.match(own[0], /^fcm-opt: /);
  assert.match(own[0], message);
  assert.doesNotMatch(r.err, jsStackFrame, 'a stack trace without --verbose');
  for (const f of outputs) assert.ok(!existsSync(f), `${f} was written`);
  // Nor a temporary file of an interrupted write.
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
}

test('exit 0: run writes its output, check passes, nothing of fcm-opt\'s on stderr', async () => {
  const y = join(dir, 'y0.npy');
  const r = await fcmOpt(['run', head, '--unfused', '--input', x, '--output', y]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(r.err.split('\n').filter((l) => !nativeDiagnostic(l)), []);
  const out = await readNpy(y);
  assert.deepEqual(out.shape, [1, 10]);
  assert.ok(out.data.every(Number.isFinite) && out.data.some((v) => v !== 0));
  const c = await fcmOpt(['check', head]);
  assert.equal(c.code, 0, c.err);
  assert.match(c.out, /gemm_12_out \[1x10\]: max abs .* PASSED\ncheck PASSED\n$/);
});

test('exit 1: check over its tolerance (--tolerance 1e-9: float32 sums in another order than onnxruntime\'s)', async () => {
  const r = await fcmOpt(['check', head, '--tolerance', '1e-9']);
  assertFailure(r, 1, /head\.onnx: output 'gemm_12_out' differs from onnxruntime: max abs \S+ \(tolerance 1\.000e-9\)$/);
  assert.match(r.out, /gemm_12_out \[1x10\]: .*FAILED\ncheck FAILED\n$/);
  // The same run passes at the default tolerance (exit 0 above), so the differences are rounding, of about
  // 1e-7 of the outputs' scale: over 1e-9 and under 1e-4.
  const json = await fcmOpt(['check', head, '--tolerance', '1e-9', '--json']);
  assert.equal(json.code, 1);
  const o = JSON.parse(json.out).outputs[0];
  assert.ok(o.maxAbsError > 1e-9 && o.maxAbsError < 1e-4, String(o.maxAbsError));
  assertFailure(await fcmOpt(['check', head, '--tolerance', '-1']), 2, /--tolerance: expected a non-negative number, got '-1'/);
});

test('exit 2: an input of the wrong shape, a truncated model; named, nothing written', async () => {
  const bad = join(dir, 'bad.npy');
  await writeNpy(bad, { data: new Float32Array(3 * 16 * 16), shape: [1, 3, 16, 16] });
  const y = join(dir, 'y2.npy');
  assertFailure(await fcmOpt(['run', head, '--input', bad, '--output', y]), 2, /bad\.npy: has shape \(1, 3, 16, 16\), input 'input' of the model is \[1,3,32,32\]$/, [y]);
  const cut = join(dir, 'cut.onnx');
  writeFileSync(cut, exportOnnx(fixtureModels.classifier_head()).subarray(0, 200));
  assertFailure(await fcmOpt(['run', cut, '--input', x, '--output', y]), 2, /cut\.onnx: /, [y]);
  // The same failure with --verbose prints the stack: the check above would see one.
  const v = await fcmOpt(['run', head, '--input', bad, '--output', y, '--verbose']);
  assert.equal(v.code, 2);
  assert.match(v.err, jsStackFrame);
  assert.ok(!existsSync(y));
});

test('exit 3: an op fcm-opt has no kernel for, naming the file, the op and the node; nothing written', async () => {
  const y = join(dir, 'y3.npy');
  assertFailure(await fcmOpt(['run', cos, '--input', x, '--output', y]), 3, /cos\.onnx: .*\bCos\b.*'clip_7'/, [y]);
});

test('exit 4: --max-memory below the model\'s size, naming the file; nothing written', async () => {
  assert.ok(statSync(head).size > 4096);
  const y = join(dir, 'y4.npy');
  assertFailure(await fcmOpt(['dag', head, '-o', y, '--max-memory', '4K']), 4, /head\.onnx: .*(budget|max-memory|memory)/i, [y]);
  // run reads its --input first (its shape fixes the batch), under the same budget.
  assertFailure(await fcmOpt(['run', head, '--input', x, '--output', y, '--max-memory', '4K']), 4, /x\.npy: the file has \d+ bytes, over the memory budget of 4096 bytes/, [y]);
});

test('exit 5: no WebGPU adapter (no Vulkan driver installed), saying how to get one; nothing written', async () => {
  // The Vulkan loader's own variables (VK_DRIVER_FILES, formerly VK_ICD_FILENAMES) list the drivers it loads:
  // naming a file that does not exist is a machine without a Vulkan driver, which fcm-opt must report as exit 5.
  const noDriver = { VK_DRIVER_FILES: join(dir, 'no-driver.json'), VK_ICD_FILENAMES: join(dir, 'no-driver.json') };
  const y = join(dir, 'y5.npy');
  assertFailure(await fcmOpt(['run', head, '--input', x, '--output', y], noDriver), 5, /^fcm-opt: WebGPU: no WebGPU adapter found: fcm-opt needs a Vulkan driver/, [y]);
  assertFailure(await fcmOpt(['check', head], noDriver), 5, /no WebGPU adapter found/);
});

test('exit 70: an unexpected exception is one line saying it is internal; the stack only with --verbose', () => {
  // No input provokes one legitimately (see the header): main()'s error mapping is called directly.
  const write = process.stderr.write.bind(process.stderr);
  const capture = (f: () => number) => {
    let err = '';
    process.stderr.write = ((s: string) => { err += s; return true; }) as typeof process.stderr.write;
    try {
      return { code: f(), err };
    } finally {
      process.stderr.write = write;
    }
  };
  const bug = new TypeError("Cannot read properties of undefined (reading 'shape')");
  const quiet = capture(() => reportError(bug, false));
  assert.equal(quiet.code, 70);
  assert.equal(quiet.err, "fcm-opt: internal error: Cannot read properties of undefined (reading 'shape') (run with --verbose for details)\n");
  const loud = capture(() => reportError(bug, true));
  assert.equal(loud.code, 70);
  assert.match(loud.err, jsStackFrame);
  // A thrown non-Error too; and an FcmError keeps its own code (5 here), never 70.
  assert.equal(capture(() => reportError('boom', false)).code, 70);
  const gpu = capture(() => reportError(new FcmError('gpu', 'WebGPU: lost'), false));
  assert.deepEqual([gpu.code, gpu.err], [5, 'fcm-opt: WebGPU: lost\n']);
});
