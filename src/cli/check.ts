// `fcm-opt check MODEL [--hw CFG] [--unfused] [--json] [--per-layer] [--tolerance REL]`: the check of src/check/check.ts, its report
// on stdout (text or JSON); exit 1 over tolerance.

import { Command } from 'commander';
import { displayLine, invalid } from '../errors.js';
import { releaseGpu } from '../runtime/device.js';
import { checkFailure, formatCheck, runCheck } from '../check/check.js';
import { maxMemoryOption, parseInputShape, precisionOption } from './options.js';
import type { FloatPrecision } from '../runtime/precision.js';

export { checkFailure, formatCheck, runCheck, runOrt, type CheckOptions, type CheckReport, type LayerCheck, type OutputCheck } from '../check/check.js';

export function register(program: Command): void {
  program
    .command('check')
    .description('compare fcm-opt (WebGPU) with onnxruntime-node (CPU) on a fixed-seed input; exit 1 over tolerance. ' +
      'A .tflite model is compared with onnxruntime on the ONNX export of the imported graph; int8 models run with ' +
      'dequantized float kernels and are also compared with TFLite integer arithmetic (in LSB). Rank-4 inputs and ' +
      "outputs are NCHW (the IR's layout, also for TFLite files)")
    .argument('<model>', 'an .onnx or .tflite model')
    .option('--hw <cfg>', "GPU description for planning (.cfg/.json path, shipped name, or 'auto': the adapter)")
    .option('--unfused', 'run layer by layer (epilogues folded), without FCMs')
    .option('--json', 'print the report as JSON')
    .option('--per-layer', 'compare every intermediate tensor and name the first node that goes wrong')
    .option('--seed <n>', 'seed of the input', (v) => {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 0) throw invalid('--seed', `expected a non-negative integer, got '${v}'`);
      return n;
    })
    .option('--batch <n>', 'value for a symbolic batch dimension', (v) => {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n <= 0) throw invalid('--batch', `expected a positive integer, got '${v}'`);
      return n;
    })
    .option('--input-shape <name=shape>', 'static shape for an input, e.g. x=1x3x224x224 (repeatable)', parseInputShape)
    .option('--tolerance <rel>', 'relative tolerance: max |fcm-opt - onnxruntime| <= rel * max(1, max |onnxruntime|) per output (default 1e-4)', (v) => {
      const n = Number(v);
      if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw invalid('--tolerance', `expected a non-negative number, got '${v}'`);
      return n;
    })
    .addOption(precisionOption('what fcm-opt runs the model in (fp16 is checked under the f16 tolerance of src/runtime/compare.ts unless --tolerance is given)'))
    .addOption(maxMemoryOption())
    .action(async (model: string, o: { hw?: string; unfused?: boolean; json?: boolean; perLayer?: boolean; seed?: number; batch?: number; inputShape?: Record<string, number[]>; maxMemory?: number; tolerance?: number; precision?: FloatPrecision }) => {
      try {
        const r = await runCheck(model, { hw: o.hw, unfused: o.unfused, perLayer: o.perLayer, seed: o.seed, batch: o.batch, inputShapes: o.inputShape, maxMemory: o.maxMemory, tolerance: o.tolerance, precision: o.precision });
        process.stdout.write(o.json ? JSON.stringify(r, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2) + '\n' : formatCheck(r));
        if (!r.ok) {
          process.stderr.write(`fcm-opt: ${displayLine(checkFailure(r))}\n`);
          process.exitCode = 1;
        }
      } finally {
        await releaseGpu();
      }
    });
}
