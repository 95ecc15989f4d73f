// Custom options of TFLite ops as flexbuffers (the format TensorFlow and MediaPipe write them in), read into plain
// values with flatbuffers' reader, two of its faults mended: it reads a float 0.0 as null (it picks the float value
// with `||`), which would drop options such as MediaPipe's target_rotation_radians = 0, and gives 64-bit integers
// as BigInt. Such a null of the root map is read again by its stored type; integers become numbers.
import { toObject, toReference } from 'flatbuffers/mjs/flexbuffers.js';

export type FlexValue = null | boolean | number | string | Uint8Array | FlexValue[] | { [key: string]: FlexValue };

const plain = (v: unknown): FlexValue => {
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const out: { [key: string]: FlexValue } = Object.create(null);
    for (const [k, x] of Object.entries(v)) out[k] = plain(x);
    return out;
  }
  return v as FlexValue;
};

/** The value at the root of a flexbuffer (throws on a malformed buffer). */
export function readFlex(raw: Uint8Array): FlexValue {
  const buffer = raw.slice().buffer;
  const value = plain(toObject(buffer));
  if (value && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Uint8Array)) {
    for (const k of Object.keys(value)) {
      if (value[k] !== null) continue;
      // A fresh reference each time: flatbuffers' Reference caches its length in a form its next lookup cannot use.
      const r = toReference(buffer).get(k as unknown as number);
      if (r.isFloat()) value[k] = Number(r.floatValue());
    }
  }
  return value;
}
