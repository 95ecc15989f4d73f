// Format-blind mutations of a file's bytes: bit flips, truncation, interesting bytes and words, chunk
// deletion and duplication. Every target gets some of these on top of its structured mutations.
import { interestingInts, Rng } from './rng.js';

export const byteOps = ['flip', 'truncate', 'setByte', 'setU32', 'deleteChunk', 'duplicateChunk', 'zeroChunk'] as const;
export type ByteOp = (typeof byteOps)[number];

export function mutateBytes(input: Uint8Array, op: ByteOp, seed: number): Uint8Array {
  const r = new Rng(seed);
  const n = input.length;
  if (n === 0) return input;
  const b = input.slice();
  switch (op) {
    case 'flip': {
      const flips = r.range(1, 8);
      for (let i = 0; i < flips; i++) b[r.int(n)] ^= 1 << r.int(8);
      return b;
    }
    case 'truncate':
      // Mostly near the end (a cut download), sometimes anywhere.
      return b.subarray(0, r.bool(0.5) ? Math.max(0, n - r.range(1, Math.min(n, 64))) : r.int(n));
    case 'setByte':
      b[r.int(n)] = r.pick([0, 1, 0x7f, 0x80, 0xff, 0xfe, 0x40]);
      return b;
    case 'setU32': {
      if (n < 4) return b;
      const at = r.int(n - 3);
      const v = r.pick(interestingInts);
      new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(at, Number(BigInt.asUintN(32, BigInt(Math.trunc(v)))), true);
      return b;
    }
    case 'deleteChunk': {
      const at = r.int(n);
      const len = r.range(1, Math.min(n - at, 256));
      const out = new Uint8Array(n - len);
      out.set(b.subarray(0, at));
      out.set(b.subarray(at + len), at);
      return out;
    }
    case 'duplicateChunk': {
      const at = r.int(n);
      const len = r.range(1, Math.min(n - at, 256));
      const to = r.int(n + 1);
      const out = new Uint8Array(n + len);
      out.set(b.subarray(0, to));
      out.set(b.subarray(at, at + len), to);
      out.set(b.subarray(to), to + len);
      return out;
    }
    case 'zeroChunk': {
      const at = r.int(n);
      b.fill(0, at, Math.min(n, at + r.range(1, 64)));
      return b;
    }
  }
}
