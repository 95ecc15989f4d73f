// Sessions: the pipeline (pipeline.ts) and the executor (src/runtime/executor.ts) together. createSession picks the
// precision: a quantized graph runs on the integer kernels when its schedule puts every node on the GPU but the
// conversions at its ends (int8: 'auto'), else dequantized on the float kernels, as every float graph; `precision:
// 'fp16'` runs the float kernels with f16 tensors (a quantized graph then too, dequantized).

import { FcmError, gpuFailure, invalid, unsupported } from '../errors.js';
import { type Graph, numel } from '../graph/ir.js';
import { runsOnFloatHost } from '../runtime/host-float.js';
import type { HwConfig } from '../planner/hw-config.js';
import type { Plan } from '../planner/plan.js';
import { isQuantizedGraph } from '../graph/passes/dequantize.js';
import { foldChannelScales } from '../rewrite/channel-scale.js';
import { type GpuContext, acquireGpu, defaultFirstSubmit, defaultSubmitEvery, defaultSubmitGrowth, probeDot4, subgroupMatrixOffByEnv } from '../runtime/device.js';
import { checkSubgroupMatrix } from '../runtime/subgroup-matrix-check.js';
import { checkInt8SubgroupMatrix, int8SubgroupMatrixOf } from '../runtime/int8-subgroup-matrix-check.js';
import { type Compiled, compileGraph, compileInt8, int8Coverage, sessionBytes } from '../runtime/compile.js';
import { checkMemory } from '../memory-budget.js';
import { Executor, type ExecutorOptions, type Session, defaultMaxInFlight, executorOf } from '../runtime/executor.js';
import { SubBatchSession } from '../runtime/sub-batch.js';
import { commonBatch, rebatchGraph } from '../graph/passes/rebatch.js';
import { type FloatPrecision, type RunResult, floatPrecisions, fp16, fp32, int8, mixedFp16 } from '../runtime/precision.js';
import { type F16Islands, type NodeError, calibrationGraph, islandThreshold, islandsFromErrors, largestErrors, measureErrors } from '../runtime/f16-islands.js';
import { compareOutputs, f16Bounds, maxAbs, seededInput } from '../runtime/compare.js';
import { type ModelInput, type PipelineOptions, graphForRun, load } from './pipeline.js';
import { resolveHw } from './hw.js';

export { defaultFirstSubmit, defaultSubmitEvery, defaultSubmitGrowth };

export interface SessionOptions extends PipelineOptions {
  /** Extra tensors to return from run() besides the graph outputs (e.g. intermediates for per-layer checks). */
  extraOutputs?: string[];
  /** Quantized graphs: 'auto' (default) runs them with integer kernels when every node has one, else dequantized. */
  int8?: 'auto' | 'dequantize';
  /**
   * Dispatches per submitted command buffer (0: all in one). Not given (nor firstSubmit): a first part of 3, then
   * parts growing threefold (src/runtime/device.ts defaultFirstSubmit, defaultSubmitGrowth).
   */
  submitEvery?: number;
  /** Dispatches in the first submitted part (default submitEvery; src/runtime/executor.ts ExecutorOptions). */
  firstSubmit?: number;
  /** Growth of the parts after the first (default 1; src/runtime/executor.ts ExecutorOptions). */
  submitGrowth?: number;
  /** The device to run on (default: the process's shared one, acquireGpu); tests pass one without some features. */
  device?: GpuContext;
  /**
   * How feeds reach the GPU: 'staging-ring' (default: mapped staging buffers reused across runs), 'write-buffer'
   * (queue.writeBuffer) or 'mapped-at-creation' (a staging buffer per run). src/runtime/transfer.ts.
   */
  upload?: ExecutorOptions['upload'];
  /** Runs that may wait for their outputs at once (default 2); more run() calls queue. */
  maxInFlight?: number;
  /** Encode each run's dispatches during the run before, while the GPU works (default true; src/runtime/executor.ts). */
  encodeAhead?: boolean;
  /** Squeeze-excite blocks as one dispatch (default false: slower on an H100, see src/rewrite/squeeze-excite.ts). */
  squeezeExcite?: boolean;
  /**
   * A pointwise Conv read only by a global average pool as one PointwiseMean dispatch (src/rewrite/pointwise-mean.ts;
   * default true, or false where FCM_OPT_FOLD_POOL=0 is in the environment).
   */
  foldPool?: boolean;
  /**
   * Inputs fed as 8-bit images (Uint8Array, NHWC: what decoders give), converted and normalised on the GPU:
   * per input, the model input's layout ('nchw' default) and (byte * scale - mean[c]) / std[c] (scale 1/255 by
   * default). Such an input still takes a Float32Array or a GPU buffer of its float values (a GPU buffer: float32
   * sessions). fp32 and fp16 sessions (fp16: the normalised values rounded to the input's f16 on the GPU); not int8.
   */
  imageInputs?: ExecutorOptions['images'];
  /**
   * fp16: pointwise convolutions on subgroup matrices where the device has them and the kernel passes its check there
   * (kernels/pointwise-subgroup-matrix.ts, src/runtime/subgroup-matrix-check.ts; default true). false, or
   * FCM_OPT_SUBGROUP_MATRIX=0 in the environment, keeps them on the other f16 kernels. Quantized graphs on the integer
   * kernels: the same for the integer pointwise kernel on subgroup matrices (Int8SessionOptions.subgroupMatrix).
   */
  subgroupMatrix?: boolean;
  /**
   * fp16: which tensors stay f32 (src/runtime/f16-islands.ts). keepF32 'auto' (default): those whose f16 rounding a
   * node amplifies, found by fp32 calibration runs of the unfused graph when the session is made (on the feeds of
   * `calibration`, one set or several, else calibrationInputs' seeded values) and checked on those and on held-out
   * seeded inputs (heldOutInputs); 'none': every tensor f16; or tensor names. `inputs` 'f32' (default): besides those,
   * a model input read by at most two nodes stays f32 (f32Inputs: its readers take the values as fed, no pass rounds
   * them first); 'f16': inputs are rounded to f16 on the GPU like any tensor not kept.
   */
  fp16?: { keepF32?: 'auto' | 'none' | string[]; calibration?: Record<string, Float32Array> | Record<string, Float32Array>[]; inputs?: 'f32' | 'f16' };
  /**
   * Run each batch as k inferences of batch/k images, in flight together, so that the host's copy of one sub-batch's
   * feeds overlaps the GPU's work on the one before (src/runtime/sub-batch.ts): k, or 'auto' (default; autoSubBatches
   * says when it splits). 1: never. A k that does not divide the batch is refused (exit 2), and so is a model whose
   * nodes may mix the images of a batch (exit 3; src/graph/passes/rebatch.ts). A split session reports the batch's
   * shapes and outputs, takes GPU buffer feeds and leaves outputs on the GPU as any session, and lends no staging
   * memory (stagingInputs() refuses: make it with subBatches 1 for that).
   */
  subBatches?: number | 'auto';
}

export interface Int8SessionOptions {
  /** 'auto' (default): plan with 1-byte elements and fuse; 'unfused': epilogues only; or a Plan to apply. */
  plan?: 'auto' | 'unfused' | Plan;
  /** GPU description for planning ('auto' plan): a HwConfig, a .cfg/.json path, a shipped name, or 'auto' (the adapter). */
  hw?: HwConfig | string;
  /** Packed 4x8 dot products: undefined = where the adapter's WGSL offers them; false forces the unpacking fallback. */
  dot4?: boolean;
  /**
   * Pointwise convolutions on integer subgroup matrices where the device has them and the kernel passes its check
   * there (kernels/int8/pointwise-subgroup-matrix.ts, src/runtime/int8-subgroup-matrix-check.ts; default true). false,
   * or FCM_OPT_SUBGROUP_MATRIX=0 in the environment, keeps them on the word kernel.
   */
  subgroupMatrix?: boolean;
  /** As SessionOptions. */
  upload?: ExecutorOptions['upload'];
  maxInFlight?: number;
  encodeAhead?: boolean;
  firstSubmit?: number;
  submitGrowth?: number;
}

function limitsOf(ctx: GpuContext) {
  const l = ctx.limits;
  return {
    ...ctx.kernelLimits, maxStorageBufferBindingSize: l.maxStorageBufferBindingSize, maxBufferSize: l.maxBufferSize,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage, maxBindingsPerBindGroup: l.maxBindingsPerBindGroup,
    maxBindGroups: l.maxBindGroups, maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY, maxComputeWorkgroupSizeZ: l.maxComputeWorkgroupSizeZ,
    minStorageBufferOffsetAlignment: l.minStorageBufferOffsetAlignment,
  };
}

/** What creating a session of `c` adds to the process: its GPU buffers, and a staging copy of each as its data is
 *  uploaded (measured on lavapipe: a session of 19 MB of weights grew the process by 34 MB). */
const uploadBytes = (c: Compiled) => 2 * sessionBytes(c);

async function device(what?: string, given?: GpuContext): Promise<GpuContext> {
  const ctx = given ?? await acquireGpu();
  if (ctx.lost) throw gpuFailure('WebGPU', `${what ? `${what}: ` : ''}the device was lost (${ctx.lost})`);
  return ctx;
}

/** The integer schedule of `g` for these options. */
async function int8Schedule(ctx: GpuContext, g: Graph, options: Int8SessionOptions): Promise<{ compiled: Compiled; dot4: boolean }> {
  const plan = options.plan ?? 'auto';
  const hw = plan === 'auto' ? await resolveHw(options.hw) : undefined;
  const run = graphForRun(g, 'int8', plan, () => hw!);
  const dot4 = options.dot4 ?? (await probeDot4(ctx.device));
  // Integer subgroup matrices only where the kernel passed its check on this device (once per device; a failure warns).
  const support = options.subgroupMatrix !== false && !subgroupMatrixOffByEnv() ? int8SubgroupMatrixOf(ctx) : undefined;
  const smx = support && await checkInt8SubgroupMatrix(ctx) ? support : undefined;
  return { compiled: compileInt8(run, limitsOf(ctx), dot4, smx), dot4 };
}

/**
 * A session of `model` (a file, its bytes, or a graph). A quantized graph whose nodes all have integer kernels
 * (int8Coverage) runs on the integer executor; anything else, or `int8: 'dequantize'`, or extra outputs (per-layer
 * checks read float intermediates), on the float kernels.
 */
export async function createSession(model: ModelInput, options: SessionOptions = {}): Promise<Session> {
  const g = await load(model, options);
  const k = subBatchesFor(g, options);
  if (k > 1) return subBatchSession(g, k, options);
  const submitEvery = options.submitEvery;
  if (submitEvery !== undefined && (!Number.isInteger(submitEvery) || submitEvery < 0)) throw invalid(g.source, `submitEvery must be a whole number >= 0, got ${submitEvery}`);
  const precision: FloatPrecision = options.precision ?? 'fp32';
  if (!floatPrecisions.includes(precision)) throw invalid(g.source, `precision must be one of ${floatPrecisions.join(', ')}, got '${String(precision)}'`);
  if (precision === 'fp16') {
    // Refused before planning: no work is done for a device that cannot run it.
    const ctx = await device(undefined, options.device);
    if (!ctx.shaderF16) {
      throw unsupported(g.source, `fp16 needs the WebGPU feature 'shader-f16', which this adapter (${ctx.adapterInfo.description || ctx.adapterInfo.vendor || 'unknown'}) does not offer; use --precision fp32`);
    }
  }
  if (precision === 'fp32' && options.int8 !== 'dequantize' && !options.extraOutputs?.length && isQuantizedGraph(g)) {
    const ctx = await device(undefined, options.device);
    let s: Awaited<ReturnType<typeof int8Schedule>> | undefined;
    try {
      s = await int8Schedule(ctx, g, { plan: options.plan, hw: options.hw, subgroupMatrix: options.subgroupMatrix });
    } catch (e) {
      if (!(e instanceof FcmError && e.kind === 'unsupported')) throw e;
    }
    if (s && int8Coverage(s.compiled).ok) {
      checkMemory(options.maxMemory, uploadBytes(s.compiled), "the session's GPU buffers", g.source);
      return Executor.create(ctx, s.compiled, int8, { dot4: s.dot4, submitEvery, ...transferOptions(options) });
    }
  }
  const plan = options.plan ?? 'auto';
  const hw = plan === 'auto' ? await resolveHw(options.hw) : undefined;
  const graph0 = graphForRun(g, precision, plan, () => hw!, { squeezeExcite: options.squeezeExcite, shuffleConv: options.shuffleConv, foldPool: options.foldPool, channelsLast: options.channelsLast, resizedResidual: options.resizedResidual });
  // Extra outputs (per-layer checks) are read back like graph outputs: they must live to the end.
  const extra = (options.extraOutputs ?? []).filter((t) => !graph0.outputs.includes(t));
  for (const t of extra) if (!graph0.tensors.has(t)) throw invalid(graph0.source, `tensor '${t}' asked for as an output does not exist`);
  // Squeeze-excite Muls fold into the pointwise Conv that reads them (src/rewrite/channel-scale.ts); after the
  // extra outputs are known, so that a tensor asked for is kept.
  const graph: Graph = foldChannelScales(extra.length ? { ...graph0, outputs: [...graph0.outputs, ...extra] } : graph0);
  const ctx = await device(undefined, options.device);
  // Subgroup matrices only where the kernel passed its check on this device (once per device; a failure warns).
  const smx = precision === 'fp16' && options.subgroupMatrix !== false && !subgroupMatrixOffByEnv() && ctx.subgroupMatrix && await checkSubgroupMatrix(ctx)
    ? ctx.subgroupMatrix : undefined;
  if (precision === 'fp16') return fp16Session(ctx, g, graph, options, hw, smx, submitEvery);
  const compiled = compileGraph(graph, limitsOf(ctx));
  checkMemory(options.maxMemory, uploadBytes(compiled), "the session's GPU buffers", g.source);
  return Executor.create(ctx, compiled, fp32, { submitEvery, ...transferOptions(options) });
}

/**
 * What subBatches 'auto' splits: a batch of at least autoSubBatches.minBatch, into autoSubBatches.parts sub-batches
 * (where that divides it), when the feeds of one run are at least autoSubBatches.minBytes (float32 values, image
 * inputs' bytes) and the model's nodes keep the images apart (rebatchGraph). Why: a run's host copy into staging
 * memory runs at 6-9 GB/s on an H100 machine, so a batch-32 224x224 RGB input (19.3 MB) costs 2-3 ms before the GPU
 * may start (the GPU pass: about 1.6-1.9 ms for MobileNetV2); split in k, the copy of one part overlaps the GPU's work
 * on the one before, but each part costs the host its own encoding and submits (~0.4-0.8 ms at batch 16-8 on that
 * machine) and runs at a smaller batch. Measured there (BENCHMARKS.md, "Batch 32 in sub-batches"): 2 parts beat the
 * unsplit run on all three models timed (MobileNetV2 3.85 against 4.40 ms), 4 and 8 parts lost to it. Below 4 MiB the
 * copy (under 0.7 ms) is not worth a split.
 */
export const autoSubBatches = { minBatch: 16, parts: 2, minBytes: 4 * 2 ** 20 } as const;

/** The sub-batches a session of `g` runs each batch in (1: not split). */
export function subBatchesFor(g: Graph, options: Pick<SessionOptions, 'subBatches' | 'imageInputs'>): number {
  const want = options.subBatches ?? 'auto';
  if (want !== 'auto' && (typeof want !== 'number' || !Number.isInteger(want) || want < 1)) {
    throw invalid(g.source, `subBatches must be 'auto' or a whole number >= 1, got ${typeof want === 'string' ? `'${want}'` : String(want)}`);
  }
  if (want === 1) return 1;
  const batch = commonBatch(g);
  if (want !== 'auto') {
    if (batch !== undefined && batch % want !== 0) throw invalid(g.source, `subBatches ${want} does not divide the batch of ${batch}: sub-batches must be of equal size`);
    rebatchGraph(g, (batch ?? 0) / want);
    return want;
  }
  const { minBatch, parts, minBytes } = autoSubBatches;
  if (batch === undefined || batch < minBatch || batch % parts !== 0) return 1;
  const bytes = g.inputs.reduce((a, x) => a + numel(g.tensors.get(x)!.shape) * (options.imageInputs?.[x] ? 1 : 4), 0);
  if (bytes < minBytes) return 1;
  try {
    rebatchGraph(g, batch / parts);
  } catch (e) {
    if (e instanceof FcmError && e.kind === 'unsupported') return 1;
    throw e;
  }
  return parts;
}

/** A session of `g` (batch B) running each batch as `k` inferences of an executor at batch B/k. */
async function subBatchSession(g: Graph, k: number, options: SessionOptions): Promise<Session> {
  const sub = rebatchGraph(g, commonBatch(g)! / k);
  const maxInFlight = options.maxInFlight ?? defaultMaxInFlight;
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) throw invalid(g.source, `maxInFlight must be a whole number >= 1, got ${maxInFlight}`);
  // fp16 calibration feeds given for the batch: the first sub-batch of each set calibrates the sub-batch's session.
  const cal = options.fp16?.calibration;
  const first = (feeds: Record<string, Float32Array>) => Object.fromEntries(Object.entries(feeds).map(([x, v]) => [x, v.subarray(0, v.length / k)]));
  const fp16 = cal ? { ...options.fp16, calibration: Array.isArray(cal) ? cal.map(first) : first(cal) } : options.fp16;
  // A read-back set and a staging buffer per sub-run in flight: no sub-run waits for an earlier one to finish.
  const inner = await createSession(sub, { ...options, fp16, subBatches: 1, maxInFlight: k * maxInFlight });
  return new SubBatchSession(executorOf(inner), k, maxInFlight, new Set(Object.keys(options.imageInputs ?? {})));
}

/**
 * The seeded inputs 'auto' chooses the f32 islands on (see fp16Session): values in [-1, 1) as check's (with its
 * statistics but not its seed, 0: a check does not run on an input the choice saw) and in [0, 1) (non-negative with
 * mean 1/2, as normalised image bytes: sums of them carry an offset that zero-mean inputs do not, and an offset that
 * a later node cancels amplifies rounding, or overflows f16, on those inputs only). A node's error counts at its
 * largest over these inputs.
 */
export const calibrationInputs: readonly SeededFeeds[] = [{ seed: 7919, range: 'signed' }, { seed: 7920, range: 'unit' }];

/**
 * The seeded inputs the chosen islands are checked on but not chosen on (see fp16Session), of both statistics. Four:
 * an output's error varies from input to input far more than the nodes' errors do (selfie-seg-landscape's mask, in
 * the tail of its sigmoid on seeded inputs: max |output| 1.5e-5 to 0.13 over eight of them, and islands within 6e-3
 * of it on three inputs were 4.5e-2 off on check's), and only more inputs see more of that spread.
 */
export const heldOutInputs: readonly SeededFeeds[] = [
  { seed: 7921, range: 'signed' }, { seed: 7922, range: 'unit' }, { seed: 7923, range: 'signed' }, { seed: 7924, range: 'unit' },
];

export interface SeededFeeds { seed: number; range: 'signed' | 'unit' }

/** Feeds of `g` from `input`: seeded values per float input in [-1, 1) ('signed') or [0, 1) ('unit'), the i-th input
 *  from seed + i; integer inputs rounded, as check's. */
export function calibrationFeeds(g: Graph, input: SeededFeeds = calibrationInputs[0]): Record<string, Float32Array> {
  const feeds: Record<string, Float32Array> = {};
  g.inputs.forEach((x, i) => {
    const t = g.tensors.get(x)!;
    let v = seededInput(numel(t.shape), input.seed + i);
    if (input.range === 'unit') v = v.map((a) => (a + 1) / 2);
    feeds[x] = t.dtype === 'float32' ? v : v.map(Math.round);
  });
  return feeds;
}

/**
 * The thresholds 'auto' tries in turn (islandsFromErrors), each a quarter of the one before, until the session meets
 * the calibration targets (fp16Session); past the last, every float tensor stays f32 (a model that amplifies any f16
 * rounding: its fp16 session computes as fp32 does, and says so in stats().f32Tensors).
 */
export const islandThresholds = [islandThreshold, islandThreshold / 4, islandThreshold / 16] as const;

/** The fp16 check's tolerance (f16Bounds.rel of max |fp32 output|), with its cosine and top-1 criteria. */
export const calibrationTarget = f16Bounds.rel;

/**
 * What 'auto' asks of the fp16 session on every calibration and held-out input: a margin of 2 under
 * calibrationTarget, for the inputs it has not seen. The error at an output varies from input to input: ocr-det
 * (PP-OCRv4 det, 230 nodes, none with an own error over 3e-3) in pure f16 lands at 2.4e-2 to 6.3e-2 of max |output|
 * on six seeded inputs of one distribution (lavapipe), its sigmoid output in its tail on such inputs (max 2.5e-3:
 * relative errors there are the logits' absolute errors). Without a margin, islands that met 3e-2 on the
 * calibration input at 2.8e-2 gave 6.0e-2 on check's input. selfie-seg in pure f16 passes check's input at 1.3e-3 of
 * max |mask| (0.5) and fails `check --seed 3` at 3.7e-2 (max |mask| 5e-5); on the first calibration input it lands at
 * 2.8e-2, where the tolerance without a margin let it through.
 */
export const calibrationMargin = 0.5;

/**
 * The float inputs an fp16 session keeps f32: those read by at most two nodes. Their readers' kernels take f32 values
 * as they come from the host or a GPU buffer; rounding them to f16 first would cost a pass over the input (reading 4
 * and writing 2 bytes a value) that two f16 readers do not win back. On the H100 that pass was 19 us of MobileNetV2's
 * 0.94 ms fp16 pass at batch 32.
 */
export function f32Inputs(graph: Graph): string[] {
  return graph.inputs.filter((x) => graph.tensors.get(x)?.dtype === 'float32' && graph.nodes.filter((n) => n.inputs.includes(x)).length <= 2);
}

/**
 * The fp16 session of `graph` (planned from `g`) with the tensors SessionOptions.fp16.keepF32 keeps f32: as given,
 * none, or ('auto') chosen by islandsFromErrors from calibration runs of `g`'s unfused graph (the same graph passes
 * and epilogue folds, no FCMs: the rule judges each node alone; a tensor it names inside an FCM lives in workgroup
 * memory in f32 anyway) on the calibration inputs (each node's largest error over them), then checked end to end:
 * the thresholds of islandThresholds in turn until the session's outputs meet calibrationMargin * calibrationTarget
 * against the fp32 ones on every calibration and held-out input, else every float tensor f32.
 */
async function fp16Session(ctx: GpuContext, g: Graph, graph: Graph, options: SessionOptions, hw: HwConfig | undefined,
  smx: GpuContext['subgroupMatrix'], submitEvery: number | undefined): Promise<Session> {
  const inputMode = options.fp16?.inputs ?? 'f32';
  if (inputMode !== 'f32' && inputMode !== 'f16') throw invalid(g.source, `fp16 inputs must be 'f32' or 'f16', got '${String(inputMode)}'`);
  const inputs = inputMode === 'f32' ? f32Inputs(graph) : [];
  const make = (keep: Iterable<string>, outputs: string[] = graph.outputs) => {
    const compiled = compileGraph({ ...graph, outputs }, limitsOf(ctx), 'f16', { subgroupMatrix: smx }, new Set([...keep, ...inputs]));
    checkMemory(options.maxMemory, uploadBytes(compiled), "the session's GPU buffers", g.source);
    return Executor.create(ctx, compiled, compiled.f32Tensors ? mixedFp16(compiled.f32Tensors) : fp16, { submitEvery, ...transferOptions(options) });
  };
  const keep = options.fp16?.keepF32 ?? 'auto';
  if (keep === 'none') return make([]);
  if (Array.isArray(keep)) {
    for (const t of keep) if (!graph.tensors.has(t)) throw invalid(g.source, `fp16 keepF32 names '${t}', which is not a tensor of the session's graph`);
    return make(keep);
  }
  if (keep !== 'auto') throw invalid(g.source, `fp16 keepF32 must be 'auto', 'none' or a list of tensor names, got '${String(keep)}'`);
  let cal: F16Calibration;
  try {
    cal = await calibrateF16Islands(ctx, g, options, hw);
  } catch (e) {
    // The calibration run keeps every tensor (and a probe of each) alive at once: over the memory budget, the
    // session runs in pure f16 rather than not at all.
    if (!(e instanceof FcmError && e.kind === 'limit')) throw e;
    console.warn(`fcm-opt: warning: ${g.source}: no fp16 calibration run (${e.message}); every tensor f16`);
    return make([]);
  }
  const everyFloat = [...graph.tensors.values()].filter((t) => t.dtype === 'float32').map((t) => t.name);
  const compared = [...new Set(cal.runs.flatMap((r) => [...r.reference.keys()]))].filter((y) => graph.tensors.has(y));
  const order = [...cal.runs];
  let tried: string | undefined;
  for (const threshold of [...islandThresholds, 0]) {
    const names = threshold ? islandsFromErrors(cal.base, cal.islands.measured, threshold).keepF32.filter((t) => graph.tensors.has(t)) : everyFloat;
    const key = names.join('\n');
    if (key === tried) continue;
    tried = key;
    if (!threshold) break;
    // A session for the check alone: the one returned has run nothing (pipelines are cached on the device).
    const trial = await make(names, [...new Set([...graph.outputs, ...compared])]);
    let ok = true;
    try {
      for (const [i, r] of order.entries()) {
        ok = meetsTarget(await trial.run(r.feeds), r.reference, calibrationMargin * calibrationTarget);
        if (ok) continue;
        // The input that failed first next time: the next trial is likely to fail there too, and stops at once.
        order.unshift(...order.splice(i, 1));
        break;
      }
    } finally {
      trial.dispose();
    }
    if (ok) {
      // Islands over every float tensor but the outputs leave no kernel reading f16: say so, as when none passes.
      const kept = new Set(names), outputs = new Set(graph.outputs);
      if (everyFloat.every((t) => kept.has(t) || outputs.has(t))) {
        console.warn(`fcm-opt: warning: ${g.source}: fp16 meets half the f16 tolerance on the calibration and held-out inputs only with every tensor but the outputs kept f32 (islands at threshold ${threshold}): the session computes in f32; keepF32 'none' stores every tensor in f16`);
      }
      return make(names);
    }
  }
  console.warn(`fcm-opt: warning: ${g.source}: fp16 stays outside half the f16 tolerance on the calibration and held-out inputs with any f32 islands tried (thresholds ${islandThresholds.join(', ')}): every tensor is kept f32`);
  return make(everyFloat);
}

/**
 * Whether every output of `out` is within `rel` of max |fp32 `reference`| (compare.ts, fp16 criteria). An
 * output whose values all lie below f16's smallest normal (2^-14: a probability of 1e-11) has no direction f16 can
 * keep: it is judged by its error alone (f16 flushes it toward 0; the cosine of a zero vector is no measure).
 */
function meetsTarget(out: RunResult, reference: ReadonlyMap<string, Float32Array>, rel: number): boolean {
  for (const [y, ref] of reference) {
    const o = out[y];
    if (!o) return false;
    const c = compareOutputs(o.data, ref, o.shape, rel, undefined, 'fp16');
    if (!c.ok && !(maxAbs(ref) < 2 ** -14 && c.maxAbsError <= c.tolerance)) return false;
  }
  return true;
}

/** One input of a calibration: its feeds and the fp32 values of the tensors compared on it. */
export interface CalibrationRun {
  feeds: Record<string, Float32Array>;
  reference: Map<string, Float32Array>;
  /** A held-out input: not used to choose the islands, only to check them. */
  heldOut: boolean;
}

/** A calibration: the unfused graph, its runs, and the islands rule's measurements. */
export interface F16Calibration {
  base: Graph;
  runs: CalibrationRun[];
  /** islandsFromErrors at islandThreshold, with every node's largest measured error over the calibration inputs. */
  islands: F16Islands;
}

/**
 * The calibration runs of `g` under `options` (fp16; src/runtime/f16-islands.ts): the calibration graph on each
 * calibration input (SessionOptions.fp16.calibration, else calibrationInputs) and on each held-out input
 * (heldOutInputs), in one schedule compiled once.
 */
export async function calibrateF16Islands(ctx: GpuContext, g: Graph, options: SessionOptions, hw: HwConfig | undefined): Promise<F16Calibration> {
  const base = foldChannelScales(graphForRun(g, 'fp16', 'unfused', () => hw!, { squeezeExcite: options.squeezeExcite, shuffleConv: options.shuffleConv, foldPool: options.foldPool, channelsLast: options.channelsLast, resizedResidual: options.resizedResidual }));
  const cal = calibrationGraph(base);
  const half = new Set(cal.halfTensors);
  const compiled = compileGraph(cal.graph, limitsOf(ctx), 'f16', {}, [...cal.graph.tensors.keys()].filter((t) => !half.has(t)));
  checkMemory(options.maxMemory, uploadBytes(compiled), "the fp16 calibration run's GPU buffers", g.source);
  const given = options.fp16?.calibration;
  const choosing = given ? (Array.isArray(given) ? given : [given]) : calibrationInputs.map((c) => calibrationFeeds(base, c));
  if (!choosing.length) throw invalid(g.source, 'fp16 calibration: give at least one set of feeds');
  // Compared: the float outputs, but those a host node makes (detection post-processing selects boxes: a small
  // change moves a box in or out), whose float inputs are compared instead, as check does.
  const host = base.nodes.filter(runsOnFloatHost);
  const hostMade = new Set(host.flatMap((n) => n.outputs));
  const compared = [...new Set([...base.outputs.filter((y) => !hostMade.has(y)), ...host.flatMap((n) => n.inputs.filter((x) => x && !base.tensors.get(x)?.data))])]
    .filter((y) => base.tensors.get(y)?.dtype === 'float32');
  const s = await Executor.create(ctx, compiled, mixedFp16(compiled.f32Tensors ?? new Set()), {});
  try {
    const runs: CalibrationRun[] = [];
    const errors: NodeError[][] = [];
    for (const [i, feeds] of [...choosing, ...heldOutInputs.map((c) => calibrationFeeds(base, c))].entries()) {
      const out = await s.run(feeds);
      const heldOut = i >= choosing.length;
      runs.push({ feeds, heldOut, reference: new Map(compared.filter((y) => out[y]).map((y) => [y, out[y].data])) });
      if (!heldOut) errors.push(measureErrors(cal.probes, new Map(Object.entries(out).map(([k, v]) => [k, v.data]))));
    }
    return { base, runs, islands: islandsFromErrors(base, largestErrors(errors)) };
  } finally {
    s.dispose();
  }
}

/** The executor options of the host path (transfers, runs in flight, image inputs), as given. */
function transferOptions(o: SessionOptions | Int8SessionOptions): Pick<ExecutorOptions, 'upload' | 'maxInFlight' | 'images' | 'encodeAhead' | 'firstSubmit' | 'submitGrowth'> {
  return {
    ...(o.firstSubmit !== undefined ? { firstSubmit: o.firstSubmit } : {}),
    ...(o.submitGrowth !== undefined ? { submitGrowth: o.submitGrowth } : {}),
    ...(o.encodeAhead !== undefined ? { encodeAhead: o.encodeAhead } : {}),
    ...(o.upload !== undefined ? { upload: o.upload } : {}),
    ...(o.maxInFlight !== undefined ? { maxInFlight: o.maxInFlight } : {}),
    ...('imageInputs' in o && o.imageInputs !== undefined ? { images: o.imageInputs } : {}),
  };
}

/**
 * A session of a quantized graph on the integer kernels (kernels/int8/): TFLite's arithmetic on the GPU, bit-exact
 * with src/quant/run-reference.ts; nodes without an integer kernel run on the host with that reference. Feeds may be
 * raw 8-bit values; outputs carry their raw values and quantization.
 */
export async function createInt8Session(graph: Graph, options: Int8SessionOptions = {}): Promise<Session> {
  const ctx = await device();
  const { compiled, dot4 } = await int8Schedule(ctx, graph, options);
  return Executor.create(ctx, compiled, int8, { dot4, ...transferOptions(options) });
}
