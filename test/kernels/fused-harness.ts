// A minimal WebGPU harness for kernel tests and benchmarks: one device with the adapter's own limits, buffers in
// KernelProgram binding order, one dispatch, read back. Errors inside the run (validation, out of memory) are
// caught with error scopes and thrown: a skipped dispatch would otherwise read back as silent zeros.

import { create, globals } from 'webgpu';
import type { KernelLimits, KernelProgram } from '../../kernels/program.js';
import { dawnFlags } from '../../src/runtime/device.js';

let devicePromise: Promise<GPUDevice> | undefined;
// Pipelines of this device by WGSL text: a test that runs a program again (or another program with the same text)
// reuses its pipeline instead of compiling it again (lavapipe compiles each with LLVM, about a second).
const pipelines = new Map<string, GPUComputePipeline>();
// Kept alive for the life of the process: once the GPU object is garbage-collected Dawn tears the instance down
// under the device, and later submissions crash (futex / pthread assertion failures, segfaults).
let gpu: GPU | undefined;
let adapterRef: GPUAdapter | undefined;

export function getDevice(): Promise<GPUDevice> {
  devicePromise ??= (async () => {
    process.env.XDG_RUNTIME_DIR ??= '/tmp';
    Object.assign(globalThis, globals);
    // Raw timestamps for bench/fcm-kernels.ts and bench/layer-kernels.ts (src/runtime/device.ts says why).
    gpu = create(dawnFlags());
    const adapter = await gpu.requestAdapter();
    if (!adapter) throw new Error('no WebGPU adapter (install a Vulkan driver, or Mesa lavapipe)');
    adapterRef = adapter;
    const l = adapter.limits;
    const features = (['timestamp-query', 'shader-f16'] as GPUFeatureName[]).filter((f) => adapter.features.has(f));
    return adapter.requestDevice({
      requiredFeatures: features,
      requiredLimits: {
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
        maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      },
    });
  })();
  return devicePromise;
}

export function limitsOf(device: GPUDevice): KernelLimits {
  const l = device.limits;
  return {
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
  };
}

export interface Prepared {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  output: GPUBuffer;
  outputBytes: number;
  buffers: GPUBuffer[];
}

function storage(device: GPUDevice, data: Float32Array, usage: number): GPUBuffer {
  // WebGPU refuses zero-sized bindings; an empty tensor still gets 4 bytes.
  const size = Math.max(4, Math.ceil(data.byteLength / 4) * 4);
  const b = device.createBuffer({ size, usage, mappedAtCreation: true });
  new Float32Array(b.getMappedRange()).set(data);
  b.unmap();
  return b;
}

async function scoped<T>(device: GPUDevice, what: string, f: () => T | Promise<T>): Promise<T> {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  const r = await f();
  const v = await device.popErrorScope();
  const m = await device.popErrorScope();
  if (v || m) throw new Error(`${what}: ${(v ?? m)!.message}`);
  return r;
}

/** Compile the program and bind `inputs` (the program's used inputs, in binding order) and a fresh output. */
export async function prepare(device: GPUDevice, program: KernelProgram, inputs: Float32Array[], outputElements: number): Promise<Prepared> {
  if (inputs.length !== program.inputs.length) throw new Error(`${program.name}: ${inputs.length} inputs given, ${program.inputs.length} bound`);
  return scoped(device, program.name, async () => {
    const pipeline = await pipelineOf(device, program.wgsl, program.name);
    const buffers = inputs.map((d) => storage(device, d, GPUBufferUsage.STORAGE));
    const outputBytes = outputElements * 4;
    // Filled with NaN so that an output element the kernel forgets to write fails the comparison.
    const output = storage(device, new Float32Array(outputElements).fill(NaN), GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
    const bindGroup = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [...buffers, output].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    return { pipeline, bindGroup, output, outputBytes, buffers: [...buffers, output] };
  });
}

/** The device's pipeline for `wgsl` (entry point main, layout auto), compiled on first use; WGSL errors thrown. */
export async function pipelineOf(device: GPUDevice, wgsl: string, name: string): Promise<GPUComputePipeline> {
  let pipeline = pipelines.get(wgsl);
  if (pipeline) return pipeline;
  const module = device.createShaderModule({ code: wgsl });
  const info = await module.getCompilationInfo();
  const errs = info.messages.filter((m) => m.type === 'error');
  if (errs.length) throw new Error(`${name}: WGSL: ${errs.map((e) => `${e.lineNum}:${e.linePos} ${e.message}`).join('; ')}\n${wgsl}`);
  // Synchronous on purpose: createComputePipelineAsync segfaults in Dawn + lavapipe for these shaders.
  pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  pipelines.set(wgsl, pipeline);
  return pipeline;
}

export function encodeDispatch(pass: GPUComputePassEncoder, program: KernelProgram, p: Prepared): void {
  pass.setPipeline(p.pipeline);
  pass.setBindGroup(0, p.bindGroup);
  pass.dispatchWorkgroups(...program.dispatch);
}

export async function readBack(device: GPUDevice, buffer: GPUBuffer, bytes: number): Promise<Float32Array> {
  const staging = device.createBuffer({ size: Math.max(4, bytes), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(buffer, 0, staging, 0, Math.max(4, bytes));
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const r = new Float32Array(staging.getMappedRange().slice(0, bytes));
  staging.unmap();
  staging.destroy();
  return r;
}

export function release(p: Prepared): void {
  for (const b of p.buffers) b.destroy();
}

/** Run one program once: inputs in binding order; returns the output. */
export async function runProgram(device: GPUDevice, program: KernelProgram, inputs: Float32Array[], outputElements: number): Promise<Float32Array> {
  const p = await prepare(device, program, inputs, outputElements);
  try {
    return await scoped(device, program.name, async () => {
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      encodeDispatch(pass, program, p);
      pass.end();
      device.queue.submit([enc.finish()]);
      return readBack(device, p.output, p.outputBytes);
    });
  } finally {
    release(p);
  }
}

/** Destroy the shared device (test files call it from `after`, so the process exits promptly). */
export async function closeDevice(): Promise<void> {
  if (!devicePromise) return;
  const d = await devicePromise;
  devicePromise = undefined;
  pipelines.clear();
  d.destroy();
}
