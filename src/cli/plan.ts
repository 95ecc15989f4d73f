// `fcm-opt plan MODEL_OR_DAG --hw CFG [--mode optimal|fuseplanner] [--json]`, also the default command
// (`fcm-opt MODEL --hw CFG`): commander's `isDefault` subcommand runs when the first operand is no
// subcommand's name, so it never shadows the other commands and adds no options to the root program.
import { basename, extname } from 'node:path';
import { Command, Option } from 'commander';
import { invalid, unsupported } from '../errors.js';
import type { Dag } from '../planner/dag.js';
import { loadModel } from '../../converters/load.js';
import { toDag } from '../../converters/dag.js';
import { loadDag, validateDag } from '../planner/dag-load.js';
import { formatPlan, planToJson } from '../planner/format.js';
import { loadHw } from '../planner/hw.js';
import { planFusion, planModes, type PlanMode } from '../planner/index.js';
import { overlappingLayers } from '../planner/fuseplanner/plan.js';

export interface PlanCliOptions {
  hw: string;
  mode: PlanMode;
  json?: boolean;
  batch?: number;
  inputShape?: Record<string, number[]>;
}

/** `--input-shape name=1x3x224x224` (repeatable; `,` also separates dimensions). */
export function parseInputShape(value: string, previous: Record<string, number[]> = {}): Record<string, number[]> {
  const m = /^([^=]+)=(\d+(?:[x,]\d+)*)$/.exec(value.trim());
  if (!m) throw invalid('--input-shape', `expected NAME=D1xD2x..., got '${value}'`);
  const dims = m[2].split(/[x,]/).map(Number);
  if (dims.some((d) => !Number.isSafeInteger(d) || d <= 0)) throw invalid('--input-shape', `dimensions must be positive integers in '${value}'`);
  return { ...previous, [m[1]]: dims };
}

function parseBatch(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw invalid('--batch', `expected a positive integer, got '${value}'`);
  return n;
}

/** A .json input is a FusePlanner layer DAG; models go through the converters. */
export async function loadPlanInput(path: string, options: Pick<PlanCliOptions, 'batch' | 'inputShape'>): Promise<Dag> {
  const ext = extname(path).toLowerCase();
  if (ext === '.json') {
    if (options.batch !== undefined || options.inputShape !== undefined) {
      throw invalid(path, '--batch and --input-shape apply to models, not to a layer DAG (.json)');
    }
    return loadDag(path);
  }
  if (ext === '.onnx' || ext === '.tflite') {
    const graph = await loadModel(path, { batch: options.batch, inputShapes: options.inputShape });
    // The same checks as a DAG file: the planners trust ids, edges and conv shapes.
    return validateDag(toDag(graph), `${path} (layer DAG)`);
  }
  throw unsupported(path, `unknown input type '${ext || 'no extension'}' (expected .onnx, .tflite or a layer DAG .json)`);
}

export async function runPlan(input: string, options: PlanCliOptions): Promise<string> {
  const hw = loadHw(options.hw);
  const dag = await loadPlanInput(input, options);
  const plan = planFusion(dag, hw, { mode: options.mode, model: basename(input) });
  if (options.json) return planToJson(plan);
  return formatPlan(plan, dag, { overlapping: options.mode === 'fuseplanner' ? overlappingLayers(plan) : undefined });
}

export function register(program: Command): void {
  program
    .command('plan', { isDefault: true })
    .description('choose which depthwise/pointwise convolutions to fuse (FCMs) and their tiles; the default command')
    .argument('<model_or_dag>', 'an .onnx or .tflite model, or a FusePlanner layer DAG (.json)')
    .requiredOption('--hw <cfg>', "GPU description: a .cfg/.json path, a name in hw_configs/ (h100, rtxa4000, ...) or 'auto'")
    .addOption(new Option('--mode <mode>', "'optimal': fcm-opt's planner; 'fuseplanner': the seed's, reproduced exactly").choices(planModes).default('optimal'))
    .option('--json', 'print the plan as JSON')
    .option('--batch <n>', 'value for a symbolic batch dimension (models only)', parseBatch)
    .option('--input-shape <name=shape>', 'static shape for an input, e.g. x=1x3x224x224 (repeatable; models only)', parseInputShape)
    .action(async (input: string, options: PlanCliOptions) => {
      process.stdout.write(await runPlan(input, options));
    });
}
