// Lists the dispatches of a zoo model's executor graph (fused plan on --hw, or --unfused), one line each: node, op,
// program, output shape. Run: npx tsc -p tsconfig.json && node dist/bench/list-dispatches.js efficientnet_b0 [--batch N]
import { exportOnnx } from '../converters/onnx/export.js';
import { loadModel } from '../src/graph/load.js';
import { zooFoldModels, zooModels } from '../fixtures/zoo.js';
import { loadHw } from '../src/planner/hw.js';
import { planFor, planningInput, rewrite } from '../src/pipeline/pipeline.js';
import { foldChannelScales } from '../src/rewrite/channel-scale.js';
import { compileGraph } from '../src/runtime/compile.js';
import { defaultLimits } from '../kernels/program.js';

const limits = { ...defaultLimits, maxComputeWorkgroupStorageSize: 32768, maxStorageBufferBindingSize: 1 << 30, maxBufferSize: 1 << 30 };
async function main() {
  const name = process.argv[2] ?? 'efficientnet_b0';
  const bi = process.argv.indexOf('--batch');
  const batch = bi >= 0 ? Number(process.argv[bi + 1]) : 1;
  const unfused = process.argv.includes('--unfused');
  const all: Record<string, (n: number) => Parameters<typeof exportOnnx>[0]> = { ...zooModels, ...zooFoldModels };
  const g = await loadModel(exportOnnx(all[name](batch)), { source: `${name}.onnx` });
  const pin = planningInput(g, loadHw('hw_configs/h100.cfg'), false, 'fp32');
  const eg = foldChannelScales(rewrite(pin.graph, 'fp32', unfused ? 'unfused' : planFor(pin, { model: name })));
  const steps = compileGraph(eg, limits).steps;
  steps.forEach((s, i) => console.log(`${i}\t${s.node.op}${s.node.attrs.activation ? '+' + String(s.node.attrs.activation) : ''}\t${s.program.name}\t${JSON.stringify(eg.tensors.get(s.node.outputs[0])?.shape)}\t${s.node.name}`));
  console.log(`${steps.length} dispatches`);
}
main().catch((e) => { console.error(e); process.exit(1); });
