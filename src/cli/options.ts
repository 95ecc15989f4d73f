// Option parsers shared by the subcommands.
import { Option } from 'commander';
import { defaultMaxMemory } from '../../converters/options.js';
import { invalid } from '../errors.js';
import { floatPrecisions } from '../runtime/precision.js';

/** `--input-shape x=1x3x640x640` or `x:1x3x640x640` (repeatable; ',' also separates dims). The name is
 *  everything before the last '=' or ':', so names containing ':' work with '='. */
export function parseInputShape(value: string, previous: Record<string, number[]> = Object.create(null)): Record<string, number[]> {
  const m = /^(.+)[:=]([0-9]+(?:[x,][0-9]+)*)$/.exec(value.trim());
  if (!m) throw invalid('--input-shape', `expected NAME=D1xD2x... (or NAME:D1xD2x...), got '${value}'`);
  const dims = m[2].split(/[x,]/).map(Number);
  if (dims.some((d) => !Number.isSafeInteger(d) || d <= 0)) throw invalid('--input-shape', `dimensions must be positive integers in '${value}'`);
  const out: Record<string, number[]> = Object.create(null);
  Object.assign(out, previous);
  out[m[1]] = dims;
  return out;
}

/** `--input-shape NAME=D1xD2x...` (or NAME:...), repeatable: the one spelling every command that imports a model takes. */
export function inputShapeOption(modelsOnly = false): Option {
  return new Option('--input-shape <name=shape>', `static shape for an input with symbolic dims, e.g. x=1x3x224x224 or x:1x3x224x224 (repeatable${modelsOnly ? '; models only' : ''})`)
    .argParser(parseInputShape);
}

/** `--batch N`: the value of a symbolic first (batch) dimension. */
export function batchOption(modelsOnly = false): Option {
  return new Option('--batch <n>', `value for a symbolic batch dimension (default 1${modelsOnly ? '; models only' : ''})`).argParser(parseBatch);
}

export function parseBatch(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw invalid('--batch', `expected a positive integer, got '${value}'`);
  return n;
}

const byteUnits: Record<string, number> = { '': 1, B: 1, K: 2 ** 10, KB: 2 ** 10, KIB: 2 ** 10, M: 2 ** 20, MB: 2 ** 20, MIB: 2 ** 20, G: 2 ** 30, GB: 2 ** 30, GIB: 2 ** 30, T: 2 ** 40, TB: 2 ** 40, TIB: 2 ** 40 };

/** `--max-memory 4G`, `512M`, `1.5G` or plain bytes (units are binary: 1K = 1024 bytes). */
export function parseMaxMemory(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = m ? byteUnits[m[2].toUpperCase()] : undefined;
  const bytes = m && unit ? Math.floor(Number(m[1]) * unit) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw invalid('--max-memory', `expected a positive number of bytes, optionally with a unit K, M, G or T (e.g. 4G, 512M), got '${value}'`);
  }
  return bytes;
}

/** `--precision fp32|fp16`: what the float kernels keep tensors in (fp16: f16 in memory, f32 arithmetic). */
export function precisionOption(what = 'tensors in GPU memory'): Option {
  return new Option('--precision <p>', `${what}: fp32, or fp16 (f16 storage, f32 accumulation; needs the adapter feature shader-f16)`)
    .choices([...floatPrecisions])
    .default('fp32');
}

/** `--sub-batches auto|K`: SessionOptions.subBatches (src/pipeline/session.ts autoSubBatches says what 'auto' splits). */
export function subBatchesOption(): Option {
  return new Option('--sub-batches <k>', "run each batch as k sub-batches in flight, so that the host's copy of one overlaps the GPU's work on the one before: 'auto' (two halves of a batch >= 16 whose inputs take >= 4 MiB), a number dividing the batch, or 1 (off)")
    .argParser(parseSubBatches)
    .default('auto');
}

export function parseSubBatches(value: string): number | 'auto' {
  if (value.trim() === 'auto') return 'auto';
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw invalid('--sub-batches', `expected 'auto' or an integer >= 1, got '${value}'`);
  return n;
}

/** `--keep-f32 auto|none|NAMES`: fp16 sessions' tensors kept f32 (SessionOptions.fp16.keepF32; NAMES comma-separated). */
export function keepF32Option(): Option {
  return new Option('--keep-f32 <tensors>', "fp16: tensors kept f32: 'auto' (those whose f16 rounding a node amplifies, found by a calibration run), 'none', or names separated by commas")
    .argParser(parseKeepF32)
    .default('auto');
}

export function parseKeepF32(value: string): 'auto' | 'none' | string[] {
  if (value === 'auto' || value === 'none') return value;
  const names = value.split(',').map((t) => t.trim()).filter((t) => t);
  if (!names.length) throw invalid('--keep-f32', `expected 'auto', 'none' or tensor names separated by commas, got '${value}'`);
  return names;
}

/** The memory budget option of every command that reads a model: ImportOptions.maxMemory, charged by the importers
 *  as they allocate, and checked against the process's resident memory before the executor's GPU buffers and
 *  onnxruntime's reference session are made (src/memory-budget.ts; over it: exit 4). */
export function maxMemoryOption(): Option {
  return new Option('--max-memory <bytes>', "memory budget of the command (import, planning, the session's GPU buffers, check's onnxruntime), in bytes or with a unit (4G, 512M); over it: exit 4")
    .argParser(parseMaxMemory)
    .default(defaultMaxMemory, '4G');
}

/** `--hw`, the same on every command: a description file, a shipped name, or 'auto' (the default: this machine's
 *  WebGPU adapter, described from its info and limits). */
export const hwOption = () => new Option('--hw <cfg>', "GPU description: a .cfg/.json path, a name in hw_configs/ (h100, rtxa4000, ...) or 'auto' (this machine's WebGPU adapter)").default('auto');
