// Reading an optimized model (src/export/optimized.ts) back: the fused nodes become IR fused nodes with
// exactly the attributes of src/graph/ir.ts, and the plan is restored without planning again: from the
// plan recorded in metadata_props (checked against the fused nodes), or, when a tool dropped the metadata,
// from the fused nodes alone (kinds, node names and tiles; no estimates).
//
// The file is also checked for what would make onnxruntime and fcm-opt compute different things: a fused
// node whose overload does not match its epilogue attributes, a function body other than the one fcm-opt
// writes, activation parameters or a depthwise group that disagree between the two spellings.

import { budgetFor, maxMessageBytes, readInputFile } from '../input-file.js';
import { invalid, unsupported } from '../errors.js';
import { fcmDomain, newAttrs, type FcmOp, type Graph, type Node } from '../graph/ir.js';
import { cloneGraph, originalNode } from '../graph/util.js';
import { decodeModel, onnx } from '../../converters/onnx/codec.js';
import { onnxNodeOf } from '../../converters/onnx/import.js';
import { loadModel } from '../graph/load.js';
import { defaultMaxMemory, type ImportOptions } from '../../converters/options.js';
import type { Plan, PlanModule, Tiles } from '../planner/plan.js';
import {
  activationParamNames, checkPlanMatchesGraph, depthwiseLayer, fcmFunction, fcmNodeAttrs, fcmOps, kindOfFcmOp,
  overloadName, planMetadataKey, variantOf,
} from './optimized.js';

/** What the reader needs of the ModelProto besides the graph. */
export interface OptimizedModelInfo {
  /** The plan recorded at export, when present. */
  recordedPlan?: Plan;
  /** Model-local functions of the ai.fcm.opt domain by `op:overload`. */
  functions: Map<string, onnx.FunctionProto>;
  /** Default-domain opset of the model. */
  opset: number;
}

export function optimizedModelInfo(model: onnx.ModelProto, source: string): OptimizedModelInfo {
  const functions = new Map<string, onnx.FunctionProto>();
  for (const f of model.functions) if (f.domain === fcmDomain) functions.set(`${f.name}:${f.overload ?? ''}`, f);
  let opset = 17;
  for (const o of model.opsetImport) if (!o.domain || o.domain === 'ai.onnx') opset = Number(o.version);
  let recordedPlan: Plan | undefined;
  const meta = model.metadataProps.find((p) => p.key === planMetadataKey);
  if (meta) {
    try {
      recordedPlan = JSON.parse(meta.value ?? '') as Plan;
    } catch (e) {
      throw invalid(source, `metadata '${planMetadataKey}' is not valid JSON (${(e as Error).message})`);
    }
    if (!recordedPlan || typeof recordedPlan !== 'object' || !Array.isArray(recordedPlan.modules)) {
      throw invalid(source, `metadata '${planMetadataKey}' is not a plan (no modules)`);
    }
  }
  return { recordedPlan, functions, opset };
}

/** Encoded function without its doc string: two functions compute the same when these bytes agree. */
function functionKey(f: onnx.FunctionProto | onnx.FunctionProto.$Properties): string {
  const copy = { ...(f as object), docString: '' } as onnx.FunctionProto;
  return Array.from(onnx.FunctionProto.encode(copy).finish(), (b) => b.toString(16).padStart(2, '0')).join('');
}

const sameFloat32 = (a: number, b: number) => Math.fround(a) === Math.fround(b);

/**
 * Fused nodes of an imported optimized model to the IR convention: inputs padded to 6, attributes as in
 * src/graph/ir.ts (the function-body spellings `group`, `min1`, ... checked, then dropped). With `info`,
 * also checks each node's overload and the function it selects.
 */
export function normalizeFusedNodes(g0: Graph, info?: OptimizedModelInfo): Graph {
  const g = cloneGraph(g0);
  const checkedFunctions = new Set<string>();
  for (const n of g.nodes) {
    if (n.domain !== fcmDomain) continue;
    const where = `${g.source}: node '${n.name}' (${n.op})`;
    if (!(fcmOps as readonly string[]).includes(n.op)) throw unsupported(where, `unknown op type in domain ${fcmDomain} (expected ${fcmOps.join(', ')})`);
    // -o of a quantized model writes its fused modules in QDQ form, with the intermediate's scale and zero point.
    if (n.inputs.length === 8 && n.inputs[6] && n.inputs[7]) {
      throw unsupported(where, 'is a quantized fused module in QDQ form (written by -o of an int8 model): fcm-opt does not read QDQ models back; run or plan the original .tflite');
    }
    if (n.inputs.length > 6) throw invalid(where, `has ${n.inputs.length} inputs; a fused module takes [x, w1, b1, w2, b2, residual]`);
    while (n.inputs.length < 6) n.inputs.push('');
    const v = variantOf(g, n);
    const attrs = newAttrs();
    for (const k of fcmNodeAttrs) if (n.attrs[k] !== undefined) attrs[k] = n.attrs[k];
    for (const i of [1, 2] as const) {
      const act = i === 1 ? v.activation1 : v.activation2;
      if (!act) {
        if (attrs[`activationParams${i}`] !== undefined) throw invalid(where, `has activationParams${i} but no activation${i}`);
        continue;
      }
      const names = activationParamNames[act];
      const scalars = names.map((p) => n.attrs[`${p}${i}`]);
      let params = attrs[`activationParams${i}`] as number[] | undefined;
      if (params === undefined && names.length > 0) {
        if (scalars.some((s) => typeof s !== 'number')) throw invalid(where, `${act} epilogue of layer ${i} has no parameters (${names.map((p) => `${p}${i}`).join(', ')})`);
        params = scalars as number[];
        attrs[`activationParams${i}`] = params;
      }
      if (params !== undefined) {
        if (!Array.isArray(params) || params.length !== names.length) throw invalid(where, `activationParams${i} of ${act} must be ${names.length} numbers`);
        names.forEach((p, k) => {
          const s = scalars[k];
          if (s !== undefined && (typeof s !== 'number' || !sameFloat32(s, params![k]))) {
            throw invalid(where, `attribute ${p}${i} (${String(s)}) disagrees with activationParams${i}[${k}] (${params![k]})`);
          }
        });
      }
    }
    const dw = depthwiseLayer[v.op];
    if (dw !== null) {
      const group = n.attrs.group;
      const w = g.tensors.get(n.inputs[dw === 1 ? 1 : 3]);
      if (group !== undefined && w && w.shape.length === 4 && group !== w.shape[0]) {
        throw invalid(where, `group ${String(group)} is not the depthwise layer's ${w.shape[0]} channels`);
      }
    }
    for (const k of ['tileFilters1', 'tileFilters2', 'tileH', 'tileW']) {
      const t = attrs[k];
      if (typeof t !== 'number' || !Number.isInteger(t) || t < 1) throw invalid(where, `attribute '${k}' must be a positive integer (the planner's tile)`);
    }
    for (const k of ['layer1', 'layer2']) if (typeof attrs[k] !== 'string' || !attrs[k]) throw invalid(where, `attribute '${k}' must name the original Conv node`);
    if (info) {
      const np = onnxNodeOf.get(originalNode(n));
      const want = overloadName(v);
      const have = np?.overload ?? '';
      if (np && have !== want) throw invalid(where, `overload '${have}' does not match its epilogues (expected '${want}')`);
      const key = `${v.op}:${want}`;
      if (!checkedFunctions.has(key)) {
        const f = info.functions.get(key);
        if (!f) throw invalid(where, `the model has no function ${fcmDomain}.${v.op} overload '${want}'`);
        if (functionKey(f) !== functionKey(fcmFunction(v, info.opset))) {
          throw invalid(where, `function ${fcmDomain}.${v.op} overload '${want}' differs from the computation fcm-opt runs for it`);
        }
        checkedFunctions.add(key);
      }
    }
    n.attrs = attrs;
  }
  return g;
}

/** The tiles of a fused node as plan Tiles, the inverse of applyPlan's mapping. */
function tilesOfNode(n: Node): Tiles {
  const f1 = n.attrs.tileFilters1 as number;
  const t: Tiles = { l2Filters: n.attrs.tileFilters2 as number, h: n.attrs.tileH as number, w: n.attrs.tileW as number };
  // DW-PW: tileFilters1 is the depth step (applyPlan: t.d ?? t.l1Filters).
  if (n.op === 'FusedDwPw') t.d = f1;
  else t.l1Filters = f1;
  return t;
}

/** The node attributes a module's tiles turn into (src/rewrite/apply-plan.ts). */
function nodeTilesOfModule(m: PlanModule): number[] {
  const t = m.tiles;
  return [m.kind === 'dwpw' ? t.d ?? t.l1Filters ?? NaN : t.l1Filters ?? NaN, t.l2Filters ?? NaN, t.h ?? NaN, t.w ?? NaN];
}

/**
 * The plan of a graph with fused nodes. With the plan recorded at export, checks that it is the plan of
 * these nodes (same modules, same tiles) and returns it; without one, builds the fused modules from the
 * nodes (kind, original node names, tiles): `layers` is empty and the GMA estimates are 0 (unknown).
 */
export function planFromGraph(g: Graph, recorded?: Plan): Plan {
  const fused = g.nodes.filter((n) => n.domain === fcmDomain);
  for (const n of fused) variantOf(g, n);
  if (recorded) {
    checkPlanMatchesGraph(g, recorded);
    for (const n of fused) {
      const m = recorded.modules.find((x) => x.kind === kindOfFcmOp[n.op as FcmOp] && x.nodes?.includes(n.attrs.layer1 as string) && x.nodes?.includes(n.attrs.layer2 as string))!;
      const have = ['tileFilters1', 'tileFilters2', 'tileH', 'tileW'].map((k) => n.attrs[k] as number);
      const want = nodeTilesOfModule(m);
      if (have.some((x, i) => x !== want[i])) {
        throw invalid(`${g.source}: node '${n.name}' (${n.op})`, `tiles [${have.join(', ')}] differ from the recorded plan's [${want.join(', ')}]`);
      }
    }
    return structuredClone(recorded);
  }
  const modules: PlanModule[] = fused.map((n) => ({
    kind: kindOfFcmOp[n.op as FcmOp],
    layers: [],
    nodes: [n.attrs.layer1 as string, n.attrs.layer2 as string],
    tiles: tilesOfNode(n),
    gma: 0,
    gmaUnfused: 0,
  }));
  return { model: g.name, hw: 'unknown', mode: 'optimal', modules, totals: { gma: 0, gmaUnfused: 0, saved: 0, savedPercent: 0 } };
}

export interface OptimizedModel {
  /** Prepared graph with the fused nodes in the IR convention. */
  graph: Graph;
  plan: Plan;
  /** Whether the plan came from the file's metadata (true) or from the fused nodes alone. */
  planRecorded: boolean;
}

/** Loads an optimized model (or any ONNX model: then the plan has no modules) with its plan. */
export async function readOptimized(input: string | Uint8Array, opts: ImportOptions = {}): Promise<OptimizedModel> {
  const source = opts.source ?? (typeof input === 'string' ? input : '<bytes>');
  const graph0 = await loadModel(input, { ...opts, source });
  const bytes = typeof input === 'string' ? await readInputFile(input, { source, ...budgetFor(opts.maxMemory ?? defaultMaxMemory, maxMessageBytes, 'ONNX (protobuf)') }) : input;
  const info = optimizedModelInfo(decodeModel(bytes, source), source);
  const graph = normalizeFusedNodes(graph0, info);
  const plan = planFromGraph(graph, info.recordedPlan);
  return { graph, plan, planRecorded: info.recordedPlan !== undefined };
}
