// Limits of the run path, refused before any GPU work (src/runtime/compile.ts), and sizes that overflowed the stack:
//  - a 100,000-node Relu chain died of SIGSEGV inside the Vulkan driver's descriptor-pool allocation
//    (createBindGroup) with no message: more than maxDispatches dispatches are exit 4 now, from compileGraph, which
//    touches no GPU (a real 100,000-node run is not made here);
//  - a Conv stride of 2^40 (valid ONNX: a one-pixel output) was an internal error from the WGSL writer ("is not a
//    u32"): exit 4 naming the node;
//  - a 300,000-layer DAG overflowed the stack in the plan table (Math.max(...rows)): a loop now.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { writeNpy } from '../../src/npy.js';
import { compileGraph, maxDispatches } from '../../src/runtime/compile.js';
import { defaultLimits } from '../../kernels/program.js';
import { FcmError } from '../../src/errors.js';
import { formatPlan } from '../../src/planner/format.js';
import type { Plan } from '../../src/planner/plan.js';
import type { Dag } from '../../src/planner/dag.js';
import { assertRefused, fcmOpt } from './harness.js';

const dir = mkdtempSync(join(tmpdir(), 'fcm-hostile-lim-'));
const p = (f: string) => join(dir, f);
after(() => rmSync(dir, { recursive: true, force: true }));

const limits = { ...defaultLimits, maxStorageBufferBindingSize: 1 << 27, maxBufferSize: 1 << 28 };
const isLimit = (re: RegExp) => (e: unknown) => e instanceof FcmError && e.kind === 'limit' && e.exitCode === 4 && re.test(e.message);

function reluChain(n: number) {
  const b = new GraphBuilder('relu_chain', 1);
  let y = b.input('input', [1, 1, 2, 2]);
  for (let i = 0; i < n; i++) y = b.relu(y);
  return b.build([y]);
}

test('more dispatches than maxDispatches: exit 4 from compileGraph, before any GPU object is made', () => {
  assert.equal(maxDispatches, 50_000);
  assert.throws(() => compileGraph(reluChain(maxDispatches + 1), limits), isLimit(/relu_chain\.onnx: the schedule has 50001 GPU dispatches, over the limit of 50000 per session/));
  // At the limit it compiles: one dispatch per Relu.
  assert.equal(compileGraph(reluChain(maxDispatches), limits).steps.length, maxDispatches);
});

function stridedConv(stride: number) {
  const b = new GraphBuilder('strided', 1);
  const x = b.input('input', [1, 4, 8, 8]);
  const w = b.random('w', [4, 4, 1, 1], 0.5);
  const y = b.node('Conv', [x, w], [1, 4, 1, 1], { kernel: [1, 1], strides: [stride, stride], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 });
  return b.build([y]);
}

test('a Conv stride of 2^40: exit 4 naming the node (compileGraph and `fcm-opt run`)', async () => {
  assert.throws(() => compileGraph(stridedConv(2 ** 40), limits), isLimit(/node 'conv_1' \(Conv\): attribute strides holds 1099511627776, over the kernels' 32-bit limit of 2147483647$/));
  // 2^31 - 1 fits the kernels' integers.
  assert.equal(compileGraph(stridedConv(2 ** 31 - 1), limits).steps.length, 1);
  const m = p('stride.onnx');
  writeFileSync(m, exportOnnx(stridedConv(2 ** 40)));
  const x = p('x.npy');
  await writeNpy(x, { data: new Float32Array(256), shape: [1, 4, 8, 8] });
  assertRefused(await fcmOpt(['run', m, '--input', x, '--output', p('y.npy')]), 4, /stride\.onnx: node 'conv_1' \(Conv\): attribute strides holds 1099511627776/, { absent: [p('y.npy')], dir });
});

test('the plan table of 300,000 layers (Math.max(...rows) overflowed the stack)', () => {
  const n = 300_000;
  const dag: Dag = Array.from({ length: n }, (_, i) => ({
    name: `conv_${i}`, id: i, activation: '0', parents: i ? [i - 1] : [], children: i < n - 1 ? [i + 1] : [],
    type: 'pw', weights_shape: [4, 4], ifms_shape: [4, 4, 4], ofms_shape: [4, 4, 4], strides: 1,
  })) as unknown as Dag;
  const plan: Plan = {
    model: 'chain', hw: 'h100', mode: 'optimal',
    modules: dag.map((l) => ({ kind: 'pw', layers: [l.id], tiles: {}, gma: 1, gmaUnfused: 1 })) as unknown as Plan['modules'],
    totals: { gma: n, gmaUnfused: n, saved: 0, savedPercent: 0 },
  };
  const text = formatPlan(plan, dag);
  assert.match(text, /^299999 +pw +299999 +conv_299999 /m);
});

test("the adapter's limits are checked per dispatch before any GPU object: exit 4 naming the node", () => {
  const b = new GraphBuilder('small_conv', 2);
  const y = b.relu(b.conv(b.input('input', [1, 4, 64, 64]), { filters: 8, kernel: 1 }));
  const g = b.build([y]);
  // As the device reports them; lavapipe: 16 storage buffers per stage, 65535 workgroups per dimension.
  assert.doesNotThrow(() => compileGraph(g, { ...limits, maxStorageBuffersPerShaderStage: 16, maxBindingsPerBindGroup: 1000, maxBindGroups: 4 }));
  // x, w and y: three storage buffers.
  assert.throws(() => compileGraph(g, { ...limits, maxStorageBuffersPerShaderStage: 2 }),
    isLimit(/^small_conv\.onnx: node 'conv_1' \(Conv\): Conv\(pw\) needs storage buffers: 3, over the adapter's maxStorageBuffersPerShaderStage of 2$/));
  assert.throws(() => compileGraph(g, { ...limits, maxBindingsPerBindGroup: 2 }), isLimit(/node 'conv_1' \(Conv\): .* over the adapter's maxBindingsPerBindGroup of 2$/));
  // The kernels fold a long dispatch into y within the limit; when even that cannot fit, no dispatch is issued
  // (Dawn would skip it and leave the output unwritten).
  assert.throws(() => compileGraph(g, { ...limits, maxComputeWorkgroupsPerDimension: 2 }), isLimit(/^small_conv\.onnx: node 'conv_1' \(Conv\): 128 workgroups exceed 2\^2/));
  assert.throws(() => compileGraph(g, { ...limits, maxComputeWorkgroupSizeY: 0 }), isLimit(/a workgroup size y of 1, over the adapter's maxComputeWorkgroupSizeY of 0$/));
});
