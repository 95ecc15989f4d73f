// FCM kernel benchmark: each fused kernel (PW-DW, DW-PW, PW-PW) against its two layer-by-layer kernels, on
// MobileNetV2-like module shapes at 224x224 input resolution, for the target "each fused module faster than its
// two LBL kernels" target.
//
// Run: npm run build && node dist/bench/fcm-kernels.js [--batch 8] [--iters 50] [--heat-ms 20] [--set mbv2|zoo] [--json] [--only pwdw|dwpw|pwpw]
//      [--sweep] (every tile of sweepTiles per module instead of the planner's)
//      [--tiles '{"tileH":2,"tileW":2}'] (merged into every module's tiles, for tuning by hand)
//      [--match TEXT] (only modules whose label contains TEXT) [--halo 1,2,4] (with --sweep: PW-DW haloPerThread values)
// On the H100: see DEVELOPERS.md (pack, carry [".gpu", "dist"], `source .gpu/enter.sh && node dist/bench/fcm-kernels.js`).
//
// GPU time comes from timestamp queries around one compute pass holding `iters` repetitions (the same dispatch
// sequence each time: for LBL both layers with the intermediate in a global buffer), divided by `iters`; without
// the timestamp-query feature, wall time of submit to onSubmittedWorkDone over the same pass. Median of 5 passes.
//
// The LBL kernels are the executor's (kernels/depthwise.ts, kernels/pointwise.ts), called on a Conv node with the
// IR's normalized attributes; when they refuse the call, the LBL column says why.

import { pathToFileURL } from 'node:url';
import { newAttrs, type Node } from '../src/graph/ir.js';
import type { KernelArgs, KernelLimits, KernelProgram } from '../kernels/program.js';
import { depthwise } from '../kernels/depthwise.js';
import { pointwise } from '../kernels/pointwise.js';
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

/**
 * The fused modules the planner picks at batch 8 for the zoo models (fixtures/zoo.ts, h100.cfg; one per distinct
 * shape, with the plan's tiles), the PW-DW ones that lost to their layers on the H200 first.
 */
export function zooModuleShapes(batch: number): ModuleShape[] {
  const relu6 = { act1: 'Clip', params1: [0, 6], act2: 'Clip', params2: [0, 6] };
  const hs = { act1: 'HardSwish', act2: 'HardSwish' };
  const m = (label: string, c: Omit<FusedCase, 'n'>): ModuleShape => ({ label, c: { ...c, n: batch } as FusedCase });
  const pwdw = (c: number, h: number, mm: number, s: number, fb: number, t: number, act: object) =>
    ({ kind: 'pwdw' as const, c, h, w: h, m: mm, k: 3, stride: s, pads: [1, 1, 1, 1] as [number, number, number, number], bias1: true, bias2: true, ...act, tiles: { tileFilters1: fb, tileH: t, tileW: t } });
  const se = (c: number, mm: number, fb1: number, fb2: number) =>
    ({ kind: 'pwpw' as const, c, h: 1, w: 1, m: mm, f: c, bias1: true, bias2: true, act1: 'Relu', act2: 'HardSigmoid', params2: [1 / 6, 0.5], tiles: { tileFilters1: fb1, tileFilters2: fb2, tileH: 1, tileW: 1 } });
  return [
    m('pwdw 16->64 112x112 s2 (v3 conv_14)', pwdw(16, 112, 64, 2, 8, 16, { act1: 'Relu', act2: 'Relu' })),
    m('pwdw 16->48 112x112 s2 (mnas conv_13)', pwdw(16, 112, 48, 2, 8, 16, relu6)),
    m('pwdw 40->240 28x28 s2 (v3 conv_102)', pwdw(40, 28, 240, 2, 8, 14, hs)),
    m('pwdw 32->192 28x28 s1 (v2 conv_47)', pwdw(32, 28, 192, 1, 8, 28, relu6)),
    m('pwdw 32->192 28x28 s2 (v2 conv_71)', pwdw(32, 28, 192, 2, 8, 14, relu6)),
    m('pwdw 80->200 14x14 s1 (v3 conv_113)', pwdw(80, 14, 200, 1, 8, 14, hs)),
    m('pwdw 64->384 14x14 s1 (v2 conv_82)', pwdw(64, 14, 384, 1, 16, 14, relu6)),
    m('pwdw 80->480 14x14 k5 s1 (b0 conv_124)', { ...pwdw(80, 14, 480, 1, 8, 14, { act1: 'SiLU', act2: 'SiLU' }), k: 5, pads: [2, 2, 2, 2] }),
    m('pwpw se 480->20->480 (b0 conv_159)', se(480, 20, 20, 32)),
    m('pwpw se 240->10->240 (b0 conv_110)', se(240, 10, 10, 16)),
    m('pwpw se 120->32->120 (v3 conv_67)', se(120, 32, 32, 8)),
    m('pwpw se 32->8->32 (b0 conv_13)', se(32, 8, 8, 2)),
    // Batch 1's tiles where they differ (the kernel splits them further for parallelism).
    m('pwdw 160->960 7x7 s1 (v2 conv_164 b1)', pwdw(160, 7, 960, 1, 8, 7, relu6)),
    m('pwdw 96->576 14x14 s1 (v2 conv_129 b1)', { ...pwdw(96, 14, 576, 1, 8, 8, relu6), tiles: { tileFilters1: 8, tileH: 8, tileW: 14 } }),
    m('pwdw 64->384 14x14 s1 (v2 conv_82 b1)', pwdw(64, 14, 384, 1, 8, 8, relu6)),
    m('pwdw 32->192 28x28 s1 (v2 conv_47 b1)', { ...pwdw(32, 28, 192, 1, 8, 8, relu6), tiles: { tileFilters1: 8, tileH: 8, tileW: 16 } }),
  ];
}

type KernelFn = (args: KernelArgs) => KernelProgram;

/** An executor LBL kernel without its optional precomputed geometry. */
const lblKernel = (k: typeof pointwise): KernelFn => (args) => k(args);

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
    inputShapes: [L.x.shape, L.w1.shape, L.b1 && [L.b1.length]], outputShapes: [L.mid.shape], limits,
  });
  const p2 = second({
    node: convNode('l2', ['mid', 'w2', L.b2 ? 'b2' : '', L.res ? 'res' : ''], { ...a2, ...act(2) }),
    inputShapes: [L.mid.shape, L.w2.shape, L.b2 && [L.b2.length], L.res && b.outputShape], outputShapes: [b.outputShape], limits,
  });
  return { p1, p2 };
}

export interface Step { program: KernelProgram; prepared: Prepared }

/**
 * Median GPU microseconds of one repetition of `steps` (dispatched in order inside one compute pass). `heatMs`:
 * the steps run untimed for that long first: an idle GPU drops its clocks (345 of 1980 MHz on the H200), and a
 * timing of a few milliseconds that follows host work (pipelines, buffers) otherwise runs at the idle clock.
 */
export async function timeSteps(device: GPUDevice, steps: Step[], iters: number, heatMs = 0): Promise<number> {
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
  for (const t0 = performance.now(); performance.now() - t0 < heatMs;) await runOnce(iters);
  const samples: number[] = [];
  for (let r = 0; r < 5; r++) samples.push(await runOnce(iters));
  qs?.destroy(); resolve?.destroy(); read?.destroy();
  samples.sort((x, y) => x - y);
  return samples[2];
}

/** The tiles --sweep tries: PW-DW filters x rows x columns of the output tile; the 1x1 PW-PW first-layer splits. */
export function sweepTiles(c: FusedCase, batch: number, halo: number[] = [1]): NonNullable<FusedCase['tiles']>[] {
  if (c.kind === 'pwpw') {
    const base = { ...c.tiles };
    return [base, ...[1, 2, 4, 8, 16, 32].map((k) => ({ ...base, splitK1: k }))];
  }
  const s = c.stride ?? 1;
  const ho = Math.ceil(c.h / s), wo = Math.ceil(c.w / s);
  const sizes = (n: number) => [...new Set([n, Math.ceil(n / 2), Math.ceil(n / 4), 16, 14, 8, 7, 4, 2].filter((v) => v <= n))];
  const out: NonNullable<FusedCase['tiles']>[] = [];
  for (const fb of [4, 8, 16, 32]) {
    for (const th of sizes(ho)) {
      for (const tw of sizes(wo)) {
        // Fewer workgroups than half the GPU's SMs is not a candidate at this batch.
        if (batch * Math.ceil(c.m! / fb) * Math.ceil(ho / th) * Math.ceil(wo / tw) < 66) continue;
        for (const h of halo) out.push({ tileFilters1: fb, tileH: th, tileW: tw, ...(h > 1 ? { haloPerThread: h } : {}) });
      }
    }
  }
  return out;
}

/** --sweep: every sweepTiles variant of one module (distinct programs only), with its LBL pair once. */
async function sweepModule(device: GPUDevice, limits: KernelLimits, label: string, c: FusedCase, iters: number, heatMs: number, json: boolean, halo: number[]): Promise<Record<string, unknown>[]> {
  const dw = lblKernel(depthwise), pw = lblKernel(pointwise);
  const b0 = buildCase(c, limits, { reference: false });
  const { p1, p2 } = lblPrograms(c, b0, dw, pw, limits);
  const L = b0.layers;
  const outLen = b0.outputShape.reduce((x, y) => x * y, 1);
  const s1 = await prepare(device, p1, p1.inputs.map((i) => [L.x.data as Float32Array, L.w1.data as Float32Array, L.b1][i]!), L.mid.data.length);
  const s2 = await prepare(device, p2, p2.inputs.map((i) => [new Float32Array(L.mid.data.length), L.w2.data as Float32Array, L.b2, L.res][i]!), outLen);
  const midBinding = p2.inputs.indexOf(0);
  const bindGroup = device.createBindGroup({
    layout: s2.pipeline.getBindGroupLayout(0),
    entries: s2.buffers.map((buffer, binding) => ({ binding, resource: { buffer: binding === midBinding ? s1.output : buffer } })),
  });
  const lbl: Step[] = [{ program: p1, prepared: s1 }, { program: p2, prepared: { ...s2, bindGroup } }];
  // Every variant compiled first, then all timed back to back: compiling between timings idled the GPU down to
  // its 345 MHz clock, which 20 ms of heat did not undo (the same program ran 37 us early in a sweep, 170 us
  // later). The LBL pair is timed before and after; a drift between the two says the clocks moved.
  const variants: { tiles: NonNullable<FusedCase['tiles']>; program: KernelProgram; prepared: Prepared }[] = [];
  const seen = new Set<string>();
  for (const tiles of sweepTiles(c, c.n, halo)) {
    let b: Built;
    try {
      b = buildCase({ ...c, tiles }, limits, { reference: false });
    } catch (e) {
      continue; // a tile the kernel refuses on this device (storage): not a candidate
    }
    if (seen.has(b.program.cacheKey)) continue;
    seen.add(b.program.cacheKey);
    variants.push({ tiles, program: b.program, prepared: await prepare(device, b.program, b.inputs as Float32Array[], outLen) });
  }
  // Compiling left the GPU idle: a longer heat first (20 ms was not enough after a few seconds of compiling).
  const lblUs = await timeSteps(device, lbl, iters, Math.max(heatMs, 500));
  const rows: Record<string, unknown>[] = [];
  for (const { tiles, program, prepared } of variants) {
    const us = await timeSteps(device, [{ program, prepared }], iters, heatMs);
    release(prepared);
    const key = program.cacheKey.split('|').slice(-2, -1)[0];
    rows.push({ module: label, batch: c.n, tiles, key, fusedUs: +us.toFixed(2), lblUs: +lblUs.toFixed(2), speedup: +(lblUs / us).toFixed(2), workgroups: program.dispatch[0] * program.dispatch[1] });
    if (!json) console.log(`${label.padEnd(34)} ${key.padEnd(40)} fused ${us.toFixed(1).padStart(7)} us   LBL ${lblUs.toFixed(1).padStart(7)} us   x${(lblUs / us).toFixed(2)}`);
  }
  const lblAfter = await timeSteps(device, lbl, iters, heatMs);
  release(s1); release(s2);
  if (!json) console.log(`${label.padEnd(34)} LBL before ${lblUs.toFixed(1)} us, after ${lblAfter.toFixed(1)} us`);
  return rows;
}

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

export async function main(): Promise<void> {
  const batch = Number(arg('batch', '1'));
  const iters = Number(arg('iters', '50'));
  const heatMs = Number(arg('heat-ms', '20'));
  const set = arg('set', 'mbv2');
  const only = arg('only', '') as FusedKind | '';
  const json = process.argv.includes('--json');
  const tileOverride = JSON.parse(arg('tiles', '{}')) as FusedCase['tiles'];
  const device = await getDevice();
  const limits = limitsOf(device);
  const dw = lblKernel(depthwise), pw = lblKernel(pointwise);
  const rows: Record<string, unknown>[] = [];
  const sweep = process.argv.includes('--sweep');
  const match = arg('match', '');
  const halo = arg('halo', '1').split(',').map(Number);
  for (const { label, c } of set === 'zoo' ? zooModuleShapes(batch) : moduleShapes(batch)) {
    if (only && c.kind !== only) continue;
    if (match && !label.includes(match)) continue;
    c.tiles = { ...c.tiles, ...tileOverride };
    if (sweep) {
      rows.push(...await sweepModule(device, limits, label, c, iters, heatMs, json, halo));
      continue;
    }
    const b = buildCase(c, limits, { reference: false });
    const fused = await prepare(device, b.program, b.inputs, b.outputShape.reduce((x, y) => x * y, 1));
    const fusedUs = await timeSteps(device, [{ program: b.program, prepared: fused }], iters, heatMs);
    release(fused);
    let lblUs: number | undefined;
    let lblNote = '';
    {
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
        lblUs = await timeSteps(device, [{ program: p1, prepared: s1 }, { program: p2, prepared: { ...s2, bindGroup } }], iters, heatMs);
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
