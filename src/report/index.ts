// `fcm-opt report`: plan a model (or a layer DAG) for a GPU description and write the report page; with
// `bench`, measure it with `fcm-opt bench` (src/bench) and draw the figures next to the estimates.
import { basename, extname } from 'node:path';
import { invalid } from '../errors.js';
import { writeFileAtomic } from '../export/write-atomic.js';
import type { BenchOptions, BenchReport } from '../bench/bench.js';
import { loadPlanInput } from '../pipeline/pipeline.js';
import { resolveHw } from '../pipeline/hw.js';
import { planFusion, type PlanMode } from '../planner/index.js';
import type { Plan } from '../planner/plan.js';
import type { FloatPrecision } from '../runtime/precision.js';
import { renderReport, type ReportBench } from './html.js';

export { renderReport, esc, type ReportBench, type ReportInput } from './html.js';
export { layoutGraph, overlaps, type GraphLayout } from './layout.js';

export interface ReportOptions {
  hw: string;
  mode?: PlanMode;
  batch?: number;
  inputShape?: Record<string, number[]>;
  /** ImportOptions.maxMemory for loading the model (default 4 GiB). */
  maxMemory?: number;
  /** Measure the model (fcm-opt fused and unfused, onnxruntime WebGPU and CPU) and add the figures. */
  bench?: boolean;
  /** Plan (and bench) for f16 tensors: 2-byte elements in the GMA and time models (default fp32). */
  precision?: FloatPrecision;
  /** Passed to the bench (runs, warm-up; tests give their own createSession). */
  benchOptions?: Pick<BenchOptions, 'runs' | 'warmup' | 'createSession' | 'onProgress'>;
  generator?: string;
}

/** The report page for `input` (.onnx, .tflite or a layer DAG .json), as a string. */
export async function makeReport(input: string, options: ReportOptions): Promise<string> {
  const mode = options.mode ?? 'optimal';
  if (options.bench) {
    // The bench measures the optimal plan of an ONNX model at 4 bytes per element (src/bench/bench.ts);
    // the page must draw that same plan for the per-module figures to line up.
    if (extname(input).toLowerCase() !== '.onnx') throw invalid(`${input}: --bench`, 'measurements need an .onnx model');
    if (mode !== 'optimal') throw invalid('--bench', `measures the optimal plan; drop --mode ${mode} or --bench`);
    if (options.inputShape !== undefined) throw invalid('--bench', 'takes --batch but not --input-shape');
  }
  const hw = await resolveHw(options.hw);
  // The bench loads the model at batch 1 unless told otherwise; plan what it will run.
  const dag = await loadPlanInput(input, options.bench ? { ...options, batch: options.batch ?? 1 } : options);
  const fp16 = options.precision === 'fp16';
  if (fp16 && mode !== 'optimal') throw invalid('--precision fp16', `plans with 2-byte elements in the optimal planner; drop --mode ${mode}`);
  const plan = planFusion(dag, hw, { mode, model: basename(input), ...(fp16 ? { dtypeBytes: 2, tileBytes: 4 } : options.bench ? { dtypeBytes: 4 } : {}) });
  let bench: ReportBench | undefined;
  if (options.bench) {
    // Loaded here only: the bench pulls in WebGPU, which planning-only reports never need.
    const { runBench } = await import('../bench/bench.js');
    const report = await runBench(input, { ...options.benchOptions, hw: options.hw, batch: options.batch ?? 1, maxMemory: options.maxMemory, precision: options.precision });
    bench = reportBench(report, plan);
  }
  return renderReport({ dag, plan, hw, bench, generator: options.generator });
}

/** The bench's report as the page draws it; refuses one whose modules are not this plan's. */
export function reportBench(report: BenchReport, plan: Plan): ReportBench {
  const modules: ReportBench['modules'] = [];
  for (const l of report.layers) {
    if (l.module === null) continue;
    const m = plan.modules[l.module];
    const same = m !== undefined && m.kind === l.kind && JSON.stringify(m.nodes ?? []) === JSON.stringify(l.nodes);
    if (!same) throw invalid(`${report.model}: bench`, `module #${l.module} (${l.kind}: ${l.nodes.join(', ')}) is not the report's plan module; the bench planned differently`);
    modules.push({ module: l.module, gma: l.gma, gmaUnfused: l.gmaUnfused, fusedGpuMs: l.fusedGpuMs, unfusedGpuMs: l.unfusedGpuMs, estUs: l.estUs });
  }
  const onCpu = /llvmpipe|lavapipe|swiftshader/i.test(report.device);
  return {
    device: report.device,
    runs: report.runs,
    batch: report.batch,
    results: report.results.map((r) => ({ name: r.name, medianMs: r.medianMs, p90Ms: r.p90Ms, unavailable: r.unavailable })),
    modules,
    modulesUnavailable: report.layersUnavailable,
    note: onCpu ? 'WebGPU ran on a software rasterizer (a CPU): the figures show relative cost, not GPU speed.' : undefined,
  };
}

/** Writes the report atomically: a failure at any step leaves no file (and no partial one) at `out`. */
export async function writeReport(input: string, out: string, options: ReportOptions): Promise<void> {
  const html = await makeReport(input, options);
  await writeFileAtomic(out, html, { notSameAs: input, what: '-o' });
}
