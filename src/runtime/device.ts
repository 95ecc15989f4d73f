/// <reference types="@webgpu/types" preserve="true" />
// The WebGPU device: one per process, shared by every session (creating Dawn instances repeatedly is slow,
// and a GPU object that is garbage-collected tears the instance down under its device). Requests the
// adapter's own limits instead of WebGPU's defaults, and timestamp-query / subgroups / shader-f16 when present, and
// subgroup matrices where the adapter offers the f16 -> f32 configuration the f16 pointwise kernel uses.

import { systemGpu, takesDawnFlags } from './webgpu-node.js';
import { gpuFailure, invalid } from '../errors.js';
import { withNativeStderrMuted } from './native-stderr.js';
import type { KernelLimits } from '../../kernels/program.js';
import { type SmxTiles, type SubgroupMatrixSupport, smxAllVariants, smxSplitVariants, smxTileKey } from '../../kernels/pointwise-subgroup-matrix.js';
import { int8SubgroupMatrixSupport } from '../../kernels/int8/pointwise-subgroup-matrix.js';

export interface GpuContext {
  device: GPUDevice;
  adapterInfo: {
    vendor: string; architecture: string; device: string; description: string; subgroupMinSize?: number; subgroupMaxSize?: number;
    /** Dawn's subgroup-matrix configurations of the adapter (absent where it reports none). */
    subgroupMatrixConfigs?: SubgroupMatrixConfigLike[];
  };
  limits: GPUSupportedLimits;
  kernelLimits: Required<KernelLimits>;
  timestamps: boolean;
  /** Whether the device has 'shader-f16' (WGSL `enable f16;`): what the fp16 kernels need. */
  shaderF16: boolean;
  /** f16 -> f32 16x16x16 subgroup matrices on this device (subgroupMatrixSupport), for the f16 pointwise kernel. */
  subgroupMatrix?: SubgroupMatrixSupport;
  /** Pipelines by KernelProgram.cacheKey, for every session on this device. */
  pipelines: Map<string, GPUComputePipeline>;
  /** Set once the device is lost (or destroyed): every later use fails with exit 5. */
  lost?: string;
  /** Whether fcm-opt created the device (releaseGpu destroys only those). */
  owned?: boolean;
  /** Whether Dawn validates each call on this device (validationMode); absent for a caller's device. */
  validation?: 'full' | 'skip';
}

export const noAdapterHelp =
  'no WebGPU adapter found: fcm-opt needs a Vulkan driver. Install your GPU vendor\'s driver, or Mesa\'s software ' +
  'Vulkan (lavapipe) on Debian bookworm: apt-get install -t bookworm-backports mesa-vulkan-drivers (Mesa 25; ' +
  'Mesa 22 is refused); also set XDG_RUNTIME_DIR (e.g. /tmp)';

// Limits worth raising to the adapter's values: binding sizes and workgroup shape and storage.
const wantedLimits = [
  'maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY', 'maxComputeWorkgroupSizeZ', 'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage', 'maxBindingsPerBindGroup', 'minStorageBufferOffsetAlignment',
] as const;

/**
 * Dawn's instance flags (the runtime's and the kernel harness's). Dawn quantizes timestamps to 65.5 us unless told
 * not to (its `timestamp_quantization` toggle, which only turns off with allow_unsafe_apis): per-kernel profiles
 * need the raw ticks. Robustness stays on: `disable_robustness` changed no kernel's time on the H200
 * (2026-12-02). Dawn hides shader-f16 on NVIDIA under Vulkan unless `vulkan_enable_f16_on_nvidia` is on (on an
 * H100 with driver 580 the adapter then offers it); the toggle changes nothing on other adapters.
 */
export function dawnFlags(env: Record<string, string | undefined> = globalThis.process?.env ?? {}, skipValidation = false): string[] {
  // FCM_OPT_DAWN_ENABLE / FCM_OPT_DAWN_DISABLE (comma lists) add toggles, for measuring them.
  const more = (k: string) => (env[k] ?? '').split(',').map((t) => t.trim()).filter((t) => /^[a-z0-9_]+$/.test(t));
  const enable = ['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia', ...(skipValidation ? ['skip_validation'] : []), ...more('FCM_OPT_DAWN_ENABLE')];
  return [
    `enable-dawn-features=${[...new Set(enable)].join(',')}`,
    `disable-dawn-features=${['timestamp_quantization', ...more('FCM_OPT_DAWN_DISABLE')].join(',')}`,
  ];
}

/** Dawn's feature for WGSL `chromium_experimental_subgroup_matrix` (offered under allow_unsafe_apis). */
export const subgroupMatrixFeature = 'chromium-experimental-subgroup-matrix';

/** One entry of Dawn's adapter info `subgroupMatrixConfigs`. */
export interface SubgroupMatrixConfigLike { componentType: string; resultComponentType: string; M: number; N: number; K: number }

/** What subgroupMatrixSupport reads of an adapter's (or device's) info. */
export interface SubgroupMatrixInfoLike {
  subgroupMatrixConfigs?: readonly SubgroupMatrixConfigLike[];
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
}

/**
 * The subgroup matrices the f16 pointwise kernel can use, from a feature set and adapter info: the subgroup-matrix,
 * shader-f16 and subgroups features, an f16 -> f32 M16 N16 K16 configuration, and one subgroup size (the kernel's
 * workgroup is a fixed number of subgroups); n8 and f16Acc where f16 -> f32 M16 N8 K16 and f16 -> f16 M16 N16 K16 are
 * offered too (direct variants with 16 x 8 blocks or f16 accumulators). Undefined where anything is missing (lavapipe, other GPUs).
 */
export function subgroupMatrixSupport(features: { has(f: string): boolean }, info: SubgroupMatrixInfoLike): SubgroupMatrixSupport | undefined {
  if (![subgroupMatrixFeature, 'shader-f16', 'subgroups'].every((f) => features.has(f))) return undefined;
  const configs = Array.isArray(info.subgroupMatrixConfigs) ? info.subgroupMatrixConfigs : [];
  const has = (result: string, N: number) => configs.some((c) => c.componentType === 'f16' && c.resultComponentType === result && c.M === 16 && c.N === N && c.K === 16);
  if (!has('f32', 16)) return undefined;
  const s = info.subgroupMinSize;
  if (typeof s !== 'number' || !Number.isInteger(s) || s < 1 || s !== info.subgroupMaxSize) return undefined;
  return { subgroupSize: s, ...(has('f32', 8) ? { n8: true } : {}), ...(has('f16', 16) ? { f16Acc: true } : {}) };
}

/**
 * FCM_OPT_SUBGROUP_MATRIX=0 in the environment: the device is made without subgroup matrices and no session uses
 * them (for comparing with and without on one machine; the session option `subgroupMatrix: false` is the per-session
 * switch).
 */
export function subgroupMatrixOffByEnv(): boolean {
  return typeof process !== 'undefined' && process.env?.FCM_OPT_SUBGROUP_MATRIX === '0';
}

/**
 * FCM_OPT_SUBGROUP_MATRIX=direct: the f16 pointwise chooser takes the direct-load variants on the layers its rule
 * allows (kernels/pointwise-subgroup-matrix.ts SmxRule); =fcm: f16 DW-PW FCMs run their pointwise phase on subgroup
 * matrices (kernels/fused-dwpw-subgroup-matrix.ts); =direct,fcm both. Each off by default until measured on a GPU.
 */
function withDirectByEnv(s: SubgroupMatrixSupport | undefined): SubgroupMatrixSupport | undefined {
  const env = typeof process !== 'undefined' ? process.env : undefined;
  const on = new Set((env?.FCM_OPT_SUBGROUP_MATRIX ?? '').split(','));
  const staged = env?.FCM_OPT_SMX_STAGED ? stagedByEnv(env.FCM_OPT_SMX_STAGED) : undefined;
  const split = env?.FCM_OPT_SMX_SPLIT ? splitByEnv(env.FCM_OPT_SMX_SPLIT) : undefined;
  return s && (on.has('direct') || on.has('fcm') || staged || split)
    ? { ...s, ...(on.has('direct') ? { direct: true } : {}), ...(on.has('fcm') ? { fcm: true } : {}), ...(staged ? { staged } : {}), ...(split ? { split } : {}) } : s;
}

/**
 * FCM_OPT_SMX_SPLIT=KEY: the staged tiles with K-groups (smxTileKey of one of smxSplitVariants, e.g.
 * SG2x2T1x1BK64PK2) that the f16 pointwise rule takes for layers with few tiles and long channel loops
 * (SubgroupMatrixSupport.split). An unknown key is exit 2 listing the known ones.
 */
export function splitByEnv(v: string): SmxTiles {
  const t = smxSplitVariants.find((x) => smxTileKey(x) === v.trim());
  if (!t) throw invalid('FCM_OPT_SMX_SPLIT', `unknown tiles '${v}' (known: ${smxSplitVariants.map(smxTileKey).join(', ')})`);
  return t;
}

/**
 * FCM_OPT_SMX_STAGED=KEY or KEY,KEY: the staged tiles (smxTileKey of a staged variant of smxAllVariants, e.g.
 * SG2x2T1x1BK32PD) the f16 pointwise rule takes below 192 channels and from 192 on, in place of its own: for
 * timing other tiles across a whole pass. An unknown key is exit 2 listing the known ones.
 */
export function stagedByEnv(v: string): readonly [SmxTiles, SmxTiles] {
  const staged = smxAllVariants.filter((t): t is SmxTiles => t.kind !== 'direct');
  const keys = v.split(',').map((k) => k.trim());
  const tiles = keys.map((k) => staged.find((t) => smxTileKey(t) === k));
  const bad = keys.findIndex((k, i) => !tiles[i]);
  if (keys.length > 2 || bad >= 0) {
    throw invalid('FCM_OPT_SMX_STAGED', `${keys.length > 2 ? `takes one or two tile keys, got ${keys.length}` : `unknown tiles '${keys[bad]}'`} (known: ${[...new Set(staged.map(smxTileKey))].join(', ')})`);
  }
  return [tiles[0]!, tiles[tiles.length - 1]!];
}

export interface DeviceOptions {
  /** Adapter features not to request even where present (tests stand for an adapter without them). */
  withoutFeatures?: readonly GPUFeatureName[];
}

/** What a device offers the kernels and how Dawn runs it, in a few words (bench reports and results record it). */
export function describeDevice(ctx: GpuContext): string {
  const f = [
    ctx.shaderF16 ? 'shader-f16' : 'no shader-f16',
    ctx.subgroupMatrix ? `subgroup matrices (f16, subgroup size ${ctx.subgroupMatrix.subgroupSize})` : 'no subgroup matrices',
    ctx.timestamps ? 'timestamps' : 'no timestamps',
  ];
  if (ctx.validation) f.push(`validation ${ctx.validation}`);
  return f.join(', ');
}

/** Mesa's lavapipe / llvmpipe and SwiftShader: Vulkan on the CPU. */
export function softwareAdapter(info: { vendor?: string; architecture?: string; device?: string; description?: string }): boolean {
  return /llvmpipe|lavapipe|swiftshader/i.test([info.vendor, info.architecture, info.device, info.description].join(' '));
}

/**
 * Whether Dawn validates each WebGPU call ('full') or skips it ('skip', Dawn's `skip_validation` toggle, as
 * onnxruntime's WebGPU provider sets it). Validation costs the host 30-40% of the encode and submit time per dispatch
 * (H100, 2026-12-06: EfficientNet-B0 at batch 1, 1.07 -> 0.88 ms end to end), and fcm-opt's use of the API is fixed
 * and tested with validation on. So: skipped on hardware adapters, full on software ones (where the tests run, and
 * where a fault is turned into exit 5 by the error scopes); FCM_OPT_VALIDATION=full or skip overrides.
 */
export function validationMode(info: Parameters<typeof softwareAdapter>[0], env: Record<string, string | undefined> = globalThis.process?.env ?? {}): 'full' | 'skip' {
  const forced = env.FCM_OPT_VALIDATION;
  if (forced === 'full' || forced === 'skip') return forced;
  return softwareAdapter(info) ? 'full' : 'skip';
}

let gpu: GPU | undefined;
let fastGpu: GPU | undefined;
let current: Promise<GpuContext> | undefined;

async function requestAdapter(g: GPU): Promise<GPUAdapter> {
  let adapter: GPUAdapter | null;
  try {
    adapter = await withNativeStderrMuted(() => g.requestAdapter({ powerPreference: 'high-performance' }));
  } catch (e) {
    throw gpuFailure('WebGPU', `${noAdapterHelp} (${(e as Error).message})`);
  }
  if (!adapter) throw gpuFailure('WebGPU', noAdapterHelp);
  return adapter;
}

async function open(options: DeviceOptions = {}): Promise<GpuContext> {
  gpu ??= systemGpu(dawnFlags());
  let adapter = await requestAdapter(gpu);
  // Dawn's toggles are fixed when its instance is made: the adapter found, a second instance without validation.
  const validation = takesDawnFlags ? validationMode(adapter.info) : 'full';
  if (validation === 'skip') {
    fastGpu ??= systemGpu(dawnFlags(undefined, true));
    adapter = await requestAdapter(fastGpu);
  }
  const requiredLimits: Record<string, number> = {};
  for (const k of wantedLimits) {
    const v = (adapter.limits as unknown as Record<string, number>)[k];
    if (typeof v === 'number') requiredLimits[k] = v;
  }
  const requiredFeatures = (['timestamp-query', 'subgroups', 'shader-f16'] as GPUFeatureName[])
    .filter((f) => adapter!.features.has(f) && !options.withoutFeatures?.includes(f));
  // Requested only where the kernel can use it: on any other adapter the device is made exactly as before.
  const smx = subgroupMatrixFeature as GPUFeatureName;
  const f16Smx = subgroupMatrixSupport(adapter.features, adapter.info as SubgroupMatrixInfoLike) && requiredFeatures.includes('shader-f16');
  const int8Smx = int8SubgroupMatrixSupport(adapter.features, adapter.info as SubgroupMatrixInfoLike);
  if (!subgroupMatrixOffByEnv() && !options.withoutFeatures?.includes(smx) && (f16Smx || int8Smx) && requiredFeatures.includes('subgroups')) {
    requiredFeatures.push(smx);
  }
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: 'fcm-opt' });
  } catch (e) {
    throw gpuFailure('WebGPU', `cannot create a device on the adapter: ${(e as Error).message}`);
  }
  const ctx = contextFor(device, adapter.info, true);
  ctx.validation = validation;
  return ctx;
}

/** The context of a device: its limits, features and adapter description. `owned`: fcm-opt created it (and may
 *  destroy it); a caller's device is never destroyed. */
function contextFor(device: GPUDevice, info: Partial<GPUAdapterInfo>, owned: boolean): GpuContext {
  const l = device.limits;
  const ctx: GpuContext = {
    device,
    adapterInfo: {
      vendor: info.vendor ?? '', architecture: info.architecture ?? '', device: info.device ?? '', description: info.description ?? '',
      subgroupMinSize: (info as { subgroupMinSize?: number }).subgroupMinSize,
      subgroupMaxSize: (info as { subgroupMaxSize?: number }).subgroupMaxSize,
      ...(Array.isArray((info as SubgroupMatrixInfoLike).subgroupMatrixConfigs) && (info as SubgroupMatrixInfoLike).subgroupMatrixConfigs!.length
        ? { subgroupMatrixConfigs: (info as SubgroupMatrixInfoLike).subgroupMatrixConfigs!.map((c) => ({ componentType: c.componentType, resultComponentType: c.resultComponentType, M: c.M, N: c.N, K: c.K })) }
        : {}),
    },
    limits: l,
    kernelLimits: {
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    },
    timestamps: device.features.has('timestamp-query'),
    shaderF16: device.features.has('shader-f16'),
    subgroupMatrix: withDirectByEnv(subgroupMatrixSupport(device.features, info as SubgroupMatrixInfoLike)),
    pipelines: new Map(),
    owned,
  };
  void device.lost.then((i) => {
    ctx.lost = `${i.reason}: ${i.message}`;
    if (current) void current.then((c) => { if (c === ctx) current = undefined; }, () => undefined);
  });
  return ctx;
}

/**
 * Runs every later session on the caller's device (a browser page's, or one shared with other WebGPU code) instead
 * of one fcm-opt opens; fcm-opt never destroys it. The kernels use the limits and features the device was created
 * with (request 'timestamp-query' for profiles, 'subgroups' where the adapter has them). In Node the caller keeps the
 * `webgpu` package's instance referenced: Dawn for Node frees an instance's devices when it is collected.
 */
export function useDevice(device: GPUDevice, adapterInfo?: Partial<GPUAdapterInfo>): void {
  const info = adapterInfo ?? (device as { adapterInfo?: GPUAdapterInfo }).adapterInfo ?? {};
  current = Promise.resolve(contextFor(device, info, false));
}

/** The process's GPU device, created on first use. No adapter: FcmError gpu (exit 5) saying how to get one. */
export function acquireGpu(): Promise<GpuContext> {
  if (!current) {
    current = open();
    current.catch(() => { current = undefined; });
  }
  // A lost device is never handed out again, even before its lost handler has cleared `current`.
  const p = current;
  return p.then((c) => {
    if (!c.lost) return c;
    if (current === p) current = undefined;
    return acquireGpu();
  });
}

/**
 * A device of its own (not the process's shared one), e.g. without some adapter features; the caller destroys it
 * (`ctx.device.destroy()`).
 */
export function openGpu(options: DeviceOptions): Promise<GpuContext> {
  return open(options);
}

/** Destroys the shared device (tests' `after`, the CLI before exiting) so the process can exit. */
export async function releaseGpu(): Promise<void> {
  const c = current;
  current = undefined;
  if (!c) return;
  try {
    const ctx = await c;
    if (ctx.owned === false) return;
    ctx.lost ??= 'destroyed';
    ctx.device.destroy();
  } catch {
    // Nothing was created.
  }
}

/**
 * How run() cuts a run of dispatches into submitted command buffers when not told: a first part of
 * `defaultFirstSubmit` dispatches, then parts `defaultSubmitGrowth` times the one before (3, 9, 27, ...), uncapped
 * (`defaultSubmitEvery` 0). Dawn records a command buffer into Vulkan commands inside queue.submit (~1 us per
 * dispatch on an H100 host, and a fixed ~10 us a submit), while the GPU spends ~8 us per dispatch at batch 1: the
 * GPU starts after 3 dispatches are recorded and the next, larger part is recorded while it runs them. On an H100
 * (BENCHMARKS.md, "Submitting in parts") this beat parts of 12 and one submit on every model measured.
 * Given submitEvery alone, run() submits parts of that size (0: all in one).
 */
export const defaultSubmitEvery = 0;
export const defaultFirstSubmit = 3;
export const defaultSubmitGrowth = 3;

const dot4Probe = new WeakMap<GPUDevice, Promise<boolean>>();

/** Whether the device's WGSL accepts packed_4x8_integer_dot_product (the integer kernels' dot4I8Packed). */
export function probeDot4(d: GPUDevice): Promise<boolean> {
  let p = dot4Probe.get(d);
  if (!p) {
    p = (async () => {
      d.pushErrorScope('validation');
      const m = d.createShaderModule({ code: 'requires packed_4x8_integer_dot_product;\n@compute @workgroup_size(1) fn main() { _ = dot4I8Packed(1u, 1u); }' });
      const info = await m.getCompilationInfo();
      const err = await d.popErrorScope();
      return !err && !info.messages.some((x) => x.type === 'error');
    })();
    dot4Probe.set(d, p);
  }
  return p;
}
