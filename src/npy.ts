// .npy files (NumPy format versions 1-3) for `fcm-opt run`: float32 tensors in C order. Reading also takes
// float64 (converted); anything else is refused naming the file and what it holds. Writing goes to a temp
// file renamed into place (src/export/write-atomic.ts), so a failure leaves no partial output.

import { defaultMaxMemory } from '../converters/options.js';
import { writeFileAtomic, type WriteAtomicOptions } from './export/write-atomic.js';
import { readInputFile } from './input-file.js';
import { invalid, unsupported } from './errors.js';

export interface NpyArray {
  data: Float32Array;
  shape: number[];
}

const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export function parseNpy(bytes: Uint8Array, file: string): NpyArray {
  if (bytes.length < 10 || magic.some((m, i) => bytes[i] !== m)) throw invalid(file, 'not a .npy file (no \\x93NUMPY magic)');
  const major = bytes[6];
  if (major < 1 || major > 3) throw unsupported(file, `.npy format version ${major}.${bytes[7]}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // Versions 2 and 3 hold the header length in 4 bytes: 12 bytes before the header, where version 1 has 10.
  const start = major === 1 ? 10 : 12;
  if (bytes.length < start) throw invalid(file, 'truncated .npy header');
  const headerLen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  if (start + headerLen > bytes.length) throw invalid(file, 'truncated .npy header');
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw invalid(file, `malformed .npy header: ${header.trim()}`);
  if (fortran === 'True') throw unsupported(file, 'Fortran-order arrays (save with np.ascontiguousarray)');
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw invalid(file, `bad shape (${shapeText})`);
  const n = shape.reduce((a, b) => a * b, 1);
  const body = start + headerLen;
  const elem = descr === '<f4' ? 4 : descr === '<f8' ? 8 : 0;
  if (!elem) throw unsupported(file, `dtype '${descr}' (expected float32 '<f4'; float64 '<f8' is converted)`);
  if (bytes.length - body < n * elem) throw invalid(file, `holds ${bytes.length - body} data bytes, shape (${shape.join(', ')}) needs ${n * elem}`);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = elem === 4 ? dv.getFloat32(body + 4 * i, true) : dv.getFloat64(body + 8 * i, true);
  return { data, shape };
}

/** Reads a .npy file through the input gate (src/input-file.ts): a regular file of at most `maxMemory` bytes. */
export async function readNpy(file: string, maxMemory = defaultMaxMemory): Promise<NpyArray> {
  return parseNpy(await readInputFile(file, { maxBytes: maxMemory }), file);
}

export function encodeNpy(a: NpyArray): Uint8Array {
  const n = a.shape.reduce((p, q) => p * q, 1);
  if (n !== a.data.length) throw new Error(`internal: ${a.data.length} values for shape [${a.shape.join(',')}]`);
  const shape = a.shape.length === 1 ? `(${a.shape[0]},)` : `(${a.shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
  // Version 1: 10 bytes of preamble; header padded with spaces and ended by \n to a multiple of 64.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, ' ') + '\n';
  const out = new Uint8Array(total + 4 * n);
  out.set(magic, 0);
  out[6] = 1; out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  const dv = new DataView(out.buffer, total);
  for (let i = 0; i < n; i++) dv.setFloat32(4 * i, a.data[i], true);
  return out;
}

/** Writes `a` as .npy with the one output writer (src/export/write-atomic.ts): hidden temp file, fsync, rename. */
export async function writeNpy(file: string, a: NpyArray, opts: WriteAtomicOptions = {}): Promise<void> {
  await writeFileAtomic(file, encodeNpy(a), opts);
}
