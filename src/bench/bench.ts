// `fcm-opt bench`: in one process, after warm-up, N timed runs each of fcm-opt with its plan, fcm-opt
// unfused, onnxruntime-node's WebGPU provider and onnxruntime-node CPU (for .tflite files, which onnxruntime
// cannot read: LiteRT.js in headless Chromium instead, after the others). Every run feeds host arrays and
// reads every output back to host memory, for all four alike, so the figures compare end to end. Runs are
// interleaved (run i of every contestant before run i+1 of any) so that drifting clocks or a busy machine
// affect all alike. Per layer or module: GPU time of the fused and unfused runs from timestamp queries
// (session.profile()) next to the planner's GMA estimates (and time estimates when the hardware
// description has bandwidth).

import { loadOnnxruntime } from '../onnxruntime.js';
import { statSync } from 'node:fs';
import { checkMemory } from '../memory-budget.js';
import { basename } from 'node:path';
import { FcmError, invalid, unsupported } from '../errors.js';
import { fcmDomain, type Graph } from '../graph/ir.js';
import { readModelFile } from '../graph/load.js';
import type { Plan } from '../planner/plan.js';
import { validateDag } from '../planner/dag-load.js';
import { median, p90, percentile } from './stats.js';
import { qLimits } from '../quant/reference.js';
import { firstLine, profileMethod, type CreateSession, type FcmSessionLike, type HostTimesLike, type ProfileEntry } from './runtime.js';
import { adapterSummary } from './device.js';
import { type LiteRtOptions, liteRtVersion, runLiteRt } from './litert.js';
import { medianModuleTimes, timedSession } from './profile.js';
import { load, planFor, planningInput, rewrite } from '../pipeline/pipeline.js';
import type { FloatPrecision } from '../runtime/precision.js';
import { resolveHw } from '../pipeline/hw.js';
import { createSession as createFcmSession } from '../pipeline/session.js';
import { acquireGpu, describeDevice } from '../runtime/device.js';

export interface BenchOptions {
  /** A hardware description (path, shipped name) or 'auto' (from the WebGPU adapter). */
  hw?: string;
  /** Value of a symbolic batch dimension; a fixed one must equal it. Default: the model's (1 where symbolic). */
  batch?: number;
  /** Static shapes for inputs with symbolic dims (ONNX and Keras models; a .tflite fixes its shapes, but for the batch). */
  inputShapes?: Record<string, number[]>;
  runs?: number;
  warmup?: number;
  /** The fused contestant's plan (e.g. tuned on this GPU: src/tune/tune.ts); default: planFusion, optimal mode. */
  plan?: Plan;
  /** Timed runs of one contestant in a row before the next one's (default 10; see timeContestants). */
  block?: number;
  /** The memory budget: the import, fcm-opt's sessions (their GPU buffers) and onnxruntime's sessions (default 4 GiB). */
  maxMemory?: number;
  /** Called after each run (warm-up included) with (done, total). */
  onProgress?: (done: number, total: number) => void;
  /** fcm-opt's contestants in fp16 (f16 tensors, planned with 2-byte elements) instead of fp32. */
  precision?: FloatPrecision;
  /** fp16: the tensors fcm-opt's sessions keep f32 (SessionOptions.fp16.keepF32; default 'auto'). */
  keepF32?: 'auto' | 'none' | string[];
  /** The sessions' maker (default: src/pipeline/session.ts createSession, timed through timedSession); tests give their own. */
  createSession?: CreateSession;
  /** Throughput mode: images per second of the fused session with this many runs in flight, next to one at a time. */
  concurrency?: number;
  /** fcm-opt's sessions: each batch as k sub-batches in flight (SessionOptions.subBatches; default 'auto', 1: off). */
  subBatches?: number | 'auto';
  /** .tflite models: time LiteRT.js too (default true); its options (cache folder, Chromium binary, threads). */
  litert?: boolean | (LiteRtOptions & { threads?: boolean });
}

/** Per-run host time of the fused session over its timed runs (ms, means). */
export interface BenchHostSplit { runs: number; uploadMs: number; encodeMs: number; submitMs: number; waitMs: number; readMs: number }

/** Images per second of the fused session, `concurrency` runs in flight and one at a time (medians of rounds). */
export interface BenchThroughput { concurrency: number; runsPerRound: number; rounds: number; imagesPerSecond: number; sequentialImagesPerSecond: number; ratio: number }

export interface BenchResult {
  name: string;
  medianMs?: number;
  p90Ms?: number;
  minMs?: number;
  meanMs?: number;
  p99Ms?: number;
  /** Images per second at the median: batch / median. */
  imagesPerS?: number;
  /** This row's median over the fused plan's median (2 = twice as slow as fcm-opt fused). */
  ratioToFused?: number;
  /** Why the row has no figures (a provider that failed to start on this machine). */
  unavailable?: string;
  /** What exactly ran (a version, a thread count). */
  detail?: string;
}

export interface BenchLayer {
  /** Index of the plan module, or null for nodes outside the planner's layers (Add, pools, ...). */
  module: number | null;
  kind: string;
  nodes: string[];
  /** GPU time (ms) of this module in the fused run and of its layers in the unfused run. */
  fusedGpuMs?: number;
  unfusedGpuMs?: number;
  gma?: number;
  gmaUnfused?: number;
  estUs?: number;
  estUsUnfused?: number;
}

export interface BenchReport {
  model: string;
  hw: string;
  device: string;
  /** What fcm-opt's device offers and how Dawn runs it (runtime/device.ts describeDevice). */
  deviceFeatures?: string;
  /** What fcm-opt's contestants ran in: 'fp32', 'fp16' or (a quantized model on the integer kernels) 'int8'. */
  precision?: string;
  /** fp16: the tensors the fused session kept f32 (f32 islands, src/runtime/f16-islands.ts); absent: none. */
  f32Tensors?: string[];
  batch: number;
  /** Inferences fcm-opt's fused session split each batch into (SessionOptions.subBatches; 1: not split). */
  subBatches?: number;
  runs: number;
  warmup: number;
  /** Timed runs of one contestant in a row (timeContestants). */
  block: number;
  results: BenchResult[];
  layers: BenchLayer[];
  /** Why per-layer times are missing, when they are. */
  layersUnavailable?: string;
  /** How the runtime took per-layer times: 'timestamp' (GPU timestamp queries) or 'wall' (none on the adapter). */
  layersMethod?: string;
  /** Where the fused session's host time per run went (sessions that report it). */
  hostSplit?: BenchHostSplit;
  throughput?: BenchThroughput;
}

/** One thing being timed. `run` is one inference: host inputs in, every output read back to host. */
export interface Contestant {
  name: string;
  run(): Promise<void>;
}

/**
 * Warm-up, then `runs` timed runs of each contestant. Rounds interleave the contestants so that drift affects all
 * alike; in each round every contestant runs `block` times in a row (fewer in the last round). Blocks matter on a
 * GPU: at batch 1 an inference is ~1 ms and the GPU lowers its clocks while another contestant runs on the host
 * (onnxruntime CPU), so single interleaved runs measure a half-idle GPU (MobileNetV2 1.5 ms interleaved,
 * 0.95 ms in a row). Returns the run times in ms per contestant. A contestant that throws fails the bench.
 */
export async function timeContestants(contestants: readonly Contestant[], runs: number, warmup: number,
  onProgress?: (done: number, total: number) => void, block = 1, afterWarmup?: () => void): Promise<number[][]> {
  const total = (runs + warmup) * contestants.length;
  let done = 0;
  const times = contestants.map(() => [] as number[]);
  const once = async (i: number, timed: boolean) => {
    const t0 = performance.now();
    await contestants[i].run();
    const dt = performance.now() - t0;
    if (timed) times[i].push(dt);
    onProgress?.(++done, total);
  };
  // Each round starts with the next contestant: whoever runs right after another device user (onnxruntime's
  // WebGPU provider has its own Vulkan device) pays for the switch, so no contestant may always be that one.
  for (let round = 0; round < warmup; round++) {
    for (let k = 0; k < contestants.length; k++) await once((round + k) % contestants.length, false);
  }
  afterWarmup?.();
  const b = Math.max(1, Math.floor(block));
  for (let round = 0, left = runs; left > 0; round++, left -= b) {
    for (let k = 0; k < contestants.length; k++) {
      const i = (warmup + round + k) % contestants.length;
      for (let j = 0; j < Math.min(b, left); j++) await once(i, true);
    }
  }
  return times;
}

/** Rows with min, mean, median, p90, p99, images per second (`batch` images a run) and the ratio of each median to the first row's (the fused plan). */
export function summarize(names: readonly string[], times: readonly number[][], batch = 1): BenchResult[] {
  const rows: BenchResult[] = names.map((name, i) => {
    const t = times[i];
    const m = median(t);
    return {
      name, medianMs: m, p90Ms: p90(t), minMs: t.reduce((a, b) => Math.min(a, b), Infinity), meanMs: t.reduce((a, b) => a + b, 0) / t.length,
      p99Ms: percentile(t, 99), imagesPerS: (1000 * batch) / m,
    };
  });
  const base = rows[0]?.medianMs;
  for (const r of rows) if (base && r.medianMs !== undefined) r.ratioToFused = r.medianMs / base;
  return rows;
}

/**
 * Seeded inputs (mulberry32), one per graph input, as float32: in [-1, 1) for float inputs; for an 8-bit quantized
 * input (an int8 TFLite model's uint8 image), values of its grid, scale * (q - zero point) for q over the whole
 * 8-bit range (the sessions quantize a float feed of such an input, on the GPU, back to those q).
 */
export function benchInputs(g: Graph, seed = 1): Record<string, Float32Array> {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out: Record<string, Float32Array> = {};
  for (const name of g.inputs) {
    const t = g.tensors.get(name)!;
    const n = t.shape.reduce((x, y) => x * y, 1);
    const q = t.quant;
    if ((t.dtype === 'uint8' || t.dtype === 'int8') && q && q.scale.length === 1) {
      const [lo, hi] = qLimits(t.dtype);
      const z = q.zeroPoint[0] ?? 0;
      out[name] = Float32Array.from({ length: n }, () => q.scale[0] * (lo + Math.floor(rand() * (hi - lo + 1)) - z));
      continue;
    }
    if (t.dtype !== 'float32') throw unsupported(`${g.source}: input '${name}'`, `bench feeds float32 inputs or 8-bit quantized ones; this one is ${t.dtype}`);
    out[name] = Float32Array.from({ length: n }, () => 2 * rand() - 1);
  }
  return out;
}

/**
 * Images per second of `s` with `inFlight` runs in flight (each a new run as soon as one finishes), `runs` runs per
 * round; rounds alternate with one-run-at-a-time rounds so that drift affects both alike; medians.
 */
export async function throughput(s: Pick<FcmSessionLike, 'run'>, inputs: Record<string, Float32Array>, batch: number, inFlight: number,
  runs: number, rounds = 3): Promise<BenchThroughput> {
  const round = async (k: number) => {
    let started = 0;
    const t0 = performance.now();
    const worker = async () => { while (started < runs) { started++; await s.run(inputs); } };
    await Promise.all(Array.from({ length: k }, worker));
    return (runs * batch) / ((performance.now() - t0) / 1000);
  };
  await round(inFlight);
  const conc: number[] = [], seq: number[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2) { seq.push(await round(1)); conc.push(await round(inFlight)); } else { conc.push(await round(inFlight)); seq.push(await round(1)); }
  }
  const ips = median(conc), sips = median(seq);
  return { concurrency: inFlight, runsPerRound: runs, rounds, imagesPerSecond: ips, sequentialImagesPerSecond: sips, ratio: ips / sips };
}

/** Mean per-run host time between two HostTimes readings. */
function hostSplit(a: HostTimesLike, b: HostTimesLike): BenchHostSplit | undefined {
  const n = b.runs - a.runs;
  if (n <= 0) return undefined;
  const d = (k: Exclude<keyof HostTimesLike, 'runs'>) => (b[k] - a[k]) / n;
  return { runs: n, uploadMs: d('uploadMs'), encodeMs: d('encodeMs'), submitMs: d('submitMs'), waitMs: d('waitMs'), readMs: d('readMs') };
}

/** The batch must reach the model: a fixed first dimension other than --batch is an error, not a silent 1. */
function checkBatch(g: Graph, batch: number): void {
  for (const name of g.inputs) {
    const s = g.tensors.get(name)!.shape;
    if (s.length > 0 && s[0] !== batch) {
      throw invalid(`${g.source}: input '${name}'`, `has a fixed batch dimension of ${s[0]}; --batch ${batch} cannot apply`);
    }
  }
}

/** Per module: the plan's estimates next to the GPU times of both runs; nodes outside modules on their own. */
/**
 * The control of a fused-vs-unfused comparison: the median ratio fused / unfused GPU time over the nodes that run
 * the same kernels in both sessions (not fused modules). 1 when both sessions ran at the same clocks; a run in
 * which one session ran slower reads well above 1 (1.36 for every layer of MobileNetV3's fused
 * session in one run, 1.000-1.032 in the others), and its per-module speedups are then not to be read.
 */
export function sessionDrift(layers: readonly Pick<BenchLayer, 'kind' | 'fusedGpuMs' | 'unfusedGpuMs'>[], fusedKinds: ReadonlySet<string>): number {
  const r = layers.filter((l) => !fusedKinds.has(l.kind) && l.fusedGpuMs && l.unfusedGpuMs).map((l) => l.fusedGpuMs! / l.unfusedGpuMs!);
  if (!r.length) return NaN;
  r.sort((a, b) => a - b);
  const m = r.length >> 1;
  return r.length % 2 ? r[m] : (r[m - 1] + r[m]) / 2;
}

export function joinLayers(plan: Plan, fusedGraph: Graph, fused: ProfileEntry[] | undefined, unfused: ProfileEntry[] | undefined): BenchLayer[] {
  const moduleOf = new Map<string, number>();
  plan.modules.forEach((m, i) => { for (const n of m.nodes ?? []) moduleOf.set(n, i); });
  // Fused nodes are named after their layers, and carry layer1/layer2 (src/graph/ir.ts).
  for (const n of fusedGraph.nodes) {
    if (n.domain !== fcmDomain) continue;
    const i = moduleOf.get(n.attrs.layer1 as string);
    if (i !== undefined) moduleOf.set(n.name, i);
  }
  const rows: BenchLayer[] = plan.modules.map((m, i) => ({
    module: i, kind: m.kind, nodes: [...(m.nodes ?? [])],
    gma: m.gma, gmaUnfused: m.gmaUnfused,
    ...(m.timeUs !== undefined ? { estUs: m.timeUs } : {}),
    ...(m.timeUsUnfused !== undefined ? { estUsUnfused: m.timeUsUnfused } : {}),
  }));
  const others = new Map<string, BenchLayer>();
  const add = (entries: ProfileEntry[] | undefined, key: 'fusedGpuMs' | 'unfusedGpuMs') => {
    for (const e of entries ?? []) {
      // A node a fold made from others is named after them, joined by '+' (a PointwiseMean: its Conv and pool,
      // src/rewrite/pointwise-mean.ts): it counts for the module of the first of them that has one.
      const i = moduleOf.get(e.node) ?? e.node.split('+').map((p) => moduleOf.get(p)).find((m) => m !== undefined);
      let row: BenchLayer;
      if (i !== undefined) row = rows[i];
      else {
        row = others.get(e.node) ?? { module: null, kind: e.op ?? 'other', nodes: [e.node] };
        others.set(e.node, row);
      }
      row[key] = (row[key] ?? 0) + e.gpuMs;
    }
  };
  add(fused, 'fusedGpuMs');
  add(unfused, 'unfusedGpuMs');
  return [...rows, ...others.values()];
}

interface OrtLike {
  InferenceSession: { create(path: string, o: object): Promise<OrtSession> };
  Tensor: new (type: 'float32', data: Float32Array, dims: number[]) => unknown;
}
interface OrtSession {
  inputNames: readonly string[];
  outputNames: readonly string[];
  run(feeds: Record<string, unknown>): Promise<Record<string, { data: unknown; dispose?: () => void }>>;
  release(): Promise<void>;
}

async function ortContestant(ort: OrtLike, name: string, path: string, provider: 'webgpu' | 'cpu', g: Graph,
  inputs: Record<string, Float32Array>): Promise<{ c: Contestant; release: () => Promise<void> }> {
  const session = await ort.InferenceSession.create(path, { executionProviders: [provider], logSeverityLevel: 3 });
  const run = async () => {
    // Tensors from host arrays each run (as fcm-opt gets them); outputs land in host memory (ORT's default
    // output location is the CPU for every provider); reading .data makes sure they are there.
    const feeds: Record<string, unknown> = {};
    for (const x of g.inputs) feeds[x] = new ort.Tensor('float32', inputs[x], g.tensors.get(x)!.shape);
    const out = await session.run(feeds);
    for (const y of session.outputNames) {
      const d = out[y].data as ArrayLike<number>;
      if (d.length === 0 && numelOf(g, y) !== 0) throw new Error(`${name}: output '${y}' came back empty`);
    }
  };
  return { c: { name, run }, release: () => session.release() };
}

/** What an onnxruntime session of the model adds (as check charges it): the model bytes, its own copy of the
 *  weights (about the file again) and, without reuse at most, every activation in float32. */
function ortSessionBytes(g: Graph, modelPath: string): number {
  let activations = 0;
  for (const t of g.tensors.values()) if (t.data === undefined && !t.shapeUnknown) activations += 4 * t.shape.reduce((a, b) => a * b, 1);
  return 2 * statSync(modelPath).size + activations;
}

const numelOf = (g: Graph, y: string) => (g.tensors.get(y)?.shape ?? []).reduce((a, b) => a * b, 1);

function fcmContestant(name: string, s: FcmSessionLike, g: Graph, inputs: Record<string, Float32Array>): Contestant {
  return {
    name,
    run: async () => {
      const out = (await s.run(inputs)) as Record<string, unknown> | null;
      if (!out || typeof out !== 'object') throw new Error(`${name}: run() returned no outputs`);
      for (const y of g.outputs) if (!(y in out)) throw new Error(`${name}: run() did not return output '${y}'`);
    },
  };
}

export const contestantNames = ['fcm-opt fused', 'fcm-opt unfused', 'onnxruntime webgpu', 'onnxruntime cpu', 'litert.js cpu'] as const;

/**
 * LiteRT.js (TFLite in WASM, XNNPACK on the CPU) on the same .tflite file, in headless Chromium: `runs` timed runs
 * after `warmup`, each from a fixed input to every output read into JS. It runs in its own process after the
 * in-process contestants, so its runs are not interleaved with theirs (a CPU contestant: GPU clocks do not matter).
 */
export async function timeLiteRt(model: Uint8Array, runs: number, warmup: number, opts: LiteRtOptions & { threads?: boolean } = {}): Promise<{ times: number[]; label: string }> {
  const job = { runs: [{ name: 'model', model: '/model.tflite', accelerator: 'wasm', inputs: 'random' as const, timing: { warmup, iterations: runs } }], threads: opts.threads };
  const r = await runLiteRt(job, { '/model.tflite': model }, opts);
  const times = r.runs[0]?.results[0]?.timing;
  if (!times || times.length !== runs) throw new Error(`LiteRT.js returned ${times?.length ?? 0} timings, expected ${runs}`);
  return { times, label: `LiteRT.js ${liteRtVersion}, XNNPACK, ${opts.threads ? 'threads' : '1 thread'}, ${r.userAgent.replace(/^.*(HeadlessChrome\/\S+).*$/, '$1')}` };
}

/** The whole bench of one model. Throws FcmError for bad input or a failing fcm-opt run. */
export async function runBench(modelPath: string, opts: BenchOptions = {}): Promise<BenchReport> {
  const runs = opts.runs ?? 20;
  const warmup = opts.warmup ?? 3;
  const block = opts.block ?? 10;
  const concurrency = opts.concurrency ?? 1;
  for (const [k, v, min] of [['--batch', opts.batch ?? 1, 1], ['--runs', runs, 1], ['--warmup', warmup, 0], ['--block', block, 1], ['--concurrency', concurrency, 1]] as const) {
    if (!Number.isSafeInteger(v) || v < min) throw invalid(k, `expected an integer >= ${min}, got ${v}`);
  }
  // A .task bundle holds TFLite models (FILE.task#MEMBER names one).
  const tflite = /\.(tflite|task)$/.test(modelPath.toLowerCase());
  const inputShapes = opts.inputShapes && Object.keys(opts.inputShapes).length > 0 ? opts.inputShapes : undefined;
  if (inputShapes && tflite) throw invalid(modelPath, '--input-shape cannot apply: a .tflite file fixes the shapes of its inputs');
  for (const [name, dims] of Object.entries(inputShapes ?? {})) {
    if (opts.batch !== undefined && dims[0] !== opts.batch) {
      throw invalid('--input-shape', `gives input '${name}' a first dimension of ${dims[0]}; --batch ${opts.batch} cannot apply (give one of them)`);
    }
  }
  const graph = await load(modelPath, { batch: opts.batch, inputShapes, maxMemory: opts.maxMemory });
  if (opts.batch !== undefined) checkBatch(graph, opts.batch);
  const batch = opts.batch ?? graph.tensors.get(graph.inputs[0])?.shape[0] ?? 1;
  const adapter = await adapterSummary();
  const hwName = opts.hw ?? 'auto';
  if (hwName === 'auto' && !adapter.adapter) throw unsupported('--hw auto', `no WebGPU adapter (${adapter.description}); pass --hw with a file or a name`);
  const hw = await resolveHw(hwName);
  const inputs = benchInputs(graph);

  const createSession: CreateSession = opts.createSession ?? (async (m, o) => timedSession(await createFcmSession(m, o)));
  const sessions: FcmSessionLike[] = [];
  const releases: (() => Promise<void>)[] = [];
  const results: BenchResult[] = [];
  let litertLabel: string | undefined;
  try {
    const precision = opts.precision ?? 'fp32';
    const made = {
      batch, inputShapes, maxMemory: opts.maxMemory, ...(opts.keepF32 !== undefined ? { fp16: { keepF32: opts.keepF32 } } : {}),
      ...(opts.subBatches !== undefined ? { subBatches: opts.subBatches } : {}),
    };
    const unfused = await createSession(modelPath, { hw, plan: 'unfused', precision, ...made });
    sessions.push(unfused);
    // A quantized model that createSession runs on the integer kernels (path 'int8') is planned as they run it:
    // 1-byte elements, its integer graph's layers (src/pipeline/pipeline.ts planningInput).
    const pin0 = planningInput(graph, hw, unfused.path === 'int8', precision);
    const pin = { ...pin0, dag: validateDag(pin0.dag, `${modelPath} (layer DAG)`), batch };
    const plan = opts.plan ?? planFor(pin, { model: basename(modelPath) });
    const fusedGraph = rewrite(pin.graph, pin.precision, plan);
    const fused = await createSession(modelPath, { hw, plan, precision, ...made, ...(concurrency > 1 ? { maxInFlight: concurrency } : {}) });
    sessions.unshift(fused);
    const contestants: Contestant[] = [fcmContestant(contestantNames[0], fused, graph, inputs), fcmContestant(contestantNames[1], unfused, graph, inputs)];
    const unavailable: BenchResult[] = [];
    const tfjs = /\.(json|keras|h5)$/.test(modelPath.toLowerCase());
    for (const [name, provider] of [[contestantNames[2], 'webgpu'], [contestantNames[3], 'cpu']] as const) {
      if (tflite || tfjs) { unavailable.push({ name, unavailable: `onnxruntime reads ONNX files, not ${tflite ? 'TFLite' : 'Keras models'}` }); continue; }
      try {
        // Without onnxruntime-node (an optional peer) its rows say so; fcm-opt's own rows still run.
        const ort = (await loadOnnxruntime('bench (the onnxruntime contestants)')) as unknown as OrtLike;
        checkMemory(opts.maxMemory, ortSessionBytes(graph, modelPath), `onnxruntime's ${provider} session`, modelPath);
        const o = await ortContestant(ort, name, modelPath, provider, graph, inputs);
        // A provider that starts but cannot run this model counts as unavailable too.
        await o.c.run();
        contestants.push(o.c);
        releases.push(o.release);
      } catch (e) {
        // Over the memory budget is the command's error (exit 4), not an unavailable row.
        if (e instanceof FcmError && e.kind === 'limit') throw e;
        unavailable.push({ name, unavailable: firstLine(e) });
      }
    }
    let host0: HostTimesLike | undefined;
    const times = await timeContestants(contestants, runs, warmup, opts.onProgress, block, () => { host0 = fused.hostTimes?.(); });
    const host1 = fused.hostTimes?.();
    const split = host0 && host1 ? hostSplit(host0, host1) : undefined;
    const tput = opts.concurrency !== undefined ? await throughput(fused, inputs, batch, concurrency, Math.max(runs, 2 * concurrency)) : undefined;
    const names = contestants.map((c) => c.name);
    // LiteRT.js runs the file as it is: with --batch the sessions run another batch than the file's (a re-batched import).
    if (tflite && opts.litert !== false && opts.batch !== undefined && opts.batch > 1) {
      unavailable.push({ name: contestantNames[4], unavailable: `LiteRT.js runs the file's own batch, not --batch ${opts.batch} (time it without --batch)` });
    } else if (tflite && opts.litert !== false) {
      try {
        const lr = await timeLiteRt((await readModelFile(modelPath, { maxMemory: opts.maxMemory })).bytes, runs, warmup, typeof opts.litert === 'object' ? opts.litert : {});
        names.push(contestantNames[4]);
        times.push(lr.times);
        litertLabel = lr.label;
      } catch (e) {
        unavailable.push({ name: contestantNames[4], unavailable: firstLine(e) });
      }
    }
    const timed = summarize(names, times, batch);
    for (const name of contestantNames) {
      const r = timed.find((x) => x.name === name) ?? unavailable.find((x) => x.name === name);
      if (r) results.push(r.name === contestantNames[4] && litertLabel ? { ...r, detail: litertLabel } : r);
    }

    let layers: BenchLayer[] = [];
    let layersUnavailable: string | undefined;
    let layersMethod: string | undefined;
    try {
      const rawFused = await fused.profile(inputs);
      const rawUnfused = await unfused.profile(inputs);
      const methods = [...new Set([profileMethod(rawFused), profileMethod(rawUnfused)].filter((m) => m !== undefined))];
      if (methods.length > 0) layersMethod = methods.join('/');
      // Each node alone in one heated pass, 6 rounds alternating the two sessions, each first in 3
      // (src/bench/profile.ts), where the sessions can; else medians of 5 interleaved profiles: a single profile of one after the other
      // carries the GPU's clock drift into every fused-vs-LBL comparison.
      const m = await medianModuleTimes([fused, unfused], inputs, 5, { warmRuns: 10 });
      if (m.method === 'pass') layersMethod = 'pass';
      const [pf, pu] = m.times;
      layers = joinLayers(plan, fusedGraph, pf, pu);
    } catch (e) {
      layersUnavailable = firstLine(e);
      layers = joinLayers(plan, fusedGraph, undefined, undefined);
    }
    return {
      model: modelPath, hw: hw.name, device: adapter.description,
      ...(opts.createSession ? {} : { deviceFeatures: describeDevice(await acquireGpu()) }),
      precision: unfused.path ?? precision, batch, subBatches: fused.subBatches ?? 1, runs, warmup, block, results, layers,
      ...(fused.f32Tensors?.length ? { f32Tensors: fused.f32Tensors } : {}),
      ...(layersUnavailable ? { layersUnavailable } : {}),
      ...(layersMethod ? { layersMethod } : {}),
      ...(split ? { hostSplit: split } : {}),
      ...(tput ? { throughput: tput } : {}),
    };
  } finally {
    for (const s of sessions) await s.dispose();
    for (const r of releases) await r().catch(() => undefined);
  }
}
