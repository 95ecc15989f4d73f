// ONNX protobuf decoding and encoding with the generated static module (see GENERATED.md).
//
// decodeModel never lets a raw protobufjs error escape: every failure becomes one FcmError naming the
// file. Nesting is bounded by protobufjs' recursion limit (100 messages, as protoc's default), checked
// during decode, so 5,000 subgraphs nested in attributes end in an error (exit 4), not a stack overflow.

import protobuf from 'protobufjs/minimal.js';
import { FcmError, invalid, overLimit, unsupported } from '../../src/errors.js';
import type { DType } from '../../src/graph/ir.js';
import { onnx } from './onnx-pb.js';
import { decodeUtf8Lossless, encodeUtf8Lossless, isAscii } from '../../src/text.js';

export { onnx };
export type ModelProto = onnx.ModelProto;

/** The newest ONNX IR version the schema (onnx.proto) describes. */
export const supportedIrVersion = 14;
/** Deepest message nesting decodeModel accepts (model > graph > node > attribute > graph ... counts 3 per subgraph). */
export const maxNestingDepth = protobuf.Reader.recursionLimit;

// Strings of ONNX files (names, attributes) decode without losing invalid UTF-8 bytes and encode back to the same
// bytes (src/text.ts): two names that differ only in invalid bytes stay two names.
protobuf.util.utf8.read = (buffer: Uint8Array, start: number, end: number) => decodeUtf8Lossless(buffer, start, end);
protobuf.util.utf8.length = (s: string) => (isAscii(s) ? s.length : encodeUtf8Lossless(s).length);
protobuf.util.utf8.write = (s: string, buffer: Uint8Array, offset: number) => {
  if (isAscii(s)) {
    for (let i = 0; i < s.length; i++) buffer[offset + i] = s.charCodeAt(i);
    return s.length;
  }
  const b = encodeUtf8Lossless(s);
  buffer.set(b, offset);
  return b.length;
};

/** A protobufjs Long (int64 fields are always Long with --force-long) or a plain number when we built it. */
export interface LongLike { low: number; high: number; unsigned: boolean }
export type Int64 = LongLike | number;

/** int64 to number; throws (exit 2) when it is not a safe integer. */
export function toSafeNumber(v: Int64 | null | undefined, where: string): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  const n = v.high * 4294967296 + (v.low >>> 0);
  const value = v.unsigned ? (v.high >>> 0) * 4294967296 + (v.low >>> 0) : n;
  if (!Number.isSafeInteger(value)) throw invalid(where, `integer ${toBigInt(v)} is outside the safe range`);
  return value;
}

/** int64 to number, clamping values beyond ±2^53 (INT64_MAX in Slice ends means "to the end"). */
export function toClampedNumber(v: Int64 | null | undefined): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  // Fast path without BigInt (attribute lists can hold millions of values): exact while safe.
  const n = (v.unsigned ? v.high >>> 0 : v.high) * 4294967296 + (v.low >>> 0);
  if (Number.isSafeInteger(n)) return n;
  return Number(toBigInt(v));
}

export function toBigInt(v: Int64): bigint {
  if (typeof v === 'number') return BigInt(v);
  const u = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
  return v.unsigned ? u : BigInt.asIntN(64, u);
}

// ---------------------------------------------------------------------------------------------------
// Memory the decoded message tree needs, estimated from the wire format before decoding. protobufjs turns
// every int64 into a Long object (~48 bytes each, --force-long), so a packed `ints` attribute of a million
// 1-byte varints costs ~50 MB once decoded: a file far under the budget could exhaust the heap. The scan
// is iterative (no recursion), allocates nothing per element and stops at the first malformed field
// (decode then reports it).

type WireKind = 'int64' | 'varint32' | 'float' | 'double' | 'string' | 'bytes' | WireSchema;
interface WireSchema { [field: number]: WireKind }

/** Rough V8 costs in bytes: a message object, a Long, an array slot, a string header. */
const cost = { message: 200, long: 64, number: 16, string: 40, bytes: 64, unknown: 64 } as const;

const W = {} as Record<string, WireSchema>;
Object.assign(W, {
  sse: { 1: 'string', 2: 'string' },
  opset: { 1: 'string', 2: 'int64' },
  dim: { 1: 'int64', 2: 'string', 3: 'string' },
  segment: { 1: 'int64', 2: 'int64' },
});
W.shape = { 1: W.dim };
W.typeTensor = { 1: 'varint32', 2: W.shape };
W.type = { 6: 'string', 7: { 1: 'string', 2: 'string' } };
W.type[1] = W.typeTensor;
W.type[8] = W.typeTensor;
W.type[4] = { 1: W.type };
W.type[5] = { 1: 'varint32', 2: W.type };
W.type[9] = { 1: W.type };
W.valueInfo = { 1: 'string', 2: W.type, 3: 'string', 4: W.sse };
W.tensor = {
  1: 'int64', 2: 'varint32', 3: W.segment, 4: 'float', 5: 'varint32', 6: 'bytes', 7: 'int64', 8: 'string', 9: 'bytes',
  10: 'double', 11: 'int64', 12: 'string', 13: W.sse, 14: 'varint32', 16: W.sse,
};
W.sparse = { 1: W.tensor, 2: W.tensor, 3: 'int64' };
W.graph = { 2: 'string', 5: W.tensor, 10: 'string', 15: W.sparse, 11: W.valueInfo, 12: W.valueInfo, 13: W.valueInfo, 14: { 1: 'string', 2: W.sse }, 16: W.sse };
W.attribute = {
  1: 'string', 21: 'string', 13: 'string', 20: 'varint32', 2: 'float', 3: 'int64', 4: 'bytes', 5: W.tensor, 6: W.graph,
  22: W.sparse, 14: W.type, 7: 'float', 8: 'int64', 9: 'bytes', 10: W.tensor, 11: W.graph, 23: W.sparse, 15: W.type,
};
W.node = { 1: 'string', 2: 'string', 3: 'string', 4: 'string', 5: W.attribute, 6: 'string', 7: 'string', 8: 'string', 9: W.sse };
W.graph[1] = W.node;
W.function = { 1: 'string', 4: 'string', 5: 'string', 6: 'string', 11: W.attribute, 7: W.node, 8: 'string', 9: W.opset, 10: 'string', 13: 'string', 12: W.valueInfo, 14: W.sse };
W.model = {
  1: 'int64', 2: 'string', 3: 'string', 4: 'string', 5: 'int64', 6: 'string', 7: W.graph, 8: W.opset, 14: W.sse,
  20: { 1: W.graph, 2: W.graph, 3: W.sse, 4: W.sse }, 25: W.function,
};

/** Estimated bytes of the decoded ModelProto (not counting `bytes` itself, whose fields are views). */
export function estimateDecodedBytes(bytes: Uint8Array): number {
  let total = cost.message;
  // Frames of (end, schema); positions advance through `pos` since nested messages are contiguous.
  const stack: { end: number; schema: WireSchema }[] = [{ end: bytes.length, schema: W.model }];
  let pos = 0;
  const varint = (): number | null => {
    let shift = 0, v = 0;
    for (;;) {
      if (pos >= bytes.length || shift > 63) return null;
      const b = bytes[pos++];
      if (shift < 49) v += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return v;
      shift += 7;
    }
  };
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (pos >= top.end) { pos = top.end; stack.pop(); continue; }
    const tag = varint();
    if (tag === null) break;
    const field = Math.floor(tag / 8), wire = tag % 8;
    const kind: WireKind | undefined = Object.hasOwn(top.schema, field) ? top.schema[field] : undefined;
    if (wire === 0) {
      if (varint() === null) break;
      total += kind === 'int64' ? cost.long : kind === undefined ? cost.unknown : cost.number;
    } else if (wire === 1 || wire === 5) {
      pos += wire === 1 ? 8 : 4;
      total += kind === undefined ? cost.unknown : cost.number;
    } else if (wire === 2) {
      const len = varint();
      if (len === null || pos + len > top.end) break;
      const start = pos;
      pos += len;
      if (kind === undefined) { total += cost.unknown; continue; }
      if (typeof kind === 'object') {
        total += cost.message;
        // Deeper than the decoder's recursion limit: decode refuses it; no need to look further.
        if (stack.length <= protobuf.Reader.recursionLimit + 1) { pos = start; stack.push({ end: start + len, schema: kind }); }
        continue;
      }
      switch (kind) {
        case 'int64': case 'varint32': {
          // Packed varints: one element per byte without the continuation bit.
          let n = 0;
          for (let i = start; i < start + len; i++) if ((bytes[i] & 0x80) === 0) n++;
          total += n * (kind === 'int64' ? cost.long : cost.number);
          break;
        }
        case 'float': total += (len / 4) * cost.number; break;
        case 'double': total += (len / 8) * cost.number; break;
        case 'string': total += cost.string + 2 * len; break;
        case 'bytes': total += cost.bytes; break;
      }
    } else break; // groups (3, 4) and invalid wire types: decode reports them
  }
  return total;
}

/**
 * Decodes an ONNX model and checks that it is one: ir_version, opset_import and graph present. With
 * `maxMemory`, the decoded size is estimated first (estimateDecodedBytes) and a model whose message tree
 * would not fit is refused (exit 4) before protobufjs allocates it.
 */
export function decodeModel(bytes: Uint8Array, source: string, maxMemory?: number): onnx.ModelProto {
  if (maxMemory !== undefined) {
    const need = estimateDecodedBytes(bytes);
    if (need + bytes.byteLength > maxMemory) {
      throw overLimit(source, `decoding needs about ${need} bytes besides the ${bytes.byteLength} of the file (millions of int64 values or messages), over the memory budget of ${maxMemory} bytes`);
    }
  }
  let model: onnx.ModelProto;
  try {
    // The array reader (not Node's Buffer reader, whose strings turn invalid UTF-8 into U+FFFD): names decode
    // losslessly through protobuf.util.utf8 (set below).
    const reader = protobuf.Reader.create(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    // Keep fields newer than our schema so encodeModel writes them back.
    reader.discardUnknown = false;
    model = onnx.ModelProto.decode(reader);
  } catch (e) {
    throw decodeError(e, source);
  }
  const missing: string[] = [];
  if (model.irVersion === null) missing.push('ir_version');
  if (model.opsetImport.length === 0) missing.push('opset_import');
  if (model.graph === null) missing.push('graph');
  if (missing.length > 0) {
    const what = bytes.byteLength === 0 ? 'the file is empty' : `${missing.join(', ')} missing`;
    throw invalid(source, `not an ONNX model (${what})`);
  }
  const ir = toClampedNumber(model.irVersion);
  if (ir > supportedIrVersion) {
    throw unsupported(source, `ONNX IR version ${ir} is newer than the newest this build reads (${supportedIrVersion})`);
  }
  if (ir < 3) throw unsupported(source, `ONNX IR version ${ir} predates operator sets (IR 3) and is not supported`);
  return model;
}

function decodeError(e: unknown, source: string): FcmError {
  const msg = e instanceof Error ? e.message : String(e);
  if (/max depth exceeded/.test(msg)) {
    return overLimit(source, `messages nested deeper than ${maxNestingDepth} levels (subgraphs inside attributes); refusing to decode`);
  }
  if (e instanceof RangeError && /call stack/i.test(msg)) {
    return overLimit(source, 'nesting too deep to decode');
  }
  const detail = /index out of range/.test(msg) ? 'truncated or corrupt protobuf' : `corrupt protobuf: ${msg}`;
  const err = invalid(source, `not a valid ONNX model (${detail})`);
  (err as { cause?: unknown }).cause = e;
  return err;
}

/** Encodes a model; any field the decoder kept as unknown is written back. */
export function encodeModel(model: onnx.ModelProto | onnx.ModelProto.$Properties): Uint8Array {
  try {
    // The array writer, whose strings go through protobuf.util.utf8 (a decoded invalid byte is written back as is).
    return onnx.ModelProto.encode(model as onnx.ModelProto, new protobuf.Writer()).finish();
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (/max depth exceeded/.test(msg)) throw overLimit('encodeModel', `messages nested deeper than ${maxNestingDepth} levels`);
    throw e;
  }
}

// ONNX TensorProto.DataType <-> IR DType. Types the IR has no array for (complex, float8, 4/2-bit) map to null.
const D = onnx.TensorProto.DataType;
const onnxToDType = new Map<number, DType>([
  [D.FLOAT, 'float32'], [D.UINT8, 'uint8'], [D.INT8, 'int8'], [D.UINT16, 'uint16'], [D.INT16, 'int16'],
  [D.INT32, 'int32'], [D.INT64, 'int64'], [D.STRING, 'string'], [D.BOOL, 'bool'], [D.FLOAT16, 'float16'],
  [D.DOUBLE, 'float64'], [D.UINT32, 'uint32'], [D.UINT64, 'uint64'], [D.BFLOAT16, 'bfloat16'],
]);
const dtypeToOnnx = new Map<DType, number>([...onnxToDType].map(([k, v]) => [v, k]));

export function dtypeFromOnnx(t: number): DType | null {
  return onnxToDType.get(t) ?? null;
}
export function onnxDataTypeName(t: number): string {
  return D[t] ?? `data type ${t}`;
}
export function dtypeToOnnxType(d: DType): number {
  const t = dtypeToOnnx.get(d);
  if (t === undefined) throw unsupported('ONNX export', `dtype ${d}`);
  return t;
}
