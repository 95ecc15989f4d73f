// `fcm-opt run MODEL [--hw CFG] [--unfused] [--input SPEC ... | --image FILE ...] [--output OUT.npz|OUT.npy] [--top K] [--sub-batches K|auto] [--json]`:
// runs the model on the WebGPU executor. Inputs: `name=file.npy`, `file.npy` (a one-input model) or `file.npz` (arrays
// named as the inputs), repeatable; or PNG/JPEG images for a one-input image model (src/cli/image.ts: resized,
// normalised with --mean/--std/--scale, laid out as the input); without either, the seeded inputs `check` uses. Prints a line per output
// (shape, range, mean, and with --top K the K largest values of each row); --output writes every output (.npz) or
// the only one (.npy).

import { extname } from 'node:path';
import { Command } from 'commander';
import { FcmError, invalid } from '../errors.js';
import { type NpyArray, readNpy, writeNpy } from '../npy.js';
import { readNpz, writeNpz } from '../npz.js';
import { createSession } from '../pipeline/session.js';
import { loadChecked } from '../pipeline/pipeline.js';
import type { Graph } from '../graph/ir.js';
import { seededInput } from '../runtime/compare.js';
import { inputShapeOption, maxMemoryOption, parseBatch, precisionOption, hwOption, subBatchesOption } from './options.js';
import type { FloatPrecision } from '../runtime/precision.js';
import { checkOutputTarget } from '../export/write-atomic.js';
import { hwInputs } from './plan.js';
import { releaseGpu } from '../runtime/device.js';
import { imagesToTensor, parseChannelValues, readImage, type RgbImage } from './image.js';
import { defaultMaxMemory } from '../../converters/options.js';
import { loadPlan } from '../planner/plan-load.js';

export interface RunCliOptions {
  hw?: string;
  unfused?: boolean;
  /** A saved plan to run (`fcm-opt plan --plan FILE`) instead of planning; not with unfused. */
  loadPlan?: string;
  /** `name=file.npy`, `file.npy` or `file.npz`. */
  input?: string[];
  output?: string;
  seed?: number;
  batch?: number;
  inputShape?: Record<string, number[]>;
  top?: number;
  json?: boolean;
  /** ImportOptions.maxMemory: budget for importing the model and reading inputs (default 4 GiB). */
  maxMemory?: number;
  /** Float kernels' storage (default fp32). */
  precision?: FloatPrecision;
  /** PNG or JPEG files, one per batch item of the model's one input (instead of --input). */
  image?: string[];
  mean?: number[];
  std?: number[];
  scale?: number;
  /** SessionOptions.subBatches (default 'auto'). */
  subBatches?: number | 'auto';
}

interface InputSource { name?: string; file: string }

export function parseInputSpec(value: string, previous: InputSource[] = []): InputSource[] {
  const m = /^([^=]+)=(.+)$/.exec(value);
  // A path may contain '='; it names an input only when the part before it is no path.
  const named = m && !m[1].includes('/') && !/\.(npy|npz)$/i.test(m[1]);
  return [...previous, named ? { name: m[1], file: m[2] } : { file: value }];
}

/** Reads a float .npy, telling an integer .npy (the wrong input for a float model, exit 2) from an unsupported file. */
async function readFloatNpy(file: string, maxMemory?: number): Promise<NpyArray> {
  return readNpy(file, maxMemory).catch((e: unknown) => {
    if (e instanceof FcmError && e.kind === 'unsupported' && /: dtype '/.test(e.message)) throw new FcmError('invalid', `${e.message}; the model's input is float32`);
    throw e;
  });
}

/** The arrays the --input options name, by model input (names checked later, against the model). */
async function readInputs(sources: InputSource[], maxMemory?: number): Promise<{ byName: Map<string, { a: NpyArray; from: string }>; unnamed?: { a: NpyArray; from: string } }> {
  const byName = new Map<string, { a: NpyArray; from: string }>();
  let unnamed: { a: NpyArray; from: string } | undefined;
  const put = (name: string, a: NpyArray, from: string) => {
    if (byName.has(name)) throw invalid(from, `gives input '${name}' again (also in ${byName.get(name)!.from})`);
    byName.set(name, { a, from });
  };
  for (const s of sources) {
    if (extname(s.file).toLowerCase() === '.npz') {
      if (s.name) throw invalid(`--input ${s.name}=${s.file}`, 'an .npz names its arrays itself; give it without NAME=');
      for (const [k, a] of await readNpz(s.file, maxMemory)) put(k, a, `${s.file}: '${k}'`);
    } else if (s.name) put(s.name, await readFloatNpy(s.file, maxMemory), s.file);
    else {
      if (unnamed) throw invalid(s.file, `a second unnamed --input (after ${unnamed.from}): name them, --input NAME=FILE.npy`);
      unnamed = { a: await readFloatNpy(s.file, maxMemory), from: s.file };
    }
  }
  return { byName, unnamed };
}

/** Feeds by model input, with where each came from. */
function matchInputs(g: Graph, model: string, read: Awaited<ReturnType<typeof readInputs>>, seed: number): Map<string, { a: NpyArray; from: string }> {
  const feeds = new Map(read.byName);
  for (const [name, { from }] of feeds) {
    if (!g.inputs.includes(name)) throw invalid(from, `names input '${name}', but the model's inputs are ${g.inputs.map((x) => `'${x}'`).join(', ')}`);
  }
  if (read.unnamed) {
    if (g.inputs.length !== 1) {
      throw invalid(model, `the model has ${g.inputs.length} inputs (${g.inputs.join(', ')}); name each: --input NAME=FILE.npy, or one .npz`);
    }
    feeds.set(g.inputs[0], read.unnamed);
  }
  const given = feeds.size;
  g.inputs.forEach((x, i) => {
    if (feeds.has(x)) return;
    if (given > 0) throw invalid(model, `input '${x}' is not given (--input ${x}=FILE.npy)`);
    const shape = [...g.tensors.get(x)!.shape];
    feeds.set(x, { a: { shape, data: seededInput(shape.reduce((p, q) => p * q, 1), seed + i) }, from: `seeded (seed ${seed + i})` });
  });
  for (const [name, { a, from }] of feeds) {
    const want = g.tensors.get(name)!.shape;
    if (want.length !== a.shape.length || want.some((d, k) => d !== a.shape[k])) {
      throw invalid(from, `has shape (${a.shape.join(', ')}), input '${name}' of the model is [${want.join(',')}]`);
    }
  }
  return feeds;
}

export interface OutputSummary { name: string; shape: number[]; min: number; max: number; mean: number; top?: Array<Array<{ index: number; value: number }>> }

/** Range and mean of an output, and with `top` the largest `top` values of each row (first dimension). */
export function summarize(name: string, a: NpyArray, top?: number): OutputSummary {
  let min = Infinity, max = -Infinity, sum = 0;
  for (const v of a.data) { min = Math.min(min, v); max = Math.max(max, v); sum += v; }
  const s: OutputSummary = { name, shape: a.shape, min, max, mean: a.data.length ? sum / a.data.length : NaN };
  if (top) {
    const rows = a.shape.length > 1 ? a.shape[0] : 1;
    const n = rows ? a.data.length / rows : 0;
    s.top = [];
    for (let r = 0; r < rows; r++) {
      const idx = Array.from({ length: n }, (_, i) => i).sort((p, q) => (a.data[r * n + q] - a.data[r * n + p]) || p - q);
      s.top.push(idx.slice(0, Math.min(top, n)).map((index) => ({ index, value: a.data[r * n + index] })));
    }
  }
  return s;
}

const num = (v: number) => (Number.isFinite(v) ? Number(v.toPrecision(6)).toString() : String(v));

export async function runModelFile(model: string, o: RunCliOptions): Promise<void> {
  const output = o.output;
  const ext = output ? extname(output).toLowerCase() : '';
  const sources = o.input ?? [];
  const images = o.image ?? [];
  if (o.loadPlan && o.unfused) throw invalid('--load-plan', 'runs a saved plan; --unfused runs none: give one of them');
  if (images.length && sources.length) throw invalid('--image', 'and --input both given; give the model\'s input one way');
  for (const [flag, v] of [['--mean', o.mean], ['--std', o.std], ['--scale', o.scale]] as const) {
    if (v !== undefined && !images.length) throw invalid(flag, 'normalises --image inputs; no --image is given');
  }
  // The output may be none of the inputs (same path or inode), and not a device: refused before any work.
  const target = { notSameAs: [model, ...sources.map((s) => parseInputSpec(s)[0].file), ...images, ...hwInputs(o.hw), ...(o.loadPlan ? [o.loadPlan] : [])], what: '--output' };
  if (output) await checkOutputTarget(output, target);
  const plan = o.loadPlan ? loadPlan(o.loadPlan, o.maxMemory) : undefined;
  if (output && ext !== '.npy' && ext !== '.npz') throw invalid(output, 'the output must be .npz (every output) or .npy (a one-output model)');
  let read = await readInputs(sources.flatMap((s) => parseInputSpec(s)), o.maxMemory);
  const decoded: (RgbImage & { file: string })[] = [];
  for (const file of images) decoded.push({ ...(await readImage(file, o.maxMemory ?? defaultMaxMemory)), file });
  // A given input's first dimension fixes a symbolic batch, unless --batch says otherwise; images are one item each.
  const first = read.unnamed ?? [...read.byName.values()][0];
  const batch = o.batch ?? (decoded.length ? decoded.length : first?.a.shape[0]);
  // Imported here so that the memory budget applies (createSession takes the graph as it is).
  // The model check every command runs (import, then the layer DAG validated).
  const { graph } = await loadChecked(model, { batch, inputShapes: o.inputShape, maxMemory: o.maxMemory });
  if (decoded.length) {
    if (graph.inputs.length !== 1) throw invalid(model, `the model has ${graph.inputs.length} inputs (${graph.inputs.join(', ')}); --image feeds a one-input model (use --input NAME=FILE.npy)`);
    const x = graph.inputs[0];
    const shape = [...graph.tensors.get(x)!.shape];
    const data = imagesToTensor(decoded, shape, `${model}: input '${x}'`, { mean: o.mean, std: o.std, scale: o.scale });
    const from = decoded.map((d) => `${d.file} (${d.format} ${d.width}x${d.height})`).join(', ');
    read = { byName: new Map(), unnamed: { a: { shape, data }, from } };
  }
  const feeds = matchInputs(graph, model, read, o.seed ?? 0);
  if (output && ext === '.npy' && graph.outputs.length !== 1) {
    throw invalid(output, `the model has ${graph.outputs.length} outputs (${graph.outputs.join(', ')}); write them all with --output FILE.npz`);
  }
  const session = await createSession(graph, { hw: o.hw, plan: plan ?? (o.unfused ? 'unfused' : 'auto'), batch, maxMemory: o.maxMemory, precision: o.precision, subBatches: o.subBatches });
  try {
    const out = await session.run(Object.fromEntries([...feeds].map(([k, v]) => [k, v.a.data])));
    const arrays = new Map(session.outputNames.map((y) => [y, { shape: out[y].shape, data: out[y].data }]));
    if (output) {
      if (ext === '.npz') await writeNpz(output, arrays, target);
      else await writeNpy(output, arrays.get(session.outputNames[0])!, target);
    }
    const summaries = [...arrays].map(([y, a]) => summarize(y, a, o.top));
    const subBatches = session.stats().subBatches;
    if (o.json) {
      const inputs = Object.fromEntries([...feeds].map(([k, v]) => [k, { shape: v.a.shape, from: v.from }]));
      process.stdout.write(`${JSON.stringify({ model, inputs, subBatches, outputs: summaries, ...(output ? { wrote: output } : {}) }, null, 2)}\n`);
      return;
    }
    const lines: string[] = [];
    for (const [k, v] of feeds) lines.push(`input '${k}' [${v.a.shape.join('x')}]: ${v.from}`);
    if (subBatches > 1) lines.push(`ran as ${subBatches} sub-batches of ${session.inputShapes[session.inputNames[0]][0] / subBatches}`);
    for (const s of summaries) {
      const empty = s.shape.some((d) => d === 0);
      lines.push(`output '${s.name}' [${s.shape.join('x')}]: ${empty ? 'empty' : `min ${num(s.min)}, max ${num(s.max)}, mean ${num(s.mean)}`}`);
      s.top?.forEach((row, r) => lines.push(`  top ${row.length}${s.top!.length > 1 ? ` (row ${r})` : ''}: ${row.map((t) => `${t.index} (${num(t.value)})`).join(', ')}`));
    }
    if (output) lines.push(`wrote ${output}: ${ext === '.npz' ? `${arrays.size} output${arrays.size === 1 ? '' : 's'}` : `output '${session.outputNames[0]}'`}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    session.dispose();
  }
}

export function register(program: Command): void {
  program
    .command('run')
    .description('run a model on the WebGPU executor: inputs from .npy/.npz files (or seeded), outputs summarized and written as .npz/.npy')
    .argument('<model>', "an .onnx, .tflite, .task bundle (FILE.task#MEMBER), .keras, .h5 or TF.js model.json (Layers or graph; rank-4 inputs and outputs are NCHW, the IR's layout, also for .tflite; an int8 .tflite runs on the integer kernels where they cover it)")
    .addOption(hwOption())
    .option('--unfused', 'run layer by layer (epilogues folded), without FCMs')
    .option('--load-plan <file>', 'run this plan (JSON of `fcm-opt plan --plan FILE`, e.g. a tuned one) instead of planning')
    .option('--input <spec>', 'NAME=FILE.npy, FILE.npy (a one-input model) or FILE.npz (arrays named as the inputs), float32; repeatable. Default: seeded values in [-1, 1) as check uses', (v: string, prev: string[] = []) => [...prev, v])
    .option('--image <file>', "a PNG or JPEG for the model's one image input (rank 4, 1 or 3 channels; NCHW, or NHWC where dim 3 is the channels), one per batch item, repeatable: RGB, resized to the input's HxW (bilinear, half-pixel centres, no antialiasing), normalised as (pixel * scale - mean) / std", (v: string, prev: string[] = []) => [...prev, v])
    .option('--mean <m>', '--image: mean per channel, one value or R,G,B (default ImageNet: 0.485,0.456,0.406)', parseChannelValues('--mean', false))
    .option('--std <s>', '--image: standard deviation per channel, one value or R,G,B (default ImageNet: 0.229,0.224,0.225); --mean 0 --std 1 gives raw 0..1 values', parseChannelValues('--std', true))
    .option('--scale <s>', '--image: factor on the 0..255 pixel before --mean and --std (default 1/255; 1 for 0..255 values)', (v: string) => {
      const n = Number(v);
      if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw invalid('--scale', `expected a positive number, got '${v}'`);
      return n;
    })
    .option('--output <file>', 'write every output (.npz) or the only one (.npy)')
    .option('--seed <n>', 'seed of the inputs when none is given (default 0)', (v) => {
      const n = Number(v);
      if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) throw invalid('--seed', `expected a non-negative integer, got '${v}'`);
      return n;
    })
    .option('--batch <n>', 'value for a symbolic batch dimension (default: the first input\'s, or 1)', parseBatch)
    .addOption(inputShapeOption())
    .option('--top <k>', 'print the K largest values of each output row, with their indices (classifiers)', (v) => {
      const n = Number(v);
      if (!/^\d+$/.test(v.trim()) || n < 1) throw invalid('--top', `expected a positive integer, got '${v}'`);
      return n;
    })
    .option('--json', 'print inputs and output summaries as JSON')
    .addOption(precisionOption())
    .addOption(subBatchesOption())
    .addOption(maxMemoryOption())
    .action(async (model: string, o: RunCliOptions) => {
      try {
        await runModelFile(model, o);
      } finally {
        await releaseGpu();
      }
    });
}
