// `fcm-opt check MODEL [--hw CFG] [--unfused] [--json] [--per-layer] [--tolerance REL]`: the check of src/check/check.ts, its report
// on stdout (text or JSON); exit 1 over tolerance.

import { Command } from 'commander';
import { displayLine, invalid } from '../errors.js';
import { releaseGpu } from '../runtime/device.js';
import { checkFailure, formatCheck, runCheck } from '../check/check.js';
import { batchOption, inputShapeOption, keepF32Option, maxMemoryOption, precisionOption, hwOption } from './options.js';
import { extname } from 'node:path';
import { loadModel } from '../graph/load.js';
import { readNpy } from '../npy.js';
import { readNpz, writeNpz } from '../npz.js';
import { checkOutputTarget } from '../export/write-atomic.js';

const nonNegative = (flag: string) => (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw invalid(flag, `expected a non-negative number, got '${v}'`);
  return n;
};

/** `--load-inputs`: an .npz of arrays named as the inputs, or an .npy for a one-input model (name filled in later). */
async function loadInputs(file: string, maxMemory?: number): Promise<Record<string, { data: Float32Array; shape: number[] }> | { unnamed: { data: Float32Array; shape: number[] } }> {
  const ext = extname(file).toLowerCase();
  if (ext === '.npz') return Object.fromEntries(await readNpz(file, maxMemory));
  if (ext === '.npy') return { unnamed: await readNpy(file, maxMemory) };
  throw invalid(file, '--load-inputs takes an .npz (arrays named as the inputs) or an .npy (a one-input model)');
}
import type { FloatPrecision } from '../runtime/precision.js';
import { loadPlan } from '../planner/plan-load.js';

export { checkFailure, formatCheck, runCheck, runOrt, type CheckOptions, type CheckReport, type LayerCheck, type OutputCheck } from '../check/check.js';

/** One `--classes` value, NAME or NAME@AXIS (names may hold ':' and ','), into the map of those before. */
export function classesArg(v: string, prev: Record<string, number>): Record<string, number> {
  const m = /^(.+)@(-?\d+)$/.exec(v);
  return { ...prev, [m ? m[1] : v]: m ? Number(m[2]) : -1 };
}

export function register(program: Command): void {
  program
    .command('check')
    .description('compare fcm-opt (WebGPU) with onnxruntime-node (CPU) on a fixed-seed input; exit 1 over tolerance. ' +
      'A .tflite or Keras model is compared with onnxruntime on the ONNX export of the imported graph; int8 models run with ' +
      'dequantized float kernels and are also compared with TFLite integer arithmetic (in LSB). Rank-4 inputs and ' +
      "outputs are NCHW (the IR's layout, also for TFLite files)")
    .argument('<model>', 'an .onnx, .tflite, .task bundle (FILE.task#MEMBER), .keras, .h5 or TF.js model.json (Layers or graph)')
    .addOption(hwOption())
    .option('--unfused', 'run layer by layer (epilogues folded), without FCMs')
    .option('--load-plan <file>', 'check this plan (JSON of `fcm-opt plan --plan FILE`, e.g. a tuned one) instead of planning')
    .option('--json', 'print the report as JSON')
    .option('--per-layer', 'compare every intermediate tensor and name the first node that goes wrong (squeeze-excite blocks run as their layers)')
    .option('--seed <n>', 'seed of the input', (v) => {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 0) throw invalid('--seed', `expected a non-negative integer, got '${v}'`);
      return n;
    })
    .addOption(batchOption())
    .addOption(inputShapeOption())
    .option('--tolerance <rel>', 'relative tolerance: max |fcm-opt - onnxruntime| <= rel * max(1, max |onnxruntime|) per output (default 1e-4)', nonNegative('--tolerance'))
    .option('--atol <a>', 'per-element criterion instead (as polygraphy): |fcm-opt - onnxruntime| <= atol + rtol * |onnxruntime| everywhere (default 0)', nonNegative('--atol'))
    .option('--rtol <r>', 'the relative part of that criterion (default 0)', nonNegative('--rtol'))
    .option('--load-inputs <file>', 'inputs from an .npz (arrays named as the inputs) or an .npy (a one-input model) instead of seeded ones')
    .option('--save-inputs <file>', 'write the inputs both sides got as .npz')
    .addOption(precisionOption('what fcm-opt runs the model in (fp16: checked under the f16 tolerance of src/runtime/compare.ts unless --tolerance is given)'))
    .addOption(keepF32Option())
    .option('--classes <output>', 'a classification output (NAME, or NAME@AXIS for its class axis, default the last; repeatable): ' +
      'top-1 and top-5 compared per position of the other axes (outputs a Softmax makes are classifications already)', classesArg, {})
    .addOption(maxMemoryOption())
    .action(async (model: string, o: { classes?: Record<string, number>; hw?: string; unfused?: boolean; loadPlan?: string; json?: boolean; perLayer?: boolean; seed?: number; batch?: number; inputShape?: Record<string, number[]>; maxMemory?: number; tolerance?: number; atol?: number; rtol?: number; loadInputs?: string; saveInputs?: string; precision?: FloatPrecision; keepF32?: 'auto' | 'none' | string[] }) => {
      try {
        if (o.tolerance !== undefined && (o.atol !== undefined || o.rtol !== undefined)) throw invalid('--tolerance', 'give either --tolerance or --atol/--rtol');
        if (o.loadPlan && o.unfused) throw invalid('--load-plan', 'checks a saved plan; --unfused checks none: give one of them');
        const plan = o.loadPlan ? loadPlan(o.loadPlan, o.maxMemory) : undefined;
        const save = o.saveInputs;
        if (save && extname(save).toLowerCase() !== '.npz') throw invalid(save, '--save-inputs writes an .npz');
        const target = { notSameAs: [model, ...(o.loadInputs ? [o.loadInputs] : [])], what: '--save-inputs' };
        if (save) await checkOutputTarget(save, target);
        let inputs: Record<string, { data: Float32Array; shape: number[] }> | undefined;
        let batch = o.batch;
        if (o.loadInputs) {
          const loaded = await loadInputs(o.loadInputs, o.maxMemory);
          const first = 'unnamed' in loaded ? loaded.unnamed : Object.values(loaded)[0];
          batch ??= first?.shape[0];
          if ('unnamed' in loaded) {
            // The one input's name comes from the model: read it as the check will.
            const g = await loadModel(model, { batch, inputShapes: o.inputShape, maxMemory: o.maxMemory });
            if (g.inputs.length !== 1) throw invalid(o.loadInputs, `an .npy gives one input; the model has ${g.inputs.length} (${g.inputs.join(', ')}): use an .npz`);
            inputs = { [g.inputs[0]]: loaded.unnamed };
          } else inputs = loaded;
        }
        const onInputs = save ? (feeds: Record<string, { data: Float32Array; shape: number[] }>) => writeNpz(save, new Map(Object.entries(feeds)), target) : undefined;
        const r = await runCheck(model, { hw: o.hw, unfused: o.unfused, plan, perLayer: o.perLayer, seed: o.seed, batch, inputShapes: o.inputShape, maxMemory: o.maxMemory, tolerance: o.tolerance, atol: o.atol, rtol: o.rtol, inputs, onInputs, precision: o.precision, keepF32: o.keepF32, classes: o.classes });
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
