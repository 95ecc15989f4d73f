// A minimal .npy (NumPy format 1.0) writer and header parser for the fuzzer's own use: it builds seed
// files and locates the header fields it mutates. The product's reader is src/npy.ts.

/** A v1.0 .npy file: magic, version, little-endian header length, the dict header padded to 64 bytes, data. */
export function encodeNpy(descr: string, shape: readonly number[], data: Uint8Array, fortran = false, headerOverride?: string): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = headerOverride ?? `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${shapeText}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = new TextEncoder().encode(header);
  const out = new Uint8Array(10 + head.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  out[8] = head.length & 0xff;
  out[9] = (head.length >> 8) & 0xff;
  out.set(head, 10);
  out.set(data, 10 + head.length);
  return out;
}

/** Splits a v1/v2 .npy into header text and data; null when the preamble is not one. */
export function splitNpy(bytes: Uint8Array): { version: number; header: string; data: Uint8Array } | null {
  if (bytes.length < 10 || bytes[0] !== 0x93) return null;
  const version = bytes[6];
  const lenBytes = version >= 2 ? 4 : 2;
  if (bytes.length < 8 + lenBytes) return null;
  let len = 0;
  for (let i = lenBytes - 1; i >= 0; i--) len = len * 256 + bytes[8 + i];
  const start = 8 + lenBytes;
  if (start + len > bytes.length) return null;
  return { version, header: new TextDecoder().decode(bytes.subarray(start, start + len)), data: bytes.subarray(start + len) };
}
