// Structure-aware mutations of a TFLite flatbuffer: a walker (schema.fbs, the tables fcm-opt reads) lists
// every field's byte position, width and meaning (Tensor.buffer, Operator.opcode_index, Operator.inputs[i],
// Tensor.shape[i], Conv2DOptions.stride_w, vector lengths, uoffsets...), and a mutation patches one of
// them in place with an interesting value. The walker tolerates broken files (it skips what it cannot
// follow), so mutations stack.
import { interestingInts, Rng } from './rng.js';

type Scalar = 1 | 2 | 4 | 8;
type Field =
  | { k: 'scalar'; name: string; size: Scalar }
  | { k: 'vector'; name: string; elem: Scalar }
  | { k: 'string'; name: string }
  | { k: 'table'; name: string; spec: () => Spec }
  | { k: 'tables'; name: string; spec: () => Spec }
  | { k: 'unionType'; name: string }
  | { k: 'union'; name: string; members: () => Record<number, Spec> };
interface Spec { name: string; fields: Field[] }

const sc = (name: string, size: Scalar): Field => ({ k: 'scalar', name, size });
const vec = (name: string, elem: Scalar): Field => ({ k: 'vector', name, elem });
const str = (name: string): Field => ({ k: 'string', name });

const quant: Spec = { name: 'QuantizationParameters', fields: [vec('min', 4), vec('max', 4), vec('scale', 4), vec('zero_point', 8), { k: 'unionType', name: 'details_type' }, { k: 'union', name: 'details', members: () => ({}) }, sc('quantized_dimension', 4)] };
const tensor: Spec = { name: 'Tensor', fields: [vec('shape', 4), sc('type', 1), sc('buffer', 4), str('name'), { k: 'table', name: 'quantization', spec: () => quant }, sc('is_variable', 1)] };
const options: Record<number, Spec> = {
  1: { name: 'Conv2DOptions', fields: [sc('padding', 1), sc('stride_w', 4), sc('stride_h', 4), sc('fused_activation_function', 1), sc('dilation_w_factor', 4), sc('dilation_h_factor', 4)] },
  2: { name: 'DepthwiseConv2DOptions', fields: [sc('padding', 1), sc('stride_w', 4), sc('stride_h', 4), sc('depth_multiplier', 4), sc('fused_activation_function', 1), sc('dilation_w_factor', 4), sc('dilation_h_factor', 4)] },
  5: { name: 'Pool2DOptions', fields: [sc('padding', 1), sc('stride_w', 4), sc('stride_h', 4), sc('filter_width', 4), sc('filter_height', 4), sc('fused_activation_function', 1)] },
  8: { name: 'FullyConnectedOptions', fields: [sc('fused_activation_function', 1), sc('weights_format', 1), sc('keep_num_dims', 1)] },
  9: { name: 'SoftmaxOptions', fields: [sc('beta', 4)] },
  10: { name: 'ConcatenationOptions', fields: [sc('axis', 4), sc('fused_activation_function', 1)] },
  11: { name: 'AddOptions', fields: [sc('fused_activation_function', 1)] },
  17: { name: 'ReshapeOptions', fields: [vec('new_shape', 4)] },
  21: { name: 'MulOptions', fields: [sc('fused_activation_function', 1)] },
  27: { name: 'ReducerOptions', fields: [sc('keep_dims', 1)] },
  28: { name: 'SubOptions', fields: [sc('fused_activation_function', 1)] },
  30: { name: 'SqueezeOptions', fields: [vec('squeeze_dims', 4)] },
  59: { name: 'PackOptions', fields: [sc('values_count', 4), sc('axis', 4)] },
};
const operator: Spec = { name: 'Operator', fields: [sc('opcode_index', 4), vec('inputs', 4), vec('outputs', 4), { k: 'unionType', name: 'builtin_options_type' }, { k: 'union', name: 'builtin_options', members: () => options }, vec('custom_options', 1), sc('custom_options_format', 1), vec('mutating_variable_inputs', 1), vec('intermediates', 4)] };
const operatorCode: Spec = { name: 'OperatorCode', fields: [sc('deprecated_builtin_code', 1), str('custom_code'), sc('version', 4), sc('builtin_code', 4)] };
const subGraph: Spec = { name: 'SubGraph', fields: [{ k: 'tables', name: 'tensors', spec: () => tensor }, vec('inputs', 4), vec('outputs', 4), { k: 'tables', name: 'operators', spec: () => operator }, str('name')] };
const buffer: Spec = { name: 'Buffer', fields: [vec('data', 1), sc('offset', 8), sc('size', 8)] };
const model: Spec = { name: 'Model', fields: [sc('version', 4), { k: 'tables', name: 'operator_codes', spec: () => operatorCode }, { k: 'tables', name: 'subgraphs', spec: () => subGraph }, str('description'), { k: 'tables', name: 'buffers', spec: () => buffer }] };

/** A patchable place in the file. `kind` says how to choose values: an index, a size, a dim, an offset... */
export interface Site { pos: number; size: Scalar; label: string; kind: 'scalar' | 'elem' | 'length' | 'offset' | 'vtable' }

/** Lists the sites of a TFLite file, skipping whatever does not lie inside it. */
export function tfliteSites(bytes: Uint8Array): Site[] {
  const sites: Site[] = [];
  if (bytes.length < 8) return sites;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const inside = (pos: number, len: number) => pos >= 0 && len >= 0 && pos + len <= bytes.length;
  let tables = 0;
  const deref = (pos: number, label: string): number | null => {
    if (!inside(pos, 4)) return null;
    sites.push({ pos, size: 4, label: `off:${label}`, kind: 'offset' });
    const target = pos + view.getUint32(pos, true);
    return inside(target, 4) && target !== pos ? target : null;
  };
  const vector = (pos: number, elem: number, label: string, addElems: boolean): { start: number; length: number } | null => {
    sites.push({ pos, size: 4, label: `len:${label}`, kind: 'length' });
    const length = view.getUint32(pos, true);
    const start = pos + 4;
    if (length > (bytes.length - start) / elem) return null;
    if (addElems) for (let i = 0; i < Math.min(length, 64); i++) sites.push({ pos: start + i * elem, size: elem as Scalar, label: `${label}[${i}]`, kind: 'elem' });
    return { start, length };
  };
  const walk = (pos: number, spec: Spec, depth: number): void => {
    if (depth > 16 || ++tables > 20000 || !inside(pos, 4)) return;
    const vt = pos - view.getInt32(pos, true);
    if (!inside(vt, 4)) return;
    const vtSize = view.getUint16(vt, true);
    if (vtSize < 4 || !inside(vt, vtSize)) return;
    const slots = (vtSize - 4) / 2;
    sites.push({ pos: vt, size: 2, label: `vtable:${spec.name}`, kind: 'vtable' });
    let unionType = 0;
    spec.fields.forEach((f, slot) => {
      if (slot >= slots) return;
      const fo = view.getUint16(vt + 4 + 2 * slot, true);
      if (fo === 0) return;
      const at = pos + fo;
      const label = `${spec.name}.${f.name}`;
      switch (f.k) {
        case 'scalar': if (inside(at, f.size)) sites.push({ pos: at, size: f.size, label, kind: 'scalar' }); return;
        case 'unionType': if (inside(at, 1)) { unionType = bytes[at]; sites.push({ pos: at, size: 1, label, kind: 'scalar' }); } return;
        case 'vector': case 'string': {
          const p = deref(at, label);
          if (p !== null) vector(p, f.k === 'vector' ? f.elem : 1, label, f.k === 'vector');
          return;
        }
        case 'table': { const p = deref(at, label); if (p !== null) walk(p, f.spec(), depth + 1); return; }
        case 'tables': {
          const p = deref(at, label);
          const v = p === null ? null : vector(p, 4, label, false);
          if (!v) return;
          for (let i = 0; i < Math.min(v.length, 4096); i++) {
            const q = deref(v.start + 4 * i, `${label}[${i}]`);
            if (q !== null) walk(q, f.spec(), depth + 1);
          }
          return;
        }
        case 'union': {
          const member = f.members()[unionType];
          const p = deref(at, label);
          if (p !== null && member) walk(p, member, depth + 1);
          return;
        }
      }
    });
  };
  const root = view.getUint32(0, true);
  if (inside(root, 4)) walk(root, model, 0);
  return sites;
}

/** Labels that matter most for the importer (indices, shapes, strides): picked more often. */
const important = /Tensor\.buffer|opcode_index|Operator\.(inputs|outputs)\[|Tensor\.shape\[|stride|dilation|depth_multiplier|filter_|Tensor\.type|builtin_code|builtin_options_type|SubGraph\.(inputs|outputs)\[|new_shape|squeeze_dims|axis|values_count|quantized_dimension|Buffer\.(offset|size)|len:/;

export const tfliteOps = ['field', 'index', 'length', 'offset', 'swap'] as const;
export type TfliteOp = (typeof tfliteOps)[number];
export const tfliteOpWeights: Record<TfliteOp, number> = { field: 10, index: 6, length: 3, offset: 2, swap: 2 };

function write(view: DataView, s: Site, value: number): void {
  const big = BigInt(Math.trunc(value));
  switch (s.size) {
    case 1: view.setUint8(s.pos, Number(BigInt.asUintN(8, big))); break;
    case 2: view.setUint16(s.pos, Number(BigInt.asUintN(16, big)), true); break;
    case 4: view.setUint32(s.pos, Number(BigInt.asUintN(32, big)), true); break;
    case 8: view.setBigUint64(s.pos, BigInt.asUintN(64, big), true); break;
  }
}

export function mutateTflite(input: Uint8Array, op: TfliteOp, seed: number): Uint8Array {
  const r = new Rng(seed);
  const bytes = input.slice();
  const all = tfliteSites(bytes);
  if (all.length === 0) return bytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pickFrom = (sites: Site[]) => {
    if (sites.length === 0) return null;
    const imp = sites.filter((s) => important.test(s.label));
    return r.pick(imp.length > 0 && r.bool(0.7) ? imp : sites);
  };
  switch (op) {
    case 'field': {
      const s = pickFrom(all.filter((x) => x.kind === 'scalar' || x.kind === 'elem'));
      if (!s) return bytes;
      const v = r.weighted<() => number>([[5, () => r.pick(interestingInts)], [3, () => r.range(-2, 20)], [1, () => r.int(256)]])();
      write(view, s, v);
      return bytes;
    }
    case 'index': {
      // Tensor/buffer/opcode indices: small out-of-range values, -1, and other valid indices.
      const s = pickFrom(all.filter((x) => /buffer|opcode_index|inputs\[|outputs\[|builtin_code/.test(x.label) && x.kind !== 'offset'));
      if (!s) return bytes;
      write(view, s, r.pick([-1, -2, 0, 1, r.range(0, 40), 255, 1000, 2 ** 31 - 1, 2 ** 32 - 1]));
      return bytes;
    }
    case 'length': {
      const s = pickFrom(all.filter((x) => x.kind === 'length'));
      if (!s) return bytes;
      const cur = view.getUint32(s.pos, true);
      write(view, s, r.pick([0, cur + 1, cur - 1, cur * 2, 2 ** 31, 2 ** 32 - 1, 1e6]));
      return bytes;
    }
    case 'offset': {
      const s = pickFrom(all.filter((x) => x.kind === 'offset' || x.kind === 'vtable'));
      if (!s) return bytes;
      const cur = s.size === 2 ? view.getUint16(s.pos, true) : view.getUint32(s.pos, true);
      write(view, s, r.pick([0, cur + 4, cur - 4, cur + 1, bytes.length, 2 ** 31, 2 ** 32 - 4, 4]));
      return bytes;
    }
    case 'swap': {
      const elems = all.filter((x) => x.kind === 'elem' && /Operator\.(inputs|outputs)/.test(x.label));
      if (elems.length < 2) return bytes;
      const a = r.pick(elems), b = r.pick(elems);
      const va = view.getInt32(a.pos, true), vb = view.getInt32(b.pos, true);
      view.setInt32(a.pos, vb, true);
      view.setInt32(b.pos, va, true);
      return bytes;
    }
  }
}
