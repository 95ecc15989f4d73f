// ONNX protobuf decoding and encoding with the generated static module (see GENERATED.md).
//
// decodeModel never lets a raw protobufjs error escape: every failure becomes one FcmError naming the
// file. Nesting is bounded by protobufjs' recursion limit (100 messages, as protoc's default), checked
// during decode, so 5,000 subgraphs nested in attributes end in an error (exit 4), not a stack overflow.

import protobuf from 'protobufjs/minimal.js';
import { FcmError, invalid, overLimit, unsupported } from '../../src/errors.js';
import type { DType } from '../../src/graph/ir.js';
import { onnx } from './onnx-pb.js';

export { onnx };
export type ModelProto = onnx.ModelProto;

/** The newest ONNX IR version the schema (onnx.proto) describes. */
export const supportedIrVersion = 14;
/** Deepest message nesting decodeModel accepts (model > graph > node > attribute > graph ... counts 3 per subgraph). */
export const maxNestingDepth = protobuf.Reader.recursionLimit;

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
  return Number(toBigInt(v));
}

export function toBigInt(v: Int64): bigint {
  if (typeof v === 'number') return BigInt(v);
  const u = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
  return v.unsigned ? u : BigInt.asIntN(64, u);
}

/** Decodes an ONNX model and checks that it is one: ir_version, opset_import and graph present. */
export function decodeModel(bytes: Uint8Array, source: string): onnx.ModelProto {
  let model: onnx.ModelProto;
  try {
    const reader = protobuf.Reader.create(bytes);
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
    return onnx.ModelProto.encode(model as onnx.ModelProto).finish();
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
