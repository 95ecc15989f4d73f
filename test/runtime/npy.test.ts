import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeNpy, parseNpy, readNpy, writeNpy } from '../../src/npy.js';
import { FcmError } from '../../src/errors.js';

test('.npy float32 round trip, header aligned to 64 bytes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-npy-'));
  const data = Float32Array.from({ length: 24 }, (_, i) => i - 0.5);
  await writeNpy(join(dir, 'a.npy'), { data, shape: [2, 3, 4] });
  assert.deepEqual(readdirSync(dir), ['a.npy']);
  const back = await readNpy(join(dir, 'a.npy'));
  assert.deepEqual(back.shape, [2, 3, 4]);
  assert.deepEqual(back.data, data);
  const bytes = encodeNpy({ data: new Float32Array(3), shape: [3] });
  assert.equal((bytes.length - 12) % 4, 0);
  const headerEnd = new DataView(bytes.buffer).getUint16(8, true) + 10;
  assert.equal(headerEnd % 64, 0);
  assert.equal(bytes.length, headerEnd + 12);
  assert.match(new TextDecoder().decode(bytes.subarray(10, headerEnd)), /'shape': \(3,\)/);
});

test('float64 is converted; other dtypes, Fortran order, truncation and non-npy are refused', () => {
  const hdr = (descr: string, shape: string, fortran = 'False') => {
    let h = `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;
    h = h.padEnd(Math.ceil((h.length + 11) / 64) * 64 - 11) + '\n';
    const b = new Uint8Array(10 + h.length);
    b.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    new DataView(b.buffer).setUint16(8, h.length, true);
    for (let i = 0; i < h.length; i++) b[10 + i] = h.charCodeAt(i);
    return b;
  };
  const h8 = hdr('<f8', '(2,)');
  const f8 = new Uint8Array(h8.length + 16);
  f8.set(h8);
  new DataView(f8.buffer).setFloat64(h8.length, 1.5, true);
  new DataView(f8.buffer).setFloat64(h8.length + 8, -2, true);
  assert.deepEqual(Array.from(parseNpy(f8, 'f8.npy').data), [1.5, -2]);
  const bad = (b: Uint8Array, re: RegExp, code: number) =>
    assert.throws(() => parseNpy(b, 'x.npy'), (e: unknown) => e instanceof FcmError && e.exitCode === code && re.test(e.message));
  bad(hdr('<i4', '(1,)'), /x\.npy: dtype '<i4'/, 3);
  bad(hdr('<f4', '(1, 2)', 'True'), /Fortran/, 3);
  bad(hdr('<f4', '(4,)'), /needs 16/, 2);
  bad(new TextEncoder().encode('hello world'), /not a \.npy file/, 2);
});

test('a missing input file is a clear error', async () => {
  await assert.rejects(readNpy(join(tmpdir(), 'no-such-file.npy')), /no-such-file\.npy: cannot read \(ENOENT: no such file\)/);
  const dir = mkdtempSync(join(tmpdir(), 'fcm-npy-'));
  writeFileSync(join(dir, 'x'), '');
  await assert.rejects(writeNpy(join(dir, 'x', 'y.npy'), { data: new Float32Array(1), shape: [1] }), /y\.npy: cannot create the output file \(ENOTDIR\)/);
  assert.deepEqual(readdirSync(dir), ['x']);
});
