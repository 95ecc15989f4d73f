// Runs a subgroup-matrix program's emulated form (kernels/pointwise-subgroup-matrix.ts `emulate`) on the test device
// (lavapipe): f16 inputs in, the f16 output back as f32. Every output element starts as NaN, so one the kernel never
// writes fails any comparison.
import { getDevice, pipelineOf } from './fused-harness.js';
import type { KernelProgram } from '../../kernels/program.js';
import { fromHalf, toHalf } from '../../src/runtime/half.js';

function halfBuffer(device: GPUDevice, v: Float32Array | Uint16Array, usage: number): GPUBuffer {
  const bits = v instanceof Uint16Array ? v : toHalf(v);
  const b = device.createBuffer({ size: Math.max(16, Math.ceil(bits.byteLength / 16) * 16), usage, mappedAtCreation: true });
  new Uint16Array(b.getMappedRange()).set(bits);
  b.unmap();
  return b;
}

export async function runEmulated(p: KernelProgram, inputs: Float32Array[], outN: number): Promise<Float32Array> {
  const device = await getDevice();
  device.pushErrorScope('validation');
  const pipeline = await pipelineOf(device, p.wgsl, p.name);
  const bufs = inputs.map((v) => halfBuffer(device, v, GPUBufferUsage.STORAGE));
  // NaN (0x7e00) in every output element: one the kernel never writes fails the comparison.
  const out = halfBuffer(device, new Uint16Array(outN).fill(0x7e00), GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
  const read = device.createBuffer({ size: Math.max(16, Math.ceil(2 * outN / 16) * 16), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [...bufs, out].map((buffer, binding) => ({ binding, resource: { buffer } })) });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bg);
  pass.dispatchWorkgroups(...p.dispatch);
  pass.end();
  enc.copyBufferToBuffer(out, 0, read, 0, read.size);
  device.queue.submit([enc.finish()]);
  const err = await device.popErrorScope();
  if (err) throw new Error(`${p.cacheKey}: ${err.message}`);
  await read.mapAsync(GPUMapMode.READ);
  const got = fromHalf(new Uint16Array(read.getMappedRange().slice(0, 2 * outN)));
  read.unmap();
  for (const x of [...bufs, out, read]) x.destroy();
  return got;
}
