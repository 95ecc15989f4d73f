// Runs integer kernel programs (kernels/int8/) on a WebGPU device (lavapipe in CI): packed 8-bit input buffers in
// binding order, then the program's constants, then the outputs (pre-filled with a byte pattern no kernel
// produces on its own, 0xa5, so an element the kernel forgets to write fails the comparison), one dispatch, read
// back. The device is this file's own: the GPU object is kept for the WGSL language features it reports.

import { create, globals } from 'webgpu';
import type { Int8Program } from '../../../kernels/int8/common.js';
import type { KernelLimits } from '../../../kernels/program.js';

let state: Promise<{ gpu: GPU; adapter: GPUAdapter; device: GPUDevice }> | undefined;
// Pipelines of this device by WGSL text, so a program run again is not compiled again (lavapipe: LLVM per pipeline).
const pipelines = new Map<string, GPUComputePipeline>();

function init() {
  state ??= (async () => {
    process.env.XDG_RUNTIME_DIR ??= '/tmp';
    Object.assign(globalThis, globals);
    const gpu = create([]);
    const adapter = await gpu.requestAdapter();
    if (!adapter) throw new Error('no WebGPU adapter (install a Vulkan driver, or Mesa lavapipe)');
    const l = adapter.limits;
    const device = await adapter.requestDevice({
      requiredLimits: {
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
        maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      },
    });
    return { gpu, adapter, device };
  })();
  return state;
}

/** Whether this adapter's WGSL offers dot4I8Packed / dot4U8Packed. */
export async function hasDot4(): Promise<boolean> {
  const { gpu } = await init();
  return gpu.wgslLanguageFeatures.has('packed_4x8_integer_dot_product');
}

export async function deviceLimits(): Promise<KernelLimits> {
  const l = (await init()).device.limits;
  return {
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
  };
}

/** Run one program once; `inputs` are the packed activation buffers in binding order; returns each output's words. */
export async function runInt8(program: Int8Program, inputs: Uint32Array[], outputWords: number[]): Promise<Uint32Array[]> {
  const { device } = await init();
  if (inputs.length !== program.inputs.length) throw new Error(`${program.name}: ${inputs.length} inputs given, ${program.inputs.length} bound`);
  const S = GPUBufferUsage.STORAGE, CS = GPUBufferUsage.COPY_SRC;
  const make = (d: Uint32Array) => {
    const b = device.createBuffer({ size: Math.max(4, d.byteLength), usage: S | CS, mappedAtCreation: true });
    new Uint32Array(b.getMappedRange()).set(d);
    b.unmap();
    return b;
  };
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let pipeline = pipelines.get(program.wgsl);
  if (!pipeline) {
    const module = device.createShaderModule({ code: program.wgsl });
    const info = await module.getCompilationInfo();
    const errs = info.messages.filter((m) => m.type === 'error');
    if (errs.length) throw new Error(`${program.name}: WGSL: ${errs.map((e) => `${e.lineNum}:${e.linePos} ${e.message}`).join('; ')}\n${program.wgsl}`);
    pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    pipelines.set(program.wgsl, pipeline);
  }
  const ins = [...inputs, ...program.constants.map((c) => c.data)].map(make);
  const outs = outputWords.map((n) => make(new Uint32Array(Math.max(1, n)).fill(0xa5a5a5a5)));
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [...ins, ...outs].map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(...program.dispatch);
  pass.end();
  const stagings = outs.map((b) => {
    const s = device.createBuffer({ size: b.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    enc.copyBufferToBuffer(b, 0, s, 0, b.size);
    return s;
  });
  device.queue.submit([enc.finish()]);
  const results: Uint32Array[] = [];
  for (const s of stagings) {
    await s.mapAsync(GPUMapMode.READ);
    results.push(new Uint32Array(s.getMappedRange().slice(0)));
    s.unmap();
    s.destroy();
  }
  const v = await device.popErrorScope();
  const m = await device.popErrorScope();
  for (const b of [...ins, ...outs]) b.destroy();
  if (v || m) throw new Error(`${program.name}: ${(v ?? m)!.message}`);
  return results;
}

export async function closeInt8Device(): Promise<void> {
  if (!state) return;
  const s = await state;
  state = undefined;
  pipelines.clear();
  s.device.destroy();
}
