// Concat and Pad blocks as views of their output (src/runtime/views.ts): which inputs become views and which constant
// blocks are written once under each legality rule (compileGraph, no GPU), and sessions on lavapipe that run them,
// twice, against onnxruntime, with the dispatches the copies took gone.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { concatChannels } from '../../fixtures/zoo.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import type { Graph } from '../../src/graph/ir.js';
import { type CompileLimits, compileGraph } from '../../src/runtime/compile.js';
import { createSession } from '../../src/pipeline/session.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { compareOutputs, seededInput } from '../../src/runtime/compare.js';
import { defaultLimits } from '../../kernels/program.js';

after(releaseGpu);

const limits = (alignment: number): CompileLimits => ({ ...defaultLimits, maxStorageBufferBindingSize: 1 << 27, maxBufferSize: 1 << 28, minStorageBufferOffsetAlignment: alignment });

/** x -> one conv per branch (`filters`) -> Concat on channels -> a 1x1 conv: Inception's mixed block. */
function branches(batch: number, filters: number[], hw = 8, seed = 1): Graph {
  const b = new GraphBuilder('branches', seed);
  const x = b.input('x', [batch, 8, hw, hw]);
  const ys = filters.map((f, i) => b.conv(x, { filters: f, kernel: i % 2 ? 3 : 1, bias: true }));
  return b.build([b.conv(concatChannels(b, ys), { filters: 4, kernel: 1, bias: true })]);
}

/** a = conv(x); c = Concat(a, conv(a)): the layer computing one block reads another block of the same buffer. */
function dense(): Graph {
  const b = new GraphBuilder('dense', 2);
  const x = b.input('x', [1, 8, 8, 8]);
  const a = b.conv(x, { filters: 8, kernel: 1, bias: true });
  const c = concatChannels(b, [a, b.conv(a, { filters: 8, kernel: 3, bias: true })]);
  return b.build([b.conv(c, { filters: 4, kernel: 1, bias: true })]);
}

/** Concat(x, conv(x), zeros): a graph input and a constant block beside a computed one (Barracuda's channel padding). */
function inputAndConstant(): Graph {
  const b = new GraphBuilder('input_and_constant', 3);
  const x = b.input('x', [1, 8, 8, 8]);
  const zeros = b.constant('zeros', [1, 4, 8, 8], new Float32Array(4 * 64));
  const c = concatChannels(b, [x, b.conv(x, { filters: 8, kernel: 1, bias: true }), zeros]);
  return b.build([b.conv(c, { filters: 4, kernel: 1, bias: true })]);
}

/**
 * conv(x) padded on the channels (2 before, 3 after, with `value`), then three more layers whose tensors could take the
 * padded tensor's buffer once it is read, were it not held for the run: BlazeFace's padded residual.
 */
function paddedChannels(value: number, batch = 1): Graph {
  const b = new GraphBuilder('padded_channels', 4);
  const x = b.input('x', [batch, 8, 8, 8]);
  const a = b.conv(x, { filters: 8, kernel: 1, bias: true });
  const p = b.node('Pad', [a], [batch, 13, 8, 8], { mode: 'constant', pads: [0, 2, 0, 0, 0, 3, 0, 0], value });
  const c = b.conv(b.conv(b.add(p, b.conv(x, { filters: 13, kernel: 1, bias: true })), { filters: 13, kernel: 3, bias: true }), { filters: 13, kernel: 1, bias: true });
  return b.build([b.conv(c, { filters: 4, kernel: 1, bias: true })]);
}

/** conv(x) cut on the channels by two Slices (`steps`), each read by a conv, summed: a split read in place. */
function sliced(steps = 1, axis = 1): Graph {
  const b = new GraphBuilder('sliced', 5);
  const x = b.input('x', [1, 8, 8, 8]);
  const a = b.conv(x, { filters: 12, kernel: 1, bias: true });
  const cut = (from: number, to: number) => {
    const shape = [1, 12, 8, 8];
    shape[axis] = Math.ceil((to - from) / steps);
    return b.node('Slice', [a], shape, { starts: [from], ends: [to], axes: [axis], steps: [steps] });
  };
  const s1 = cut(0, 4), s2 = cut(4, 8);
  return b.build([b.add(b.conv(s1, { filters: 4, kernel: 1, bias: true }), b.conv(s2, { filters: 4, kernel: 3, bias: true }))]);
}

const offsets = (g: Graph, alignment = 16, storage: 'f32' | 'f16' = 'f32') => {
  const c = compileGraph(g, limits(alignment), storage);
  return { c, views: [...(c.views ?? new Map()).values()].map((v) => v.byteOffset), concatCopies: c.steps.filter((s) => s.node.op === 'Concat').length };
};

test('every branch of a batch-1 channel Concat is a view at its block, and the Concat runs no copy', () => {
  const { c, views, concatCopies } = offsets(branches(1, [8, 16, 4]));
  assert.deepEqual(views, [0, 8 * 64 * 4, 24 * 64 * 4]);
  assert.equal(concatCopies, 0);
  // The three branch convolutions and the last one: no other dispatch.
  assert.equal(c.steps.length, 4);
  // The blocks live in the Concat's buffer: one base, which has a memory slot; the views have none of their own.
  const bases = new Set([...c.views!.values()].map((v) => v.base));
  assert.equal(bases.size, 1);
  assert.ok(c.memory.slotOf.has([...bases][0]));
  for (const t of c.views!.keys()) assert.ok(!c.memory.slotOf.has(t), t);
});

test('no views where the blocks are not contiguous (batch 2) or a block is not aligned', () => {
  assert.deepEqual(offsets(branches(2, [8, 16, 4])).views, []);
  assert.equal(offsets(branches(2, [8, 16, 4])).concatCopies, 3);
  // 256-byte alignment: 8 channels of 8x8 floats (2048 bytes) land on it; 3 channels (768) do too, 1 channel (256) does;
  // with 4x4 maps a channel is 64 bytes: only the first block, at 0, and the one after 8 channels (512) are aligned.
  const small = offsets(branches(1, [8, 1, 3], 4), 256);
  assert.deepEqual(small.views, [0, 512]);
  assert.equal(small.concatCopies, 1);
});

test('a layer reading one block and writing another of the same buffer keeps the block it reads a copy', () => {
  const { c, views, concatCopies } = offsets(dense());
  // conv(a) reads a and writes its own block: a stays in its own buffer and is copied; conv(a)'s output is a view.
  assert.deepEqual(views, [8 * 64 * 4]);
  assert.equal(concatCopies, 1);
  for (const s of c.steps) {
    const buf = (t: string) => c.views?.get(t)?.base ?? t;
    const outs = s.bindings.slice(s.nIn).map(buf);
    assert.ok(!s.bindings.slice(0, s.nIn).some((t) => outs.includes(buf(t))), `${s.node.name} reads and writes one buffer`);
  }
});

test('a graph input is copied; the computed block is a view; the constant block is written once, its buffer held', () => {
  const { c, views, concatCopies } = offsets(inputAndConstant());
  assert.deepEqual(views, [8 * 64 * 4]);
  assert.equal(concatCopies, 1);
  assert.deepEqual(c.constantBlocks!.map((b) => [b.byteOffset, b.values.length, Math.max(...b.values)]), [[16 * 64 * 4, 4 * 64, 0]]);
  // The zeros are read by no dispatch now: no buffer of their own.
  assert.ok(!c.constants.includes('zeros'));
  assert.equal(c.copiesDropped, 2);
});

test('a Pad on the channels at batch 1: its input a view between two constant blocks, no dispatch, its buffer held', () => {
  const { c, views } = offsets(paddedChannels(0.5));
  assert.deepEqual(views, [2 * 64 * 4]);
  assert.equal(c.steps.filter((s) => s.node.op === 'Pad').length, 0);
  assert.deepEqual(c.constantBlocks!.map((b) => [b.byteOffset, b.values.length, b.values[0]]), [[0, 2 * 64, 0.5], [10 * 64 * 4, 3 * 64, 0.5]]);
  const base = c.constantBlocks![0].base;
  const slot = c.memory.slotOf.get(base);
  assert.deepEqual([...c.memory.slotOf].filter(([, s]) => s === slot).map(([t]) => t), [base], 'the held buffer is shared');
  // At batch 2 the blocks are not contiguous: the Pad runs.
  assert.equal(offsets(paddedChannels(0.5, 2)).c.steps.filter((s) => s.node.op === 'Pad').length, 1);
});

test('Slices that are one block of their input are read in place: no dispatch; not with steps, nor across the channels', () => {
  const { c, views } = offsets(sliced());
  assert.deepEqual(views, [0, 4 * 64 * 4]);
  assert.equal(c.steps.filter((s) => s.node.op === 'Slice').length, 0);
  // The blocks have no buffer of their own: the sliced tensor's, which lives while they are read (the session runs below).
  const base = [...c.views!.values()][0].base;
  assert.ok(c.memory.slotOf.has(base));
  for (const t of c.views!.keys()) assert.ok(!c.memory.slotOf.has(t), t);
  assert.deepEqual(offsets(sliced(2)).views, []);
  assert.deepEqual(offsets(sliced(1, 2)).views, []);
});

test("a Concat's output with blocks of its own is a block of the Concat reading it: its blocks lie in the outer buffer", () => {
  const b = new GraphBuilder('nested', 6);
  const x = b.input('x', [1, 8, 8, 8]);
  const conv = (f: number) => b.conv(x, { filters: f, kernel: 1, bias: true });
  const inner = concatChannels(b, [conv(4), conv(8)]);
  const outer = concatChannels(b, [conv(4), inner]);
  const g = b.build([b.conv(outer, { filters: 4, kernel: 1, bias: true })]);
  const c = compileGraph(g, limits(16));
  // The inner Concat at channel 4 of the outer one; its blocks at channels 4 and 8 of the outer buffer.
  const at = [...c.views!.values()].map((v): [string, number] => [v.base, v.byteOffset / (64 * 4)]);
  assert.deepEqual(at.sort((p, q) => p[1] - q[1]), [[outer, 0], [outer, 4], [outer, 4], [outer, 8]]);
  assert.equal(c.steps.filter((s) => s.node.op === 'Concat').length, 0);
  assert.ok(!c.memory.slotOf.has(inner));
});

test('f16 blocks: a block of odd bytes is a view only where it is the last, and each starts aligned', () => {
  // 3x3 maps in f16: a channel is 18 bytes. Blocks of 8 (144 bytes), 1 (18, not whole words) and 8 channels (at 162).
  const { views } = offsets(branches(1, [8, 1, 8], 3), 16, 'f16');
  assert.deepEqual(views, [0]);
  // 8, 8 and 1 channels: the third block (at 288, 18 bytes) is the last one.
  assert.deepEqual(offsets(branches(1, [8, 8, 1], 3), 16, 'f16').views, [0, 144, 288]);
});

async function reference(g: Graph, feeds: Record<string, Float32Array>) {
  const s = await ort.InferenceSession.create(exportOnnx(g), { intraOpNumThreads: 1, interOpNumThreads: 1, extra: { session: { intra_op: { allow_spinning: '0' } } } });
  const x = g.inputs[0];
  const r = await s.run({ [x]: new ort.Tensor('float32', feeds[x], g.tensors.get(x)!.shape) });
  await s.release();
  return r;
}

for (const [name, make, copies] of [
  ['branches', () => branches(1, [8, 16, 4]), 0], ['dense', dense, 1], ['input_and_constant', inputAndConstant, 1], ['branches_4x4', () => branches(1, [8, 1, 3], 4), 0],
  ['padded_channels', () => paddedChannels(0.5), 0], ['sliced', () => sliced(), 0], ['sliced_steps', () => sliced(2), 2],
] as const) {
  test(`${name}: the session with views matches onnxruntime in two runs (fp32 and fp16), with ${copies} cop${copies === 1 ? 'y' : 'ies'} a run`, async () => {
    const g = await loadModel(exportOnnx(make()), { source: `${name}.onnx` });
    const x = g.inputs[0];
    const n = g.tensors.get(x)!.shape.reduce((a, b) => a * b, 1);
    // Two inputs, so that a block left from the first run (or a held buffer another tensor overwrote) shows.
    const feeds = [{ [x]: seededInput(n, 5) }, { [x]: seededInput(n, 6) }];
    const refs = [await reference(g, feeds[0]), await reference(g, feeds[1])];
    for (const precision of ['fp32', 'fp16'] as const) {
      const s = await createSession(g, { plan: 'unfused', precision });
      try {
        for (const i of [0, 1]) {
          const out = await s.run(feeds[i]);
          const y = g.outputs[0];
          const cmp = compareOutputs(out[y].data, refs[i][y].data as Float32Array, out[y].shape, undefined, undefined, precision);
          assert.ok(cmp.ok, `${precision} run ${i}: ${JSON.stringify(cmp)}`);
        }
        // Every layer but the copies (the unfused plan folds the Add into the conv before it); `copies` the Concat,
        // Pad and Slice dispatches left.
        const layers = g.nodes.filter((n) => n.op === 'Conv').length;
        assert.equal(s.stats().dispatchesPerRun, layers + copies, precision);
      } finally {
        s.dispose();
      }
    }
  });
}

test('FCM_OPT_VIEWS=0: no views and no constant blocks, every copy runs', () => {
  const before = process.env.FCM_OPT_VIEWS;
  process.env.FCM_OPT_VIEWS = '0';
  try {
    const { c, views, concatCopies } = offsets(branches(1, [8, 16, 4]));
    assert.deepEqual(views, []);
    assert.equal(concatCopies, 3);
    assert.equal(offsets(paddedChannels(0.5)).c.steps.filter((s) => s.node.op === 'Pad').length, 1);
    assert.equal(c.constantBlocks, undefined);
  } finally {
    if (before === undefined) delete process.env.FCM_OPT_VIEWS;
    else process.env.FCM_OPT_VIEWS = before;
  }
});
