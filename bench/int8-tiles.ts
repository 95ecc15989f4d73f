// Integer kernel diagnosis: GPU time of each integer DW-PW module of the FusePlanner reference's int8 MobileNetV1 (batch 1) for a grid of
// tiles, against its two layers run LBL, in one process. Every variant is one session of the planner's plan with
// the DW-PW modules' tiles replaced (the kernel still clamps and splits them); sessions are profiled in turn,
// round after round (src/bench/profile.ts's reasoning: clocks drift), median of the rounds.
//   npm run build; node dist/bench/int8-tiles.js [--hw h100] [--rounds 5] [--out DIR]
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../src/graph/load.js';
import { buildSeedMobileNetV1 } from '../fixtures/tflite-builder.js';
import { toDag } from '../src/planner/to-dag.js';
import { median } from '../src/bench/stats.js';
import { loadHw } from '../src/planner/hw.js';
import { planFusion } from '../src/planner/index.js';
import type { Plan, Tiles } from '../src/planner/plan.js';
import { createInt8Session } from '../src/pipeline/session.js';
import { prepareInt8Graph } from '../src/pipeline/pipeline.js';
import type { Session as Int8Session } from '../src/runtime/executor.js';
import { releaseGpu } from '../src/runtime/device.js';

const arg = (name: string, d: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] : d; };
const hw = loadHw(arg('hw', 'h100')), rounds = Number(arg('rounds', '5')), out = arg('out', '');

const g = await loadModel(buildSeedMobileNetV1(), { source: 'mob_v1_int8.tflite' });
const g1 = prepareInt8Graph(g, 'unfused', () => hw);
const base = planFusion(toDag(g1), hw, { mode: 'optimal', model: g.source, dtypeBytes: 1, batch: 1 });
const x = { [g.inputs[0]]: Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.sin(i * 0.37)) };

const grid: Array<[string, (t: Tiles) => Tiles]> = [['planner', (t) => t]];
// The DW-PW kernel takes h * w consecutive positions (rounded up to words), l2Filters filters and l1Filters
// channels per chunk (1024: every channel in one chunk).
for (const [h, w] of [[1, 4], [2, 4], [4, 4], [4, 8]]) {
  for (const f2 of [16, 32, 64, 128, 256]) {
    for (const d of [64, 1024]) grid.push([`${h * w}p f${f2} d${d}`, (t) => ({ ...t, h, w, l2Filters: f2, d, l1Filters: d })]);
  }
}
const plans: Array<[string, Plan | 'unfused']> = [
  ['unfused', 'unfused'],
  ...grid.map(([name, f]): [string, Plan] => [name, { ...base, modules: base.modules.map((m) => (m.kind === 'dwpw' ? { ...m, tiles: f(m.tiles) } : m)) }]),
];
const sessions: Array<[string, Int8Session]> = [];
for (const [name, p] of plans) sessions.push([name, await createInt8Session(g, { plan: p, hw })]);
const warm = async (s: Int8Session) => { const t0 = performance.now(); while (performance.now() - t0 < 300) await s.run(x); };
const samples = new Map<string, Map<string, number[]>>();
for (let r = 0; r < rounds; r++) {
  for (const [name, s] of sessions) {
    await warm(s);
    const p = await s.profile(x);
    const m = samples.get(name) ?? new Map<string, number[]>();
    for (const st of p.steps) m.set(st.node, [...(m.get(st.node) ?? []), st.ms * 1000]);
    samples.set(name, m);
  }
}
const us = (name: string, node: string) => median(samples.get(name)!.get(node) ?? [NaN]);
const modules = base.modules.filter((m) => m.kind === 'dwpw').map((m) => m.nodes ?? []);
const result: Record<string, unknown> = {};
for (const [a, b] of modules) {
  const fusedName = [...samples.get('planner')!.keys()].find((k) => k.startsWith(`${a}+`))!;
  const lbl = us('unfused', a) + us('unfused', b);
  const rows = grid.map(([name]) => [name, us(name, fusedName)] as [string, number]).sort((p, q) => p[1] - q[1]);
  console.log(`${fusedName}: LBL ${lbl.toFixed(1)} us, planner ${us('planner', fusedName).toFixed(1)} us, best ${rows.slice(0, 4).map(([n, v]) => `${n} ${v.toFixed(1)}`).join(', ')}`);
  result[fusedName] = { lblUs: lbl, fusedUs: Object.fromEntries(rows) };
}
const total = (name: string) => [...samples.get(name)!.keys()].reduce((acc, k) => acc + us(name, k), 0);
console.log(`GPU sums (us): unfused ${total('unfused').toFixed(0)}, planner ${total('planner').toFixed(0)}`);
if (out) writeFileSync(join(out, 'int8-tiles.json'), JSON.stringify(result, null, 1));
for (const [, s] of sessions) s.dispose();
await releaseGpu();
process.exit(0);
