// The one hardware resolver: what every command, the session, the tuner, the bench and the report plan for. A
// HwConfig as given, a .cfg/.json path or a shipped name (hw_configs/), or 'auto': this machine's WebGPU adapter
// (its description, subgroup size and workgroup storage; src/planner/hw.ts hwFromAdapter).

import type { HwConfig } from '../planner/hw-config.js';
import { type AdapterInfoLike, type AdapterLimitsLike, loadHw } from '../planner/hw.js';
import { type GpuContext, acquireGpu } from '../runtime/device.js';

/** The adapter facts `--hw auto` reads, from the runtime's device. */
export function adapterFacts(ctx: GpuContext): { info: AdapterInfoLike; limits: AdapterLimitsLike } {
  return { info: ctx.adapterInfo, limits: ctx.limits as unknown as AdapterLimitsLike };
}

/** `hw` as a HwConfig; undefined and 'auto' describe the adapter (opening the device: FcmError gpu when none). */
export async function resolveHw(hw: HwConfig | string | undefined): Promise<HwConfig> {
  if (typeof hw === 'object') return hw;
  if (hw && hw !== 'auto') return loadHw(hw);
  return loadHw('auto', { adapter: adapterFacts(await acquireGpu()) });
}
