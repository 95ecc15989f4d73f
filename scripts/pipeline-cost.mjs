// CPU seconds each compute pipeline costs on the adapter (lavapipe: mostly its LLVM compile, which happens at the first
// dispatch): for each WGSL file, creates the pipeline, binds zeroed buffers, dispatches one workgroup, waits, and prints
// the file, CPU seconds and wall seconds. Run it with an empty shader cache and the suite's settings to see which
// programs a test file's time goes to; the WGSL files are those scripts/test-cost.mjs writes under --log DIR/wgsl/.
//   MESA_SHADER_CACHE_DIR=$(mktemp -d) GALLIVM_PERF=nopt node scripts/pipeline-cost.mjs DIR/wgsl/*.wgsl
// Not part of the product.
import { readFileSync } from 'node:fs';
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
// Kept in a variable: Dawn's node binding crashes when the GPU object is collected while its device lives.
const gpu = create([]);
const adapter = await gpu.requestAdapter();
if (!adapter) throw new Error('no WebGPU adapter');
const wanted = ['shader-f16', 'subgroups', 'packed_4x8_integer_dot_product'];
const limits = ['maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX',
  'maxStorageBuffersPerShaderStage', 'maxStorageBufferBindingSize', 'maxBufferSize'];
const device = await adapter.requestDevice({
  requiredFeatures: [...adapter.features].filter((f) => wanted.includes(f)),
  requiredLimits: Object.fromEntries(limits.map((k) => [k, adapter.limits[k]])),
});
for (const file of process.argv.slice(2)) {
  const code = readFileSync(file, 'utf8');
  const cpu0 = process.cpuUsage(), t0 = performance.now();
  device.pushErrorScope('validation');
  const entryPoint = /@compute[^]*?fn\s+(\w+)/.exec(code)?.[1];
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint } });
  // Every binding of group 0 gets a zeroed buffer (64 MiB for storage: enough for any fixed-size array a test uses).
  const buffers = [...code.matchAll(/@group\(0\)\s*@binding\((\d+)\)\s*var<(\w+)/g)].map((m) => {
    const uniform = m[2] === 'uniform';
    return { binding: Number(m[1]), buffer: device.createBuffer({ size: uniform ? 65536 : 64 << 20, usage: uniform ? GPUBufferUsage.UNIFORM : GPUBufferUsage.STORAGE }) };
  });
  const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: buffers.map(({ binding, buffer }) => ({ binding, resource: { buffer } })) });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(1);
  pass.end();
  device.queue.submit([enc.finish()]);
  const err = await device.popErrorScope();
  await device.queue.onSubmittedWorkDone();
  for (const { buffer } of buffers) buffer.destroy();
  const cpu = process.cpuUsage(cpu0);
  console.log([file, ((cpu.user + cpu.system) / 1e6).toFixed(2), ((performance.now() - t0) / 1000).toFixed(2), ...(err ? [`error: ${err.message.split('\n')[0]}`] : [])].join('\t'));
}
device.destroy();
