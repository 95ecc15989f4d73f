// Custom options of TFLite ops as flexbuffers (the format TensorFlow and MediaPipe write them in), read into plain
// values. flatbuffers' own toObject reads a float 0.0 as null (it picks the float value with `||`), which would drop
// options such as MediaPipe's target_rotation_radians = 0; this walk reads each scalar by its stored type.
import { toReference } from 'flatbuffers/mjs/flexbuffers.js';

export type FlexValue = null | boolean | number | string | Uint8Array | FlexValue[] | { [key: string]: FlexValue };

type Ref = ReturnType<typeof toReference>;

function read(r: Ref): FlexValue {
  if (r.isNull()) return null;
  if (r.isBool()) return r.boolValue();
  if (r.isFloat()) return Number(r.floatValue());
  if (r.isNumber()) return Number(r.intValue());
  if (r.isString()) return r.stringValue();
  if (r.isBlob()) return r.blobValue();
  if (r.isMap()) {
    const out: { [key: string]: FlexValue } = Object.create(null);
    for (const k of Object.keys(r.toObject() as object)) out[k] = read(r.get(k as unknown as number));
    return out;
  }
  if (r.isVector()) return Array.from({ length: r.length() }, (_, i) => read(r.get(i)));
  return null;
}

/** The value at the root of a flexbuffer (throws on a malformed buffer). */
export function readFlex(raw: Uint8Array): FlexValue {
  return read(toReference(raw.slice().buffer));
}
