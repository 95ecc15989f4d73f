// Structured mutations of zip archives (model bundles): the numeric fields of the end-of-central-directory record,
// of each central-directory header and each local header (counts, sizes, offsets, methods, name and extra
// lengths) set to boundary values, and member names changed, so that the reader's bounds checks are reached with
// an otherwise well-formed archive.
import { interestingInts, Rng } from './rng.js';

export const zipOps = ['field', 'name'] as const;
export type ZipOp = (typeof zipOps)[number];

interface Field { at: number; width: 2 | 4 }
interface Name { at: number; length: number }

/** The header fields and member names of a zip, found as the reader finds them (central directory first). */
export function zipSites(b: Uint8Array): { fields: Field[]; names: Name[] } {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const fields: Field[] = [], names: Name[] = [];
  let eocd = -1;
  for (let i = b.length - 22; i >= Math.max(0, b.length - 22 - 65535); i--) if (v.getUint32(i, true) === 0x06054b50) { eocd = i; break; }
  if (eocd < 0) return { fields, names };
  fields.push(...[8, 10].map((d) => ({ at: eocd + d, width: 2 as const })), ...[12, 16].map((d) => ({ at: eocd + d, width: 4 as const })));
  const shift = eocd - v.getUint32(eocd + 12, true) - v.getUint32(eocd + 16, true);
  let p = v.getUint32(eocd + 16, true) + shift;
  for (let k = 0; k < v.getUint16(eocd + 10, true) && p >= 0 && p + 46 <= b.length && v.getUint32(p, true) === 0x02014b50; k++) {
    fields.push(...[10, 28, 30, 32].map((d) => ({ at: p + d, width: 2 as const })), ...[20, 24, 42].map((d) => ({ at: p + d, width: 4 as const })));
    const nlen = v.getUint16(p + 28, true);
    names.push({ at: p + 46, length: nlen });
    const local = v.getUint32(p + 42, true) + shift;
    if (local >= 0 && local + 30 <= b.length && v.getUint32(local, true) === 0x04034b50) {
      fields.push(...[8, 26, 28].map((d) => ({ at: local + d, width: 2 as const })), ...[18, 22].map((d) => ({ at: local + d, width: 4 as const })));
    }
    p += 46 + nlen + v.getUint16(p + 30, true) + v.getUint16(p + 32, true);
  }
  return { fields, names };
}

export function mutateZip(input: Uint8Array, op: ZipOp, seed: number): Uint8Array {
  const r = new Rng(seed);
  const { fields, names } = zipSites(input);
  const b = input.slice();
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (op === 'field' && fields.length > 0) {
    const f = r.pick(fields);
    const old = f.width === 2 ? v.getUint16(f.at, true) : v.getUint32(f.at, true);
    const value = r.pick([...interestingInts, old + 1, old - 1, old * 2, b.length, b.length - f.at]);
    const bits = BigInt.asUintN(f.width * 8, BigInt(Math.trunc(value)));
    if (f.width === 2) v.setUint16(f.at, Number(bits), true);
    else v.setUint32(f.at, Number(bits), true);
  } else if (op === 'name' && names.length > 0) {
    // Another name of the same length: a member the path does not name, or a model turned into another file type.
    const n = r.pick(names);
    if (n.length > 0 && n.at + n.length <= b.length) b[n.at + r.int(n.length)] = r.pick([0x23, 0x2e, 0x2f, 0x00, 0x41, 0x61]);
  }
  return b;
}
