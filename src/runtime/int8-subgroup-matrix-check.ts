// A check, once per device, that the integer pointwise kernel on subgroup matrices
// (kernels/int8/pointwise-subgroup-matrix.ts) compiles and computes on this device, bit for bit against TFLite's
// arithmetic (src/quant/reference.ts conv): the tile variants the chooser picks (or all) that fit, on small layers with rows of whole words
// and not, edges in F, M and C, for each 8-bit type the device offers (uint8 with a weight zero point: the column
// sums). The feature is experimental (Dawn offers it under allow_unsafe_apis) and drivers differ: where anything
// fails, int8 sessions keep the word kernel and one warning says why, instead of a session that computes wrong values.

import type { GpuContext } from './device.js';
import { GpuObjects, encodeDispatches, scoped } from './gpu.js';
import { type Int8SmxSupport, int8PointwiseSubgroupMatrix, int8SmxChosenVariants, int8SmxFits, int8SmxTileVariants, int8SubgroupMatrixSupport } from '../../kernels/int8/pointwise-subgroup-matrix.js';
import { type Int8KernelArgs, pack8 } from '../../kernels/int8/common.js';
import { newAttrs, type Tensor } from '../graph/ir.js';
import { type QArray, type QType, activationRange, conv } from '../quant/reference.js';

const checks = new WeakMap<GpuContext, Promise<boolean>>();

export interface Int8CheckOptions {
  /** Called once with the reason when the check fails (default: a warning on stderr). */
  onFailure?: (why: string) => void;
  /** The kernel's emulated form on `support` (plain WGSL), so that the check itself is tested without subgroup matrices. */
  emulate?: Int8SmxSupport;
  /** How long to wait for each program's result (default 20 s). */
  timeoutMs?: number;
  /** Every tile variant (bench/int8-subgroup-matrix.ts), not only those the chooser picks (sessions: fewer pipelines to compile first). */
  allVariants?: boolean;
}

/** The integer subgroup matrices of a context's device (its features and adapter info). */
export const int8SubgroupMatrixOf = (ctx: GpuContext) => int8SubgroupMatrixSupport(ctx.device.features, ctx.adapterInfo);

/** Whether the integer subgroup-matrix kernel passed its check on this device (run on first call, then cached). */
export function checkInt8SubgroupMatrix(ctx: GpuContext, opts: Int8CheckOptions = {}): Promise<boolean> {
  const onFailure = opts.onFailure ?? ((why: string) => console.warn(`fcm-opt: warning: ${why}`));
  let p = opts.emulate ? undefined : checks.get(ctx);
  if (!p) {
    p = run(ctx, opts.emulate, opts.timeoutMs ?? 20_000, !!opts.allVariants).then((why) => {
      if (why) onFailure(`the integer pointwise kernel on subgroup matrices failed its check on this device (${why}); int8 sessions use the word kernel`);
      return !why;
    });
    if (!opts.emulate && !opts.allVariants) checks.set(ctx, p);
  }
  return p;
}

interface Layer { t: QType; N: number; C: number; F: number; H: number; W: number }

// Rows of whole words (6x6) and not (7x7, tiles spanning two images); C not a multiple of the step, F of the tile.
const layers: Layer[] = [
  { t: 'int8', N: 2, C: 40, F: 36, H: 6, W: 6 },
  { t: 'int8', N: 2, C: 13 + 32, F: 21, H: 7, W: 7 },
  { t: 'uint8', N: 2, C: 40, F: 36, H: 6, W: 6 },
  { t: 'uint8', N: 1, C: 45, F: 20, H: 5, W: 5 },
];

/** 8-bit values from a fixed pattern covering the type's range. */
function pattern(t: QType, n: number, k: number): QArray {
  const a = t === 'int8' ? new Int8Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) a[i] = (((i + k) * 73 + k * 11) % 255) - (t === 'int8' ? 127 : 0);
  return a;
}

function layerArgs(L: Layer, limits: Int8KernelArgs['limits']): { args: Int8KernelArgs; want: QArray } {
  const [zx, zo, zw] = L.t === 'int8' ? [-11, 5, 0] : [131, 119, 126];
  const x: Tensor = { name: 'x', dtype: L.t, shape: [L.N, L.C, L.H, L.W], quant: { scale: [0.05], zeroPoint: [zx] }, data: pattern(L.t, L.N * L.C * L.H * L.W, 1) };
  const wd = pattern(L.t, L.F * L.C, 2);
  if (L.t === 'int8') for (let i = 0; i < wd.length; i++) if (wd[i] === -128) wd[i] = -127;
  const scales = L.t === 'int8' ? Array.from({ length: L.F }, (_, f) => 0.004 + 0.0007 * (f % 9)) : [0.006];
  const w: Tensor = { name: 'w', dtype: L.t, shape: [L.F, L.C, 1, 1], quant: { scale: scales, zeroPoint: scales.map(() => zw), ...(scales.length > 1 ? { axis: 0 } : {}) }, data: wd };
  const bias = Int32Array.from({ length: L.F }, (_, f) => ((f * 7919) % 60001) - 30000);
  const b: Tensor = { name: 'b', dtype: 'int32', shape: [L.F], data: bias };
  const y: Tensor = { name: 'y', dtype: L.t, shape: [L.N, L.F, L.H, L.W], quant: { scale: [0.2], zeroPoint: [zo] } };
  const node = { name: 'int8 subgroup-matrix check', op: 'Conv', domain: '', inputs: ['x', 'w', 'b'], outputs: ['y'], attrs: newAttrs({ kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, activation: 'Clip', activationParams: [0, 6] }) };
  const want = conv({
    type: L.t, x: x.data as QArray, xShape: x.shape, xq: { scale: 0.05, zeroPoint: zx }, w: wd, wShape: w.shape, wScales: scales, wZeroPoint: zw, bias,
    yShape: y.shape, yq: { scale: 0.2, zeroPoint: zo }, strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, act: activationRange('RELU6', { scale: 0.2, zeroPoint: zo }, L.t),
  });
  return { args: { node, inputs: [x, w, b], outputs: [y], limits, dot4: false }, want };
}

/** Undefined when every program matches the reference, else what went wrong. */
async function run(ctx: GpuContext, emulate: Int8SmxSupport | undefined, timeoutMs: number, allVariants: boolean): Promise<string | undefined> {
  const support = emulate ?? int8SubgroupMatrixOf(ctx);
  if (!support) return 'the device has no integer subgroup matrices';
  const gpu = new GpuObjects(ctx);
  const G = GPUBufferUsage;
  try {
    for (const L of layers) {
      const nb = support.n[L.t];
      if (!nb) continue;
      const { args, want } = layerArgs(L, ctx.kernelLimits);
      const xw = pack8(args.inputs[0]!.data as QArray);
      const x = gpu.buffer(xw.byteLength, G.STORAGE, 'check x', xw);
      const bytes = 4 * Math.ceil(want.length / 4);
      for (const t of (allVariants ? int8SmxTileVariants(nb) : int8SmxChosenVariants(nb)).filter((v) => int8SmxFits(v, support.subgroupSize, ctx.kernelLimits, L.t === 'uint8', !!emulate))) {
        const program = int8PointwiseSubgroupMatrix(args, t, support.subgroupSize, !!emulate);
        const consts = program.constants.map((c) => gpu.buffer(c.data.byteLength, G.STORAGE, `check ${c.name}`, c.data));
        const out = gpu.buffer(bytes, G.STORAGE | G.COPY_SRC, 'check out', new Uint32Array(bytes / 4).fill(0xa5a5a5a5));
        const read = gpu.buffer(bytes, G.MAP_READ | G.COPY_DST, 'check read');
        await scoped(ctx, `int8 subgroup-matrix check ${program.cacheKey}`, async () => {
          const pipeline = gpu.pipeline(program, 'check:');
          const bindGroup = gpu.bindGroup(pipeline, [x, ...consts, out], 'check');
          const enc = gpu.encoder();
          const pass = enc.beginComputePass();
          encodeDispatches(pass, [{ pipeline, bindGroup, size: program.dispatch }]);
          pass.end();
          enc.copyBufferToBuffer(out, 0, read, 0, bytes);
          ctx.device.queue.submit([enc.finish()]);
        });
        await withTimeout(read.mapAsync(GPUMapMode.READ), timeoutMs);
        const got = new Uint8Array(read.getMappedRange().slice(0, want.length));
        read.unmap();
        const ref = new Uint8Array(want.buffer, want.byteOffset, want.length);
        for (let i = 0; i < ref.length; i++) {
          if (got[i] !== ref[i]) return `${program.cacheKey}: output ${i} is byte ${got[i]}, expected ${ref[i]}`;
        }
      }
    }
    return undefined;
  } catch (e) {
    return (e as Error).message.split('\n')[0];
  } finally {
    gpu.destroy();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer from the GPU after ${ms / 1000} s`)), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
