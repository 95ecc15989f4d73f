// `fcm-opt run` through the CLI: inputs from .npz and NAME=FILE.npy, seeded inputs by default (the ones check
// uses), every output to .npz, --top, --json, and the refusals (unknown or missing input names, .npy for a
// two-output model). The model: x [1, 4], y [1, 4] -> a = Relu(x + y), b = Sigmoid(x).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportOnnx } from '../../converters/onnx/export.js';
import { encodeNpy } from '../../src/npy.js';
import { encodeNpz, parseNpz } from '../../src/npz.js';
import { seededInput } from '../../src/runtime/compare.js';
import { graph } from '../graph/helpers.js';
import { cli } from './run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'fcm-run-cli-'));
const model = join(dir, 'two.onnx');
writeFileSync(model, exportOnnx(graph({
  inputs: { x: [1, 4], y: [1, 4] },
  nodes: [{ op: 'Add', in: ['x', 'y'], out: ['s'] }, { op: 'Relu', in: ['s'], out: ['a'] }, { op: 'Sigmoid', in: ['x'], out: ['b'] }],
  outputs: ['a', 'b'],
})));
const x = Float32Array.of(-2, -0.5, 0.5, 2), y = Float32Array.of(1, 1, -1, 1);
const relu = (v: number) => Math.max(0, v);
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
const close = (got: ArrayLike<number>, want: number[], why: string) => {
  assert.equal(got.length, want.length, why);
  // Exact inputs; the GPU's exp is within a few float32 ulps of the float64 value.
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-6, `${why}[${i}]: ${got[i]} vs ${want[i]}`);
};

test('inputs from an .npz, every output to an .npz; the summary names inputs, outputs and what was written', async () => {
  const inputs = join(dir, 'in.npz'), out = join(dir, 'out.npz');
  writeFileSync(inputs, encodeNpz(new Map([['x', { shape: [1, 4], data: x }], ['y', { shape: [1, 4], data: y }]])));
  const r = await cli('run', model, '--unfused', '--input', inputs, '--output', out, '--top', '2');
  assert.equal(r.code, 0, r.err);
  const got = parseNpz(readFileSync(out), out);
  assert.deepEqual([...got.keys()], ['a', 'b']);
  close(got.get('a')!.data, Array.from(x, (v, i) => relu(v + y[i])), 'a');
  close(got.get('b')!.data, Array.from(x, sigmoid), 'b');
  assert.match(r.out, /^input 'x' \[1x4\]: .*in\.npz: 'x'\ninput 'y' \[1x4\]: .*in\.npz: 'y'\n/);
  assert.match(r.out, /\noutput 'a' \[1x4\]: min 0, max 3, mean 0\.875\n  top 2: 3 \(3\), 1 \(0\.5\)\n/);
  assert.match(r.out, /\nwrote .*out\.npz: 2 outputs\n$/);
});

test('NAME=FILE.npy inputs; without --input the seeded inputs of check (seed i for input i)', async () => {
  const fx = join(dir, 'x.npy'), fy = join(dir, 'y.npy');
  writeFileSync(fx, encodeNpy({ shape: [1, 4], data: x }));
  writeFileSync(fy, encodeNpy({ shape: [1, 4], data: y }));
  const named = await cli('run', model, '--unfused', '--input', `x=${fx}`, '--input', `y=${fy}`, '--json');
  assert.equal(named.code, 0, named.err);
  const j = JSON.parse(named.out) as { outputs: { name: string; max: number }[] };
  assert.equal(j.outputs[0].max, 3);
  const seeded = await cli('run', model, '--unfused', '--seed', '5', '--json');
  assert.equal(seeded.code, 0, seeded.err);
  const s = JSON.parse(seeded.out) as { inputs: Record<string, { from: string }>; outputs: { name: string; max: number; min: number }[] };
  assert.deepEqual(Object.values(s.inputs).map((v) => v.from), ['seeded (seed 5)', 'seeded (seed 6)']);
  const sx = seededInput(4, 5), sy = seededInput(4, 6);
  const want = Array.from(sx, (v, i) => relu(v + sy[i]));
  assert.ok(Math.abs(s.outputs[0].max - Math.max(...want)) <= 1e-6 && Math.abs(s.outputs[0].min - Math.min(...want)) <= 1e-6);
});

test('refusals name the file and input: unknown name, a missing input, an unnamed input for two, .npy for two outputs', async () => {
  const fx = join(dir, 'x.npy');
  writeFileSync(fx, encodeNpy({ shape: [1, 4], data: x }));
  const out = join(dir, 'never.npy');
  const cases: [string[], RegExp][] = [
    [['--input', `z=${fx}`], /x\.npy: names input 'z', but the model's inputs are 'x', 'y'$/m],
    [['--input', `x=${fx}`], /two\.onnx: input 'y' is not given \(--input y=FILE\.npy\)$/m],
    [['--input', fx], /two\.onnx: the model has 2 inputs \(x, y\); name each/],
    [['--output', out], /never\.npy: the model has 2 outputs \(a, b\); write them all with --output FILE\.npz$/m],
    [['--output', join(dir, 'o.txt')], /o\.txt: the output must be \.npz/],
  ];
  for (const [args, re] of cases) {
    const r = await cli('run', model, '--unfused', ...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, re);
    assert.equal(existsSync(out), false);
  }
});
