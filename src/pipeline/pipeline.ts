// The pipeline from a model to the graph the executor runs, in stages every caller shares:
//   load     a model file, bytes or graph -> the graph IR (converters/);
//   prepare  the graph a precision plans and runs on, and how the planner sees it (planningInput): fp32 and fp16 run
//            quantized graphs dequantized and plan with 4- and 2-byte elements; int8 folds the epilogues its integer
//            convs take (never residual Adds, nor activations that change the quantization) and plans with 1-byte
//            elements;
//   plan     planFusion of that DAG (optimal mode), or a given Plan;
//   rewrite  applyPlan (or epilogues only, 'unfused'), then pads folded into the convs that read them; float graphs
//            also fold residual activations, channel shuffles (then each into the pointwise conv computing one of its
//            inputs where the rules hold), squeeze-excite blocks, activations after Gemm / MatMul, a pointwise Conv
//            read only by a global average pool, a Transpose to channels-last after a pointwise Conv and a Resize read
//            only as a residual (src/rewrite/residual-activation.ts, channel-shuffle.ts, shuffle-conv.ts,
//            squeeze-excite.ts, epilogues.ts, pointwise-mean.ts, channels-last-store.ts, resized-residual.ts).
// createSession runs them all (pipeline()); `plan`/`report` load and plan; the tuner and the bench prepare and plan
// with options of their own (excluded pairs, a tuned plan) and create sessions with the result.

import { extname } from 'node:path';
import type { Graph, Node, Tensor } from '../graph/ir.js';
import { invalid, unsupported } from '../errors.js';
import { checkMemory } from '../memory-budget.js';
import type { HwConfig } from '../planner/hw-config.js';
import type { Dag } from '../planner/dag.js';
import type { Plan } from '../planner/plan.js';
import { planFusion } from '../planner/index.js';
import { loadDag, validateDag } from '../planner/dag-load.js';
import { loadModel } from '../graph/load.js';
import { readInputFile } from '../input-file.js';
import { looksLikeTfjsJson } from '../../converters/keras/import.js';
import { defaultMaxMemory } from '../../converters/options.js';
import { toDag } from '../planner/to-dag.js';
import { dequantizeGraph, isQuantizedGraph } from '../graph/passes/dequantize.js';
import { prepareGraph } from '../graph/prepare.js';
import { batchOf } from '../graph/util.js';
import { foldMatrixActivations, fuseEpilogues } from '../rewrite/epilogues.js';
import { applyPlan } from '../rewrite/apply-plan.js';
import { foldPads } from '../rewrite/fold-pads.js';
import { foldResidualActivations } from '../rewrite/residual-activation.js';
import { foldChannelShuffles } from '../rewrite/channel-shuffle.js';
import { foldShufflesIntoConvs, shuffleConvEnabled } from '../rewrite/shuffle-conv.js';
import { channelsLastEnabled, foldTransposesIntoConvs } from '../rewrite/channels-last-store.js';
import { foldResizesIntoResiduals, resizedResidualEnabled } from '../rewrite/resized-residual.js';
import { foldSqueezeExcites } from '../rewrite/squeeze-excite.js';
import { foldPointwiseMeans } from '../rewrite/pointwise-mean.js';
import { applyKernelChoices } from '../rewrite/kernel-choices.js';
import { sameQuant } from '../runtime/compile.js';
import type { FloatPrecision, PrecisionName } from '../runtime/precision.js';
import { resolveHw } from './hw.js';

export type ModelInput = string | Uint8Array | Graph;

export interface LoadOptions {
  /** Value for a symbolic batch dimension (model files). */
  batch?: number;
  /** Static shapes for inputs with symbolic dims (model files). */
  inputShapes?: Record<string, number[]>;
  /** ImportOptions.maxMemory: budget for importing the model (default 4 GiB). */
  maxMemory?: number;
}

export interface PipelineOptions extends LoadOptions {
  /** Float models: 'fp32' (default) or 'fp16' (f16 tensors in memory, f32 arithmetic; planned with 2-byte elements). */
  precision?: FloatPrecision;
  /** 'auto' (default): planned with fcm-opt's planner and fused; 'unfused': epilogues only; or a Plan to apply. */
  plan?: 'auto' | 'unfused' | Plan;
  /** GPU description for 'auto' (src/pipeline/hw.ts resolveHw; default: the adapter). */
  hw?: HwConfig | string;
  /** Squeeze-excite blocks as one dispatch (default false: slower on an H100, see src/rewrite/squeeze-excite.ts). */
  squeezeExcite?: boolean;
  /** RewriteOptions.shuffleConv: channel shuffles folded into pointwise convs (default on unless FCM_OPT_SHUFFLE_CONV=0). */
  shuffleConv?: boolean;
  /** RewriteOptions.foldPool. */
  foldPool?: boolean;
  /** RewriteOptions.channelsLast. */
  channelsLast?: boolean;
  /** RewriteOptions.resizedResidual. */
  resizedResidual?: boolean;
}

/** Choices of the rewrite beyond the plan. */
export interface RewriteOptions {
  squeezeExcite?: boolean;
  /** Channel shuffles folded into pointwise convs (src/rewrite/shuffle-conv.ts; default on unless FCM_OPT_SHUFFLE_CONV=0). */
  shuffleConv?: boolean;
  /** A pointwise Conv read only by a global average pool as one PointwiseMean node (default: on unless poolFoldOffByEnv). */
  foldPool?: boolean;
  /** A Transpose to channels-last folded into the pointwise Conv before it (src/rewrite/channels-last-store.ts; default
   *  on unless FCM_OPT_CHANNELS_LAST=0). */
  channelsLast?: boolean;
  /** A Resize read only as a pointwise Conv's or DW-PW FCM's residual, read through by that node
   *  (src/rewrite/resized-residual.ts; default on unless FCM_OPT_RESIZED_RESIDUAL=0). */
  resizedResidual?: boolean;
}

/**
 * FCM_OPT_FOLD_POOL=0 in the environment: float graphs keep a pointwise Conv and the global average pool after it as
 * two dispatches (src/rewrite/pointwise-mean.ts), for measuring the fold in one job. Read when a graph is rewritten.
 */
export function poolFoldOffByEnv(): boolean {
  return typeof process !== 'undefined' && process.env?.FCM_OPT_FOLD_POOL === '0';
}

const isGraph = (m: ModelInput): m is Graph => typeof m === 'object' && !(m instanceof Uint8Array) && 'nodes' in m;

// ---- load -------------------------------------------------------------------------------------------------------

export async function load(model: ModelInput, options: LoadOptions = {}): Promise<Graph> {
  return isGraph(model) ? model : (await loadChecked(model, options)).graph;
}

/**
 * The one check of a model every command runs (dag, plan, run, check, bench, report, -o), so that no command accepts
 * a file another refuses: the import (structure, types, quantization, shapes: src/graph/load.ts), then the layer DAG
 * the planners read, checked as a DAG file is (ids, edges, conv shapes, sizes: validateDag).
 */
export async function loadChecked(model: string | Uint8Array, options: LoadOptions & { source?: string } = {}): Promise<{ graph: Graph; dag: Dag }> {
  const graph = await loadModel(model, { batch: options.batch, inputShapes: options.inputShapes, maxMemory: options.maxMemory, source: options.source });
  // The importer charged what it allocated; what it left in use (and the planner works in) must fit too.
  checkMemory(options.maxMemory, 0, 'after importing the model', graph.source);
  return { graph, dag: checkedDag(graph) };
}

/** The layer DAG of a loaded graph, checked as a DAG file is. */
export const checkedDag = (graph: Graph): Dag => validateDag(toDag(graph), `${graph.source} (layer DAG)`);

/** What `plan` and `report` take: a .json FusePlanner layer DAG, or a model (its graph kept) through the converters. */
export async function loadPlanSource(path: string, options: Pick<LoadOptions, 'batch' | 'maxMemory'> & { inputShape?: Record<string, number[]> }): Promise<{ dag: Dag; graph?: Graph }> {
  const ext = extname(path).toLowerCase();
  // A .json is a FusePlanner layer DAG unless it is a TF.js Layers model (Keras topology plus weight shards).
  const tfjs = ext === '.json' && looksLikeTfjsJson(await readInputFile(path, { maxBytes: options.maxMemory ?? defaultMaxMemory }));
  if (ext === '.json' && !tfjs) {
    if (options.batch !== undefined || options.inputShape !== undefined) {
      throw invalid(path, '--batch and --input-shape apply to models, not to a layer DAG (.json)');
    }
    return { dag: loadDag(path, options.maxMemory) };
  }
  if (ext === '.onnx' || ext === '.tflite' || ext === '.task' || ext === '.keras' || ext === '.h5' || tfjs) {
    return loadChecked(path, { batch: options.batch, inputShapes: options.inputShape, maxMemory: options.maxMemory });
  }
  throw unsupported(path, `unknown input type '${ext || 'no extension'}' (expected .onnx, .tflite, a .task bundle, .keras, .h5, a TF.js model.json or a layer DAG .json)`);
}

export async function loadPlanInput(path: string, options: Pick<LoadOptions, 'batch' | 'maxMemory'> & { inputShape?: Record<string, number[]> }): Promise<Dag> {
  return (await loadPlanSource(path, options)).dag;
}

// ---- prepare ----------------------------------------------------------------------------------------------------

/** The graph a precision plans and rewrites, and the planner's view of it. */
export interface PlanningInput {
  precision: PrecisionName;
  hw: HwConfig;
  graph: Graph;
  dag: Dag;
  dtypeBytes: number;
  /** Bytes per element of an FCM's tiles in workgroup memory (fp16: 4, its kernels stage f32 tiles). */
  tileBytes: number;
  batch: number;
}

const hold = 'ai.fcm.opt.int8-hold';
const activationOps = new Set(['Relu', 'Clip', 'HardSwish', 'HardSigmoid', 'Sigmoid', 'SiLU', 'LeakyRelu', 'Tanh']);

/** Hides from fuseEpilogues the nodes that must not fold into an integer Conv (see the header). */
function maskEpilogues(g: Graph): Graph {
  const keep = (n: Node) => {
    if (n.domain !== '') return true;
    if (n.op === 'Add') return false;
    if (!activationOps.has(n.op)) return true;
    return (n.op === 'Relu' || n.op === 'Clip') && sameQuant(g.tensors.get(n.inputs[0]) as Tensor | undefined, g.tensors.get(n.outputs[0]));
  };
  return { ...g, nodes: g.nodes.map((n) => (keep(n) ? n : { ...n, domain: hold })) };
}

function unmask(g: Graph): Graph {
  return { ...g, nodes: g.nodes.map((n) => (n.domain === hold ? { ...n, domain: '' } : n)) };
}

/** Bytes of one tensor element as the planner's GMA and time models count them. */
export const elementBytes = (p: PrecisionName): number => (p === 'int8' ? 1 : p === 'fp16' ? 2 : 4);
/** Bytes per element of an FCM tile in workgroup memory: the fp16 kernels compute and stage in f32 (kernels/f16.ts). */
const tileBytesOf = (p: PrecisionName): number => (p === 'int8' ? 1 : 4);

/** The graph of `g` that `precision` plans on: int8 with its epilogues folded; fp32 / fp16 dequantized when quantized. */
function baseGraph(g: Graph, precision: PrecisionName): Graph {
  if (precision === 'int8') return unmask(fuseEpilogues(maskEpilogues(g)));
  // The float kernels run quantized (TFLite int8) graphs with dequantized weights and activations.
  return isQuantizedGraph(g) ? prepareGraph(dequantizeGraph(g)) : g;
}

/**
 * The DAG, element size and batch the sessions of `g` plan with on `hw`: the integer executor's for a quantized
 * graph that runs on the integer kernels (`integer`; a quantized graph some node of which has no integer kernel
 * runs dequantized on the float kernels, and is planned as those are, with `float` elements).
 */
export function planningInput(g: Graph, hw: HwConfig, integer = isQuantizedGraph(g), float: FloatPrecision = 'fp32'): PlanningInput {
  const precision: PrecisionName = integer ? 'int8' : float;
  const graph = baseGraph(g, precision);
  // The integer graph's DAG with its pads folded, as the tuner and the bench have always planned it.
  const seen = precision === 'int8' ? foldPads(graph) : graph;
  return { precision, hw, graph, dag: toDag(seen), dtypeBytes: elementBytes(precision), tileBytes: tileBytesOf(precision), batch: batchOf(seen) };
}

// ---- plan -------------------------------------------------------------------------------------------------------

/** The optimal plan of a planning input. `model`: the name recorded (default the graph's source). */
export function planFor(pin: PlanningInput, options: { model?: string; exclude?: ReadonlySet<string> } = {}): Plan {
  return planFusion(pin.dag, pin.hw, { mode: 'optimal', model: options.model ?? pin.graph.source, dtypeBytes: pin.dtypeBytes, tileBytes: pin.tileBytes, batch: pin.batch, exclude: options.exclude });
}

// ---- rewrite ----------------------------------------------------------------------------------------------------

/** The graph the executor runs: `plan` applied to the prepared graph (or epilogues only), pads folded. */
export function rewrite(graph: Graph, precision: PrecisionName, plan: 'unfused' | Plan, options: RewriteOptions = {}): Graph {
  if (precision === 'int8') return plan === 'unfused' ? foldPads(graph) : foldPads(unmask(applyPlan(maskEpilogues(graph), plan)));
  const folded = plan === 'unfused' ? foldPads(fuseEpilogues(graph)) : foldPads(applyPlan(graph, plan));
  // Work that is only data movement or a cheap element-wise step, folded into its neighbours (fewer dispatches).
  const shuffled = foldChannelShuffles(foldResidualActivations(folded));
  const matrix = foldMatrixActivations(options.squeezeExcite === true ? foldSqueezeExcites(shuffled) : shuffled);
  // The pool after a pointwise Conv (the heads of the MobileNet family): the Conv's output is never written.
  const g = (options.foldPool ?? !poolFoldOffByEnv()) ? foldPointwiseMeans(matrix) : matrix;
  // Last, so that no pass before them meets a Conv with a shuffled or channels-last store or a resized residual.
  const shuffledConvs = (options.shuffleConv ?? shuffleConvEnabled()) ? foldShufflesIntoConvs(g) : g;
  const nhwc = (options.channelsLast ?? channelsLastEnabled()) ? foldTransposesIntoConvs(shuffledConvs) : shuffledConvs;
  const out = (options.resizedResidual ?? resizedResidualEnabled()) ? foldResizesIntoResiduals(nhwc) : nhwc;
  return plan === 'unfused' ? out : applyKernelChoices(out, plan.kernels);
}

/** Prepare, plan ('auto': on hw()) and rewrite `g` for `precision`. */
export function graphForRun(g: Graph, precision: PrecisionName, plan: 'auto' | 'unfused' | Plan, hw: () => HwConfig, options: RewriteOptions = {}): Graph {
  const graph = baseGraph(g, precision);
  if (plan !== 'auto') return rewrite(graph, precision, plan, options);
  const pin: PlanningInput = { precision, hw: hw(), graph, dag: toDag(graph), dtypeBytes: elementBytes(precision), tileBytes: tileBytesOf(precision), batch: batchOf(graph) };
  return rewrite(graph, precision, planFor(pin, { model: g.source }), options);
}

/** The whole pipeline: load, prepare, plan (resolving `hw` only for 'auto') and rewrite. */
export async function pipeline(model: ModelInput, precision: PrecisionName, options: PipelineOptions = {}): Promise<Graph> {
  const g = await load(model, options);
  const plan = options.plan ?? 'auto';
  const hw = plan === 'auto' ? await resolveHw(options.hw) : undefined;
  return graphForRun(g, precision, plan, () => hw!, { squeezeExcite: options.squeezeExcite, shuffleConv: options.shuffleConv, foldPool: options.foldPool, channelsLast: options.channelsLast, resizedResidual: options.resizedResidual });
}

/** The float executor's graph for these options (what createSession runs on the float kernels, fp32 or fp16). */
export function prepareForRun(model: ModelInput, options: PipelineOptions = {}): Promise<Graph> {
  return pipeline(model, options.precision ?? 'fp32', options);
}

/** The integer executor's graph of `g`: epilogues folded, and FCM nodes for 'auto' (planned with 1-byte elements) or a Plan. */
export function prepareInt8Graph(g: Graph, plan: 'auto' | 'unfused' | Plan, hw: () => HwConfig): Graph {
  return graphForRun(g, 'int8', plan, hw);
}
