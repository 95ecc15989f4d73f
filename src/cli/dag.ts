// `fcm-opt dag MODEL [-o FILE] [--batch N] [--input-shape name=1x3x640x640 ...]`: FusePlanner's layer
// DAG JSON of a model (src/planner/to-dag.ts), on stdout or written atomically (temp file, then rename).
import type { Command } from 'commander';
import { checkOutputTarget, writeFileAtomic } from '../export/write-atomic.js';
import { batchOption, inputShapeOption, maxMemoryOption } from './options.js';
import { tfliteDagFromFile } from '../../converters/tflite/dag.js';
import { validateDag } from '../planner/dag-load.js';
import { detectFormat, readModelFile } from '../graph/load.js';
import { loadChecked } from '../pipeline/pipeline.js';
import type { ImportOptions } from '../../converters/options.js';

export async function runDag(model: string, opts: { output?: string; batch?: number; inputShape?: Record<string, number[]>; maxMemory?: number }): Promise<string> {
  if (opts.output) await checkOutputTarget(opts.output, { notSameAs: model, what: '-o' });
  const importOpts: ImportOptions = { batch: opts.batch, inputShapes: opts.inputShape, maxMemory: opts.maxMemory };
  // The model check of every command first: `dag` writes nothing that `plan` would refuse.
  const { dag: checked } = await loadChecked(model, importOpts);
  // TFLite DAGs follow the FusePlanner reference's extractor (one entry per TFLite operator, NHWC shapes, quantization).
  // A bundle's member (FILE.task#MEMBER) is read from the bundle; its name is the source.
  const file = detectFormat(model) === 'tflite' || /\.task$/i.test(model) || model.includes('#') ? await readModelFile(model, { maxMemory: opts.maxMemory }) : undefined;
  const dag = file && detectFormat(file.bytes) === 'tflite'
    ? validateDag(await tfliteDagFromFile(file.bytes, { ...importOpts, source: file.source }), `${file.source} (layer DAG)`) : checked;
  const text = `${JSON.stringify(dag, null, 1)}\n`;
  if (opts.output) await writeFileAtomic(opts.output, text, { notSameAs: model, what: '-o' });
  return text;
}

export function register(program: Command): void {
  program
    .command('dag')
    .description("write FusePlanner's layer DAG (model_dag.json) of a model")
    .argument('<model>', 'ONNX, TFLite (also in a .task bundle: FILE.task#MEMBER) or Keras / TF.js model (.keras, .h5, TF.js Layers or graph model.json)')
    .option('-o, --output <file>', 'write the DAG to FILE instead of stdout')
    .addOption(batchOption())
    .addOption(inputShapeOption())
    .addOption(maxMemoryOption())
    .action(async (model: string, opts: { output?: string; batch?: number; inputShape?: Record<string, number[]>; maxMemory?: number }) => {
      const text = await runDag(model, opts);
      if (!opts.output) process.stdout.write(text);
    });
}
