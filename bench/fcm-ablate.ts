// Where the PW-DW FCM's time goes: the kernel timed whole, without its pointwise phase,
// without its depthwise phase, and without both (staging, epilogue 1 and the barriers: the "skeleton"), on a few
// zoo modules and tiles, every variant compiled first and timed twice round (r0, r1; r1 is heated).
// The cuts are text edits of the generated WGSL at its comments; cut outputs are garbage, only times count.
// Run: npm run build && node dist/bench/fcm-ablate.js [batch]   (on the device: see DEVELOPERS.md)
import { pathToFileURL } from 'node:url';
import { zooModuleShapes, timeSteps } from './fcm-kernels.js';
import { buildCase } from '../test/kernels/fused-check.js';
import { closeDevice, getDevice, limitsOf, prepare, release } from '../test/kernels/fused-harness.js';
import type { KernelProgram } from '../kernels/program.js';

/** Keeps every binding statically used (the auto layout drops unused ones). */
export function touch(w: string): string {
  const names = [...w.matchAll(/var<storage, read> (\w+)/g)].map((m) => `${m[1]}[0]`);
  const at = w.indexOf('  if (g >= TOTAL) { return; }');
  return w.slice(0, at) + `  if (g == 0xffffffffu) { out[0] = ${names.join(' + ')}; }\n` + w.slice(at);
}
export function cutPw(w: string): string {
  const a = w.indexOf('    for (var cl = 0u; cl < CK; cl += ');
  const b = w.indexOf('\n    workgroupBarrier();\n  }\n  // Epilogue 1.');
  if (a < 0 || b < 0) throw new Error('pw markers');
  return w.slice(0, a) + w.slice(b);
}
export function cutDw(w: string): string {
  const a = w.indexOf('  // Depthwise layer from workgroup memory');
  if (a < 0) throw new Error('dw marker');
  return w.slice(0, a) + '  if (li == 0u) { out[g % arrayLength(&out)] = mid[(g * 7u) % MIDN]; }\n}\n';
}
async function main(): Promise<void> {
const device = await getDevice();
const limits = limitsOf(device);
const batch = Number(process.argv[2] ?? '8');
const extra: Record<string, object[]> = {
  '16->64 112x112': [{ tileFilters1: 4, tileH: 28, tileW: 8 }, { tileFilters1: 8, tileH: 8, tileW: 16 }],
  '40->240': [{ tileFilters1: 4, tileH: 7, tileW: 14 }],
  '32->192 28x28 s1 (v2 conv_47)': [],
  '64->384 14x14 s1 (v2 conv_82)': [{ tileFilters1: 8, tileH: 14, tileW: 14, haloPerThread: 2 }],
};
const jobs: { label: string; kind: string; program: KernelProgram; prepared: Awaited<ReturnType<typeof prepare>> }[] = [];
for (const { label, c } of zooModuleShapes(batch)) {
  const key = Object.keys(extra).find((k) => label.includes(k) && !label.includes(' b1)'));
  if (!key) continue;
  for (const t of [c.tiles, ...extra[key]]) {
    const b = buildCase({ ...c, tiles: t as typeof c.tiles }, limits, { reference: false });
    const outLen = b.outputShape.reduce((x, y) => x * y, 1);
    for (const [kind, f] of [['full', (w: string) => w], ['noPW', cutPw], ['noDW', cutDw], ['skeleton', (w: string) => cutDw(cutPw(w))]] as const) {
      const program = { ...b.program, wgsl: touch(f(b.program.wgsl)), cacheKey: b.program.cacheKey + kind };
      jobs.push({ label: `${label} ${b.program.cacheKey.split('|').slice(-2, -1)[0]}`, kind, program, prepared: await prepare(device, program, b.inputs as Float32Array[], outLen) });
    }
  }
}
for (let round = 0; round < 2; round++) {
  for (const j of jobs) {
    const us = await timeSteps(device, [{ program: j.program, prepared: j.prepared }], 50, 20);
    console.log(`r${round} ${j.label.padEnd(70)} ${j.kind.padEnd(9)} ${us.toFixed(1).padStart(7)} us`);
  }
}
for (const j of jobs) release(j.prepared);
await closeDevice();
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(() => process.exit(0), (e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
}
