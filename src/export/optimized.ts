// The optimized model file: an ONNX model in which every fused module (FCM) is one node of the domain
// ai.fcm.opt (FusedPwDw, FusedDwPw, FusedPwPw) carrying its tiles and epilogues as attributes, and the model
// carries model-local FunctionProtos whose bodies are the original computation (Conv, activation, Conv,
// activation, + residual). onnxruntime inlines model-local functions, so it runs the file and gets the
// original model's outputs; fcm-opt reads the fused nodes back and restores the plan without planning.
//
// How epilogue variants are written (checked with onnxruntime-node 1.30, test/export/optimized.test.ts):
// - One FunctionProto per (op type, epilogue variant), told apart by FunctionProto.overload (IR 10): node
//   op_type stays FusedPwDw/FusedDwPw/FusedPwPw and NodeProto.overload names the variant,
//   `<activation1>_<activation2>[_residual]` with `none` for no activation (e.g. "Clip_none_residual").
//   onnxruntime 1.30 resolves (domain, op_type, overload) to the matching function.
// - Everything else that differs between modules is a function attribute referenced with ref_attr_name:
//   the depthwise layer's kernel/strides/pads/dilations/group and the activation parameters (scalars
//   alpha1, beta1, min1, max1, alpha2, ...; Clip's bounds become Constant nodes of value_float).
// - Absent biases are absent optional inputs ('' or trailing omission), which the inliner passes on as
//   absent Conv inputs, so bias presence needs no variant.
// The node also keeps fcm-opt's own attributes (src/graph/ir.ts): activation1/activationParams1 (FLOATS),
// tileFilters1/2, tileH, tileW, layer1/2. `group` and the scalar parameters exist for the function body;
// the reader checks that both spellings agree. The plan itself (modules, tiles, estimates) is stored as
// JSON in metadata_props under `ai.fcm.opt.plan`, so reading the file restores exactly the plan used.

import { invalid, unsupported } from '../errors.js';
import { fcmDomain, type Activation, type FcmOp, type Graph, type Node } from '../graph/ir.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { onnx } from '../../converters/onnx/codec.js';
import type { Plan, PlanModule } from '../planner/plan.js';
import { isQuantizedGraph } from '../graph/passes/dequantize.js';
import { qdqGraph } from '../../converters/onnx/export-qdq.js';

export const fcmOpsetVersion = 1;
export const planMetadataKey = 'ai.fcm.opt.plan';
/** IR version that introduced FunctionProto.overload. */
export const overloadIrVersion = 10;

export const fcmOps: readonly FcmOp[] = ['FusedPwDw', 'FusedDwPw', 'FusedPwPw'];
export const fcmOpOfKind: Record<'pwdw' | 'dwpw' | 'pwpw', FcmOp> = { pwdw: 'FusedPwDw', dwpw: 'FusedDwPw', pwpw: 'FusedPwPw' };
export const kindOfFcmOp: Record<FcmOp, 'pwdw' | 'dwpw' | 'pwpw'> = { FusedPwDw: 'pwdw', FusedDwPw: 'dwpw', FusedPwPw: 'pwpw' };

/** Which layer of each FCM is the depthwise one (1 or 2), none for PW-PW. */
export const depthwiseLayer: Record<FcmOp, 1 | 2 | null> = { FusedPwDw: 2, FusedDwPw: 1, FusedPwPw: null };

/** Names of the scalar parameters of each activation, in the order of `activationParams` (ir.ts). */
export const activationParamNames: Record<Activation, readonly string[]> = {
  Relu: [], Sigmoid: [], Tanh: [], HardSwish: [], SiLU: [],
  Clip: ['min', 'max'], LeakyRelu: ['alpha'], HardSigmoid: ['alpha', 'beta'],
};
/** Defaults of the parameters when a node has no activationParams (ONNX's defaults). */
const activationDefaults: Record<Activation, readonly number[]> = {
  Relu: [], Sigmoid: [], Tanh: [], HardSwish: [], SiLU: [],
  Clip: [-Infinity, Infinity], LeakyRelu: [0.01], HardSigmoid: [0.2, 0.5],
};
export const isActivation = (s: unknown): s is Activation => typeof s === 'string' && Object.prototype.hasOwnProperty.call(activationParamNames, s);

/** The epilogue variant of a fused node: selects its function overload. */
export interface FcmVariant {
  op: FcmOp;
  activation1?: Activation;
  activation2?: Activation;
  residual: boolean;
  /** A quantized graph's module in QDQ form: inputs 6 and 7 are the intermediate's scale and zero point. */
  quantized?: boolean;
}

export function overloadName(v: FcmVariant): string {
  return `${v.activation1 ?? 'none'}_${v.activation2 ?? 'none'}${v.residual ? '_residual' : ''}${v.quantized ? '_qdq' : ''}`;
}

const AT = onnx.AttributeProto.AttributeType;
type AttrProps = onnx.AttributeProto.$Properties;
type NodeProps = onnx.NodeProto.$Properties;
type FunctionProps = onnx.FunctionProto.$Properties;

const ref = (name: string, type: number, refAttrName = name): AttrProps => ({ name, type, refAttrName });

/** The variant of a fused node, checking its op and epilogue attributes. */
export function variantOf(g: Graph, n: Node): FcmVariant {
  const where = `${g.source}: node '${n.name}' (${n.op})`;
  if (!(fcmOps as readonly string[]).includes(n.op)) throw unsupported(where, `unknown fused module op type (expected ${fcmOps.join(', ')})`);
  const v: FcmVariant = { op: n.op as FcmOp, residual: (n.inputs[5] ?? '') !== '', ...((n.inputs[6] ?? '') !== '' ? { quantized: true } : {}) };
  for (const k of ['activation1', 'activation2'] as const) {
    const a = n.attrs[k];
    if (a === undefined) continue;
    if (!isActivation(a)) throw unsupported(where, `${k} '${String(a)}' is not an epilogue activation (${Object.keys(activationParamNames).join(', ')})`);
    v[k] = a;
  }
  return v;
}

/** Activation parameters of layer `i` (1 or 2) with ONNX defaults filled in. */
function paramsOf(g: Graph, n: Node, act: Activation, i: 1 | 2): number[] {
  const given = n.attrs[`activationParams${i}`];
  const dflt = activationDefaults[act];
  if (given === undefined) return [...dflt];
  if (!Array.isArray(given) || given.some((x) => typeof x !== 'number') || given.length !== dflt.length) {
    throw invalid(`${g.source}: node '${n.name}' (${n.op})`, `activationParams${i} of ${act} must be ${dflt.length} numbers`);
  }
  return given as number[];
}

// ---------------------------------------------------------------------------------------------------
// Function bodies

/** Activation nodes of layer `i` from `x` to `y`, parameters from the caller's attributes. */
function activationBody(act: Activation, i: 1 | 2, x: string, y: string, opset: number): NodeProps[] {
  const p = (name: string) => `${name}${i}`;
  switch (act) {
    case 'Relu': case 'Sigmoid': case 'Tanh': return [{ opType: act, input: [x], output: [y] }];
    case 'LeakyRelu': return [{ opType: act, input: [x], output: [y], attribute: [ref('alpha', AT.FLOAT, p('alpha'))] }];
    case 'HardSigmoid':
      return [{ opType: act, input: [x], output: [y], attribute: [ref('alpha', AT.FLOAT, p('alpha')), ref('beta', AT.FLOAT, p('beta'))] }];
    case 'Clip':
      // Opset 11+: the bounds are inputs; Constant(value_float = caller's min/max) makes them scalars.
      return [
        { opType: 'Constant', input: [], output: [`${y}_min`], attribute: [ref('value_float', AT.FLOAT, p('min'))] },
        { opType: 'Constant', input: [], output: [`${y}_max`], attribute: [ref('value_float', AT.FLOAT, p('max'))] },
        { opType: 'Clip', input: [x, `${y}_min`, `${y}_max`], output: [y] },
      ];
    case 'HardSwish':
      if (opset >= 14) return [{ opType: 'HardSwish', input: [x], output: [y] }];
      return [
        { opType: 'HardSigmoid', input: [x], output: [`${y}_hsig`], attribute: [{ name: 'alpha', type: AT.FLOAT, f: 1 / 6 }, { name: 'beta', type: AT.FLOAT, f: 0.5 }] },
        { opType: 'Mul', input: [x, `${y}_hsig`], output: [y] },
      ];
    case 'SiLU':
      return [{ opType: 'Sigmoid', input: [x], output: [`${y}_sig`] }, { opType: 'Mul', input: [x, `${y}_sig`], output: [y] }];
  }
}

const depthwiseRefs = (): AttrProps[] => [
  ref('kernel_shape', AT.INTS, 'kernel'), ref('strides', AT.INTS), ref('pads', AT.INTS),
  ref('dilations', AT.INTS), ref('group', AT.INT),
];

/** The FunctionProto of one variant: Conv, activation, Conv, activation, + residual (ir.ts epilogue order). */
export function fcmFunction(v: FcmVariant, opset: number): FunctionProps {
  const dw = depthwiseLayer[v.op];
  const body: NodeProps[] = [];
  const attributes = new Set<string>();
  if (dw !== null) for (const a of ['kernel', 'strides', 'pads', 'dilations', 'group']) attributes.add(a);
  let cur = 'x';
  for (const i of [1, 2] as const) {
    const convOut = `conv${i}`;
    const [w, b] = i === 1 ? ['w1', 'b1'] : ['w2', 'b2'];
    body.push({ opType: 'Conv', input: [cur, w, b], output: [convOut], attribute: dw === i ? depthwiseRefs() : [] });
    cur = convOut;
    const act = i === 1 ? v.activation1 : v.activation2;
    if (act) {
      const out = `act${i}`;
      body.push(...activationBody(act, i, cur, out, opset));
      for (const p of activationParamNames[act]) attributes.add(`${p}${i}`);
      cur = out;
    }
    if (i === 1 && v.quantized) {
      // The intermediate on its 8-bit grid, as the integer FCM requantizes it between the two layers.
      body.push({ opType: 'QuantizeLinear', input: [cur, 'mid_scale', 'mid_zero_point'], output: ['mid_q'] });
      body.push({ opType: 'DequantizeLinear', input: ['mid_q', 'mid_scale', 'mid_zero_point'], output: ['mid'] });
      cur = 'mid';
    }
  }
  if (v.residual) {
    body.push({ opType: 'Add', input: [cur, 'residual'], output: ['y'] });
  } else {
    // The last body node writes the function output directly.
    const last = body[body.length - 1];
    last.output = last.output!.map((o) => (o === cur ? 'y' : o));
  }
  return {
    name: v.op,
    domain: fcmDomain,
    overload: overloadName(v),
    // Inputs are positional: a quantized variant keeps the residual's slot (absent without one) before its scale and zero point.
    input: ['x', 'w1', 'b1', 'w2', 'b2', ...(v.residual || v.quantized ? ['residual'] : []), ...(v.quantized ? ['mid_scale', 'mid_zero_point'] : [])],
    output: ['y'],
    attribute: [...attributes],
    node: body,
    opsetImport: [{ domain: '', version: opset }, { domain: fcmDomain, version: fcmOpsetVersion }],
    docString: `fcm-opt fused module ${v.op} (${overloadName(v)}): the unfused computation it stands for; fcm-opt runs it as one kernel with the tiles in the node's attributes.`,
  };
}

// ---------------------------------------------------------------------------------------------------
// Nodes

/** The channels of the depthwise layer (its group), from its weight [C, 1, kh, kw]. */
function depthwiseGroup(g: Graph, n: Node, layer: 1 | 2): number {
  const w = g.tensors.get(n.inputs[layer === 1 ? 1 : 3]);
  if (!w || w.shape.length !== 4 || w.shape[1] !== 1) {
    throw invalid(`${g.source}: node '${n.name}' (${n.op})`, `depthwise weight of layer ${layer} must have shape [C, 1, kh, kw]`);
  }
  return w.shape[0];
}

const intsAttr = (name: string, v: number[]): AttrProps => ({ name, type: AT.INTS, ints: v });

/** The NodeProto of a fused node: overload, fcm-opt's attributes and those the function body reads. */
function fusedNodeProto(g: Graph, n: Node): NodeProps {
  const where = `${g.source}: node '${n.name}' (${n.op})`;
  const v = variantOf(g, n);
  const attribute: AttrProps[] = [];
  const num = (k: string): number => {
    const x = n.attrs[k];
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 1) throw invalid(where, `attribute '${k}' must be a positive integer`);
    return x;
  };
  const list = (k: string, len: number, dflt?: number[]): number[] => {
    const x = n.attrs[k] ?? dflt;
    if (!Array.isArray(x) || x.length !== len || x.some((e) => typeof e !== 'number' || !Number.isInteger(e))) {
      throw invalid(where, `attribute '${k}' must be ${len} integers`);
    }
    return x as number[];
  };
  const dw = depthwiseLayer[v.op];
  if (dw !== null) {
    const wShape = g.tensors.get(n.inputs[dw === 1 ? 1 : 3])?.shape ?? [];
    attribute.push(
      intsAttr('kernel', list('kernel', 2, wShape.slice(2))),
      intsAttr('strides', list('strides', 2, [1, 1])),
      intsAttr('pads', list('pads', 4, [0, 0, 0, 0])),
      intsAttr('dilations', list('dilations', 2, [1, 1])),
      { name: 'group', type: AT.INT, i: depthwiseGroup(g, n, dw) },
    );
    if (n.attrs.autoPad !== undefined) throw unsupported(where, 'auto_pad on a fused module (expected explicit pads)');
  }
  for (const i of [1, 2] as const) {
    const act = i === 1 ? v.activation1 : v.activation2;
    if (!act) continue;
    const params = paramsOf(g, n, act, i);
    attribute.push({ name: `activation${i}`, type: AT.STRING, s: new TextEncoder().encode(act) });
    if (params.length > 0) attribute.push({ name: `activationParams${i}`, type: AT.FLOATS, floats: params });
    activationParamNames[act].forEach((p, k) => attribute.push({ name: `${p}${i}`, type: AT.FLOAT, f: params[k] }));
  }
  for (const k of ['tileFilters1', 'tileFilters2', 'tileH', 'tileW']) attribute.push({ name: k, type: AT.INT, i: num(k) });
  for (const k of ['layer1', 'layer2']) {
    const s = n.attrs[k];
    if (typeof s !== 'string' || !s) throw invalid(where, `attribute '${k}' must name the original Conv node`);
    attribute.push({ name: k, type: AT.STRING, s: new TextEncoder().encode(s) });
  }
  const x = g.tensors.get(n.inputs[0]);
  if (x && x.dtype !== 'float32') throw unsupported(where, `fused modules of ${x.dtype} tensors (float32 only)`);
  const quantized = n.inputs.length === 8 && !!n.inputs[6] && !!n.inputs[7];
  if ((n.inputs.length > 6 && !quantized) || !n.inputs[0] || !n.inputs[1] || !n.inputs[3]) {
    throw invalid(where, 'fused module inputs must be [x, w1, b1|\'\', w2, b2|\'\', residual|\'\'] (and intermediate scale, zero point in QDQ form)');
  }
  const input = [...n.inputs];
  while (input.length > 0 && input[input.length - 1] === '') input.pop();
  return { opType: v.op, domain: fcmDomain, overload: overloadName(v), name: n.name, input, output: [...n.outputs], attribute };
}

// ---------------------------------------------------------------------------------------------------
// The plan and the graph must agree

const fusedKinds = new Set(['pwdw', 'dwpw', 'pwpw']);

/** The plan module a fused node comes from: same kind and the node's two original Conv names. */
function moduleOfNode(plan: Plan, n: Node): PlanModule | undefined {
  const kind = kindOfFcmOp[n.op as FcmOp];
  return plan.modules.find((m) => m.kind === kind && m.nodes !== undefined
    && m.nodes.includes(n.attrs.layer1 as string) && m.nodes.includes(n.attrs.layer2 as string));
}

/** Throws unless every fused module of `plan` is a fused node of `g` and every fused node is in `plan`. */
export function checkPlanMatchesGraph(g: Graph, plan: Plan): void {
  const fused = g.nodes.filter((n) => n.domain === fcmDomain);
  const seen = new Set<PlanModule>();
  for (const n of fused) {
    const m = moduleOfNode(plan, n);
    if (!m) throw invalid(`${g.source}: node '${n.name}' (${n.op})`, `no module of the plan fuses '${String(n.attrs.layer1)}' and '${String(n.attrs.layer2)}' (the graph was rewritten with another plan)`);
    seen.add(m);
  }
  plan.modules.forEach((m, i) => {
    if (fusedKinds.has(m.kind) && !seen.has(m)) {
      throw invalid(g.source, `plan module ${i} (${m.kind}, nodes ${(m.nodes ?? []).join(', ')}) is not a fused node of the graph (apply the plan with applyPlan first)`);
    }
  });
}

export interface OptimizedExportOptions {
  /** Default-domain opset (default 17). */
  opset?: number;
  producerName?: string;
}

/**
 * Writes a prepared graph rewritten by applyPlan (fused nodes per src/graph/ir.ts) as an ONNX model that
 * onnxruntime can run (model-local functions) and fcm-opt can read back with its plan (readOptimized).
 */
export function exportOptimized(g: Graph, plan: Plan, opts: OptimizedExportOptions = {}): Uint8Array {
  const opset = opts.opset ?? 17;
  if (opset < 11) throw unsupported(g.source, `an optimized model needs opset 11 or newer (Clip bounds as inputs), got ${opset}`);
  checkPlanMatchesGraph(g, plan);
  // The IR keeps a quantized model's scales and zero points on its tensors (TFLite's convention); ONNX holds them
  // as QuantizeLinear/DequantizeLinear nodes around float ops (converters/onnx/export-qdq.ts), fused modules
  // included (their intermediate quantized in the function body, as the integer FCM requantizes it).
  if (isQuantizedGraph(g)) g = qdqGraph(g);
  const variants = new Map<string, FcmVariant>();
  return exportOnnx(g, {
    opset,
    producerName: opts.producerName,
    writeNode: (n) => {
      if (n.domain !== fcmDomain) return undefined;
      const v = variantOf(g, n);
      variants.set(`${v.op}:${overloadName(v)}`, v);
      return [fusedNodeProto(g, n)];
    },
    finishModel: (model) => {
      const ir = typeof model.irVersion === 'number' ? model.irVersion : Number(model.irVersion ?? 0);
      const keys = [...variants.keys()].sort();
      if (keys.length > 0) {
        model.irVersion = Math.max(ir, overloadIrVersion);
        model.functions = keys.map((k) => fcmFunction(variants.get(k)!, opset));
        model.opsetImport = [...(model.opsetImport ?? []), { domain: fcmDomain, version: fcmOpsetVersion }];
      }
      model.metadataProps = [...(model.metadataProps ?? []), { key: planMetadataKey, value: JSON.stringify(plan) }];
    },
  });
}

/** The attributes fcm-opt's own fused-node convention has (src/graph/ir.ts); the rest is for the function body. */
export const fcmNodeAttrs: readonly string[] = [
  'strides', 'pads', 'kernel', 'dilations', 'activation1', 'activationParams1', 'activation2', 'activationParams2',
  'tileFilters1', 'tileFilters2', 'tileH', 'tileW', 'layer1', 'layer2',
];
