// A check, once per device, that the f16 pointwise kernel on subgroup matrices (kernels/pointwise-subgroup-matrix.ts)
// compiles and computes on this device: every staged tile variant the device fits and, where the device's chooser rule
// takes direct-load variants (SubgroupMatrixSupport.direct), those it may pick (smxChosenDirectVariants), on small layers (aligned and ragged: the vec4 and scalar paths, edges in
// F, M and C; for the direct variants layers with rows aligned for direct loads, a channel tail and clamped blocks),
// against a float64 reference. The feature is experimental (Dawn
// offers it under allow_unsafe_apis) and drivers differ: where anything fails, fp16 sessions keep the other f16
// kernels and one warning says why, instead of a session that fails or computes wrong values.

import type { GpuContext } from './device.js';
import { GpuObjects, encodeDispatches, scoped } from './gpu.js';
import { fromHalf, roundHalf, toHalf } from './half.js';
import {
  type SmxVariant, pointwiseSubgroupMatrix, smxChosenDirectVariants, smxDirectAligned, smxDirectApplies, smxEmulationStorage, smxFits, smxPaddedVariants, smxStorage,
} from '../../kernels/pointwise-subgroup-matrix.js';
import type { DotGeom } from '../../kernels/pointwise.js';
import { nodeEpilogue } from '../../kernels/shader.js';

const checks = new WeakMap<GpuContext, Promise<boolean>>();

export interface CheckOptions {
  /** Called once with the reason when the check fails (default: a warning on stderr). */
  onFailure?: (why: string) => void;
  /** The kernel's emulated form (plain WGSL), so that the check itself is tested on devices without subgroup matrices. */
  emulate?: boolean;
  /** How long to wait for each program's result (default 20 s; a software device under load needs more). */
  timeoutMs?: number;
}

/** Whether the subgroup-matrix pointwise kernel passed its check on this device (run on first call, then cached). */
export function checkSubgroupMatrix(ctx: GpuContext, opts: CheckOptions = {}): Promise<boolean> {
  const onFailure = opts.onFailure ?? ((why: string) => console.warn(`fcm-opt: warning: ${why}`));
  let p = checks.get(ctx);
  if (!p) {
    p = run(ctx, !!opts.emulate, opts.timeoutMs ?? 20_000).then((why) => {
      if (why) onFailure(`the pointwise kernel on subgroup matrices failed its check on this device (${why}); fp16 sessions use the other f16 kernels`);
      return !why;
    });
    checks.set(ctx, p);
  }
  return p;
}

interface Layer { g: DotGeom; act: (v: number) => number }

const relu6 = { act: nodeEpilogue({ activation: 'Clip', activationParams: [0, 6] }, 'check'), f: (v: number) => Math.min(Math.max(v, 0), 6) };
const none = { act: nodeEpilogue({}, 'check'), f: (v: number) => v };
// 36 positions (vec4 path) with bias, ReLU6 and residual; 49 positions and 13 channels (scalar path, edges in every
// dimension) with bias only; for the direct variants (rows of 8 f16), 40 positions and channels (a channel tail,
// clamped blocks in F and P) with bias, ReLU6 and residual, and 48 channels (no tail) on 64 positions of 20 filters.
const layers: Layer[] = [
  { g: { N: 2, C: 40, F: 36, P: 36, hasBias: true, hasRes: true, act: relu6.act }, act: relu6.f },
  { g: { N: 2, C: 13, F: 21, P: 49, hasBias: true, hasRes: false, act: none.act }, act: none.f },
  { g: { N: 2, C: 40, F: 36, P: 40, hasBias: true, hasRes: true, act: relu6.act }, act: relu6.f },
  { g: { N: 2, C: 48, F: 20, P: 64, hasBias: true, hasRes: false, act: none.act }, act: none.f },
];

/** Small values exact in f16, from a fixed pattern. */
const pattern = (n: number, k: number, scale: number) => Float32Array.from({ length: n }, (_, i) => roundHalf(((((i + k) * 37) % 17) - 8) * scale));

/** Undefined when every program matches the reference, else what went wrong. */
async function run(ctx: GpuContext, emulate: boolean, timeoutMs: number): Promise<string | undefined> {
  const support = ctx.subgroupMatrix;
  if (!support) return 'the device has no subgroup matrices';
  const gpu = new GpuObjects(ctx);
  const G = GPUBufferUsage;
  try {
    for (const { g, act } of layers) {
      const x = pattern(g.N * g.C * g.P, 1, 1 / 8), w = pattern(g.F * g.C, 2, 1 / 16), b = pattern(g.F, 3, 1 / 4), res = pattern(g.N * g.F * g.P, 4, 1 / 8);
      const names = ['x', 'w', 'b', ...(g.hasRes ? ['res'] : [])];
      const data = [x, w, b, ...(g.hasRes ? [res] : [])];
      const outN = g.N * g.F * g.P;
      const ref = new Float64Array(outN);
      for (let n = 0; n < g.N; n++) {
        for (let f = 0; f < g.F; f++) {
          for (let p = 0; p < g.P; p++) {
            let s = b[f];
            for (let c = 0; c < g.C; c++) s += w[f * g.C + c] * x[(n * g.C + c) * g.P + p];
            const o = (n * g.F + f) * g.P + p;
            ref[o] = act(s) + (g.hasRes ? res[o] : 0);
          }
        }
      }
      const inputs = data.map((d, i) => gpu.buffer(Math.ceil(d.length / 8) * 16, G.STORAGE, `check ${names[i]}`, padded(toHalf(d))));
      const bytes = Math.ceil(outN / 8) * 16;
      // The emulated staged form needs 4 BF BP more bytes of workgroup memory.
      const fits = (v: SmxVariant) => smxFits(v, support, ctx.kernelLimits, g.C)
        && (!emulate || smxStorage(v, g.C) + smxEmulationStorage(v) <= ctx.kernelLimits.maxComputeWorkgroupStorageSize);
      // Direct variants only where the device's rule may pick them (SubgroupMatrixSupport.direct): a failure of theirs
      // leaves the staged kernel in use elsewhere.
      const direct = support.direct ? smxChosenDirectVariants().filter((v) => smxDirectAligned(g, v) && smxDirectApplies(g, v)) : [];
      const staged = [...smxPaddedVariants, ...[...(support.staged ?? []), ...(support.split ? [support.split] : [])].filter((v) => !smxPaddedVariants.includes(v))];
      for (const t of [...staged, ...direct].filter(fits)) {
        const program = pointwiseSubgroupMatrix(g, t, support, names, names.map((_, i) => i), ctx.kernelLimits, 'subgroup-matrix check', 'Conv(pw smx)', emulate);
        const out = gpu.buffer(bytes, G.STORAGE | G.COPY_SRC, 'check out', new Uint16Array(bytes / 2).fill(0x7e00));
        const read = gpu.buffer(bytes, G.MAP_READ | G.COPY_DST, 'check read');
        await scoped(ctx, `subgroup-matrix check ${program.cacheKey}`, async () => {
          const pipeline = gpu.pipeline(program, 'check:');
          const bindGroup = gpu.bindGroup(pipeline, [...inputs, out], 'check');
          const enc = gpu.encoder();
          const pass = enc.beginComputePass();
          encodeDispatches(pass, [{ pipeline, bindGroup, size: program.dispatch }]);
          pass.end();
          enc.copyBufferToBuffer(out, 0, read, 0, bytes);
          ctx.device.queue.submit([enc.finish()]);
        });
        await withTimeout(read.mapAsync(GPUMapMode.READ), timeoutMs);
        const got = fromHalf(new Uint16Array(read.getMappedRange().slice(0, 2 * outN)));
        read.unmap();
        let maxRef = 0;
        for (const v of ref) maxRef = Math.max(maxRef, Math.abs(v));
        for (let i = 0; i < outN; i++) {
          // Sums of f16 products in f32, rounded to f16 once (half an ulp), and f32 order effects (2^-12 of the largest).
          if (!(Math.abs(got[i] - ref[i]) <= 2 ** -10 * Math.abs(ref[i]) + 2 ** -12 * maxRef)) {
            return `${program.cacheKey}: output ${i} is ${got[i]}, expected ${ref[i]}`;
          }
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

/** Whole 16-byte rows: vec4<f16> bindings read 8 bytes at a time. */
function padded(h: Uint16Array): Uint16Array {
  const out = new Uint16Array(Math.ceil(h.length / 8) * 8);
  out.set(h);
  return out;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer from the GPU after ${ms / 1000} s`)), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
