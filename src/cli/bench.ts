// `fcm-opt bench MODEL [--hw CFG] [--batch B] [--input-shape NAME=DIMS ...] [--max-memory BYTES] [--runs N] [--warmup W] [--block K] [--tune] [--concurrency C] [--sub-batches K|auto] [--json] [--no-litert]`:
// latency of fcm-opt fused and unfused against onnxruntime-node WebGPU and CPU (.tflite: LiteRT.js in headless Chromium), with
// per-module GPU times (src/bench/).
import type { Command } from 'commander';
import { invalid } from '../errors.js';
import { runBench } from '../bench/bench.js';
import { formatBench, progressBar } from '../bench/format.js';
import { batchOption, inputShapeOption, keepF32Option, maxMemoryOption, precisionOption, hwOption, subBatchesOption } from './options.js';
import type { FloatPrecision } from '../runtime/precision.js';
import { basename } from 'node:path';
import type { Plan } from '../planner/plan.js';
import { loadPlan } from '../planner/plan-load.js';
import { loadChecked } from '../pipeline/pipeline.js';
import { hwForCommand } from './plan.js';

interface BenchCliOptions {
  hw: string;
  batch?: number;
  inputShape?: Record<string, number[]>;
  runs: number;
  warmup: number;
  block: number;
  tune?: boolean;
  /** --no-tune-kernels: --tune leaves the pointwise layers on the rules' kernels. */
  tuneKernels: boolean;
  /** A plan saved by `fcm-opt plan --plan FILE` (a tuned one, with its kernel choices): the fused contestant runs it. */
  loadPlan?: string;
  json?: boolean;
  concurrency?: number;
  litert: boolean;
  maxMemory: number;
  precision: FloatPrecision;
  keepF32?: 'auto' | 'none' | string[];
  subBatches: number | 'auto';
}

const integer = (flag: string, min: number) => (value: string): number => {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) throw invalid(flag, `expected an integer >= ${min}, got '${value}'`);
  return n;
};

export function register(program: Command): void {
  program
    .command('bench')
    .description('time fcm-opt fused and unfused against onnxruntime-node (WebGPU and CPU) or, for .tflite, LiteRT.js, with per-module GPU times')
    .argument('<model>', 'an .onnx, .tflite, .task bundle (FILE.task#MEMBER), .keras, .h5 or TF.js model.json (Layers or graph)')
    .addOption(hwOption())
    .addOption(batchOption())
    .addOption(inputShapeOption())
    .option('--runs <n>', 'timed runs of each', integer('--runs', 1), 20)
    .option('--warmup <n>', 'untimed runs of each first', integer('--warmup', 0), 3)
    .option('--block <n>', 'timed runs of one contestant in a row before the next (a GPU slows down while it idles)', integer('--block', 1), 10)
    .option('--tune', 'the fused plan tuned on this GPU first (as plan --tune)')
    .option('--no-tune-kernels', "with --tune: keep the rules' kernel for every pointwise layer (time the fused modules only)")
    .option('--load-plan <file>', 'the fused contestant runs this plan (JSON of `fcm-opt plan --plan FILE`, e.g. a tuned one) instead of planning')
    .option('--concurrency <n>', 'also time throughput: images per second with n runs of the fused plan in flight, next to one at a time', integer('--concurrency', 1))
    .option('--json', 'print the report as JSON')
    .addOption(precisionOption("fcm-opt's contestants (onnxruntime runs the model as it is)"))
    .addOption(keepF32Option())
    .addOption(subBatchesOption())
    .option('--no-litert', '.tflite: skip LiteRT.js (it needs Chromium, and npm once to fetch the pinned package)')
    .addOption(maxMemoryOption())
    .action(async (model: string, o: BenchCliOptions) => {
      const showBar = !o.json && process.stderr.isTTY === true && process.stdout.isTTY === true;
      const bar = showBar ? progressBar(process.stderr, 'bench') : undefined;
      try {
        let plan: Plan | undefined;
        if (o.loadPlan && o.tune) throw invalid('--load-plan', 'runs a saved plan; --tune makes a new one: give one of them');
        if (o.loadPlan) plan = loadPlan(o.loadPlan, o.maxMemory);
        if (o.tune) {
          const { graph: g } = await loadChecked(model, { batch: o.batch, inputShapes: o.inputShape, maxMemory: o.maxMemory });
          const { tunePlan } = await import('../tune/tune.js');
          plan = (await tunePlan(g, await hwForCommand(o.hw), {
            model: basename(model), precision: o.precision, fp16: { keepF32: o.keepF32 }, maxMemory: o.maxMemory, kernels: o.tuneKernels,
            log: o.json ? undefined : (l) => process.stderr.write(`${l}\n`),
          })).plan;
        }
        const report = await runBench(model, { hw: o.hw, batch: o.batch, inputShapes: o.inputShape, runs: o.runs, warmup: o.warmup, block: o.block, plan, litert: o.litert, maxMemory: o.maxMemory, precision: o.precision, keepF32: o.keepF32, onProgress: bar?.update, concurrency: o.concurrency, subBatches: o.subBatches });
        bar?.end();
        process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : formatBench(report));
      } finally {
        bar?.end();
      }
    });
}
