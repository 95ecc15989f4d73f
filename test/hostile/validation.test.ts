// One model check for every command (src/pipeline/pipeline.ts loadChecked): before it, `dag` of a corrupt .tflite
// exited 0 and wrote a DAG that `plan` refused, a depth_multiplier of 0 or 1000 and an int8 zero point of 2^40 were
// accepted by all, a 1-D Conv failed `run` with exit 2 and no file name, and a --hw dram_gbps of 5e-324 gave
// Infinity times. Each file below goes through every command in its own process (bin/fcm-opt.js): the same exit
// code and the same one line naming the file from each, no output left.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeNpy } from '../../src/npy.js';
import { assertRefused, fcmOpt } from './harness.js';
import { FcmError } from '../../src/errors.js';
import { decodeModel } from '../../converters/onnx/codec.js';
import { loadModel } from '../../src/graph/load.js';
import { applyPlan } from '../../src/rewrite/apply-plan.js';
import { exportOptimized } from '../../src/export/optimized.js';
import type { Plan } from '../../src/planner/plan.js';
import { settle } from '../../src/runtime/gpu.js';
import type { GpuContext } from '../../src/runtime/device.js';
import { conv1dOnnx, hostileTflite, int8Tflite, type TfliteFault } from './models.js';

const dir = mkdtempSync(join(tmpdir(), 'fcm-hostile-val-'));
const p = (f: string) => join(dir, f);

before(async () => {
  await writeNpy(p('x.npy'), { data: new Float32Array(4 * 8 * 8).fill(0.5), shape: [1, 4, 8, 8] });
  await writeNpy(p('x1.npy'), { data: new Float32Array(4 * 16).fill(0.5), shape: [1, 4, 16] });
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Every command that reads a model, with its outputs (none may be left behind). */
const commands = (m: string): Array<{ args: string[]; outputs: string[] }> => [
  { args: ['dag', m, '-o', p('d.json')], outputs: [p('d.json')] },
  { args: ['dag', m], outputs: [] },
  { args: ['plan', m, '--hw', 'h100'], outputs: [] },
  { args: ['plan', m, '--hw', 'h100', '-o', p('o.onnx'), '--dag', p('o.dag.json')], outputs: [p('o.onnx'), p('o.dag.json')] },
  { args: ['run', m, '--input', p('x.npy'), '--output', p('y.npy')], outputs: [p('y.npy')] },
  { args: ['check', m], outputs: [] },
  { args: ['report', m, '--hw', 'h100', '-o', p('r.html')], outputs: [p('r.html')] },
  { args: ['bench', m, '--hw', 'h100', '--runs', '1', '--warmup', '0', '--json'], outputs: [] },
];

const cases: Array<{ fault: TfliteFault | 'int8-zero-point'; code: number; message: RegExp }> = [
  { fault: 'self-input', code: 2, message: /node 'depthwise_conv_2d_1': is part of a cycle/ },
  { fault: 'writes-constant', code: 2, message: /operator 0 \(conv_2d\): output shape \[8, 1, 1, 8\] does not match/ },
  { fault: 'type-200', code: 3, message: /tensor 7 'pw1' has type 200,/ },
  { fault: 'activation-99', code: 3, message: /fused activation 99 is not supported/ },
  { fault: 'depth-multiplier-0', code: 2, message: /operator 1 \(depthwise_conv_2d\): depth_multiplier 0 does not match weights \[1, 3, 3, 8\]/ },
  { fault: 'depth-multiplier-1000', code: 2, message: /depth_multiplier 1000 does not match weights/ },
  { fault: 'int8-zero-point', code: 2, message: /zero point 1099511627776 of tensor 'pw1' is outside the range of int8 \(tensor 8\)/ },
];

for (const c of cases) {
  test(`TFLite ${c.fault}: every command exits ${c.code} with the same line`, async () => {
    const m = p(`${c.fault}.tflite`);
    writeFileSync(m, c.fault === 'int8-zero-point' ? int8Tflite(2 ** 40) : hostileTflite(c.fault));
    const file = new RegExp(`^fcm-opt: ${m.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `);
    for (const { args, outputs } of commands(m)) {
      const r = await fcmOpt(args);
      assertRefused(r, c.code, c.message, { absent: outputs, dir });
      assert.match(r.err.split('\n').find((l) => l.startsWith('fcm-opt: '))!, file, args.join(' '));
    }
  });
}

test('the same net without a fault passes every check', async () => {
  const m = p('clean.tflite');
  writeFileSync(m, hostileTflite('none'));
  for (const args of [['dag', m], ['plan', m, '--hw', 'h100']]) {
    const r = await fcmOpt(args);
    assert.equal(r.code, 0, r.err);
  }
});

test('a 1-D Conv: imported as a 2-D Conv with a 1-high kernel, so every command takes it and check passes', async () => {
  const m = p('conv1d.onnx');
  writeFileSync(m, conv1dOnnx());
  for (const args of [['dag', m], ['plan', m, '--hw', 'h100'], ['plan', m, '--hw', 'h100', '-o', p('c.onnx')]]) {
    const r = await fcmOpt(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.err}`);
  }
  rmSync(p('c.onnx'));
  const run = await fcmOpt(['run', m, '--input', p('x1.npy'), '--output', p('y1d.npy')]);
  assert.equal(run.code, 0, run.err);
  assert.ok(existsSync(p('y1d.npy')));
  rmSync(p('y1d.npy'));
  const check = await fcmOpt(['check', m]);
  assert.equal(check.code, 0, check.err);
  assert.match(check.out, /check PASSED\n$/);
});

test('--hw values that make the estimates infinite: refused by every command that plans (exit 2, key named)', async () => {
  const cfg = readFileSync(resolve('hw_configs/h100.cfg'), 'utf8');
  const json = JSON.parse(readFileSync(resolve('hw_configs/h100.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(p('tiny.cfg'), cfg.replace(/dram_GBps::[0-9.]+/, 'dram_GBps::5e-324'));
  writeFileSync(p('huge.cfg'), cfg.replace(/fp32_GFLOPS::[0-9.]+/, 'fp32_GFLOPS::1e308'));
  writeFileSync(p('tiny.json'), JSON.stringify({ ...json, dramGBps: 5e-324 }));
  const m = p('net.tflite');
  writeFileSync(m, hostileTflite('none'));
  const hwCases: Array<[string, RegExp]> = [
    [p('tiny.cfg'), /tiny\.cfg: 'dram_gbps' is 5e-324, outside 0\.000001\.\.1000000000000000/],
    [p('huge.cfg'), /huge\.cfg: 'fp32_gflops' is 1e\+308, outside/],
    [p('tiny.json'), /tiny\.json: 'dramGBps' is 5e-324, outside/],
  ];
  for (const [hw, message] of hwCases) {
    for (const args of [['plan', m, '--hw', hw], ['run', m, '--hw', hw, '--input', p('x.npy'), '--output', p('y.npy')], ['check', m, '--hw', hw], ['report', m, '--hw', hw, '-o', p('r.html')]]) {
      assertRefused(await fcmOpt(args), 2, message, { absent: [p('y.npy'), p('r.html')], dir });
    }
  }
});

test('-o of an int8 model: a QDQ ONNX file that onnxruntime runs; fcm-opt refuses to read it back (exit 3), naming why', async () => {
  const m = p('int8.tflite');
  writeFileSync(m, int8Tflite());
  const plan = await fcmOpt(['plan', m, '--hw', 'h100', '--json']);
  assert.equal(plan.code, 0, plan.err);
  assert.ok((JSON.parse(plan.out) as Plan).modules.some((x) => x.kind === 'pwdw'), 'the plan fuses the PW-DW pair');
  const r = await fcmOpt(['plan', m, '--hw', 'h100', '-o', p('q.onnx'), '--plan', p('q.plan.json')]);
  assert.equal(r.code, 0, r.err);
  const ort = await import('onnxruntime-node');
  const input = new ort.Tensor('float32', new Float32Array(4 * 8 * 8).fill(0.5), [1, 4, 8, 8]);
  const session = await ort.InferenceSession.create(readFileSync(p('q.onnx')), { logSeverityLevel: 3 });
  const y = (await session.run({ input })).output;
  await session.release();
  assert.deepEqual(y.dims, [1, 8, 8, 8]);
  // fcm-opt reads ONNX Q/DQ nodes as float ops, not as the int8 model: the optimized file is for other runtimes.
  assertRefused(await fcmOpt(['plan', p('q.onnx'), '--hw', 'h100']), 3, /q\.onnx: node '.*' \(Fused\w+\): is a quantized fused module in QDQ form .*run or plan the original \.tflite/, { dir });
  // Before, a plan without fused modules wrote int8 Convs as plain Conv, which onnxruntime refused: now Q/DQ nodes
  // carry the quantization and no Conv reads an 8-bit tensor.
  const g = await loadModel(m);
  const empty: Plan = { ...(JSON.parse(plan.out) as Plan), modules: [] };
  const bytes = exportOptimized(applyPlan(g, empty), empty);
  const proto = decodeModel(bytes, 'empty-plan.onnx');
  assert.ok(proto.graph!.node!.some((n) => n.opType === 'QuantizeLinear') && proto.graph!.node!.some((n) => n.opType === 'DequantizeLinear'));
  const s2 = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  assert.deepEqual((await s2.run({ input })).output.dims, [1, 8, 8, 8]);
  await s2.release();
});

test('a constant listed as a graph output: run and check read it back (fp32 and int8 models); before, exit 5 or 70', async () => {
  const f32 = p('wout.tflite');
  const i8 = p('wout-int8.tflite');
  writeFileSync(f32, hostileTflite('none', true));
  writeFileSync(i8, int8Tflite(-3, 8, true));
  for (const m of [f32, i8]) {
    // Two outputs: written as .npz.
    const run = await fcmOpt(['run', m, '--input', p('x.npy'), '--output', p('y.npz')]);
    assert.equal(run.code, 0, run.err);
    rmSync(p('y.npz'));
    const check = await fcmOpt(['check', m, '--json']);
    assert.equal(check.code, 0, check.err);
    const r = JSON.parse(check.out) as { outputs: Array<{ name: string; maxAbsError: number }> };
    assert.deepEqual(r.outputs.map((o) => o.name), ['output', 'pw2/weights']);
    assert.equal(r.outputs[1].maxAbsError, 0, 'the weights come back as they are');
  }
});

test("an fcm-opt bug inside a GPU error scope is exit 70 (a bug), not a GPU failure (exit 5)", () => {
  const ctx = {} as GpuContext;
  const bug = new Error("internal: tensor 'x' has no buffer");
  assert.throws(() => settle(ctx, 'creating the session', [], undefined, bug), (e: unknown) => e === bug);
  // What Dawn throws stays a GPU failure.
  assert.throws(() => settle(ctx, 'creating the session', [], undefined, new TypeError('Failed to execute createBuffer')), (e: unknown) => e instanceof FcmError && e.exitCode === 5);
});
