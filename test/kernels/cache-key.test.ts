// The runtime caches compiled pipelines by KernelProgram.cacheKey, so a key must name everything baked into the
// WGSL: two programs with one key must be the same program. Checked on every program the kernels build for zoo
// models (layer by layer and fused; regnet_x_400mf for its grouped convs) and an int8 TFLite fixture (fused, both dot
// product forms), without a GPU.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mobileNetV2, mobileNetV3Large, regNetX400mf } from '../../fixtures/zoo.js';
import { buildMobileNetStyle } from '../../fixtures/tflite-builder.js';
import { type Graph, fcmDomain } from '../../src/graph/ir.js';
import { loadModel } from '../../src/graph/load.js';
import { loadHw } from '../../src/planner/hw.js';
import { prepareForRun, prepareInt8Graph } from '../../src/pipeline/pipeline.js';
import { int8KernelFor, kernelFor } from '../../kernels/registry.js';
import { type KernelProgram, defaultLimits } from '../../kernels/program.js';

const hw = loadHw('h100');

/** Everything about a program except its name and dispatch (the grid is not baked into the WGSL). */
const body = (p: KernelProgram) => JSON.stringify([p.wgsl, p.workgroupSize, p.inputs, p.outputs, p.outputIndices, p.workgroupStorageBytes]);

function collect(into: Map<string, { body: string; where: string }>, p: KernelProgram, where: string, clashes: string[]): void {
  const seen = into.get(p.cacheKey);
  if (!seen) into.set(p.cacheKey, { body: body(p), where });
  else if (seen.body !== body(p)) clashes.push(`${where} and ${seen.where} share the key '${p.cacheKey}' with different programs`);
}

function floatPrograms(g: Graph): KernelProgram[] {
  const shape = (x: string) => (x ? g.tensors.get(x)?.shape : undefined);
  return g.nodes.flatMap((n) => {
    const k = kernelFor(n, n.inputs.map(shape), n.outputs.map((y) => shape(y) ?? []), defaultLimits);
    return k.kind === 'alias' ? [] : k.programs;
  });
}

test('equal cache keys mean equal programs (fp32, layer by layer and fused)', async () => {
  const keys = new Map<string, { body: string; where: string }>();
  const clashes: string[] = [];
  let programs = 0;
  // regnet_x_400mf: its grouped convs (kernels/grouped-conv.ts), 22 layers over 7 shapes.
  for (const [name, model] of [['mobilenet_v2', mobileNetV2(1)], ['mobilenet_v3_large', mobileNetV3Large(1)], ['regnet_x_400mf', regNetX400mf(1)]] as const) {
    for (const plan of ['unfused', 'auto'] as const) {
      for (const p of floatPrograms(await prepareForRun(model, { plan, hw }))) {
        collect(keys, p, `${name}/${plan}/${p.name}`, clashes);
        programs++;
      }
    }
  }
  assert.deepEqual(clashes, []);
  // Repeated layers share programs: without shared keys the check above compared nothing.
  assert.ok(keys.size < programs, `${programs} programs, ${keys.size} keys`);
  assert.ok([...keys.keys()].some((k) => k.startsWith('FusedPwDw') || /pwdw/i.test(k)), 'no fused program was built');
  assert.ok([...keys.keys()].some((k) => k.startsWith('grouped|')), 'no grouped conv program was built');
});

test('equal cache keys mean equal programs (int8, fused, dot4 and unpacking)', async () => {
  const g0 = await loadModel(buildMobileNetStyle({ int8: true }), { source: 'mobilenet-style.tflite' });
  const g = prepareInt8Graph(g0, 'auto', () => hw);
  const t = (x: string) => (x ? g.tensors.get(x) : undefined);
  const keys = new Map<string, { body: string; where: string }>();
  const clashes: string[] = [];
  let programs = 0;
  for (const dot4 of [false, true]) {
    for (const node of g.nodes) {
      if (!['Conv', 'Add', 'AveragePool', 'ReduceMean', 'Gemm'].includes(node.op) && node.domain !== fcmDomain) continue;
      const s = node.attrs.intermediateScale, z = node.attrs.intermediateZeroPoint, x = t(node.inputs[0]);
      const intermediate = node.domain === fcmDomain && typeof s === 'number' && typeof z === 'number' && x
        ? { name: `${node.name}/intermediate`, dtype: x.dtype, shape: [], quant: { scale: [s], zeroPoint: [z] } }
        : undefined;
      const p = int8KernelFor({ node, inputs: node.inputs.map(t), outputs: node.outputs.map((y) => t(y)!), limits: defaultLimits, dot4, intermediate }, node.domain);
      collect(keys, p, `${dot4 ? 'dot4' : 'unpack'}/${p.name}/${node.name}`, clashes);
      programs++;
    }
  }
  assert.deepEqual(clashes, []);
  assert.ok(keys.size < programs, `${programs} programs, ${keys.size} keys`);
  assert.ok([...keys.values()].some((v) => v.where.includes('Fused')), 'no fused int8 program was built');
});
