// The WebGPU entry point in Node: Dawn through the `webgpu` package. The browser build replaces this module with
// src/browser/webgpu.ts (navigator.gpu); nothing else in the runtime names the package.
import { create, globals } from 'webgpu';

/** Whether systemGpu's flags reach Dawn (in Node; a browser sets its own). */
export const takesDawnFlags = true;

/** The GPU object of this platform, created with Dawn's instance flags. */
export function systemGpu(flags: string[]): GPU {
  // The Vulkan loader warns without it.
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  Object.assign(globalThis, globals);
  return create(flags);
}
