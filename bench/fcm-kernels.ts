// FCM kernel benchmark: each fused kernel (PW-DW, DW-PW, PW-PW) against its two layer-by-layer kernels, on
// MobileNetV2-like module shapes at 224x224 input resolution, for issue 8's "each fused module faster than its
// two LBL kernels" target.
//
// Run: npm run build && node dist/bench/fcm-kernels.js [--batch 8] [--iters 50] [--json] [--only pwdw|dwpw|pwpw]
//      [--tiles '{"tileH":2,"tileW":2}'] (merged into every module's tiles, for tuning by hand)
// On the H100: see DEVELOPERS.md (pack, carry [".gpu", "dist"], `source .gpu/enter.sh && node dist/bench/fcm-kernels.js`).
//
// GPU time comes from timestamp queries around one compute pass holding `iters` repetitions (the same dispatch
// sequence each time: for LBL both layers with the intermediate in a global buffer), divided by `iters`; without
// the timestamp-query feature, wall time of submit to onSubmittedWorkDone over the same pass. Median of 5 passes.
//
// The LBL kernels are the executor's (kernels/depthwise.ts, kernels/pointwise.ts), loaded when present and called
// with the same argument shape as the fused kernels ({ node, inputShapes, outputShape, limits }, node a Conv with
// the IR's normalized attributes); when they are absent or refuse the call, the LBL column says why.

import { pathToFileURL } from 'node:url';
import { newAttrs, type Node } from '../src/graph/ir.js';
import type { KernelProgram } from '../kernels/program.js';
import type { FusedKernelArgs, KernelLimits } from '../kernels/fused-common.js';
import { buildCase, type Built, type FusedCase, type FusedKind } from '../test/kernels/fused-check.js';
import { closeDevice, getDevice, limitsOf, prepare, release, type Prepared } from '../test/kernels/fused-harness.js';

interface ModuleShape { label: string; c: FusedCase }

/** Representative modules of MobileNetV2 (inverted residual blocks), tiles as the planner would give. */
export function moduleShapes(batch: number): ModuleShape[] {
  const relu6 = { act1: 'Clip', params1: [0, 6] };
  const m = (label: string, c: Omit<FusedCase, 'n'>): ModuleShape => ({ label, c: { ...c, n: batch } as FusedCase });
  return [
    m('pwdw 24->144 56x56 dw3 s1', { kind: 'pwdw', c: 24, h: 56, w: 56, m: 144, k: 3, stride: 1, pads: [1, 1, 1, 1], bias1: true, bias2: true, ...relu6, act2: 'Clip', params2: [0, 6], tiles: { tileFilters1: 16, tileH: 8, tileW: 8 } }),
    m('pwdw 24->144 56x56 dw3 s2', { kind: 'pwdw', c: 24, h: 56, w: 56, m: 144, k: 3, stride: 2, pads: [1, 1, 1, 1], bias1: true, bias2: true, ...relu6, act2: 'Clip', params2: [0, 6], tiles: { tileFilters1: 16, tileH: 4, tileW: 4 } }),
    m('pwdw 96->576 14x14 dw3 s1', { kind: 'pwdw', c: 96, h: 14, w: 14, m: 576, k: 3, stride: 1, pads: [1, 1, 1, 1], bias1: true, bias2: true, ...relu6, act2: 'Clip', params2: [0, 6], tiles: { tileFilters1: 16, tileH: 7, tileW: 7 } }),
    m('dwpw 144 56x56 dw3 s2 ->32', { kind: 'dwpw', c: 144, h: 56, w: 56, f: 32, k: 3, stride: 2, pads: [1, 1, 1, 1], bias1: true, bias2: true, ...relu6, tiles: { tileFilters1: 16, tileFilters2: 32, tileH: 4, tileW: 4 } }),
    m('dwpw 384 14x14 dw3 s1 ->64 +res', { kind: 'dwpw', c: 384, h: 14, w: 14, f: 64, k: 3, stride: 1, pads: [1, 1, 1, 1], bias1: true, bias2: true, residual: true, ...relu6, tiles: { tileFilters1: 32, tileFilters2: 32, tileH: 7, tileW: 7 } }),
    m('dwpw 960 7x7 dw3 s1 ->160 +res', { kind: 'dwpw', c: 960, h: 7, w: 7, f: 160, k: 3, stride: 1, pads: [1, 1, 1, 1], bias1: true, bias2: true, residual: true, ...relu6, tiles: { tileFilters1: 32, tileFilters2: 32, tileH: 7, tileW: 7 } }),
    m('pwpw 144->24 ->144 56x56', { kind: 'pwpw', c: 144, h: 56, w: 56, m: 24, f: 144, bias1: true, bias2: true, act2: 'Clip', params2: [0, 6], tiles: { tileFilters1: 24, tileFilters2: 32, tileH: 8, tileW: 8 } }),
    m('pwpw 384->64 ->384 14x14', { kind: 'pwpw', c: 384, h: 14, w: 14, m: 64, f: 384, bias1: true, bias2: true, act2: 'Clip', params2: [0, 6], tiles: { tileFilters1: 32, tileFilters2: 32, tileH: 7, tileW: 7 } }),
  ];
}

type KernelFn = (args: FusedKernelArgs) => KernelProgram;

/** D1's LBL kernel of a module file, when it exists: its first exported function. */
async function loadLbl(file: string): Promise<KernelFn | string> {
  try {
    const mod = await import(new URL(`../kernels/${file}`, import.meta.url).href) as Record<string, unknown>;
    const fn = Object.values(mod).find((v) => typeof v === 'function');
    return fn ? fn as KernelFn : `kernels/${file} exports no function`;
  } catch (e) {
    return `kernels/${file}: ${(e as Error).message.split('\n')[0]}`;
  }
}

function convNode(name: string, inputs: string[], attrs: Record<string, number[] | number | string>): Node {
  return { name, op: 'Conv', domain: '', inputs, outputs: [`${name}_y`], attrs: newAttrs(attrs) };
}

/** The two layer-by-layer programs of a module, with the input arrays of each in binding order. */
function lblPrograms(c: FusedCase, b: Built, dw: KernelFn, pw: KernelFn, limits: KernelLimits): { p1: KernelProgram; p2: KernelProgram } {
  const L = b.layers;
  const k = c.k ?? 3, s = c.stride ?? 1, d = c.dilation ?? 1;
  const dwAttrs = (ch: number) => ({ kernel: [k, k], strides: [s, s], pads: c.pads ?? [0, 0, 0, 0], dilations: [d, d], group: ch });
  const pwAttrs = { kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 };
  const act = (i: 1 | 2) => {
    const a = i === 1 ? c.act1 : c.act2, p = i === 1 ? c.params1 : c.params2;
    return a ? { activation: a, ...(p ? { activationParams: p } : {}) } : {};
  };
  const first = c.kind === 'dwpw' ? dw : pw;
  const second = c.kind === 'pwdw' ? dw : pw;
  const a1 = c.kind === 'dwpw' ? dwAttrs(L.mid.shape[1]) : pwAttrs;
  const a2 = c.kind === 'pwdw' ? dwAttrs(L.mid.shape[1]) : pwAttrs;
  const p1 = first({
    node: convNode('l1', ['x', 'w1', L.b1 ? 'b1' : ''], { ...a1, ...act(1) }),
    inputShapes: [L.x.shape, L.w1.shape, L.b1 && [L.b1.length]], outputShape: L.mid.shape, limits,
  });
  const p2 = second({
    node: convNode('l2', ['mid', 'w2', L.b2 ? 'b2' : '', L.res ? 'res' : ''], { ...a2, ...act(2) }),
    inputShapes: [L.mid.shape, L.w2.shape, L.b2 && [L.b2.length], L.res && b.outputShape], outputShape: b.outputShape, limits,
  });
  return { p1, p2 };
}

export interface Step { program: KernelProgram; prepared: Prepared }

/** Median GPU microseconds of one repetition of `steps` (dispatched in order inside one compute pass). */
export async function timeSteps(device: GPUDevice, steps: Step[], iters: number): Promise<number> {
  const ts = device.features.has('timestamp-query');
  const qs = ts ? device.createQuerySet({ type: 'timestamp', count: 2 }) : undefined;
  const resolve = ts ? device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }) : undefined;
  const read = ts ? device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }) : undefined;
  const runOnce = async (n: number): Promise<number> => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass(qs ? { timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {});
    for (let i = 0; i < n; i++) {
      for (const s of steps) {
        pass.setPipeline(s.prepared.pipeline);
        pass.setBindGroup(0, s.prepared.bindGroup);
        pass.dispatchWorkgroups(...s.program.dispatch);
      }
    }
    pass.end();
    if (qs && resolve && read) {
      enc.resolveQuerySet(qs, 0, 2, resolve, 0);
      enc.copyBufferToBuffer(resolve, 0, read, 0, 16);
    }
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    const wallUs = (performance.now() - t0) * 1000;
    if (!read) return wallUs / n;
    await read.mapAsync(GPUMapMode.READ);
    const [b, e] = new BigUint64Array(read.getMappedRange());
    read.unmap();
    return Number(e - b) / 1000 / n;
  };
  await runOnce(2); // warm-up: pipeline first use, caches
  const samples: number[] = [];
  for (let r = 0; r < 5; r++) samples.push(await runOnce(iters));
  qs?.destroy(); resolve?.destroy(); read?.destroy();
  samples.sort((x, y) => x - y);
  return samples[2];
}

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

export async function main(): Promise<void> {
  const batch = Number(arg('batch', '1'));
  const iters = Number(arg('iters', '50'));
  const only = arg('only', '') as FusedKind | '';
  const json = process.argv.includes('--json');
  const tileOverride = JSON.parse(arg('tiles', '{}')) as FusedCase['tiles'];
  const device = await getDevice();
  const limits = limitsOf(device);
  const dw = await loadLbl('depthwise.js');
  const pw = await loadLbl('pointwise.js');
  const rows: Record<string, unknown>[] = [];
  for (const { label, c } of moduleShapes(batch)) {
    if (only && c.kind !== only) continue;
    c.tiles = { ...c.tiles, ...tileOverride };
    const b = buildCase(c, limits, { reference: false });
    const fused = await prepare(device, b.program, b.inputs, b.outputShape.reduce((x, y) => x * y, 1));
    const fusedUs = await timeSteps(device, [{ program: b.program, prepared: fused }], iters);
    release(fused);
    let lblUs: number | undefined;
    let lblNote = '';
    if (typeof dw === 'string' || typeof pw === 'string') {
      lblNote = typeof dw === 'string' ? dw : pw as string;
    } else {
      try {
        const { p1, p2 } = lblPrograms(c, b, dw, pw, limits);
        const L = b.layers;
        const all1 = [L.x.data as Float32Array, L.w1.data as Float32Array, L.b1];
        const s1 = await prepare(device, p1, p1.inputs.map((i) => all1[i]!), L.mid.data.length);
        // The second layer reads the first's output buffer: bind it in place of its input 0.
        const all2 = [new Float32Array(L.mid.data.length), L.w2.data as Float32Array, L.b2, L.res];
        const s2 = await prepare(device, p2, p2.inputs.map((i) => all2[i]!), b.outputShape.reduce((x, y) => x * y, 1));
        const midBinding = p2.inputs.indexOf(0);
        const bindGroup = device.createBindGroup({
          layout: s2.pipeline.getBindGroupLayout(0),
          entries: s2.buffers.map((buffer, binding) => ({ binding, resource: { buffer: binding === midBinding ? s1.output : buffer } })),
        });
        lblUs = await timeSteps(device, [{ program: p1, prepared: s1 }, { program: p2, prepared: { ...s2, bindGroup } }], iters);
        release(s1); release(s2);
      } catch (e) {
        lblNote = `LBL failed: ${(e as Error).message.split('\n')[0]}`;
      }
    }
    const p = b.program;
    const row = {
      module: label, batch, fusedUs: +fusedUs.toFixed(2), lblUs: lblUs === undefined ? null : +lblUs.toFixed(2),
      speedup: lblUs === undefined ? null : +(lblUs / fusedUs).toFixed(2),
      workgroup: p.workgroupSize[0], workgroups: p.dispatch[0] * p.dispatch[1], wgBytes: p.workgroupStorageBytes, key: p.cacheKey,
      ...(lblNote ? { note: lblNote } : {}),
    };
    rows.push(row);
    if (!json) {
      console.log(`${label.padEnd(34)} fused ${fusedUs.toFixed(1).padStart(8)} us   LBL ${lblUs === undefined ? '     n/a' : lblUs.toFixed(1).padStart(8)} us` +
        `${row.speedup ? `   x${row.speedup}` : ''}   ${p.cacheKey.split('|').slice(-2, -1)[0]}${lblNote ? `   (${lblNote})` : ''}`);
    }
  }
  const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  const header = { device: info ? `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.trim() : 'unknown', timestamps: device.features.has('timestamp-query'), iters, date: new Date().toISOString() };
  if (json) console.log(JSON.stringify({ ...header, rows }, null, 2));
  else console.log(JSON.stringify(header));
  await closeDevice();
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(() => process.exit(0), (e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
}
