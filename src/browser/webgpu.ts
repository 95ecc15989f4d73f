// The browser's WebGPU entry point (replaces src/runtime/webgpu-node.ts in the browser build): the page's
// navigator.gpu. Dawn's instance flags are the browser's business there.
import { gpuFailure } from '../errors.js';

/** Dawn's toggles (validation among them) are not ours to set in a browser. */
export const takesDawnFlags = false;

export function systemGpu(_flags: string[]): GPU {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) throw gpuFailure('WebGPU', 'this browser has no navigator.gpu (WebGPU is off or unsupported here)');
  return gpu;
}
