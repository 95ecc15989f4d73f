// .npz reading and writing (src/npz.ts): NumPy's own files (test/data/npz/, written by make.py there with
// np.savez and np.savez_compressed), a round trip, and damaged archives refused with the file named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { encodeNpz, parseNpz } from '../src/npz.js';
import { FcmError } from '../src/errors.js';

const x = Array.from({ length: 24 }, (_, i) => (i - 11.5) / 4);
const w = [1.5, -2.25, 0.125, 1024];

test('np.savez (stored, ZIP64 local headers) and np.savez_compressed (deflate) read back exactly', () => {
  const a = parseNpz(readFileSync('test/data/npz/savez.npz'), 'savez.npz');
  assert.deepEqual([...a.keys()], ['x', 'w']);
  assert.deepEqual(a.get('x')!.shape, [1, 2, 3, 4]);
  assert.deepEqual(Array.from(a.get('x')!.data), x);
  assert.deepEqual(a.get('w')!.shape, [2, 2]);
  assert.deepEqual(Array.from(a.get('w')!.data), w, 'float64 converted');
  const c = parseNpz(readFileSync('test/data/npz/savez-compressed.npz'), 'c.npz');
  assert.deepEqual([...c.keys()], ['x', 'input:0']);
  assert.deepEqual(Array.from(c.get('x')!.data), x);
  assert.deepEqual(Array.from(c.get('input:0')!.data), w);
});

test('encodeNpz round-trips names, shapes and values, and NumPy\'s layout (stored members with CRC-32)', () => {
  const arrays = new Map([
    ['out/probs', { shape: [1, 3], data: Float32Array.of(0.25, 0.5, 0.25) }],
    ['scalar', { shape: [], data: Float32Array.of(-7) }],
  ]);
  const bytes = encodeNpz(arrays);
  const back = parseNpz(bytes, 'rt.npz');
  assert.deepEqual([...back.keys()], ['out/probs', 'scalar']);
  for (const [k, v] of arrays) {
    assert.deepEqual(back.get(k)!.shape, v.shape);
    assert.deepEqual(Array.from(back.get(k)!.data), Array.from(v.data));
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  assert.equal(dv.getUint32(0, true), 0x04034b50);
  assert.equal(dv.getUint16(8, true), 0, 'stored');
});

const refuses = (bytes: Uint8Array, kind: string, re: RegExp, budget?: number) => assert.throws(() => parseNpz(bytes, 'bad.npz', budget), (e: unknown) => {
  assert.ok(e instanceof FcmError, String(e));
  assert.equal(e.kind, kind);
  assert.match(e.message, /^bad\.npz/);
  assert.match(e.message, re);
  return true;
});

test('damaged archives: no directory, a flipped data byte, truncation, a member that is no .npy, over budget', () => {
  const good = encodeNpz(new Map([['x', { shape: [4], data: Float32Array.of(1, 2, 3, 4) }]]));
  refuses(new Uint8Array(100), 'invalid', /no ZIP end-of-central-directory/);
  const flipped = good.slice();
  flipped[good.length - 22 - 60 - 3] ^= 0xff; // inside the member's data, before the central directory
  refuses(flipped, 'invalid', /'x\.npy' fails its CRC-32 check/);
  const cut = good.slice(40);
  refuses(cut, 'invalid', /runs past the end|no local header|malformed/);
  refuses(good, 'limit', /over the memory budget of 10 bytes/, 10);
  // A member named otherwise: rename x.npy -> x.txt in both headers (CRC unchanged: it covers the data only).
  const renamed = good.slice();
  const s = Buffer.from(renamed.buffer, renamed.byteOffset, renamed.length);
  for (let i = s.indexOf('x.npy'); i >= 0; i = s.indexOf('x.npy', i + 1)) s.write('x.txt', i);
  refuses(renamed, 'invalid', /member 'x\.txt' is not an \.npy array/);
  assert.equal(crc32(new Uint8Array(0)), 0);
});
