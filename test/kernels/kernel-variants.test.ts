// A pointwise Conv's kernel variants (kernels/registry.ts pointwiseVariants) and the node attribute kernelVariant that
// picks one (set from a plan's `kernels` by src/rewrite/kernel-choices.ts): each variant's program, the rule's
// first, and the fallback to the rule's kernel for a variant the shape, precision or device cannot take. Pure
// functions: no GPU.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type NodeKernel, kernelFor, pointwiseVariants } from '../../kernels/registry.js';
import { type KernelLimits, defaultLimits } from '../../kernels/program.js';
import type { Node } from '../../src/graph/ir.js';
import { compileGraph } from '../../src/runtime/compile.js';
import { prepareForRun } from '../../src/pipeline/pipeline.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { mobileNetV2 } from '../../fixtures/zoo.js';

const h100: Required<KernelLimits> = { ...defaultLimits, maxComputeWorkgroupStorageSize: 49152, maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 1024 };
const support = { subgroupSize: 32 };

const conv = (attrs: Node['attrs'] = {}): Node => ({ name: 'pw', op: 'Conv', domain: '', inputs: ['x', 'w', 'b'], outputs: ['y'], attrs: { activation: 'Clip', activationParams: [0, 6], ...attrs } });
const keyOf = (k: NodeKernel) => (k.kind === 'programs' ? k.programs.map((p) => p.cacheKey).join(',') : 'alias');
const programs = (k: NodeKernel) => (k.kind === 'programs' ? k : assert.fail('an alias'));

// 14x14 576 -> 96 at batch 32 (gemm by the rule, vec4 the other) and 56x56 24 -> 144 (vec4 by the rule, gemm the other).
const shapes = [
  { ins: [[32, 576, 14, 14], [96, 576, 1, 1], [96]], outs: [[32, 96, 14, 14]] },
  { ins: [[32, 24, 56, 56], [144, 24, 1, 1], [144]], outs: [[32, 144, 56, 56]] },
];
const kinds: Record<string, RegExp> = { gemm: /^(f16\|)?pointwise-gemm\|/, vec4: /^(f16\|)?pointwise-vec4\|/, splitK: /^(f16\|)?pointwise-splitk\|/, smx: /^pointwise-smx\|/ };

test('pointwiseVariants: the rule\'s variant first, then the others of the family; kernelFor runs each one asked for', () => {
  for (const { ins, outs } of shapes) {
    for (const [storage, smx] of [['f32', undefined], ['f16', undefined], ['f16', support]] as const) {
      const features = smx ? { subgroupMatrix: smx } : {};
      const rule = programs(kernelFor(conv(), ins, outs, h100, storage, features));
      const vs = pointwiseVariants({ node: conv(), inputShapes: ins, outputShapes: outs, limits: h100 }, smx)!;
      const keys = vs.map((v) => v.key);
      assert.equal(new Set(keys).size, keys.length, 'no variant twice');
      assert.ok(keys.length >= 2, `${ins[0]} ${storage}: ${keys}`);
      assert.deepEqual(rule.variants, keys);
      assert.equal(rule.variant, keys[0], 'the rule\'s choice comes first');
      assert.equal(rule.fallback, undefined);
      if (smx) assert.ok(keys.filter((k) => k.startsWith('smx:')).length >= 3, `staged variants offered: ${keys}`);
      else assert.ok(keys.every((k) => !k.startsWith('smx:')), 'no subgroup-matrix variant without the feature');
      const seen = new Set<string>();
      for (const key of keys) {
        const k = programs(kernelFor(conv({ kernelVariant: key }), ins, outs, h100, storage, features));
        assert.equal(k.variant, key);
        assert.equal(k.fallback, undefined);
        assert.equal(k.programs.length, 1);
        const cacheKey = k.programs[0].cacheKey;
        assert.match(cacheKey, kinds[key.split(':')[0]], `${key} runs its own kernel`);
        if (storage === 'f16' && !key.startsWith('smx:')) assert.match(cacheKey, /^f16\|/, 'the plain kernel with f16 storage');
        // The variant's tiles are in the program's cache key (smx: its tile key; gemm: its thread tiles).
        if (key.startsWith('smx:')) assert.ok(cacheKey.includes(`|${key.slice(4)}|`), `${cacheKey} names ${key}`);
        if (key.startsWith('gemm:')) assert.ok(cacheKey.includes(key.slice(5).replace(/KS(\d+)/, 'BK16KS$1')), `${cacheKey} names ${key}`);
        if (key === keys[0]) assert.equal(keyOf(k), keyOf(rule), 'asking for the rule\'s variant changes nothing');
        seen.add(cacheKey);
      }
      assert.equal(seen.size, keys.length, 'each variant is its own program');
    }
  }
});

test('kernelVariant: a variant the node cannot take falls back to the rule\'s kernel with a note', () => {
  const { ins, outs } = shapes[0];
  const rule = (storage: 'f32' | 'f16', f = {}) => keyOf(kernelFor(conv(), ins, outs, h100, storage, f));
  const check = (variant: string, storage: 'f32' | 'f16', features: { subgroupMatrix?: typeof support } = {}, limits: KernelLimits = h100) => {
    const k = programs(kernelFor(conv({ kernelVariant: variant }), ins, outs, limits, storage, features));
    assert.equal(keyOf(k), keyOf(kernelFor(conv(), ins, outs, limits, storage, features)), `${variant}: the rule's program`);
    assert.equal(k.variant, k.variants![0]);
    assert.match(k.fallback ?? '', new RegExp(`node 'pw': kernel variant '${variant.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}' is not one`));
  };
  // Subgroup matrices in fp32, or in f16 on a device without them.
  check('smx:SG2x2T1x1BK32', 'f32', { subgroupMatrix: support });
  check('smx:SG2x2T1x1BK32', 'f16');
  // A direct variant where the device's rule takes none (the device check never ran it).
  check('smx:D2x2T2x2N16K1', 'f16', { subgroupMatrix: support });
  // 64 x 64 padded tiles (27 KiB) within WebGPU's default 16 KiB of workgroup memory; the unpadded tiles, no longer
  // offered, anywhere.
  check('smx:SG2x2T2x2BK32P', 'f16', { subgroupMatrix: support }, defaultLimits);
  check('smx:SG2x2T1x1BK32', 'f16', { subgroupMatrix: support });
  // gemm tiles no layer is offered, split-K this layer is not offered, and a name of nothing.
  check('gemm:TX4TY4RF4KS1', 'f32');
  check('splitK:KS7', 'f32');
  check('fastest', 'f16', { subgroupMatrix: support });
  assert.ok(rule('f32') !== rule('f16'));
  // Any other node runs its rule's kernel, with a note: no variants.
  const dw: Node = { ...conv({ kernelVariant: 'vec4:RF4T64' }), attrs: { group: 64, pads: [1, 1, 1, 1], kernelVariant: 'vec4:RF4T64' } };
  const dwIn = [[8, 64, 28, 28], [64, 1, 3, 3], [64]];
  const k = programs(kernelFor(dw, dwIn, [[8, 64, 28, 28]], h100, 'f32'));
  assert.equal(k.variants, undefined);
  assert.match(k.fallback ?? '', /node 'pw' \(Conv\): kernel variant 'vec4:RF4T64' asked for, but only pointwise Convs have variants/);
  assert.equal(keyOf(k), keyOf(kernelFor({ ...dw, attrs: { group: 64, pads: [1, 1, 1, 1] } }, dwIn, [[8, 64, 28, 28]], h100, 'f32')));
});

test('compileGraph: each pointwise Conv\'s variants and the one it runs; choices it cannot take listed', async () => {
  const limits = { ...h100, maxStorageBufferBindingSize: 1 << 30, maxBufferSize: 1 << 30 };
  const g = await prepareForRun(exportOnnx(mobileNetV2(1)), { plan: 'unfused' });
  const plain = compileGraph(g, limits);
  assert.ok(plain.kernelVariants && plain.kernelVariants.size >= 17, `${plain.kernelVariants?.size} pointwise layers`);
  assert.equal(plain.kernelFallbacks, undefined);
  // Every pointwise layer with a second variant switched to it, one asked for a subgroup-matrix variant in fp32.
  const switched = [...plain.kernelVariants!].filter(([, v]) => v.variants.length > 1);
  assert.ok(switched.length >= 3);
  const [odd] = [...plain.kernelVariants!].filter(([, v]) => v.variants.length === 1).map(([n]) => n);
  const asked = new Map([...switched.map(([n, v]) => [n, v.variants[1]] as const), ...(odd ? [[odd, 'smx:SG2x2T1x1BK32'] as const] : [])]);
  const forced = compileGraph({ ...g, nodes: g.nodes.map((n) => (asked.has(n.name) ? { ...n, attrs: { ...n.attrs, kernelVariant: asked.get(n.name)! } } : n)) }, limits);
  for (const [n, v] of switched) assert.equal(forced.kernelVariants!.get(n)!.variant, v.variants[1]);
  forced.steps.forEach((s, i) => {
    const changed = switched.some(([n]) => n === s.node.name);
    assert.equal(s.program.cacheKey !== plain.steps[i].program.cacheKey, changed, s.node.name);
    assert.deepEqual(s.bindings, plain.steps[i].bindings);
  });
  if (odd) assert.deepEqual(forced.kernelFallbacks?.length, 1);
});

test('a conv with a shuffled store (shuffleGroups) offers the plain kernel\'s variants only, each with the shuffled store', () => {
  // ShuffleNetV2's 116 -> 116 on 14x14 at batch 32 (as test/kernels/pointwise-shuffle.test.ts builds it).
  const node: Node = { ...conv({ shuffleGroups: 2 }), inputs: ['x', 'w', 'b', '', '', 'a'], outputs: ['y0', 'y1'] };
  const ins = [[32, 116, 14, 14], [116, 116, 1, 1], [116], undefined, undefined, [32, 116, 14, 14]];
  const outs = [[32, 116, 14, 14], [32, 116, 14, 14]];
  const rule = programs(kernelFor(node, ins, outs, h100, 'f16', { subgroupMatrix: support }));
  assert.ok(rule.variants!.length >= 2 && rule.variants!.every((k) => !k.startsWith('smx:')), `${rule.variants}`);
  for (const key of rule.variants!) {
    const k = programs(kernelFor(node, ins, outs, h100, 'f16', { subgroupMatrix: support }));
    const forced = programs(kernelFor({ ...node, attrs: { ...node.attrs, kernelVariant: key } }, ins, outs, h100, 'f16', { subgroupMatrix: support }));
    assert.equal(forced.variant, key);
    assert.equal(forced.programs[0].outputs, 2);
    assert.deepEqual(forced.programs[0].inputs, [0, 1, 2, 5]);
    assert.match(forced.programs[0].cacheKey, /^f16\|pointwise-.*shuf2\[116x116\]/);
    if (key === rule.variants![0]) assert.equal(keyOf(forced), keyOf(k));
  }
  // Asked for a subgroup-matrix variant: the rule's kernel, with a note.
  const smx = programs(kernelFor({ ...node, attrs: { ...node.attrs, kernelVariant: 'smx:SG2x2T1x1BK32' } }, ins, outs, h100, 'f16', { subgroupMatrix: support }));
  assert.equal(keyOf(smx), keyOf(rule));
  assert.ok(smx.fallback);
});
