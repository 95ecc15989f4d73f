// Graph IR -> ONNX model bytes.
//
// Canonical attributes are written back in the form of the target opset (attributes before opset 10/11/13,
// constant inputs after), constants become initializers with raw_data, Conv epilogues (activation,
// residual) become the ONNX nodes they stand for. Opaque nodes are written with the attributes of the
// NodeProto they were imported from (onnxNodeOf) when there is one, so nothing of theirs is lost.
// Fused modules (domain ai.fcm.opt) are refused for now (exit 3).

import { invalid, unsupported } from '../../src/errors.js';
import { dtypeSize, fcmDomain, isKnownOp, type AttrValue, type Graph, type Node, type Tensor } from '../../src/graph/ir.js';
import { dtypeToOnnxType, encodeModel, onnx } from './codec.js';
import { maxOpset, minOpset, onnxNodeOf } from './import.js';
import { originalNode } from '../../src/graph/util.js';

export interface ExportOptions {
  /** Default-domain opset to write (default 17). */
  opset?: number;
  producerName?: string;
  /** Extension (src/export/optimized.ts): the NodeProtos that stand for `n` where this exporter would refuse
   *  it (fused modules), or undefined to let the exporter write `n`. */
  writeNode?: (n: Node) => NodeProps[] | undefined;
  /** Extension: called with the finished model before encoding (model-local functions, opset_import, metadata). */
  finishModel?: (model: onnx.ModelProto.$Properties) => void;
}

/** IR version each opset was released with (onnx.helper VERSION_TABLE). */
function irVersionFor(opset: number): number {
  if (opset <= 9) return 4;
  if (opset === 10) return 5;
  if (opset === 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

const AT = onnx.AttributeProto.AttributeType;
type AttrProps = onnx.AttributeProto.$Properties;
type NodeProps = onnx.NodeProto.$Properties;

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);
/** Canonical numbers to int64: ±Infinity and values past the int64 range clamp (Slice ends use INT64_MAX). */
function toInt64(v: number): bigint {
  if (v === Infinity) return INT64_MAX;
  if (v === -Infinity) return INT64_MIN;
  if (Math.abs(v) < 2 ** 63) return BigInt(Math.trunc(v));
  return v > 0 ? INT64_MAX : INT64_MIN;
}
/** int64 for the protobuf writer (it takes numbers, Longs or decimal strings). */
const i64 = (v: number) => {
  const b = toInt64(v);
  return Number.isSafeInteger(Number(b)) ? Number(b) : (b.toString() as unknown as number);
};

const attrInt = (name: string, i: number): AttrProps => ({ name, type: AT.INT, i: i64(i) });
const attrInts = (name: string, v: number[]): AttrProps => ({ name, type: AT.INTS, ints: v.map(i64) });
const attrFloat = (name: string, f: number): AttrProps => ({ name, type: AT.FLOAT, f });
const attrString = (name: string, s: string): AttrProps => ({ name, type: AT.STRING, s: new TextEncoder().encode(s) });

export function tensorToProto(t: Tensor, name = t.name): onnx.TensorProto.$Properties {
  if (!t.data) throw invalid(name, 'constant tensor without data');
  const raw = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  // A typed array that disagrees with dtype x shape is a bug upstream; writing it would make a file that no
  // reader accepts, so stop here (a plain Error: it is no fault of the user's input).
  const need = t.shape.reduce((a, b) => a * b, 1) * dtypeSize(t.dtype);
  if (t.dtype !== 'string' && raw.byteLength !== need) {
    throw new Error(`internal: tensor '${name}' (${t.dtype} [${t.shape.join(', ')}]) holds ${raw.byteLength} bytes of ${t.data.constructor.name}, needs ${need}`);
  }
  return { name, dims: t.shape.map(i64), dataType: dtypeToOnnxType(t.dtype), rawData: raw };
}

function valueInfo(t: Tensor, withShape: boolean): onnx.ValueInfoProto.$Properties {
  return {
    name: t.name,
    type: {
      tensorType: {
        elemType: dtypeToOnnxType(t.dtype),
        ...(withShape ? { shape: { dim: t.shape.map((d) => ({ dimValue: i64(d) })) } } : {}),
      },
    },
  };
}

class Writer {
  readonly nodes: NodeProps[] = [];
  readonly initializers: onnx.TensorProto.$Properties[] = [];
  readonly domains = new Map<string, number>();
  private used: Set<string>;
  constructor(readonly g: Graph, readonly opset: number) {
    this.used = new Set(g.tensors.keys());
    for (const n of g.nodes) for (const y of n.outputs) this.used.add(y);
  }
  fresh(base: string): string {
    let name = base;
    for (let k = 1; this.used.has(name); k++) name = `${base}_${k}`;
    this.used.add(name);
    return name;
  }
  int64Const(base: string, values: number[]): string {
    const name = this.fresh(base);
    this.initializers.push(tensorToProto({ name, dtype: 'int64', shape: [values.length], data: BigInt64Array.from(values, toInt64) }));
    return name;
  }
  floatConst(base: string, value: number, like: string): string {
    const name = this.fresh(base);
    const dtype = this.g.tensors.get(like)?.dtype ?? 'float32';
    if (dtype === 'float64') this.initializers.push(tensorToProto({ name, dtype, shape: [], data: Float64Array.of(value) }));
    else if (dtype === 'float32') this.initializers.push(tensorToProto({ name, dtype, shape: [], data: Float32Array.of(value) }));
    else throw unsupported(this.g.source, `exporting a ${dtype} constant for '${like}' (only float32/float64)`);
    return name;
  }
  node(op: string, name: string, inputs: string[], outputs: string[], attribute: AttrProps[] = [], domain = ''): void {
    while (inputs.length > 0 && inputs[inputs.length - 1] === '') inputs.pop();
    this.nodes.push({ opType: op, name, input: inputs, output: outputs, attribute, ...(domain ? { domain } : {}) });
  }
}

export function exportOnnx(g: Graph, opts: ExportOptions = {}): Uint8Array {
  const opset = opts.opset ?? 17;
  if (!Number.isInteger(opset) || opset < minOpset || opset > maxOpset) {
    throw unsupported(g.source, `export to opset ${opset} (supported: ${minOpset}-${maxOpset})`);
  }
  const w = new Writer(g, opset);
  for (const n of g.nodes) {
    const custom = opts.writeNode?.(n);
    if (custom) w.nodes.push(...custom);
    else writeNode(w, n);
  }

  // Constants that some node or output reads (passes may leave orphans behind).
  const inputSet = new Set(g.inputs);
  const read = new Set<string>(g.outputs);
  for (const n of w.nodes) for (const x of n.input ?? []) read.add(x);
  for (const t of g.tensors.values()) {
    if (t.data && !inputSet.has(t.name) && read.has(t.name)) w.initializers.push(tensorToProto(t));
  }
  const tensorOf = (name: string) => {
    const t = g.tensors.get(name);
    if (!t) throw invalid(g.source, `tensor '${name}' is not defined`);
    return t;
  };
  const opsetImport: onnx.OperatorSetIdProto.$Properties[] = [{ domain: '', version: opset }];
  for (const [domain, version] of w.domains) opsetImport.push({ domain, version });
  const model: onnx.ModelProto.$Properties = {
    irVersion: irVersionFor(opset),
    producerName: opts.producerName ?? 'fcm-opt',
    opsetImport,
    graph: {
      name: g.name,
      node: w.nodes,
      initializer: w.initializers,
      input: g.inputs.map((x) => valueInfo(tensorOf(x), true)),
      output: g.outputs.map((y) => { const t = tensorOf(y); return valueInfo(t, !t.shapeUnknown); }),
    },
  };
  opts.finishModel?.(model);
  return encodeModel(model);
}

/** The opset from which these reductions take their axes as an input instead of an attribute. */
const reductionAxesInput: Record<string, number> = { ReduceSum: 13, ReduceMax: 18, ReduceMin: 18, ReduceProd: 18 };

function writeNode(w: Writer, n: Node): void {
  const { g, opset } = w;
  if (n.domain === fcmDomain) throw unsupported(g.source, `node '${n.name}' (${n.op}): exporting fused modules (${fcmDomain})`);
  if (!isKnownOp(n)) {
    // TFLite builtins the importer kept opaque have no ONNX definition: a file holding them could not be
    // run by onnxruntime nor read back by fcm-opt (its shapes come from onnxruntime).
    if (n.domain === 'tflite' || n.domain.startsWith('tflite.')) {
      throw unsupported(g.source, `node '${n.name}' (${n.domain}:${n.op}) is a TFLite operator with no ONNX equivalent; it cannot be written to an ONNX file`);
    }
    if (n.domain && !w.domains.has(n.domain)) w.domains.set(n.domain, 1);
    // Passes copy nodes; the NodeProto belongs to the node the importer made.
    const orig = onnxNodeOf.get(originalNode(n));
    const ownAttrs = !!orig && orig.opType === n.op;
    let input = [...n.inputs];
    let attribute = ownAttrs ? orig.attribute : genericAttrs(n, g.source);
    // Reductions made by another importer (TFLite) carry axes as an attribute: ONNX takes them as an input
    // from opset 13 (ReduceSum) or 18 (the others).
    const axesInputFrom = n.domain === '' && !ownAttrs ? reductionAxesInput[n.op] : undefined;
    if (axesInputFrom !== undefined && opset >= axesInputFrom && Array.isArray(n.attrs.axes) && input.length === 1) {
      const axes = n.attrs.axes as number[];
      attribute = attribute.filter((x) => x.name !== 'axes');
      if (axes.length > 0) input = [input[0], w.int64Const(`${n.name}_axes`, axes)];
    }
    w.nodes.push({
      opType: n.op, name: n.name, input, output: [...n.outputs], attribute,
      ...(n.domain ? { domain: n.domain } : {}),
      ...(orig?.overload ? { overload: orig.overload } : {}),
    });
    return;
  }
  const a = n.attrs;
  const where = `node '${n.name}' (${n.op})`;
  const num = (k: string) => a[k] as number | undefined;
  const list = (k: string) => a[k] as number[] | undefined;
  const inputs = [...n.inputs];
  const out: AttrProps[] = [];
  const windowAttrs = (dilations: boolean) => {
    out.push(attrInts('kernel_shape', list('kernel')!));
    if (list('strides')) out.push(attrInts('strides', list('strides')!));
    if (typeof a.autoPad === 'string') out.push(attrString('auto_pad', a.autoPad));
    else if (list('pads')) out.push(attrInts('pads', list('pads')!));
    if (dilations && list('dilations')) out.push(attrInts('dilations', list('dilations')!));
  };
  switch (n.op) {
    case 'Conv': {
      windowAttrs(true);
      out.push(attrInt('group', num('group') ?? 1));
      writeConvWithEpilogue(w, n, out);
      return;
    }
    case 'MaxPool':
      windowAttrs(opset >= 10 || (list('dilations') ?? []).some((d) => d !== 1));
      if (opset >= 10 && num('ceilMode')) out.push(attrInt('ceil_mode', num('ceilMode')!));
      if (num('storageOrder')) out.push(attrInt('storage_order', num('storageOrder')!));
      break;
    case 'AveragePool':
      windowAttrs(opset >= 19);
      if (num('countIncludePad')) out.push(attrInt('count_include_pad', num('countIncludePad')!));
      if (opset >= 10 && num('ceilMode')) out.push(attrInt('ceil_mode', num('ceilMode')!));
      break;
    case 'Gemm':
      out.push(attrFloat('alpha', num('alpha') ?? 1), attrFloat('beta', num('beta') ?? 1),
        attrInt('transA', num('transA') ?? 0), attrInt('transB', num('transB') ?? 0));
      break;
    case 'Clip': {
      const min = num('min'), max = num('max');
      if (min === undefined && max === undefined) break;
      if (opset < 11) {
        if (min !== undefined && Number.isFinite(min)) out.push(attrFloat('min', min));
        if (max !== undefined && Number.isFinite(max)) out.push(attrFloat('max', max));
      } else {
        inputs.length = 1;
        inputs.push(min !== undefined && Number.isFinite(min) ? w.floatConst(`${n.name}_min`, min, n.inputs[0]) : '');
        inputs.push(max !== undefined && Number.isFinite(max) ? w.floatConst(`${n.name}_max`, max, n.inputs[0]) : '');
      }
      break;
    }
    case 'LeakyRelu': out.push(attrFloat('alpha', num('alpha') ?? 0.01)); break;
    case 'HardSigmoid': out.push(attrFloat('alpha', num('alpha') ?? 0.2), attrFloat('beta', num('beta') ?? 0.5)); break;
    case 'ReduceMean': {
      out.push(attrInt('keepdims', num('keepdims') ?? 1));
      const axes = list('axes');
      if (axes && axes.length > 0) {
        if (opset < 18) out.push(attrInts('axes', axes));
        else { inputs.length = 1; inputs.push(w.int64Const(`${n.name}_axes`, axes)); }
      }
      if (opset >= 18 && num('noopWithEmptyAxes')) out.push(attrInt('noop_with_empty_axes', num('noopWithEmptyAxes')!));
      break;
    }
    case 'Softmax': case 'Flatten': case 'Concat': case 'Gather':
      if (num('axis') !== undefined) out.push(attrInt('axis', num('axis')!));
      break;
    case 'Split': {
      out.push(attrInt('axis', num('axis') ?? 0));
      const split = list('split');
      if (split) {
        if (opset < 13) out.push(attrInts('split', split));
        else { inputs.length = 1; inputs.push(w.int64Const(`${n.name}_split`, split)); }
      } else if (opset >= 18 && inputs.length < 2) out.push(attrInt('num_outputs', num('numOutputs') ?? n.outputs.length));
      break;
    }
    case 'Slice': {
      const starts = list('starts'), ends = list('ends');
      if (!starts || !ends) break; // input form
      const axes = list('axes') ?? starts.map((_, i) => i);
      const steps = list('steps') ?? starts.map(() => 1);
      if (opset < 10) {
        if (steps.some((s) => s !== 1)) throw unsupported(g.source, `${where}: steps other than 1 need opset 10`);
        out.push(attrInts('starts', starts), attrInts('ends', ends), attrInts('axes', axes));
      } else {
        inputs.length = 1;
        inputs.push(w.int64Const(`${n.name}_starts`, starts), w.int64Const(`${n.name}_ends`, ends),
          w.int64Const(`${n.name}_axes`, axes), w.int64Const(`${n.name}_steps`, steps));
      }
      break;
    }
    case 'Pad': {
      const mode = (a.mode as string | undefined) ?? 'constant';
      if (mode !== 'constant') out.push(attrString('mode', mode));
      const pads = list('pads');
      if (!pads) break;
      if (opset < 11) {
        out.push(attrInts('pads', pads));
        if (num('value')) out.push(attrFloat('value', num('value')!));
      } else {
        inputs.length = 1;
        inputs.push(w.int64Const(`${n.name}_pads`, pads));
        if (num('value')) inputs.push(w.floatConst(`${n.name}_value`, num('value')!, n.inputs[0]));
      }
      break;
    }
    case 'Transpose': if (list('perm')) out.push(attrInts('perm', list('perm')!)); break;
    case 'Reshape':
      if (list('shape')) { inputs.length = 1; inputs.push(w.int64Const(`${n.name}_shape`, list('shape')!)); }
      if (opset >= 14 && num('allowzero')) out.push(attrInt('allowzero', num('allowzero')!));
      break;
    case 'Squeeze': case 'Unsqueeze': {
      const axes = list('axes');
      if (!axes) break;
      if (opset < 13) out.push(attrInts('axes', axes));
      else { inputs.length = 1; inputs.push(w.int64Const(`${n.name}_axes`, axes)); }
      break;
    }
    case 'Cast':
      out.push(attrInt('to', dtypeToOnnxType(a.to as Tensor['dtype'])));
      if (opset >= 19 && num('saturate') !== undefined) out.push(attrInt('saturate', num('saturate')!));
      break;
    case 'BatchNormalization': out.push(attrFloat('epsilon', num('epsilon') ?? 1e-5)); break;
    case 'Shape':
      if (num('start') !== undefined) out.push(attrInt('start', num('start')!));
      if (num('end') !== undefined) out.push(attrInt('end', num('end')!));
      break;
    case 'QuantizeLinear': case 'DequantizeLinear':
      out.push(attrInt('axis', num('axis') ?? 1));
      if (num('saturate') !== undefined) out.push(attrInt('saturate', num('saturate')!));
      if (num('blockSize')) out.push(attrInt('block_size', num('blockSize')!));
      if (num('outputDtype')) out.push(attrInt('output_dtype', num('outputDtype')!));
      break;
    case 'HardSwish':
      if (opset < 14) { writeActivation(w, n.name, 'HardSwish', [], n.inputs[0], n.outputs[0]); return; }
      break;
    case 'SiLU': writeActivation(w, n.name, 'SiLU', [], n.inputs[0], n.outputs[0]); return;
    case 'Constant': {
      // Only builders make these (the importer turns Constant nodes into constant tensors).
      const v = a.value;
      if (!v || typeof v !== 'object' || !('dtype' in v)) throw invalid(g.source, `${where} has no tensor 'value'`);
      out.push({ name: 'value', type: AT.TENSOR, t: tensorToProto(v, n.outputs[0]) });
      break;
    }
    default: break;
  }
  w.node(n.op, n.name, inputs, [...n.outputs], out);
}

/** Conv [x, w, bias|'', residual|''] with `activation`: Conv, then the activation, then + residual, then
 *  `activationPost` (ir.ts). */
function writeConvWithEpilogue(w: Writer, n: Node, attrs: AttrProps[]): void {
  const [x, weight, bias = '', residual = ''] = n.inputs;
  const act = n.attrs.activation as string | undefined;
  const post = residual ? n.attrs.activationPost as string | undefined : undefined;
  const y0 = n.outputs[0];
  const y = post ? w.fresh(`${y0}_sum`) : y0;
  if (!act && !residual) { w.node('Conv', n.name, [x, weight, bias], [y], attrs); return; }
  const convOut = w.fresh(`${y}_conv`);
  w.node('Conv', n.name, [x, weight, bias], [convOut], attrs);
  let cur = convOut;
  if (act) {
    const target = residual ? w.fresh(`${y}_act`) : y;
    writeActivation(w, `${n.name}_${act}`, act, (n.attrs.activationParams as number[] | undefined) ?? [], cur, target);
    cur = target;
  }
  if (residual) w.node('Add', `${n.name}_residual`, [cur, residual], [y]);
  if (post) writeActivation(w, `${n.name}_${post}_post`, post, (n.attrs.activationParamsPost as number[] | undefined) ?? [], y, y0);
}

function writeActivation(w: Writer, name: string, act: string, params: number[], x: string, y: string): void {
  switch (act) {
    case 'Relu': case 'Sigmoid': case 'Tanh': w.node(act, name, [x], [y]); return;
    case 'LeakyRelu': w.node(act, name, [x], [y], [attrFloat('alpha', params[0] ?? 0.01)]); return;
    case 'HardSigmoid': w.node(act, name, [x], [y], [attrFloat('alpha', params[0] ?? 0.2), attrFloat('beta', params[1] ?? 0.5)]); return;
    case 'Clip': {
      const [min = -Infinity, max = Infinity] = params;
      if (w.opset < 11) {
        const at: AttrProps[] = [];
        if (Number.isFinite(min)) at.push(attrFloat('min', min));
        if (Number.isFinite(max)) at.push(attrFloat('max', max));
        w.node('Clip', name, [x], [y], at);
      } else {
        w.node('Clip', name, [x, Number.isFinite(min) ? w.floatConst(`${name}_min`, min, x) : '',
          Number.isFinite(max) ? w.floatConst(`${name}_max`, max, x) : ''], [y]);
      }
      return;
    }
    case 'HardSwish':
      if (w.opset >= 14) { w.node('HardSwish', name, [x], [y]); return; }
      {
        // HardSwish(x) = x * HardSigmoid(x; 1/6, 1/2)
        const hs = w.fresh(`${y}_hsig`);
        w.node('HardSigmoid', `${name}_hsig`, [x], [hs], [attrFloat('alpha', 1 / 6), attrFloat('beta', 0.5)]);
        w.node('Mul', name, [x, hs], [y]);
      }
      return;
    case 'SiLU': {
      const s = w.fresh(`${y}_sigmoid`);
      w.node('Sigmoid', `${name}_sigmoid`, [x], [s]);
      w.node('Mul', name, [x, s], [y]);
      return;
    }
    default: throw unsupported(w.g.source, `node '${name}': exporting activation ${act}`);
  }
}

/** Attributes of an opaque node that has no original NodeProto: integers as INT(S), other numbers FLOAT(S). */
function genericAttrs(n: Node, source: string): AttrProps[] {
  const out: AttrProps[] = [];
  for (const [k, v] of Object.entries(n.attrs) as [string, AttrValue][]) {
    if (typeof v === 'number') out.push(Number.isInteger(v) ? attrInt(k, v) : attrFloat(k, v));
    else if (typeof v === 'string') out.push(attrString(k, v));
    else if (Array.isArray(v)) {
      if (v.every((e) => typeof e === 'string')) out.push({ name: k, type: AT.STRINGS, strings: (v as string[]).map((s) => new TextEncoder().encode(s)) });
      else if ((v as number[]).every(Number.isInteger)) out.push(attrInts(k, v as number[]));
      else out.push({ name: k, type: AT.FLOATS, floats: v as number[] });
    } else if ('graph' in v) {
      const gv = v.graph;
      if (Array.isArray(gv)) out.push({ name: k, type: AT.GRAPHS, graphs: gv as onnx.GraphProto[] });
      else out.push({ name: k, type: AT.GRAPH, g: gv as onnx.GraphProto });
    } else if ('dtype' in v) out.push({ name: k, type: AT.TENSOR, t: tensorToProto(v, k) });
    else throw unsupported(source, `node '${n.name}': attribute '${k}' cannot be exported`);
  }
  return out;
}
