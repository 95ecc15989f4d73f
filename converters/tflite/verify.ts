// A flatbuffers verifier for the TFLite tables fcm-opt reads, run before any generated accessor touches
// the bytes: the flatbuffers JS runtime has no verifier and reads past the end as zeros (or throws a
// RangeError from a typed-array view), so a truncated or hostile file must be refused here, with an
// FcmError naming the file (exit 2), never a stack trace or a silently wrong graph.
//
// Two passes:
// 1. structure (verifyStructure): every table's vtable, every scalar field, every offset, string and
//    vector of the fields we read lies inside the file and is aligned, with a depth and table-count bound
//    like the C++ verifier's (flatbuffers::Verifier: max_depth 64, max_tables 1,000,000);
// 2. semantics (verifyModel): indices in range (buffers, tensors, operator codes; -1 only for optional
//    operator inputs), non-negative dims whose sizes fit the memory budget, constant buffers whose size is
//    exactly shape x element size (for a sparse constant: the values its index metadata names, densify.ts),
//    and quantization parameters with matching counts.

import * as flatbuffers from 'flatbuffers';
import { checkedProduct, invalid, overLimit, unsupported } from '../../src/errors.js';
import { Model, TensorType } from './schema_generated.js';
import { sparseLayout } from './densify.js';

const maxDepth = 64;
const maxTables = 1_000_000;

// Field kinds of the tables we read, slot by slot as in schema.fbs (a union takes two slots: type, value).
type Scalar = 1 | 2 | 4 | 8;
type Field =
  | { k: 'scalar'; size: Scalar }
  | { k: 'vector'; elem: Scalar }
  | { k: 'string' }
  | { k: 'table'; spec: () => TableSpec }
  | { k: 'tables'; spec: () => TableSpec }
  | { k: 'unionType' }
  | { k: 'union'; members: () => Record<number, TableSpec> };
interface TableSpec { name: string; fields: Field[] }

const s = (size: Scalar): Field => ({ k: 'scalar', size });
const v = (elem: Scalar): Field => ({ k: 'vector', elem });
const str: Field = { k: 'string' };
const table = (spec: () => TableSpec): Field => ({ k: 'table', spec });
const tables = (spec: () => TableSpec): Field => ({ k: 'tables', spec });
const spec = (name: string, fields: Field[]): TableSpec => ({ name, fields });

const customQuantization = spec('CustomQuantization', [v(1)]);
const quantizationParameters = spec('QuantizationParameters', [
  v(4), v(4), v(4), v(8), { k: 'unionType' }, { k: 'union', members: () => ({ 1: customQuantization }) }, s(4),
]);
// Sparse constants: SparsityParameters and the index vectors of its DimensionMetadata (union members 1..3).
const indexVectors: Record<number, TableSpec> = {
  1: spec('Int32Vector', [v(4)]),
  2: spec('Uint16Vector', [v(2)]),
  3: spec('Uint8Vector', [v(1)]),
};
const dimensionMetadata = spec('DimensionMetadata', [
  s(1), s(4), { k: 'unionType' }, { k: 'union', members: () => indexVectors }, { k: 'unionType' }, { k: 'union', members: () => indexVectors },
]);
const sparsityParameters = spec('SparsityParameters', [v(4), v(4), tables(() => dimensionMetadata)]);
const tensor = spec('Tensor', [v(4), s(1), s(4), str, table(() => quantizationParameters), s(1), table(() => sparsityParameters)]);
const actOnly = (name: string) => spec(name, [s(1)]);
const builtinOptions: Record<number, TableSpec> = {
  1: spec('Conv2DOptions', [s(1), s(4), s(4), s(1), s(4), s(4)]),
  2: spec('DepthwiseConv2DOptions', [s(1), s(4), s(4), s(4), s(1), s(4), s(4)]),
  5: spec('Pool2DOptions', [s(1), s(4), s(4), s(4), s(4), s(1)]),
  8: spec('FullyConnectedOptions', [s(1), s(1), s(1)]),
  9: spec('SoftmaxOptions', [s(4)]),
  10: spec('ConcatenationOptions', [s(4), s(1)]),
  11: actOnly('AddOptions'),
  17: spec('ReshapeOptions', [v(4)]),
  21: actOnly('MulOptions'),
  22: spec('PadOptions', []),
  27: spec('ReducerOptions', [s(1)]),
  28: actOnly('SubOptions'),
  30: spec('SqueezeOptions', [v(4)]),
  59: spec('PackOptions', [s(4), s(4)]),
  94: spec('DepthToSpaceOptions', [s(4)]),
};
const operator = spec('Operator', [
  s(4), v(4), v(4), { k: 'unionType' }, { k: 'union', members: () => builtinOptions }, v(1), s(1), v(1), v(4),
]);
const operatorCode = spec('OperatorCode', [s(1), str, s(4), s(4)]);
const subGraph = spec('SubGraph', [tables(() => tensor), v(4), v(4), tables(() => operator), str]);
const buffer = spec('Buffer', [v(1), s(8), s(8)]);
const model = spec('Model', [s(4), tables(() => operatorCode), tables(() => subGraph), str, tables(() => buffer)]);

class StructureVerifier {
  private tablesSeen = 0;
  constructor(private readonly bytes: Uint8Array, private readonly view: DataView, private readonly source: string) {}

  fail(what: string, at: number): never {
    throw invalid(this.source, `not a valid TFLite file: ${what} at byte ${at}`);
  }

  private inside(pos: number, len: number, what: string): void {
    if (pos < 0 || len < 0 || pos + len > this.bytes.length) {
      this.fail(`${what} (${len} bytes) runs past the end of the file (${this.bytes.length} bytes)`, pos);
    }
  }

  private aligned(pos: number, align: number, what: string): void {
    // Alignment is relative to the file start, as flatbuffers lays it out; typed-array views need it.
    if (pos % align !== 0) this.fail(`${what} is not aligned to ${align} bytes`, pos);
  }

  private u32(pos: number, what: string): number {
    this.inside(pos, 4, what);
    this.aligned(pos, 4, what);
    return this.view.getUint32(pos, true);
  }

  /** Follows a uoffset stored at `pos` and returns the target position. */
  private deref(pos: number, what: string): number {
    const off = this.u32(pos, what);
    const target = pos + off;
    if (off === 0 || target >= this.bytes.length) this.fail(`${what} points outside the file`, pos);
    return target;
  }

  private vector(pos: number, elem: number, what: string): { start: number; length: number } {
    const length = this.u32(pos, `length of ${what}`);
    const start = pos + 4;
    if (length > (this.bytes.length - start) / elem) this.fail(`${what} of ${length} elements runs past the end of the file`, pos);
    // The length is 4-aligned (u32 above); 8-byte elements need their own alignment for typed views.
    if (elem > 4 && length > 0) this.aligned(start, elem, what);
    return { start, length };
  }

  table(pos: number, t: TableSpec, depth: number): void {
    if (depth > maxDepth) this.fail(`tables nested deeper than ${maxDepth}`, pos);
    if (++this.tablesSeen > maxTables) throw overLimit(this.source, `more than ${maxTables} flatbuffer tables`);
    this.inside(pos, 4, `table ${t.name}`);
    this.aligned(pos, 4, `table ${t.name}`);
    const vtable = pos - this.view.getInt32(pos, true);
    this.inside(vtable, 4, `vtable of ${t.name}`);
    this.aligned(vtable, 2, `vtable of ${t.name}`);
    const vtSize = this.view.getUint16(vtable, true);
    const tableSize = this.view.getUint16(vtable + 2, true);
    if (vtSize < 4 || vtSize % 2 !== 0) this.fail(`vtable of ${t.name} has a bad size ${vtSize}`, vtable);
    this.inside(vtable, vtSize, `vtable of ${t.name}`);
    if (tableSize < 4) this.fail(`table ${t.name} has a bad size ${tableSize}`, pos);
    this.inside(pos, tableSize, `table ${t.name}`);
    const slots = (vtSize - 4) / 2;
    let unionType = 0;
    t.fields.forEach((f, slot) => {
      const fo = slot < slots ? this.view.getUint16(vtable + 4 + 2 * slot, true) : 0;
      if (fo === 0) { if (f.k === 'unionType') unionType = 0; return; }
      const what = `field ${slot} of ${t.name}`;
      const size = f.k === 'scalar' ? f.size : f.k === 'unionType' ? 1 : 4;
      if (fo + size > tableSize) this.fail(`${what} lies outside its table`, pos + fo);
      const at = pos + fo;
      this.aligned(at, size, what);
      switch (f.k) {
        case 'scalar': return;
        case 'unionType': unionType = this.bytes[at]; return;
        case 'vector': { this.vector(this.deref(at, what), f.elem, what); return; }
        case 'string': {
          const { start, length } = this.vector(this.deref(at, what), 1, what);
          this.inside(start + length, 1, `terminator of ${what}`);
          return;
        }
        case 'table': this.table(this.deref(at, what), f.spec(), depth + 1); return;
        case 'tables': {
          const { start, length } = this.vector(this.deref(at, what), 4, what);
          const inner = f.spec();
          for (let i = 0; i < length; i++) this.table(this.deref(start + 4 * i, `${inner.name} ${i} of ${what}`), inner, depth + 1);
          return;
        }
        case 'union': {
          const target = this.deref(at, what);
          const member = f.members()[unionType];
          // Members we do not read are still checked to be tables inside the file.
          this.table(target, member ?? spec(`union member ${unionType}`, []), depth + 1);
          return;
        }
      }
    });
  }
}

/** Checks the flatbuffer structure of a TFLite file: identifier, root table and everything reachable. */
export function verifyStructure(bytes: Uint8Array, source: string): void {
  if (bytes.length === 0) throw invalid(source, 'the file is empty');
  if (bytes.length < 8) throw invalid(source, `not a valid TFLite file: ${bytes.length} bytes is too short for a flatbuffer header`);
  const ident = String.fromCharCode(bytes[4], bytes[5], bytes[6], bytes[7]);
  if (ident !== 'TFL3') {
    const shown = JSON.stringify(ident.replace(/[^\x20-\x7e]/g, '?'));
    throw invalid(source, `not a TFLite file: the file identifier is ${shown}, expected "TFL3"`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const verifier = new StructureVerifier(bytes, view, source);
  const rootOff = view.getUint32(0, true);
  if (rootOff < 8 || rootOff >= bytes.length) verifier.fail('the root table offset points outside the file', 0);
  verifier.table(rootOff, model, 0);
}

/** Element size in bytes of a TFLite tensor type; 0 for types without a fixed size (string, resource, variant). */
export function tensorTypeSize(t: TensorType): number {
  switch (t) {
    case TensorType.FLOAT64: case TensorType.INT64: case TensorType.UINT64: case TensorType.COMPLEX64: return 8;
    case TensorType.COMPLEX128: return 16;
    case TensorType.FLOAT32: case TensorType.INT32: case TensorType.UINT32: return 4;
    case TensorType.FLOAT16: case TensorType.BFLOAT16: case TensorType.INT16: case TensorType.UINT16: return 2;
    case TensorType.INT8: case TensorType.UINT8: case TensorType.BOOL: return 1;
    default: return 0;
  }
}

/** Byte size of `numel` elements; INT4 packs two elements per byte. -1 when the type has no fixed size. */
export function tensorByteSize(t: TensorType, numel: number): number {
  if (t === TensorType.INT4) return Math.ceil(numel / 2);
  const size = tensorTypeSize(t);
  return size === 0 ? -1 : numel * size;
}

/** Where a buffer's bytes are: inside the flatbuffer (data) or after it (offset/size, models over 2 GiB). */
export function bufferBytes(m: Model, index: number, bytes: Uint8Array): Uint8Array {
  const b = m.buffers(index)!;
  const offset = Number(b.offset());
  if (offset > 1) return bytes.subarray(offset, offset + Number(b.size()));
  const data = b.dataArray();
  return data ?? new Uint8Array(0);
}

export function tensorLabel(m: Model, sg: number, t: number): string {
  const name = m.subgraphs(sg)!.tensors(t)!.name();
  return name ? `tensor ${t} '${name}'` : `tensor ${t}`;
}

/** Semantic checks on a structurally verified model. `maxMemory` bounds every tensor's size. */
export function verifyModel(m: Model, bytes: Uint8Array, source: string, maxMemory: number): void {
  const nBuffers = m.buffersLength();
  const nCodes = m.operatorCodesLength();
  if (m.subgraphsLength() === 0) throw invalid(source, 'the model has no subgraph');
  for (let b = 0; b < nBuffers; b++) {
    const buf = m.buffers(b)!;
    const offset = buf.offset(), size = buf.size();
    if (offset > 1n && offset + size > BigInt(bytes.length)) {
      throw invalid(source, `buffer ${b} (offset ${offset}, ${size} bytes) runs past the end of the file`);
    }
  }
  for (let c = 0; c < nCodes; c++) {
    const code = m.operatorCodes(c)!;
    if (code.deprecatedBuiltinCode() < 0 || code.builtinCode() < 0) {
      throw invalid(source, `operator code ${c} has a negative builtin code`);
    }
  }
  for (let g = 0; g < m.subgraphsLength(); g++) {
    const sg = m.subgraphs(g)!;
    const nTensors = sg.tensorsLength();
    const where = (what: string) => (m.subgraphsLength() > 1 ? `subgraph ${g}: ${what}` : what);
    for (let t = 0; t < nTensors; t++) {
      const tensor = sg.tensors(t)!;
      const label = where(tensorLabel(m, g, t));
      const shape: number[] = [];
      for (let i = 0; i < tensor.shapeLength(); i++) shape.push(tensor.shape(i)!);
      for (const d of shape) if (d < 0) throw invalid(source, `${label} has a negative dimension in shape [${shape.join(', ')}]`);
      const elem = Math.max(tensorTypeSize(tensor.type()), 1);
      const numel = checkedProduct(shape, `${source}: ${label}`, Math.floor(maxMemory / elem));
      const bi = tensor.buffer();
      if (bi >= nBuffers) throw invalid(source, `${label} refers to buffer ${bi}, but the model has ${nBuffers} buffers`);
      const data = bufferBytes(m, bi, bytes);
      let want = tensorByteSize(tensor.type(), numel);
      // A sparse constant (MediaPipe's *_sparse models, read through DENSIFY) stores only the values its index
      // metadata names (densify.ts); the importer expands it to its shape.
      const sparsity = tensor.sparsity();
      if (sparsity) {
        if (data.length === 0) throw invalid(source, `${label} is sparse but has no data`);
        if (tensorTypeSize(tensor.type()) === 0 || tensor.type() === TensorType.INT4) {
          throw unsupported(source, `${label} is a sparse tensor of type ${TensorType[tensor.type()] ?? tensor.type()}; fcm-opt densifies only fixed-size element types`);
        }
        const stored = sparseLayout(sparsity, shape, `${source}: ${label}`).stored;
        want = tensorByteSize(tensor.type(), stored);
        if (data.length !== want) throw invalid(source, `${label}: buffer ${bi} holds ${data.length} bytes, but the ${stored} values its sparsity names need ${want}`);
      }
      if (data.length > 0 && want >= 0 && data.length !== want) {
        throw invalid(source, `${label}: buffer ${bi} holds ${data.length} bytes, but shape [${shape.join(', ')}] of ${TensorType[tensor.type()] ?? tensor.type()} needs ${want}`);
      }
      const q = tensor.quantization();
      if (q && q.scaleLength() > 0) {
        const ns = q.scaleLength(), nz = q.zeroPointLength();
        if (nz !== ns) throw invalid(source, `${label} has ${ns} quantization scales and ${nz} zero points`);
        if (ns > 1) {
          const axis = q.quantizedDimension();
          if (axis < 0 || axis >= shape.length) throw invalid(source, `${label}: quantized dimension ${axis} is outside its rank ${shape.length}`);
          if (shape[axis] !== ns) throw invalid(source, `${label} has ${ns} quantization scales for dimension ${axis} of size ${shape[axis]}`);
        }
        for (let i = 0; i < ns; i++) {
          const sc = q.scale(i)!;
          if (!Number.isFinite(sc) || sc <= 0) throw invalid(source, `${label} has quantization scale ${sc}, expected a positive finite number`);
        }
      }
    }
    const checkList = (what: string, len: number, at: (i: number) => number | null, optional: boolean) => {
      for (let i = 0; i < len; i++) {
        const x = at(i)!;
        if (x === -1 && optional) continue;
        if (x < 0 || x >= nTensors) throw invalid(source, `${where(what)} refers to tensor ${x}, but the subgraph has ${nTensors} tensors`);
      }
    };
    checkList('subgraph input', sg.inputsLength(), (i) => sg.inputs(i), false);
    checkList('subgraph output', sg.outputsLength(), (i) => sg.outputs(i), false);
    for (let o = 0; o < sg.operatorsLength(); o++) {
      const op = sg.operators(o)!;
      const oc = op.opcodeIndex();
      if (oc >= nCodes) throw invalid(source, where(`operator ${o} uses operator code ${oc}, but the model has ${nCodes} operator codes`));
      checkList(`operator ${o} input`, op.inputsLength(), (i) => op.inputs(i), true);
      checkList(`operator ${o} output`, op.outputsLength(), (i) => op.outputs(i), false);
      checkList(`operator ${o} intermediate`, op.intermediatesLength(), (i) => op.intermediates(i), true);
    }
  }
}

/** Verifies and opens a TFLite file: the one entry point for readers of TFLite bytes. */
export function openModel(bytes: Uint8Array, source: string, maxMemory: number): Model {
  verifyStructure(bytes, source);
  const m = Model.getRootAsModel(new flatbuffers.ByteBuffer(bytes));
  verifyModel(m, bytes, source, maxMemory);
  return m;
}
