// `fcm-opt dag MODEL [-o FILE] [--batch N] [--input-shape name:1x3x640x640 ...]`: FusePlanner's layer
// DAG JSON of a model (converters/dag.ts), on stdout or written atomically (temp file, then rename).
import { rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import { invalid } from '../errors.js';
import { detectFormat, loadModel } from '../../converters/load.js';
import { tfliteDagFromFile } from '../../converters/tflite/dag.js';
import { toDag } from '../../converters/dag.js';
import type { ImportOptions } from '../../converters/options.js';

/** `name:1x3x640x640` (or `name=...`); repeatable. The name is everything before the last ':' or '='. */
export function parseShapeOption(value: string, previous: Record<string, number[]> = Object.create(null)): Record<string, number[]> {
  const m = /^(.+)[:=]([0-9]+(?:[x,][0-9]+)*)$/.exec(value.trim());
  if (!m) throw invalid('--input-shape', `expected NAME:D1xD2x..., got '${value}'`);
  const dims = m[2].split(/[x,]/).map(Number);
  if (dims.some((d) => !Number.isSafeInteger(d) || d <= 0)) throw invalid('--input-shape', `dimensions must be positive integers in '${value}'`);
  const out: Record<string, number[]> = Object.create(null);
  Object.assign(out, previous);
  out[m[1]] = dims;
  return out;
}

function parsePositive(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw invalid('--batch', `expected a positive integer, got '${value}'`);
  return n;
}

export async function runDag(model: string, opts: { output?: string; batch?: number; inputShape?: Record<string, number[]> }): Promise<string> {
  const importOpts: ImportOptions = { batch: opts.batch, inputShapes: opts.inputShape };
  // TFLite DAGs follow the seed's extractor (one entry per TFLite operator, NHWC shapes, quantization).
  const dag = detectFormat(model) === 'tflite' ? await tfliteDagFromFile(model, importOpts) : toDag(await loadModel(model, importOpts));
  const text = `${JSON.stringify(dag, null, 1)}\n`;
  if (opts.output) await writeAtomically(opts.output, text);
  return text;
}

/** No partial file on error: write a temp file in the same folder, then rename over the target. */
export async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    await writeFile(tmp, text);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw invalid(path, `cannot write the output (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}

export function register(program: Command): void {
  program
    .command('dag')
    .description("write FusePlanner's layer DAG (model_dag.json) of a model")
    .argument('<model>', 'ONNX or TFLite model')
    .option('-o, --output <file>', 'write the DAG to FILE instead of stdout')
    .option('--batch <n>', 'value of a symbolic batch dimension (default 1)', parsePositive)
    .option('--input-shape <name:dims>', 'static shape of an input with symbolic dims, e.g. x:1x3x640x640 (repeatable)', parseShapeOption)
    .action(async (model: string, opts: { output?: string; batch?: number; inputShape?: Record<string, number[]> }) => {
      const text = await runDag(model, opts);
      if (!opts.output) process.stdout.write(text);
    });
}
