/// <reference types="@webgpu/types" preserve="true" />
// The one place that makes GPU objects for inference: buffers, compute pipelines (compiled once per device and
// cached by the program's cache key), bind groups, command encoders and timestamp query sets, each counted for a
// session's stats and destroyed with it. Also the error scopes that turn WebGPU's validation, out-of-memory and
// internal errors, and device loss, into FcmError gpu (exit 5): a skipped dispatch would otherwise read back as
// silent zeros.

import { FcmError, gpuFailure } from '../errors.js';
import type { KernelProgram } from '../../kernels/program.js';
import { type GpuContext, softwareAdapter } from './device.js';
import { reportProgress } from '../progress.js';

/** One dispatch as encoded: a pipeline, its bind group and its workgroup counts. */
export interface Dispatch {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  size: readonly [number, number, number];
}

export interface GpuCounters { pipelinesCreated: number; buffersCreated: number; bindGroupsCreated: number }

/** A whole buffer, or `size` bytes of one from `offset` (default 0). */
export type Binding = GPUBuffer | { buffer: GPUBuffer; size: number; offset?: number };

export class GpuObjects {
  readonly counters: GpuCounters = { pipelinesCreated: 0, buffersCreated: 0, bindGroupsCreated: 0 };
  /** Buffers to destroy with the session, in creation order. */
  readonly owned: GPUBuffer[] = [];
  private readonly querySets: GPUQuerySet[] = [];

  constructor(readonly ctx: GpuContext) {}

  /** A buffer of at least `size` bytes (a multiple of 4, at least 4), optionally filled at creation. */
  buffer(size: number, usage: number, label: string, data?: ArrayBufferView): GPUBuffer {
    const b = this.ctx.device.createBuffer({ size: Math.max(4, Math.ceil(size / 4) * 4), usage, label, mappedAtCreation: !!data });
    if (data) {
      new Uint8Array(b.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      b.unmap();
    }
    this.counters.buffersCreated++;
    this.owned.push(b);
    return b;
  }

  /** A buffer made elsewhere (mapped staging buffers) to count and destroy with the session. */
  adopt(b: GPUBuffer): GPUBuffer {
    this.counters.buffersCreated++;
    this.owned.push(b);
    return b;
  }

  /**
   * The compute pipeline of a program, from the device-wide cache (key: `keyPrefix` + the program's cacheKey, which
   * names everything baked into its WGSL) or compiled now. Programs bind storage buffers only.
   */
  pipeline(p: KernelProgram, keyPrefix = ''): GPUComputePipeline {
    if ((p as { uniforms?: readonly unknown[] }).uniforms?.length) throw new Error(`internal: ${p.name} uses uniforms, which the executor does not bind`);
    const key = keyPrefix + p.cacheKey;
    let pipeline = this.ctx.pipelines.get(key);
    if (!pipeline) {
      const d = this.ctx.device;
      const module = d.createShaderModule({ code: p.wgsl, label: p.name });
      // Synchronous here (precompile() is the parallel path): createComputePipelineAsync crashes Dawn on lavapipe.
      pipeline = d.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: p.name });
      this.ctx.pipelines.set(key, pipeline);
      this.counters.pipelinesCreated++;
      reportProgress('compiling GPU pipelines', this.ctx.pipelines.size);
    }
    return pipeline;
  }

  /**
   * Compiles the pipelines of `programs` that the device-wide cache lacks, all at once with
   * createComputePipelineAsync, so that a driver compiling on several threads does so in parallel; pipeline() then
   * finds them cached. Not on software adapters (asyncCompile): Dawn crashes there on some shaders.
   */
  async precompile(programs: readonly KernelProgram[], keyPrefix = ''): Promise<void> {
    if (!asyncCompile(this.ctx)) return;
    const d = this.ctx.device;
    const todo = new Map<string, KernelProgram>();
    for (const p of programs) {
      const key = keyPrefix + p.cacheKey;
      if (!this.ctx.pipelines.has(key) && !todo.has(key)) todo.set(key, p);
    }
    let done = 0;
    await Promise.all([...todo].map(async ([key, p]) => {
      const module = d.createShaderModule({ code: p.wgsl, label: p.name });
      const pipeline = await d.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: p.name });
      this.ctx.pipelines.set(key, pipeline);
      this.counters.pipelinesCreated++;
      reportProgress('compiling GPU pipelines', this.ctx.pipelines.size - todo.size + ++done);
    }));
  }

  /** A bind group of group 0 binding `buffers` in order. */
  bindGroup(pipeline: GPUComputePipeline, buffers: readonly Binding[], label: string): GPUBindGroup {
    const entries = buffers.map((b, binding) => ({ binding, resource: 'buffer' in b ? { buffer: b.buffer, offset: b.offset ?? 0, size: b.size } : { buffer: b } }));
    const g = this.ctx.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries, label });
    this.counters.bindGroupsCreated++;
    return g;
  }

  encoder(): GPUCommandEncoder {
    return this.ctx.device.createCommandEncoder();
  }

  /** A timestamp query set of `count` queries, destroyed with the session (or by release()). */
  querySet(count: number): GPUQuerySet {
    const q = this.ctx.device.createQuerySet({ type: 'timestamp', count });
    this.querySets.push(q);
    return q;
  }

  release(q: GPUQuerySet): void {
    q.destroy();
    const i = this.querySets.indexOf(q);
    if (i >= 0) this.querySets.splice(i, 1);
  }

  destroy(): void {
    for (const b of this.owned) b.destroy();
    for (const q of this.querySets) q.destroy();
    this.owned.length = 0;
    this.querySets.length = 0;
  }
}

/**
 * Whether pipelines are compiled with createComputePipelineAsync, all at once: on hardware adapters; not on software
 * Vulkan (lavapipe, SwiftShader), where Dawn crashes on some shaders compiled that way. FCM_OPT_ASYNC_COMPILE=0 or 1
 * overrides (for measuring one against the other).
 */
export function asyncCompile(ctx: Pick<GpuContext, 'adapterInfo'>, env: Record<string, string | undefined> = globalThis.process?.env ?? {}): boolean {
  const forced = env.FCM_OPT_ASYNC_COMPILE;
  if (forced === '0' || forced === '1') return forced === '1';
  return !softwareAdapter(ctx.adapterInfo);
}

/** Encodes `list` into `pass`, `repeat` times; setPipeline only when the pipeline changes. */
export function encodeDispatches(pass: GPUComputePassEncoder, list: readonly Dispatch[], repeat = 1): void {
  let last: GPUComputePipeline | undefined;
  for (let r = 0; r < repeat; r++) {
    for (const x of list) {
      if (x.pipeline !== last) pass.setPipeline(x.pipeline);
      last = x.pipeline;
      pass.setBindGroup(0, x.bindGroup);
      pass.dispatchWorkgroups(x.size[0], x.size[1], x.size[2]);
    }
  }
}

/** Wall time (ms) of one dispatch in its own submission, for adapters without timestamp queries (profiling). */
export async function wallTimeDispatch(gpu: GpuObjects, x: Dispatch): Promise<number> {
  const t0 = performance.now();
  const enc = gpu.encoder();
  const pass = enc.beginComputePass();
  encodeDispatches(pass, [x]);
  pass.end();
  gpu.ctx.device.queue.submit([enc.finish()]);
  await gpu.ctx.device.queue.onSubmittedWorkDone();
  return performance.now() - t0;
}

export function checkLost(ctx: GpuContext, what: string): void {
  if (ctx.lost) throw gpuFailure('WebGPU', `${what}: the device was lost (${ctx.lost})`);
}

/** Pushes the three error scopes; the returned function pops them together (one round trip), innermost first. */
export function pushScopes(ctx: GpuContext): () => Promise<(GPUError | null)[]> {
  const d = ctx.device;
  d.pushErrorScope('internal');
  d.pushErrorScope('out-of-memory');
  d.pushErrorScope('validation');
  return () => Promise.all([d.popErrorScope(), d.popErrorScope(), d.popErrorScope()]);
}

/** `f` inside error scopes: its result, or the FcmError its scopes or exception call for. */
export async function scoped<T>(ctx: GpuContext, what: string, f: () => T | Promise<T>): Promise<T> {
  checkLost(ctx, what);
  const pop = pushScopes(ctx);
  let r: T | undefined;
  let thrown: unknown;
  try {
    r = await f();
  } catch (e) {
    thrown = e;
  }
  return settle(ctx, what, await pop(), r, thrown);
}

/** The result of a scoped GPU operation, or the FcmError its error scopes or exception call for. */
export function settle<T>(ctx: GpuContext, what: string, scopes: (GPUError | null)[], r: T | undefined, thrown: unknown): T {
  const errs = scopes.filter((e) => e);
  checkLost(ctx, what);
  if (errs.length) {
    const kind = errs[0] instanceof GPUOutOfMemoryError ? 'out of memory' : errs[0] instanceof GPUValidationError ? 'validation error' : 'internal error';
    throw gpuFailure('WebGPU', `${what}: ${kind}: ${errs[0]!.message.trim().split('\n')[0]}`);
  }
  if (thrown !== undefined) {
    if (thrown instanceof FcmError) throw thrown;
    // fcm-opt's own broken invariant is a bug (exit 70, which the fuzzer reports), not a GPU failure.
    if (thrown instanceof Error && thrown.message.startsWith('internal:')) throw thrown;
    throw gpuFailure('WebGPU', `${what}: ${(thrown as Error).message ?? String(thrown)}`);
  }
  return r as T;
}
