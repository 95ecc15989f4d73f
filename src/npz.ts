// .npz files (NumPy's np.savez / np.savez_compressed: a ZIP archive of .npy members, one per named array) for
// `fcm-opt run` and `check`: several named inputs in, every output out. Reading takes stored and deflated
// members, with ZIP64 sizes as NumPy writes them; every offset and size is checked against the file and the
// memory budget before use. Writing stores members uncompressed (float data barely compresses) through the one
// atomic writer.

import { crc32, inflateRawSync } from 'node:zlib';
import { defaultMaxMemory } from '../converters/options.js';
import { writeFileAtomic, type WriteAtomicOptions } from './export/write-atomic.js';
import { readInputFile } from './input-file.js';
import { invalid, overLimit, unsupported } from './errors.js';
import { encodeNpy, type NpyArray, parseNpy } from './npy.js';

const sig = { local: 0x04034b50, central: 0x02014b50, end: 0x06054b50, end64: 0x06064b50, locator64: 0x07064b50 };

/** The arrays of an .npz archive by name (the member name without `.npy`), in archive order. */
export function parseNpz(bytes: Uint8Array, file: string, maxMemory = defaultMaxMemory): Map<string, NpyArray> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (o: number) => dv.getUint16(o, true), u32 = (o: number) => dv.getUint32(o, true);
  const u64 = (o: number) => Number(dv.getBigUint64(o, true));
  // End of central directory: the last 22 bytes, or earlier when the archive has a comment (at most 64 KiB).
  let end = -1;
  for (let o = bytes.length - 22; o >= Math.max(0, bytes.length - 22 - 0xffff); o--) {
    if (u32(o) === sig.end) { end = o; break; }
  }
  if (end < 0) throw invalid(file, 'not an .npz file (no ZIP end-of-central-directory record)');
  let entries = u16(end + 10), cdSize = u32(end + 12), cdOffset = u32(end + 16);
  if (entries === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = end - 20;
    if (loc < 0 || u32(loc) !== sig.locator64) throw invalid(file, 'ZIP64 archive without its end-of-central-directory locator');
    const e64 = u64(loc + 8);
    if (e64 + 56 > bytes.length || u32(e64) !== sig.end64) throw invalid(file, 'ZIP64 end-of-central-directory record out of place');
    entries = u64(e64 + 32); cdSize = u64(e64 + 40); cdOffset = u64(e64 + 48);
  }
  if (cdOffset + cdSize > bytes.length) throw invalid(file, `central directory (${cdSize} bytes at ${cdOffset}) runs past the end of the file`);
  const out = new Map<string, NpyArray>();
  let total = 0;
  for (let i = 0, o = cdOffset; i < entries; i++) {
    if (o + 46 > cdOffset + cdSize || u32(o) !== sig.central) throw invalid(file, `central directory entry ${i} is malformed`);
    const flags = u16(o + 8), method = u16(o + 10), crc = u32(o + 16);
    let csize = u32(o + 20), usize = u32(o + 24), local = u32(o + 42);
    const nameLen = u16(o + 28), extraLen = u16(o + 30), commentLen = u16(o + 32);
    const next = o + 46 + nameLen + extraLen + commentLen;
    if (next > cdOffset + cdSize) throw invalid(file, `central directory entry ${i} runs past the directory`);
    const name = new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(o + 46, o + 46 + nameLen));
    // ZIP64 extended information (header id 1): the 64-bit values of the fields that hold 0xffffffff, in order.
    for (let e = o + 46 + nameLen; e + 4 <= o + 46 + nameLen + extraLen;) {
      const id = u16(e), len = u16(e + 2);
      if (id === 1) {
        let p = e + 4;
        const take = () => { if (p + 8 > e + 4 + len) throw invalid(file, `'${name}': short ZIP64 extra field`); const v = u64(p); p += 8; return v; };
        if (usize === 0xffffffff) usize = take();
        if (csize === 0xffffffff) csize = take();
        if (local === 0xffffffff) local = take();
      }
      e += 4 + len;
    }
    o = next;
    if (name.endsWith('/')) continue;
    if (!name.endsWith('.npy')) throw invalid(file, `member '${name}' is not an .npy array`);
    if (flags & 1) throw unsupported(file, `member '${name}' is encrypted`);
    if (method !== 0 && method !== 8) throw unsupported(file, `member '${name}' uses ZIP compression method ${method} (stored and deflate are read)`);
    total += usize;
    if (total > maxMemory) throw overLimit(file, `its arrays hold ${total} bytes, over the memory budget of ${maxMemory} bytes`);
    if (local + 30 > bytes.length || u32(local) !== sig.local) throw invalid(file, `member '${name}': no local header at offset ${local}`);
    const start = local + 30 + u16(local + 26) + u16(local + 28);
    if (start + csize > bytes.length) throw invalid(file, `member '${name}' (${csize} bytes at ${start}) runs past the end of the file`);
    const raw = bytes.subarray(start, start + csize);
    let data: Uint8Array;
    try {
      data = method === 0 ? raw : inflateRawSync(raw, { maxOutputLength: Math.max(1, usize) });
    } catch (e) {
      throw invalid(file, `member '${name}' does not inflate: ${(e as Error).message}`);
    }
    if (data.length !== usize) throw invalid(file, `member '${name}' holds ${data.length} bytes, its directory entry says ${usize}`);
    if (crc32(data) >>> 0 !== crc) throw invalid(file, `member '${name}' fails its CRC-32 check`);
    const key = name.slice(0, -'.npy'.length);
    if (out.has(key)) throw invalid(file, `holds two arrays named '${key}'`);
    out.set(key, parseNpy(data, `${file}: '${key}'`));
  }
  return out;
}

/** Reads an .npz file through the input gate (src/input-file.ts). */
export async function readNpz(file: string, maxMemory = defaultMaxMemory): Promise<Map<string, NpyArray>> {
  return parseNpz(await readInputFile(file, { maxBytes: maxMemory }), file, maxMemory);
}

/** An .npz archive (stored members, as np.savez writes them) of `arrays` by name. */
export function encodeNpz(arrays: ReadonlyMap<string, NpyArray>): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const [key, a] of arrays) {
    const name = new TextEncoder().encode(`${key}.npy`);
    const data = encodeNpy(a);
    const crc = crc32(data) >>> 0;
    if (offset + data.length > 0xfffffff0) throw unsupported(`${key}.npy`, 'archives over 4 GiB are not written');
    const local = new Uint8Array(30 + name.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, sig.local, true); lv.setUint16(4, 20, true); lv.setUint16(6, 0x800, true); // UTF-8 names
    lv.setUint32(14, crc, true); lv.setUint32(18, data.length, true); lv.setUint32(22, data.length, true);
    lv.setUint16(26, name.length, true);
    local.set(name, 30);
    const cd = new Uint8Array(46 + name.length);
    const cv = new DataView(cd.buffer);
    cv.setUint32(0, sig.central, true); cv.setUint16(4, 20, true); cv.setUint16(6, 20, true); cv.setUint16(8, 0x800, true);
    cv.setUint32(16, crc, true); cv.setUint32(20, data.length, true); cv.setUint32(24, data.length, true);
    cv.setUint16(28, name.length, true); cv.setUint32(42, offset, true);
    cd.set(name, 46);
    parts.push(local, data);
    central.push(cd);
    offset += local.length + data.length;
  }
  const cdSize = central.reduce((s, c) => s + c.length, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, sig.end, true); ev.setUint16(8, arrays.size, true); ev.setUint16(10, arrays.size, true);
  ev.setUint32(12, cdSize, true); ev.setUint32(16, offset, true);
  const out = new Uint8Array(offset + cdSize + 22);
  let p = 0;
  for (const x of [...parts, ...central, end]) { out.set(x, p); p += x.length; }
  return out;
}

export async function writeNpz(file: string, arrays: ReadonlyMap<string, NpyArray>, opts: WriteAtomicOptions = {}): Promise<void> {
  await writeFileAtomic(file, encodeNpz(arrays), opts);
}
