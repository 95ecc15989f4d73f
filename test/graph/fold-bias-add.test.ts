// src/graph/passes/fold-bias-add.ts: per-channel adds into the Conv's bias, chains of clamps into one Clip. Each
// rewrite is checked by running both graphs through onnxruntime (the ONNX export), and the cases it must leave alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foldBiasAdd, mergeClamps } from '../../src/graph/passes/fold-bias-add.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { runOrt } from '../../src/cli/check.js';
import { seededInput } from '../../src/runtime/compare.js';
import { inferShapes } from '../../src/graph/shape.js';
import type { Graph } from '../../src/graph/ir.js';
import { graph, f32 } from './helpers.js';

async function run(g: Graph): Promise<Float32Array> {
  const x = seededInput(2 * 3 * 5 * 5, 4);
  const out = await runOrt(exportOnnx(inferShapes(g)), { x: { data: x, shape: [2, 3, 5, 5] } }, g.outputs, 'test');
  return out.get(g.outputs[0])! as Float32Array;
}

const conv = (bias: boolean, c: number[], op = 'Add', constFirst = false) => graph({
  inputs: { x: [2, 3, 5, 5] },
  consts: { w: f32([4, 3, 3, 3], (i) => Math.sin(i)), ...(bias ? { b: f32([4], [0.5, -1, 2, 0]) } : {}), c: f32(c, (i) => i + 0.25) },
  nodes: [
    { op: 'Conv', in: ['x', 'w', ...(bias ? ['b'] : [])], out: ['y'], attrs: { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 }, name: 'conv' },
    { op, in: constFirst ? ['c', 'y'] : ['y', 'c'], out: ['z'], name: 'add' },
  ],
  outputs: ['z'],
});

test('a per-channel constant added to (or subtracted from) a Conv output becomes its bias; the result is unchanged', async () => {
  for (const [bias, shape, op, constFirst] of [[false, [4, 1, 1], 'Add', false], [true, [1, 4, 1, 1], 'Add', true], [true, [4, 1, 1], 'Sub', false], [false, [1], 'Add', false]] as const) {
    const g = conv(bias, [...shape], op, constFirst);
    const h = foldBiasAdd(g);
    assert.deepEqual(h.nodes.map((n) => n.op), ['Conv'], `${op} ${shape}`);
    assert.deepEqual(h.nodes[0].outputs, ['z']);
    const [a, b] = [await run(g), await run(h)];
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-5, `${op} ${shape} [${i}]: ${a[i]} against ${b[i]}`);
  }
});

test('left alone: a constant along W (shape [F]), a constant minus the Conv, a second reader, a graph output', () => {
  // [4] broadcasts along W of [2, 4, 5, 5]... only where W is 4; here W is 5: shape [5] varies along W.
  assert.equal(foldBiasAdd(conv(false, [5])).nodes.length, 2);
  assert.equal(foldBiasAdd(conv(false, [4, 1, 1], 'Sub', true)).nodes.length, 2);
  const twice = conv(false, [4, 1, 1]);
  twice.nodes.push({ name: 'relu', op: 'Relu', domain: '', inputs: ['y'], outputs: ['r'], attrs: Object.create(null) });
  twice.outputs.push('r');
  assert.equal(foldBiasAdd(twice).nodes.length, 3);
  const out = conv(false, [4, 1, 1]);
  out.outputs.push('y');
  assert.equal(foldBiasAdd(out).nodes.length, 2);
});

const clamps = (nodes: { op: string; attrs?: Record<string, number> }[], extraReader = false) => graph({
  inputs: { x: [2, 3, 5, 5] },
  nodes: [
    ...nodes.map((n, i) => ({ op: n.op, in: [i === 0 ? 'x' : `t${i - 1}`], out: [i === nodes.length - 1 ? 'y' : `t${i}`], attrs: n.attrs ?? {}, name: `n${i}` })),
    ...(extraReader ? [{ op: 'Sigmoid', in: ['t0'], out: ['s'], name: 's' }] : []),
  ],
  outputs: extraReader ? ['y', 's'] : ['y'],
});

test('chains of Relu and Clip become one Clip with the tighter bounds; the result is unchanged', async () => {
  const cases: [Parameters<typeof clamps>[0], number | undefined, number | undefined][] = [
    [[{ op: 'Clip', attrs: { min: 0, max: 3.4e38 } }, { op: 'Clip', attrs: { min: -3.4e38, max: 0.5 } }], 0, 0.5],
    [[{ op: 'Relu' }, { op: 'Clip', attrs: { max: 0.6 } }], 0, 0.6],
    [[{ op: 'Clip', attrs: { min: -0.2, max: 0.7 } }, { op: 'Relu' }, { op: 'Clip', attrs: { min: -1, max: 0.4 } }], 0, 0.4],
  ];
  for (const [nodes, lo, hi] of cases) {
    const g = clamps(nodes);
    const h = mergeClamps(g);
    assert.deepEqual(h.nodes.map((n) => [n.op, n.attrs.min, n.attrs.max, n.outputs[0]]), [['Clip', lo, hi, 'y']]);
    const [a, b] = [await run(g), await run(h)];
    assert.deepEqual(b, a);
  }
  // The first clamp's output read elsewhere: both stay.
  assert.equal(mergeClamps(clamps([{ op: 'Relu' }, { op: 'Clip', attrs: { max: 6 } }], true)).nodes.length, 3);
});
