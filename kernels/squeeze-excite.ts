// SqueezeExcite, an op of the executor's graph (src/rewrite/squeeze-excite.ts makes it; src/graph/ir.ts): inputs
// [x [N, C, H, W], w1 [R, C, 1, 1], b1 [R] | '', w2 [F, R, 1, 1], b2 [F] | ''], output [N, F, 1, 1]:
//   p = mean over H, W of x;  h = act1(w1 p + b1);  out = act2(w2 h + b2)
// (H = W = 1: x is the pooled vector itself). One workgroup per image, three phases through workgroup memory, each a
// set of row sums: a group of G lanes sums a row with a stride of G (coalesced loads of x and of the weight rows), four
// independent loads in flight per lane, then one lane adds the G partial sums. G grows with the row length so that
// short rows do not leave lanes idle. One workgroup reads the whole map and both weight matrices, so its speed is the
// loads one SM keeps in flight: as many invocations as the device allows (up to 1024) and the four-way unrolled loop.

import type { KernelArgs, KernelProgram } from './program.js';
import { invalid, overLimit } from '../src/errors.js';
import { bindings, cacheKey, hasInput, inShape, nodeEpilogue, outShape, u32, where } from './shader.js';

/** Invocations per workgroup: the most the device allows, up to squeezeExciteMaxThreads. */
export const squeezeExciteMaxThreads = 1024;

/** Lanes per row for rows of K elements: a power of two, at most 32, about K / 8 elements each. */
export function lanesPerRow(K: number): number {
  let G = 1;
  while (G < 32 && G * 2 * 8 <= K) G *= 2;
  return G;
}

/**
 * WGSL summing `rows` rows of K elements with T invocations: `load(r, k)` the element, `store(r, sum)` the use of the
 * row's sum. Two barriers per batch of T / G rows; the loop bounds are constants, so the barriers are in uniform
 * control flow.
 */
function rowSums(T: number, rows: number, K: number, load: (r: string, k: string) => string, store: (r: string, s: string) => string): string {
  const G = lanesPerRow(K);
  const per = T / G;
  return `
  for (var r0 = 0u; r0 < ${u32(rows)}; r0 += ${u32(per)}) {
    let r = r0 + t / ${u32(G)};
    let lane = t % ${u32(G)};
    var s0 = 0.0; var s1 = 0.0; var s2 = 0.0; var s3 = 0.0;
    if (r < ${u32(rows)}) {
      var k = lane;
      for (; k + ${u32(3 * G)} < ${u32(K)}; k += ${u32(4 * G)}) {
        s0 += ${load('r', 'k')};
        s1 += ${load('r', `(k + ${u32(G)})`)};
        s2 += ${load('r', `(k + ${u32(2 * G)})`)};
        s3 += ${load('r', `(k + ${u32(3 * G)})`)};
      }
      for (; k < ${u32(K)}; k += ${u32(G)}) { s0 += ${load('r', 'k')}; }
    }
    part[t] = (s0 + s1) + (s2 + s3);
    workgroupBarrier();
    if (lane == 0u && r < ${u32(rows)}) {
      var a = 0.0;
      for (var l = 0u; l < ${u32(G)}; l++) { a += part[t + l]; }
      ${store('r', 'a')}
    }
    workgroupBarrier();
  }`;
}

export function squeezeExcite(args: KernelArgs): KernelProgram {
  const w = where(args);
  const [N, C, H, W] = inShape(args, 0, 'input', 4);
  const w1 = inShape(args, 1, 'weights 1', 4), w2 = inShape(args, 3, 'weights 2', 4);
  const R = w1[0], F = w2[0];
  if (w1[1] !== C || w1[2] !== 1 || w1[3] !== 1) throw invalid(w, `weights 1 must be [R,${C},1,1], got [${w1.join(',')}]`);
  if (w2[1] !== R || w2[2] !== 1 || w2[3] !== 1) throw invalid(w, `weights 2 must be [F,${R},1,1], got [${w2.join(',')}]`);
  const hasB1 = hasInput(args, 2), hasB2 = hasInput(args, 4);
  if (hasB1 && inShape(args, 2, 'bias 1').join(',') !== String(R)) throw invalid(w, `bias 1 must be [${R}]`);
  if (hasB2 && inShape(args, 4, 'bias 2').join(',') !== String(F)) throw invalid(w, `bias 2 must be [${F}]`);
  const o = outShape(args);
  if (o.join(',') !== [N, F, 1, 1].join(',')) throw invalid(w, `output must be [${N},${F},1,1], got [${o.join(',')}]`);
  const cap = Math.min(squeezeExciteMaxThreads, args.limits.maxComputeInvocationsPerWorkgroup, args.limits.maxComputeWorkgroupSizeX ?? 256);
  // A power of two, so that every batch of rows is whole (G, at most 32, divides it).
  const T = 2 ** Math.floor(Math.log2(cap));
  if (T < 32) throw overLimit(w, `needs 32 invocations per workgroup, the device allows ${cap}`);
  const storage = (C + R + T) * 4;
  if (storage > args.limits.maxComputeWorkgroupStorageSize) throw overLimit(w, `needs ${storage} bytes of workgroup memory (${C} + ${R} channels)`);
  if (N > (args.limits.maxComputeWorkgroupsPerDimension ?? 65535)) throw overLimit(w, `batch ${N} is over the workgroups per dimension`);
  const act1 = nodeEpilogue(args.node.attrs, w, '1', 'act1'), act2 = nodeEpilogue(args.node.attrs, w, '2', 'act2');
  const HW = H * W;
  const names = ['x', 'w1', ...(hasB1 ? ['b1'] : []), 'w2', ...(hasB2 ? ['b2'] : [])];
  const wgsl = `
${bindings(names, ['y'])}
${act1.fn}
${act2.fn}
var<workgroup> pooled: array<f32, ${C}>;
var<workgroup> hidden: array<f32, ${R}>;
var<workgroup> part: array<f32, ${T}>;

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let n = wid.x;
  ${rowSums(T, C, HW, (r, k) => `x[(n * ${u32(C)} + ${r}) * ${u32(HW)} + ${k}]`, (r, s) => `pooled[${r}] = ${s} / ${HW}.0;`)}
  ${rowSums(T, R, C, (r, k) => `w1[${r} * ${u32(C)} + ${k}] * pooled[${k}]`, (r, s) => `hidden[${r}] = act1(${s}${hasB1 ? ` + b1[${r}]` : ''});`)}
  ${rowSums(T, F, R, (r, k) => `w2[${r} * ${u32(R)} + ${k}] * hidden[${k}]`, (r, s) => `y[n * ${u32(F)} + ${r}] = act2(${s}${hasB2 ? ` + b2[${r}]` : ''});`)}
}
`;
  return {
    name: HW > 1 ? 'SqueezeExcite(pool)' : 'SqueezeExcite',
    cacheKey: cacheKey('squeezeExcite', N, C, HW, R, F, hasB1, hasB2, act1.key, act2.key, T),
    wgsl,
    workgroupSize: [T, 1, 1],
    dispatch: [N, 1, 1],
    inputs: hasB1 ? (hasB2 ? [0, 1, 2, 3, 4] : [0, 1, 2, 3]) : hasB2 ? [0, 1, 3, 4] : [0, 1, 3],
    outputs: 1,
    workgroupStorageBytes: storage,
  };
}
