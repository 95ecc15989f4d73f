// `fcm-opt run MODEL [--hw CFG] [--unfused] --input IN.npy --output OUT.npy`: runs the model on the WebGPU
// executor and writes its first output as .npy (float32, the layout the model declares).

import { Command } from 'commander';
import { FcmError, invalid } from '../errors.js';
import { readNpy, writeNpy } from '../npy.js';
import { createSession } from '../pipeline/session.js';
import { loadModel } from '../graph/load.js';
import { maxMemoryOption, precisionOption } from './options.js';
import type { FloatPrecision } from '../runtime/precision.js';
import { checkOutputTarget } from '../export/write-atomic.js';
import { hwInputs } from './plan.js';
import { releaseGpu } from '../runtime/device.js';

export interface RunCliOptions {
  hw?: string;
  unfused?: boolean;
  input: string;
  output: string;
  /** ImportOptions.maxMemory: budget for importing the model (default 4 GiB). */
  maxMemory?: number;
  /** Float kernels' storage (default fp32). */
  precision?: FloatPrecision;
}

export async function runModelFile(model: string, o: RunCliOptions): Promise<void> {
  // The output may be none of the inputs (same path or inode), and not a device: refused before any work.
  const target = { notSameAs: [model, o.input, ...hwInputs(o.hw)], what: '--output' };
  await checkOutputTarget(o.output, target);
  const x = await readNpy(o.input, o.maxMemory).catch((e: unknown) => {
    // An integer .npy is the wrong input for the float32 model (exit 2), not an unsupported model.
    if (e instanceof FcmError && e.kind === 'unsupported' && /: dtype '/.test(e.message)) throw new FcmError('invalid', `${e.message}; the model's input is float32`);
    throw e;
  });
  // The input's shape fixes symbolic dimensions (batch included).
  // Imported here so that the memory budget applies (createSession takes the graph as it is).
  const graph = await loadModel(model, { batch: x.shape[0], maxMemory: o.maxMemory });
  const session = await createSession(graph, { hw: o.hw, plan: o.unfused ? 'unfused' : 'auto', batch: x.shape[0], precision: o.precision });
  try {
    if (session.inputNames.length !== 1) {
      throw invalid(model, `the model has ${session.inputNames.length} inputs (${session.inputNames.join(', ')}); run takes one --input`);
    }
    const name = session.inputNames[0];
    const want = session.inputShapes[name];
    if (want.length !== x.shape.length || want.some((d, k) => d !== x.shape[k])) {
      throw invalid(o.input, `has shape (${x.shape.join(', ')}), input '${name}' of the model is [${want.join(',')}]`);
    }
    const out = await session.run({ [name]: x.data });
    const y = out[session.outputNames[0]];
    await writeNpy(o.output, y, target);
  } finally {
    session.dispose();
  }
}

export function register(program: Command): void {
  program
    .command('run')
    .description('run a model on the WebGPU executor: .npy float32 input, first output written as .npy')
    .argument('<model>', "an .onnx or .tflite model (rank-4 inputs and outputs are NCHW, the IR's layout, also for .tflite; int8 .tflite runs dequantized on float kernels)")
    .option('--hw <cfg>', "GPU description for planning (.cfg/.json path, shipped name, or 'auto': the adapter)")
    .option('--unfused', 'run layer by layer (epilogues folded), without FCMs')
    .requiredOption('--input <file>', 'input tensor (.npy, float32)')
    .requiredOption('--output <file>', 'where to write the first output (.npy, float32)')
    .addOption(precisionOption())
    .addOption(maxMemoryOption())
    .action(async (model: string, o: RunCliOptions) => {
      try {
        await runModelFile(model, o);
      } finally {
        await releaseGpu();
      }
    });
}
