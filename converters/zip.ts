// Zip archives, read from bytes: Keras 3 `.keras` files and MediaPipe Tasks `.task` bundles are zips. Entries are
// found through the central directory and read from their local headers, stored or deflated.
import { inflateRawSync } from 'node:zlib';
import { invalid, unsupported } from '../src/errors.js';

export const isZip = (b: Uint8Array) => b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04;

/** One entry of a zip archive: its name and uncompressed size, read on demand. */
export interface ZipEntry { name: string; size: number; read: () => Uint8Array }

/** The end-of-central-directory record's offset, searched back over the longest comment; -1 where there is none. */
function findEocd(b: Uint8Array): number {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = b.length - 22; i >= Math.max(0, b.length - 22 - 65535); i--) if (v.getUint32(i, true) === 0x06054b50) return i;
  return -1;
}

/**
 * Whether the bytes end as a zip archive does: an end-of-central-directory record whose directory lies before it.
 * Some archives carry bytes ahead of their first entry (MediaPipe's pose_landmarker .task files start with two), so
 * the start alone does not tell.
 */
export function hasZipDirectory(b: Uint8Array): boolean {
  const e = findEocd(b);
  if (e < 0) return false;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  // The directory ends where the record starts, at or after the offset it gives.
  return e - v.getUint32(e + 12, true) - v.getUint32(e + 16, true) >= 0;
}

/**
 * The entries of a zip archive, in central-directory order; nothing is inflated until an entry is read. Offsets in
 * the directory count from the archive's first entry: bytes ahead of it shift them all (as in Python's zipfile).
 */
export function zipEntries(b: Uint8Array, source: string): ZipEntry[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const eocd = findEocd(b);
  if (eocd < 0) throw invalid(source, 'is not a zip archive (no end of central directory)');
  const count = v.getUint16(eocd + 10, true);
  const cdSize = v.getUint32(eocd + 12, true), cdOffset = v.getUint32(eocd + 16, true);
  // Bytes ahead of the archive: where the directory is, less where it says it is.
  const shift = eocd - cdSize - cdOffset;
  if (shift < 0) throw invalid(source, 'zip central directory is damaged');
  let p = cdOffset + shift;
  const out: ZipEntry[] = [];
  for (let k = 0; k < count; k++) {
    if (p + 46 > b.length || v.getUint32(p, true) !== 0x02014b50) throw invalid(source, 'zip central directory is damaged');
    const method = v.getUint16(p + 10, true), csize = v.getUint32(p + 20, true), usize = v.getUint32(p + 24, true);
    const nlen = v.getUint16(p + 28, true), elen = v.getUint16(p + 30, true), clen = v.getUint16(p + 32, true);
    const local = v.getUint32(p + 42, true) + shift;
    if (p + 46 + nlen > b.length) throw invalid(source, 'zip central directory is damaged');
    const name = new TextDecoder().decode(b.subarray(p + 46, p + 46 + nlen));
    p += 46 + nlen + elen + clen;
    if (local + 30 > b.length || v.getUint32(local, true) !== 0x04034b50) throw invalid(source, `zip entry '${name}' is damaged`);
    const start = local + 30 + v.getUint16(local + 26, true) + v.getUint16(local + 28, true);
    if (start + csize > b.length) throw invalid(source, `zip entry '${name}' runs past the end of the file`);
    if (method !== 0 && method !== 8) throw unsupported(source, `zip entry '${name}' uses compression method ${method} (stored and deflate are supported)`);
    const raw = b.subarray(start, start + csize);
    const read = (): Uint8Array => {
      if (method === 0) return raw;
      try {
        return new Uint8Array(inflateRawSync(raw, { maxOutputLength: Math.max(usize, 1) }));
      } catch (e) {
        throw invalid(source, `zip entry '${name}' cannot be inflated (${(e as Error).message})`);
      }
    };
    out.push({ name, size: method === 0 ? csize : usize, read });
  }
  return out;
}

/** The files of a zip archive (stored or deflated entries), by name. */
export function unzip(b: Uint8Array, source: string): Map<string, Uint8Array> {
  return new Map(zipEntries(b, source).map((e) => [e.name, e.read()]));
}
