// What the bench reports as its device, and the adapter facts `--hw auto` needs. Asks Dawn (npm `webgpu`)
// for the adapter only; the runtime makes its own device.

import type { AdapterInfoLike, AdapterLimitsLike } from '../planner/hw.js';

export interface AdapterSummary {
  /** "vendor architecture (description)", or why there is none. */
  description: string;
  adapter?: { info: AdapterInfoLike; limits: AdapterLimitsLike };
}

// Kept for the life of the process: Dawn tears its instance down under live objects once the GPU object is
// garbage-collected (see test/kernels/fused-harness.ts).
let gpu: GPU | undefined;

export async function adapterSummary(): Promise<AdapterSummary> {
  try {
    process.env.XDG_RUNTIME_DIR ??= '/tmp';
    // Loaded here, not at import: the library API must not load Dawn for planning-only use.
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    gpu ??= create([]);
    const adapter = await gpu.requestAdapter();
    if (!adapter) return { description: 'no WebGPU adapter' };
    const i = adapter.info;
    const info: AdapterInfoLike = { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description };
    const parts = [i.vendor, i.architecture, i.device].filter((s) => s);
    const description = `${parts.join(' ') || 'unknown adapter'}${i.description ? ` (${i.description})` : ''}`;
    const limits: AdapterLimitsLike = { maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize };
    return { description, adapter: { info, limits } };
  } catch (e) {
    return { description: `no WebGPU adapter (${e instanceof Error ? e.message.split('\n')[0] : String(e)})` };
  }
}
