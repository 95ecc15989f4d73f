import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
const gpu = create([]);
const a = await gpu.requestAdapter();
console.log(a && a.info, a && [...a.features], a && a.limits.maxComputeWorkgroupStorageSize, a&&a.limits.maxStorageBufferBindingSize);
process.exit(0);
