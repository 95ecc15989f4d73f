// `fcm-opt plan MODEL_OR_DAG --hw CFG [--mode optimal|fuseplanner] [--json]`, also the default command
// (`fcm-opt MODEL --hw CFG`): commander's `isDefault` subcommand runs when the first operand is no
// subcommand's name, so it never shadows the other commands and adds no options to the root program.
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { Command, Option } from 'commander';
import { FcmError, invalid, unsupported } from '../errors.js';
import { formatCount, formatPlan, planToJson } from '../planner/format.js';
import { fcmDomain, type Graph } from '../graph/ir.js';
import type { Dag, DagLayer } from '../planner/dag.js';
import { readOptimized } from '../export/read-optimized.js';
import type { Plan } from '../planner/plan.js';
import { compileGraph } from '../runtime/compile.js';
import { defaultLimits } from '../../kernels/program.js';
import type { HwConfig } from '../planner/hw-config.js';
import { releaseGpu } from '../runtime/device.js';
import { planFusion, planModes, type PlanMode } from '../planner/index.js';
import { overlappingLayers } from '../planner/fuseplanner/plan.js';
import { batchOf } from '../graph/util.js';
import { applyPlan } from '../rewrite/apply-plan.js';
import { exportOptimized } from '../export/optimized.js';
import { checkOutputTarget, writeFileAtomic } from '../export/write-atomic.js';
import { loadPlanSource, prepareInt8Graph, rewrite } from '../pipeline/pipeline.js';
import { isQuantizedGraph } from '../graph/passes/dequantize.js';
import { resolveHw } from '../pipeline/hw.js';
import { batchOption, inputShapeOption, keepF32Option, maxMemoryOption, precisionOption, hwOption } from './options.js';
import type { FloatPrecision } from '../runtime/precision.js';
import { elementBytes } from '../pipeline/pipeline.js';

export interface PlanCliOptions {
  hw: string;
  mode: PlanMode;
  json?: boolean;
  batch?: number;
  inputShape?: Record<string, number[]>;
  /** ImportOptions.maxMemory: budget for importing a model (default 4 GiB). */
  maxMemory?: number;
  /** Write the optimized model (fused nodes + functions) here. */
  output?: string;
  /** Also write the FusePlanner layer DAG / the plan JSON. */
  dag?: string;
  plan?: string;
  /** Time the plan's fused modules on this machine's GPU with tile variants; keep only those faster than LBL. */
  tune?: boolean;
  /** --no-tune-kernels: --tune leaves the pointwise layers on the rules' kernels (default true: it times their variants). */
  tuneKernels?: boolean;
  /** Plan for f16 tensors (2-byte elements in GMA and time; tiles staged in f32), tune in fp16. Default fp32. */
  precision?: FloatPrecision;
  /** --keep-f32: with --tune and fp16, the tuning sessions' f32 tensors (SessionOptions.fp16.keepF32). */
  keepF32?: 'auto' | 'none' | string[];
}

export { parseInputShape } from './options.js';

/** `--hw auto` describes the WebGPU adapter this machine has (the device is released again: planning needs no GPU). */
export async function hwForCommand(hw: string): Promise<HwConfig> {
  if (hw !== 'auto') return resolveHw(hw);
  try {
    return await resolveHw(hw);
  } catch (e) {
    // Planning needs no GPU: without one, say how to plan for a described one.
    if (e instanceof FcmError && e.kind === 'gpu') throw new FcmError('gpu', `${e.message}; or plan for a described GPU: --hw h100 (names in hw_configs/) or --hw FILE.cfg`);
    throw e;
  } finally {
    await releaseGpu();
  }
}

/** The files a command writes, checked before any work (write-atomic.ts checkOutputTarget): none may be an input
 *  (the model, a --hw file), a device or a folder, and no two may be the same file. */
export async function checkOutputs(outputs: ReadonlyArray<readonly [what: string, path: string | undefined]>, inputs: readonly string[]): Promise<void> {
  const seen = new Map<string, string>();
  for (const [what, path] of outputs) {
    if (path === undefined) continue;
    const target = await checkOutputTarget(path, { notSameAs: inputs, what });
    const other = seen.get(target);
    if (other !== undefined) throw invalid(`${what} ${path}`, `is also the ${other} output; give each output its own file`);
    seen.set(target, what);
  }
}

/** The --hw value as an input file to protect from being overwritten, when it names one (not 'auto' or a shipped name). */
export const hwInputs = (hw: string | undefined): string[] => (hw && hw !== 'auto' && existsSync(hw) ? [hw] : []);

/** Dispatches of the float executor's schedule for `g` (WebGPU's default limits), or why there is none. */
function dispatchCount(g: Graph, plan: 'unfused' | Plan): number | string {
  try {
    const c = compileGraph(rewrite(g, 'fp32', plan), { ...defaultLimits, maxStorageBufferBindingSize: 1 << 27, maxBufferSize: 1 << 28 });
    return c.steps.length;
  } catch (e) {
    if (e instanceof FcmError) return 'n/a';
    throw e;
  }
}

/** `-o`'s report, as onnxsim prints one: nodes, dispatches, GMA and estimated time before and after. */
export function optimizedSummary(graph: Graph, plan: Plan, path: string, bytes: number): string {
  const fused = rewrite(graph, 'fp32', plan), lbl = rewrite(graph, 'fp32', 'unfused');
  const t = plan.totals;
  const rows: string[][] = [
    ['', 'LBL', 'optimized'],
    ['nodes', String(lbl.nodes.length), String(fused.nodes.length)],
    ['dispatches', String(dispatchCount(graph, 'unfused')), String(dispatchCount(graph, plan))],
    ['conv GMA (elements)', formatCount(t.gmaUnfused), formatCount(t.gma)],
  ];
  if (t.timeUs !== undefined) rows.push(['est. conv time (us)', (t.timeUsUnfused ?? t.timeUs).toFixed(1), t.timeUs.toFixed(1)]);
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const fcms = plan.modules.filter((m) => m.layers.length > 1).length;
  return [
    `wrote ${path} (${(bytes / 1e6).toFixed(2)} MB, ${fcms} FCM${fcms === 1 ? '' : 's'}); the model as imported has ${graph.nodes.length} nodes, LBL: layer by layer with activations folded`,
    ...rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ').trimEnd()),
    '',
  ].join('\n');
}

/** A layer DAG good enough to print a recorded plan: each module's layers named by its nodes, shapes unknown. */
function dagOfPlan(plan: Plan): Dag {
  const dag: DagLayer[] = [];
  // A module lists its nodes, not which layer each belongs to: all of them go with its first layer.
  for (const m of plan.modules) {
    m.layers.forEach((id, i) => {
      const nodes = i === 0 ? m.nodes ?? [] : [];
      dag[id] = { id, name: i === 0 ? `layer ${id}` : '', nodes, parents: [], children: [], activation: '0' } as unknown as DagLayer;
    });
  }
  return dag as Dag;
}

/**
 * `plan` of fcm-opt's own optimized .onnx: the plan it was written with (from its metadata, or rebuilt from its fused
 * nodes), not a new plan of a graph whose pairs are already fused. Writing it again or tuning it needs the original.
 */
async function optimizedPlanText(input: string, graph: Graph, options: PlanCliOptions): Promise<string> {
  const fcms = graph.nodes.filter((n) => n.domain === fcmDomain).length;
  if (options.output || options.tune || options.dag) {
    throw unsupported(input, `is an optimized model (${fcms} fused modules): -o, --dag and --tune take the original model`);
  }
  const o = await readOptimized(input, { maxMemory: options.maxMemory });
  if (options.plan) await writeFileAtomic(options.plan, planToJson(o.plan), { notSameAs: [input], what: '--plan' });
  if (options.json) return planToJson(o.plan);
  const how = o.planRecorded ? `the plan recorded in it (for ${o.plan.hw})` : 'its plan rebuilt from the fused nodes (the file has no recorded plan: no estimates)';
  return `${input} is an optimized model with ${fcms} fused modules; ${how}. To plan again (another --hw), give the original model.\n\n`
    + formatPlan(o.plan, dagOfPlan(o.plan));
}

export async function runPlan(input: string, options: PlanCliOptions): Promise<string> {
  const outputs = [['--dag', options.dag], ['--plan', options.plan], ['-o', options.output]] as const;
  const inputs = [input, ...hwInputs(options.hw)];
  await checkOutputs(outputs, inputs);
  const hw = await hwForCommand(options.hw);
  const { dag, graph } = await loadPlanSource(input, options);
  if (graph?.nodes.some((n) => n.domain === fcmDomain)) return optimizedPlanText(input, graph, options);
  const fp16 = options.precision === 'fp16';
  if (fp16 && options.mode !== 'optimal') throw unsupported(input, "--precision fp16 plans with 2-byte elements in the optimal planner: use --mode optimal (the FusePlanner reference's mode counts elements)");
  let plan = planFusion(dag, hw, {
    mode: options.mode, model: basename(input), ...(graph && options.mode === 'optimal' ? { batch: batchOf(graph) } : {}),
    ...(fp16 ? { dtypeBytes: elementBytes('fp16'), tileBytes: 4 } : {}),
  });
  let tuneNote = '';
  if (options.tune) {
    if (!graph) throw invalid(input, '--tune times the plan on this machine\'s GPU and needs a model (.onnx, .tflite), not a layer DAG');
    if (options.mode !== 'optimal') throw unsupported(input, "--tune tunes the optimal planner's plan: use --mode optimal");
    const { tunePlan } = await import('../tune/tune.js');
    try {
      const r = await tunePlan(graph, hw, { model: basename(input), precision: options.precision, fp16: { keepF32: options.keepF32 }, maxMemory: options.maxMemory, kernels: options.tuneKernels !== false, log: options.json ? undefined : (l) => process.stderr.write(`${l}\n`) });
      plan = r.plan;
      const kept = plan.modules.filter((m) => m.tuned).length;
      tuneNote = `tuned on this GPU: ${r.rows.length} fused modules timed with ${r.rows.length ? Object.keys(r.rows[0].fusedUs).length : 0} tile variants each; ` +
        `${kept} kept (each faster than its layers run LBL), ${r.excluded.length} pairs left unfused\n` +
        (options.tuneKernels === false ? '' : `${r.kernelRows.length} pointwise layer${r.kernelRows.length === 1 ? '' : 's'} timed with their kernel variants; ${r.kernelRows.filter((k) => k.chosen).length} take a variant other than the rule's\n`);
    } finally {
      await releaseGpu();
    }
  }
  if (options.output) {
    if (!graph) throw invalid(input, '-o writes an optimized model and needs a model (.onnx, .tflite), not a layer DAG');
    if (options.mode === 'fuseplanner') throw unsupported(input, "-o needs disjoint modules: use --mode optimal (the FusePlanner reference's mode may put one layer in two pairs)");
  }
  // Every output is produced before any is written, so an error leaves none of them behind.
  const files: Array<[string, string, () => Uint8Array | string]> = [];
  if (options.dag) files.push(['--dag', options.dag, () => `${JSON.stringify(dag, null, 1)}\n`]);
  if (options.plan) files.push(['--plan', options.plan, () => planToJson(plan)]);
  // A quantized model is written as the integer executor rewrites it (its Adds and requantizing activations kept
  // as nodes, pads folded), in QDQ form.
  const optimizedGraph = (g: Graph) => (isQuantizedGraph(g) ? prepareInt8Graph(g, plan, () => hw) : applyPlan(g, plan));
  if (options.output) files.push(['-o', options.output, () => exportOptimized(optimizedGraph(graph!), plan)]);
  const contents = files.map(([what, path, make]) => [what, path, make()] as const);
  for (const [what, path, data] of contents) await writeFileAtomic(path, data, { notSameAs: inputs, what });
  // What -o wrote, as a before/after table (on stderr with --json, whose stdout is the plan alone).
  const written = contents.find(([what]) => what === '-o');
  if (written) {
    const summary = optimizedSummary(graph!, plan, options.output!, written[2].length);
    if (options.json) process.stderr.write(summary);
    else tuneNote += `\n${summary}`;
  }
  if (options.json) return planToJson(plan);
  return formatPlan(plan, dag, { overlapping: options.mode === 'fuseplanner' ? overlappingLayers(plan) : undefined }) + tuneNote;
}

export function register(program: Command): void {
  program
    .command('plan', { isDefault: true })
    .description('choose which depthwise/pointwise convolutions to fuse (FCMs) and their tiles; the default command')
    .argument('<model_or_dag>', 'an .onnx, .tflite, .task bundle (FILE.task#MEMBER), .keras, .h5 or TF.js model.json (Layers or graph), or a FusePlanner layer DAG (.json)')
    .addOption(hwOption())
    .addOption(new Option('--mode <mode>', "'optimal': fcm-opt's planner; 'fuseplanner': the FusePlanner reference's, reproduced exactly").choices(planModes).default('optimal'))
    .option('--json', 'print the plan as JSON')
    .addOption(batchOption(true))
    .addOption(inputShapeOption(true))
    .option('-o, --output <file>', 'write the optimized ONNX model (fused nodes in domain ai.fcm.opt, with functions onnxruntime can run)')
    .option('--dag <file>', "also write FusePlanner's layer DAG")
    .option('--plan <file>', 'also write the plan as JSON')
    .option('--tune', "time each fused module on this machine's GPU with tile variants; keep the fastest, and only modules faster than their layers run LBL; then each pointwise layer left unfused with its kernel variants (kept only past a 5% margin, or the spread of the rule's kernels timed twice where larger)")
    .option('--no-tune-kernels', "with --tune: keep the rules' kernel for every pointwise layer")
    .addOption(precisionOption('what the plan is for (and -o, --tune)'))
    .addOption(keepF32Option())
    .addOption(maxMemoryOption())
    .action(async (input: string, options: PlanCliOptions) => {
      process.stdout.write(await runPlan(input, options));
    });
}
