// Small helpers the graph passes share: copying graphs, reading attributes and constant tensors.
import { invalid } from '../errors.js';
import type { AttrValue, Attrs, DType, Graph, Node, Tensor, TensorData } from './ir.js';
import { newAttrs } from './ir.js';

/** A copy whose nodes, attribute records and tensor map can be changed without touching `g`. Tensor
 *  objects and their data are shared: replace a tensor (`{ ...t, shape }`) rather than mutating it. */
export function cloneGraph(g: Graph): Graph {
  return {
    name: g.name,
    inputs: [...g.inputs],
    outputs: [...g.outputs],
    tensors: new Map(g.tensors),
    nodes: g.nodes.map(cloneNode),
    source: g.source,
  };
}

/** The node a copy was made from, through any number of passes: importers key side tables (such as the
 *  ONNX NodeProto of an opaque node) by the node object they created. */
const origins = new WeakMap<Node, Node>();
export const originalNode = (n: Node): Node => origins.get(n) ?? n;

export function cloneNode(n: Node): Node {
  const attrs = newAttrs();
  for (const k of Object.keys(n.attrs)) {
    const v = n.attrs[k];
    attrs[k] = Array.isArray(v) ? ([...v] as AttrValue) : v;
  }
  const copy: Node = { name: n.name, op: n.op, domain: n.domain, inputs: [...n.inputs], outputs: [...n.outputs], attrs };
  origins.set(copy, originalNode(n));
  return copy;
}

export const nodeWhere = (g: Graph, n: Node) => `${g.source}: node '${n.name}' (${n.op})`;
export const tensorWhere = (g: Graph, name: string) => `${g.source}: tensor '${name}'`;

/** First of `names` present in the attributes (importers may keep ONNX spellings such as auto_pad). */
function pick(attrs: Attrs, names: readonly string[]): AttrValue | undefined {
  for (const k of names) if (Object.prototype.hasOwnProperty.call(attrs, k)) return attrs[k];
  return undefined;
}

export function attrInt(g: Graph, n: Node, names: string | readonly string[], dflt: number): number {
  const v = pick(n.attrs, typeof names === 'string' ? [names] : names);
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw invalid(nodeWhere(g, n), `attribute '${String(names)}' must be an integer`);
  return v;
}

export function attrFloat(g: Graph, n: Node, names: string | readonly string[], dflt: number): number {
  const v = pick(n.attrs, typeof names === 'string' ? [names] : names);
  if (v === undefined) return dflt;
  if (typeof v !== 'number') throw invalid(nodeWhere(g, n), `attribute '${String(names)}' must be a number`);
  return v;
}

export function attrInts(g: Graph, n: Node, names: string | readonly string[]): number[] | undefined {
  const v = pick(n.attrs, typeof names === 'string' ? [names] : names);
  if (v === undefined) return undefined;
  if (typeof v === 'number' && Number.isInteger(v)) return [v];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isInteger(x))) {
    throw invalid(nodeWhere(g, n), `attribute '${String(names)}' must be a list of integers`);
  }
  return v as number[];
}

export function attrString(g: Graph, n: Node, names: string | readonly string[], dflt: string): string {
  const v = pick(n.attrs, typeof names === 'string' ? [names] : names);
  if (v === undefined) return dflt;
  if (typeof v !== 'string') throw invalid(nodeWhere(g, n), `attribute '${String(names)}' must be a string`);
  return v;
}

export const isConstant = (g: Graph, name: string) => !!name && g.tensors.get(name)?.data !== undefined;

export function isIntegerDType(d: DType): boolean {
  return d === 'int8' || d === 'uint8' || d === 'int16' || d === 'uint16' || d === 'int32' || d === 'uint32'
    || d === 'int64' || d === 'uint64' || d === 'bool';
}

/**
 * The values of a constant tensor as numbers. 64-bit integers must be safe integers unless `lossy`
 * (Slice bounds such as INT64_MAX only need to clamp, so they may lose precision).
 */
export function constNumbers(t: Tensor, where: string, lossy = false): number[] {
  const d = t.data;
  if (!d) throw invalid(where, `tensor '${t.name}' is not a constant`);
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) {
    const out = new Array<number>(d.length);
    for (let i = 0; i < d.length; i++) {
      const v = Number(d[i]);
      if (!lossy && !Number.isSafeInteger(v)) throw invalid(where, `value ${d[i]} of tensor '${t.name}' is out of range`);
      out[i] = lossy ? Math.max(-Number.MAX_SAFE_INTEGER, Math.min(Number.MAX_SAFE_INTEGER, v)) : v;
    }
    return out;
  }
  // Half-precision tensors hold their bits in a Uint16Array.
  if (t.dtype === 'float16' || t.dtype === 'bfloat16') return Array.from(halfValues(t.dtype, d as Uint16Array));
  return Array.from(d as ArrayLike<number>);
}

/** The values of float16 or bfloat16 bits (as a Uint16Array holds them) as float32. */
export function halfValues(dtype: 'float16' | 'bfloat16', bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  if (dtype === 'bfloat16') {
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < bits.length; i++) u[i] = bits[i] << 16;
    return out;
  }
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i];
    const sign = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f, m = h & 0x3ff;
    out[i] = e === 0 ? sign * m * 2 ** -24 : e === 31 ? (m ? NaN : sign * Infinity) : sign * (1 + m / 1024) * 2 ** (e - 15);
  }
  return out;
}

/** Typed array for `dtype` holding `values` (int64 as BigInt64Array). */
export function makeData(dtype: DType, values: readonly number[]): TensorData {
  switch (dtype) {
    case 'int64': return BigInt64Array.from(values, (v) => BigInt(Math.trunc(v)));
    case 'uint64': return BigUint64Array.from(values, (v) => BigInt(Math.trunc(v)));
    case 'int32': return Int32Array.from(values);
    case 'uint32': return Uint32Array.from(values);
    case 'int16': return Int16Array.from(values);
    case 'uint16': return Uint16Array.from(values);
    case 'int8': return Int8Array.from(values);
    case 'uint8': case 'bool': return Uint8Array.from(values);
    case 'float64': return Float64Array.from(values);
    case 'float32': return Float32Array.from(values);
    default: throw new Error(`no typed array for ${dtype}`);
  }
}

/** A name not used by any tensor of `g`, built from `base`. */
export function uniqueName(g: Graph, base: string): string {
  if (!g.tensors.has(base)) return base;
  for (let i = 1; ; i++) if (!g.tensors.has(`${base}_${i}`)) return `${base}_${i}`;
}

/** Removes tensors (constants, stale intermediates) that no node and no graph input/output names. */
export function pruneTensors(g: Graph): Graph {
  const used = new Set<string>([...g.inputs, ...g.outputs]);
  for (const n of g.nodes) for (const x of [...n.inputs, ...n.outputs]) if (x) used.add(x);
  // Intermediate tensors of removed nodes go too: only names still referenced stay.
  const tensors = new Map<string, Tensor>();
  for (const [k, t] of g.tensors) if (used.has(k)) tensors.set(k, t);
  return { ...g, tensors };
}

/** Replaces every read of tensor `from` by `to` in nodes. */
export function renameUses(g: Graph, from: string, to: string): void {
  for (const n of g.nodes) for (let i = 0; i < n.inputs.length; i++) if (n.inputs[i] === from) n.inputs[i] = to;
}

/** Images per inference: the first input's leading dimension (1 for inputs of rank < 4). */
export function batchOf(g: Pick<Graph, 'inputs' | 'tensors'>): number {
  const s = g.tensors.get(g.inputs[0])?.shape;
  return s && s.length === 4 && Number.isSafeInteger(s[0]) && s[0] >= 1 ? s[0] : 1;
}
