// The channels-last store of the flat-index kernels (kernels/registry.ts channelsLastFlat; attr channelsLast, a
// Transpose [0, 2, 3, 1] folded in by src/rewrite/channels-last-store.ts): an activation, a math op, a broadcast
// binary op, both pools (stride 2, padding, odd maps) and a stepped Slice, through the registry as a session builds
// them, in fp32 and f16 storage, at batch 2; each against the same node's plain program, transposed on the host, bit
// for bit (the store moves values, it never computes them). And the refusals: an op whose kernel stores otherwise,
// an output that is not 4-D.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { kernelFor } from '../../kernels/registry.js';
import { flatStoreOps } from '../../src/rewrite/channels-last-store.js';
import { defaultLimits } from '../../kernels/program.js';
import { newAttrs } from '../../src/graph/ir.js';
import { roundHalf } from '../../src/runtime/half.js';
import { FcmError } from '../../src/errors.js';
import { closeDevice } from './fused-harness.js';
import { type LayerCase, programsOf, runLayer } from './layer-harness.js';
import { randomF32 } from './reference.js';

after(closeDevice);

const N = 2, C = 5, H = 7, W = 6;
const x = (seed: number, shape = [N, C, H, W]) => ({ data: randomF32(shape.reduce((a, b) => a * b, 1), seed), shape });

const cases: { name: string; c: LayerCase }[] = [
  { name: 'HardSwish', c: { op: 'HardSwish', inputs: [x(1)], outputShapes: [[N, C, H, W]] } },
  { name: 'Exp', c: { op: 'Exp', inputs: [x(2)], outputShapes: [[N, C, H, W]] } },
  { name: 'Mul by a per-channel constant', c: { op: 'Mul', inputs: [x(3), x(4, [1, C, 1, 1])], outputShapes: [[N, C, H, W]] } },
  { name: 'Add of two maps', c: { op: 'Add', inputs: [x(5), x(6)], outputShapes: [[N, C, H, W]] } },
  { name: 'MaxPool 3x3 stride 2 pad 1', c: { op: 'MaxPool', attrs: { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1] }, inputs: [x(7)], outputShapes: [[N, C, 4, 3]] } },
  { name: 'AveragePool 2x2 stride 2', c: { op: 'AveragePool', attrs: { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0] }, inputs: [x(8)], outputShapes: [[N, C, 3, 3]] } },
  { name: 'Slice of every second channel', c: { op: 'Slice', attrs: { starts: [1], ends: [C], axes: [1], steps: [2] }, inputs: [x(9)], outputShapes: [[N, 2, H, W]] } },
];

/** y [n, c, h, w] as [n, h, w, c]. */
function toChannelsLast(y: ArrayLike<number>, s: readonly number[]): Float32Array {
  const [n, c, h, w] = s, out = new Float32Array(y.length);
  for (let a = 0; a < n; a++) for (let b = 0; b < c; b++) for (let p = 0; p < h * w; p++) out[(a * h * w + p) * c + b] = y[(a * c + b) * h * w + p];
  return out;
}

for (const { name, c } of cases) {
  test(`channels-last flat store, ${name}: fp32 and f16 bit for bit the plain program's output transposed`, async () => {
    const [n, ch, h, w] = c.outputShapes[0];
    for (const storage of ['f32', 'f16'] as const) {
      const r = (d: Float32Array) => (storage === 'f16' ? Float32Array.from(d, roundHalf) : d);
      const inputs = c.inputs.map((t) => (t ? { ...t, data: r(t.data) } : null));
      const plain: LayerCase = { ...c, inputs };
      const last: LayerCase = { ...plain, attrs: { ...c.attrs, channelsLast: 1 }, outputShapes: [[n, h, w, ch]] };
      const [p] = await programsOf(last, storage);
      assert.match(p.cacheKey, new RegExp(`^(f16\\|)?nhwc\\[${n}x${ch}x${h}x${w}\\]\\|`));
      assert.match(p.wgsl, /out\[channelsLast\(i\)\] = /);
      const [got] = await runLayer(last, storage);
      const [ref] = await runLayer(plain, storage);
      const moved = toChannelsLast(ref, c.outputShapes[0]);
      let diff = 0;
      for (let i = 0; i < got.length; i++) if (!Object.is(got[i], moved[i])) diff++;
      assert.equal(diff, 0, `${name}, ${storage}: ${diff} of ${got.length} values differ from the plain store's, transposed`);
    }
  });
}

test('channels-last flat store: the cache key tells apart outputs of one element count and another shape', async () => {
  // [1, 6, 2, 2] and [1, 2, 3, 4]: 24 elements each, and the element-wise kernel's own key names only the count.
  const keys = await Promise.all([[1, 6, 2, 2], [1, 2, 3, 4]].map(async ([n, c, h, w]) => {
    const [p] = await programsOf({ op: 'Tanh', attrs: { channelsLast: 1 }, inputs: [x(10, [n, c, h, w])], outputShapes: [[n, h, w, c]] });
    return p.cacheKey;
  }));
  const plain = await Promise.all([[1, 6, 2, 2], [1, 2, 3, 4]].map(async (s) => (await programsOf({ op: 'Tanh', inputs: [x(10, s)], outputShapes: [s] }))[0].cacheKey));
  assert.equal(plain[0], plain[1], 'the plain programs share one key (and one pipeline)');
  assert.notEqual(keys[0], keys[1]);
});

test('channels-last flat store: refused where the kernel stores otherwise or the output is not 4-D', () => {
  const node = (op: string, attrs: Record<string, unknown>) => ({ name: 'n', op, domain: '', inputs: ['a', 'b'], outputs: ['y'], attrs: newAttrs({ channelsLast: 1, ...attrs } as never) });
  const refused = (f: () => unknown, re: RegExp) => assert.throws(f, (e) => e instanceof FcmError && re.test(e.message));
  // Concat's kernel copies by input, not by output element.
  refused(() => kernelFor(node('Concat', { axis: 1 }), [[1, 2, 3, 4], [1, 3, 3, 4]], [[1, 3, 4, 5]], defaultLimits), /Concat has no channels-last store/);
  refused(() => kernelFor(node('Add', {}), [[2, 3, 4], [2, 3, 4]], [[2, 3, 4]], defaultLimits), /4-D output/);
  refused(() => kernelFor(node('Add', { channelsLast: 2 }), [[1, 2, 3, 4], [1, 2, 3, 4]], [[1, 3, 4, 2]], defaultLimits), /channelsLast must be 1/);
});

test('every op the rewrite stores channels-last has a kernel that takes the store (a kernel rewritten otherwise fails here, not in a model)', () => {
  const shapes: Record<string, { inputs: number[][]; attrs?: Record<string, unknown>; out: number[] }> = {
    MaxPool: { inputs: [[1, 3, 4, 4]], attrs: { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1] }, out: [1, 3, 2, 2] },
    AveragePool: { inputs: [[1, 3, 4, 4]], attrs: { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0] }, out: [1, 3, 2, 2] },
    Slice: { inputs: [[1, 3, 4, 4]], attrs: { starts: [1], ends: [3], axes: [1], steps: [1] }, out: [1, 2, 4, 4] },
    PRelu: { inputs: [[1, 3, 4, 4], [1, 3, 1, 1]], out: [1, 3, 4, 4] },
  };
  const binaryOps = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow']);
  for (const op of flatStoreOps) {
    const s = shapes[op] ?? { inputs: binaryOps.has(op) ? [[1, 3, 4, 4], [1, 3, 4, 4]] : [[1, 3, 4, 4]], out: [1, 3, 4, 4] };
    const [n, c, h, w] = s.out;
    const node = { name: op.toLowerCase(), op, domain: '', inputs: s.inputs.map((_, k) => `in${k}`), outputs: ['y'], attrs: newAttrs({ ...s.attrs, channelsLast: 1 } as never) };
    const k = kernelFor(node, s.inputs, [[n, h, w, c]], defaultLimits);
    assert.ok(k.kind === 'programs' && k.programs.every((p) => /out\[channelsLast\(i\)\] = /.test(p.wgsl)), op);
  }
});
