// Structure-aware mutations of an ONNX model: decoded with decodeModel, one field changed, encoded again
// with encodeModel. Each mutation is a pure function of (model, seed), so a mutation list replays exactly
// and can be minimized item by item.
import { decodeModel, encodeModel, onnx } from '../../converters/onnx/codec.js';
import { interestingInts, Rng } from './rng.js';

export const onnxOps = [
  'dim', 'dtype', 'attrValue', 'attrType', 'attrAdd', 'attrRemove', 'rename', 'initData', 'external',
  'nodeOrder', 'nodeIO', 'opType', 'graphIO', 'nest', 'opset', 'dupNode', 'valueInfo', 'hugeAttr',
] as const;
export type OnnxOp = (typeof onnxOps)[number];

/** Relative frequency of each op (hugeAttr and deep nesting are slow to encode: rarer). */
export const onnxOpWeights: Record<OnnxOp, number> = {
  dim: 10, dtype: 5, attrValue: 12, attrType: 4, attrAdd: 10, attrRemove: 4, rename: 5, initData: 6, external: 3,
  nodeOrder: 3, nodeIO: 6, opType: 5, graphIO: 4, nest: 3, opset: 3, dupNode: 3, valueInfo: 5, hugeAttr: 1,
};

type Graph = onnx.GraphProto;
type Node = onnx.NodeProto;
type Attr = onnx.AttributeProto;
type TensorProto = onnx.TensorProto;
const AT = onnx.AttributeProto.AttributeType;

/** The main graph and every graph nested in attributes, breadth first (bounded). */
function allGraphs(m: onnx.ModelProto): Graph[] {
  const out: Graph[] = [];
  const queue: Graph[] = m.graph ? [m.graph] : [];
  while (queue.length > 0 && out.length < 1000) {
    const g = queue.shift()!;
    out.push(g);
    for (const n of g.node) for (const a of n.attribute) {
      if (a.g) queue.push(a.g);
      for (const sg of a.graphs) queue.push(sg);
    }
  }
  return out;
}

function allNodes(m: onnx.ModelProto): Node[] {
  return allGraphs(m).flatMap((g) => g.node);
}

function allAttrs(m: onnx.ModelProto): Attr[] {
  return allNodes(m).flatMap((n) => n.attribute);
}

/** Every TensorProto: initializers and tensor attributes (Constant values). */
function allTensors(m: onnx.ModelProto): TensorProto[] {
  const out: TensorProto[] = [];
  for (const g of allGraphs(m)) out.push(...g.initializer);
  for (const a of allAttrs(m)) if (a.t) out.push(a.t);
  return out;
}

function allValueInfos(m: onnx.ModelProto): onnx.ValueInfoProto[] {
  return allGraphs(m).flatMap((g) => [...g.input, ...g.output, ...g.valueInfo]);
}

/** Every tensor name the model mentions (for renames and rewiring). */
function tensorNames(m: onnx.ModelProto): string[] {
  const s = new Set<string>();
  for (const g of allGraphs(m)) {
    for (const t of g.initializer) if (t.name) s.add(t.name);
    for (const v of [...g.input, ...g.output]) if (v.name) s.add(v.name);
    for (const n of g.node) for (const x of [...n.input, ...n.output]) if (x) s.add(x);
  }
  return [...s];
}

function interestingDim(r: Rng): number {
  return r.weighted<() => number>([
    [6, () => r.pick(interestingInts)],
    [3, () => r.range(0, 9)],
    [1, () => -r.range(1, 5)],
  ])();
}

function hostileFloat(r: Rng): number {
  return r.pick([0, -0, -1, 1, NaN, Infinity, -Infinity, 1e30, -1e30, 5e-324, 6, 0.5, 3.4e38]);
}

function mutateIntList(r: Rng, v: (number | Long)[]): (number | Long)[] {
  const out = [...v];
  switch (r.int(5)) {
    case 0: if (out.length > 0) out[r.int(out.length)] = interestingDim(r); break;
    case 1: out.pop(); break;
    case 2: out.push(interestingDim(r)); break;
    case 3: return [];
    default: return out.map(() => interestingDim(r));
  }
  return out;
}
type Long = { low: number; high: number; unsigned: boolean };

/** Attributes fcm-opt's ops read, with hostile values (zero divisors, negative/huge sizes, bad enums). */
function hostileAttr(r: Rng): onnx.AttributeProto.$Properties {
  const ints = (name: string, values: number[]) => ({ name, type: AT.INTS, ints: values });
  const int = (name: string, i: number) => ({ name, type: AT.INT, i });
  const str = (name: string, s: string) => ({ name, type: AT.STRING, s: new TextEncoder().encode(s) });
  const float = (name: string, f: number) => ({ name, type: AT.FLOAT, f });
  const d = () => interestingDim(r);
  return r.pick<() => onnx.AttributeProto.$Properties>([
    () => ints('strides', r.pick([[0, 0], [1, 0], [-1, 1], [d(), d()], [1]])),
    () => ints('dilations', r.pick([[0, 0], [0, 1], [d(), d()], [2 ** 31, 1]])),
    () => int('group', r.pick([0, -1, 2, 3, 2 ** 31, d()])),
    () => ints('pads', r.pick([[-1, -1, -1, -1], [d(), d(), d(), d()], [1, 1], [2 ** 31, 0, 0, 0]])),
    () => ints('kernel_shape', r.pick([[0, 0], [d(), d()], [1], [3, 3, 3], [2 ** 31, 2 ** 31]])),
    () => int('axis', r.pick([d(), -100, 100, 2 ** 53])),
    () => ints('axes', r.pick([[d()], [0, 0], [-100], []])),
    () => ints('perm', r.pick([[0, 0, 0, 0], [3, 2, 1], [d(), 0, 1, 2], []])),
    () => float('epsilon', hostileFloat(r)),
    () => float('alpha', hostileFloat(r)),
    () => float('beta', hostileFloat(r)),
    () => float('min', hostileFloat(r)),
    () => float('max', hostileFloat(r)),
    () => int('to', r.pick([0, 8, 17, 999, -1, d()])),
    () => int('keepdims', r.pick([0, 5, -1])),
    () => str('auto_pad', r.pick(['SAME_UPPER', 'SAME_LOWER', 'VALID', 'BOGUS', ''])),
    () => str('mode', r.pick(['reflect', 'edge', 'wrap', 'bogus'])),
    () => ints('split', r.pick([[], [0, 0], [-1, 5], [d()]])),
    () => int('num_outputs', r.pick([0, -1, d()])),
    () => ints('starts', [d()]),
    () => ints('ends', [d()]),
    () => int('ceil_mode', r.pick([0, 1, 7])),
    () => int('transB', r.pick([0, 1, 2])),
    () => int('transA', r.pick([0, 1])),
    () => int('allowzero', 1),
    () => int('block_size', r.pick([0, -1, d()])),
    () => int('training_mode', 1),
    () => int('start', d()),
    () => int('end', d()),
    () => ints('value_ints', [d(), d()]),
  ])();
}

const knownOps = [
  'Conv', 'Relu', 'Clip', 'Add', 'Mul', 'Sub', 'Div', 'MatMul', 'Gemm', 'BatchNormalization', 'GlobalAveragePool',
  'AveragePool', 'MaxPool', 'Flatten', 'Reshape', 'Transpose', 'Concat', 'Split', 'Slice', 'Pad', 'Squeeze',
  'Unsqueeze', 'Shape', 'Gather', 'Cast', 'Softmax', 'ReduceMean', 'Identity', 'Dropout', 'HardSigmoid',
  'HardSwish', 'Sigmoid', 'Tanh', 'LeakyRelu', 'PRelu', 'QuantizeLinear', 'DequantizeLinear', 'Constant', 'If',
  'Loop', 'FusedPwDw', 'FusedDwPw', 'FusedPwPw', 'NoSuchOp', 'Expand', 'ConstantOfShape', 'Resize',
];

/** Applies one structured mutation in place. Returns false when the model has nothing it applies to. */
export function mutateOnnxModel(m: onnx.ModelProto, op: OnnxOp, seed: number): boolean {
  const r = new Rng(seed);
  const graphs = allGraphs(m);
  if (graphs.length === 0) return false;
  const g = r.pick(graphs);
  switch (op) {
    case 'dim': {
      const tensors = allTensors(m);
      const infos = allValueInfos(m).filter((v) => v.type?.tensorType?.shape);
      if (r.bool(0.5) && tensors.length > 0) {
        const t = r.pick(tensors);
        t.dims = mutateIntList(r, t.dims as (number | Long)[]) as typeof t.dims;
      } else if (infos.length > 0) {
        const shape = r.pick(infos).type!.tensorType!.shape!;
        if (shape.dim.length === 0 || r.bool(0.2)) shape.dim.push(new onnx.TensorShapeProto.Dimension({ dimValue: interestingDim(r) }));
        else {
          const d = r.pick(shape.dim);
          if (r.bool(0.2)) { d.dimValue = null; d.dimParam = r.pick(['N', 'batch', 'H', '']); }
          else { d.dimParam = null; d.dimValue = interestingDim(r); }
        }
      } else return false;
      return true;
    }
    case 'dtype': {
      const t = r.int(26);
      const tensors = allTensors(m);
      const infos = allValueInfos(m).filter((v) => v.type?.tensorType);
      if (r.bool(0.5) && tensors.length > 0) r.pick(tensors).dataType = t;
      else if (infos.length > 0) r.pick(infos).type!.tensorType!.elemType = t;
      else return false;
      return true;
    }
    case 'attrValue': {
      const attrs = allAttrs(m);
      if (attrs.length === 0) return false;
      const a = r.pick(attrs);
      if (a.ints.length > 0 || a.type === AT.INTS) a.ints = mutateIntList(r, a.ints as (number | Long)[]) as typeof a.ints;
      else if (a.floats.length > 0 || a.type === AT.FLOATS) a.floats = a.floats.length ? a.floats.map((f) => (r.bool(0.5) ? hostileFloat(r) : f)) : [hostileFloat(r)];
      else if (a.t) a.t.dims = mutateIntList(r, a.t.dims as (number | Long)[]) as typeof a.t.dims;
      else if (a.s !== null || a.type === AT.STRING) a.s = new TextEncoder().encode(r.pick(['SAME_UPPER', 'VALID', 'NOTSET', 'constant', 'reflect', '', 'x'.repeat(1000), '\u0000']));
      else if (a.f !== null || a.type === AT.FLOAT) a.f = hostileFloat(r);
      else a.i = interestingDim(r);
      return true;
    }
    case 'attrType': {
      const attrs = allAttrs(m);
      if (attrs.length === 0) return false;
      const a = r.pick(attrs);
      a.type = r.range(0, 14);
      if (r.bool(0.3)) { a.ints = []; a.floats = []; a.i = null; a.f = null; a.s = null; a.t = null; }
      return true;
    }
    case 'attrAdd': {
      if (g.node.length === 0) return false;
      const n = r.pick(g.node);
      const a = new onnx.AttributeProto(hostileAttr(r));
      n.attribute = n.attribute.filter((x) => x.name !== a.name || r.bool(0.2));
      n.attribute.push(a);
      return true;
    }
    case 'attrRemove': {
      const nodes = allNodes(m).filter((n) => n.attribute.length > 0);
      if (nodes.length === 0) return false;
      const n = r.pick(nodes);
      n.attribute.splice(r.int(n.attribute.length), 1);
      return true;
    }
    case 'rename': {
      const names = tensorNames(m);
      const to = r.pick([...names, '', 'fresh_name', 'a'.repeat(10000), 'x\u0000y', '../../etc/passwd']);
      const sites: (() => void)[] = [];
      for (const gg of graphs) {
        for (const t of gg.initializer) sites.push(() => { t.name = to; });
        for (const v of [...gg.input, ...gg.output]) sites.push(() => { v.name = to; });
        for (const n of gg.node) {
          n.input.forEach((_, i) => sites.push(() => { n.input[i] = to; }));
          n.output.forEach((_, i) => sites.push(() => { n.output[i] = to; }));
          sites.push(() => { n.name = to; });
        }
      }
      if (sites.length === 0) return false;
      r.pick(sites)();
      return true;
    }
    case 'initData': {
      const tensors = allTensors(m);
      if (tensors.length === 0) return false;
      const t = r.pick(tensors);
      const raw = t.rawData ?? new Uint8Array();
      switch (r.int(7)) {
        case 0: t.rawData = raw.slice(0, r.int(raw.length + 1)); break;
        case 1: { const x = new Uint8Array(raw.length + r.range(1, 64)); x.set(raw); t.rawData = x; break; }
        case 2: t.rawData = null; t.floatData = Array.from({ length: r.range(0, 8) }, () => hostileFloat(r)); break;
        case 3: t.rawData = null; t.int64Data = Array.from({ length: r.range(0, 8) }, () => interestingDim(r)); break;
        case 4: t.rawData = null; t.int32Data = Array.from({ length: r.range(0, 8) }, () => r.int(256)); break;
        case 5: t.rawData = raw.slice(1); break; // misaligned and one byte short
        default: t.segment = new onnx.TensorProto.Segment({ begin: 0, end: r.int(10) }); break;
      }
      return true;
    }
    case 'external': {
      const tensors = allTensors(m);
      if (tensors.length === 0) return false;
      const t = r.pick(tensors);
      t.dataLocation = r.bool(0.9) ? onnx.TensorProto.DataLocation.EXTERNAL : r.range(2, 9);
      t.rawData = null;
      const location = r.pick(['../secret.bin', '/etc/passwd', 'weights.bin', '', 'C:\\x.bin', 'a/../../b', '.', 'sub\u0000dir', '\\\\server\\share']);
      const kv = [{ key: 'location', value: location }];
      if (r.bool(0.5)) kv.push({ key: 'offset', value: r.pick(['0', '-1', '18446744073709551616', 'abc', String(2 ** 53)]) });
      if (r.bool(0.5)) kv.push({ key: 'length', value: r.pick(['0', '4', '99999999999', '-5']) });
      t.externalData = kv.map((e) => new onnx.StringStringEntryProto(e));
      return true;
    }
    case 'nodeOrder': {
      if (g.node.length < 2) return false;
      const i = r.int(g.node.length), j = r.int(g.node.length);
      if (r.bool(0.2)) g.node.reverse();
      else [g.node[i], g.node[j]] = [g.node[j], g.node[i]];
      return true;
    }
    case 'nodeIO': {
      if (g.node.length === 0) return false;
      const n = r.pick(g.node);
      const names = tensorNames(m);
      switch (r.int(6)) {
        case 0: if (n.input.length) n.input.splice(r.int(n.input.length), 1); break;
        case 1: n.input.push(r.pick([...names, ''])); break;
        case 2: if (n.output.length) n.input[r.int(Math.max(1, n.input.length))] = n.output[0]; break; // cycle
        case 3: n.output = []; break;
        case 4: n.output.push(r.pick([...names, '', 'extra_out'])); break;
        default: n.input = n.input.map(() => r.pick([...names, ''])); break;
      }
      return true;
    }
    case 'opType': {
      if (g.node.length === 0) return false;
      const n = r.pick(g.node);
      n.opType = r.pick(knownOps);
      if (r.bool(0.2)) n.domain = r.pick(['ai.fcm.opt', 'com.microsoft', 'ai.onnx', 'custom']);
      return true;
    }
    case 'graphIO': {
      switch (r.int(5)) {
        case 0: if (g.input.length) g.input.splice(r.int(g.input.length), 1); else return false; break;
        case 1: if (g.output.length) g.output.splice(r.int(g.output.length), 1); else return false; break;
        case 2: if (g.input.length) g.input.push(g.input[r.int(g.input.length)]); else return false; break;
        case 3: g.output.push(new onnx.ValueInfoProto({ name: r.pick([...tensorNames(m), 'nowhere']) })); break;
        default: if (g.input.length) r.pick(g.input).type = null; else return false; break;
      }
      return true;
    }
    case 'nest': {
      if (g.node.length === 0) return false;
      const n = r.pick(g.node);
      const depth = r.weighted([[6, 1], [3, 3], [2, 30], [1, 200], [1, 3000]]);
      // An If-like node whose then_branch nests `depth` graphs, each holding a copy of the node.
      const vi = (name: string) => new onnx.ValueInfoProto({ name });
      let inner = new onnx.GraphProto({ name: 'leaf', node: [new onnx.NodeProto({ ...n, attribute: [] })], output: [vi(n.output[0] ?? 'y')] });
      for (let i = 1; i < depth; i++) {
        const attr = new onnx.AttributeProto({ name: 'then_branch', type: AT.GRAPH, g: inner });
        inner = new onnx.GraphProto({ name: `g${i}`, node: [new onnx.NodeProto({ opType: 'If', input: ['cond'], output: [`o${i}`], attribute: [attr] })], output: [vi(`o${i}`)] });
      }
      n.attribute.push(new onnx.AttributeProto({ name: r.pick(['then_branch', 'body', 'else_branch', 'x']), type: AT.GRAPH, g: inner }));
      return true;
    }
    case 'opset': {
      if (r.bool(0.3)) { m.irVersion = r.pick([0, 1, 2, 3, 7, 10, 14, 15, 2 ** 31, -1]); return true; }
      if (m.opsetImport.length === 0 || r.bool(0.2)) {
        m.opsetImport.push(new onnx.OperatorSetIdProto({ domain: r.pick(['', 'ai.fcm.opt', 'ai.onnx']), version: r.pick([0, 1, 9, 13, 22, -1]) }));
      } else if (r.bool(0.3)) m.opsetImport = [];
      else r.pick(m.opsetImport).version = r.pick([0, 1, 8, 9, 10, 11, 12, 13, 17, 18, 21, 22, 1000, -1, 2 ** 53]);
      return true;
    }
    case 'dupNode': {
      if (g.node.length === 0) return false;
      const i = r.int(g.node.length);
      if (r.bool(0.5)) g.node.splice(i, 1);
      else g.node.splice(r.int(g.node.length + 1), 0, new onnx.NodeProto({ ...g.node[i] }));
      return true;
    }
    case 'valueInfo': {
      // A declared shape for an intermediate tensor: the importer uses it where static.
      const names = g.node.flatMap((n) => n.output).filter((x) => x);
      if (names.length === 0) return false;
      const dims = Array.from({ length: r.range(0, 5) }, () => new onnx.TensorShapeProto.Dimension({ dimValue: interestingDim(r) }));
      g.valueInfo.push(new onnx.ValueInfoProto({
        name: r.pick(names),
        type: new onnx.TypeProto({ tensorType: new onnx.TypeProto.Tensor({ elemType: r.pick([1, 1, 1, 7, 10, 0, 99]), shape: new onnx.TensorShapeProto({ dim: dims }) }) }),
      }));
      return true;
    }
    case 'hugeAttr': {
      if (g.node.length === 0) return false;
      const n = r.pick(g.node);
      const count = r.pick([100_000, 1_000_000, 3_000_000]);
      const name = r.pick(['pads', 'kernel_shape', 'perm', 'axes', 'strides', 'value_ints', 'split']);
      n.attribute = n.attribute.filter((x) => x.name !== name);
      n.attribute.push(new onnx.AttributeProto({ name, type: AT.INTS, ints: new Array<number>(count).fill(1) }));
      return true;
    }
  }
}

/** Decodes, applies the structured mutations in order, encodes. Throws when the seed itself fails to decode. */
export function mutateOnnx(bytes: Uint8Array, mutations: readonly { op: string; seed: number }[]): Uint8Array {
  const model = decodeModel(bytes, 'fuzz seed');
  for (const mu of mutations) mutateOnnxModel(model, mu.op as OnnxOp, mu.seed);
  return encodeModel(model);
}
