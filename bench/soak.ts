// Soak: many runs of a fixture model on one session, sampling the process's RSS and the session's
// GPU buffer count every `every` runs. run() must create nothing on the GPU and leak nothing on the host.
//   npx tsx bench/soak.ts [--runs 2000] [--every 100] [--model mobilenetv2_stack] [--unfused] [--json]
import { pathToFileURL } from 'node:url';
import { fixtureModels } from '../fixtures/models.js';
import { exportOnnx } from '../converters/onnx/export.js';
import { loadModel } from '../src/graph/load.js';
import { createSession } from '../src/pipeline/session.js';
import { acquireGpu, releaseGpu } from '../src/runtime/device.js';
import { seededInput } from '../src/runtime/compare.js';

export interface SoakSample {
  runs: number;
  rssMiB: number;
  heapMiB: number;
  buffers: number;
  bindGroups: number;
  pipelines: number;
}

export interface SoakReport {
  model: string;
  plan: 'auto' | 'unfused';
  device: string;
  runs: number;
  seconds: number;
  runsPerSecond: number;
  samples: SoakSample[];
  /** The output of the last run equals the first's (same input). */
  stableOutput: boolean;
}

export interface SoakOptions {
  runs?: number;
  every?: number;
  model?: keyof typeof fixtureModels;
  plan?: 'auto' | 'unfused';
}

const mib = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;

export async function soak(o: SoakOptions = {}): Promise<SoakReport> {
  const runs = o.runs ?? 2000, every = o.every ?? 100, model = o.model ?? 'mobilenetv2_stack', plan = o.plan ?? 'auto';
  const g = await loadModel(exportOnnx(fixtureModels[model]()), { source: model });
  const s = await createSession(g, { plan, hw: 'rtxa4000' });
  try {
    const ctx = await acquireGpu();
    const x = Object.fromEntries(s.inputNames.map((n, i) => [n, seededInput(s.inputShapes[n].reduce((a, b) => a * b, 1), i)]));
    const sample = (k: number): SoakSample => {
      const st = s.stats(), m = process.memoryUsage();
      return { runs: k, rssMiB: mib(m.rss), heapMiB: mib(m.heapUsed), buffers: st.buffersCreated, bindGroups: st.bindGroupsCreated, pipelines: st.pipelinesCreated };
    };
    // One run before the first sample: lazy allocations of the first submission are not a leak.
    const first = (await s.run(x))[s.outputNames[0]].data;
    const samples = [sample(0)];
    let last = first;
    const t0 = performance.now();
    for (let k = 1; k <= runs; k++) {
      last = (await s.run(x))[s.outputNames[0]].data;
      if (k % every === 0 || k === runs) samples.push(sample(k));
    }
    const seconds = (performance.now() - t0) / 1000;
    return {
      model, plan, device: [ctx.adapterInfo.description, ctx.adapterInfo.vendor].filter((v) => v).join(' '),
      runs, seconds: Math.round(seconds * 100) / 100, runsPerSecond: Math.round((runs / seconds) * 10) / 10, samples,
      stableOutput: first.length === last.length && first.every((v, i) => Object.is(v, last[i])),
    };
  } finally {
    s.dispose();
  }
}

export function formatSoak(r: SoakReport): string {
  const lines = [`soak: ${r.model} (${r.plan}) on ${r.device}: ${r.runs} runs in ${r.seconds} s, ${r.runsPerSecond} runs/s, output stable: ${r.stableOutput}`,
    'runs    rss MiB  heap MiB  buffers  bind groups  pipelines'];
  for (const s of r.samples) lines.push(`${String(s.runs).padStart(5)}  ${s.rssMiB.toFixed(1).padStart(8)}  ${s.heapMiB.toFixed(1).padStart(8)}  ${String(s.buffers).padStart(7)}  ${String(s.bindGroups).padStart(11)}  ${String(s.pipelines).padStart(9)}`);
  const a = r.samples[0], b = r.samples[r.samples.length - 1];
  lines.push(`rss ${a.rssMiB} -> ${b.rssMiB} MiB (${(b.rssMiB - a.rssMiB).toFixed(1)}), buffers ${a.buffers} -> ${b.buffers}`);
  return lines.join('\n') + '\n';
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const opt = (k: string) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : undefined; };
  const model = (opt('--model') ?? 'mobilenetv2_stack') as keyof typeof fixtureModels;
  if (!(model in fixtureModels)) throw new Error(`--model: one of ${Object.keys(fixtureModels).join(', ')}`);
  try {
    const r = await soak({ runs: Number(opt('--runs') ?? 2000), every: Number(opt('--every') ?? 100), model, plan: args.includes('--unfused') ? 'unfused' : 'auto' });
    process.stdout.write(args.includes('--json') ? JSON.stringify(r, null, 2) + '\n' : formatSoak(r));
  } finally {
    await releaseGpu();
  }
}
