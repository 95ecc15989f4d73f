// Mixed f16/f32 bindings (kernels/f16.ts withStorage with one type per binding): only the f16 bindings are rewritten,
// the others stay f32 arrays with their accesses untouched, the cache keys tell the mixes apart, and kernelFor gives
// each binding its tensor's type. The compiled programs run in test/runtime/f16-islands.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { halfStorageWgsl, withStorage } from '../../kernels/f16.js';
import { kernelFor } from '../../kernels/registry.js';
import { defaultLimits } from '../../kernels/program.js';
import type { Node } from '../../src/graph/ir.js';
import { newAttrs } from '../../src/graph/ir.js';

const dw: Node = {
  name: 'dw', op: 'Conv', domain: '', inputs: ['a', 'w', 'b'], outputs: ['y'],
  attrs: newAttrs({ kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 8 }),
};
const shapes = [[1, 8, 12, 12], [8, 1, 3, 3], [8]];

/** The element type of each storage binding, by binding number. */
function bindingTypes(wgsl: string): Map<number, string> {
  const m = new Map<number, string>();
  for (const d of wgsl.matchAll(/@binding\((\d+)\)\s*var<storage,\s*\w+>\s*\w+\s*:\s*array<\s*([\w<>]+)\s*>/g)) m.set(Number(d[1]), d[2]);
  return m;
}

test('halfStorageWgsl converts only the chosen bindings: a load of an f32 one stays as it is', () => {
  const wgsl = `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  out[i] = x[i] * w[i];
}
`;
  const mixed = halfStorageWgsl(wgsl, (b) => b !== 0);
  assert.deepEqual([...bindingTypes(mixed)], [[0, 'f32'], [1, 'f16'], [2, 'f16']]);
  assert.match(mixed, /out\[i\] = f16\(x\[i\] \* f32\(w\[i\]\)\)/);
  assert.ok(mixed.startsWith('enable f16;'));
  // Every binding f16: as before.
  assert.deepEqual([...bindingTypes(halfStorageWgsl(wgsl))].map(([, t]) => t), ['f16', 'f16', 'f16']);
});

test('withStorage per binding: all f32 is the fp32 program, all f16 the f16 program, a mix its own key', () => {
  const k = kernelFor(dw, shapes, [[1, 8, 12, 12]], defaultLimits);
  assert.equal(k.kind, 'programs');
  if (k.kind !== 'programs') return;
  const p = k.programs[0];
  const n = p.inputs.length + p.outputs;
  assert.equal(n, 4);
  assert.equal(withStorage(p, Array(n).fill('f32')), p);
  assert.deepEqual(withStorage(p, Array(n).fill('f16')), withStorage(p, 'f16'));
  const m = withStorage(p, ['f32', 'f32', 'f32', 'f16']);
  assert.equal(m.cacheKey, `f16[fffh]|${p.cacheKey}`);
  assert.notEqual(withStorage(p, ['f16', 'f32', 'f32', 'f16']).cacheKey, m.cacheKey);
  assert.throws(() => withStorage(p, ['f16', 'f32']), /4 bindings/);
});

test('kernelFor with a storage per tensor: each binding takes its tensor\'s type', () => {
  const k = kernelFor(dw, shapes, [[1, 8, 12, 12]], defaultLimits, (t) => (t === 'a' || t === 'w' || t === 'b' ? 'f32' : 'f16'));
  assert.equal(k.kind, 'programs');
  if (k.kind !== 'programs') return;
  const types = [...bindingTypes(k.programs[0].wgsl).values()];
  // x, w, bias f32; the output f16.
  assert.deepEqual(types.map((t) => t.includes('f16')), [false, false, false, true]);
  // Every tensor f32 through the function: the fp32 program.
  const all32 = kernelFor(dw, shapes, [[1, 8, 12, 12]], defaultLimits, () => 'f32');
  const fp32 = kernelFor(dw, shapes, [[1, 8, 12, 12]], defaultLimits);
  assert.ok(all32.kind === 'programs' && fp32.kind === 'programs');
  if (all32.kind === 'programs' && fp32.kind === 'programs') assert.equal(all32.programs[0].cacheKey, fp32.programs[0].cacheKey);
});
